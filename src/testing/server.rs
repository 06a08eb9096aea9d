//! [`TestServer`] in direct mode.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::header::{HeaderName, HeaderValue, HOST};
use http::{HeaderMap, Method, StatusCode, Version};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, StreamBody};
use tokio::time::Instant;

use crate::application::{Application, BoxApplication};
use crate::body::RequestBody;
use crate::error::{BoxError, Error, Result};
use crate::feature::{
    ConnectionClose, ConnectionInfo, MaxRequestBodySize, RequestFeature, RequestId,
    RequestLifetime, RequestTrailers, ResponseTrailers, ServerAddress, ServerAddresses, TlsInfo,
};
use crate::features::Features;
use crate::pipe::{FeaturePool, PipeBody, ReasonPhrase};
use crate::server::Limits;
use crate::server_trait::Server;

/// Kestrel's default request body limit, which TestServer applies too.
const DEFAULT_MAX_REQUEST_BODY: u64 = 30_000_000;

static NEXT_SERVER: AtomicU64 = AtomicU64::new(1);

struct State {
    app: std::sync::RwLock<Option<BoxApplication>>,
    stopped: AtomicBool,
    requests: AtomicU64,
    /// Direct mode's finished feature collections, reused in place.
    pool: Arc<FeaturePool>,
    /// Direct-mode requests whose lifecycle has not ended: `stop` waits,
    /// and aborts them at its deadline.
    pub(super) in_flight: Arc<crate::pipe::InFlight>,
    /// Wire mode's connections: served under the current run, which `stop`
    /// ends as the built-in server ends its own (a new one each start).
    run: std::sync::Mutex<crate::server::Run>,
}

impl State {
    /// The current run (a handle on it).
    fn run(&self) -> crate::server::Run {
        self.run.lock().map(|run| run.clone()).unwrap_or_default()
    }
}

/// An in-memory [`Server`] for tests; see the [module docs](crate::testing).
pub struct TestServer {
    state: Arc<State>,
    pub(super) server_features: Arc<Features>,
    pub(super) connection_defaults: Arc<Features>,
    connection_id: String,
    max_request_body_size: Option<u64>,
    pub(super) mode: Mode,
    pub(super) limits: Limits,
    addresses: ServerAddresses,
    /// What the server-level [`Connector`](super::Connector) dispatches to: a
    /// copy of this server's current settings. The connector holds it weakly,
    /// so dropping the server ends its connections' reach.
    current: Arc<std::sync::Mutex<Option<Arc<TestServer>>>>,
}

/// How [`TestServer`] delivers requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Straight into the app: no bytes, the fastest (the default).
    #[default]
    Direct,
    /// Through the built-in server's HTTP/1.1 engine over an in-memory
    /// duplex: real parsing, framing, limits and status codes.
    Wire,
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer")
            .field("connection_id", &self.connection_id)
            .field("stopped", &self.state.stopped.load(Ordering::Relaxed))
            .finish()
    }
}

impl TestServer {
    /// A running server for `app`.
    pub fn new(app: impl Application) -> Self {
        let server = TestServer::unstarted();
        server.set_app(Arc::new(app));
        server
    }

    /// A server with no app yet; [`Server::start`] gives it one.
    pub fn unstarted() -> Self {
        let n = NEXT_SERVER.fetch_add(1, Ordering::Relaxed);
        let connection_id = format!("T{n:08X}");
        let addresses = ServerAddresses::default();
        let current = Arc::new(std::sync::Mutex::new(None));
        let mut server_features = Features::new();
        server_features.insert(addresses.clone());
        server_features.insert(super::connect::connector(Arc::downgrade(&current)));
        let server_features = Arc::new(server_features);
        let local: SocketAddr = ([127, 0, 0, 1], 80).into();
        let peer: SocketAddr = ([127, 0, 0, 1], 50000).into();
        let info = ConnectionInfo::tcp(connection_id.clone(), local, peer);
        let connection_defaults = connection_layer(&server_features, info, None);
        TestServer {
            state: Arc::new(State {
                app: std::sync::RwLock::new(None),
                stopped: AtomicBool::new(true),
                requests: AtomicU64::new(0),
                pool: Arc::default(),
                in_flight: Arc::default(),
                run: std::sync::Mutex::default(),
            }),
            server_features,
            connection_defaults,
            connection_id,
            max_request_body_size: Some(DEFAULT_MAX_REQUEST_BODY),
            mode: Mode::Direct,
            limits: Limits::default(),
            addresses,
            current,
        }
    }

