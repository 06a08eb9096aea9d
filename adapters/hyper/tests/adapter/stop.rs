//! Graceful stop: in-flight requests finish, new connections are refused,
//! the deadline aborts what is left.

use std::time::Duration;

use http::StatusCode;
use serverbridge::application::from_fn;
use serverbridge::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::common::*;

/// Reports "started", then answers once `release` is sent.
fn held(
    started: mpsc::UnboundedSender<()>,
    release: std::sync::Arc<tokio::sync::Notify>,
) -> impl serverbridge::Application {
    from_fn(move |ctx| {
        let started = started.clone();
        let release = release.clone();
        Box::pin(async move {
            let _ = started.send(());
            release.notified().await;
            ctx.write("finished").await
        })
    })
}

async fn refused(addr: std::net::SocketAddr) -> bool {
    // Bounded: the accept loops end right after stop begins.
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn in_flight_requests_finish_and_new_connections_are_refused() {
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let (mut server, addr) = start(held(started_tx, release.clone())).await;

    // One request in flight over HTTP/1.1, one over HTTP/2.
    let mut client1 = h1(addr).await;
    let in_flight1 =
        tokio::spawn(client1.send_request(request("GET", "/").body(full("")).unwrap()));
    let mut client2 = h2(addr).await;
    let req = request_h2("GET", "/").body(full("")).unwrap();
    let in_flight2 = tokio::spawn(client2.send_request(req));
    for _ in 0..2 {
        tokio::time::timeout(PATIENCE, started.recv())
            .await
            .unwrap()
            .unwrap();
    }

    let (stopped_tx, mut stopped) = oneshot::channel();
    let deadline = deadline(30);
    tokio::spawn(async move {
        let began = tokio::time::Instant::now();
        server.stop(deadline).await.unwrap();
        let _ = stopped_tx.send((began.elapsed(), server.addresses().get().len()));
    });
    assert!(
        refused(addr).await,
        "new connections are refused once stop began"
    );
    assert!(
        stopped.try_recv().is_err(),
        "stop waits for the requests in flight"
    );

    release.notify_waiters();
    for in_flight in [in_flight1, in_flight2] {
        let response = tokio::time::timeout(PATIENCE, in_flight)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let (parts, body) = collect(response).await;
        assert_eq!(parts.status, StatusCode::OK);
        assert_eq!(body, "finished");
    }
    let (took, addresses) = tokio::time::timeout(PATIENCE, stopped)
        .await
        .unwrap()
        .unwrap();
    assert!(
        took < Duration::from_secs(30),
        "stop returned before its deadline: {took:?}"
    );
    assert_eq!(addresses, 0, "ServerAddresses cleared");
}

#[tokio::test]
async fn idle_connections_close_at_once() {
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
    server.stop(deadline(30)).await.unwrap();
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "an idle keep-alive connection does not hold stop"
    );
    let n = tokio::time::timeout(PATIENCE, socket.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the idle connection was closed");
}

#[tokio::test]
async fn the_deadline_aborts_what_is_left() {
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let (mut server, addr) = start(held(started_tx, release)).await;
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::timeout(PATIENCE, started.recv())
        .await
        .unwrap()
        .unwrap();

    let began = tokio::time::Instant::now();
    let stop = server.stop(tokio::time::Instant::now() + Duration::from_millis(300));
    tokio::time::timeout(PATIENCE, stop)
        .await
        .expect("the stop ends: the held request was aborted")
        .unwrap();
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let mut reply = Vec::new();
    let read = tokio::time::timeout(PATIENCE, socket.read_to_end(&mut reply))
        .await
        .unwrap();
    assert!(
        read.is_err() || reply.is_empty(),
        "the connection was dropped without a response"
    );
}
