//! [`Harness`]: one started server, its probe, and a client that reaches it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, Method, Version};
use http_body_util::BodyExt;

use super::probe::{Digest, Probe, ProbeState, Seen, ACTION, ID};
use super::Outcome;
use crate::body::BoxBody;
use crate::error::Error;
use crate::feature::{ServerAddress, ServerAddresses};
use crate::server_trait::Server;
use crate::testing::{ClientConnection, Connector};

/// How long the kit waits for the probe to see something, and for `stop`.
pub(super) const PATIENCE: Duration = Duration::from_secs(10);

/// Why a check did not pass: a [`Outcome::Fail`] or [`Outcome::Unsupported`].
#[derive(Debug)]
pub(super) struct NotPass(pub(super) Outcome);

impl From<Error> for NotPass {
    fn from(err: Error) -> Self {
        NotPass(Outcome::Fail(err.to_string()))
    }
}

/// A check's result: `Ok` is a pass.
pub(super) type Verdict = Result<(), NotPass>;

/// What each catalog entry runs.
pub(super) type CheckFn = for<'a> fn(&'a mut Harness) -> BoxFuture<'a, Verdict>;

/// A failed check.
pub(super) fn fail(reason: impl Into<String>) -> NotPass {
    NotPass(Outcome::Fail(reason.into()))
}

/// An unsupported check.
pub(super) fn unsupported(reason: impl Into<String>) -> NotPass {
    NotPass(Outcome::Unsupported(reason.into()))
}

/// Fails the check with the formatted reason unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($reason:tt)+) => {
        if !$cond {
            return Err($crate::conformance::harness::fail(format!($($reason)+)));
        }
    };
}
pub(super) use ensure;

/// One started server under test.
pub(super) struct Harness {
    /// Behind a `SyncWrapper` so that `&Harness` may cross awaits in `Send`
    /// futures: the server is `Send` but need not be `Sync`.
    server: sync_wrapper::SyncWrapper<Box<dyn Server>>,
    pub(super) probe: Arc<ProbeState>,
    pub(super) version: Version,
    pub(super) address: ServerAddress,
    pub(super) client: Client,
    next_id: u64,
    stopped: bool,
}

/// How to open connections to the server, apart from the server itself (so
/// a check can connect while it stops the server).
#[derive(Clone, Debug)]
pub(super) struct Client {
    address: ServerAddress,
    connector: Option<Connector>,
    version: Version,
}

impl Client {
    /// Opens a new connection to the server's first address.
    pub(super) async fn connect(&self) -> Result<ClientConnection, Error> {
        self.connect_to(&self.address).await
    }

    /// Opens a new connection to one of the server's addresses.
    pub(super) async fn connect_to(
        &self,
        address: &ServerAddress,
    ) -> Result<ClientConnection, Error> {
        match (address, &self.connector) {
            (ServerAddress::Memory(_), Some(connector)) => connector.connect().await,
            (ServerAddress::Memory(name), None) => Err(Error::unsupported(format!(
                "memory:{name} is listed but the server offers no Connector"
            ))),
            _ => ClientConnection::connect(address, self.version).await,
        }
    }
}

/// A response with its whole body read.
#[derive(Debug)]
pub(super) struct Received {
    pub(super) status: http::StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) digest: Digest,
    pub(super) body: Bytes,
    pub(super) trailers: Option<HeaderMap>,
}

impl Harness {
    /// Starts `server` with a fresh probe and finds where to reach it.
    pub(super) async fn start(
        mut server: Box<dyn Server>,
        version: Version,
    ) -> Result<Self, Outcome> {
        let probe = Arc::new(ProbeState::default());
        let app = Arc::new(Probe {
            state: probe.clone(),
        });
        if let Err(err) = server.start(app).await {
            return Err(Outcome::Fail(format!("start failed: {err}")));
        }
        let addresses = server
            .features()
            .get::<ServerAddresses>()
            .map(ServerAddresses::get)
            .unwrap_or_default();
        let connector = server.features().get::<Connector>().cloned();
        let Some(address) = addresses.into_iter().next() else {
            let _ = server.stop(tokio::time::Instant::now()).await;
            return Err(Outcome::Fail(
                "no address in ServerAddresses after start: the kit cannot reach the server".into(),
            ));
        };
        Ok(Harness {
            server: sync_wrapper::SyncWrapper::new(server),
            probe,
            version,
            address: address.clone(),
            client: Client {
                address,
                connector,
                version,
            },
            next_id: 0,
            stopped: false,
        })
    }

