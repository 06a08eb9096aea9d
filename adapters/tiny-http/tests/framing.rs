//! Request framing on tiny_http (patched, see `patched/*/PATCHED.md`), found
//! by differential testing against the built-in server (raw bytes): a
//! chunked body cut short, a chunked body with a trailer section, and heads
//! that frame their body ambiguously (request smuggling).

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
