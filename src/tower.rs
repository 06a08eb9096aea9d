//! `tower` both ways: any `tower::Service` is an [`Application`], and any
//! Application is a `tower::Service`.
//!
//! - [`ServiceApp`] runs a `Service<http::Request<RequestBody>>` whose response
//!   body is an [`http_body::Body`] (an axum `Router`, a tower-http stack) as
//!   an Application on any server. The request handed to the service carries
//!   the path *without* `path_base` (so a router mounted under
//!   [`Builder::map`](crate::Builder::map) sees the rest), and these extensions:
//!   [`PathBase`], and clones of the [`ConnectionInfo`], [`RequestLifetime`],
//!   [`RequestId`] and [`TlsInfo`] features when present.
//! - [`AppService`] serves an Application to any tower host (`axum::serve`,
//!   hyper-util's `TowerToHyperService`, `ServiceExt::oneshot`). The response
//!   future resolves when the app sends its head; the body streams as the app
//!   writes. Dropping the response before its end is the client going away:
//!   the app's `RequestLifetime` fires and its lifecycle still finishes.
//!
//! - [`TowerHost`] (feature `server`) is a [`Server`](crate::Server) made of
//!   any host that takes a `tokio::net::TcpListener` and a service, such as
//!   `axum::serve`: it binds, publishes the addresses, and stops the host
//!   gracefully with a deadline.
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use http_body_util::BodyExt;
//! use serverbridge::tower::AppService;
//! use serverbridge::{HttpContext, Result};
//! use tower::ServiceExt;
//!
//! async fn hello(ctx: &mut HttpContext) -> Result<()> {
//!     ctx.write("hello").await
//! }
//!
//! let request = http::Request::get("/").body(String::new()).unwrap();
//! let response = AppService::new(hello).oneshot(request).await.unwrap();
//! assert_eq!(response.headers()["content-length"], "5");
//! assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "hello");
//! # });
//! ```

#[cfg(feature = "server")]
mod host;

use std::any::Any;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use ::tower::{Service, ServiceExt};
use bytes::Buf;
use futures::future::BoxFuture;
use http::{HeaderMap, Request, Response};
use http_body::Body;
use http_body_util::BodyExt;

use crate::application::{Application, BoxApplication};
use crate::body::RequestBody;
use crate::context::HttpContext;
use crate::error::{BoxError, Error, Result};
use crate::feature::{
    ConnectionInfo, RequestFeature, RequestId, RequestLifetime, RequestTrailers, ResponseBody,
    ResponseFeature, ResponseTrailers, TlsInfo,
};
use crate::features::Features;
use crate::pipe::{FeaturePool, PipeBody, PipeResponse};

#[cfg(feature = "server")]
pub use host::{Shutdown, TowerHost};

/// The `path_base` of the request, as a request extension for tower services.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathBase(pub String);

/// The request's target as the server received it, riding in the extensions
/// of the `http::Request` a bridge builds ([`request_from`]). An
/// [`AppService`] behind a `Builder::layer` puts it back: the scheme always
/// (it is the connection's), the path, query and raw target when the URI is
/// still the one built from them. A layer then changes nothing of what the
/// inner app sees, unless it rewrites the URI (what it then sees is the
/// rewrite).
#[derive(Clone, Debug)]
pub(crate) struct Target {
    uri: http::Uri,
    scheme: http::uri::Scheme,
    path: String,
    query: String,
    raw_target: String,
}

/// The outer request's features, lent to the inner application across a
/// `tower::Layer` inside a [`Builder`](crate::Builder) and given back when it
/// is done.
#[derive(Clone)]
pub(crate) struct Carried(Arc<Mutex<Option<Features>>>);

impl Carried {
    fn take(&self) -> Option<Features> {
        self.0.lock().ok()?.take()
    }
    fn put(&self, features: Features) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(features);
        }
    }
}

/// An [`Application`] served as a `tower::Service`; see the [module docs](self).
#[derive(Clone)]
pub struct AppService {
    app: BoxApplication,
    server: Option<Arc<Features>>,
}

impl fmt::Debug for AppService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppService")
    }
}

