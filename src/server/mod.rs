//! The built-in HTTP/1.1 server (feature `server`, on by default): the
//! Kestrel analogue.
//!
//! Strict by default (RFC 9112: ambiguous framing is rejected, never
//! guessed), with Kestrel's limits and timeouts ([`Limits`]). The protocol
//! engine is generic over any `AsyncRead + AsyncWrite` transport; sockets
//! exist only at the edge ([`HttpServer`]).
//!
//! Split by concern: `parse` (request head), `decode` (request bodies),
//! `io` (buffered connection I/O, request body, upgrade), `sink` (the
//! `ResponseBody` feature), `conn` (the connection state machine); response
//! heads, chunks and the cached `Date` come from [`crate::http1`], shared
//! with adapters that frame responses themselves.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use serverbridge::server::HttpServer;
//! use serverbridge::{HttpContext, Result, Server};
//!
//! async fn hello(ctx: &mut HttpContext) -> Result<()> {
//!     ctx.write("Hello, World!").await
//! }
//!
//! # async fn run() -> Result<()> {
//! let mut server = HttpServer::new().bind("127.0.0.1:0".parse().unwrap());
//! server.start(Arc::new(hello)).await?;
//! println!("listening on {:?}", server.addresses().urls());
//! server.stop(tokio::time::Instant::now() + std::time::Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```

mod conn;
mod decode;
mod io;
mod limits;
mod parse;
mod sink;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use crate::application::BoxApplication;
use crate::endpoint::{Endpoint, Listener};
use crate::error::{Error, Result};
use crate::feature::{Address, ConnectionInfo, ServerAddress, ServerAddresses};
use crate::features::Features;
use crate::server_trait::Server;
pub use limits::Limits;

struct Running {
    config: Arc<conn::ConnConfig>,
    run: Run,
}

/// One run of a server, as its connections share it: the graceful stop,
/// the hard stop at the deadline, and the tracker `stop` waits on (the
/// connections, and the upgraded connections apps still hold).
/// TestServer's wire mode serves its in-memory connections under one, so
/// its `stop` treats them as the built-in server's treats its own.
#[derive(Clone, Default)]
pub(crate) struct Run {
    stopping: conn::StopSignal,
    abort: tokio_util::sync::CancellationToken,
    tracker: TaskTracker,
}

impl Run {
    /// A connection configuration under this run.
    fn config(&self, limits: Limits, server: Arc<Features>) -> conn::ConnConfig {
        let mut config = conn::ConnConfig::new(limits, server);
        config.stopping = self.stopping.clone();
        config.abort = self.abort.clone();
        config.tracker = self.tracker.clone();
        config
    }

    /// Serves one connection under this run; see
    /// [`HttpServer::serve_connection_with`].
    fn serve<T>(
        &self,
        io: T,
        connection: Features,
        app: BoxApplication,
        limits: Limits,
    ) -> impl std::future::Future<Output = ()> + Send + 'static
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        // A defaults layer the caller gave (server-level features) stays the
        // connection's defaults layer.
        let server = connection.defaults().cloned().unwrap_or_default();
        let config = Arc::new(self.config(limits, server));
        conn::serve(io, connection, app, config)
    }

    /// [`serve`](Self::serve) in a task `stop` waits for.
    #[cfg(feature = "test-util")]
    pub(crate) fn spawn_connection<T>(
        &self,
        io: T,
        connection: Features,
        app: BoxApplication,
        limits: Limits,
    ) where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        self.tracker.spawn(self.serve(io, connection, app, limits));
    }

    /// Whether a stop has begun.
    #[cfg(feature = "test-util")]
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Begins the graceful stop: idle connections close, the responses in
    /// flight say `Connection: close`, nothing new is tracked.
    pub(crate) fn begin_stop(&self) {
        self.stopping.cancel();
        self.tracker.close();
    }

    /// Resolves when every tracked task has ended (after [`begin_stop`](Self::begin_stop)).
    pub(crate) async fn ended(&self) {
        self.tracker.wait().await;
    }

    /// The hard stop: every connection is dropped.
    pub(crate) fn abort(&self) {
        self.abort.cancel();
    }

    /// Aborts when dropped, unless disarmed: a stop dropped before it ends
    /// (a host's second signal) leaves nothing running.
    pub(crate) fn abort_on_drop(&self) -> tokio_util::sync::DropGuard {
        self.abort.clone().drop_guard()
    }
}

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// `at` plus `wait`, for a deadline: a setting too large for the clock
/// (`Duration::MAX`, which Kestrel users write for "no timeout"; a host's
/// `--shutdown-timeout 1e19`) means a deadline 30 years away, never an
/// overflow that panics.
pub(crate) fn after(at: tokio::time::Instant, wait: std::time::Duration) -> tokio::time::Instant {
    const FAR: std::time::Duration = std::time::Duration::from_secs(30 * 365 * 24 * 60 * 60);
    at.checked_add(wait.min(FAR))
        .unwrap_or_else(|| at + std::time::Duration::from_secs(60 * 60))
}

