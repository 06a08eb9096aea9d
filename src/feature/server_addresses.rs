//! [`ServerAddresses`]: where a server is listening.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// One bound address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerAddress {
    /// A TCP address with its scheme (`http`/`https`).
    Tcp {
        /// `http` or `https`.
        scheme: String,
        /// The bound address, with port 0 resolved.
        addr: SocketAddr,
    },
    /// A unix domain socket path.
    Unix(PathBuf),
    /// An in-memory server (TestServer) with this name: reached through the
    /// server-level `Connector` feature of `serverbridge::testing`, not a
    /// socket.
    Memory(String),
}

impl fmt::Display for ServerAddress {
    /// `http://127.0.0.1:5000`, `http://[::1]:5000` or `unix:/run/app.sock`:
    /// the form `SERVERBRIDGE_URLS` accepts; `memory:NAME` for an in-memory
    /// server.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAddress::Tcp { scheme, addr } => write!(f, "{scheme}://{addr}"),
            ServerAddress::Unix(path) => write!(f, "unix:{}", path.display()),
            ServerAddress::Memory(name) => write!(f, "memory:{name}"),
        }
    }
}

/// The addresses a server is bound to (the analogue of
/// `IServerAddressesFeature`): a server-level feature, read from
/// [`Server::features`](crate::Server::features) after
/// [`Server::start`](crate::Server::start) returns, when port 0 has become a
/// real port.
///
/// Clones share one list, so a server can publish into the same value that
/// sits in its feature collection.
///
/// Provided by: every listening server. TestServer lists one
/// [`ServerAddress::Memory`] address once started.
///
/// # Example
///
/// ```
/// use serverbridge::feature::{ServerAddress, ServerAddresses};
///
/// let addresses = ServerAddresses::default();
/// addresses.push(ServerAddress::Tcp { scheme: "http".into(), addr: "127.0.0.1:5000".parse().unwrap() });
/// assert_eq!(addresses.urls(), vec!["http://127.0.0.1:5000".to_string()]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct ServerAddresses {
    list: Arc<RwLock<Vec<ServerAddress>>>,
}

impl ServerAddresses {
    /// The addresses, in bind order.
    pub fn get(&self) -> Vec<ServerAddress> {
        self.list.read().map(|l| l.clone()).unwrap_or_default()
    }

    /// The addresses as URLs (`http://127.0.0.1:5000`, `unix:/path`).
    pub fn urls(&self) -> Vec<String> {
        self.get().iter().map(ToString::to_string).collect()
    }

    /// Adds an address (servers call this as they bind).
    pub fn push(&self, address: ServerAddress) {
        if let Ok(mut list) = self.list.write() {
            list.push(address);
        }
    }

    /// Removes every address (servers call this when they stop).
    pub fn clear(&self) {
        if let Ok(mut list) = self.list.write() {
            list.clear();
        }
    }
}
