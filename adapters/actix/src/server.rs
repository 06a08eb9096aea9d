//! [`ActixServer`]: the `Server` implementation.

use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{fn_service, ServerHandle};
use async_trait::async_trait;
use futures::future::BoxFuture;
use serverbridge::application::BoxApplication;
use serverbridge::endpoint::Endpoint;
use serverbridge::feature::{ServerAddress, ServerAddresses};
use serverbridge::tower::AppService;
use serverbridge::{Application, Error, Features, HttpContext, Result, Server};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::service::{self, Connection, Worker};

/// The default number of worker threads: 2.
pub const DEFAULT_WORKERS: usize = 2;

/// The default request body limit: 30,000,000 bytes (the built-in server's).
pub const DEFAULT_MAX_REQUEST_BODY_SIZE: u64 = 30_000_000;

/// After the deadline, how long in-flight requests get to notice they were
/// aborted before actix's workers are stopped by force: 1 s.
const ABORT_GRACE: Duration = Duration::from_secs(1);

/// How long a forced stop may take before `stop` gives up waiting for the
/// worker threads: 10 s (a forced stop drops everything at once, so this is
/// a safety net, not an expected wait).
const FORCE_PATIENCE: Duration = Duration::from_secs(10);

/// What runs while the server is started.
struct Running {
    /// actix's handle: `stop(true)` for the graceful stop.
    handle: ServerHandle,
    /// Sent (or dropped) to drop actix's server future: a forced stop.
    force: Option<oneshot::Sender<()>>,
    /// Cancelled at the deadline: in-flight applications are aborted.
    abort: CancellationToken,
    /// Closed when every worker's services are gone.
    alive: mpsc::Receiver<()>,
    /// Fires when the actix system thread has ended.
    /// `None` once it has fired: a stop's later wait must not poll it again
    /// (a oneshot panics when polled after it completed).
    finished: Option<oneshot::Receiver<()>>,
}

/// serverbridge's [`Server`] on actix-web 4: see the [crate docs](crate).
///
/// # Example
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use serverbridge::feature::ServerAddresses;
/// use serverbridge::{HttpContext, Result, Server};
/// use serverbridge_actix::ActixServer;
///
/// async fn hello(ctx: &mut HttpContext) -> Result<()> {
///     ctx.write("hello from actix-web").await
/// }
///
/// let mut server = ActixServer::new().workers(1).bind("127.0.0.1:0".parse().unwrap());
/// server.start(Arc::new(hello)).await.unwrap();
/// let urls = server.features().get::<ServerAddresses>().unwrap().urls();
/// assert!(urls[0].starts_with("http://127.0.0.1:") && !urls[0].ends_with(":0"));
/// server.stop(tokio::time::Instant::now() + std::time::Duration::from_secs(5)).await.unwrap();
/// # });
/// ```
pub struct ActixServer {
    endpoints: Vec<Endpoint>,
    workers: usize,
    keep_alive: Option<Duration>,
    max_request_body_size: Option<u64>,
    features: Features,
    addresses: ServerAddresses,
    running: Option<Running>,
}

impl fmt::Debug for ActixServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActixServer")
            .field("endpoints", &self.endpoints)
            .field("workers", &self.workers)
            .field("addresses", &self.addresses.urls())
            .field("running", &self.running.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for ActixServer {
    fn default() -> Self {
        ActixServer::new()
    }
}

impl ActixServer {
    /// A server with [`DEFAULT_WORKERS`] workers and no address yet (with
    /// none, `start` listens on `127.0.0.1:5000`).
    pub fn new() -> Self {
        let addresses = ServerAddresses::default();
        let mut features = Features::new();
        features.insert(addresses.clone());
        ActixServer {
            endpoints: Vec::new(),
            workers: DEFAULT_WORKERS,
            keep_alive: None,
            max_request_body_size: Some(DEFAULT_MAX_REQUEST_BODY_SIZE),
            features,
            addresses,
            running: None,
        }
    }

    /// Listens on a TCP address (port 0 picks a free port).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.endpoints.push(Endpoint::Tcp(addr));
        self
    }

    /// Serves an already-open TCP listener.
    pub fn listener(mut self, listener: std::net::TcpListener) -> Self {
        self.endpoints.push(Endpoint::TcpListener(listener));
        self
    }

    /// Listens on each address (what a
    /// [`Registry`](serverbridge::host::Registry) factory receives).
    ///
    /// # Errors
    ///
    /// A configuration error for a unix path or a scheme other than `http`.
    pub fn bind_addresses(mut self, addresses: &[ServerAddress]) -> Result<Self> {
        for address in addresses {
            self.endpoints
                .push(Endpoint::tcp_from_address(address, "the actix adapter")?);
        }
        Ok(self)
    }

    /// The number of actix worker threads, each a single-threaded runtime
    /// (default [`DEFAULT_WORKERS`]; at least 1).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// How long an idle keep-alive connection stays open (default: actix's,
    /// 5 s); `Duration::ZERO` turns keep-alive off.
    pub fn keep_alive(mut self, idle: Duration) -> Self {
        self.keep_alive = Some(idle);
        self
    }

    /// The request body limit in bytes, each request's
    /// [`MaxRequestBodySize`](serverbridge::feature::MaxRequestBodySize) (default [`DEFAULT_MAX_REQUEST_BODY_SIZE`];
    /// `None`: unlimited). Reading past it fails with `413`.
    pub fn max_request_body_size(mut self, limit: Option<u64>) -> Self {
        self.max_request_body_size = limit;
        self
    }

    /// The addresses the server listens on (empty until started).
    pub fn addresses(&self) -> &ServerAddresses {
        &self.addresses
    }
}

