//! [`HyperServer`]: endpoints, the accept loops, and graceful stop.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use serverbridge::endpoint::{Endpoint, Listener};
use serverbridge::feature::{Address, ConnectionInfo, ServerAddress, ServerAddresses};
use serverbridge::tower::AppService;
use serverbridge::{BoxApplication, Error, Features, Result, Server};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::opening::Opening;
use crate::service::ConnService;
use crate::settings::{Protocols, Settings};

/// What a started server shares with its accept loops and connections.
struct Shared {
    builder: auto::Builder<TokioExecutor>,
    app: AppService,
    /// The app that answers a refused target (see `ConnService`).
    refuse: AppService,
    /// The server's features: the bottom defaults layer of every request.
    server_features: Arc<Features>,
    max_request_body_size: Option<u64>,
    /// `Settings::keep_alive`.
    keep_alive: bool,
    /// The time a new connection has to show its protocol, when hyper-util
    /// reads its first bytes to tell HTTP/1 from HTTP/2 ([`Opening`]).
    opening: Option<std::time::Duration>,
    connection_slots: Option<Arc<Semaphore>>,
    /// Taken by `stop`; an accept loop that finds it gone stops accepting.
    graceful: Mutex<Option<GracefulShutdown>>,
    /// Stop accepting.
    stopping: CancellationToken,
    /// Every connection task.
    connections: TaskTracker,
    /// How to abort each running connection task at the stop deadline, by
    /// connection number (a place is `None` while its task is being
    /// spawned; the map is `None` once stop took it). Tokio's task abort
    /// costs the connection nothing while it runs, where a cancellation
    /// token to select on is polled at every wake-up of the task, that is
    /// every keep-alive request.
    aborts: Mutex<Option<HashMap<u64, Option<AbortHandle>>>>,
    /// The next connection's number.
    next_connection: AtomicU64,
}

/// Takes a connection task's abort handle out of [`Shared::aborts`] when
/// the task ends, however it ends.
struct Deregister {
    shared: Arc<Shared>,
    number: u64,
}

impl Drop for Deregister {
    fn drop(&mut self) {
        self.shared
            .with_aborts(|aborts| aborts.remove(&self.number));
    }
}

impl Shared {
    /// Runs `f` on the connections' abort handles; `None` once stop took
    /// them.
    fn with_aborts<R>(
        &self,
        f: impl FnOnce(&mut HashMap<u64, Option<AbortHandle>>) -> R,
    ) -> Option<R> {
        self.aborts.lock().ok()?.as_mut().map(f)
    }
}

struct Running {
    shared: Arc<Shared>,
    accept_loops: TaskTracker,
}

/// A [`Server`] on hyper 1.x and hyper-util's auto connection builder:
/// HTTP/1.1 and HTTP/2 (prior knowledge) on the same port. See the
/// [crate docs](crate) for what it provides.
///
/// # Example
///
/// ```no_run
/// use std::sync::Arc;
/// use serverbridge::{HttpContext, Result, Server};
/// use serverbridge_hyper::HyperServer;
///
/// async fn hello(ctx: &mut HttpContext) -> Result<()> {
///     ctx.write("Hello, World!").await
/// }
///
/// # async fn run() -> Result<()> {
/// let mut server = HyperServer::new()
///     .bind("127.0.0.1:8080".parse().unwrap())
///     .bind_unix("/tmp/app.sock");
/// server.start(Arc::new(hello)).await?;
/// println!("listening on {:?}", server.addresses().urls());
/// # Ok(()) }
/// ```
pub struct HyperServer {
    endpoints: Vec<Endpoint>,
    settings: Settings,
    features: Features,
    addresses: ServerAddresses,
    running: Option<Running>,
}

impl fmt::Debug for HyperServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperServer")
            .field("endpoints", &self.endpoints)
            .field("addresses", &self.addresses.urls())
            .field("settings", &self.settings)
            .field("running", &self.running.is_some())
            .finish()
    }
}

impl Default for HyperServer {
    fn default() -> Self {
        HyperServer::new()
    }
}

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// Connection ids: `H` and a process-wide counter in 12 base-32 digits.
fn connection_id() -> String {
    const DIGITS: &[u8; 32] = b"0123456789ABCDEFGHIJKLMNOPQRSTUV";
    let mut n = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
    let mut id = [b'0'; 13];
    id[0] = b'H';
    for slot in id[1..].iter_mut().rev() {
        *slot = DIGITS[(n & 31) as usize];
        n >>= 5;
    }
    String::from_utf8_lossy(&id).into_owned()
}

impl HyperServer {
    /// A server with no endpoint yet and default [`Settings`]. Started
    /// without an endpoint, it listens on `127.0.0.1:5000`.
    pub fn new() -> Self {
        let addresses = ServerAddresses::default();
        let mut features = Features::new();
        features.insert(addresses.clone());
        HyperServer {
            endpoints: Vec::new(),
            settings: Settings::default(),
            features,
            addresses,
            running: None,
        }
    }

