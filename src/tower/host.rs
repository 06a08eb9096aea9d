//! [`TowerHost`]: a host we do not control (axum's `serve`, anything that
//! takes a listener and a `tower::Service`) as a [`Server`].

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::AppService;
use crate::application::{Application, BoxApplication};
use crate::context::HttpContext;
use crate::endpoint::{Endpoint, Listener};
use crate::error::{Error, Result};
use crate::feature::{ServerAddress, ServerAddresses};
use crate::features::Features;
use crate::server_trait::Server;

/// After the deadline, how long the host gets to notice its aborted requests
/// and end by itself before its task is aborted: 1 s.
const ABORT_GRACE: Duration = Duration::from_secs(1);

/// Completes when the [`TowerHost`] is asked to stop: hand it to the host's
/// graceful-shutdown hook (axum's `with_graceful_shutdown`).
pub struct Shutdown {
    stopping: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Shutdown")
    }
}

impl Future for Shutdown {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.stopping.as_mut().poll(cx)
    }
}

struct Running {
    /// Cancelled when the stop begins: every [`Shutdown`] completes.
    stopping: CancellationToken,
    /// Cancelled at the deadline: every in-flight request is aborted.
    abort: CancellationToken,
    /// One task per listener, each running the user's host.
    tasks: JoinSet<io::Result<()>>,
}

/// A [`Server`] made of any host that serves a `tower::Service` on a
/// `tokio::net::TcpListener` (axum's `serve`, a hyper-util accept loop): an
/// Application runs on hosts we do not control.
///
/// You give a function `(listener, service, shutdown) -> future`; on
/// [`start`](Server::start) the host binds each address (port 0 resolved),
/// publishes it in [`ServerAddresses`], and runs the function once per
/// listener in its own task, with the application as an [`AppService`].
///
/// On [`stop`](Server::stop): `shutdown` completes, so the host stops
/// accepting and lets in-flight requests finish; at the deadline, in-flight
/// requests are aborted (the application's future is dropped and the request
/// aborted, so the host drops their connections), the host gets 1 s to end,
/// and then its task is aborted. Dropping the stop future aborts the tasks at
/// once. `stop` returns the first I/O error a host task returned, if any.
///
/// | | |
/// |---|---|
/// | transports | TCP only (`http://` addresses); no unix sockets |
/// | features | whatever the host puts in request extensions and [`AppService`] carries over |
/// | HTTP versions | the host's |
///
/// # Limitations
///
/// Connections the host spawns itself and that never reach the application
/// (a client sending a request head very slowly) are the host's to time out;
/// aborting the host's task does not end them.
///
/// # Example
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use serverbridge::feature::ServerAddresses;
/// use serverbridge::tower::TowerHost;
/// use serverbridge::{HttpContext, Result, Server};
///
/// async fn hello(ctx: &mut HttpContext) -> Result<()> {
///     ctx.write("hello from axum::serve").await
/// }
///
/// let mut server = TowerHost::new(|listener, service, shutdown| async move {
///     let router = axum::Router::new().fallback_service(service.infallible());
///     axum::serve(listener, router).with_graceful_shutdown(shutdown).await
/// })
/// .bind("127.0.0.1:0".parse().unwrap());
/// server.start(Arc::new(hello)).await.unwrap();
/// let addresses = server.features().get::<ServerAddresses>().unwrap().urls();
/// assert!(addresses[0].starts_with("http://127.0.0.1:"));
/// server.stop(tokio::time::Instant::now() + std::time::Duration::from_secs(5)).await.unwrap();
/// # });
/// ```
pub struct TowerHost<F> {
    serve: F,
    endpoints: Vec<Endpoint>,
    features: Features,
    addresses: ServerAddresses,
    running: Option<Running>,
}

impl<F> fmt::Debug for TowerHost<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TowerHost")
            .field("endpoints", &self.endpoints)
            .field("addresses", &self.addresses.urls())
            .field("running", &self.running.is_some())
            .finish_non_exhaustive()
    }
}

impl<F, Fut> TowerHost<F>
where
    F: Fn(TcpListener, AppService, Shutdown) -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<()>> + Send + 'static,
{
    /// A server that runs `serve(listener, service, shutdown)` per listener.
    pub fn new(serve: F) -> Self {
        let addresses = ServerAddresses::default();
        let mut features = Features::new();
        features.insert(addresses.clone());
        TowerHost {
            serve,
            endpoints: Vec::new(),
            features,
            addresses,
            running: None,
        }
    }

    /// Listens on a TCP address (port 0 picks a free port). With no address
    /// at all, `start` listens on `127.0.0.1:5000`.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.endpoints.push(Endpoint::Tcp(addr));
        self
    }

    /// Serves an already-open TCP listener.
    pub fn listener(mut self, listener: std::net::TcpListener) -> Self {
        self.endpoints.push(Endpoint::TcpListener(listener));
        self
    }

    /// Listens on each address (what a [`Registry`](crate::host::Registry)
    /// factory receives).
    ///
    /// # Errors
    ///
    /// A configuration error for a unix path or a scheme other than `http`.
    pub fn bind_addresses(mut self, addresses: &[ServerAddress]) -> Result<Self> {
        for address in addresses {
            self.endpoints
                .push(Endpoint::tcp_from_address(address, "the tower host")?);
        }
        Ok(self)
    }
}

