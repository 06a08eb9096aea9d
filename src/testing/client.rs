//! [`ClientConnection`]: one client connection to a server under test, and
//! [`Connector`], the server-level feature through which in-memory servers
//! are reached.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::future::BoxFuture;
use http::{StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;

use crate::body::BoxBody;
use crate::error::{Error, Result};
use crate::feature::ServerAddress;

/// What a [`Connector`] or a direct-mode connection runs for each request.
pub(super) type Dispatch = Box<
    dyn FnMut(http::Request<BoxBody>) -> BoxFuture<'static, Result<http::Response<BoxBody>>> + Send,
>;

/// One client connection to a server: HTTP/1.1 or HTTP/2 (prior knowledge)
/// over TCP, a unix socket or any byte stream, or straight into an in-memory
/// server. Requests sent on it share the connection (keep-alive); dropping it
/// closes the connection, which the server sees as the client going away.
///
/// The conformance kit talks to every server through this type; tests can
/// too.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use serverbridge::server::HttpServer;
/// use serverbridge::testing::ClientConnection;
/// use serverbridge::{HttpContext, Result, Server};
///
/// async fn hello(ctx: &mut HttpContext) -> Result<()> {
///     ctx.write("hi").await
/// }
///
/// let mut server = HttpServer::new().bind("127.0.0.1:0".parse().unwrap());
/// server.start(std::sync::Arc::new(hello)).await.unwrap();
/// let address = server.addresses().get()[0].clone();
/// let mut client = ClientConnection::connect(&address, http::Version::HTTP_11).await.unwrap();
/// let request = http::Request::get("/").header("host", "localhost").body(Default::default()).unwrap();
/// let response = client.send(request).await.unwrap();
/// assert_eq!(response.status(), 200);
/// # server.stop(tokio::time::Instant::now()).await.unwrap();
/// # });
/// ```
pub struct ClientConnection {
    inner: Inner,
    version: Version,
    /// The task driving the transport, if any.
    _task: Option<AbortOnDrop>,
}

enum Inner {
    Http1(hyper::client::conn::http1::SendRequest<BoxBody>),
    Http2(hyper::client::conn::http2::SendRequest<BoxBody>),
    Direct(Dispatch),
}

/// Aborts the connection task (dropping the transport) when the client
/// connection is dropped: the server sees the peer go away.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl fmt::Debug for ClientConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.inner {
            Inner::Http1(_) => "http1",
            Inner::Http2(_) => "http2",
            Inner::Direct(_) => "direct",
        };
        f.debug_struct("ClientConnection")
            .field("kind", &kind)
            .finish()
    }
}

impl ClientConnection {
    /// Connects to a TCP or unix address with `version` (`HTTP_11`, or
    /// `HTTP_2` with prior knowledge). A [`ServerAddress::Memory`] address
    /// has no socket: use the server's [`Connector`].
    pub async fn connect(address: &ServerAddress, version: Version) -> Result<Self> {
        match address {
            ServerAddress::Tcp { addr, .. } => {
                let stream = tokio::net::TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                ClientConnection::over(stream, version).await
            }
            ServerAddress::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path).await?;
                ClientConnection::over(stream, version).await
            }
            other => Err(Error::unsupported(format!(
                "{other} is not a socket address; connect through the server's Connector"
            ))),
        }
    }

    /// Runs HTTP/1.1 or HTTP/2 (prior knowledge) over any byte stream.
    pub async fn over<T>(io: T, version: Version) -> Result<Self>
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let io = TokioIo::new(io);
        if version == Version::HTTP_2 {
            let (sender, conn) =
                hyper::client::conn::http2::handshake::<_, _, BoxBody>(TokioExecutor::new(), io)
                    .await
                    .map_err(client_error)?;
            let task = tokio::spawn(async move {
                let _ = conn.await;
            });
            return Ok(ClientConnection {
                inner: Inner::Http2(sender),
                version,
                _task: Some(AbortOnDrop(task)),
            });
        }
        let (sender, conn) = hyper::client::conn::http1::handshake::<_, BoxBody>(io)
            .await
            .map_err(client_error)?;
        let task = tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(ClientConnection {
            inner: Inner::Http1(sender),
            version: Version::HTTP_11,
            _task: Some(AbortOnDrop(task)),
        })
    }

    /// A connection that hands each request to `dispatch` (in-memory servers
    /// without bytes, such as TestServer's direct mode).
    pub(super) fn direct(dispatch: Dispatch) -> Self {
        ClientConnection {
            inner: Inner::Direct(dispatch),
            version: Version::HTTP_11,
            _task: None,
        }
    }

    /// The protocol version this connection speaks.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Sends a request and resolves with the response head; the body
    /// streams. HTTP/1.1 requests need a `Host` header (HTTP/2 ones an
    /// absolute URI), as on any real connection; an HTTP/1.1 upgrade is taken
    /// with `hyper::upgrade::on(&mut response)`.
    pub async fn send(
        &mut self,
        request: http::Request<BoxBody>,
    ) -> Result<http::Response<BoxBody>> {
        match &mut self.inner {
            Inner::Http1(sender) => {
                sender.ready().await.map_err(client_error)?;
                let response = sender.send_request(request).await.map_err(client_error)?;
                Ok(response.map(crate::body::boxed))
            }
            Inner::Http2(sender) => {
                sender.ready().await.map_err(client_error)?;
                let response = sender.send_request(request).await.map_err(client_error)?;
                Ok(response.map(crate::body::boxed))
            }
            Inner::Direct(dispatch) => dispatch(request).await,
        }
    }
}

/// Maps hyper's client errors onto [`Error`]'s kinds.
pub(super) fn client_error(err: hyper::Error) -> Error {
    if err.is_canceled() || err.is_closed() || err.is_incomplete_message() {
        Error::closed("the server closed the connection").with_cause(err)
    } else if err.is_parse() {
        Error::parse(
            "the server's response is malformed",
            StatusCode::BAD_GATEWAY,
        )
        .with_cause(err)
    } else {
        Error::io(std::io::Error::other(err))
    }
}

type ConnectFn =
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<ClientConnection>> + Send>> + Send + Sync;

/// A server-level feature of in-memory servers: opens a
/// [`ClientConnection`] to the server without a socket. Listed in
/// [`ServerAddresses`](crate::feature::ServerAddresses) as a
/// [`ServerAddress::Memory`] address.
///
/// Provided by: [`TestServer`](super::TestServer) once started; servers on
/// sockets do not need it.
#[derive(Clone)]
pub struct Connector {
    connect: Arc<ConnectFn>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Connector")
    }
}

impl Connector {
    /// A connector that runs `connect` for each new connection.
    pub fn new<F, Fut>(connect: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ClientConnection>> + Send + 'static,
    {
        Connector {
            connect: Arc::new(move || Box::pin(connect())),
        }
    }

    /// Opens a new connection; an error once the server has stopped.
    pub async fn connect(&self) -> Result<ClientConnection> {
        (self.connect)().await
    }
}
