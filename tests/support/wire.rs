//! Shared by the wire tests: the echo app, an in-memory connection to the
//! built-in server, a raw HTTP/1.1 response reader and byte escaping.
//!
//! Each test binary includes this file with `#[path]` and uses part of it.

#![allow(dead_code, reason = "each wire test binary uses a different part")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serverbridge::feature::ConnectionInfo;
use serverbridge::server::{HttpServer, Limits};
use serverbridge::Application;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;

/// The date every `date:` header value is replaced with before comparing
/// (the example date of RFC 9110 §5.6.7).
pub(crate) const FIXED_DATE: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

/// How long a read waits for the server before the test gives up.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// `examples/echo.rs`'s app itself: 200, `content-type: text/plain`, body
/// `method=<M> path=<P> query=<Q> body=<N>` (N: request body bytes read).
#[path = "../../examples/echo.rs"]
#[allow(
    dead_code,
    reason = "the example's main and argument parsing are unused here"
)]
mod echo_example;
pub(crate) use echo_example::echo;

/// The echo body for a request.
pub(crate) fn echo_body(method: &str, path: &str, query: &str, body: usize) -> String {
    format!("method={method} path={path} query={query} body={body}")
}

fn connection_info(n: u16) -> ConnectionInfo {
    let local: SocketAddr = "127.0.0.1:80".parse().expect("valid");
    let peer: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 40000 + n));
    ConnectionInfo::tcp(format!("c{n}"), local, peer)
}

/// Serves one in-memory connection with `app`; returns the client's end and
/// the connection task.
pub(crate) fn connect<A: Application>(
    app: A,
    limits: Limits,
) -> (Client<DuplexStream>, JoinHandle<()>) {
    connect_shared(Arc::new(app), limits, 1)
}

/// As [`connect`], with an app shared between connections.
pub(crate) fn connect_shared(
    app: serverbridge::BoxApplication,
    limits: Limits,
    n: u16,
) -> (Client<DuplexStream>, JoinHandle<()>) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let task = tokio::spawn(HttpServer::serve_connection(
        server,
        connection_info(n),
        app,
        limits,
    ));
    (Client::new(client), task)
}

/// A parsed response, as the client saw it.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    /// The status code.
    pub(crate) status: u16,
    /// The head, up to and including the empty line.
    pub(crate) head: String,
    /// Header names (lowercase) and values, in order.
    pub(crate) headers: Vec<(String, String)>,
    /// The decoded body.
    pub(crate) body: Vec<u8>,
    /// The trailers of a chunked body.
    pub(crate) trailers: Vec<(String, String)>,
    /// The raw bytes of the whole response.
    pub(crate) raw: Vec<u8>,
}

impl Response {
    /// The first value of a header.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the server said it will close.
    pub(crate) fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Why a response could not be parsed yet.
enum Incomplete {
    NeedMore,
    Invalid(String),
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_fields(text: &str) -> Vec<(String, String)> {
    text.split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(':') {
            Some((n, v)) => (n.to_ascii_lowercase(), v.trim().to_owned()),
            None => (l.to_owned(), String::new()),
        })
        .collect()
}

/// Parses one response at the front of `buf`; `eof`: no more bytes will come
/// (completes a close-delimited body).
fn parse_response(
    buf: &[u8],
    head_request: bool,
    eof: bool,
) -> std::result::Result<(Response, usize), Incomplete> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return Err(Incomplete::NeedMore);
    };
    let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
    let (status_line, rest) = head.split_once("\r\n").unwrap_or((&head, ""));
    let status: u16 = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Incomplete::Invalid(format!("bad status line {status_line:?}")))?;
    let headers = parse_fields(rest);
    let mut response = Response {
        status,
        head: head.clone(),
        headers,
        body: Vec::new(),
        trailers: Vec::new(),
        raw: Vec::new(),
    };
    let body_start = end + 4;
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let length = response
        .header("content-length")
        .map(|v| v.parse::<usize>());
    let used = if (100..200).contains(&status) || status == 204 || status == 304 || head_request {
        body_start
    } else if chunked {
        let mut at = body_start;
        loop {
            let Some(line_end) = find(&buf[at..], b"\r\n") else {
                return Err(Incomplete::NeedMore);
            };
            let line = String::from_utf8_lossy(&buf[at..at + line_end]).into_owned();
            let size_text = line.split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| Incomplete::Invalid(format!("bad chunk size line {line:?}")))?;
            at += line_end + 2;
            if size == 0 {
                let Some(t_end) = find(&buf[at..], b"\r\n") else {
                    return Err(Incomplete::NeedMore);
                };
                if t_end == 0 {
                    break at + 2;
                }
                let Some(t_end) = find(&buf[at..], b"\r\n\r\n") else {
                    return Err(Incomplete::NeedMore);
                };
                response.trailers =
                    parse_fields(&String::from_utf8_lossy(&buf[at..at + t_end + 2]));
                break at + t_end + 4;
            }
            if buf.len() < at + size + 2 {
                return Err(Incomplete::NeedMore);
            }
            response.body.extend_from_slice(&buf[at..at + size]);
            if &buf[at + size..at + size + 2] != b"\r\n" {
                return Err(Incomplete::Invalid("chunk not followed by CRLF".into()));
            }
            at += size + 2;
        }
    } else if let Some(length) = length {
        let length =
            length.map_err(|_| Incomplete::Invalid("bad content-length in response".into()))?;
        if buf.len() < body_start + length {
            return Err(Incomplete::NeedMore);
        }
        response
            .body
            .extend_from_slice(&buf[body_start..body_start + length]);
        body_start + length
    } else {
        // Close-delimited (RFC 9112 §6.3 rule 8).
        if !eof {
            return Err(Incomplete::NeedMore);
        }
        response.body.extend_from_slice(&buf[body_start..]);
        buf.len()
    };
    response.raw = buf[..used].to_vec();
    Ok((response, used))
}

