//! The worker threads: each takes a request from tiny_http's queue and drives
//! its lifecycle to the end on its own current-thread tokio runtime.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use http::{HeaderName, HeaderValue, Method, Version};
use serverbridge::body::RequestBody;
use serverbridge::feature::{
    Address, ConnectionInfo, RequestFeature, RequestId, ResponseBody, ResponseFeature,
    ResponseTrailers,
};
use serverbridge::{lifecycle, BoxApplication, Features};

use crate::exchange::{refuse, Exchange, RequestTraits, TinyBody, TinySink};

/// What every worker shares.
pub(crate) struct Pool {
    pub(crate) server: Weak<tiny_http::Server>,
    pub(crate) app: BoxApplication,
    pub(crate) server_features: Arc<Features>,
    pub(crate) local: SocketAddr,
    pub(crate) stopping: Arc<AtomicBool>,
    pub(crate) cancelled: Arc<AtomicBool>,
    pub(crate) next_id: AtomicU64,
}

/// One worker's loop. `_alive` is dropped when it returns: `stop` waits for
/// every worker's to go.
pub(crate) fn run(pool: Arc<Pool>, _alive: tokio::sync::mpsc::Sender<()>) {
    // A current-thread runtime per worker: the request's futures (and any
    // task the app spawns) run on this thread, timers and tokio I/O work,
    // and nothing depends on the runtime that called `start` (which may be
    // a current-thread runtime busy elsewhere, or gone).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "tiny_http worker: no runtime");
            return;
        }
    };
    let mut state = WorkerState::default();
    loop {
        if pool.stopping.load(Ordering::Acquire) {
            break;
        }
        // Hold the server only while waiting, so that `stop` dropping its
        // handle closes the listener as soon as the idle workers wake.
        let Some(server) = pool.server.upgrade() else {
            break;
        };
        let received = server.recv();
        drop(server);
        match received {
            Ok(request) => serve(&pool, &runtime, &mut state, request),
            Err(err) => {
                if pool.stopping.load(Ordering::Acquire) {
                    break;
                }
                tracing::warn!(error = %err, "tiny_http: receiving a request failed");
            }
        }
    }
}

/// What a worker keeps from one request to the next.
#[derive(Default)]
struct WorkerState {
    connections: Connections,
    /// The last request's feature collection, emptied of that request, and
    /// its revision when it was handed to the app.
    spare: Option<(Features, u64)>,
}

fn serve(
    pool: &Pool,
    runtime: &tokio::runtime::Runtime,
    state: &mut WorkerState,
    request: tiny_http::Request,
) {
    let Some((features, shared)) = features(pool, state, request) else {
        return;
    };
    let revision = features.revision();
    let outcome = drive(runtime, lifecycle::run_request(&*pool.app, features));
    {
        let mut exchange = shared.lock().unwrap_or_else(|p| p.into_inner());
        // Nothing was sent (no head ever reached the sink): tiny_http
        // answers 500 when its request is dropped unanswered.
        drop(exchange.take_unanswered());
        drop(exchange.take_writer());
    }
    state.spare = recycle(outcome.features, revision);
}

/// The collection back for the next request, if the app left its set as
/// the worker built it (an app that inserted or removed a feature moved the
/// revision, and made the collection its own), with what the request held
/// released now: the body, the headers, the response's headers and
/// callbacks, the trailers. Reusing it saves an allocation per feature and
/// the header maps' (the built-in server reuses one per connection).
fn recycle(mut features: Features, revision: u64) -> Option<(Features, u64)> {
    if features.revision() != revision {
        return None;
    }
    let request = features.get_mut::<RequestFeature>()?;
    request.body = RequestBody::empty();
    request.headers.clear();
    features.get_mut::<ResponseFeature>()?.reset();
    if let Some(trailers) = features.get_mut::<ResponseTrailers>() {
        trailers.headers.clear();
    }
    Some((features, revision))
}