#[async_trait]
impl<F, Fut> Server for TowerHost<F>
where
    F: Fn(TcpListener, AppService, Shutdown) -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<()>> + Send + 'static,
{
    fn features(&self) -> &Features {
        &self.features
    }

    async fn start(&mut self, app: BoxApplication) -> Result<()> {
        if self.running.is_some() {
            return Err(Error::app_msg("the server is already running"));
        }
        if self.endpoints.is_empty() {
            self.endpoints
                .push(Endpoint::Tcp(SocketAddr::from(([127, 0, 0, 1], 5000))));
        }
        // Bind everything before running anything: a failed bind leaves no
        // task behind.
        let mut listeners = Vec::new();
        for endpoint in std::mem::take(&mut self.endpoints) {
            match endpoint.bind().await? {
                Listener::Tcp(listener, local) => listeners.push((local, listener)),
                Listener::Unix(..) => {
                    return Err(Error::config("the tower host listens on TCP only"))
                }
            }
        }
        let running = Running {
            stopping: CancellationToken::new(),
            abort: CancellationToken::new(),
            tasks: JoinSet::new(),
        };
        let app: BoxApplication = Arc::new(Abortable {
            inner: app,
            abort: running.abort.clone(),
        });
        let mut running = running;
        // Server-level features in every request's defaults layer.
        let mut server = Features::new();
        server.insert(self.addresses.clone());
        let server = Arc::new(server);
        for (local, listener) in listeners {
            self.addresses.push(ServerAddress::Tcp {
                scheme: "http".into(),
                addr: local,
            });
            tracing::debug!("bound http://{local}");
            let shutdown = Shutdown {
                stopping: Box::pin(running.stopping.clone().cancelled_owned()),
            };
            let host = (self.serve)(
                listener,
                AppService::from_arc(app.clone()).with_server_features(server.clone()),
                shutdown,
            );
            running.tasks.spawn(async move {
                let result = host.await;
                if let Err(err) = &result {
                    tracing::error!(error = %err, "the tower host on http://{local} failed");
                }
                result
            });
        }
        self.running = Some(running);
        Ok(())
    }

    async fn stop(&mut self, deadline: Instant) -> Result<()> {
        let Some(mut running) = self.running.take() else {
            return Ok(());
        };
        // Dropped before the end (a host's second signal): in-flight requests
        // are aborted here, and dropping `running.tasks` aborts the tasks.
        let abort_on_drop = running.abort.clone().drop_guard();
        running.stopping.cancel();
        let mut first_error = None;
        let finished =
            tokio::time::timeout_at(deadline, drain(&mut running.tasks, &mut first_error)).await;
        if finished.is_err() {
            tracing::info!("stop deadline reached: aborting in-flight requests");
            running.abort.cancel();
            let ended =
                tokio::time::timeout(ABORT_GRACE, drain(&mut running.tasks, &mut first_error))
                    .await;
            if ended.is_err() {
                tracing::info!("the tower host did not end: aborting its task");
                running.tasks.abort_all();
                drain(&mut running.tasks, &mut first_error).await;
            }
        }
        abort_on_drop.disarm();
        self.addresses.clear();
        first_error.map_or(Ok(()), Err)
    }
}

/// Waits for every task, keeping the first failure.
async fn drain(tasks: &mut JoinSet<io::Result<()>>, first_error: &mut Option<Error>) {
    while let Some(joined) = tasks.join_next().await {
        let failure = match joined {
            Ok(Ok(())) => continue,
            Ok(Err(err)) => Error::io(err),
            Err(err) if err.is_cancelled() => continue,
            Err(_) => Error::app_msg("the tower host panicked"),
        };
        first_error.get_or_insert(failure);
    }
}

/// The application, abortable at the stop deadline.
struct Abortable {
    inner: BoxApplication,
    abort: CancellationToken,
}

impl Application for Abortable {
    fn create_context(&self, features: Features) -> HttpContext {
        self.inner.create_context(features)
    }

    fn process_request<'a>(&'a self, ctx: &'a mut HttpContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            tokio::select! {
                biased;
                result = self.inner.process_request(ctx) => return result,
                () = self.abort.cancelled() => {}
            }
            ctx.abort();
            Err(Error::aborted("the server's stop deadline passed"))
        })
    }

    fn dispose_context(&self, ctx: &mut HttpContext, error: Option<&Error>) {
        self.inner.dispose_context(ctx, error);
    }
}
