//! `AppFunc`, OWIN middleware, and the bridges between the two worlds.

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::Environment;
use crate::application::Application;
use crate::context::HttpContext;
use crate::error::{Error, Result};
use crate::lifecycle::run_request;

/// An OWIN application: an async function of the environment. Implemented for
/// every `async fn(&mut Environment) -> Result<()>`.
pub trait AppFunc: Send + Sync + 'static {
    /// Handles the request.
    fn call<'a>(&'a self, env: &'a mut Environment) -> BoxFuture<'a, Result<()>>;
}

/// A shared, type-erased [`AppFunc`].
pub type BoxAppFunc = Arc<dyn AppFunc>;

/// OWIN middleware: maps the next `AppFunc` to a new one.
pub type OwinMiddleware = Box<dyn FnOnce(BoxAppFunc) -> BoxAppFunc + Send>;

/// The higher-ranked shape of `async fn(&mut Environment) -> Result<()>`; not
/// implemented by hand.
pub trait AppFuncFn<'a>: Send + Sync + 'static {
    /// The returned future.
    type Future: Future<Output = Result<()>> + Send + 'a;
    /// Calls the function.
    fn call(&self, env: &'a mut Environment) -> Self::Future;
}

impl<'a, F, Fut> AppFuncFn<'a> for F
where
    F: Fn(&'a mut Environment) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'a,
{
    type Future = Fut;
    fn call(&self, env: &'a mut Environment) -> Fut {
        self(env)
    }
}

impl<F> AppFunc for F
where
    F: for<'a> AppFuncFn<'a>,
{
    fn call<'a>(&'a self, env: &'a mut Environment) -> BoxFuture<'a, Result<()>> {
        Box::pin(AppFuncFn::call(self, env))
    }
}

impl<A: AppFunc + ?Sized> AppFunc for Arc<A> {
    fn call<'a>(&'a self, env: &'a mut Environment) -> BoxFuture<'a, Result<()>> {
        (**self).call(env)
    }
}

/// Wraps a closure returning a boxed future as an [`AppFunc`] (for OWIN
/// middleware that captures `next`).
///
/// ```
/// use serverbridge::owin::{app_func, compose, keys, BoxAppFunc, Environment, OwinMiddleware};
///
/// fn add_header(next: BoxAppFunc) -> BoxAppFunc {
///     std::sync::Arc::new(app_func(move |env: &mut Environment| {
///         let next = next.clone();
///         Box::pin(async move {
///             env.headers_mut(keys::RESPONSE_HEADERS).unwrap().insert("x-owin", "1".parse().unwrap());
///             next.call(env).await
///         })
///     }))
/// }
///
/// async fn end(env: &mut Environment) -> serverbridge::Result<()> { env.write("ok").await }
///
/// let middleware: Vec<OwinMiddleware> = vec![Box::new(add_header)];
/// let app = compose(middleware, std::sync::Arc::new(end));
/// # let _ = app;
/// ```
pub fn app_func<F>(f: F) -> impl AppFunc
where
    F: for<'a> Fn(&'a mut Environment) -> BoxFuture<'a, Result<()>> + Send + Sync + 'static,
{
    struct FnAppFunc<F>(F);
    impl<F> AppFunc for FnAppFunc<F>
    where
        F: for<'a> Fn(&'a mut Environment) -> BoxFuture<'a, Result<()>> + Send + Sync + 'static,
    {
        fn call<'a>(&'a self, env: &'a mut Environment) -> BoxFuture<'a, Result<()>> {
            (self.0)(env)
        }
    }
    FnAppFunc(f)
}

/// Builds an OWIN pipeline: the first middleware is the outermost.
pub fn compose(
    middleware: impl IntoIterator<Item = OwinMiddleware>,
    app: BoxAppFunc,
) -> BoxAppFunc {
    let middleware: Vec<OwinMiddleware> = middleware.into_iter().collect();
    middleware
        .into_iter()
        .rev()
        .fold(app, |next, layer| layer(next))
}

/// Runs an [`AppFunc`] as an [`Application`] on any server: the environment
/// is a live view over the server's features (no copy). Unknown keys the
/// `AppFunc` sets stay in the [`Extras`](super::Extras) feature.
pub struct OwinApp<F> {
    app: F,
}

impl<F> std::fmt::Debug for OwinApp<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OwinApp")
    }
}

impl<F: AppFunc> OwinApp<F> {
    /// Wraps an `AppFunc`.
    pub fn new(app: F) -> Self {
        OwinApp { app }
    }
}

impl<F: AppFunc> Application for OwinApp<F> {
    fn process_request<'a>(&'a self, ctx: &'a mut HttpContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let env = Environment::from_context(std::mem::take(ctx));
            let mut lent = Lent { slot: ctx, env };
            let outcome = std::panic::AssertUnwindSafe(self.app.call(&mut lent.env))
                .catch_unwind()
                .await;
            // Put the context back before anything else, a panic included, so
            // the server can still answer (500) or abort.
            drop(lent);
            match outcome {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }
}

/// The context, lent to an environment: back in its slot when dropped,
/// also when the `OwinApp`'s future is dropped mid-call (a timeout around
/// it), so the middleware outside finds the request where it left it.
struct Lent<'a> {
    slot: &'a mut HttpContext,
    env: Environment,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        *self.slot = std::mem::take(self.env.context_mut());
    }
}

/// Runs a feature-based [`Application`] as an [`AppFunc`] inside an OWIN
/// pipeline: it sees the environment's features as its context. The host
/// running the pipeline owns the lifecycle (head, completion).
pub struct FeatureAppFunc<A> {
    app: A,
}

impl<A> std::fmt::Debug for FeatureAppFunc<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FeatureAppFunc")
    }
}

impl<A: Application> FeatureAppFunc<A> {
    /// Wraps an application.
    pub fn new(app: A) -> Self {
        FeatureAppFunc { app }
    }
}

impl<A: Application> AppFunc for FeatureAppFunc<A> {
    fn call<'a>(&'a self, env: &'a mut Environment) -> BoxFuture<'a, Result<()>> {
        self.app.process_request(env.context_mut())
    }
}

/// Runs a feature-based application's whole lifecycle where only an
/// environment exists (a host that speaks OWIN): the request comes from the
/// environment's keys, the response goes to its `owin.ResponseBody` sink, and
/// afterwards the response keys hold what was sent. Unknown keys survive.
///
/// Fails with [`Error::is_contract`] if the environment has no
/// `owin.ResponseBody`; otherwise returns the error that ended the request
/// (the response already reflects it: a 500, or an abort).
pub async fn run_application<A>(app: &A, env: &mut Environment) -> Result<()>
where
    A: Application + ?Sized,
{
    if !env.contains_key(super::keys::RESPONSE_BODY) {
        return Err(Error::contract(
            "server.required-features",
            "the environment has no owin.ResponseBody",
        ));
    }
    let features = std::mem::take(env.context_mut()).into_features();
    let outcome = run_request(app, features).await;
    let mut ctx = HttpContext::new(outcome.features);
    // The response is finished (sent or aborted): refuse writes after it.
    ctx.mark_completed();
    *env.context_mut() = ctx;
    outcome.error.map_or(Ok(()), Err)
}
