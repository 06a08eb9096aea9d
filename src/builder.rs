//! [`Builder`]: a middleware pipeline ending in an application.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use ::tower::Layer;
use futures::future::BoxFuture;

use crate::application::{Application, BoxApplication};
use crate::context::HttpContext;
use crate::error::{Error, Result};
use crate::features::Features;
use crate::tower::{AppService, HttpService, LayerApp};

/// The rest of the pipeline, handed to a middleware: call
/// [`run`](Next::run) to continue, or don't, to short-circuit.
#[derive(Clone, Copy)]
pub struct Next<'a> {
    app: &'a dyn Application,
}

impl fmt::Debug for Next<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Next")
    }
}

impl<'a> Next<'a> {
    /// Wraps an application as the rest of a pipeline.
    pub fn new(app: &'a dyn Application) -> Self {
        Next { app }
    }

    /// Runs the rest of the pipeline.
    pub fn run<'b>(self, ctx: &'b mut HttpContext) -> BoxFuture<'b, Result<()>>
    where
        'a: 'b,
    {
        self.app.process_request(ctx)
    }
}

/// A middleware: `async fn(&mut HttpContext, Next<'_>) -> Result<()>`.
/// Implemented for every such function; implement it by hand for a
/// middleware with state.
pub trait Middleware: Send + Sync + 'static {
    /// Handles the request, calling `next` to continue the pipeline.
    fn call<'a>(&'a self, ctx: &'a mut HttpContext, next: Next<'a>) -> BoxFuture<'a, Result<()>>;
}

/// The higher-ranked shape of a middleware function; not implemented by hand.
pub trait MiddlewareFn<'a>: Send + Sync + 'static {
    /// The returned future.
    type Future: Future<Output = Result<()>> + Send + 'a;
    /// Calls the function.
    fn call(&self, ctx: &'a mut HttpContext, next: Next<'a>) -> Self::Future;
}

impl<'a, F, Fut> MiddlewareFn<'a> for F
where
    F: Fn(&'a mut HttpContext, Next<'a>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'a,
{
    type Future = Fut;
    fn call(&self, ctx: &'a mut HttpContext, next: Next<'a>) -> Fut {
        self(ctx, next)
    }
}

impl<F> Middleware for F
where
    F: for<'a> MiddlewareFn<'a>,
{
    fn call<'a>(&'a self, ctx: &'a mut HttpContext, next: Next<'a>) -> BoxFuture<'a, Result<()>> {
        Box::pin(MiddlewareFn::call(self, ctx, next))
    }
}

struct MiddlewareApp<M> {
    middleware: M,
    next: BoxApplication,
}

// A pipeline's context is its final application's: `create_context` and
// `dispose_context` pass through every component to it (SPEC §9).
impl<M: Middleware> Application for MiddlewareApp<M> {
    fn create_context(&self, features: Features) -> HttpContext {
        self.next.create_context(features)
    }

    fn process_request<'a>(&'a self, ctx: &'a mut HttpContext) -> BoxFuture<'a, Result<()>> {
        self.middleware.call(ctx, Next::new(&*self.next))
    }

    fn dispose_context(&self, ctx: &mut HttpContext, error: Option<&Error>) {
        self.next.dispose_context(ctx, error);
    }
}

struct MapApp {
    prefix: String,
    branch: BoxApplication,
    next: BoxApplication,
}

/// The rest of `path` after `prefix`, if `prefix` matches whole segments:
/// `/api` matches `/api` (rest `""`) and `/api/x` (rest `/x`), not `/apix`.
fn strip_segments<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

impl Application for MapApp {
    /// The main pipeline's: a branch is chosen only once the request runs.
    fn create_context(&self, features: Features) -> HttpContext {
        self.next.create_context(features)
    }

    fn dispose_context(&self, ctx: &mut HttpContext, error: Option<&Error>) {
        self.next.dispose_context(ctx, error);
    }

    fn process_request<'a>(&'a self, ctx: &'a mut HttpContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let request = ctx.request_mut();
            let Some(rest) = strip_segments(&request.path, &self.prefix) else {
                return self.next.process_request(ctx).await;
            };
            let rest = rest.to_owned();
            let base = request.path_base.clone();
            let path = std::mem::replace(&mut request.path, rest);
            request.path_base.push_str(&self.prefix);
            // Restored on the way out, on error too, and when the branch's
            // future is dropped (a timeout around the map): middleware
            // outside the branch sees the request as it was (ASP.NET's
            // `MapMiddleware` does the same).
            let restore = Restore { ctx, base, path };
            self.branch.process_request(&mut *restore.ctx).await
        })
    }
}

