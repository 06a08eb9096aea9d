//! RequestLifetime on disconnect, trailers both ways, upgrades, hyper's
//! header read timeout.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use serverbridge::application::from_fn;
use serverbridge::feature::{RequestTrailers, ResponseTrailers};
use serverbridge::{HttpContext, Result, Server};
use serverbridge_hyper::{HyperServer, Settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::common::*;

/// An app that reports "started", then waits for its RequestLifetime and
/// reports whether it fired.
fn waits_for_abort(events: mpsc::UnboundedSender<&'static str>) -> impl serverbridge::Application {
    from_fn(move |ctx| {
        let events = events.clone();
        Box::pin(async move {
            let lifetime = ctx.lifetime().cloned().expect("RequestLifetime");
            let _ = events.send("started");
            let fired = tokio::time::timeout(PATIENCE, lifetime.cancelled())
                .await
                .is_ok();
            let _ = events.send(if fired { "fired" } else { "not fired" });
            ctx.write("late").await
        })
    })
}

async fn next(events: &mut mpsc::UnboundedReceiver<&'static str>) -> &'static str {
    tokio::time::timeout(PATIENCE, events.recv())
        .await
        .expect("an event in time")
        .unwrap()
}

#[tokio::test]
async fn lifetime_fires_when_an_http1_client_disconnects() {
    let (tx, mut events) = mpsc::unbounded_channel();
    let (mut server, addr) = start(waits_for_abort(tx)).await;
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(next(&mut events).await, "started");
    drop(socket);
    assert_eq!(next(&mut events).await, "fired");
    server.stop(deadline(5)).await.unwrap();
}

#[tokio::test]
async fn lifetime_fires_when_an_http2_stream_is_reset() {
    let (tx, mut events) = mpsc::unbounded_channel();
    let (mut server, addr) = start(waits_for_abort(tx)).await;
    let mut client = h2(addr).await;
    let req = request_h2("GET", "/").body(full("")).unwrap();
    let pending = tokio::spawn(client.send_request(req));
    assert_eq!(next(&mut events).await, "started");
    // Dropping the response future resets the stream; the connection stays.
    pending.abort();
    assert_eq!(next(&mut events).await, "fired");
    server.stop(deadline(5)).await.unwrap();
}

#[tokio::test]
async fn lifetime_does_not_fire_for_a_completed_request() {
    let (tx, mut events) = mpsc::unbounded_channel();
    let app = from_fn(move |ctx| {
        let events = events_clone(&tx);
        Box::pin(async move {
            let lifetime = ctx.lifetime().cloned().unwrap();
            ctx.write("done").await?;
            ctx.on_completed(move |_| {
                let _ = events.send(if lifetime.is_cancelled() {
                    "fired"
                } else {
                    "not fired"
                });
                Ok(())
            });
            Ok(())
        })
    });
    let (mut server, addr) = start(app).await;
    let mut client = h1(addr).await;
    let (_, body) = collect(
        client
            .send_request(request("GET", "/").body(full("")).unwrap())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body, "done");
    assert_eq!(next(&mut events).await, "not fired");
    server.stop(deadline(5)).await.unwrap();
}

fn events_clone(tx: &mpsc::UnboundedSender<&'static str>) -> mpsc::UnboundedSender<&'static str> {
    tx.clone()
}

/// Reads the body and its trailers; answers with the body's length, an
/// `x-got` trailer echoing the request's `x-checksum` trailer, and a
/// streamed (flushed) body so HTTP/1.1 can carry trailers.
async fn trailers_app(ctx: &mut HttpContext) -> Result<()> {
    let body = ctx.read_body(1 << 20).await?;
    let got = ctx
        .features()
        .get::<RequestTrailers>()
        .and_then(|t| t.get())
        .and_then(|t| t.get("x-checksum").cloned())
        .unwrap_or_else(|| "none".parse().unwrap());
    ctx.response_mut()
        .headers
        .insert("trailer", "x-got, x-len".parse().unwrap());
    let trailers = ctx
        .features_mut()
        .get_mut::<ResponseTrailers>()
        .expect("ResponseTrailers");
    trailers.headers.insert("x-got", got);
    trailers
        .headers
        .insert("x-len", body.len().to_string().parse().unwrap());
    ctx.write("part one, ").await?;
    ctx.flush().await?;
    ctx.write("part two").await
}

fn body_with_trailers() -> ClientBody {
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", "abc123".parse().unwrap());
    let frames = vec![
        Ok(Frame::data(Bytes::from_static(b"0123456789"))),
        Ok(Frame::trailers(trailers)),
    ];
    http_body_util::StreamBody::new(futures::stream::iter(frames)).boxed()
}

async fn check_trailers(response: http::Response<hyper::body::Incoming>) {
    let (parts, body) = response.into_parts();
    assert_eq!(parts.status, StatusCode::OK);
    let collected = tokio::time::timeout(PATIENCE, body.collect())
        .await
        .unwrap()
        .unwrap();
    let trailers = collected.trailers().cloned().expect("response trailers");
    assert_eq!(collected.to_bytes(), "part one, part two");
    assert_eq!(trailers["x-got"], "abc123");
    assert_eq!(trailers["x-len"], "10");
}

#[tokio::test]
async fn trailers_both_ways_http1() {
    let (mut server, addr) = start(trailers_app).await;
    let mut client = h1(addr).await;
    let req = request("POST", "/")
        .header("te", "trailers")
        .header("trailer", "x-checksum")
        .body(body_with_trailers())
        .unwrap();
    check_trailers(client.send_request(req).await.unwrap()).await;
    server.stop(deadline(5)).await.unwrap();
}

#[tokio::test]
async fn trailers_both_ways_http2() {
    let (mut server, addr) = start(trailers_app).await;
    let mut client = h2(addr).await;
    let req = request_h2("POST", "/")
        .header("te", "trailers")
        .body(body_with_trailers())
        .unwrap();
    check_trailers(client.send_request(req).await.unwrap()).await;
    server.stop(deadline(5)).await.unwrap();
}

/// Upgrades, then echoes what the client sends, reversed, until EOF.
async fn reverse_app(ctx: &mut HttpContext) -> Result<()> {
    let lifetime = ctx.lifetime().cloned().unwrap();
    ctx.response_mut()
        .headers
        .insert("upgrade", "reverse".parse().unwrap());
    ctx.response_mut()
        .headers
        .insert("connection", "upgrade".parse().unwrap());
    let mut io = ctx.upgrade().await?;
    let mut buf = vec![0u8; 5];
    io.read_exact(&mut buf).await?;
    buf.reverse();
    io.write_all(&buf).await?;
    // The request's lifetime belongs to the request, not to the upgraded
    // connection: it has not fired.
    let status: &[u8] = if lifetime.is_cancelled() {
        b" fired"
    } else {
        b" quiet"
    };
    io.write_all(status).await?;
    io.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn upgrade_hands_over_the_connection() {
    let (mut server, addr) = start(reverse_app).await;
    // The bytes after the head arrive in the same write: hyper must hand
    // them over with the connection.
    let reply = raw_exchange(
        addr,
        b"GET /r HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: reverse\r\n\r\nhello",
    )
    .await;
    assert!(
        reply.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{reply}"
    );
    assert!(reply.contains("upgrade: reverse\r\n"), "{reply}");
    assert!(reply.ends_with("\r\n\r\nolleh quiet"), "{reply}");
    server.stop(deadline(5)).await.unwrap();
}

#[tokio::test]
async fn requests_without_upgrade_headers_are_not_upgradable() {
    let app = from_fn(|ctx| {
        Box::pin(async move {
            let offered = ctx
                .features_mut()
                .get_dyn_mut::<dyn serverbridge::feature::Upgrade>()
                .is_some_and(|u| u.is_upgradable());
            ctx.write(if offered { "yes" } else { "no" }).await
        })
    });
    let (mut server, addr) = start(app).await;
    let mut client = h1(addr).await;
    let (_, body) = collect(
        client
            .send_request(request("GET", "/").body(full("")).unwrap())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body, "no");
    let mut client = h2(addr).await;
    let req = request_h2("GET", "/")
        .header("upgrade", "x")
        .body(full(""))
        .unwrap();
    let (_, body) = collect(client.send_request(req).await.unwrap()).await;
    assert_eq!(body, "no");
    server.stop(deadline(5)).await.unwrap();
}

async fn send_partial_head(timeout: Option<Duration>) -> (std::io::Result<usize>, Duration) {
    let mut settings = Settings::default();
    settings.header_read_timeout = timeout;
    let (mut server, addr) = start_server(HyperServer::new().settings(settings), echo).await;
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let began = tokio::time::Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(100), socket.read(&mut buf))
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
    let waited = began.elapsed();
    drop(socket);
    server.stop(tokio::time::Instant::now()).await.unwrap();
    (read, waited)
}

#[tokio::test(start_paused = true)]
async fn header_read_timeout_closes_a_slow_client() {
    let (read, waited) = send_partial_head(Some(Duration::from_secs(30))).await;
    assert_eq!(read.unwrap(), 0, "closed without a response");
    assert!(
        waited >= Duration::from_secs(29) && waited < Duration::from_secs(60),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn without_header_read_timeout_a_slow_client_waits() {
    let (read, _) = send_partial_head(None).await;
    assert_eq!(read.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
}

#[tokio::test(start_paused = true)]
async fn header_read_timeout_also_bounds_idle_keep_alive() {
    let (mut server, addr) = start(echo).await;
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = socket.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"));
    let began = tokio::time::Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(100), socket.read(&mut buf))
        .await
        .expect("closed before 100 s")
        .unwrap();
    assert_eq!(n, 0);
    let waited = began.elapsed();
    assert!(
        waited >= Duration::from_secs(29) && waited < Duration::from_secs(60),
        "{waited:?}"
    );
    server.stop(tokio::time::Instant::now()).await.unwrap();
}

/// Panics in `create_context` for `/no-context`; otherwise echoes.
struct PanicsInCreate;

impl serverbridge::Application for PanicsInCreate {
    fn create_context(&self, features: serverbridge::Features) -> HttpContext {
        let ctx = HttpContext::new(features);
        if ctx.request().path == "/no-context" {
            panic!("no context today");
        }
        ctx
    }

    fn process_request<'a>(
        &'a self,
        ctx: &'a mut HttpContext,
    ) -> futures::future::BoxFuture<'a, Result<()>> {
        Box::pin(echo(ctx))
    }
}

#[tokio::test]
async fn a_panic_in_create_context_closes_that_connection_only() {
    let (mut server, addr) = start(PanicsInCreate).await;
    // No sink left to answer through: the connection closes unanswered.
    let reply = raw_exchange(addr, b"GET /no-context HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert_eq!(reply, "");
    let reply = raw_exchange(
        addr,
        b"GET /next HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    server.stop(deadline(5)).await.unwrap();
}
