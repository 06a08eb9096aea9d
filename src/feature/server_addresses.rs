//! [`ServerAddresses`]: where a server is listening.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use crate::error::{Error, Result};

/// The URL forms [`ServerAddress::parse`] accepts, for error messages.
pub(crate) const URL_FORMS: &str = "http://IP:PORT (http://127.0.0.1:5000, http://[::1]:0), \
     http://localhost:PORT, http://*:PORT (or +: every IPv4 interface) or unix:/PATH";

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

impl ServerAddress {
    /// Parses one URL: `http://127.0.0.1:5000`, `http://[::1]:0`,
    /// `http://localhost:5000` (taken as `127.0.0.1`), or `unix:/run/app.sock`.
    /// A trailing `/` is allowed; port 0 asks for a free port. Host names
    /// other than `localhost` are not resolved, and `https` is not accepted
    /// (no built-in TLS).
    ///
    /// # Errors
    ///
    /// A configuration error ([`Error::is_config`]) that quotes the URL and
    /// names the accepted forms.
    ///
    /// # Example
    ///
    /// ```
    /// use serverbridge::feature::ServerAddress;
    ///
    /// let address = ServerAddress::parse("http://localhost:0/").unwrap();
    /// assert_eq!(address.to_string(), "http://127.0.0.1:0");
    /// let err = ServerAddress::parse("ftp://example.com").unwrap_err();
    /// assert!(err.is_config());
    /// assert!(err.to_string().contains("unix:/PATH"));
    /// ```
    pub fn parse(url: &str) -> Result<ServerAddress> {
        let url = url.trim();
        let invalid = |why: &str| {
            Error::config(format!(
                "invalid URL {url:?}: {why}; expected {URL_FORMS}, several separated by ';'"
            ))
        };
        if let Some(path) = url
            .get(..5)
            .filter(|scheme| scheme.eq_ignore_ascii_case("unix:"))
            .map(|_| &url[5..])
        {
            if path.is_empty() {
                return Err(invalid("the socket path is empty"));
            }
            // Relative to what? The working directory is not an address.
            if !path.starts_with('/') {
                return Err(invalid("the socket path must be absolute"));
            }
            return Ok(ServerAddress::Unix(PathBuf::from(path)));
        }
        // The scheme and `localhost` are case-insensitive, as in any URL.
        let rest = match url.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("http://") => &url[7..],
            _ => return Err(invalid("unsupported scheme")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        // ASP.NET Core's host forms: `localhost` is the loopback interface,
        // `*` and `+` every interface. (Kestrel binds `localhost` on both
        // loopbacks and `*` on IPv6's any, dual-stack; here one IPv4 socket
        // each, the same on every machine. `[::1]` and `[::]` bind IPv6.)
        let rest = match rest.rsplit_once(':') {
            Some((host, port)) if host.eq_ignore_ascii_case("localhost") => {
                format!("127.0.0.1:{port}")
            }
            Some(("*" | "+", port)) => format!("0.0.0.0:{port}"),
            _ => rest.to_owned(),
        };
        let addr = rest
            .parse::<SocketAddr>()
            .map_err(|_| invalid("expected an IP address and a port"))?;
        Ok(ServerAddress::Tcp {
            scheme: "http".into(),
            addr,
        })
    }

    /// Parses a `;`-separated list of URLs (the `SERVERBRIDGE_URLS` form);
    /// blanks around and between entries are ignored, so an empty string
    /// gives an empty list.
    ///
    /// # Errors
    ///
    /// The first malformed URL, as in [`ServerAddress::parse`].
    ///
    /// # Example
    ///
    /// ```
    /// use serverbridge::feature::ServerAddress;
    ///
    /// let list = ServerAddress::parse_list("http://127.0.0.1:0; unix:/tmp/app.sock").unwrap();
    /// assert_eq!(list.len(), 2);
    /// assert_eq!(list[1], ServerAddress::Unix("/tmp/app.sock".into()));
    /// ```
    pub fn parse_list(urls: &str) -> Result<Vec<ServerAddress>> {
        urls.split(';')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(ServerAddress::parse)
            .collect()
    }
}

impl FromStr for ServerAddress {
    type Err = Error;

    /// As [`ServerAddress::parse`].
    fn from_str(url: &str) -> Result<ServerAddress> {
        ServerAddress::parse(url)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_parses_back() {
        for url in [
            "http://127.0.0.1:5000",
            "http://[::1]:0",
            "unix:/run/app.sock",
        ] {
            assert_eq!(ServerAddress::parse(url).unwrap().to_string(), url);
        }
    }

    #[test]
    fn asp_net_host_forms_and_any_case_scheme_parse() {
        let tcp = |addr: &str| ServerAddress::Tcp {
            scheme: "http".into(),
            addr: addr.parse().unwrap(),
        };
        for (url, addr) in [
            ("http://*:5000", "0.0.0.0:5000"),
            ("http://+:0", "0.0.0.0:0"),
            ("http://*:80/", "0.0.0.0:80"),
            ("http://localhost:5000", "127.0.0.1:5000"),
            ("http://LocalHost:5000", "127.0.0.1:5000"),
            ("HTTP://127.0.0.1:5000", "127.0.0.1:5000"),
            ("Http://[::1]:0", "[::1]:0"),
            ("http://[::]:80", "[::]:80"),
        ] {
            assert_eq!(ServerAddress::parse(url).unwrap(), tcp(addr), "{url}");
        }
        assert_eq!(
            ServerAddress::parse("UNIX:/run/app.sock").unwrap(),
            ServerAddress::Unix(PathBuf::from("/run/app.sock"))
        );
    }

    #[test]
    fn malformed_urls_are_config_errors_naming_the_forms() {
        for url in [
            "https://127.0.0.1:443",
            "127.0.0.1:80",
            "http://example.com:80",
            "http://127.0.0.1",
            "http://127.0.0.1:99999",
            "unix:",
            "unix:relative.sock",
            "http://*",
            "http://**:80",
            "http://localhost",
            "http:/127.0.0.1:80",
            "http",
        ] {
            let err = ServerAddress::parse(url).unwrap_err();
            assert!(err.is_config(), "{url}: {err}");
            let text = err.to_string();
            assert!(text.contains(&format!("{url:?}")), "{text}");
            assert!(
                text.contains("http://IP:PORT") && text.contains("unix:/PATH"),
                "{text}"
            );
        }
    }
}
