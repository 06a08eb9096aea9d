//! Pipelined and connection-taking requests through `ActixServer` (found by
//! differential testing against the built-in server): a request's own
//! `Connection: close` ends the connection after its response, whatever
//! actix decoded after it, and an upgrade request the adapter does not
//! offer is a plain request without a body.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serverbridge::{HttpContext, Result, Server};
use serverbridge_actix::ActixServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The echo example's app: `method=<M> path=<P> query=<Q> body=<N>`.
async fn echo(ctx: &mut HttpContext) -> Result<()> {
    let mut n = 0usize;
    while let Some(chunk) = ctx.request_body().chunk().await? {
        n += chunk.len();
    }
    let request = ctx.request();
    let text = format!(
        "method={} path={} query={} body={n}",
        request.method, request.path, request.query
    );
    ctx.write(text).await
}

async fn start() -> (ActixServer, std::net::SocketAddr) {
    let mut server = ActixServer::new()
        .workers(1)
        .bind("127.0.0.1:0".parse().unwrap());
    server
        .start(Arc::new(serverbridge::application::from_fn(
            |ctx: &mut HttpContext| {
                Box::pin(echo(ctx)) as futures::future::BoxFuture<'_, Result<()>>
            },
        )))
        .await
        .expect("start");
    let addr = support::address(&server);
    (server, addr)
}

/// Sends `bytes` at once, reads for up to 1 s (or until the close).
async fn exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> (String, bool) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    let mut closed = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => reply.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    (String::from_utf8_lossy(&reply).into_owned(), closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_connection_close_ends_the_connection() {
    // RFC 9112 §9.6: after a request with `Connection: close` the server
    // closes and processes nothing after it. actix's codec keeps the
    // connection state of the last request it decoded (`/3`'s), so the
    // adapter says the close on `/2`'s response itself, and drops `/3`.
    let (mut server, addr) = start().await;
    let (reply, closed) = exchange(
        addr,
        b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n\
          GET /2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n\
          GET /3 HTTP/1.1\r\nHost: h\r\n\r\n",
    )
    .await;
    server.stop(tokio::time::Instant::now()).await.ok();
    assert!(!reply.contains("path=/3"), "{reply:?}");
    let second = reply.find("path=/1").map(|i| &reply[i..]).unwrap_or("");
    assert!(
        second.contains("connection: close") && second.contains("path=/2"),
        "/2's response says the close: {reply:?}"
    );
    assert_eq!(
        reply.matches("HTTP/1.1 ").count(),
        2,
        "nothing after /2's response: {reply:?}"
    );
    assert!(closed, "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_upgrade_request_without_a_body_is_answered() {
    // The adapter offers no `Upgrade` (SPEC §14), so this is a plain GET
    // with no body, as on the other servers. actix gives a websocket-upgrade
    // request (and any CONNECT) a payload that runs to the end of the
    // connection: the adapter must not hand it to the app as the body (an
    // app reading it would wait for the client, and the client for it).
    let (mut server, addr) = start().await;
    let (reply, _) = exchange(
        addr,
        b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await;
    server.stop(tokio::time::Instant::now()).await.ok();
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply:?}");
    assert!(
        reply.ends_with("method=GET path=/ws query= body=0"),
        "{reply:?}"
    );
}