#[async_trait]
impl Server for ActixServer {
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
        // Bind here, before any thread starts: a failed bind leaves nothing
        // behind, and port 0 is resolved from the sockets themselves.
        let mut listeners = Vec::new();
        for endpoint in &self.endpoints {
            listeners.push(endpoint.bind_std_tcp()?);
        }
        let locals = listeners
            .iter()
            .map(std::net::TcpListener::local_addr)
            .collect::<std::io::Result<Vec<_>>>()?;

        let abort = CancellationToken::new();
        let mut server_features = Features::new();
        server_features.insert(self.addresses.clone());
        let service = AppService::from_arc(Arc::new(Adapted {
            inner: app,
            abort: abort.clone(),
        }))
        .with_server_features(Arc::new(server_features));
        let (alive_tx, alive) = mpsc::channel(1);
        let config = Config {
            workers: self.workers,
            keep_alive: self.keep_alive,
            max_request_body_size: self.max_request_body_size,
        };
        let (ready_tx, ready) = oneshot::channel();
        let (force, force_rx) = oneshot::channel();
        let (finished_tx, finished) = oneshot::channel();
        std::thread::Builder::new()
            .name("serverbridge-actix".into())
            .spawn(move || {
                run_system(config, listeners, service, alive_tx, ready_tx, force_rx);
                let _ = finished_tx.send(());
            })?;
        let handle = match ready.await {
            Ok(Ok(handle)) => handle,
            Ok(Err(err)) => return Err(Error::io(err)),
            Err(_) => return Err(Error::app_msg("the actix system thread ended at start")),
        };
        for local in locals {
            tracing::debug!("actix listening on http://{local}");
            self.addresses.push(ServerAddress::Tcp {
                scheme: "http".into(),
                addr: local,
            });
        }
        self.running = Some(Running {
            handle,
            force: Some(force),
            abort,
            alive,
            finished: Some(finished),
        });
        Ok(())
    }

    async fn stop(&mut self, deadline: Instant) -> Result<()> {
        let Some(mut running) = self.running.take() else {
            return Ok(());
        };
        // Dropped before the end (a host's second signal): the guard
        // aborts the applications and forces actix down.
        let mut forced = ForceOnDrop {
            abort: running.abort.clone(),
            force: running.force.take(),
        };
        // Actix stops accepting, closes idle connections, lets in-flight
        // ones finish (their connections close after the response).
        let graceful = running.handle.stop(true);
        let gone = tokio::time::timeout_at(deadline, async {
            graceful.await;
            all_gone(&mut running).await;
        })
        .await;
        if gone.is_err() {
            tracing::info!("stop deadline reached: aborting in-flight requests");
            running.abort.cancel();
            let ended = tokio::time::timeout(ABORT_GRACE, all_gone(&mut running)).await;
            if ended.is_err() {
                tracing::info!("actix did not finish: stopping its workers by force");
                forced.force_now();
                if tokio::time::timeout(FORCE_PATIENCE, all_gone(&mut running))
                    .await
                    .is_err()
                {
                    tracing::error!("actix's workers did not stop within {FORCE_PATIENCE:?}");
                }
            }
        }
        forced.force = None;
        self.addresses.clear();
        Ok(())
    }
}

impl Drop for ActixServer {
    /// A server dropped while running is stopped by force (without waiting).
    fn drop(&mut self) {
        if let Some(running) = &mut self.running {
            running.abort.cancel();
            if let Some(force) = running.force.take() {
                let _ = force.send(());
            }
        }
    }
}

