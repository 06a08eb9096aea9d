//! Run with: cargo run --example custom_server
//!
//! The smallest honest HTTP server written only against serverbridge's public
//! contract: the guide to writing a server (the analogue of Nowin for OWIN).
//!
//! It serves one request per connection, reads request bodies by
//! `Content-Length`, answers with `Content-Length`, and provides the three
//! required features plus `ConnectionInfo`. Everything else a real server
//! does (keep-alive, chunked bodies, limits, timeouts) is left out on purpose;
//! `src/server/` is the full version. A server that streams its responses can
//! take the head and chunk framing from `serverbridge::http1`, as the built-in
//! server and the tiny_http adapter do.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serverbridge::body::RequestBody;
use serverbridge::feature::{
    ConnectionInfo, RequestFeature, ResponseBody, ResponseFeature, ResponseHead, ServerAddress,
    ServerAddresses,
};
use serverbridge::{lifecycle, BoxApplication, Error, Features, HttpContext, Result, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A server is a type that implements `Server`. Ours remembers where it
/// listens (its server-level features) and its accept loop.
#[derive(Debug)]
pub struct CustomServer {
    addr: SocketAddr,
    /// Server-level features: `ServerAddresses` is the one apps (and the
    /// conformance kit) look for after `start`.
    features: Features,
    addresses: ServerAddresses,
    accept_loop: Option<JoinHandle<()>>,
}

impl CustomServer {
    /// A server that will listen on `addr` (port 0 picks a free port).
    pub fn new(addr: SocketAddr) -> Self {
        let addresses = ServerAddresses::default();
        let mut features = Features::new();
        features.insert(addresses.clone());
        CustomServer {
            addr,
            features,
            addresses,
            accept_loop: None,
        }
    }
}

#[async_trait]
impl Server for CustomServer {
    fn features(&self) -> &Features {
        &self.features
    }

    /// `start` binds, publishes the real address, starts accepting, and
    /// returns: it does not wait for the server to end.
    async fn start(&mut self, app: BoxApplication) -> Result<()> {
        let listener = TcpListener::bind(self.addr).await?;
        let local = listener.local_addr()?;
        self.addresses.push(ServerAddress::Tcp {
            scheme: "http".into(),
            addr: local,
        });
        self.accept_loop = Some(tokio::spawn(async move {
            let mut next_id = 0u64;
            while let Ok((stream, peer)) = listener.accept().await {
                next_id += 1;
                let info = ConnectionInfo::tcp(format!("C{next_id}"), local, peer);
                // One task per connection; a failing connection stays its own.
                tokio::spawn(serve(stream, info, app.clone()));
            }
        }));
        Ok(())
    }

    /// `stop` stops accepting. With one request per connection there is no
    /// idle connection to close; in-flight ones finish on their own.
    async fn stop(&mut self, _deadline: Instant) -> Result<()> {
        if let Some(accept_loop) = self.accept_loop.take() {
            accept_loop.abort();
        }
        self.addresses.clear();
        Ok(())
    }
}

/// One connection: read a head, build the features, run the lifecycle.
async fn serve(mut stream: TcpStream, info: ConnectionInfo, app: BoxApplication) {
    // 1. Read until the end of the head (a real server bounds this).
    let mut buf = BytesMut::with_capacity(4096);
    let head_len = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if buf.len() > 64 * 1024 || matches!(stream.read_buf(&mut buf).await, Ok(0) | Err(_)) {
            return;
        }
    };
    // 2. Parse it with httparse. Anything it rejects gets a 400.
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut slots);
    let Ok(httparse::Status::Complete(_)) = parsed.parse(&buf[..head_len]) else {
        let _ = stream
            .write_all(
                b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await;
        return;
    };
    let mut headers = HeaderMap::new();
    for h in parsed.headers.iter() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) {
            headers.append(name, value);
        }
    }
    let method =
        Method::from_bytes(parsed.method.unwrap_or("GET").as_bytes()).unwrap_or(Method::GET);
    let target = parsed.path.unwrap_or("/").to_owned();
    // 3. The body: exactly Content-Length bytes (none without one). A body
    //    this server cannot read (chunked) is refused, never read as empty.
    if headers.contains_key(http::header::TRANSFER_ENCODING) {
        let _ = stream
            .write_all(
                b"HTTP/1.1 501 Not Implemented\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await;
        return;
    }
    let length: usize = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf.split_off(head_len);
    while body.len() < length {
        if matches!(stream.read_buf(&mut body).await, Ok(0) | Err(_)) {
            return;
        }
    }
    body.truncate(length);

    // 4. The required features. `RequestFeature` keeps the path as sent and
    //    the query without '?'.
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), query.to_owned()),
        None => (target.clone(), String::new()),
    };
    let request = RequestFeature {
        method,
        scheme: http::uri::Scheme::HTTP,
        path_base: String::new(),
        path,
        query,
        raw_target: target,
        version: http::Version::HTTP_11,
        headers,
        body: RequestBody::full(body.freeze()),
    };
    let sink = BufferedSink::default();
    let mut features = Features::new();
    features.insert(request);
    features.insert(ResponseFeature::default());
    features.insert_dyn::<dyn ResponseBody>(Box::new(sink.clone()));
    features.insert(info);

    // 5. The lifecycle: create, process, head, body, callbacks, dispose. A
    //    failing app gets its 500 here, with nothing to do on our side.
    let outcome = lifecycle::run_request(&*app, features).await;

    // 6. Send what the sink collected, unless the response was aborted.
    if outcome.completed {
        let bytes = sink.take();
        let _ = stream.write_all(&bytes).await;
    }
    let _ = stream.shutdown().await;
}