impl AppService {
    /// Wraps an application.
    pub fn new(app: impl Application) -> Self {
        AppService::from_arc(Arc::new(app))
    }

    /// Wraps a shared application.
    pub fn from_arc(app: BoxApplication) -> Self {
        AppService { app, server: None }
    }

    /// Shows these server-level features (such as
    /// [`ServerAddresses`](crate::feature::ServerAddresses)) in every
    /// request's defaults layer, as a server does. A request that carries
    /// its own features from a serverbridge server keeps those.
    pub fn with_server_features(mut self, features: Arc<Features>) -> Self {
        self.server = Some(features);
        self
    }

    /// The server-level features set by
    /// [`with_server_features`](Self::with_server_features), for a server
    /// that builds its own defaults layers over them.
    pub fn server_features(&self) -> Option<&Arc<Features>> {
        self.server.as_ref()
    }

    /// This service with `Error = Infallible`, for hosts that require it
    /// (axum's `serve` and `Router::fallback_service`).
    ///
    /// # Example
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use serverbridge::tower::AppService;
    /// use serverbridge::{HttpContext, Result};
    /// use tower::ServiceExt;
    ///
    /// async fn hello(ctx: &mut HttpContext) -> Result<()> {
    ///     ctx.write("hello").await
    /// }
    ///
    /// // An axum Router whose every route is the Application.
    /// let router = axum::Router::new().fallback_service(AppService::new(hello).infallible());
    /// let request = http::Request::get("/any").body(axum::body::Body::empty()).unwrap();
    /// let response = router.oneshot(request).await.unwrap();
    /// assert_eq!(response.status(), 200);
    /// # });
    /// ```
    pub fn infallible(self) -> InfallibleAppService {
        InfallibleAppService { inner: self }
    }

    /// Runs the application on a request whose features the caller built
    /// whole: the entry point for a server that pulls its responses (the
    /// hyper adapter), where [`Service::call`] would lose what the server
    /// knows (a defaults layer, trailers, upgrade, a body limit).
    ///
    /// `features` must hold the [`RequestFeature`]. The pipe adds a
    /// [`ResponseFeature`] if there is none, the [`ResponseBody`] sink, and
    /// uses the [`RequestLifetime`] already in `features` (else a new one):
    /// it fires if the response or its body is dropped before its end.
    ///
    /// # Example
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use serverbridge::feature::{RequestFeature, RequestId};
    /// use serverbridge::tower::AppService;
    /// use serverbridge::{Features, HttpContext, Result};
    ///
    /// async fn id(ctx: &mut HttpContext) -> Result<()> {
    ///     let id = ctx.features().get::<RequestId>().unwrap().to_string();
    ///     ctx.write(id).await
    /// }
    ///
    /// let mut features = Features::new();
    /// features.insert(RequestFeature::default());
    /// features.insert(RequestId::new("C1:1"));
    /// let response = AppService::new(id).call_features(features).await.unwrap();
    /// assert_eq!(response.headers()["content-length"], "4");
    /// # });
    /// ```
    pub fn call_features(&self, features: Features) -> PipeResponse {
        let lifetime = features
            .get::<RequestLifetime>()
            .cloned()
            .unwrap_or_default();
        crate::pipe::call(self.app.clone(), features, lifetime, None, None)
    }

    /// As [`call_features`](Self::call_features), and once the request's
    /// lifecycle is over its collection goes back to `pool` for the next
    /// request to refill (see [`FeaturePool`]). The request gets a
    /// [`RequestLifetime`] that has not fired: the one a reused collection
    /// holds, [renewed](RequestLifetime::renew), else a new one.
    pub fn call_pooled(&self, mut features: Features, pool: &Arc<FeaturePool>) -> PipeResponse {
        let lifetime = features.reset_or_insert(RequestLifetime::renew, RequestLifetime::new);
        crate::pipe::call(
            self.app.clone(),
            features,
            lifetime,
            None,
            Some(pool.clone()),
        )
    }
}

/// [`AppService`] with `Error = Infallible`, from [`AppService::infallible`].
///
/// Where `AppService` fails (the request ended without a response head, as
/// when the application aborts it), this answers `500` with a body that fails
/// at once, so a hyper-based host drops the connection as it would for a
/// service error; the client may or may not see the head first.
#[derive(Clone, Debug)]
pub struct InfallibleAppService {
    inner: AppService,
}