    /// Opens a new client connection to the server.
    pub(super) async fn connect(&self) -> Result<ClientConnection, Error> {
        self.client.connect().await
    }

    /// A request for `target` (origin form) with a fresh probe id and the
    /// given action: `Host` for HTTP/1.1, an absolute URI for HTTP/2.
    pub(super) fn request(
        &mut self,
        method: Method,
        target: &str,
        action: &str,
    ) -> (String, http::request::Builder) {
        self.next_id += 1;
        let id = self.next_id.to_string();
        let authority = match &self.address {
            ServerAddress::Tcp { addr, .. } => addr.to_string(),
            _ => "localhost".to_owned(),
        };
        let mut builder = http::Request::builder().method(method).header(ID, &id);
        if !action.is_empty() {
            builder = builder.header(ACTION, action);
        }
        builder = if self.version == Version::HTTP_2 {
            builder
                .version(Version::HTTP_2)
                .uri(format!("http://{authority}{target}"))
        } else {
            builder.uri(target).header(http::header::HOST, authority)
        };
        (id, builder)
    }

    /// Sends `request` on `conn` and reads the whole response.
    pub(super) async fn exchange(
        &self,
        conn: &mut ClientConnection,
        request: http::Request<BoxBody>,
    ) -> Result<Received, Error> {
        let response = conn.send(request).await?;
        receive(response).await
    }

    /// Sends `request` on a new connection and reads the whole response.
    pub(super) async fn send(&self, request: http::Request<BoxBody>) -> Result<Received, Error> {
        let mut conn = self.connect().await?;
        self.exchange(&mut conn, request).await
    }

    /// What the probe saw of request `id` once `ready` holds.
    pub(super) async fn seen(
        &self,
        id: &str,
        what: &str,
        ready: impl Fn(&Seen) -> bool,
    ) -> Result<Seen, NotPass> {
        self.probe
            .wait_for(id, PATIENCE, ready)
            .await
            .ok_or_else(|| fail(format!("the app never saw {what}")))
    }

    /// What the probe saw of request `id` once it ran.
    pub(super) async fn processed(&self, id: &str) -> Result<Seen, NotPass> {
        self.seen(id, "the request", |s| s.method.is_some()).await
    }

    /// Stops the server, once, within [`PATIENCE`]; the reason if that failed.
    pub(super) async fn stop(&mut self) -> Result<(), String> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let deadline = tokio::time::Instant::now() + PATIENCE / 2;
        match tokio::time::timeout(PATIENCE, self.server.get_mut().stop(deadline)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(format!("stop failed: {err}")),
            Err(_) => Err(format!("stop did not return within {PATIENCE:?}")),
        }
    }

    /// The server under test.
    pub(super) fn server(&mut self) -> &mut Box<dyn Server> {
        self.server.get_mut()
    }

    /// Marks the server stopped by the check itself.
    pub(super) fn mark_stopped(&mut self) {
        self.stopped = true;
    }
}

/// Reads a response's body to its end, with its digest and trailers.
pub(super) async fn receive(response: http::Response<BoxBody>) -> Result<Received, Error> {
    let (parts, mut body) = response.into_parts();
    let mut digest = Digest::default();
    let mut kept = bytes::BytesMut::new();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        match frame?.into_data() {
            Ok(data) => {
                digest.update(&data);
                // Small bodies are kept whole for exact comparison.
                if kept.len() < 64 * 1024 {
                    kept.extend_from_slice(&data);
                }
            }
            Err(frame) => {
                if let Ok(map) = frame.into_trailers() {
                    trailers.get_or_insert_with(HeaderMap::new).extend(map);
                }
            }
        }
    }
    Ok(Received {
        status: parts.status,
        headers: parts.headers,
        digest,
        body: kept.freeze(),
        trailers,
    })
}

/// A whole body.
pub(super) fn full(data: impl Into<Bytes>) -> BoxBody {
    crate::body::boxed(http_body_util::Full::new(data.into()))
}

/// An empty body.
pub(super) fn empty() -> BoxBody {
    full(Bytes::new())
}