/// Runs `future` to its end on the worker's runtime.
///
/// Most requests never wait on the runtime (the app answers at once and the
/// sink writes synchronously), so the future is polled once inside the
/// runtime's context first; only if it is pending does `block_on` take over
/// (it polls again at once, with its own waker). Entering `block_on` costs
/// about 800 instructions per request (callgrind), which the first poll
/// saves. A task the app spawns during that poll is queued on the runtime
/// and runs the next time `block_on` does, as it would have anyway:
/// `block_on` returns as soon as the request's future is ready, without
/// running other tasks.
fn drive<F: std::future::Future>(runtime: &tokio::runtime::Runtime, future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    {
        let _context = runtime.enter();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
    runtime.block_on(future)
}

fn version(request: &tiny_http::Request) -> Version {
    match request.http_version() {
        tiny_http::HTTPVersion(1, 0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    }
}

/// A collection with the features every request gets, to fill in.
fn fresh_features() -> Features {
    let mut features = Features::with_capacity(5, None);
    features.insert(RequestFeature::default());
    features.insert(ResponseFeature::default());
    features.insert(RequestId::new(String::new()));
    features
}

/// The request's features over its connection's defaults layer (and that
/// over the server's), and the shared exchange the worker cleans up after
/// the lifecycle. The last request's collection is refilled when the worker
/// kept it.
fn features(
    pool: &Pool,
    state: &mut WorkerState,
    request: tiny_http::Request,
) -> Option<(Features, crate::exchange::Shared)> {
    let Ok(method) = Method::from_bytes(request.method().as_str().as_bytes()) else {
        refuse(request);
        return None;
    };
    let mut features = match state.spare.take() {
        Some((features, _)) => features,
        None => fresh_features(),
    };
    let Some(fields) = features.get_mut::<RequestFeature>() else {
        refuse(request);
        return None;
    };
    // Before the target: the forms a target may take depend on it.
    fields.method = method;
    if !fields.set_target(request.url()) {
        refuse(request);
        return None;
    }
    fields.path_base.clear();
    fields.scheme = http::uri::Scheme::HTTP;
    let version = version(&request);
    fields.version = version;
    let headers = &mut fields.headers;
    // Empty already when recycled (clearing walks the whole index table).
    if !headers.is_empty() {
        headers.clear();
    }
    headers.reserve(request.headers().len());
    for header in request.headers() {
        match (
            HeaderName::from_bytes(header.field.as_str().as_bytes()),
            HeaderValue::from_bytes(header.value.as_bytes()),
        ) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => {
                refuse(request);
                return None;
            }
        }
    }
    let http10 = version == Version::HTTP_10;
    // tiny_http's own rules for ending the connection after this request
    // (substrings of the lowercased value, as tiny_http matches them).
    let (mut upgrade, mut close, mut keep_alive) = (false, false, false);
    for value in headers.get_all(http::header::CONNECTION) {
        let value = value.as_bytes();
        upgrade |= contains_ignore_case(value, b"upgrade");
        close |= contains_ignore_case(value, b"close");
        keep_alive |= contains_ignore_case(value, b"keep-alive");
    }
    let raw_body = upgrade;
    let closing = close || raw_body || (http10 && !keep_alive);
    // tiny_http ignores Content-Length when Transfer-Encoding is present, and
    // reads no body without either.
    let length = if raw_body {
        Some(0)
    } else if headers.contains_key(http::header::TRANSFER_ENCODING) {
        None
    } else {
        Some(request.body_length().unwrap_or(0) as u64)
    };
    let traits = RequestTraits {
        head_request: fields.method == Method::HEAD,
        http10,
        closing,
        keep_alive_10: http10 && !closing,
        connect_request: fields.method == Method::CONNECT,
        raw_body,
        body_done: length == Some(0),
    };
    let peer = request.remote_addr().copied();
    let shared = Exchange::new(request, traits, pool.cancelled.clone());
    fields.body = if length == Some(0) {
        RequestBody::empty()
    } else {
        RequestBody::new(TinyBody::new(shared.clone(), length))
    };
    let connection = state.connections.layer(pool, peer);
    // tiny_http does not tell connections apart: `n` counts the server's
    // requests (unique, as an id must be), in the usual format.
    let n = pool.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    if let Some(id) = features.get_mut::<RequestId>() {
        id.set_sequence(&connection.id, n);
    }
    features.set_defaults(Some(connection.features.clone()));
    features.insert_dyn::<dyn ResponseBody>(Box::new(TinySink {
        shared: shared.clone(),
    }));
    // Chunked responses carry trailers; HTTP/1.0 has no chunked responses.
    match (http10, features.contains::<ResponseTrailers>()) {
        (true, true) => drop(features.remove::<ResponseTrailers>()),
        (false, false) => drop(features.insert(ResponseTrailers::default())),
        _ => {}
    }
    Some((features, shared))
}

/// The per-connection defaults layer (SPEC §1): `ConnectionInfo` over the
/// server's features. tiny_http does not expose its connections, so layers
/// are kept per peer address (the connection id is that address), built on
/// a peer's first request and shared by the requests after it: no
/// formatting or allocation for the connection info per request.
#[derive(Default)]
struct Connections {
    layers: HashMap<Option<SocketAddr>, Rc<ConnectionLayer>>,
    /// The last peer served and its layer: consecutive requests often come
    /// from one connection (keep-alive, pipelining), and this skips the
    /// hashing.
    last: Option<(Option<SocketAddr>, Rc<ConnectionLayer>)>,
}

struct ConnectionLayer {
    features: Arc<Features>,
    /// `ConnectionInfo::id`, for the request ids.
    id: String,
}

impl Connections {
    /// The most peers a worker remembers; past it the map starts over (a
    /// layer only depends on the peer address, so forgetting one costs a
    /// rebuild, nothing else).
    const MAX: usize = 1024;

    fn layer(&mut self, pool: &Pool, peer: Option<SocketAddr>) -> Rc<ConnectionLayer> {
        if let Some((last, layer)) = &self.last {
            if *last == peer {
                return layer.clone();
            }
        }
        if self.layers.len() >= Self::MAX && !self.layers.contains_key(&peer) {
            self.layers.clear();
        }
        let layer = self
            .layers
            .entry(peer)
            .or_insert_with(|| {
                let id = peer.map_or_else(|| "unix".to_owned(), |p| p.to_string());
                let mut features = Features::with_capacity(1, Some(pool.server_features.clone()));
                features.insert(ConnectionInfo {
                    id: id.clone(),
                    local: Some(Address::Tcp(pool.local)),
                    peer: peer.map(Address::Tcp),
                });
                Rc::new(ConnectionLayer {
                    features: Arc::new(features),
                    id,
                })
            })
            .clone();
        self.last = Some((peer, layer.clone()));
        layer
    }
}

/// Whether `haystack` contains `needle`, ASCII case-insensitively.
fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::contains_ignore_case;

    #[test]
    fn connection_tokens_match_as_tiny_http_matches_them() {
        assert!(contains_ignore_case(b"Keep-Alive, Upgrade", b"upgrade"));
        assert!(contains_ignore_case(b"CLOSE", b"close"));
        assert!(!contains_ignore_case(b"clos", b"close"));
        assert!(!contains_ignore_case(b"", b"close"));
    }
}
