//! `examples/custom_server.rs`, the guide to writing a server, serves real
//! requests over TCP through the shared lifecycle.

#[path = "../examples/custom_server.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example is a binary; here it is a module whose main is unused"
)]
mod custom_server;

use std::sync::Arc;

use custom_server::CustomServer;
use serverbridge::feature::{ServerAddress, ServerAddresses};
use serverbridge::{HttpContext, Result, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    String::from_utf8(reply).unwrap()
}

async fn started(app: impl serverbridge::Application) -> (CustomServer, std::net::SocketAddr) {
    let mut server = CustomServer::new("127.0.0.1:0".parse().unwrap());
    server.start(Arc::new(app)).await.unwrap();
    let addresses = server.features().get::<ServerAddresses>().unwrap().get();
    let ServerAddress::Tcp { addr, .. } = addresses[0].clone() else {
        panic!("a TCP address");
    };
    assert_ne!(addr.port(), 0, "port 0 resolved");
    (server, addr)
}

async fn echo(ctx: &mut HttpContext) -> Result<()> {
    let body = ctx.read_body(1 << 20).await?;
    let text = format!(
        "{} {} {} {}",
        ctx.request().method,
        ctx.request().path,
        ctx.request().query,
        String::from_utf8_lossy(&body)
    );
    ctx.write(text).await
}

#[tokio::test]
async fn it_serves_a_request_with_a_body_through_the_lifecycle() {
    let (mut server, addr) = started(echo).await;
    let reply = exchange(
        addr,
        b"POST /a%20b?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await;
    assert_eq!(
        reply,
        "HTTP/1.1 200 OK\r\ncontent-length: 21\r\nconnection: close\r\n\r\nPOST /a%20b x=1 hello"
    );
    server.stop(tokio::time::Instant::now()).await.unwrap();
}

#[tokio::test]
async fn a_failing_app_gets_the_lifecycle_500() {
    async fn fails(_: &mut HttpContext) -> Result<()> {
        Err(serverbridge::Error::app_msg("boom"))
    }
    let (_server, addr) = started(fails).await;
    let reply = exchange(addr, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").await;
    assert_eq!(
        reply,
        "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
}

#[tokio::test]
async fn a_malformed_head_gets_400() {
    let (_server, addr) = started(echo).await;
    let reply = exchange(addr, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
}