    fn set_app(&self, app: BoxApplication) {
        if let Ok(mut slot) = self.state.app.write() {
            *slot = Some(app);
        }
        if let Ok(mut run) = self.state.run.lock() {
            if run.is_stopping() {
                *run = crate::server::Run::default();
            }
        }
        self.state.stopped.store(false, Ordering::Relaxed);
        self.addresses.clear();
        self.addresses
            .push(ServerAddress::Memory(self.connection_id.clone()));
        self.refresh();
    }

    /// A copy sharing this server's state, with its current settings.
    pub(super) fn handle(&self) -> TestServer {
        TestServer {
            state: self.state.clone(),
            server_features: self.server_features.clone(),
            connection_defaults: self.connection_defaults.clone(),
            connection_id: self.connection_id.clone(),
            max_request_body_size: self.max_request_body_size,
            mode: self.mode,
            limits: self.limits.clone(),
            addresses: self.addresses.clone(),
            current: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    /// Points the connector at the current settings (after every change).
    fn refresh(&self) {
        let handle = Arc::new(self.handle());
        if let Ok(mut current) = self.current.lock() {
            *current = Some(handle);
        }
    }

    /// The name connections and request ids start with (`T0000002A`).
    pub(super) fn name(&self) -> &str {
        &self.connection_id
    }

    /// The next number from the server's request count (shared by direct
    /// mode's request ids and wire mode's connection ids).
    pub(super) fn next_number(&self) -> u64 {
        self.state.requests.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Serves a wire connection under the current run (`stop` ends it).
    pub(super) fn spawn_connection(
        &self,
        io: tokio::io::DuplexStream,
        features: Features,
        app: BoxApplication,
    ) {
        self.state
            .run()
            .spawn_connection(io, features, app, self.limits.clone());
    }

    /// Sets the connection info every request sees (default: peer
    /// `127.0.0.1:50000`, local `127.0.0.1:80`).
    pub fn with_connection(mut self, info: ConnectionInfo) -> Self {
        let tls = self.connection_defaults.get::<TlsInfo>().cloned();
        self.connection_defaults = connection_layer(&self.server_features, info, tls);
        self.refresh();
        self
    }

    /// Makes every request arrive "over TLS" with this session info (and scheme
    /// `https`).
    pub fn with_tls(mut self, tls: TlsInfo) -> Self {
        let info = self
            .connection_defaults
            .get::<ConnectionInfo>()
            .cloned()
            .unwrap_or_default();
        self.connection_defaults = connection_layer(&self.server_features, info, Some(tls));
        self.refresh();
        self
    }

    /// Sets the default request body limit (default 30,000,000 bytes; `None`
    /// for none), in both modes.
    pub fn with_max_request_body_size(mut self, limit: Option<u64>) -> Self {
        self.max_request_body_size = limit;
        self.limits.max_request_body_size = limit;
        self.refresh();
        self
    }

    /// Chooses how requests are delivered (the default is [`Mode::Direct`]).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use serverbridge::testing::{Mode, TestServer};
    ///
    /// async fn hello(ctx: &mut serverbridge::HttpContext) -> serverbridge::Result<()> {
    ///     ctx.write("hi").await
    /// }
    ///
    /// let server = TestServer::new(hello).with_mode(Mode::Wire);
    /// let response = server.get("/").send().await.unwrap();
    /// assert_eq!(response.headers()["content-length"], "2");
    /// assert!(response.headers().contains_key("date")); // the real server's
    /// # });
    /// ```
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self.refresh();
        self
    }

    /// Sets the built-in server's limits for wire mode (the request body limit
    /// set with [`with_max_request_body_size`](Self::with_max_request_body_size)
    /// is kept).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        let body = self.limits.max_request_body_size;
        self.limits = limits;
        self.limits.max_request_body_size = body;
        self.refresh();
        self
    }

    /// The running app, or an error if the server is stopped.
    pub(super) fn app(&self) -> Result<BoxApplication> {
        match self.state.app.read().ok().and_then(|a| a.clone()) {
            Some(app) if !self.state.stopped.load(Ordering::Relaxed) => Ok(app),
            _ => Err(Error::closed("the test server is not running")),
        }
    }

    /// A request with any method. The target is borrowed until the request
    /// is sent (no copy per request).
    pub fn request<'a>(&'a self, method: Method, uri: &'a str) -> TestRequest<'a> {
        TestRequest {
            server: self,
            method,
            uri,
            version: Version::HTTP_11,
            headers: HeaderMap::new(),
            body: RequestBody::empty(),
            trailers: None,
            connection: None,
            tls: None,
            lifetime: std::sync::OnceLock::new(),
            fault: None,
        }
    }

    /// A `GET` request.
    pub fn get<'a>(&'a self, uri: &'a str) -> TestRequest<'a> {
        self.request(Method::GET, uri)
    }

    /// A `POST` request.
    pub fn post<'a>(&'a self, uri: &'a str) -> TestRequest<'a> {
        self.request(Method::POST, uri)
    }

    /// A `HEAD` request.
    pub fn head<'a>(&'a self, uri: &'a str) -> TestRequest<'a> {
        self.request(Method::HEAD, uri)
    }
}

fn connection_layer(
    server: &Arc<Features>,
    info: ConnectionInfo,
    tls: Option<TlsInfo>,
) -> Arc<Features> {
    let mut connection = Features::with_defaults(server.clone());
    connection.insert(info);
    if let Some(tls) = tls {
        connection.insert(tls);
    }
    Arc::new(connection)
}

#[async_trait]
impl Server for TestServer {
    fn features(&self) -> &Features {
        &self.server_features
    }

