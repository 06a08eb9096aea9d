//! Where a server listens (feature `listen`, part of `server`): the
//! endpoints a server is given and the listeners they become once bound.
//! The built-in server, the hyper and actix adapters and the tower host
//! share them, so port 0, unix sockets and already-open listeners behave the
//! same on each (the TCP-only ones refuse unix addresses by name).

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

    /// As [`from_address`](Self::from_address), for a server that listens
    /// on TCP only (a tower host, the actix adapter).
    ///
    /// # Errors
    ///
    /// A configuration error naming `server` for anything but
    /// `http://IP:PORT`.
    pub fn tcp_from_address(address: &ServerAddress, server: &str) -> Result<Endpoint> {
        match address {
            ServerAddress::Tcp { scheme, addr } if scheme == "http" => Ok(Endpoint::Tcp(*addr)),
            other => Err(Error::config(format!(
                "{other}: {server} listens on http://IP:PORT addresses only"
            ))),
        }
    }

    /// Binds a TCP endpoint as a std listener, for a server that hands
    /// listeners to its own runtime (actix); an adopted listener is cloned,
    /// so the endpoint can be bound again after a stop.
    ///
    /// # Errors
    ///
    /// The I/O error of binding or cloning; a configuration error for a
    /// unix endpoint.
    pub fn bind_std_tcp(&self) -> Result<std::net::TcpListener> {
        match self {
            Endpoint::Tcp(addr) => Ok(std::net::TcpListener::bind(addr)?),
            Endpoint::TcpListener(listener) => Ok(listener.try_clone()?),
            Endpoint::Unix(_) | Endpoint::UnixListener(_) => {
                Err(Error::config("a unix socket where only TCP is served"))
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_only_servers_take_plain_http_addresses_and_refuse_the_rest() {
        let tcp = ServerAddress::parse("http://127.0.0.1:0").unwrap();
        assert!(matches!(
            Endpoint::tcp_from_address(&tcp, "the x server"),
            Ok(Endpoint::Tcp(addr)) if addr.port() == 0
        ));
        let https = ServerAddress::Tcp {
            scheme: "https".into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
        };
        for address in [ServerAddress::parse("unix:/tmp/x.sock").unwrap(), https] {
            let refused = address.to_string();
            let err = Endpoint::tcp_from_address(&address, "the x server").unwrap_err();
            assert!(err.is_config(), "{refused}: {err}");
            assert!(err.to_string().contains("the x server"), "{err}");
        }
    }

    #[test]
    fn std_tcp_listeners_bind_and_adopt_but_never_from_unix() {
        let bound = Endpoint::Tcp(SocketAddr::from(([127, 0, 0, 1], 0)))
            .bind_std_tcp()
            .unwrap();
        let port = bound.local_addr().unwrap().port();
        assert_ne!(port, 0);
        let adopted = Endpoint::TcpListener(bound).bind_std_tcp().unwrap();
        assert_eq!(adopted.local_addr().unwrap().port(), port);
        let unix = Endpoint::Unix(PathBuf::from("/tmp/never-bound.sock"));
        assert!(unix.bind_std_tcp().unwrap_err().is_config());
    }
}
