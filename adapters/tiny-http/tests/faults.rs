//! `TinyHttpServer` when things go wrong, raw bytes in and out: request
//! bodies cut short or malformed, an app that fails after its head, a stop
//! that is dropped before it ends, and request framing on the patched
//! tiny_http (see `patched/*/PATCHED.md`): chunked bodies cut short or with
//! trailers, heads that frame their body ambiguously (request smuggling),
//! targets with control characters. The answers match the built-in
//! server's.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use serverbridge::application::from_fn;
use serverbridge::{Error, HttpContext, Result, Server};
use serverbridge_tiny_http::TinyHttpServer;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long the client waits for the server (a bound, not a measurement).
const PATIENCE: Duration = Duration::from_secs(20);

/// `/read` reads the body and reports what the read gave on `seen` (then
/// fails with the read's error); `/start-fail` sends its head, then fails;
/// `/slow` waits 1 s before it answers; anything else says hello.
fn app(seen: mpsc::UnboundedSender<String>) -> impl serverbridge::Application {
    from_fn(move |ctx: &mut HttpContext| {
        let seen = seen.clone();
        Box::pin(async move {
            match ctx.request().path.as_str() {
                "/read" => {
                    let read = ctx.read_body(1 << 20).await;
                    let _ = seen.send(match &read {
                        Ok(body) => format!("read {}", body.len()),
                        Err(err) => format!(
                            "closed={} parse={} status={:?}",
                            err.is_closed(),
                            err.is_parse(),
                            err.status().map(|s| s.as_u16())
                        ),
                    });
                    ctx.write(format!("read {}", read?.len())).await
                }
                "/start-fail" => {
                    ctx.start().await?;
                    Err(Error::app_msg("failed after the head"))
                }
                "/slow" => {
                    let _ = seen.send("started".to_owned());
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    ctx.write("finished").await
                }
                _ => ctx.write("hello").await,
            }
        }) as futures::future::BoxFuture<'_, Result<()>>
    })
}

async fn start(seen: mpsc::UnboundedSender<String>) -> (TinyHttpServer, SocketAddr) {
    let mut server = TinyHttpServer::new("127.0.0.1:0".parse().unwrap()).workers(2);
    server.start(Arc::new(app(seen))).await.unwrap();
    let addr = server.local_addr().unwrap();
    (server, addr)
}

/// Sends `bytes` (then half-closes with `fin`) and reads to the close.
async fn exchange(addr: SocketAddr, bytes: Vec<u8>, fin: bool) -> String {
    exchange_for(addr, bytes, fin, PATIENCE).await
}

/// As [`exchange`], reading for at most `wait` between bytes.
async fn exchange_for(addr: SocketAddr, bytes: Vec<u8>, fin: bool, wait: Duration) -> String {
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(wait)).unwrap();
        stream.write_all(&bytes).unwrap();
        if fin {
            stream.shutdown(Shutdown::Write).unwrap();
        }
        let mut reply = Vec::new();
        // A reset after the reply counts as the end too.
        let _ = stream.read_to_end(&mut reply);
        String::from_utf8_lossy(&reply).into_owned()
    })
    .await
    .unwrap()
}