    async fn start(&mut self, app: BoxApplication) -> Result<()> {
        self.set_app(app);
        Ok(())
    }

    /// Stops as the built-in server does: refuses new requests and
    /// connections, closes idle wire connections at once, lets the requests
    /// in flight finish (their responses say `Connection: close`; their
    /// whole lifecycle, `dispose_context` included), and at `deadline`
    /// aborts what remains: wire connections are dropped, and direct
    /// requests get their [`RequestLifetime`] fired and their client an
    /// `is_aborted()` error. A direct request's app that ignores its
    /// lifetime is not waited for after the deadline: its future belongs to
    /// the caller that polls it (there is no connection task to drop).
    async fn stop(&mut self, deadline: Instant) -> Result<()> {
        self.state.stopped.store(true, Ordering::Relaxed);
        self.addresses.clear();
        let run = self.state.run();
        let in_flight = &self.state.in_flight;
        // Dropped before it ends, the stop aborts what remains.
        let abort_on_drop = run.abort_on_drop();
        let aborts_direct = in_flight.abort_on_drop();
        run.begin_stop();
        let graceful = async { tokio::join!(run.ended(), in_flight.idle()) };
        if tokio::time::timeout_at(deadline, graceful).await.is_err() {
            run.abort();
            in_flight.abort_all();
            run.ended().await;
        }
        abort_on_drop.disarm();
        aborts_direct.disarm();
        Ok(())
    }
}

/// Adds `Host` (the target's authority, else `localhost`) to an HTTP/1.x
/// request without one, as a real client would. An authority that is no
/// valid header value adds none (the app sees what a client that sent none
/// would make it see).
pub(super) fn ensure_host(headers: &mut HeaderMap, authority: Option<&str>, version: Version) {
    // An empty map (the common request) needs no lookup.
    if (!headers.is_empty() && headers.contains_key(HOST)) || version == Version::HTTP_2 {
        return;
    }
    let value = authority.map_or(Ok(HeaderValue::from_static("localhost")), |a| {
        HeaderValue::from_str(a)
    });
    if let Ok(value) = value {
        headers.insert(HOST, value);
    }
}

/// [`ensure_host`] for a request without fields of its own, on a map that
/// is empty or holds only a Host kept from the collection's last request:
/// kept when it is the one this request gets, else replaced (or removed).
fn default_host(headers: &mut HeaderMap, authority: Option<&str>, version: Version) {
    let wanted = authority.unwrap_or("localhost");
    let kept = version != Version::HTTP_2
        && headers.len() == 1
        && headers
            .iter()
            .next()
            .is_some_and(|(name, value)| name == HOST && value == wanted);
    if !kept {
        if !headers.is_empty() {
            headers.clear();
        }
        ensure_host(headers, authority, version);
    }
}

/// The body, followed by the trailers when there are some.
pub(super) fn with_trailers(body: RequestBody, trailers: Option<HeaderMap>) -> RequestBody {
    let Some(trailers) = trailers else {
        return body;
    };
    let trailer = futures::stream::once(async move { Ok::<_, Error>(Frame::trailers(trailers)) });
    let frames = body
        .into_data_stream()
        .map(|d| d.map(Frame::data))
        .chain(trailer);
    RequestBody::new(StreamBody::new(frames))
}

/// A request being built; [`send`](TestRequest::send) runs it.
pub struct TestRequest<'a> {
    pub(super) server: &'a TestServer,
    pub(super) method: Method,
    pub(super) uri: &'a str,
    pub(super) version: Version,
    pub(super) headers: HeaderMap,
    pub(super) body: RequestBody,
    /// Boxed, as the two below.
    pub(super) trailers: Option<Box<HeaderMap>>,
    // Boxed: rarely set, and the request is moved several times on its way
    // (a smaller struct is a smaller copy every time).
    pub(super) connection: Option<Box<ConnectionInfo>>,
    pub(super) tls: Option<Box<TlsInfo>>,
    /// The client's handle on the request's lifetime, made on first use:
    /// a request nobody can abort from the client side runs on the reused
    /// collection's lifetime (see [`TestRequest::send`]).
    pub(super) lifetime: std::sync::OnceLock<RequestLifetime>,
    pub(super) fault: Option<super::Fault>,
}

