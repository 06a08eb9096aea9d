//! [`TestServer`]'s wire mode: each request goes as bytes through the
//! built-in server's HTTP/1.1 engine over an in-memory duplex, with hyper's
//! client on the other end.

use http::{StatusCode, Uri};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::io::DuplexStream;

use super::client::client_error;
use super::faults::Fault;
use super::server::{ensure_host, TestBody, TestRequest, TestResponse, TestServer};
use crate::error::{Error, Result};
use crate::feature::{ConnectionInfo, TlsInfo};
use crate::features::Features;
use crate::pipe::ReasonPhrase;

/// Room in each direction of the in-memory connection.
const DUPLEX_CAPACITY: usize = 64 * 1024;

/// Starts a server connection over a duplex and returns the client end.
pub(super) fn connect(
    server: &TestServer,
    connection: Option<ConnectionInfo>,
    tls: Option<TlsInfo>,
) -> Result<DuplexStream> {
    let app = server.app()?;
    let defaults = &server.connection_defaults;
    // Server-level features show through on every request, as on a real
    // server.
    let mut features = Features::with_defaults(server.server_features.clone());
    // Each request is a connection of its own: the server's connection info
    // with an id of its own (the request ids, `<connection id>:<n>`, would
    // all be `…:1` otherwise); one a request names is taken as it is.
    let info = connection.unwrap_or_else(|| {
        let mut info = defaults
            .get::<ConnectionInfo>()
            .cloned()
            .unwrap_or_default();
        let n = server.next_number();
        info.id = format!("{}-W{n}", info.id);
        info
    });
    features.insert(info);
    if let Some(tls) = tls.or_else(|| defaults.get::<TlsInfo>().cloned()) {
        features.insert(tls);
    }
    let (client, server_io) = tokio::io::duplex(DUPLEX_CAPACITY);
    // Under the server's run: `stop` waits for it, and ends it.
    server.spawn_connection(server_io, features, app);
    Ok(client)
}

impl TestServer {
    /// A raw connection to the built-in server's engine running this app:
    /// write exact bytes, read exact bytes (protocol tests). Works in either
    /// mode; connection and TLS info are the server's.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// async fn hello(ctx: &mut serverbridge::HttpContext) -> serverbridge::Result<()> {
    ///     ctx.write("hi").await
    /// }
    ///
    /// let server = serverbridge::testing::TestServer::new(hello);
    /// let mut io = server.raw().unwrap();
    /// io.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap(); // no Host
    /// let mut reply = Vec::new();
    /// io.read_to_end(&mut reply).await.unwrap();
    /// assert!(reply.starts_with(b"HTTP/1.1 400 Bad Request\r\n"));
    /// # });
    /// ```
    pub fn raw(&self) -> Result<DuplexStream> {
        connect(self, None, None)
    }
}

/// Sends one request on a fresh connection.
pub(super) async fn send(mut request: TestRequest<'_>) -> Result<TestResponse> {
    let body = request.take_faulted_body();
    // A client gone before any body byte (or with no body to send) leaves
    // right after its head: the server then sees the head, then the close,
    // whether or not there is a body whose failure would drop the
    // connection.
    let leaves_after_head = match request.fault {
        Some(Fault::AbortBeforeBody) => true,
        Some(Fault::AbortAfterBodyBytes(_)) => http_body::Body::is_end_stream(&body),
        _ => false,
    };
    let TestRequest {
        server,
        method,
        uri,
        version,
        mut headers,
        connection,
        tls,
        lifetime,
        ..
    } = request;
    let lifetime = lifetime.into_inner().unwrap_or_default();
    let parsed: Uri = uri.parse().map_err(|e| {
        Error::parse("invalid request target", StatusCode::BAD_REQUEST).with_cause(e)
    })?;
    ensure_host(
        &mut headers,
        parsed.authority().map(|a| a.as_str()),
        version,
    );
    // An `https://` target stands for a TLS connection, as in direct mode
    // (and ASP.NET Core's TestServer): the engine then says `https`.
    let https = parsed.scheme() == Some(&http::uri::Scheme::HTTPS);
    let tls = tls.map(|t| *t).or_else(|| https.then(TlsInfo::default));
    let io = connect(server, connection.map(|c| *c), tls)?;
    let io = LeavesAfterHead {
        io,
        armed: leaves_after_head,
        matched: 0,
        gone: false,
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(client_error)?;
    // The client half lives until the response ends, or until the test
    // aborts the request: then it drops, as a client that goes away.
    let abort = lifetime.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = conn => {}
            _ = abort.cancelled() => {}
        }
    });
    let mut outgoing = http::Request::new(body);
    *outgoing.method_mut() = method;
    *outgoing.uri_mut() = parsed;
    *outgoing.version_mut() = version;
    *outgoing.headers_mut() = headers;
    let aborted = || Error::aborted("the test aborted the request");
    let response = tokio::select! {
        biased;
        () = lifetime.cancelled() => return Err(aborted()),
        response = sender.send_request(outgoing) => match response {
            Ok(response) => response,
            // The abort dropped the connection first: still the abort.
            Err(_) if lifetime.is_cancelled() => return Err(aborted()),
            Err(err) => return Err(client_error(err)),
        },
    };
    let (mut parts, incoming) = response.into_parts();
    if let Some(reason) = parts.extensions.remove::<hyper::ext::ReasonPhrase>() {
        let text = String::from_utf8_lossy(reason.as_bytes()).into_owned();
        parts.extensions.insert(ReasonPhrase(text));
    }
    Ok(TestResponse {
        parts,
        body: TestBody::Wire(crate::body::boxed(incoming.map_err(body_error))),
        trailers: None,
    })
}

