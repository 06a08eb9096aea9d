//! The host (feature `host`, on by default): picks a server by name, binds
//! it where the configuration says, logs where it listens, and turns
//! SIGINT/SIGTERM into a graceful stop with a deadline — ASP.NET Core's
//! generic host with `UseKestrel` and `ASPNETCORE_URLS`, for serverbridge.
//!
//! # Settings
//!
//! | setting | builder / option | environment | default |
//! |---|---|---|---|
//! | server name | [`server`](HostBuilder::server), `--server` | `SERVERBRIDGE_SERVER` | `builtin` |
//! | addresses | [`urls`](HostBuilder::urls), `--urls` | `SERVERBRIDGE_URLS` | `http://127.0.0.1:5000` |
//! | stop deadline | [`shutdown_timeout`](HostBuilder::shutdown_timeout), `--shutdown-timeout` (seconds) | `SERVERBRIDGE_SHUTDOWN_TIMEOUT` (seconds) | 30 s |
//!
//! What is set on the builder (or read by [`HostBuilder::args`]) wins over
//! the environment, which wins over the default. URLs are `;`-separated, in
//! the forms of [`ServerAddress::parse`]: `http://IP:PORT` (port 0 picks a
//! free port), `http://localhost:PORT`, `http://*:PORT` (every interface),
//! `unix:/PATH`.
//!
//! Servers come from a [`Registry`]: `builtin` is the
//! [`HttpServer`](crate::server::HttpServer); adapters add theirs with
//! [`Registry::register`]. An unknown name or a malformed URL fails
//! [`HostBuilder::build`] with a configuration error
//! ([`Error::is_config`]) that names the valid choices.
//!
//! # Lifecycle
//!
//! 1. [`Host::start`] installs the signal handlers (unless
//!    [`handle_signals(false)`](HostBuilder::handle_signals)), starts the
//!    server and logs `listening on <url>` at info level for each address
//!    the server publishes in [`ServerAddresses`] (port 0 resolved).
//! 2. [`RunningHost::run`] waits for SIGINT or SIGTERM
//!    ([`run_until`](RunningHost::run_until): or a future of your own),
//!    then stops gracefully: the server stops accepting and in-flight
//!    requests have until the deadline to finish; then the rest is aborted.
//! 3. A second SIGINT/SIGTERM during the stop stops at once: the host drops
//!    the server's stop future (the built-in server and
//!    [`TowerHost`](crate::tower::TowerHost) then abort their remaining
//!    connections) and returns an error for which
//!    [`Error::is_aborted`] is true.
//!
//! [`Host::run`] does all three. Programs map the outcome to exit codes as
//! the examples do: 0 after a graceful stop, 2 for a configuration error, 1
//! for anything else (a port in use, a forced stop).
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use serverbridge::host::{Host, Registry};
//! use serverbridge::{HttpContext, Result};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! async fn hello(ctx: &mut HttpContext) -> Result<()> {
//!     ctx.write("hello").await
//! }
//!
//! let host = Host::builder()
//!     .registry(Registry::new())
//!     .server("builtin")
//!     .urls("http://127.0.0.1:0")
//!     .shutdown_timeout(std::time::Duration::from_secs(5))
//!     .handle_signals(false) // a doctest: no process-wide handlers
//!     .build()
//!     .unwrap();
//! let running = host.start(hello).await.unwrap();
//! let url = &running.urls()[0]; // http://127.0.0.1:PORT
//!
//! let mut stream = tokio::net::TcpStream::connect(&url["http://".len()..]).await.unwrap();
//! stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
//! let mut reply = String::new();
//! stream.read_to_string(&mut reply).await.unwrap();
//! assert!(reply.starts_with("HTTP/1.1 200 OK") && reply.ends_with("hello"));
//!
//! running.stop().await.unwrap();
//! # });
//! ```

mod builder;
mod registry;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::time::Instant;

pub use builder::{
    HostBuilder, DEFAULT_SERVER, DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_URLS, ENV_SERVER,
    ENV_SHUTDOWN_TIMEOUT, ENV_URLS,
};
pub use registry::Registry;

use crate::application::Application;
use crate::error::{Error, Result};
use crate::feature::{ServerAddress, ServerAddresses};
use crate::server_trait::Server;

/// A configured server, ready to start; see the [module docs](self).
pub struct Host {
    server: Box<dyn Server>,
    server_name: String,
    addresses: Vec<ServerAddress>,
    shutdown_timeout: Duration,
    signals: bool,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("server", &self.server_name)
            .field("addresses", &self.addresses)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("signals", &self.signals)
            .finish()
    }
}

impl Host {
    /// A builder: settings from the builder, then the environment, then the
    /// defaults.
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// The chosen server's name in the registry.
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// The configured addresses (port 0 not resolved yet).
    pub fn addresses(&self) -> &[ServerAddress] {
        &self.addresses
    }

    /// The graceful-stop deadline.
    pub fn shutdown_timeout(&self) -> Duration {
        self.shutdown_timeout
    }

