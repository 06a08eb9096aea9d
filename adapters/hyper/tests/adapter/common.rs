//! Shared helpers: the echo app, starting servers, hyper clients.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serverbridge::feature::ServerAddress;
use serverbridge::{Application, HttpContext, Result, Server};
use serverbridge_hyper::HyperServer;

/// Bounds every wait in these tests.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

/// Echoes the request: `x-method`, `x-path`, `x-query`, `x-version`,
/// `x-target` and every `x-echo-*` request header come back as response
/// headers; the body comes back as the body.
pub(crate) async fn echo(ctx: &mut HttpContext) -> Result<()> {
    let request = ctx.request();
    let mut echoed = vec![
        ("x-method", request.method.to_string()),
        ("x-path", request.path.clone()),
        ("x-query", request.query.clone()),
        ("x-version", format!("{:?}", request.version)),
        ("x-target", request.raw_target.clone()),
        ("x-host", request.host().unwrap_or("").to_owned()),
    ];
    let copied: Vec<_> = request
        .headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-echo-"))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let body = ctx.read_body(1 << 20).await?;
    let headers = &mut ctx.response_mut().headers;
    for (name, value) in echoed.drain(..) {
        headers.insert(name, HeaderValue::from_str(&value).unwrap());
    }
    for (name, value) in copied {
        headers.append(name, value);
    }
    ctx.write(body).await
}

/// Starts `app` on a `HyperServer` bound to 127.0.0.1:0.
pub(crate) async fn start(app: impl Application) -> (HyperServer, SocketAddr) {
    start_server(HyperServer::new(), app).await
}

/// Starts `app` on `server` (bound to 127.0.0.1:0 here) and returns its address.
pub(crate) async fn start_server(
    server: HyperServer,
    app: impl Application,
) -> (HyperServer, SocketAddr) {
    let mut server = server.bind("127.0.0.1:0".parse().unwrap());
    server.start(Arc::new(app)).await.unwrap();
    let addr = first_tcp(&server);
    (server, addr)
}

/// The first TCP address a server published.
pub(crate) fn first_tcp(server: &dyn Server) -> SocketAddr {
    let addresses = server
        .features()
        .get::<serverbridge::feature::ServerAddresses>()
        .expect("ServerAddresses")
        .get();
    addresses
        .iter()
        .find_map(|a| match a {
            ServerAddress::Tcp { addr, .. } => Some(*addr),
            _ => None,
        })
        .expect("a TCP address")
}

/// A request body type both clients send.
pub(crate) type ClientBody = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

/// A full client body.
pub(crate) fn full(data: impl Into<Bytes>) -> ClientBody {
    Full::new(data.into()).boxed()
}

/// An HTTP/1.1 client connection (upgrades allowed).
pub(crate) async fn h1(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<ClientBody> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn.with_upgrades());
    send
}

/// An HTTP/2 client connection with prior knowledge.
pub(crate) async fn h2(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<ClientBody> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    send
}

/// Reads a whole response: head and body bytes.
pub(crate) async fn collect(response: Response<Incoming>) -> (http::response::Parts, Bytes) {
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(PATIENCE, body.collect())
        .await
        .expect("the body in time")
        .expect("a whole body")
        .to_bytes();
    (parts, body)
}

/// A request builder with a host.
pub(crate) fn request(method: &str, uri: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "test.local")
}

/// An HTTP/2 request builder: absolute URI on `test.local`.
pub(crate) fn request_h2(method: &str, path: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(format!("http://test.local{path}"))
        .version(http::Version::HTTP_2)
}

/// A header value as text.
pub(crate) fn header<'a>(parts: &'a http::response::Parts, name: &str) -> &'a str {
    parts
        .headers
        .get(HeaderName::from_bytes(name.as_bytes()).unwrap())
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

/// A stopping deadline `secs` from now.
pub(crate) fn deadline(secs: u64) -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(secs)
}

/// Writes `bytes` on a new connection and reads until the server closes it
/// (bounded by [`PATIENCE`]).
pub(crate) async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, socket.read_to_end(&mut out))
        .await
        .expect("the server closes the connection")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}