impl fmt::Debug for TestRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestRequest")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("headers", &self.headers)
            .finish()
    }
}

impl<'a> TestRequest<'a> {
    /// Adds a header (repeated names are kept as separate values).
    ///
    /// # Panics
    ///
    /// If the name or value is invalid: a bug in the test.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("valid header name");
        let value = HeaderValue::from_str(value).expect("valid header value");
        self.headers.append(name, value);
        self
    }

    /// Sets the protocol version (default HTTP/1.1).
    pub fn version(mut self, version: Version) -> Self {
        self.version = version;
        self
    }

    /// A whole body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = RequestBody::full(body.into());
        self
    }

    /// A streamed body: each item is one chunk, an error ends the body with
    /// that error (a client that fails mid-upload).
    pub fn body_stream<S, E>(mut self, stream: S) -> Self
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        let frames = stream.map(|item| item.map(Frame::data).map_err(|e| Error::from(e.into())));
        self.body = RequestBody::new(StreamBody::new(frames));
        self
    }

    /// A body from any `http_body::Body`.
    pub fn body_from<B>(mut self, body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        self.body = RequestBody::new(body);
        self
    }

    /// Adds a request trailer (sent after the body). In wire mode, declare it
    /// in a `Trailer` header too, as an HTTP/1.1 client must for the trailer
    /// to be sent.
    ///
    /// # Panics
    ///
    /// If the name or value is invalid.
    pub fn trailer(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("valid trailer name");
        let value = HeaderValue::from_str(value).expect("valid trailer value");
        self.trailers
            .get_or_insert_with(Box::default)
            .append(name, value);
        self
    }

    /// Overrides the connection info for this request.
    pub fn connection(mut self, info: ConnectionInfo) -> Self {
        self.connection = Some(Box::new(info));
        self
    }

    /// Sends this request "over TLS" with this session info.
    pub fn tls(mut self, tls: TlsInfo) -> Self {
        self.tls = Some(Box::new(tls));
        self
    }

    /// Injects a client-side fault (see [`Fault`](super::Fault)).
    pub fn fault(mut self, fault: super::Fault) -> Self {
        self.fault = Some(fault);
        self
    }

    /// Applies the fault, if any, to the headers and body.
    pub(super) fn take_faulted_body(&mut self) -> RequestBody {
        let body = with_trailers(
            std::mem::take(&mut self.body),
            self.trailers.take().map(|t| *t),
        );
        match self.fault {
            Some(fault) => {
                let direct = self.server.mode == Mode::Direct;
                let lifetime = direct.then(|| self.lifetime());
                super::faults::apply(fault, &mut self.headers, body, lifetime)
            }
            None => body,
        }
    }

    /// The request's lifetime as the client holds it: `abort()` on it is the
    /// client going away (the app's [`RequestLifetime`] fires).
    pub fn lifetime(&self) -> RequestLifetime {
        self.lifetime.get_or_init(RequestLifetime::new).clone()
    }

    /// The app and the request's features, ready to run ([`Prepared`]).
    ///
    /// The target is checked and classified by the built-in server's own
    /// rules (RFC 9112 §3.2), so direct mode takes and refuses the targets
    /// wire mode does, and without building an `http::Uri`.
    fn features(mut self) -> Result<Prepared> {
        use crate::target::{
            check_target, check_target_strict, classify_target, target_authority, TargetForm,
        };
        let server = self.server;
        let app = server.app()?;
        check_target(self.uri)?;
        // The wire's strict default, and its switch (the server's limits).
        if !server.limits.allow_unencoded_target_characters {
            check_target_strict(self.uri)?;
        }
        let body = self.take_faulted_body();
        // The server's own layer unless this request overrides it; a
        // reused collection usually has it already (no count to move).
        let overridden = (self.connection.is_some() || self.tls.is_some()).then(|| {
            let shared = &server.connection_defaults;
            let info = self
                .connection
                .map(|info| *info)
                .or_else(|| shared.get::<ConnectionInfo>().cloned())
                .unwrap_or_default();
            let tls = self
                .tls
                .map(|tls| *tls)
                .or_else(|| shared.get::<TlsInfo>().cloned());
            connection_layer(&server.server_features, info, tls)
        });
        let defaults = overridden.as_ref().unwrap_or(&server.connection_defaults);
        // A finished request's collection, when one is idle (the pool
        // checked its set is as built below and reset the response side):
        // every feature is then refilled in place rather than boxed anew,
        // and its (cleared) request header map takes this request's headers.
        let max = server.max_request_body_size;
        let mut features = server
            .state
            .pool
            .take()
            .filter(|f| f.contains::<RequestId>() && f.contains::<RequestFeature>())
            .unwrap_or_else(|| {
                // Request, id, response trailers (the pipe carries them to
                // `TestResponse::trailers`); the limit and the request
                // trailers are put in below; the pipe adds the response,
                // the lifetime and the sink.
                let mut features = Features::with_capacity(8, None);
                features.insert(RequestFeature::default());
                features.insert(RequestId(String::new()));
                features.insert(ResponseTrailers::default());
                features
            });
        let limit = features.reset_or_insert(
            |limit: &mut MaxRequestBodySize| limit.reset(max),
            || MaxRequestBodySize::new(max),
        );
        // As on a real server, the app may ask for the connection to close:
        // the response then says `Connection: close` (`send`).
        let close = features.reset_or_insert(
            |c: &mut ConnectionClose| c.reset(),
            ConnectionClose::default,
        );
        let mut body = body.with_limit(limit);
        // A body that is over before it starts carries no trailers (as on
        // the built-in server, where only a chunked body has the feature).
        match (!body.is_end_stream()).then(|| RequestTrailers::attach(&mut body)) {
            Some(trailers) => {
                features.insert(trailers);
            }
            None => {
                features.remove::<RequestTrailers>();
            }
        }
        let tls = defaults.contains::<TlsInfo>();
        let n = server.next_number();
        let connection_id = defaults
            .get::<ConnectionInfo>()
            .map_or(server.connection_id.as_str(), |c| c.id.as_str());
        if let Some(id) = features.get_mut::<RequestId>() {
            id.set_sequence(connection_id, n);
        }
        let Some(request) = features.get_mut::<RequestFeature>() else {
            return Err(Error::closed("the request feature went missing"));
        };
        let form = classify_target(
            &self.method,
            self.uri,
            &mut request.path,
            &mut request.query,
        )?;
        let authority = target_authority(form, self.uri);
        if self.headers.is_empty() {
            // The pooled map: empty, or the last request's lone Host.
            std::mem::swap(&mut self.headers, &mut request.headers);
            default_host(&mut self.headers, authority, self.version);
        } else {
            ensure_host(&mut self.headers, authority, self.version);
        }
        let https = form == TargetForm::Absolute
            && self
                .uri
                .get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
        request.method = self.method;
        request.scheme = if tls || https {
            http::uri::Scheme::HTTPS
        } else {
            http::uri::Scheme::HTTP
        };
        request.path_base.clear();
        request.raw_target.clear();
        request.raw_target.push_str(self.uri);
        request.version = self.version;
        request.headers = self.headers;
        frame_body(&mut request.headers, &body);
        request.body = body;
        if !features
            .defaults()
            .is_some_and(|d| Arc::ptr_eq(d, defaults))
        {
            let defaults = defaults.clone();
            features.set_defaults(Some(defaults));
        }
        Ok(Prepared {
            app,
            features,
            client: self.lifetime.into_inner(),
            close,
        })
    }

    /// Runs the request; resolves when the app sends the response head.
    pub async fn send(self) -> Result<TestResponse> {
        // A client that goes away mid-request reads no response, whatever
        // the app answered: the same `is_aborted()` error in both modes.
        let gone = self.fault.is_some_and(|fault| fault.client_goes_away());
        let sent = if self.server.mode == Mode::Wire {
            super::wire::send(self).await
        } else {
            self.send_direct().await
        };
        if gone {
            return Err(Error::aborted(
                "the client went away before the response (the request's fault)",
            ));
        }
        sent
    }

    async fn send_direct(self) -> Result<TestResponse> {
        let pool = self.server.state.pool.clone();
        let state = self.server.state.clone();
        let mut in_flight = state.in_flight.enter();
        let Prepared {
            app,
            mut features,
            client,
            close,
        } = self.features()?;
        // Without a client lifetime of the test's, the request runs on the
        // reused collection's, renewed.
        let lifetime = match client {
            Some(client) => client,
            None => features.reset_or_insert(RequestLifetime::renew, RequestLifetime::new),
        };
        // A stop's deadline fires it.
        in_flight.watch(&lifetime);
        let response = crate::pipe::call_counted(
            app,
            features,
            lifetime.clone(),
            None,
            Some(pool),
            Some(in_flight),
        );
        // A request aborted before its head (by the test, or by a stop's
        // deadline) has no response to get, as on the wire. The flag is
        // read first and the waiter polled only while the head is pending:
        // an app that answers at once costs no waiter registration.
        let (mut response, mut cancelled) = (
            std::pin::pin!(response),
            std::pin::pin!(lifetime.cancelled()),
        );
        let aborted = || Error::aborted("the request was aborted before its response");
        let response = std::future::poll_fn(|cx| {
            if lifetime.is_cancelled() {
                return std::task::Poll::Ready(Err(aborted()));
            }
            if let std::task::Poll::Ready(response) = response.as_mut().poll(cx) {
                return std::task::Poll::Ready(response);
            }
            cancelled.as_mut().poll(cx).map(|()| Err(aborted()))
        })
        .await?;
        let (mut parts, body) = response.into_parts();
        // Framing fields are the server's, as on the wire: the app's
        // `Transfer-Encoding` and `Connection` do not reach the client (its
        // `Connection: close` asks for the close, and says so).
        parts.headers.remove(http::header::TRANSFER_ENCODING);
        let app_close = parts
            .headers
            .remove(http::header::CONNECTION)
            .is_some_and(|value| crate::http1::asks_close(&value));
        // During a stop, as on the built-in server, the connection closes.
        if close.is_requested() || app_close || state.stopped.load(Ordering::Relaxed) {
            parts.headers.insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        Ok(TestResponse {
            parts,
            body: TestBody::Direct(body),
            trailers: None,
        })
    }
}