/// Connection ids: a process-wide counter, base 32 like Kestrel's.
fn connection_id() -> String {
    const DIGITS: &[u8; 32] = b"0123456789ABCDEFGHIJKLMNOPQRSTUV";
    let mut n = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
    let mut id = [b'0'; 13];
    for slot in id.iter_mut().rev() {
        *slot = DIGITS[(n & 31) as usize];
        n >>= 5;
    }
    String::from_utf8_lossy(&id).into_owned()
}

/// The built-in HTTP/1.1 server; see the [module docs](self).
pub struct HttpServer {
    endpoints: Vec<Endpoint>,
    limits: Limits,
    features: Features,
    addresses: ServerAddresses,
    running: Option<Running>,
}

impl fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpServer")
            .field("endpoints", &self.endpoints)
            .field("addresses", &self.addresses.urls())
            .field("running", &self.running.is_some())
            .finish()
    }
}

impl Default for HttpServer {
    fn default() -> Self {
        HttpServer::new()
    }
}

impl HttpServer {
    /// A server with no endpoint yet and default [`Limits`].
    pub fn new() -> Self {
        let addresses = ServerAddresses::default();
        let mut features = Features::new();
        features.insert(addresses.clone());
        HttpServer {
            endpoints: Vec::new(),
            limits: Limits::default(),
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

    /// Listens on a unix domain socket path (a stale socket file is replaced).
    pub fn bind_unix(mut self, path: impl Into<PathBuf>) -> Self {
        self.endpoints.push(Endpoint::Unix(path.into()));
        self
    }

    /// Serves an already-open TCP listener (socket activation, tests).
    pub fn listener(mut self, listener: std::net::TcpListener) -> Self {
        self.endpoints.push(Endpoint::TcpListener(listener));
        self
    }

    /// Serves an already-open unix listener.
    pub fn unix_listener(mut self, listener: std::os::unix::net::UnixListener) -> Self {
        self.endpoints.push(Endpoint::UnixListener(listener));
        self
    }

    /// Adds endpoints from `;`-separated URLs: `http://127.0.0.1:5000`,
    /// `http://[::1]:0`, `unix:/run/app.sock` (the forms of
    /// [`ServerAddress::parse_list`]).
    ///
    /// # Errors
    ///
    /// A malformed URL: a configuration error ([`Error::is_config`]) naming
    /// the accepted forms.
    pub fn urls(self, urls: &str) -> Result<Self> {
        self.bind_addresses(&ServerAddress::parse_list(urls)?)
    }

    /// Adds one endpoint per address: [`ServerAddress::Tcp`] with the `http`
    /// scheme binds TCP, [`ServerAddress::Unix`] a unix socket. This is how
    /// the [`Host`](crate::host::Host) registry builds the server.
    ///
    /// # Errors
    ///
    /// A configuration error for a scheme other than `http` (there is no
    /// built-in TLS).
    pub fn bind_addresses(mut self, addresses: &[ServerAddress]) -> Result<Self> {
        for address in addresses {
            self.endpoints
                .push(Endpoint::from_address(address, "the built-in server")?);
        }
        Ok(self)
    }

    /// Sets the limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The bound addresses (after [`Server::start`]).
    pub fn addresses(&self) -> &ServerAddresses {
        &self.addresses
    }

    /// Serves one connection on any transport with this server's limits;
    /// returns when the connection ends. The in-memory TestServer and tests use
    /// this; sockets go through [`Server::start`].
    pub async fn serve_connection<T>(
        io: T,
        info: ConnectionInfo,
        app: BoxApplication,
        limits: Limits,
    ) where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let mut connection = Features::new();
        connection.insert(info);
        HttpServer::serve_connection_with(io, connection, app, limits).await;
    }

    /// As [`serve_connection`](Self::serve_connection), with the
    /// connection-level features given whole ([`ConnectionInfo`], and
    /// [`TlsInfo`](crate::feature::TlsInfo) for a connection that arrived over
    /// TLS: requests then have the `https` scheme). They form the defaults
    /// layer of every request on the connection; their own defaults layer, if
    /// any, is kept below them (server-level features).
    pub async fn serve_connection_with<T>(
        io: T,
        connection: Features,
        app: BoxApplication,
        limits: Limits,
    ) where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        // A run of its own: nothing stops it but the connection's end.
        Run::default().serve(io, connection, app, limits).await;
    }
}