/// A response body that ends before its end is the server's abort (nothing
/// else closes an in-memory connection mid-response): `is_aborted()`, as in
/// direct mode.
fn body_error(err: hyper::Error) -> Error {
    let eof = std::error::Error::source(&err)
        .and_then(|cause| cause.downcast_ref::<std::io::Error>())
        .is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof);
    if eof || err.is_incomplete_message() || err.is_closed() || err.is_canceled() {
        Error::aborted("the response was cut off").with_cause(err)
    } else {
        client_error(err)
    }
}

/// The client's end of the connection; when `armed`, it goes away once the
/// request head is written (the blank line that ends it): reads and writes
/// fail from then on, the client drops the connection, and the server reads
/// the head, then the end.
struct LeavesAfterHead {
    io: DuplexStream,
    armed: bool,
    /// How much of `\r\n\r\n` the bytes written so far end with.
    matched: usize,
    gone: bool,
}

impl LeavesAfterHead {
    fn gone_error() -> std::io::Error {
        std::io::Error::from(std::io::ErrorKind::ConnectionAborted)
    }
}

impl tokio::io::AsyncRead for LeavesAfterHead {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.gone {
            return std::task::Poll::Ready(Err(Self::gone_error()));
        }
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for LeavesAfterHead {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.gone {
            return std::task::Poll::Ready(Err(Self::gone_error()));
        }
        if !self.armed {
            return std::pin::Pin::new(&mut self.io).poll_write(cx, buf);
        }
        // Only the head goes out: up to its blank line.
        let len = head_end(self.matched, buf).unwrap_or(buf.len());
        let written =
            std::task::ready!(std::pin::Pin::new(&mut self.io).poll_write(cx, &buf[..len]));
        if let Ok(n) = written {
            match head_end(self.matched, &buf[..n]) {
                Some(_) => self.gone = true,
                None => self.matched = blank_line_progress(self.matched, &buf[..n]),
            }
        }
        std::task::Poll::Ready(written)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Where the head's blank line ends in `bytes` (the index after it), given
/// `matched` bytes of `\r\n\r\n` before them.
fn head_end(matched: usize, bytes: &[u8]) -> Option<usize> {
    let mut state = matched;
    for (i, &byte) in bytes.iter().enumerate() {
        state = blank_line_step(state, byte);
        if state == 4 {
            return Some(i + 1);
        }
    }
    None
}

/// How much of `\r\n\r\n` the bytes so far end with, after `bytes`.
fn blank_line_progress(matched: usize, bytes: &[u8]) -> usize {
    bytes
        .iter()
        .fold(matched, |state, &byte| blank_line_step(state, byte))
}

fn blank_line_step(state: usize, byte: u8) -> usize {
    match (state, byte) {
        (0 | 2, b'\r') => state + 1,
        (1 | 3, b'\n') => state + 1,
        (_, b'\r') => 1,
        _ => 0,
    }
}
