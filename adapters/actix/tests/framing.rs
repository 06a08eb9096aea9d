//! Raw bytes through `ActixServer` where actix's own framing differs from
//! the built-in server's: HTTP/1.0 bodies of unknown length, and a request
//! body actix cannot decode.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serverbridge::{HttpContext, Result, Server};
use serverbridge_actix::ActixServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// `/stream`: a flushed response (no length); `/read`: reads the body and
/// reports what the read gave on `seen`.
fn app(seen: mpsc::UnboundedSender<String>) -> impl serverbridge::Application {
    serverbridge::application::from_fn(move |ctx: &mut HttpContext| {
        let seen = seen.clone();
        Box::pin(async move {
            if ctx.request().path == "/read" {
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
                return read.map(drop);
            }
            ctx.write("part1").await?;
            ctx.flush().await?;
            ctx.write("part2").await
        }) as futures::future::BoxFuture<'_, Result<()>>
    })
}

async fn start(seen: mpsc::UnboundedSender<String>) -> (ActixServer, std::net::SocketAddr) {
    let mut server = ActixServer::new()
        .workers(1)
        .bind("127.0.0.1:0".parse().unwrap());
    server.start(Arc::new(app(seen))).await.expect("start");
    let addr = support::address(&server);
    (server, addr)
}

/// Sends `bytes` and reads until the server closes (bounded).
async fn until_close(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let mut reply = Vec::new();
    tokio::time::timeout(support::BOUND, stream.read_to_end(&mut reply))
        .await
        .expect("the server closes the connection")
        .expect("read");
    String::from_utf8_lossy(&reply).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http10_body_of_unknown_length_is_close_delimited_not_chunked() {
    // RFC 9112 §6.1: no chunked framing to an HTTP/1.0 client, which would
    // read the chunk lines as body; the close ends the body instead, even
    // when the client asked for keep-alive.
    let (tx, _seen) = mpsc::unbounded_channel();
    let (mut server, addr) = start(tx).await;
    for request in [
        &b"GET /stream HTTP/1.0\r\n\r\n"[..],
        b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    ] {
        let reply = until_close(addr, request).await;
        let lower = reply.to_ascii_lowercase();
        assert!(reply.starts_with("HTTP/1.0 200 OK\r\n"), "{reply}");
        assert!(!lower.contains("transfer-encoding"), "{reply}");
        assert!(!lower.contains("content-length"), "{reply}");
        assert!(reply.ends_with("\r\n\r\npart1part2"), "{reply}");
    }
    server
        .stop(tokio::time::Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_chunk_fails_the_apps_read_with_400_not_as_its_own_error() {
    // actix stops the connection at a bad chunk line and reports the body
    // as cut short, not as malformed; either way the read fails as the
    // client's doing (`400`), never as the app's (`500`). actix then drops
    // the connection rather than send an answer (SPEC §14).
    let (tx, mut seen) = mpsc::unbounded_channel();
    let (mut server, addr) = start(tx).await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            b"POST /read HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream.write_all(b"zz\r\nabc\r\n0\r\n\r\n").await.unwrap();
    let view = tokio::time::timeout(support::BOUND, seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        view == "closed=true parse=false status=Some(400)"
            || view == "closed=false parse=true status=Some(400)",
        "{view}"
    );
    server
        .stop(tokio::time::Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_mid_body_fails_the_apps_read_as_closed_with_400() {
    let (tx, mut seen) = mpsc::unbounded_channel();
    let (mut server, addr) = start(tx).await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"POST /read HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(stream);
    let view = tokio::time::timeout(support::BOUND, seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view, "closed=true parse=false status=Some(400)");
    server
        .stop(tokio::time::Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
}