/// Puts `path_base` and `path` back when dropped.
struct Restore<'a> {
    ctx: &'a mut HttpContext,
    base: String,
    path: String,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        if let Some(request) = self
            .ctx
            .features_mut()
            .get_mut::<crate::feature::RequestFeature>()
        {
            request.path_base = std::mem::take(&mut self.base);
            request.path = std::mem::take(&mut self.path);
        }
    }
}

type Component = Box<dyn FnOnce(BoxApplication) -> BoxApplication + Send>;

/// Builds a pipeline: middleware in the order added, ending in an
/// application (the analogue of `IApplicationBuilder`).
///
/// # Example
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use serverbridge::testing::TestServer;
/// use serverbridge::{Builder, HttpContext, Next, Result};
///
/// async fn deny_admin(ctx: &mut HttpContext, next: Next<'_>) -> Result<()> {
///     if ctx.request().path.starts_with("/admin") {
///         ctx.response_mut().status = http::StatusCode::FORBIDDEN;
///         return Ok(()); // short-circuit: `next` never runs
///     }
///     next.run(ctx).await
/// }
///
/// async fn api(ctx: &mut HttpContext) -> Result<()> {
///     let text = format!("base={} path={}", ctx.request().path_base, ctx.request().path);
///     ctx.write(text).await
/// }
///
/// async fn fallback(ctx: &mut HttpContext) -> Result<()> {
///     ctx.write("fallback").await
/// }
///
/// let app = Builder::new()
///     .use_fn(deny_admin)
///     .map("/api", |branch| branch.run(api))
///     .run(fallback);
/// let server = TestServer::new(app);
/// assert_eq!(server.get("/admin").send().await.unwrap().status(), 403);
/// assert_eq!(server.get("/api/users").send().await.unwrap().text().await.unwrap(), "base=/api path=/users");
/// assert_eq!(server.get("/apix").send().await.unwrap().text().await.unwrap(), "fallback");
/// # });
/// ```
#[derive(Default)]
pub struct Builder {
    components: Vec<Component>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("components", &self.components.len())
            .finish()
    }
}

impl Builder {
    /// An empty pipeline.
    pub fn new() -> Self {
        Builder::default()
    }

    /// Adds a middleware.
    pub fn use_fn(mut self, middleware: impl Middleware) -> Self {
        self.components.push(Box::new(move |next| {
            Arc::new(MiddlewareApp { middleware, next })
        }));
        self
    }

    /// Adds any `tower::Layer` (tower-http's, say). The rest of the pipeline
    /// becomes a `tower::Service` for the layer to wrap, and the wrapped
    /// service becomes an application again; the request's features travel
    /// through the layer, so middleware on both sides share them.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<AppService> + Send + 'static,
        L::Service: HttpService,
    {
        self.components.push(Box::new(move |next| {
            let service = layer.layer(AppService::from_arc(next.clone()));
            Arc::new(LayerApp::new(service, next))
        }));
        self
    }

    /// Branches on a path prefix: requests whose path starts with `prefix` on
    /// a segment boundary run the branch built by `configure`, with the
    /// prefix moved from `path` to `path_base` (restored afterwards); others
    /// continue down this pipeline.
    ///
    /// # Panics
    ///
    /// If `prefix` does not start with `/` or ends with `/`.
    pub fn map(
        mut self,
        prefix: &str,
        configure: impl FnOnce(Builder) -> BoxApplication + Send + 'static,
    ) -> Self {
        assert!(
            prefix.starts_with('/') && !prefix.ends_with('/'),
            "a map prefix starts with '/' and does not end with '/': {prefix:?}"
        );
        let prefix = prefix.to_owned();
        self.components.push(Box::new(move |next| {
            Arc::new(MapApp {
                prefix,
                branch: configure(Builder::new()),
                next,
            })
        }));
        self
    }

    /// Ends the pipeline with `app` and returns the whole as one application.
    pub fn run(self, app: impl Application) -> BoxApplication {
        let mut app: BoxApplication = Arc::new(app);
        for component in self.components.into_iter().rev() {
            app = component(app);
        }
        app
    }
}

#[cfg(test)]
mod tests {
    use super::strip_segments;

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        assert_eq!(strip_segments("/api", "/api"), Some(""));
        assert_eq!(strip_segments("/api/", "/api"), Some("/"));
        assert_eq!(strip_segments("/api/x/y", "/api"), Some("/x/y"));
        assert_eq!(strip_segments("/apix", "/api"), None);
        assert_eq!(strip_segments("/ap", "/api"), None);
        assert_eq!(strip_segments("/API", "/api"), None);
    }
}
