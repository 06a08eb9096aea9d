//! serverbridge's [`Server`] contract on [tiny_http] 0.12: a blocking HTTP/1.x
//! server whose requests a bounded pool of worker threads drives through
//! [`lifecycle::run_request`](serverbridge::lifecycle::run_request).
//!
//! [tiny_http]: https://docs.rs/tiny_http/0.12
//!
//! # How it runs
//!
//! tiny_http accepts connections and parses request heads on its own threads
//! and queues the requests. [`TinyHttpServer::start`] binds, then spawns
//! [`workers`](TinyHttpServer::workers) threads that take requests with the
//! blocking `recv`. Each worker owns a **current-thread tokio runtime** and
//! drives one request's async lifecycle on it to the end: the request
//! body is read from tiny_http's reader as the app polls it (one piece of at
//! most 16 KiB at a time, nothing read ahead), and the response is written to
//! tiny_http's writer as the app writes it (each chunk goes to the socket
//! before the write returns; up to 64 KiB are held back first, so that a
//! response completed in one piece goes out with `Content-Length`). Reads
//! and writes block the worker, which is this request's alone; no request
//! body or response is ever held whole.
//!
//! Every response is written by this crate on tiny_http's raw writer, framed
//! the way the built-in server frames it. A response completed in one piece
//! (the common case) goes out in one write: the head, encoded when the app
//! starts the response, with the held-back body after it and
//! `Content-Length`. A streamed one sends its head with the first bytes past
//! the held-back ones (or at a flush) and frames the body with
//! `Content-Length`, chunked, or by the close on HTTP/1.0. HEAD, 1xx, 204 and
//! 304 responses get no body. A `Server: tiny-http (Rust)` and a `Date` are
//! added when the app set none. (tiny_http's own `respond` is not used:
//! formatting a head its way costs more instructions than all the adapter's
//! other per-request work.)
//!
//! Per request, a worker polls the lifecycle once inside its runtime's
//! context and only enters `block_on` when that poll is pending (most
//! requests finish in the first poll); the connection's features
//! ([`ConnectionInfo`](serverbridge::feature::ConnectionInfo)) sit in a
//! defaults layer built once per peer address and shared by that peer's
//! requests; and a worker refills its last request's feature collection
//! (reset, as the built-in server does per connection) unless the app
//! inserted or removed a feature in it.
//!
//! Why a runtime per worker rather than `Handle::block_on` on the runtime
//! that called `start`: the request's futures, timers and the tasks an app
//! spawns then live on the worker's thread, independent of the caller's
//! runtime (which may be a current-thread runtime busy with something else,
//! or already gone). The cost is one small runtime per worker thread.
//!
//! # Capabilities
//!
//! | | |
//! |---|---|
//! | protocol | HTTP/1.0 and HTTP/1.1 (tiny_http answers other versions with 505) |
//! | blocking | yes: one request per worker thread at a time |
//! | addresses | one TCP address; port 0 resolved in [`ServerAddresses`] |
//! | [`RequestFeature`](serverbridge::feature::RequestFeature), [`ResponseFeature`](serverbridge::feature::ResponseFeature), [`ResponseBody`](serverbridge::feature::ResponseBody) | yes (streaming both ways) |
//! | [`ConnectionInfo`](serverbridge::feature::ConnectionInfo) | yes, in a defaults layer per peer: local = the listening address, peer = `remote_addr()`; the id is the peer address (tiny_http does not expose connections) |
//! | [`RequestId`](serverbridge::feature::RequestId) | yes: `<peer address>:<n>`, n in eight hex digits counting the server's requests (tiny_http does not tell connections apart) |
//! | [`ResponseTrailers`](serverbridge::feature::ResponseTrailers) | yes on HTTP/1.1 (chunked responses) |
//! | server-level features | in every request's defaults layer |
//! | [`RequestLifetime`](serverbridge::feature::RequestLifetime) | **no**: tiny_http gives no way to notice a client that goes away while the app runs (a failed write fails the app's next write instead) |
//! | [`RequestTrailers`](serverbridge::feature::RequestTrailers) | **no**: the (patched) chunked decoder reads and drops them |
//! | [`Upgrade`](serverbridge::feature::Upgrade) | **no** |
//! | [`MaxRequestBodySize`](serverbridge::feature::MaxRequestBodySize), [`ConnectionClose`](serverbridge::feature::ConnectionClose), data rates, TLS | **no** |
//! | graceful stop | yes: the listener closes at once, in-flight requests finish until the deadline |
//!
//! # Limitations
//!
//! - **Half duplex.** tiny_http hands out the response writer only by
//!   consuming the request, which ends its body. The head goes out with the
//!   first body bytes (or at a flush or the end); before that, the unread
//!   rest of the request body is read and discarded. An app that reads the
//!   body after its response has started gets an [`Error::is_closed`] error.
//!   Apps that read the body, then answer (the common case), are unaffected;
//!   the first 64 KiB of a response are buffered by `HttpContext` anyway.
//! - **No connection control.** tiny_http decides keep-alive from the request
//!   alone. An aborted response (the app failed after the head) cannot close
//!   the connection: a chunked one is ended with a chunk header that is not
//!   hex, so the client fails it at once; one with `Content-Length` stops
//!   short, and the client waits for the rest until it gives up (it never
//!   sees it complete). An app's `Connection: close` is passed to the
//!   client, which closes.
//! - **HTTP/1.0 keep-alive** with a response of unknown length: the body is
//!   delimited by the close, which only the client can make.
//! - **tiny_http is patched.** Release 0.12.0 drains an unread request
//!   body into one buffer the size of the declared rest, so a client that
//!   declared a huge `Content-Length` and went away aborted the process.
//!   The workspace builds tiny_http with that drain bounded (its
//!   `[patch.crates-io]`, `adapters/tiny-http/patched/tiny_http/PATCHED.md`);
//!   an application that depends on this crate from a registry must apply
//!   the same patch in its own workspace until a tiny_http release has it.
//! - **Request parsing is tiny_http's**: it is lenient (it has no header
//!   or body limits, its rejections (400, 417) keep the connection open, it
//!   sends `100 Continue` to an HTTP/1.0 request that expects it (RFC 9110
//!   §10.1.1 says to ignore the expectation), and it rejects non-ASCII
//!   header bytes). An independent probe of about a thousand malformed
//!   requests found these; the adapter cannot change them, as tiny_http
//!   parses the head before the adapter sees the request. Put it behind a
//!   proxy that normalises requests. The framing is the exception: the
//!   workspace builds tiny_http and its chunked decoder patched (see their
//!   `PATCHED.md` under `adapters/tiny-http/patched/`), so a head that
//!   frames its body ambiguously (`Content-Length` with
//!   `Transfer-Encoding`, two lengths, a length that is not digits, codings
//!   other than `chunked`, `Transfer-Encoding` on HTTP/1.0) gets 400 and the
//!   close instead of a guess a smuggled request could ride on, a chunked
//!   body cut short fails the read, and a trailer section is dropped
//!   instead of being read as the next request. An application that
//!   depends on this crate from a registry must apply the same patches.
//! - **Graceful stop** serves what tiny_http has queued, but a request whose
//!   small body (up to 1 KiB, which tiny_http reads before queueing the
//!   request) is still arriving when `stop` begins is not served.
//! - **Stop at the deadline** cannot interrupt a worker blocked on the
//!   socket: their responses fail at the next write, `stop` returns, and
//!   those threads end when their sockets do.
//! - Blocking inside `poll` means an app's timer cannot fire while the worker
//!   waits for request-body bytes, and `tokio::task::block_in_place` panics
//!   (the runtime is current-thread).
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::io::{Read, Write};
//! use std::sync::Arc;
//! use serverbridge::{HttpContext, Result, Server};
//! use serverbridge_tiny_http::TinyHttpServer;
//!
//! async fn hello(ctx: &mut HttpContext) -> Result<()> {
//!     ctx.write("hello from tiny_http").await
//! }
//!
//! let mut server = TinyHttpServer::new("127.0.0.1:0".parse().unwrap()).workers(2);
//! server.start(Arc::new(hello)).await.unwrap();
//! let addr = server.local_addr().unwrap();
//!
//! let reply = tokio::task::spawn_blocking(move || {
//!     let mut stream = std::net::TcpStream::connect(addr).unwrap();
//!     stream.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
//!     let mut reply = String::new();
//!     stream.read_to_string(&mut reply).unwrap();
//!     reply
//! })
//! .await
//! .unwrap();
//! assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(reply.contains("content-length: 20\r\n"));
//! assert!(reply.ends_with("hello from tiny_http"));
//! server.stop(tokio::time::Instant::now() + std::time::Duration::from_secs(5)).await.unwrap();
//! # });
//! ```

