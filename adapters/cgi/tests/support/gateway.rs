//! A test-only in-process CGI gateway: a `Server` that accepts HTTP/1.1 on
//! TCP (hyper parses it), turns each request into CGI meta-variables and a
//! stdin stream the way Apache's mod_cgi does, calls
//! `serverbridge_cgi::serve` in-process with an in-memory stdout, and parses
//! the CGI output (header block, `Status:`, body) back into the HTTP
//! response. The conformance kit's probe runs in-process, so this is how the
//! kit sees a CGI app; `tests/apache.rs` covers the real process boundary.
//!
//! Apache's behaviours reproduced: `PATH_INFO` percent-decoded and
//! `REQUEST_URI` as sent; repeated headers joined with `, ` into one
//! `HTTP_*` variable; header names with `_` dropped; `CONTENT_LENGTH` only
//! when the request had one (a chunked body is streamed to stdin with
//! `HTTP_TRANSFER_ENCODING` set); `SERVER_ADDR`/`SERVER_PORT` and
//! `REMOTE_ADDR`/`REMOTE_PORT` from the socket; a response without
//! `Content-Length` is framed by the front end (chunked) and ends when
//! stdout ends; an app mounted at the root (`SCRIPT_NAME` empty).

use std::convert::Infallible;
use std::net::SocketAddr;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serverbridge::feature::{ServerAddress, ServerAddresses};
use serverbridge::{BoxApplication, Features, Result, Server};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The most a CGI header block may take.
const MAX_HEADER_BLOCK: usize = 64 * 1024;

type GatewayBody = BoxBody<Bytes, std::io::Error>;

/// The gateway `Server`.
pub(crate) struct Gateway {
    addr: SocketAddr,
    features: Features,
    addresses: ServerAddresses,
    running: Option<Running>,
}

struct Running {
    accept: JoinHandle<()>,
    graceful: CancellationToken,
    abort: CancellationToken,
    tracker: TaskTracker,
}

impl Gateway {
    /// A gateway that will listen on `addr`.
    pub(crate) fn new(addr: SocketAddr) -> Self {
        let addresses = ServerAddresses::default();
        let mut features = Features::new();
        features.insert(addresses.clone());
        Gateway {
            addr,
            features,
            addresses,
            running: None,
        }
    }
}

#[async_trait]
impl Server for Gateway {
    fn features(&self) -> &Features {
        &self.features
    }

    async fn start(&mut self, app: BoxApplication) -> Result<()> {
        let listener = TcpListener::bind(self.addr).await?;
        let local = listener.local_addr()?;
        self.addresses.push(ServerAddress::Tcp {
            scheme: "http".into(),
            addr: local,
        });
        let graceful = CancellationToken::new();
        let abort = CancellationToken::new();
        let tracker = TaskTracker::new();
        let (g, a, t) = (graceful.clone(), abort.clone(), tracker.clone());
        let accept = tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                let app = app.clone();
                let (graceful, abort) = (g.clone(), a.clone());
                t.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let app = app.clone();
                        async move { Ok::<_, Infallible>(handle(request, local, peer, app).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => return,
                        () = graceful.cancelled() => conn.as_mut().graceful_shutdown(),
                    }
                    tokio::select! {
                        _ = conn => {}
                        () = abort.cancelled() => {}
                    }
                });
            }
        });
        self.running = Some(Running {
            accept,
            graceful,
            abort,
            tracker,
        });
        Ok(())
    }

    async fn stop(&mut self, deadline: Instant) -> Result<()> {
        let Some(running) = self.running.take() else {
            return Ok(());
        };
        running.accept.abort();
        let _ = running.accept.await;
        self.addresses.clear();
        running.graceful.cancel();
        running.tracker.close();
        if tokio::time::timeout_at(deadline, running.tracker.wait())
            .await
            .is_err()
        {
            running.abort.cancel();
            running.tracker.wait().await;
        }
        Ok(())
    }
}