/// Gives a request body the framing field a client would have sent, when
/// the test set none: `Content-Length` for a body of known length,
/// `Transfer-Encoding: chunked` for one that streams (hyper's client, which
/// wire mode uses, does the same). A test that set one keeps it as it is.
fn frame_body(headers: &mut http::HeaderMap, body: &RequestBody) {
    use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
    use http_body::Body;
    if body.is_end_stream() || headers.contains_key(CONTENT_LENGTH) {
        return;
    }
    if headers.contains_key(TRANSFER_ENCODING) {
        return;
    }
    match body.size_hint().exact() {
        Some(length) => headers.insert(CONTENT_LENGTH, length.into()),
        None => headers.insert(TRANSFER_ENCODING, http::HeaderValue::from_static("chunked")),
    };
}

/// A direct-mode request made ready to run.
struct Prepared {
    app: BoxApplication,
    features: Features,
    /// The client's lifetime handle, if the test took one.
    client: Option<RequestLifetime>,
    /// The request's `ConnectionClose`, read when the head comes back.
    close: ConnectionClose,
}

/// A response from [`TestServer`]; the body streams as the app writes it.
/// Dropping it before the end of the body is the client going away.
pub struct TestResponse {
    pub(super) parts: http::response::Parts,
    pub(super) body: TestBody,
    /// Boxed: rare, and a response is moved on its way to the test.
    pub(super) trailers: Option<Box<HeaderMap>>,
}

