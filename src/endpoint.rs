//! Where a server listens (feature `listen`, part of `server`): the
//! endpoints a server is given and the listeners they become once bound.
//! The built-in server and the hyper adapter share them, so port 0, unix
//! sockets and already-open listeners behave the same on both.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::feature::ServerAddress;

/// A place to listen, before it is bound.
///
/// # Example
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use serverbridge::endpoint::Endpoint;
/// use serverbridge::feature::ServerAddress;
///
/// let address = ServerAddress::parse("http://127.0.0.1:0").unwrap();
/// let listener = Endpoint::from_address(&address, "my server").unwrap().bind().await.unwrap();
/// // Port 0 is resolved: the address is the real one.
/// assert!(listener.address().to_string().starts_with("http://127.0.0.1:"));
/// assert!(!listener.address().to_string().ends_with(":0"));
/// # });
/// ```
#[derive(Debug)]
pub enum Endpoint {
    /// A TCP address to bind (port 0 picks a free port).
    Tcp(SocketAddr),
    /// A unix domain socket path to bind; a stale socket file is replaced.
    Unix(PathBuf),
    /// An already-open TCP listener (socket activation, tests).
    TcpListener(std::net::TcpListener),
    /// An already-open unix listener.
    UnixListener(std::os::unix::net::UnixListener),
}

impl Endpoint {
    /// The endpoint for one of [`ServerAddresses`](crate::feature::ServerAddresses)'
    /// forms: `http://IP:PORT` or `unix:/PATH`.
    ///
    /// # Errors
    ///
    /// A configuration error ([`Error::is_config`]) naming `server` for any
    /// other scheme or form (no server here terminates TLS).
    pub fn from_address(address: &ServerAddress, server: &str) -> Result<Endpoint> {
        match address {
            ServerAddress::Tcp { scheme, addr } if scheme == "http" => Ok(Endpoint::Tcp(*addr)),
            ServerAddress::Tcp { scheme, addr } => Err(Error::config(format!(
                "{scheme}://{addr}: {server} speaks plain http only"
            ))),
            ServerAddress::Unix(path) => Ok(Endpoint::Unix(path.clone())),
            other => Err(Error::config(format!(
                "{other}: {server} listens on TCP and unix sockets only"
            ))),
        }
    }

    /// Binds (or adopts) the listener, on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// The I/O error of binding, of replacing a stale socket file, or of
    /// making an adopted listener non-blocking.
    pub async fn bind(self) -> Result<Listener> {
        Ok(match self {
            Endpoint::Tcp(addr) => {
                let listener = tokio::net::TcpListener::bind(addr).await?;
                let local = listener.local_addr()?;
                Listener::Tcp(listener, local)
            }
            Endpoint::TcpListener(listener) => {
                listener.set_nonblocking(true)?;
                let listener = tokio::net::TcpListener::from_std(listener)?;
                let local = listener.local_addr()?;
                Listener::Tcp(listener, local)
            }
            Endpoint::Unix(path) => {
                if path.exists() {
                    std::fs::remove_file(&path)?;
                }
                let listener = tokio::net::UnixListener::bind(&path)?;
                Listener::Unix(listener, path)
            }
            Endpoint::UnixListener(listener) => {
                listener.set_nonblocking(true)?;
                let path = listener
                    .local_addr()?
                    .as_pathname()
                    .map(PathBuf::from)
                    .unwrap_or_default();
                Listener::Unix(tokio::net::UnixListener::from_std(listener)?, path)
            }
        })
    }
}

/// A bound listener and the address it listens on.
#[derive(Debug)]
pub enum Listener {
    /// TCP, with its local address (port 0 resolved).
    Tcp(tokio::net::TcpListener, SocketAddr),
    /// A unix domain socket, with its path.
    Unix(tokio::net::UnixListener, PathBuf),
}

impl Listener {
    /// The address to publish in [`ServerAddresses`](crate::feature::ServerAddresses).
    pub fn address(&self) -> ServerAddress {
        match self {
            Listener::Tcp(_, addr) => ServerAddress::Tcp {
                scheme: "http".into(),
                addr: *addr,
            },
            Listener::Unix(_, path) => ServerAddress::Unix(path.clone()),
        }
    }
}