impl<B> Service<Request<B>> for InfallibleAppService
where
    B: Body + Send + 'static,
    B::Data: Buf,
    B::Error: Into<BoxError>,
{
    type Response = Response<PipeBody>;
    type Error = Infallible;
    type Future = InfallibleResponse;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> InfallibleResponse {
        InfallibleResponse(self.inner.call(request))
    }
}

/// The future of [`InfallibleAppService`]'s response.
#[derive(Debug)]
pub struct InfallibleResponse(PipeResponse);

impl Future for InfallibleResponse {
    type Output = Result<Response<PipeBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|result| {
            Ok(result.unwrap_or_else(|err| {
                tracing::debug!(error = %err, "no response head: answering with an aborted body");
                let mut response = Response::new(PipeBody::aborted());
                *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                response
            }))
        })
    }
}

fn into_request_body<B>(body: B) -> RequestBody
where
    B: Body + Send + 'static,
    B::Data: Buf,
    B::Error: Into<BoxError>,
{
    let any: Box<dyn Any> = Box::new(body);
    match any.downcast::<RequestBody>() {
        Ok(body) => *body,
        Err(any) => match any.downcast::<B>() {
            Ok(body) => RequestBody::new(*body),
            Err(_) => unreachable!("the box holds a B"),
        },
    }
}

impl<B> Service<Request<B>> for AppService
where
    B: Body + Send + 'static,
    B::Data: Buf,
    B::Error: Into<BoxError>,
{
    type Response = Response<PipeBody>;
    type Error = Error;
    type Future = PipeResponse;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> PipeResponse {
        let (mut parts, body) = request.into_parts();
        let mut extensions = std::mem::take(&mut parts.extensions);
        let carried = extensions.remove::<Carried>();
        // A host's server (hyper under axum, say) takes any target
        // `http::Uri` parses: the forms a method may use are checked as the
        // built-in server checks them, and a refused one is answered 400
        // without the app.
        let refused = carried.is_none() && !target_form_ok(&parts.method, &parts.uri);
        let mut features = carried.as_ref().and_then(Carried::take).unwrap_or_default();
        let lifetime = features
            .get::<RequestLifetime>()
            .or_else(|| extensions.get::<RequestLifetime>())
            .cloned()
            .unwrap_or_default();
        let mut body = into_request_body(body);
        if carried.is_none() {
            for_each_carried_extension(&extensions, &mut features);
            features.set_defaults(self.server.clone());
            // Whatever the host's body type, trailer frames after the data
            // reach the app, and the app's trailers go out as a frame.
            features.insert(RequestTrailers::attach(&mut body));
            features.insert(ResponseTrailers::default());
        }
        let target = extensions.remove::<Target>();
        let unchanged = target.as_ref().is_some_and(|t| t.uri == parts.uri);
        let mut request = RequestFeature::from_parts(parts, body);
        if let Some(PathBase(base)) = extensions.remove::<PathBase>() {
            request.path_base = base;
        }
        if let Some(target) = target {
            request.scheme = target.scheme;
            if unchanged {
                request.path = target.path;
                request.query = target.query;
                request.raw_target = target.raw_target;
            }
        }
        features.insert(request);
        if !extensions.is_empty() {
            features.insert(extensions);
        }
        let on_done = carried.map(|carried| {
            Box::new(move |outcome: crate::lifecycle::RequestOutcome| {
                let mut features = outcome.features;
                features.remove::<RequestFeature>();
                features.remove::<ResponseFeature>();
                features.remove_dyn::<dyn ResponseBody>();
                carried.put(features);
            }) as Box<dyn FnOnce(crate::lifecycle::RequestOutcome) + Send>
        });
        // Behind a `Builder::layer`, the outer lifecycle owns the context
        // hooks (the layer passes them through): the inner run must not
        // create or dispose of a context a second time.
        let app = if refused {
            Arc::new(RefuseTarget) as BoxApplication
        } else if on_done.is_some() {
            Arc::new(Hookless(self.app.clone())) as BoxApplication
        } else {
            self.app.clone()
        };
        crate::pipe::call(app, features, lifetime, on_done, None)
    }
}