/// The body of a [`TestResponse`], in either [`Mode`].
pub enum TestBody {
    /// Direct mode: straight from the app.
    Direct(PipeBody),
    /// Wire mode: decoded by an HTTP/1.1 client from the server's bytes.
    Wire(crate::body::BoxBody),
}

impl fmt::Debug for TestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TestBody::Direct(_) => "TestBody::Direct",
            TestBody::Wire(_) => "TestBody::Wire",
        })
    }
}

impl Body for TestBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>>>> {
        match self.get_mut() {
            TestBody::Direct(body) => std::pin::Pin::new(body).poll_frame(cx),
            TestBody::Wire(body) => std::pin::Pin::new(body).poll_frame(cx),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            TestBody::Direct(body) => body.size_hint(),
            TestBody::Wire(body) => body.size_hint(),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            TestBody::Direct(body) => body.is_end_stream(),
            TestBody::Wire(body) => body.is_end_stream(),
        }
    }
}

impl fmt::Debug for TestResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestResponse")
            .field("status", &self.parts.status)
            .field("headers", &self.parts.headers)
            .finish()
    }
}

impl TestResponse {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.parts.status
    }

    /// The reason phrase (custom or canonical).
    pub fn reason(&self) -> &str {
        match self.parts.extensions.get::<ReasonPhrase>() {
            Some(reason) => &reason.0,
            None => self.parts.status.canonical_reason().unwrap_or(""),
        }
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.parts.headers
    }

    /// The version.
    pub fn version(&self) -> Version {
        self.parts.version
    }

    /// The next body chunk; `None` at the end (trailers are kept for
    /// [`trailers`](Self::trailers)).
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        while let Some(frame) = self.body.frame().await {
            match frame?.into_data() {
                Ok(data) => return Ok(Some(data)),
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        self.trailers
                            .get_or_insert_with(Box::default)
                            .extend(trailers);
                    }
                }
            }
        }
        Ok(None)
    }

    /// Reads the rest of the body.
    pub async fn read_to_end(&mut self) -> Result<Bytes> {
        let Some(first) = self.chunk().await? else {
            return Ok(Bytes::new());
        };
        // Most bodies are one chunk: no second poll to learn they ended.
        if self.body.is_end_stream() {
            return Ok(first);
        }
        let Some(second) = self.chunk().await? else {
            return Ok(first);
        };
        let mut all = bytes::BytesMut::with_capacity(first.len() + second.len());
        all.extend_from_slice(&first);
        all.extend_from_slice(&second);
        while let Some(chunk) = self.chunk().await? {
            all.extend_from_slice(&chunk);
        }
        Ok(all.freeze())
    }

    /// The whole body.
    pub async fn bytes(mut self) -> Result<Bytes> {
        self.read_to_end().await
    }

    /// The whole body as UTF-8 text.
    pub async fn text(self) -> Result<String> {
        let bytes = self.bytes().await?;
        String::from_utf8(bytes.to_vec()).map_err(Error::app)
    }

    /// The trailers, once the body was read to its end.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_deref()
    }

    /// The response as an `http::Response` with a streaming body.
    pub fn into_http(self) -> http::Response<TestBody> {
        http::Response::from_parts(self.parts, self.body)
    }
}
