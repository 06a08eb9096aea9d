//! A client that declares a huge `Content-Length` and goes away must not
//! take the server down. Published tiny_http 0.12.0 drains the unread rest
//! of a body into one buffer of that rest's size; the workspace patches it
//! (see `adapters/tiny-http/patched/tiny_http/PATCHED.md`). Without the
//! patch this test's process aborts (a failed allocation) or its worker
//! panics (a length past `isize::MAX`).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use serverbridge::{HttpContext, Result, Server};
use serverbridge_tiny_http::TinyHttpServer;
use tokio::time::Instant;

/// How long a read waits before the test fails (a bound, not a measurement).
const PATIENCE: Duration = Duration::from_secs(30);

/// Reads the whole body, as an echo would, then answers with its length.
async fn reader(ctx: &mut HttpContext) -> Result<()> {
    let mut total = 0;
    while let Some(chunk) = ctx.request_body().chunk().await? {
        total += chunk.len();
    }
    ctx.write(format!("read {total}")).await
}

/// Sends `request`, half-closes, and returns whatever comes back.
fn send_and_leave(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_declared_length_from_a_client_that_left_is_survived() {
    let mut server = TinyHttpServer::new("127.0.0.1:0".parse().unwrap()).workers(1);
    server.start(Arc::new(reader)).await.unwrap();
    let addr = server.local_addr().unwrap();
    // Under isize::MAX (the allocation fails) and past it (capacity
    // overflow); a few body bytes, then the client is gone.
    for length in ["9223372036854775000", "18446744073709551000"] {
        let request = format!("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\nab");
        tokio::task::spawn_blocking(move || send_and_leave(addr, &request))
            .await
            .unwrap();
    }
    // The server (and its one worker) still answers.
    let answer = tokio::task::spawn_blocking(move || {
        send_and_leave(
            addr,
            "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("read 0"), "{answer}");
    server
        .stop(Instant::now() + Duration::from_secs(10))
        .await
        .unwrap();
}