/// Whether a target has a form its method takes (RFC 9112 §3.2), by the
/// built-in server's rules: the origin form; the absolute form with `http`
/// or `https` and an authority without userinfo; `*` for `OPTIONS` only;
/// the authority form for `CONNECT`, which takes no other.
fn target_form_ok(method: &http::Method, uri: &http::Uri) -> bool {
    if uri.path() == "*" {
        return method == http::Method::OPTIONS && uri.query().is_none();
    }
    if method == http::Method::CONNECT {
        return uri.path_and_query().is_none() && uri.authority().is_some();
    }
    match uri.scheme() {
        None => uri.authority().is_none() && uri.path().starts_with('/'),
        Some(scheme) => {
            (scheme == &http::uri::Scheme::HTTP || scheme == &http::uri::Scheme::HTTPS)
                && uri.authority().is_some_and(|a| !a.as_str().contains('@'))
        }
    }
}

/// The application for a target [`target_form_ok`] refuses: `400`, and the
/// close.
struct RefuseTarget;

impl Application for RefuseTarget {
    fn process_request<'a>(&'a self, ctx: &'a mut HttpContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let response = ctx.response_mut();
            response.status = http::StatusCode::BAD_REQUEST;
            response.headers.insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
            Ok(())
        })
    }
}

/// An application run without its context hooks: `create_context` and
/// `dispose_context` are the defaults (see [`LayerApp`]).
struct Hookless(BoxApplication);

impl Application for Hookless {
    fn process_request<'a>(&'a self, ctx: &'a mut HttpContext) -> BoxFuture<'a, Result<()>> {
        self.0.process_request(ctx)
    }
}

/// Features a tower host may have put in the request extensions.
fn for_each_carried_extension(extensions: &http::Extensions, features: &mut Features) {
    if let Some(info) = extensions.get::<ConnectionInfo>() {
        features.insert(info.clone());
    }
    if let Some(id) = extensions.get::<RequestId>() {
        features.insert(id.clone());
    }
    if let Some(tls) = extensions.get::<TlsInfo>() {
        features.insert(tls.clone());
    }
}

/// Builds the `http::Request` a tower service sees from the context: method,
/// URI (path without `path_base`), version and headers are copied, the body is
/// moved out.
fn request_from(ctx: &mut HttpContext) -> Request<RequestBody> {
    let body = std::mem::take(&mut ctx.request_mut().body);
    let feature = ctx.request();
    let mut request = Request::new(body);
    *request.method_mut() = feature.method.clone();
    let uri = feature.uri();
    *request.uri_mut() = uri.clone();
    *request.version_mut() = feature.version;
    *request.headers_mut() = feature.headers.clone();
    let path_base = feature.path_base.clone();
    let target = Target {
        uri,
        scheme: feature.scheme.clone(),
        path: feature.path.clone(),
        query: feature.query.clone(),
        raw_target: feature.raw_target.clone(),
    };
    let extensions = request.extensions_mut();
    if let Some(carried) = ctx.features().get::<http::Extensions>() {
        extensions.extend(carried.clone());
    }
    extensions.insert(PathBase(path_base));
    extensions.insert(target);
    let features = ctx.features();
    if let Some(info) = features.get::<ConnectionInfo>() {
        extensions.insert(info.clone());
    }
    if let Some(lifetime) = features.get::<RequestLifetime>() {
        extensions.insert(lifetime.clone());
    }
    if let Some(id) = features.get::<RequestId>() {
        extensions.insert(id.clone());
    }
    if let Some(tls) = features.get::<TlsInfo>() {
        extensions.insert(tls.clone());
    }
    request
}

/// Merges `inner` into `outer`: every name `inner` has replaces `outer`'s
/// values for it; other names in `outer` stay.
fn merge_headers(outer: &mut HeaderMap, inner: HeaderMap) {
    let mut last = None;
    for (name, value) in inner {
        match name {
            Some(name) => {
                outer.remove(&name);
                outer.append(name.clone(), value);
                last = Some(name);
            }
            None => {
                if let Some(name) = &last {
                    outer.append(name.clone(), value);
                }
            }
        }
    }
}