/// `%XX` decoded, as Apache does for `PATH_INFO` (invalid escapes kept).
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The meta-variables for one request, as Apache would set them.
pub(crate) fn meta_variables(
    parts: &http::request::Parts,
    local: SocketAddr,
    peer: SocketAddr,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("GATEWAY_INTERFACE".to_owned(), "CGI/1.1".to_owned()),
        (
            "SERVER_SOFTWARE".to_owned(),
            "serverbridge-test-gateway".to_owned(),
        ),
        ("SERVER_PROTOCOL".to_owned(), format!("{:?}", parts.version)),
        ("REQUEST_METHOD".to_owned(), parts.method.to_string()),
        ("REQUEST_URI".to_owned(), parts.uri.to_string()),
        ("SCRIPT_NAME".to_owned(), String::new()),
        ("PATH_INFO".to_owned(), percent_decode(parts.uri.path())),
        (
            "QUERY_STRING".to_owned(),
            parts.uri.query().unwrap_or("").to_owned(),
        ),
        ("SERVER_NAME".to_owned(), local.ip().to_string()),
        ("SERVER_ADDR".to_owned(), local.ip().to_string()),
        ("SERVER_PORT".to_owned(), local.port().to_string()),
        ("REMOTE_ADDR".to_owned(), peer.ip().to_string()),
        ("REMOTE_PORT".to_owned(), peer.port().to_string()),
    ];
    let mut joined: Vec<(String, String)> = Vec::new();
    for name in parts.headers.keys() {
        let values: Vec<String> = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        let value = values.join(", ");
        match name.as_str() {
            "content-length" => env.push(("CONTENT_LENGTH".into(), value)),
            "content-type" => env.push(("CONTENT_TYPE".into(), value)),
            n if n.contains('_') => {}
            n => joined.push((
                format!("HTTP_{}", n.to_ascii_uppercase().replace('-', "_")),
                value,
            )),
        }
    }
    env.extend(joined);
    env
}

async fn handle(
    request: Request<Incoming>,
    local: SocketAddr,
    peer: SocketAddr,
    app: BoxApplication,
) -> Response<GatewayBody> {
    let (parts, mut body) = request.into_parts();
    let env = meta_variables(&parts, local, peer);
    // stdin: the request body, streamed as it arrives.
    let (stdin, mut stdin_feed) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                if stdin_feed.write_all(&data).await.is_err() {
                    break;
                }
            }
        }
    });
    let (mut stdout, stdout_end) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let _ = serverbridge_cgi::serve(env, stdin, stdout_end, &*app).await;
    });
    match read_header_block(&mut stdout).await {
        Ok((status, headers, rest)) => {
            let mut response = Response::new(body_of(rest, stdout));
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            response
        }
        Err(why) => {
            let mut response =
                Response::new(Full::new(Bytes::from(why)).map_err(|e| match e {}).boxed());
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            response
        }
    }
}

fn body_of(first: Bytes, rest: tokio::io::DuplexStream) -> GatewayBody {
    let first = futures::stream::iter((!first.is_empty()).then(|| Ok(first)));
    let rest = tokio_util::io::ReaderStream::new(rest);
    let stream = futures::StreamExt::map(futures::StreamExt::chain(first, rest), |r| {
        r.map(Frame::data)
    });
    BodyExt::boxed(StreamBody::new(stream))
}

/// Reads the CGI header block: `Name: value` lines (LF or CRLF) up to a
/// blank line. `Status:` gives the status (else 302 with `Location`, else
/// 200). Returns the body bytes read past the block.
async fn read_header_block(
    stdout: &mut (impl AsyncRead + Unpin),
) -> std::result::Result<(StatusCode, HeaderMap, Bytes), String> {
    let mut buf = BytesMut::new();
    let end = loop {
        if let Some(end) = find_blank_line(&buf) {
            break end;
        }
        if buf.len() > MAX_HEADER_BLOCK {
            return Err("the CGI header block is too long".into());
        }
        match stdout.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return Err("the CGI program wrote no header block".into()),
            Ok(_) => {}
        }
    };
    let (block, skip) = end;
    let head = buf.split_to(block);
    let _ = buf.split_to(skip);
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut status = None;
    let mut headers = HeaderMap::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("not a header line: {line:?}"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split(' ').next().unwrap_or("");
            status = Some(
                code.parse::<StatusCode>()
                    .map_err(|_| format!("bad Status: {value:?}"))?,
            );
            continue;
        }
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
        let value = HeaderValue::from_str(value).map_err(|e| e.to_string())?;
        headers.append(name, value);
    }
    let status = status.unwrap_or(if headers.contains_key(http::header::LOCATION) {
        StatusCode::FOUND
    } else {
        StatusCode::OK
    });
    Ok((status, headers, buf.freeze()))
}

/// Where the header block ends: (its length, the blank line's length).
fn find_blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    for i in 0..buf.len() {
        if buf[i..].starts_with(b"\n\n") {
            return Some((i + 1, 1));
        }
        if buf[i..].starts_with(b"\n\r\n") {
            return Some((i + 1, 2));
        }
    }
    None
}
