//! [`Server`]: what every server implements.

use async_trait::async_trait;
use tokio::time::Instant;

use crate::application::BoxApplication;
use crate::error::Result;
use crate::features::Features;

/// An HTTP server: the analogue of ASP.NET Core's `IServer`.
///
/// Object-safe, so the server can be chosen at run time as a
/// `Box<dyn Server>`.
///
/// - [`features`](Self::features): server-level features, such as
///   [`ServerAddresses`](crate::feature::ServerAddresses); servers put them in
///   the defaults layer of every request's features.
/// - [`start`](Self::start) binds, starts feeding requests to the app through
///   [`lifecycle::run_request`](crate::lifecycle::run_request), and returns
///   once it is accepting (it does not wait for the server to end). After it
///   returns, the server-level features show the real addresses (port 0
///   resolved).
/// - [`stop`](Self::stop) stops accepting, lets in-flight requests finish
///   until `deadline`, then aborts the rest; it returns when every connection
///   is gone.
///
/// # Servers that are not `Send` inside, or not async
///
/// The trait's futures are `Send`, but what a server runs behind them need not
/// be: a server whose workers run `!Send` futures (actix-web) starts its own
/// threads inside `start` and talks to them through channels and handles that
/// are `Send`; a blocking server (tiny_http) runs a pool of threads inside
/// `start` and drives each request's async lifecycle with a small executor on
/// the worker thread. SPEC.md describes both.
///
/// # Example
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use serverbridge::testing::TestServer;
/// use serverbridge::{HttpContext, Result, Server};
///
/// async fn hello(ctx: &mut HttpContext) -> Result<()> {
///     ctx.write("hi").await
/// }
///
/// // Chosen at run time: any server works as a `Box<dyn Server>`.
/// let mut server: Box<dyn Server> = Box::new(TestServer::unstarted());
/// server.start(Arc::new(hello)).await.unwrap();
/// server.stop(tokio::time::Instant::now()).await.unwrap();
/// # });
/// ```
#[async_trait]
pub trait Server: Send {
    /// Server-level features.
    fn features(&self) -> &Features;

    /// Starts serving `app`.
    async fn start(&mut self, app: BoxApplication) -> Result<()>;

    /// Stops gracefully until `deadline`, then aborts what remains.
    ///
    /// A server should treat this future being dropped before it ends as
    /// "abort what remains now": the [`Host`](crate::host::Host) does that
    /// on a second SIGINT/SIGTERM.
    async fn stop(&mut self, deadline: Instant) -> Result<()>;
}

#[async_trait]
impl<S: Server + ?Sized> Server for Box<S> {
    fn features(&self) -> &Features {
        (**self).features()
    }
    async fn start(&mut self, app: BoxApplication) -> Result<()> {
        (**self).start(app).await
    }
    async fn stop(&mut self, deadline: Instant) -> Result<()> {
        (**self).stop(deadline).await
    }
}