/// A `tower::Service` that can run as an [`Application`]: it takes
/// `http::Request<RequestBody>`, answers with an [`HttpBody`], is cloneable
/// and `Send + Sync` (an axum `Router`, a tower-http stack). Implemented for
/// every such service; not meant to be implemented by hand.
pub trait HttpService:
    Service<
        Request<RequestBody>,
        Response = Response<Self::ResponseBody>,
        Future = Self::ServiceFuture,
        Error = Self::ServiceError,
    > + Clone
    + Send
    + Sync
    + 'static
{
    /// The response body.
    type ResponseBody: HttpBody;
    /// The service's future.
    type ServiceFuture: std::future::Future<
            Output = std::result::Result<Response<Self::ResponseBody>, Self::ServiceError>,
        > + Send;
    /// The service's error.
    type ServiceError: Into<BoxError>;
}

impl<S, B> HttpService for S
where
    S: Service<Request<RequestBody>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: HttpBody,
{
    type ResponseBody = B;
    type ServiceFuture = S::Future;
    type ServiceError = S::Error;
}

/// A response body a tower service may return: `Send`, with [`Buf`] data
/// and an error that converts to a [`BoxError`]. Implemented for every such
/// body.
pub trait HttpBody: Body<Data = Self::Chunk, Error = Self::Fault> + Send + 'static {
    /// The data type.
    type Chunk: Buf;
    /// The error type.
    type Fault: Into<BoxError>;
}

impl<B> HttpBody for B
where
    B: Body + Send + 'static,
    B::Data: Buf,
    B::Error: Into<BoxError>,
{
    type Chunk = B::Data;
    type Fault = B::Error;
}

/// A `tower::Service` run as an [`Application`]; see the [module docs](self).
#[derive(Clone)]
pub struct ServiceApp<S> {
    service: S,
}

impl<S> fmt::Debug for ServiceApp<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServiceApp")
    }
}

impl<S> ServiceApp<S> {
    /// Wraps a service (it is cloned per request, tower's convention).
    pub fn new(service: S) -> Self {
        ServiceApp { service }
    }
}

impl<S: HttpService> Application for ServiceApp<S> {
    fn process_request<'a>(&'a self, ctx: &'a mut HttpContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let request = request_from(ctx);
            let response = self
                .service
                .clone()
                .oneshot(request)
                .await
                .map_err(|e| Error::from(e.into()))?;
            let (parts, body) = response.into_parts();
            let head = ctx.response_mut();
            // The reason goes with the status: the service's, or none (an
            // earlier one would be a stale phrase on a new status).
            head.status = parts.status;
            head.reason = parts
                .extensions
                .get::<crate::pipe::ReasonPhrase>()
                .map(|reason| reason.0.clone());
            merge_headers(&mut head.headers, parts.headers);
            ctx.send_body(body).await
        })
    }
}

/// The application a `tower::Layer` in a [`Builder`](crate::Builder) becomes:
/// like [`ServiceApp`], but the outer request's features travel to the inner
/// application and come back, so middleware on both sides of the layer share
/// them.
pub(crate) struct LayerApp<S> {
    service: S,
    /// The rest of the pipeline the layer wraps: its context hooks are the
    /// pipeline's (SPEC §9), run once, by the outer lifecycle.
    next: BoxApplication,
}

impl<S> LayerApp<S> {
    pub(crate) fn new(service: S, next: BoxApplication) -> Self {
        LayerApp { service, next }
    }
}

impl<S: HttpService> Application for LayerApp<S> {
    fn create_context(&self, features: Features) -> HttpContext {
        self.next.create_context(features)
    }

    fn dispose_context(&self, ctx: &mut HttpContext, error: Option<&Error>) {
        self.next.dispose_context(ctx, error);
    }