/// A connection's read and write halves, and its local and peer addresses.
type Accepted = (io::BoxRead, io::BoxWrite, Option<Address>, Option<Address>);

/// The next connection on `listener`, with its local and peer addresses.
async fn accept(listener: &Listener) -> std::io::Result<Accepted> {
    match listener {
        Listener::Tcp(listener, local) => {
            let (stream, peer) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            // Owned halves: reads and writes take no lock, as the halves of
            // a generic transport must.
            let (read, write) = stream.into_split();
            Ok((
                Box::new(read),
                Box::new(write),
                Some(Address::Tcp(*local)),
                Some(Address::Tcp(peer)),
            ))
        }
        Listener::Unix(listener, path) => {
            let (stream, _) = listener.accept().await?;
            let (read, write) = stream.into_split();
            Ok((
                Box::new(read),
                Box::new(write),
                Some(Address::Unix(Some(path.clone()))),
                Some(Address::Unix(None)),
            ))
        }
    }
}

fn spawn_accept(
    running: &Running,
    app: BoxApplication,
    limit: Option<Arc<Semaphore>>,
    listener: Listener,
) {
    let config = running.config.clone();
    let tracker = running.run.tracker.clone();
    running.run.tracker.spawn(async move {
        loop {
            let accepted = tokio::select! {
                biased;
                _ = config.stopping.cancelled() => break,
                accepted = accept(&listener) => accepted,
            };
            let (read, write, local, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::debug!(error = %err, "accept failed");
                    // Out of descriptors and the like: do not spin.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let permit = match &limit {
                Some(limit) => match limit.clone().try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    Err(_) => {
                        tracing::debug!("connection limit reached: closing at accept");
                        continue;
                    }
                },
                None => None,
            };
            let mut connection = Features::with_capacity(1, None);
            connection.insert(ConnectionInfo {
                id: connection_id(),
                local,
                peer,
            });
            let app = app.clone();
            let config = config.clone();
            tracker.spawn(async move {
                conn::serve_halves(read, write, connection, app, config).await;
                drop(permit);
            });
        }
        if let Listener::Unix(_, path) = &listener {
            let _ = std::fs::remove_file(path);
        }
    });
}

#[async_trait]
impl Server for HttpServer {
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
        let mut server_features = Features::new();
        server_features.insert(self.addresses.clone());
        let run = Run::default();
        let config = run.config(self.limits.clone(), Arc::new(server_features));
        let running = Running {
            config: Arc::new(config),
            run,
        };
        let limit = self
            .limits
            .max_concurrent_connections
            .map(|n| Arc::new(Semaphore::new(n)));
        // Bind everything first: a failing endpoint leaves nothing running.
        let mut bound = Vec::new();
        for endpoint in std::mem::take(&mut self.endpoints) {
            bound.push(endpoint.bind().await?);
        }
        for listener in bound {
            self.addresses.push(listener.address());
            spawn_accept(&running, app.clone(), limit.clone(), listener);
        }
        // The host logs "listening on" at info level; this is the server's own
        // record.
        for url in self.addresses.urls() {
            tracing::debug!("bound {url}");
        }
        self.running = Some(running);
        Ok(())
    }

    async fn stop(&mut self, deadline: Instant) -> Result<()> {
        let Some(running) = self.running.take() else {
            return Ok(());
        };
        // Dropping this future before it ends (a host's second signal) aborts
        // the remaining connections at once instead of leaving them running.
        let abort_on_drop = running.run.abort_on_drop();
        running.run.begin_stop();
        if tokio::time::timeout_at(deadline, running.run.ended())
            .await
            .is_err()
        {
            tracing::info!("stop deadline reached: aborting the remaining connections");
            running.run.abort();
            running.run.ended().await;
        }
        abort_on_drop.disarm();
        self.addresses.clear();
        Ok(())
    }
}