    /// A server listening on every address in `addresses` (the form
    /// [`ServerAddresses`] publishes; port 0 picks a free port). Only the
    /// `http` scheme is served: this adapter does not terminate TLS.
    pub fn from_addresses(addresses: &[ServerAddress]) -> Result<Self> {
        let mut server = HyperServer::new();
        for address in addresses {
            server
                .endpoints
                .push(Endpoint::from_address(address, "serverbridge-hyper")?);
        }
        Ok(server)
    }

    /// Listens on a TCP address (port 0 picks a free port).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.endpoints.push(Endpoint::Tcp(addr));
        self
    }

    /// Listens on a unix domain socket path (a stale socket file is
    /// replaced; the file is removed on stop).
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

    /// Replaces the [`Settings`] (takes effect at the next start).
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// The settings.
    pub fn get_settings(&self) -> &Settings {
        &self.settings
    }

    /// The bound addresses (after [`Server::start`]; empty after stop). The
    /// same list as the [`ServerAddresses`] feature.
    pub fn addresses(&self) -> &ServerAddresses {
        &self.addresses
    }
}

#[async_trait]
impl Server for HyperServer {
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
        let shared = Arc::new(Shared {
            builder: self.settings.builder(),
            app: AppService::from_arc(app),
            refuse: AppService::new(crate::service::refuse_target),
            server_features: Arc::new(server_features),
            max_request_body_size: self.settings.max_request_body_size,
            keep_alive: self.settings.keep_alive,
            opening: match self.settings.protocols {
                Protocols::Http1Only => None,
                Protocols::Auto | Protocols::Http2Only => self.settings.header_read_timeout,
            },
            connection_slots: self
                .settings
                .max_concurrent_connections
                .map(|n| Arc::new(Semaphore::new(n))),
            graceful: Mutex::new(Some(GracefulShutdown::new())),
            stopping: CancellationToken::new(),
            connections: TaskTracker::new(),
            aborts: Mutex::new(Some(HashMap::new())),
            next_connection: AtomicU64::new(0),
        });
        let running = Running {
            shared,
            accept_loops: TaskTracker::new(),
        };
        // Bind everything first: a failing endpoint leaves nothing running.
        let mut bound = Vec::new();
        for endpoint in std::mem::take(&mut self.endpoints) {
            match endpoint.bind().await {
                Ok(listener) => bound.push(listener),
                Err(err) => {
                    self.addresses.clear();
                    return Err(err);
                }
            }
        }
        for listener in bound {
            self.addresses.push(listener.address());
            let shared = running.shared.clone();
            running.accept_loops.spawn(accept_loop(listener, shared));
        }
        for url in self.addresses.urls() {
            tracing::info!("listening on {url}");
        }
        self.running = Some(running);
        Ok(())
    }

    async fn stop(&mut self, deadline: Instant) -> Result<()> {
        let Some(running) = self.running.take() else {
            return Ok(());
        };
        let shared = running.shared;
        // Whatever way this future ends, step 3 happens: dropped before it
        // ends (the host's second signal), it aborts what remains at once.
        let abort_the_rest = AbortOnDrop(shared.clone());
        // 1. Stop accepting: the listeners close, new connections are refused.
        shared.stopping.cancel();
        running.accept_loops.close();
        running.accept_loops.wait().await;
        // 2. hyper's graceful shutdown: idle HTTP/1 connections close,
        //    in-flight requests finish (without keep-alive), HTTP/2 sends
        //    GOAWAY. Until the deadline.
        let graceful = shared.graceful.lock().ok().and_then(|mut g| g.take());
        if let Some(graceful) = graceful {
            if tokio::time::timeout_at(deadline, graceful.shutdown())
                .await
                .is_err()
            {
                tracing::info!("stop deadline reached: aborting the remaining connections");
            }
        }
        // 3. Whatever is left is dropped.
        drop(abort_the_rest);
        shared.connections.close();
        shared.connections.wait().await;
        self.addresses.clear();
        Ok(())
    }
}

/// Aborts every connection task still running when dropped: the end of a
/// stop, reached or not.
struct AbortOnDrop(Arc<Shared>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.stopping.cancel();
        let aborts = self.0.aborts.lock().ok().and_then(|mut a| a.take());
        for handle in aborts.into_iter().flat_map(HashMap::into_values).flatten() {
            handle.abort();
        }
    }
}

