//! The worker threads: each takes a request from tiny_http's queue and drives
//! its lifecycle to the end on its own current-thread tokio runtime.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use http::{HeaderMap, HeaderName, HeaderValue, Method, Version};
use serverbridge::body::RequestBody;
use serverbridge::feature::{
    Address, ConnectionInfo, RequestFeature, RequestId, ResponseBody, ResponseFeature,
    ResponseTrailers,
};
use serverbridge::{lifecycle, BoxApplication, Features};

use crate::exchange::{Exchange, RequestTraits, TinyBody, TinySink};

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
            Ok(request) => serve(&pool, &runtime, request),
            Err(err) => {
                if pool.stopping.load(Ordering::Acquire) {
                    break;
                }
                tracing::warn!(error = %err, "tiny_http: receiving a request failed");
            }
        }
    }
}

fn serve(pool: &Pool, runtime: &tokio::runtime::Runtime, request: tiny_http::Request) {
    let Some((features, shared)) = features(pool, request) else {
        return;
    };
    let outcome = runtime.block_on(lifecycle::run_request(&*pool.app, features));
    drop(outcome);
    let mut exchange = shared.lock().unwrap_or_else(|p| p.into_inner());
    // Nothing was sent (no head ever reached the sink): tiny_http answers
    // 500 when its request is dropped unanswered.
    drop(exchange.take_unanswered());
    drop(exchange.take_writer());
}

fn version(request: &tiny_http::Request) -> Version {
    match request.http_version() {
        tiny_http::HTTPVersion(1, 0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    }
}

/// Path and query from the request target: origin form split at `?`, the
/// asterisk form as an empty path, absolute and authority forms through
/// `http::Uri`.
fn split_target(target: &str) -> Option<(String, String)> {
    if target.starts_with('/') {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        return Some((path.to_owned(), query.to_owned()));
    }
    if target == "*" {
        return Some((String::new(), String::new()));
    }
    let uri: http::Uri = target.parse().ok()?;
    let path = if uri.path_and_query().is_some() {
        uri.path().to_owned()
    } else {
        String::new()
    };
    Some((path, uri.query().unwrap_or("").to_owned()))
}

fn bad_request(request: tiny_http::Request) {
    let response = tiny_http::Response::empty(400);
    let _ = request.respond(response);
}

/// The request's features over the server-level defaults, and the shared
/// exchange the worker cleans up after the lifecycle.
fn features(
    pool: &Pool,
    request: tiny_http::Request,
) -> Option<(Features, crate::exchange::Shared)> {
    let Ok(method) = Method::from_bytes(request.method().as_str().as_bytes()) else {
        bad_request(request);
        return None;
    };
    let raw_target = request.url().to_owned();
    let Some((path, query)) = split_target(&raw_target) else {
        bad_request(request);
        return None;
    };
    let version = version(&request);
    let mut headers = HeaderMap::with_capacity(request.headers().len());
    for header in request.headers() {
        match (
            HeaderName::from_bytes(header.field.as_str().as_bytes()),
            HeaderValue::from_bytes(header.value.as_bytes()),
        ) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => {
                bad_request(request);
                return None;
            }
        }
    }
    let connection = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",")
        .to_ascii_lowercase();
    let http10 = version == Version::HTTP_10;
    // tiny_http's own rules for ending the connection after this request.
    let raw_body = connection.contains("upgrade");
    let closing =
        connection.contains("close") || raw_body || (http10 && !connection.contains("keep-alive"));
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
        head_request: method == Method::HEAD,
        http10,
        closing,
        keep_alive_10: http10 && !closing,
        raw_body,
        te: headers.contains_key(http::header::TE),
        body_done: length == Some(0),
    };
    let peer = request.remote_addr().copied();
    let shared = Exchange::new(request, traits, pool.cancelled.clone());
    let body = if length == Some(0) {
        RequestBody::empty()
    } else {
        RequestBody::new(TinyBody::new(shared.clone(), length))
    };
    let connection_id = peer.map_or_else(|| "unix".to_owned(), |p| p.to_string());
    let n = pool.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let mut features = Features::with_capacity(7, Some(pool.server_features.clone()));
    features.insert(RequestFeature {
        method,
        scheme: http::uri::Scheme::HTTP,
        path_base: String::new(),
        path,
        query,
        raw_target,
        version,
        headers,
        body,
    });
    features.insert(ResponseFeature::default());
    features.insert_dyn::<dyn ResponseBody>(Box::new(TinySink {
        shared: shared.clone(),
    }));
    features.insert(RequestId::new(format!("{connection_id}:{n}")));
    features.insert(ConnectionInfo {
        id: connection_id,
        local: Some(Address::Tcp(pool.local)),
        peer: peer.map(Address::Tcp),
    });
    if !http10 {
        // Chunked responses carry trailers.
        features.insert(ResponseTrailers::default());
    }
    Some((features, shared))
}

#[cfg(test)]
mod tests {
    use super::split_target;

    #[test]
    fn targets_split_without_decoding() {
        assert_eq!(
            split_target("/a%2Fb/../c?x=1&x=2"),
            Some(("/a%2Fb/../c".into(), "x=1&x=2".into()))
        );
        assert_eq!(split_target("*"), Some((String::new(), String::new())));
        assert_eq!(
            split_target("http://h/p?q"),
            Some(("/p".into(), "q".into()))
        );
        assert_eq!(split_target("h:80"), Some((String::new(), String::new())));
    }
}
