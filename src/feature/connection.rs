//! [`ConnectionInfo`]: who is on the other end.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// A transport address: TCP or a unix domain socket.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// An IP address and port.
    Tcp(SocketAddr),
    /// A unix domain socket; unnamed peers have no path.
    Unix(Option<PathBuf>),
}

impl Address {
    /// The IP address, for TCP.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Address::Tcp(addr) => Some(addr.ip()),
            Address::Unix(_) => None,
        }
    }

    /// The port, for TCP.
    pub fn port(&self) -> Option<u16> {
        match self {
            Address::Tcp(addr) => Some(addr.port()),
            Address::Unix(_) => None,
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(addr) => write!(f, "{addr}"),
            Address::Unix(Some(path)) => write!(f, "unix:{}", path.display()),
            Address::Unix(None) => f.write_str("unix:(unnamed)"),
        }
    }
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Self {
        Address::Tcp(addr)
    }
}

/// The connection a request arrived on (the analogue of
/// `IHttpConnectionFeature`).
///
/// Provided by: every server with a transport connection, in the
/// per-connection defaults layer so requests share it; TestServer lets tests
/// set it. Absent: servers that do not expose addresses (CGI without
/// `REMOTE_ADDR`).
///
/// # Example
///
/// ```
/// use serverbridge::feature::{Address, ConnectionInfo};
///
/// let info = ConnectionInfo::tcp("7", "127.0.0.1:5000".parse().unwrap(), "127.0.0.1:40000".parse().unwrap());
/// assert_eq!(info.peer.as_ref().and_then(Address::port), Some(40000));
/// assert!(info.is_local());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// A server-unique connection id (request ids are `<id>:<n>`).
    pub id: String,
    /// The server's end.
    pub local: Option<Address>,
    /// The client's end.
    pub peer: Option<Address>,
}

impl ConnectionInfo {
    /// A TCP connection.
    pub fn tcp(id: impl Into<String>, local: SocketAddr, peer: SocketAddr) -> Self {
        ConnectionInfo {
            id: id.into(),
            local: Some(Address::Tcp(local)),
            peer: Some(Address::Tcp(peer)),
        }
    }

    /// Whether the peer is this machine: a loopback peer, the same IP as the
    /// local end, or a unix socket (OWIN's `server.IsLocal`).
    pub fn is_local(&self) -> bool {
        match (&self.peer, &self.local) {
            (Some(Address::Unix(_)), _) => true,
            (Some(Address::Tcp(peer)), local) => {
                peer.ip().is_loopback() || local.as_ref().and_then(Address::ip) == Some(peer.ip())
            }
            (None, _) => false,
        }
    }
}
