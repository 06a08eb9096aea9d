//! Request targets as actix receives them, in the request's features: the
//! origin form split as sent, the absolute form whole, the asterisk form;
//! and the targets whose form the method does not take refused with 400
//! before the app runs, as on the built-in server. Raw bytes in, the app's
//! view of the target (or the status) out.

mod support;

use std::sync::Arc;

use serverbridge::{HttpContext, Result, Server};
use serverbridge_actix::ActixServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn target(ctx: &mut HttpContext) -> Result<()> {
    let request = ctx.request();
    let text = format!(
        "method={} path={} query={} raw={} scheme={}",
        request.method, request.path, request.query, request.raw_target, request.scheme
    );
    ctx.write(text).await
}

/// Sends `head` on a new connection and returns the whole response.
async fn exchange(addr: std::net::SocketAddr, head: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    String::from_utf8(response).expect("text")
}

/// Sends `head` on a new connection and returns the response body.
async fn seen(addr: std::net::SocketAddr, head: &str) -> String {
    let response = exchange(addr, head).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response.split("\r\n\r\n").nth(1).expect("body").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_reach_the_app_as_sent() {
    let mut server = ActixServer::new()
        .workers(1)
        .bind("127.0.0.1:0".parse().unwrap());
    server.start(Arc::new(target)).await.expect("start");
    let addr = support::address(&server);
    let cases = [
        (
            "GET /a/%2e%2e//b?x=1&x=&y HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            "method=GET path=/a/%2e%2e//b query=x=1&x=&y raw=/a/%2e%2e//b?x=1&x=&y scheme=http",
        ),
        (
            "GET https://t/p?q HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            "method=GET path=/p query=q raw=https://t/p?q scheme=http",
        ),
        (
            "OPTIONS * HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            "method=OPTIONS path= query= raw=* scheme=http",
        ),
    ];
    for (head, expected) in cases {
        let body = tokio::time::timeout(support::BOUND, seen(addr, head))
            .await
            .expect("in time");
        assert_eq!(body, expected, "for {head:?}");
    }
    server
        .stop(tokio::time::Instant::now() + support::BOUND)
        .await
        .expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_in_a_form_the_method_does_not_take_get_400() {
    let mut server = ActixServer::new()
        .workers(1)
        .bind("127.0.0.1:0".parse().unwrap());
    server.start(Arc::new(target)).await.expect("start");
    let addr = support::address(&server);
    for line in [
        "GET *",
        "POST *",
        "GET a",
        "GET ..",
        "GET http://:80/",
        "GET http://[::g]/",
    ] {
        let head = format!("{line} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let response = tokio::time::timeout(support::BOUND, exchange(addr, &head))
            .await
            .expect("in time");
        assert!(response.starts_with("HTTP/1.1 400"), "{line}: {response}");
        assert!(!response.contains("method="), "{line}: the app ran");
    }
    server
        .stop(tokio::time::Instant::now() + support::BOUND)
        .await
        .expect("stop");
}