mod exchange;
mod worker;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use serverbridge::feature::{ServerAddress, ServerAddresses};
use serverbridge::{BoxApplication, Error, Features, Result, Server};
use tokio::time::Instant;

/// The largest request-body piece one read takes (16 KiB): with nothing read
/// ahead, the request-body bytes in flight per request are at most this.
pub const REQUEST_CHUNK: usize = exchange::CHUNK;

/// A [`Server`] on tiny_http (see the [crate docs](crate) for what it
/// supports and how it runs).
///
/// Build it with [`new`](Self::new) or
/// [`bind_addresses`](Self::bind_addresses), set the pool size with
/// [`workers`](Self::workers), then `start` it.
pub struct TinyHttpServer {
    addr: SocketAddr,
    workers: usize,
    features: Arc<Features>,
    addresses: ServerAddresses,
    running: Option<Running>,
}

struct Running {
    server: Option<Arc<tiny_http::Server>>,
    workers: usize,
    stopping: Arc<AtomicBool>,
    cancelled: Arc<AtomicBool>,
    alive: tokio::sync::mpsc::Receiver<()>,
}

impl std::fmt::Debug for TinyHttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TinyHttpServer")
            .field("addr", &self.addr)
            .field("workers", &self.workers)
            .field("running", &self.running.is_some())
            .finish()
    }
}