async fn next(seen: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(PATIENCE, seen.recv())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_short_fails_the_read_as_closed_and_is_answered_400() {
    let (tx, mut seen) = mpsc::unbounded_channel();
    let (mut server, addr) = start(tx).await;
    // Over 1 KiB, so that tiny_http hands the request over before the body
    // ends; the half-close ends it early.
    let mut request = b"POST /read HTTP/1.1\r\nhost: x\r\ncontent-length: 10000\r\n\r\n".to_vec();
    request.extend(std::iter::repeat_n(b'a', 4000));
    let reply = exchange(addr, request, true).await;
    assert_eq!(
        next(&mut seen).await,
        "closed=true parse=false status=Some(400)"
    );
    assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
    server
        .stop(Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_chunk_is_a_parse_error_answered_400_with_the_close() {
    // The answer says `Connection: close`: tiny_http would read what follows
    // the bad chunk line as requests (SPEC §15), a client that honours it
    // does not send them.
    let (tx, mut seen) = mpsc::unbounded_channel();
    let (mut server, addr) = start(tx).await;
    let request = b"POST /read HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n";
    let head = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.write_all(request).unwrap();
        // The first answer's head (it has no body).
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while !reply.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
            reply.push(byte[0]);
        }
        String::from_utf8_lossy(&reply).into_owned()
    })
    .await
    .unwrap();
    assert_eq!(
        next(&mut seen).await,
        "closed=false parse=true status=Some(400)"
    );
    assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{head}"
    );
    server
        .stop(Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_after_the_head_never_looks_complete() {
    // The head goes out, then a body that breaks (the chunked framing
    // fails): not tiny_http's own complete-looking 500.
    let (tx, _seen) = mpsc::unbounded_channel();
    let (mut server, addr) = start(tx).await;
    let request = b"GET /start-fail HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    let reply = exchange(addr, request.to_vec(), false).await;
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(!reply.contains(" 500 "), "{reply}");
    assert!(!reply.ends_with("\r\n0\r\n\r\n"), "no last chunk: {reply}");
    server
        .stop(Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_stop_future_aborts_what_remains() {
    // As the deadline would: the response in flight fails at its write.
    let (tx, mut seen) = mpsc::unbounded_channel();
    let (mut server, addr) = start(tx).await;
    // The app answers 1 s in unless aborted; 3 s of silence settle it
    // (tiny_http keeps the connection open after an aborted response).
    let client = tokio::spawn(exchange_for(
        addr,
        b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
        false,
        Duration::from_secs(3),
    ));
    assert_eq!(next(&mut seen).await, "started");
    let stop = server.stop(Instant::now() + Duration::from_secs(600));
    let dropped = tokio::time::timeout(Duration::from_millis(100), stop).await;
    assert!(dropped.is_err(), "the stop waits for the request");
    let reply = client.await.unwrap();
    assert!(!reply.contains("finished"), "{reply}");
}

/// Panics in `create_context` for `/no-context`; otherwise says hello.
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
        Box::pin(ctx.write("hello"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_create_context_leaves_the_worker_serving() {
    // One worker: had the panic taken its thread down, nobody would answer
    // the requests after it.
    let mut server = TinyHttpServer::new("127.0.0.1:0".parse().unwrap()).workers(1);
    server.start(Arc::new(PanicsInCreate)).await.unwrap();
    let addr = server.local_addr().unwrap();
    let close = "HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    for _ in 0..2 {
        let reply = exchange(addr, format!("GET /no-context {close}").into(), false).await;
        // Nothing reached the sink: tiny_http's own answer to a request
        // dropped unanswered.
        assert!(reply.starts_with("HTTP/1.1 500 "), "{reply}");
    }
    let reply = exchange(addr, format!("GET / {close}").into(), false).await;
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.ends_with("hello"), "{reply}");
    server
        .stop(Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
}

// ---------------------------------------------------------------- framing

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_cut_short_fails_the_read_as_closed_and_is_answered_400() {
    // SPEC §15: "a body cut short is `is_closed()` with `400`". A chunk that
    // declares 16 bytes, 3 of them sent, then the client's FIN: the built-in
    // server and hyper answer 400; tiny_http's decoder returns Ok(0) at EOF
    // inside the chunk, so the app reads a "complete" body of 3 bytes.
    let (tx, mut seen) = mpsc::unbounded_channel();
    let (mut server, addr) = start(tx).await;
    let request =
        b"POST /read HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n10\r\nabc".to_vec();
    let reply = exchange(addr, request, true).await;
    let read = next(&mut seen).await;
    server
        .stop(Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(read, "closed=true parse=false status=Some(400)", "{reply}");
    assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_with_trailers_is_read_and_answered_once() {
    // RFC 9112 §7.1.2: a trailer section is part of a valid chunked body.
    // The crate docs say tiny_http's decoder "drops" trailers; it does not:
    // the read fails (400), and the trailer line is then parsed as the next
    // request, so one request gets two 400 responses.
    let (tx, mut seen) = mpsc::unbounded_channel();
    let (mut server, addr) = start(tx).await;
    let request = b"POST /read HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n".to_vec();
    let reply = exchange_for(addr, request, false, Duration::from_secs(2)).await;
    let read = next(&mut seen).await;
    server
        .stop(Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(read, "read 3", "{reply}");
    assert_eq!(reply.matches("HTTP/1.1 ").count(), 1, "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_framing_is_refused_and_nothing_after_it_runs() {
    // Each head frames its body two ways, or wrongly; what follows would be
    // a smuggled request if the server guessed. RFC 9112 §6.1, §6.3: 400,
    // then the close.
    let (tx, _seen) = mpsc::unbounded_channel();
    let (mut server, addr) = start(tx).await;
    let smuggled = "GET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n";
    let heads = [
        "content-length: 45\r\ntransfer-encoding: chunked\r\n",
        "content-length: 0\r\ncontent-length: 34\r\n",
        "content-length: +3\r\n",
        "content-length: -1\r\n",
        "content-length: 0x3\r\n",
        "content-length: \r\n",
        "transfer-encoding: xchunked\r\n",
        "transfer-encoding: chunked, gzip\r\n",
        "transfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n",
    ];
    let mut wrong = Vec::new();
    for head in heads {
        let request = format!("POST /a HTTP/1.1\r\nhost: x\r\n{head}\r\n0\r\n\r\n{smuggled}");
        let reply = exchange_for(addr, request.into_bytes(), false, Duration::from_secs(2)).await;
        if !reply.starts_with("HTTP/1.1 400") || reply.matches("HTTP/1.1 ").count() != 1 {
            wrong.push(format!("{head:?}: {reply:?}"));
        }
    }
    // Transfer-Encoding on HTTP/1.0.
    let request =
        format!("POST /a HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}");
    let reply = exchange_for(addr, request.into_bytes(), false, Duration::from_secs(2)).await;
    if !reply.contains(" 400 ") || reply.contains("smuggled") {
        wrong.push(format!("HTTP/1.0 chunked: {reply:?}"));
    }
    server
        .stop(Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_with_control_characters_or_a_fragment_is_refused() {
    // tiny_http passes the request line's target through as it came; the
    // adapter checks it by the built-in server's rules.
    let (tx, _seen) = mpsc::unbounded_channel();
    let (mut server, addr) = start(tx).await;
    let mut wrong = Vec::new();
    for target in [&b"/a\x01b"[..], b"/a\x7fb", b"/a?x=1#frag", b"/a%zz"] {
        let mut request = b"GET ".to_vec();
        request.extend_from_slice(target);
        request.extend_from_slice(b" HTTP/1.1\r\nhost: x\r\n\r\n");
        let reply = exchange_for(addr, request, false, Duration::from_secs(2)).await;
        if !reply.starts_with("HTTP/1.1 400") {
            wrong.push(format!("{:?}: {reply:?}", String::from_utf8_lossy(target)));
        }
    }
    server
        .stop(Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
