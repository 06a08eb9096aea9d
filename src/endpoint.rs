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
    /// making an adopted listener non-blocking. A unix path where a server
    /// still listens is `AddrInUse`; one that holds anything but a socket
    /// is `AlreadyExists` (it is never removed).
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
                clear_stale_socket(&path)?;
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

/// Makes way for a unix socket at `path`: a socket file that nothing
/// listens on any more (a server that did not get to clean up) is removed.
/// Anything else there is left alone and is an error: a live socket
/// (another server's: `AddrInUse`, as a TCP port in use is), or a file that
/// is not a socket (`AlreadyExists`; binding must never delete a user's
/// file).
fn clear_stale_socket(path: &std::path::Path) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    use std::os::unix::fs::FileTypeExt;
    let kind = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta.file_type(),
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    if !kind.is_socket() {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(Error::new(
            ErrorKind::AddrInUse,
            format!("a server is listening on {}", path.display()),
        )),
        Err(err) if err.kind() == ErrorKind::ConnectionRefused => std::fs::remove_file(path),
        Err(err) => Err(err),
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

    /// A fresh directory for socket files.
    fn socket_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sb-endpoint-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn a_unix_path_holding_a_regular_file_is_refused_and_kept() {
        let dir = socket_dir("file");
        let path = dir.join("precious.txt");
        std::fs::write(&path, b"important data").unwrap();
        let err = Endpoint::Unix(path.clone()).bind().await.unwrap_err();
        assert!(format!("{err:?}").contains("not a socket"), "{err:?}");
        assert_eq!(std::fs::read(&path).unwrap(), b"important data");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_unix_path_a_server_listens_on_is_in_use() {
        let dir = socket_dir("live");
        let path = dir.join("app.sock");
        let live = Endpoint::Unix(path.clone()).bind().await.unwrap();
        let err = Endpoint::Unix(path.clone()).bind().await.unwrap_err();
        assert!(format!("{err:?}").contains("listening on"), "{err:?}");
        // The live server still takes connections on its path.
        let Listener::Unix(listener, _) = live else {
            panic!("a unix listener")
        };
        let _client = tokio::net::UnixStream::connect(&path).await.unwrap();
        listener.accept().await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_stale_socket_file_is_replaced() {
        let dir = socket_dir("stale");
        let path = dir.join("app.sock");
        // Bound, then dropped without removing its file: nobody listens.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let Listener::Unix(listener, _) = Endpoint::Unix(path.clone()).bind().await.unwrap() else {
            panic!("a unix listener")
        };
        let _client = tokio::net::UnixStream::connect(&path).await.unwrap();
        listener.accept().await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