impl TinyHttpServer {
    /// A server that will listen on `addr` (port 0 picks a free port), with
    /// the default pool: twice the available parallelism, at least 4 workers.
    pub fn new(addr: SocketAddr) -> Self {
        let addresses = ServerAddresses::default();
        let mut features = Features::new();
        features.insert(addresses.clone());
        let workers = std::thread::available_parallelism().map_or(4, |n| (n.get() * 2).max(4));
        TinyHttpServer {
            addr,
            workers,
            features: Arc::new(features),
            addresses,
            running: None,
        }
    }

    /// A server for the [`Host`](serverbridge::host::Host)'s configured
    /// addresses: exactly one `http://IP:PORT`.
    ///
    /// # Errors
    ///
    /// A configuration error ([`Error::is_config`]) for a unix path, several
    /// addresses or none: tiny_http listens on one TCP socket.
    ///
    /// # Example
    ///
    /// ```
    /// use serverbridge::feature::ServerAddress;
    /// use serverbridge_tiny_http::TinyHttpServer;
    ///
    /// let one = ServerAddress::parse_list("http://127.0.0.1:0").unwrap();
    /// assert!(TinyHttpServer::bind_addresses(&one).is_ok());
    /// let unix = ServerAddress::parse_list("unix:/tmp/app.sock").unwrap();
    /// assert!(TinyHttpServer::bind_addresses(&unix).unwrap_err().is_config());
    /// ```
    pub fn bind_addresses(addresses: &[ServerAddress]) -> Result<Self> {
        match addresses {
            [ServerAddress::Tcp { scheme, addr }] if scheme == "http" => {
                Ok(TinyHttpServer::new(*addr))
            }
            [other] => Err(Error::config(format!(
                "{other}: the tiny_http server listens on one http://IP:PORT address"
            ))),
            _ => Err(Error::config(format!(
                "the tiny_http server listens on exactly one address, not {}",
                addresses.len()
            ))),
        }
    }