/// Waits until the actix thread has ended and every worker is gone.
async fn all_gone(running: &mut Running) {
    if let Some(finished) = running.finished.as_mut() {
        let _ = finished.await;
        running.finished = None;
    }
    while running.alive.recv().await.is_some() {}
}

/// Forces actix down when dropped, unless disarmed.
struct ForceOnDrop {
    abort: CancellationToken,
    force: Option<oneshot::Sender<()>>,
}

impl ForceOnDrop {
    fn force_now(&mut self) {
        self.abort.cancel();
        if let Some(force) = self.force.take() {
            let _ = force.send(());
        }
    }
}

impl Drop for ForceOnDrop {
    fn drop(&mut self) {
        if self.force.is_some() {
            self.force_now();
        }
    }
}

/// The actix settings the system thread needs.
struct Config {
    workers: usize,
    keep_alive: Option<Duration>,
    max_request_body_size: Option<u64>,
}

/// The actix system thread: builds actix's server on the bound listeners,
/// reports its handle, and runs it until it ends or is forced down.
fn run_system(
    config: Config,
    listeners: Vec<std::net::TcpListener>,
    service: AppService,
    alive: mpsc::Sender<()>,
    ready: oneshot::Sender<std::io::Result<ServerHandle>>,
    force: oneshot::Receiver<()>,
) {
    let system = actix_rt::System::new();
    system.block_on(async move {
        let connections = Arc::new(AtomicU64::new(0));
        let limit = config.max_request_body_size;
        // Runs once per worker thread: everything it captures is `Send`;
        // what it builds (the `Rc<Worker>`) stays on that worker.
        let factory = move || {
            let worker = Rc::new(Worker {
                service: service.clone(),
                max_request_body_size: limit,
                pool: Arc::new(serverbridge::FeaturePool::default()),
                _alive: alive.clone(),
            });
            actix_web::App::new().default_service(fn_service(move |request| {
                service::handle(worker.clone(), request)
            }))
        };
        let mut server = actix_web::HttpServer::new(factory)
            .workers(config.workers)
            .disable_signals()
            // The deadline is ours (`stop`); actix's own limit only backs it.
            .shutdown_timeout(3600)
            // A client that closes its side (FIN) while the app runs is a
            // client that went away: actix then drops the request, and its
            // RequestLifetime fires. With half-closes allowed actix would
            // not tell the app at all.
            .h1_allow_half_closed(false)
            .on_connect(move |io, data| {
                let Some(stream) = io.downcast_ref::<actix_web::rt::net::TcpStream>() else {
                    return;
                };
                if let (Ok(local), Ok(peer)) = (stream.local_addr(), stream.peer_addr()) {
                    let id = connections.fetch_add(1, Ordering::Relaxed) + 1;
                    data.insert(Connection::new(id, local, peer));
                }
            });
        if let Some(idle) = config.keep_alive {
            server = server.keep_alive(if idle.is_zero() {
                actix_web::http::KeepAlive::Disabled
            } else {
                actix_web::http::KeepAlive::Timeout(idle)
            });
        }
        for listener in listeners {
            server = match server.listen(listener) {
                Ok(server) => server,
                Err(err) => {
                    let _ = ready.send(Err(err));
                    return;
                }
            };
        }
        let server = server.run();
        if ready.send(Ok(server.handle())).is_err() {
            return;
        }
        tokio::select! {
            result = server => {
                if let Err(err) = result {
                    tracing::error!(error = %err, "actix's server failed");
                }
            }
            // Sent or dropped: dropping actix's server future stops its
            // workers by force, connections and all.
            _ = force => {}
        }
    });
}

/// The application as the adapter runs it: abortable at the stop deadline.
/// (The request's collection, built by the worker, already holds only the
/// features actix can honour: no trailers either way.)
struct Adapted {
    inner: BoxApplication,
    abort: CancellationToken,
}

impl Application for Adapted {
    fn create_context(&self, features: Features) -> HttpContext {
        self.inner.create_context(features)
    }

    fn process_request<'a>(&'a self, ctx: &'a mut HttpContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            {
                let mut request = self.inner.process_request(ctx);
                // Most requests finish on their first poll: they never make
                // the stop's wait (a registration on the token's notify).
                if let std::task::Poll::Ready(result) = futures::poll!(request.as_mut()) {
                    return result;
                }
                tokio::select! {
                    biased;
                    result = request => return result,
                    () = self.abort.cancelled() => {}
                }
            }
            ctx.abort();
            Err(Error::aborted("the server's stop deadline passed"))
        })
    }

    fn dispose_context(&self, ctx: &mut HttpContext, error: Option<&Error>) {
        self.inner.dispose_context(ctx, error);
    }
}
