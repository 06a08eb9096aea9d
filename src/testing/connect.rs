//! The [`Connector`] a started [`TestServer`] publishes: new client
//! connections in either mode, each with its own [`ConnectionInfo`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use http::Version;

use super::client::{ClientConnection, Connector, Dispatch};
use super::server::{Mode, TestServer};
use crate::body::RequestBody;
use crate::error::Error;
use crate::feature::{ConnectionInfo, RequestLifetime};

/// The connector for the server whose current settings sit in `current`.
pub(super) fn connector(current: Weak<Mutex<Option<Arc<TestServer>>>>) -> Connector {
    let next = Arc::new(AtomicU64::new(0));
    Connector::new(move || {
        let server = current
            .upgrade()
            .and_then(|slot| slot.lock().ok().and_then(|s| s.clone()));
        let n = next.fetch_add(1, Ordering::Relaxed) + 1;
        async move {
            let server = server.ok_or_else(|| Error::closed("the test server is gone"))?;
            // Refused once the server has stopped, as a closed listener is.
            server.app()?;
            let info = connection_info(&server, n);
            match server.mode {
                Mode::Wire => {
                    let io = super::wire::connect(&server, Some(info), None)?;
                    ClientConnection::over(io, Version::HTTP_11).await
                }
                Mode::Direct => Ok(ClientConnection::direct(dispatch(server, info))),
            }
        }
    })
}

/// Connection `n`: its own id and peer port, the server's local address.
fn connection_info(server: &TestServer, n: u64) -> ConnectionInfo {
    let defaults = server.connection_defaults.get::<ConnectionInfo>();
    let local = defaults
        .and_then(|c| c.local.as_ref())
        .and_then(|a| match a {
            crate::feature::Address::Tcp(addr) => Some(*addr),
            _ => None,
        })
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 80)));
    // Ephemeral ports, as a client's would be.
    let port = 49152 + (n % 16384) as u16;
    let peer = SocketAddr::from(([127, 0, 0, 1], port));
    ConnectionInfo::tcp(format!("{}-C{n}", server.name()), local, peer)
}

/// Direct mode: each request goes into the app with this connection's info;
/// dropping the connection fires the lifetime of every request still on it.
fn dispatch(server: Arc<TestServer>, info: ConnectionInfo) -> Dispatch {
    let closed = AbortOnDrop(RequestLifetime::new());
    Box::new(move |request| {
        let server = server.clone();
        let info = info.clone();
        let lifetime = closed.0.child();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let uri = parts.uri.to_string();
            let mut test = server.request(parts.method, &uri);
            test.version = parts.version;
            test.headers = parts.headers;
            test.body = RequestBody::new(body);
            test.connection = Some(Box::new(info));
            test.lifetime = lifetime.into();
            let response = test.send().await?;
            Ok(response.into_http().map(crate::body::boxed))
        })
    })
}

/// The connection's lifetime, fired when the connection (its dispatch
/// closure) is dropped.
struct AbortOnDrop(RequestLifetime);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