async fn accept_loop(listener: Listener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shared.stopping.cancelled() => break,
            accepted = accept(&listener) => accepted,
        };
        match accepted {
            Ok(Accepted::Tcp(stream, info)) => {
                let _ = stream.set_nodelay(true);
                spawn_connection(&shared, stream, info);
            }
            Ok(Accepted::Unix(stream, info)) => spawn_connection(&shared, stream, info),
            Err(err) => {
                tracing::debug!(error = %err, "accept failed");
                // Out of descriptors and the like: do not spin.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
    if let Listener::Unix(_, path) = &listener {
        let _ = std::fs::remove_file(path);
    }
}

enum Accepted {
    Tcp(tokio::net::TcpStream, ConnectionInfo),
    Unix(tokio::net::UnixStream, ConnectionInfo),
}

async fn accept(listener: &Listener) -> std::io::Result<Accepted> {
    Ok(match listener {
        Listener::Tcp(listener, local) => {
            let (stream, peer) = listener.accept().await?;
            let info = ConnectionInfo::tcp(connection_id(), *local, peer);
            Accepted::Tcp(stream, info)
        }
        Listener::Unix(listener, path) => {
            let (stream, _) = listener.accept().await?;
            let info = ConnectionInfo {
                id: connection_id(),
                local: Some(Address::Unix(Some(path.clone()))),
                peer: Some(Address::Unix(None)),
            };
            Accepted::Unix(stream, info)
        }
    })
}

fn spawn_connection<I>(shared: &Arc<Shared>, io: I, info: ConnectionInfo)
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let permit: Option<OwnedSemaphorePermit> = match &shared.connection_slots {
        Some(slots) => match slots.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                tracing::debug!("connection limit reached: closing at accept");
                return;
            }
        },
        None => None,
    };
    // Stop took the graceful handle: this connection raced it, close it.
    let Some(watcher) = shared
        .graceful
        .lock()
        .ok()
        .and_then(|g| g.as_ref().map(GracefulShutdown::watcher))
    else {
        return;
    };
    let connection_id: Arc<str> = Arc::from(info.id.as_str());
    let mut connection = Features::with_capacity(1, Some(shared.server_features.clone()));
    connection.insert(info);
    let service = ConnService::new(
        shared.app.clone(),
        shared.refuse.clone(),
        Arc::new(connection),
        connection_id,
        shared.max_request_body_size,
        shared.keep_alive.then(|| shared.stopping.clone()),
    );
    let number = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    let deregister = Deregister {
        shared: shared.clone(),
        number,
    };
    let task = async move {
        let deregister = deregister;
        let builder = &deregister.shared.builder;
        let served = match deregister.shared.opening {
            Some(timeout) => {
                let io = TokioIo::new(Opening::new(io, timeout));
                watcher
                    .watch(builder.serve_connection_with_upgrades(io, service))
                    .await
            }
            None => {
                watcher
                    .watch(builder.serve_connection_with_upgrades(TokioIo::new(io), service))
                    .await
            }
        };
        if let Err(err) = served {
            tracing::debug!(error = %err, "connection ended with an error");
        }
        drop(permit);
    };
    // The connection's place is taken before the task exists, and filled in
    // after the spawn, with no lock held across it (a runtime shutting
    // down drops the task inside `spawn`, and its `Deregister` locks). A
    // task that ended before the fill took its place out: nothing to keep.
    if shared
        .with_aborts(|aborts| aborts.insert(number, None))
        .is_none()
    {
        // Stop took the handles already: this connection raced it.
        return;
    }
    let handle = shared.connections.spawn(task);
    let kept = shared
        .with_aborts(|aborts| {
            if let Some(place) = aborts.get_mut(&number) {
                *place = Some(handle.abort_handle());
            }
        })
        .is_some();
    if !kept {
        // Stop took the handles between the two locks.
        handle.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serverbridge::feature::ServerAddress;
    use serverbridge::{HttpContext, Result, Server};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::HyperServer;

    async fn hello(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("hello").await
    }

    fn registered(server: &HyperServer) -> usize {
        let running = server.running.as_ref().expect("running");
        let aborts = running.shared.aborts.lock().expect("lock");
        aborts.as_ref().map_or(0, |aborts| aborts.len())
    }

    /// Each connection's abort handle is kept while it runs and taken out
    /// when it ends: the map does not grow with the connections served.
    #[tokio::test]
    async fn abort_handles_live_as_long_as_their_connections() {
        let mut server = HyperServer::new().bind("127.0.0.1:0".parse().unwrap());
        server
            .start(std::sync::Arc::new(hello))
            .await
            .expect("start");
        let addr = match server.addresses().get().as_slice() {
            [ServerAddress::Tcp { addr, .. }] => *addr,
            other => panic!("one TCP address expected, got {other:?}"),
        };
        let exchange = async {
            let mut open = tokio::net::TcpStream::connect(addr).await.unwrap();
            open.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .unwrap();
            let mut buf = [0u8; 256];
            let n = open.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
            assert_eq!(registered(&server), 1, "the open connection's handle");
            for _ in 0..3 {
                let mut closing = tokio::net::TcpStream::connect(addr).await.unwrap();
                closing
                    .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                    .await
                    .unwrap();
                let mut reply = Vec::new();
                closing.read_to_end(&mut reply).await.unwrap();
                assert!(reply.starts_with(b"HTTP/1.1 200"));
            }
            drop(open);
            while registered(&server) > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .expect("every handle is taken out once its connection ends");
        server
            .stop(tokio::time::Instant::now() + Duration::from_secs(5))
            .await
            .expect("stop");
    }
}
