//! [`Application`]: what a server runs for each request.

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::context::HttpContext;
use crate::error::{Error, Result};
use crate::features::Features;

/// An HTTP application: the analogue of ASP.NET Core's `IHttpApplication`.
///
/// A server calls, per request: [`create_context`](Self::create_context) with
/// the features it built, [`process_request`](Self::process_request), then —
/// after the response is finished and the `on_completed` callbacks ran —
/// [`dispose_context`](Self::dispose_context) with the error, if any. Servers
/// do this through [`lifecycle::run_request`](crate::lifecycle::run_request),
/// so the order is the same on every server.
///
/// Any `async fn(&mut HttpContext) -> Result<()>` is an application:
///
/// ```
/// use serverbridge::{Application, HttpContext, Result};
///
/// async fn hello(ctx: &mut HttpContext) -> Result<()> {
///     ctx.write("hello").await
/// }
///
/// fn assert_app(_: impl Application) {}
/// assert_app(hello);
/// ```
///
/// # Why the context type is fixed
///
/// ASP.NET's `IHttpApplication<TContext>` lets the host pick its context type.
/// Here the context is always [`HttpContext`]: a generic context would make
/// [`Server::start`](crate::Server::start) generic and so not object-safe, and
/// per-request state an application needs can live in the features (typed),
/// which is what ASP.NET's hosting context holds anyway.
pub trait Application: Send + Sync + 'static {
    /// Wraps the server's features in a context. The default is
    /// [`HttpContext::new`]; hosts override it to add per-request state.
    fn create_context(&self, features: Features) -> HttpContext {
        HttpContext::new(features)
    }

    /// Handles the request.
    fn process_request<'a>(&'a self, ctx: &'a mut HttpContext) -> BoxFuture<'a, Result<()>>;

    /// Called once the response is finished, with the error that ended the
    /// request (the app's, or the server's), if any. The default does nothing.
    fn dispose_context(&self, ctx: &mut HttpContext, error: Option<&Error>) {
        let _ = (ctx, error);
    }
}

/// A shared, type-erased application, what [`Server::start`](crate::Server::start) takes.
pub type BoxApplication = Arc<dyn Application>;

/// The higher-ranked shape of `async fn(&mut HttpContext) -> Result<()>`: the
/// returned future may borrow the context. Implemented for every such
/// function; not meant to be implemented by hand.
pub trait HandlerFn<'a>: Send + Sync + 'static {
    /// The future the function returns.
    type Future: Future<Output = Result<()>> + Send + 'a;
    /// Calls the function.
    fn call(&self, ctx: &'a mut HttpContext) -> Self::Future;
}

impl<'a, F, Fut> HandlerFn<'a> for F
where
    F: Fn(&'a mut HttpContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'a,
{
    type Future = Fut;
    fn call(&self, ctx: &'a mut HttpContext) -> Fut {
        self(ctx)
    }
}

impl<F> Application for F
where
    F: for<'a> HandlerFn<'a>,
{
    fn process_request<'a>(&'a self, ctx: &'a mut HttpContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(HandlerFn::call(self, ctx))
    }
}

impl<A: Application + ?Sized> Application for Arc<A> {
    fn create_context(&self, features: Features) -> HttpContext {
        (**self).create_context(features)
    }
    fn process_request<'a>(&'a self, ctx: &'a mut HttpContext) -> BoxFuture<'a, Result<()>> {
        (**self).process_request(ctx)
    }
    fn dispose_context(&self, ctx: &mut HttpContext, error: Option<&Error>) {
        (**self).dispose_context(ctx, error)
    }
}

/// Wraps a closure that returns a boxed future as an application, for when an
/// `async fn` item is not convenient:
///
/// ```
/// use serverbridge::application::from_fn;
///
/// let greeting = String::from("hi");
/// let app = from_fn(move |ctx| {
///     let greeting = greeting.clone();
///     Box::pin(async move { ctx.write(greeting).await })
/// });
/// # fn assert_app(_: impl serverbridge::Application) {}
/// assert_app(app);
/// ```
pub fn from_fn<F>(f: F) -> FromFn<F>
where
    F: for<'a> Fn(&'a mut HttpContext) -> BoxFuture<'a, Result<()>> + Send + Sync + 'static,
{
    FromFn(f)
}

/// See [`from_fn`].
#[derive(Clone)]
pub struct FromFn<F>(F);

impl<F> std::fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FromFn")
    }
}

impl<F> Application for FromFn<F>
where
    F: for<'a> Fn(&'a mut HttpContext) -> BoxFuture<'a, Result<()>> + Send + Sync + 'static,
{
    fn process_request<'a>(&'a self, ctx: &'a mut HttpContext) -> BoxFuture<'a, Result<()>> {
        (self.0)(ctx)
    }
}