/// The client end of a connection: raw writes, buffered reads.
#[derive(Debug)]
pub(crate) struct Client<S> {
    pub(crate) io: S,
    buf: Vec<u8>,
    eof: bool,
    timeout: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub(crate) fn new(io: S) -> Self {
        Client {
            io,
            buf: Vec::new(),
            eof: false,
            timeout: READ_TIMEOUT,
        }
    }

    /// Sets how long a read waits before the test fails (default
    /// [`READ_TIMEOUT`]).
    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Writes raw bytes (errors ignored: the server may have closed).
    pub(crate) async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        let _ = self.io.write_all(bytes.as_ref()).await;
        let _ = self.io.flush().await;
    }

    /// Reads more bytes into the buffer; `false` at EOF (or a reset).
    async fn fill(&mut self) -> bool {
        if self.eof {
            return false;
        }
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout(self.timeout, self.io.read(&mut chunk)).await {
            Err(_) => panic!(
                "no bytes from the server within {:?}; so far: {}",
                self.timeout,
                escape(&self.buf)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => {
                self.eof = true;
                false
            }
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Reads one response (a `1xx` counts as one).
    pub(crate) async fn response(&mut self) -> Response {
        self.response_to(false).await
    }

    /// Reads one response to a `HEAD` request (no body).
    pub(crate) async fn head_response(&mut self) -> Response {
        self.response_to(true).await
    }

    async fn response_to(&mut self, head_request: bool) -> Response {
        loop {
            match parse_response(&self.buf, head_request, self.eof) {
                Ok((response, used)) => {
                    self.buf.drain(..used);
                    return response;
                }
                Err(Incomplete::Invalid(why)) => {
                    panic!("invalid response ({why}): {}", escape(&self.buf))
                }
                Err(Incomplete::NeedMore) => {
                    if !self.fill().await {
                        panic!("the connection closed mid-response: {}", escape(&self.buf));
                    }
                }
            }
        }
    }

    /// Reads exactly `n` raw bytes.
    pub(crate) async fn exact(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            if !self.fill().await {
                panic!(
                    "the connection closed after {} of {n} bytes: {}",
                    self.buf.len(),
                    escape(&self.buf)
                );
            }
        }
        self.buf.drain(..n).collect()
    }

    /// Reads up to EOF; `None` if the server neither closed nor sent
    /// anything for `quiet` (what it sent so far stays buffered).
    pub(crate) async fn read_until_close_within(&mut self, quiet: Duration) -> Option<Vec<u8>> {
        let mut chunk = [0u8; 16 * 1024];
        while !self.eof {
            match tokio::time::timeout(quiet, self.io.read(&mut chunk)).await {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => self.eof = true,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
        Some(std::mem::take(&mut self.buf))
    }

    /// Reads everything up to EOF.
    pub(crate) async fn read_until_close(&mut self) -> Vec<u8> {
        while self.fill().await {}
        std::mem::take(&mut self.buf)
    }

    /// Asserts the server closes without sending anything more.
    pub(crate) async fn expect_eof(&mut self) {
        let rest = self.read_until_close().await;
        assert!(rest.is_empty(), "expected a close, got {}", escape(&rest));
    }

    /// Bytes received and not yet consumed, without waiting.
    pub(crate) async fn pending(&mut self) -> Vec<u8> {
        let mut chunk = [0u8; 16 * 1024];
        // Poll once: whatever is ready now, nothing else.
        if let Some(result) = futures::FutureExt::now_or_never(self.io.read(&mut chunk)) {
            match result {
                Ok(0) | Err(_) => self.eof = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
        self.buf.clone()
    }

    /// Whether the server has closed (as far as seen so far).
    pub(crate) fn is_eof(&self) -> bool {
        self.eof
    }
}

/// Replaces every `date:` header value with [`FIXED_DATE`], after checking it
/// looks like an IMF-fixdate (29 characters, ends in ` GMT`).
pub(crate) fn normalise_date(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(at) = find(rest, b"\r\ndate: ") {
        let value_start = at + 8;
        out.extend_from_slice(&rest[..value_start]);
        rest = &rest[value_start..];
        let value_end = find(rest, b"\r\n").unwrap_or(rest.len());
        let value = &rest[..value_end];
        if value.len() == 29 && value.ends_with(b" GMT") {
            out.extend_from_slice(FIXED_DATE.as_bytes());
        } else {
            out.extend_from_slice(value);
        }
        rest = &rest[value_end..];
    }
    out.extend_from_slice(rest);
    out
}

/// Bytes as readable text: printable ASCII as is, `\r` `\n` `\t` escaped,
/// everything else `\xNN`; a newline after each `\n` for readability.
pub(crate) fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 16);
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(char::from(b)),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}
