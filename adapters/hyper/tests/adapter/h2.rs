//! HTTP/2 on the adapter, against a raw peer where a client would not send
//! the frames: the request mapping (asterisk form, scheme, `:authority`
//! against `Host`), flow control between streams, lifetimes on resets and
//! on stop, body limits and length mismatches, and the silent connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serverbridge::application::from_fn;
use serverbridge::{HttpContext, Result, Server};
use serverbridge_hyper::{HyperServer, Settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::common::*;

// ---------------------------------------------------------------------------
// A raw HTTP/2 peer: frames by hand, HPACK literals without indexing.

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A HEADERS frame (END_HEADERS; END_STREAM when `end`) with every field as
/// a literal without indexing, new name, no Huffman.
fn headers_frame(stream: u32, end: bool, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in fields {
        assert!(name.len() < 127 && value.len() < 127);
        block.push(0x00);
        block.push(name.len() as u8);
        block.extend_from_slice(name.as_bytes());
        block.push(value.len() as u8);
        block.extend_from_slice(value.as_bytes());
    }
    frame(0x1, 0x4 | if end { 0x1 } else { 0 }, stream, &block)
}

fn data_frame(stream: u32, end: bool, data: &[u8]) -> Vec<u8> {
    frame(0x0, if end { 0x1 } else { 0 }, stream, data)
}

struct RawH2 {
    socket: tokio::net::TcpStream,
}

#[derive(Debug)]
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

impl RawH2 {
    async fn connect(addr: SocketAddr) -> RawH2 {
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        socket.write_all(PREFACE).await.unwrap();
        socket.write_all(&frame(0x4, 0, 0, &[])).await.unwrap();
        RawH2 { socket }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.socket.write_all(bytes).await.unwrap();
    }

    /// The next frame (SETTINGS are acknowledged, PINGs answered, both
    /// skipped); `None` when the server closes.
    async fn next(&mut self) -> Option<Frame> {
        loop {
            let mut head = [0u8; 9];
            if self.socket.read_exact(&mut head).await.is_err() {
                return None;
            }
            let len = (head[0] as usize) << 16 | (head[1] as usize) << 8 | head[2] as usize;
            let mut payload = vec![0u8; len];
            if self.socket.read_exact(&mut payload).await.is_err() {
                return None;
            }
            let f = Frame {
                kind: head[3],
                flags: head[4],
                stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
                payload,
            };
            match f.kind {
                0x4 if f.flags & 1 == 0 => {
                    let ack = frame(0x4, 1, 0, &[]);
                    let _ = self.socket.write_all(&ack).await;
                }
                0x4 | 0x8 => {}
                0x6 if f.flags & 1 == 0 => {
                    let pong = frame(0x6, 1, 0, &f.payload);
                    let _ = self.socket.write_all(&pong).await;
                }
                0x6 => {}
                _ => return Some(f),
            }
        }
    }

    /// The first frame on `stream` (HEADERS or RST_STREAM, usually), or
    /// the GOAWAY, bounded by PATIENCE.
    async fn first_on(&mut self, stream: u32) -> Option<Frame> {
        tokio::time::timeout(PATIENCE, async {
            loop {
                let f = self.next().await?;
                if f.stream == stream || f.kind == 0x7 {
                    return Some(f);
                }
            }
        })
        .await
        .expect("a frame in time")
    }
}

/// The `:status` of a response HEADERS block as hyper encodes the common
/// ones (an indexed field of the static table).
fn status_of(f: &Frame) -> Option<u16> {
    if f.kind != 0x1 {
        return None;
    }
    Some(match f.payload.first()? {
        0x88 => 200,
        0x89 => 204,
        0x8a => 206,
        0x8b => 304,
        0x8c => 400,
        0x8d => 404,
        0x8e => 500,
        _ => return None,
    })
}

fn describe(f: &Option<Frame>) -> String {
    match f {
        None => "the connection closed".into(),
        Some(f) if f.kind == 0x3 => format!(
            "RST_STREAM({})",
            u32::from_be_bytes(f.payload[..4].try_into().unwrap())
        ),
        Some(f) if f.kind == 0x7 => "GOAWAY".into(),
        Some(f) => format!("frame type {} status {:?}", f.kind, status_of(f)),
    }
}

// ---------------------------------------------------------------------------
// Apps.

/// Reports what the app saw of the request: scheme, path, raw target, host.
async fn what_the_app_saw(ctx: &mut HttpContext) -> Result<()> {
    let r = ctx.request();
    let text = format!(
        "scheme={} path={:?} target={:?} host={:?}",
        r.scheme,
        r.path,
        r.raw_target,
        r.host().unwrap_or("")
    );
    ctx.write(text).await
}

fn counting(seen: mpsc::UnboundedSender<String>) -> impl serverbridge::Application {
    from_fn(move |ctx| {
        let seen = seen.clone();
        Box::pin(async move {
            let r = ctx.request();
            let _ = seen.send(format!(
                "{} path={:?} target={:?}",
                r.method, r.path, r.raw_target
            ));
            ctx.write("ran").await
        })
    })
}

// ---------------------------------------------------------------------------
// Request mapping.

/// SPEC §1.2: `scheme` is what the connection was (`https` only with
/// TLS), not what the client claims. This adapter has no TLS, yet an h2c
/// client's `:scheme: https` becomes the request's scheme.
#[tokio::test]
async fn h2_scheme_is_the_connections_not_the_clients_claim() {
    let (mut server, addr) = start(what_the_app_saw).await;
    let mut client = h2(addr).await;
    let req = http::Request::builder()
        .uri("https://test.local/x")
        .version(http::Version::HTTP_2)
        .body(full(""))
        .unwrap();
    let (_, body) = collect(client.send_request(req).await.unwrap()).await;
    let text = String::from_utf8_lossy(&body);
    assert!(text.starts_with("scheme=http "), "cleartext h2c: {text}");
    server.stop(deadline(5)).await.unwrap();
}

/// RFC 9113 §8.3.1: `:path` is `*` only for an OPTIONS request; any other
/// request with `*` is malformed (§8.1.1: a stream error, or 400). SPEC
/// §13: on HTTP/1 the adapter answers `GET *` / `POST *` with 400 without
/// running the app, and SPEC §1.2 has `path` start with `/` (empty only
/// for `OPTIONS *`). On HTTP/2 the adapter skips the target-form check and
/// the app runs with path `*`. (`:path: a` is refused by h2 itself: the
/// control case.)
#[tokio::test]
async fn h2_asterisk_target_for_other_methods_is_refused_as_on_http1() {
    let (tx, mut seen) = mpsc::unbounded_channel();
    let (mut server, addr) = start(counting(tx)).await;
    let mut outcomes = Vec::new();
    let mut all_refused = true;
    for (method, path) in [("GET", "a"), ("GET", "*"), ("DELETE", "*")] {
        let mut peer = RawH2::connect(addr).await;
        peer.send(&headers_frame(
            1,
            true,
            &[
                (":method", method),
                (":scheme", "http"),
                (":authority", "test.local"),
                (":path", path),
            ],
        ))
        .await;
        let reply = peer.first_on(1).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let ran = seen.try_recv().ok();
        let refused = match &reply {
            Some(f) if f.kind == 0x3 => true,
            Some(f) => status_of(f) == Some(400),
            None => true,
        };
        all_refused &= refused && ran.is_none();
        outcomes.push(format!(
            "{method} {path:?}: {} app ran: {ran:?}",
            describe(&reply)
        ));
    }
    assert!(all_refused, "{}", outcomes.join("\n"));
    // The same targets on HTTP/1.1: 400, the app does not run.
    for line in ["GET *", "DELETE *"] {
        let out = raw_exchange(
            addr,
            format!("{line} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(out.starts_with("HTTP/1.1 400"), "{line}: {out}");
    }
    server.stop(deadline(5)).await.unwrap();
}

/// RFC 9113 §8.3.1: "A server SHOULD treat a request as malformed if it
/// contains a Host header field that identifies an entity that differs
/// from the entity in the :authority pseudo-header field." The adapter
/// passes the conflicting `Host` to the app (`host()` reads it), so the
/// app routes on a host the request's authority does not name.
#[tokio::test]
async fn h2_host_differing_from_authority_is_malformed() {
    let (mut server, addr) = start(what_the_app_saw).await;
    let mut peer = RawH2::connect(addr).await;
    peer.send(&headers_frame(
        1,
        true,
        &[
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "good.example"),
            (":path", "/"),
            ("host", "evil.example"),
        ],
    ))
    .await;
    let reply = peer.first_on(1).await;
    let refused = match &reply {
        Some(f) if f.kind == 0x3 => true,
        Some(f) => status_of(f) == Some(400),
        None => true,
    };
    assert!(refused, "answered: {}", describe(&reply));
    server.stop(deadline(5)).await.unwrap();
}

// ---------------------------------------------------------------------------
// Request bodies.

/// Reads the body; reports what the read gave.
fn reads_the_body(events: mpsc::UnboundedSender<String>) -> impl serverbridge::Application {
    from_fn(move |ctx| {
        let events = events.clone();
        Box::pin(async move {
            let read = ctx.read_body(1 << 24).await;
            let _ = events.send(match &read {
                Ok(body) => format!("read {}", body.len()),
                Err(err) => format!(
                    "closed={} limit={} status={:?}",
                    err.is_closed(),
                    err.is_limit(),
                    err.status()
                ),
            });
            read.map(drop)
        })
    })
}

async fn event(events: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(PATIENCE, events.recv())
        .await
        .expect("an event in time")
        .expect("the app is alive")
}

/// RFC 9113 §8.1.1: a `content-length` that does not equal the sum of the
/// DATA payloads makes the request malformed: the app must not get a
/// short body as if it were whole.
#[tokio::test]
async fn h2_content_length_mismatch_fails_the_read() {
    let (tx, mut events) = mpsc::unbounded_channel();
    let (mut server, addr) = start(reads_the_body(tx)).await;
    for (declared, sent) in [("10", &b"0123"[..]), ("2", &b"0123"[..])] {
        let mut peer = RawH2::connect(addr).await;
        peer.send(&headers_frame(
            1,
            false,
            &[
                (":method", "POST"),
                (":scheme", "http"),
                (":authority", "x"),
                (":path", "/"),
                ("content-length", declared),
            ],
        ))
        .await;
        peer.send(&data_frame(1, true, sent)).await;
        let seen = event(&mut events).await;
        assert!(!seen.starts_with("read"), "declared {declared}: {seen}");
        let reply = peer.first_on(1).await;
        assert!(
            matches!(&reply, Some(f) if f.kind == 0x3),
            "declared {declared}: {}",
            describe(&reply)
        );
    }
    server.stop(deadline(5)).await.unwrap();
}

/// SPEC §13 / Settings: over `max_request_body_size`, `413`, on HTTP/2 as
/// on HTTP/1 (only HTTP/1 and a raised limit on HTTP/2 are tested).
#[tokio::test]
async fn h2_request_body_limit_gives_413() {
    let mut settings = Settings::default();
    settings.max_request_body_size = Some(1000);
    let (tx, mut events) = mpsc::unbounded_channel();
    let (mut server, addr) =
        start_server(HyperServer::new().settings(settings), reads_the_body(tx)).await;
    let mut client = h2(addr).await;
    let req = request_h2("POST", "/")
        .body(full(vec![b'a'; 200_000]))
        .unwrap();
    let (parts, _) = collect(client.send_request(req).await.unwrap()).await;
    assert_eq!(parts.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(event(&mut events).await.contains("limit=true"));
    // The connection still serves.
    let req = request_h2("POST", "/").body(full(vec![b'a'; 10])).unwrap();
    let (parts, _) = collect(client.send_request(req).await.unwrap()).await;
    assert_eq!(parts.status, StatusCode::OK);
    server.stop(deadline(5)).await.unwrap();
}

/// The connection's receive window is hyper's 1 MiB, the same as the
/// stream window (`http2_initial_stream_window_size`, 1 MiB): one request
/// whose app has not read its body yet takes the whole connection window,
/// and a sibling stream's small body can never arrive. Settings has no
/// connection window to raise. (Kestrel: 768 KiB per stream, 1 MiB per
/// connection.)
#[tokio::test]
async fn h2_an_unread_body_does_not_starve_sibling_streams() {
    let release = Arc::new(tokio::sync::Notify::new());
    let hold = release.clone();
    let app = from_fn(move |ctx| {
        let hold = hold.clone();
        Box::pin(async move {
            if ctx.request().path == "/hold" {
                // Not reading yet (waits on a database, say).
                tokio::select! {
                    _ = hold.notified() => {}
                    _ = tokio::time::sleep(PATIENCE * 2) => {}
                }
            }
            let body = ctx.read_body(1 << 24).await?;
            ctx.write(body.len().to_string()).await
        })
    });
    let (mut server, addr) = start(app).await;
    let client = h2(addr).await;
    let mut big = client.clone();
    let held = tokio::spawn(async move {
        let req = request_h2("POST", "/hold")
            .body(full(vec![b'b'; 2 << 20]))
            .unwrap();
        big.send_request(req).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut small = client.clone();
    let req = request_h2("POST", "/small")
        .body(full(vec![b's'; 10]))
        .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(3), async {
        collect(small.send_request(req).await.unwrap()).await
    })
    .await;
    release.notify_waiters();
    let _ = held.await;
    let (_, body) = reply.expect("the sibling's 10-byte body arrives while the other waits");
    assert_eq!(body, "10");
    server.stop(deadline(5)).await.unwrap();
}

// ---------------------------------------------------------------------------
// RequestLifetime on HTTP/2.

/// Streams a flushed piece, then waits for the lifetime; reports events
/// tagged with the path.
fn streams_then_waits(events: mpsc::UnboundedSender<String>) -> impl serverbridge::Application {
    from_fn(move |ctx| {
        let events = events.clone();
        Box::pin(async move {
            let path = ctx.request().path.clone();
            let lifetime = ctx.lifetime().cloned().expect("RequestLifetime");
            ctx.write("first piece").await?;
            ctx.flush().await?;
            let _ = events.send(format!("{path} streaming"));
            let fired = tokio::time::timeout(Duration::from_secs(3), lifetime.cancelled())
                .await
                .is_ok();
            let _ = events.send(format!("{path} {}", if fired { "fired" } else { "quiet" }));
            Ok(())
        })
    })
}

/// A reset stream fires its own lifetime, mid-stream, and no sibling's.
#[tokio::test]
async fn h2_reset_mid_stream_fires_that_lifetime_only() {
    let (tx, mut events) = mpsc::unbounded_channel();
    let (mut server, addr) = start(streams_then_waits(tx)).await;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let connection = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let (a, _) = client
        .send_request(http::Request::get("http://x/a").body(()).unwrap(), true)
        .unwrap();
    let mut client = client.ready().await.unwrap();
    let (b, _) = client
        .send_request(http::Request::get("http://x/b").body(()).unwrap(), true)
        .unwrap();
    let mut a = tokio::time::timeout(PATIENCE, a)
        .await
        .unwrap()
        .unwrap()
        .into_body();
    let b = tokio::time::timeout(PATIENCE, b).await.unwrap().unwrap();
    // The flushed piece arrives while the app waits.
    let piece = tokio::time::timeout(PATIENCE, a.data())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(&piece[..], b"first piece");
    let mut started = vec![event_s(&mut events).await, event_s(&mut events).await];
    started.sort();
    assert_eq!(started, ["/a streaming", "/b streaming"]);
    drop(a); // RST_STREAM(CANCEL) on /a
    let mut rest = vec![event_s(&mut events).await, event_s(&mut events).await];
    rest.sort();
    assert_eq!(rest, ["/a fired", "/b quiet"]);
    drop(b);
    connection.abort();
    server.stop(deadline(5)).await.unwrap();
}

/// The whole connection going away fires every stream's lifetime.
#[tokio::test]
async fn h2_connection_gone_fires_every_lifetime() {
    let (tx, mut events) = mpsc::unbounded_channel();
    let (mut server, addr) = start(streams_then_waits(tx)).await;
    let mut peer = RawH2::connect(addr).await;
    for (stream, path) in [(1, "/a"), (3, "/b")] {
        peer.send(&headers_frame(
            stream,
            true,
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", "x"),
                (":path", path),
            ],
        ))
        .await;
    }
    let mut started = vec![event_s(&mut events).await, event_s(&mut events).await];
    started.sort();
    assert_eq!(started, ["/a streaming", "/b streaming"]);
    drop(peer);
    let mut rest = vec![event_s(&mut events).await, event_s(&mut events).await];
    rest.sort();
    assert_eq!(rest, ["/a fired", "/b fired"]);
    server.stop(deadline(5)).await.unwrap();
}

async fn event_s(events: &mut mpsc::UnboundedReceiver<String>) -> String {
    event(events).await
}

// ---------------------------------------------------------------------------
// Idle connections.

/// hyper-util's protocol sniffing (`Protocols::Auto`) reads the first 24
/// bytes with no timeout, before `header_read_timeout` starts: a
/// connection that sends no byte (or part of the HTTP/2 preface) is held
/// for ever, where one that sends part of an HTTP/1 head is closed after
/// 30 s. `Settings::header_read_timeout` says it bounds the time "a client
/// has to send a whole request head".
#[tokio::test(start_paused = true)]
async fn silent_connection_is_closed_by_the_header_read_timeout() {
    let (mut server, addr) = start(echo).await;
    let mut outcomes = Vec::new();
    for opening in [&b""[..], b"PRI * HTTP/2.0\r\n", b"GET / HTTP/1.1\r\n"] {
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        socket.write_all(opening).await.unwrap();
        let began = tokio::time::Instant::now();
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(600), socket.read(&mut buf)).await;
        outcomes.push(format!(
            "{:?}: {}",
            String::from_utf8_lossy(opening),
            match read {
                Ok(_) => format!("closed after {:?}", began.elapsed()),
                Err(_) => "still open after 10 minutes".to_owned(),
            }
        ));
    }
    server.stop(tokio::time::Instant::now()).await.unwrap();
    assert!(
        outcomes.iter().all(|o| o.contains("closed")),
        "{}",
        outcomes.join("\n")
    );
}

// ---------------------------------------------------------------------------
// Stop.

/// SPEC §3: `stop` returns when every connection is gone; at the deadline
/// the remaining requests are aborted (their lifetime fires). On HTTP/1
/// the lifetime has fired by the time `stop` returns (the app's future is
/// in the connection task, which stop awaits); on HTTP/2 the stream runs
/// on a task of its own that `stop` neither tracks nor waits for.
#[tokio::test]
async fn h2_stop_at_the_deadline_has_aborted_the_streams_when_it_returns() {
    for version in ["http/1.1", "h2"] {
        let (tx, mut events) = mpsc::unbounded_channel();
        let kept = Arc::new(std::sync::Mutex::new(None));
        let keep = kept.clone();
        let app = from_fn(move |ctx| {
            let tx = tx.clone();
            let keep = keep.clone();
            Box::pin(async move {
                *keep.lock().unwrap() = ctx.lifetime().cloned();
                let _ = tx.send("started".to_owned());
                // Ignores its lifetime: takes its time.
                tokio::time::sleep(PATIENCE).await;
                ctx.write("late").await
            })
        });
        let (mut server, addr) = start(app).await;
        let _client: Box<dyn std::any::Any> = if version == "h2" {
            let mut client = h2(addr).await;
            let reply =
                tokio::spawn(client.send_request(request_h2("GET", "/").body(full("")).unwrap()));
            Box::new((client, reply))
        } else {
            let mut client = h1(addr).await;
            let reply =
                tokio::spawn(client.send_request(request("GET", "/").body(full("")).unwrap()));
            Box::new((client, reply))
        };
        assert_eq!(event(&mut events).await, "started");
        server
            .stop(tokio::time::Instant::now() + Duration::from_millis(200))
            .await
            .unwrap();
        let fired = kept.lock().unwrap().as_ref().unwrap().is_cancelled();
        assert!(
            fired,
            "{version}: the request's lifetime has fired when stop returns"
        );
    }
}