/// The `ResponseBody` sink: it collects the head and body in memory and the
/// connection writes them at the end, with `Content-Length`. (A streaming
/// server writes as it goes; the contract allows both.)
#[derive(Clone, Default)]
struct BufferedSink {
    out: Arc<Mutex<(BytesMut, BytesMut)>>,
}

impl BufferedSink {
    fn take(&self) -> Bytes {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let (head, body) = &mut *out;
        head.extend_from_slice(
            format!(
                "content-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        head.extend_from_slice(body);
        head.split().freeze()
    }
}

#[async_trait]
impl ResponseBody for BufferedSink {
    async fn start(&mut self, head: ResponseHead<'_>) -> Result<()> {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let status = head.status.as_u16();
        out.0
            .extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", head.reason).as_bytes());
        for (name, value) in head.headers {
            // We frame the body ourselves.
            if name == http::header::CONTENT_LENGTH || name == http::header::TRANSFER_ENCODING {
                continue;
            }
            out.0.extend_from_slice(name.as_str().as_bytes());
            out.0.extend_from_slice(b": ");
            out.0.extend_from_slice(value.as_bytes());
            out.0.extend_from_slice(b"\r\n");
        }
        Ok(())
    }

    async fn write(&mut self, data: Bytes) -> Result<()> {
        self.out
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .extend_from_slice(&data);
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    async fn complete(&mut self, _trailers: Option<HeaderMap>) -> Result<()> {
        Ok(())
    }
}

/// The app the example serves: says what it received.
async fn describe(ctx: &mut HttpContext) -> Result<()> {
    let body = ctx.read_body(1 << 20).await?;
    let request = ctx.request();
    let peer = ctx.connection().and_then(|c| c.peer.clone());
    let text = format!(
        "{} {} query={} body={} peer={}",
        request.method,
        request.path,
        request.query,
        body.len(),
        peer.map_or_else(|| "?".into(), |p| p.to_string())
    );
    ctx.response_mut().status = StatusCode::OK;
    ctx.write(text).await
}

#[allow(
    dead_code,
    reason = "the test that includes this file starts its own server"
)]
#[tokio::main]
async fn main() -> std::result::Result<(), Error> {
    let mut server = CustomServer::new("127.0.0.1:5002".parse().expect("valid"));
    server.start(Arc::new(describe)).await?;
    for url in server.addresses.urls() {
        println!("listening on {url}");
    }
    tokio::signal::ctrl_c().await?;
    server.stop(Instant::now()).await
}