    /// Installs the signal handlers (if enabled), starts the server with
    /// `app` and logs each bound address; returns once the server accepts.
    ///
    /// # Errors
    ///
    /// The server's start error (an address in use, a socket path that
    /// cannot be created), or an I/O error installing the signal handlers.
    pub async fn start(self, app: impl Application) -> Result<RunningHost> {
        // Before the server binds: a signal that arrives as soon as the
        // addresses are printed must already be ours, not the default action
        // that kills the process.
        let signals = if self.signals {
            Some(Signals::install()?)
        } else {
            None
        };
        let mut server = self.server;
        server.start(Arc::new(app)).await?;
        let addresses = server
            .features()
            .get::<ServerAddresses>()
            .map(ServerAddresses::get)
            .unwrap_or_default();
        for address in &addresses {
            tracing::info!(server = %self.server_name, "listening on {address}");
        }
        if addresses.is_empty() {
            tracing::info!(server = %self.server_name, "started; the server publishes no addresses");
        }
        Ok(RunningHost {
            server,
            server_name: self.server_name,
            addresses,
            shutdown_timeout: self.shutdown_timeout,
            signals,
        })
    }

    /// Starts, serves until SIGINT/SIGTERM, then stops gracefully; a second
    /// signal stops at once. [`start`](Self::start) then
    /// [`RunningHost::run`].
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start) and [`RunningHost::stop`].
    pub async fn run(self, app: impl Application) -> Result<()> {
        self.start(app).await?.run().await
    }
}

/// A started [`Host`]: its bound addresses, and the ways to stop it.
///
/// Dropping it without stopping leaves the server running until the runtime
/// ends.
pub struct RunningHost {
    server: Box<dyn Server>,
    server_name: String,
    addresses: Vec<ServerAddress>,
    shutdown_timeout: Duration,
    signals: Option<Signals>,
}

impl fmt::Debug for RunningHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningHost")
            .field("server", &self.server_name)
            .field("addresses", &self.addresses)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("signals", &self.signals.is_some())
            .finish()
    }
}

impl RunningHost {
    /// The bound addresses, as the server published them after start (port 0
    /// resolved); empty for a server that publishes none.
    pub fn addresses(&self) -> &[ServerAddress] {
        &self.addresses
    }

    /// The bound addresses as URLs: `http://127.0.0.1:PORT`, `unix:/PATH`.
    pub fn urls(&self) -> Vec<String> {
        self.addresses.iter().map(ToString::to_string).collect()
    }

    /// The server's name in the registry.
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// The server, for its server-level features.
    pub fn server(&self) -> &dyn Server {
        &*self.server
    }

    /// Serves until SIGINT or SIGTERM, then [`stop`](Self::stop)s. With
    /// signal handling off this waits forever; use
    /// [`run_until`](Self::run_until).
    ///
    /// # Errors
    ///
    /// As [`stop`](Self::stop).
    pub async fn run(self) -> Result<()> {
        self.run_until(std::future::pending()).await
    }

    /// Serves until `shutdown` completes or a signal arrives, then
    /// [`stop`](Self::stop)s.
    ///
    /// # Errors
    ///
    /// As [`stop`](Self::stop).
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let reason = tokio::select! {
            () = shutdown => "shutdown requested",
            name = next_signal(&mut self.signals) => name,
        };
        tracing::info!(
            server = %self.server_name,
            "{reason}: stopping gracefully within {:?}",
            self.shutdown_timeout
        );
        self.stop().await
    }

    /// Stops gracefully: the server stops accepting, in-flight requests have
    /// the shutdown timeout to finish, then the rest is aborted. Returns when
    /// the server has stopped.
    ///
    /// # Errors
    ///
    /// The server's stop error; or, if a SIGINT/SIGTERM arrives while
    /// stopping (with signal handling on), an error for which
    /// [`Error::is_aborted`] is true, returned at once after dropping the
    /// server's stop future (which aborts what remains).
    pub async fn stop(mut self) -> Result<()> {
        let deadline = crate::server::after(Instant::now(), self.shutdown_timeout);
        let result = tokio::select! {
            result = self.server.stop(deadline) => result,
            name = next_signal(&mut self.signals) => {
                tracing::warn!(server = %self.server_name, "{name} during the graceful stop: stopping at once");
                Err(Error::aborted(format!(
                    "{name} during the graceful stop: stopped at once, in-flight requests aborted"
                )))
            }
        };
        if result.is_ok() {
            tracing::info!(server = %self.server_name, "stopped");
        }
        result
    }
}

/// SIGINT and SIGTERM, caught.
struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    fn install() -> Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }
}

/// The next signal's name; never completes without handlers.
async fn next_signal(signals: &mut Option<Signals>) -> &'static str {
    let Some(signals) = signals else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = signals.interrupt.recv() => "SIGINT",
        _ = signals.terminate.recv() => "SIGTERM",
    }
}