    fn process_request<'a>(&'a self, ctx: &'a mut HttpContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut request = request_from(ctx);
            // Lend every feature but the three the outer side writes through.
            let mut lent = std::mem::take(ctx.features_mut());
            let mut kept = Features::new();
            kept.set_defaults(lent.defaults().cloned());
            if let Some(feature) = lent.remove::<RequestFeature>() {
                kept.insert(feature);
            }
            if let Some(feature) = lent.remove::<ResponseFeature>() {
                let mut seed = ResponseFeature::default();
                seed.status = feature.status;
                seed.headers = feature.headers.clone();
                lent.insert(seed);
                kept.insert(feature);
            }
            if let Some(sink) = lent.remove_dyn::<dyn ResponseBody>() {
                kept.insert_dyn::<dyn ResponseBody>(sink);
            }
            // The inner side gets a child of the lifetime: it fires when
            // the client goes, and the inner app's abort, or a layer that
            // drops the inner call (a timeout), fires only the child. The
            // outer side decides what that means for the response below.
            if let Some(lifetime) = lent.get::<RequestLifetime>().cloned() {
                lent.insert(lifetime.child());
                kept.insert(lifetime);
            }
            // Clones of what identifies the request, in case the inner app
            // outlives the call (a layer gave up on it) and keeps the lent
            // features until it ends.
            if let Some(id) = lent.get::<RequestId>() {
                kept.insert(id.clone());
            }
            if let Some(info) = lent.get::<ConnectionInfo>() {
                kept.insert(info.clone());
            }
            if let Some(tls) = lent.get::<TlsInfo>() {
                kept.insert(tls.clone());
            }
            let trailers_supported = lent.contains::<ResponseTrailers>();
            *ctx.features_mut() = kept;
            let carried = Carried(Arc::new(Mutex::new(Some(lent))));
            request.extensions_mut().insert(carried.clone());

            let outcome = self
                .service
                .clone()
                .oneshot(request)
                .await
                .map_err(|err| Error::from(err.into()));
            let result = match outcome {
                Ok(response) => pump(ctx, response).await,
                // The inner app aborted before its head: so does the
                // request (never a complete-looking 500 for it).
                Err(err) if err.is_aborted() => {
                    ctx.abort();
                    Ok(None)
                }
                Err(err) => Err(err),
            };
            let trailers = result.as_ref().ok().cloned().flatten();
            if let Some(mut lent) = carried.take() {
                // The outer side keeps its own lifetime, not the child.
                lent.remove::<RequestLifetime>();
                ctx.features_mut().extend(lent);
            }
            if let (Some(trailers), true) = (trailers, trailers_supported) {
                if let Some(feature) = ctx.features_mut().get_mut::<ResponseTrailers>() {
                    feature.headers.extend(trailers);
                }
            }
            result.map(|_| ())
        })
    }
}

/// Copies the inner response into the context through its writing API and
/// returns the trailers; the body is pulled to its end, so the inner
/// application is done when this returns.
async fn pump<B>(ctx: &mut HttpContext, response: Response<B>) -> Result<Option<HeaderMap>>
where
    B: Body + Send + 'static,
    B::Data: Buf,
    B::Error: Into<BoxError>,
{
    let (parts, body) = response.into_parts();
    let head = ctx.response_mut();
    head.status = parts.status;
    head.reason = parts
        .extensions
        .get::<crate::pipe::ReasonPhrase>()
        .map(|r| r.0.clone());
    head.headers = parts.headers;
    let mut body = std::pin::pin!(crate::body::boxed(body));
    let mut trailers = None;
    // Whether bytes were written since the last flush.
    let mut unflushed = false;
    loop {
        let next = match futures::FutureExt::now_or_never(body.frame()) {
            Some(next) => next,
            None => {
                // The inner app sent its head or flushed, and is not done:
                // what it sent goes out now, as it would have without the
                // layer (a stream of events must not wait in the buffer).
                // An app that finished without a flush never gets here:
                // its whole body is ready, and keeps its Content-Length.
                if unflushed || !ctx.response().has_started() {
                    ctx.flush().await?;
                    unflushed = false;
                }
                body.frame().await
            }
        };
        let Some(frame) = next else { break };
        match frame?.into_data() {
            Ok(data) => {
                ctx.write(data).await?;
                unflushed = true;
            }
            Err(frame) => {
                if let Ok(t) = frame.into_trailers() {
                    trailers.get_or_insert_with(HeaderMap::new).extend(t);
                }
            }
        }
    }
    Ok(trailers)
}