    /// Sets the number of worker threads (at least 1): how many requests run
    /// at once. Requests beyond that wait in tiny_http's queue.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// The bound addresses (empty before `start` and after `stop`).
    pub fn addresses(&self) -> &ServerAddresses {
        &self.addresses
    }

    /// The bound TCP address once started (port 0 resolved).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.addresses.get().into_iter().find_map(|a| match a {
            ServerAddress::Tcp { addr, .. } => Some(addr),
            _ => None,
        })
    }

    fn signal_stop(running: &mut Running) {
        running.stopping.store(true, Ordering::Release);
        if let Some(server) = running.server.take() {
            // One wake-up per worker blocked in `recv`; a busy worker sees
            // `stopping` when it finishes. Dropping the last handle closes the
            // listener (tiny_http's accept thread ends).
            for _ in 0..running.workers {
                server.unblock();
            }
        }
    }
}

#[async_trait]
impl Server for TinyHttpServer {
    fn features(&self) -> &Features {
        &self.features
    }

    async fn start(&mut self, app: BoxApplication) -> Result<()> {
        if self.running.is_some() {
            return Err(Error::config("the tiny_http server is already started"));
        }
        let server = tiny_http::Server::http(self.addr).map_err(|err| {
            Error::io(std::io::Error::other(format!(
                "binding {} failed: {err}",
                self.addr
            )))
        })?;
        let local = match server.server_addr() {
            tiny_http::ListenAddr::IP(addr) => addr,
            #[allow(unreachable_patterns, reason = "unix listeners exist on unix only")]
            _ => return Err(Error::config("tiny_http did not bind a TCP address")),
        };
        self.addresses.push(ServerAddress::Tcp {
            scheme: "http".into(),
            addr: local,
        });
        let server = Arc::new(server);
        let stopping = Arc::new(AtomicBool::new(false));
        let cancelled = Arc::new(AtomicBool::new(false));
        let pool = Arc::new(worker::Pool {
            server: Arc::downgrade(&server),
            app,
            server_features: self.features.clone(),
            local,
            stopping: stopping.clone(),
            cancelled: cancelled.clone(),
            next_id: AtomicU64::new(0),
        });
        let (alive_tx, alive) = tokio::sync::mpsc::channel(1);
        for i in 0..self.workers {
            let pool = pool.clone();
            let alive_tx = alive_tx.clone();
            std::thread::Builder::new()
                .name(format!("tiny-http-{i}"))
                .spawn(move || worker::run(pool, alive_tx))
                .map_err(Error::io)?;
        }
        self.running = Some(Running {
            server: Some(server),
            workers: self.workers,
            stopping,
            cancelled,
            alive,
        });
        Ok(())
    }

    /// Closes the listener, lets in-flight requests finish until `deadline`,
    /// then makes the remaining responses fail at their next write and
    /// returns (see the crate's limitations).
    async fn stop(&mut self, deadline: Instant) -> Result<()> {
        let Some(mut running) = self.running.take() else {
            return Ok(());
        };
        TinyHttpServer::signal_stop(&mut running);
        self.addresses.clear();
        // Dropped before the workers are done (the host's second signal),
        // this future aborts what remains as the deadline would.
        let mut abort_the_rest = CancelOnDrop(Some(running.cancelled.clone()));
        // `recv` yields `None` once every worker has dropped its sender.
        if tokio::time::timeout_at(deadline, running.alive.recv())
            .await
            .is_err()
        {
            tracing::warn!("tiny_http: requests still running at the stop deadline were aborted");
        } else {
            abort_the_rest.0 = None;
        }
        Ok(())
    }
}

/// Makes the remaining responses fail at their next write when dropped
/// holding the flag: the end of a stop that did not see every worker done.
struct CancelOnDrop(Option<Arc<AtomicBool>>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(cancelled) = &self.0 {
            cancelled.store(true, Ordering::Release);
        }
    }
}

impl Drop for TinyHttpServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.as_mut() {
            running.cancelled.store(true, Ordering::Release);
            TinyHttpServer::signal_stop(running);
        }
    }
}
