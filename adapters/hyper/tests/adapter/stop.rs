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

/// Reports "started", then whether the request's lifetime fired (waiting at
/// most `PATIENCE`).
fn waits_for_lifetime(
    events: mpsc::UnboundedSender<&'static str>,
) -> impl serverbridge::Application {
    from_fn(move |ctx| {
        let events = events.clone();
        Box::pin(async move {
            let lifetime = ctx.lifetime().cloned().expect("a lifetime");
            let _ = events.send("started");
            let fired = tokio::time::timeout(PATIENCE, lifetime.cancelled())
                .await
                .is_ok();
            let _ = events.send(if fired { "fired" } else { "not fired" });
            Ok(())
        })
    })
}

async fn event(events: &mut mpsc::UnboundedReceiver<&'static str>) -> &'static str {
    tokio::time::timeout(PATIENCE, events.recv())
        .await
        .expect("an event in time")
        .expect("the app is alive")
}

#[tokio::test]
async fn dropping_the_stop_future_aborts_what_remains_at_once() {
    // The host's second signal: a graceful stop with a long deadline,
    // dropped. An HTTP/1.1 and an HTTP/2 request in flight are aborted then,
    // not at the deadline (or never: a second stop finds nothing to stop).
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (mut server, addr) = start(waits_for_lifetime(events_tx)).await;
    let mut http1 = h1(addr).await;
    let http1_reply = tokio::spawn(http1.send_request(request("GET", "/").body(full("")).unwrap()));
    let mut http2 = h2(addr).await;
    let http2_reply =
        tokio::spawn(http2.send_request(request_h2("GET", "/").body(full("")).unwrap()));
    assert_eq!(event(&mut events).await, "started");
    assert_eq!(event(&mut events).await, "started");

    let stop = server.stop(tokio::time::Instant::now() + Duration::from_secs(600));
    let dropped = tokio::time::timeout(Duration::from_millis(200), stop).await;
    assert!(dropped.is_err(), "the stop waits for the requests");
    assert_eq!(event(&mut events).await, "fired");
    assert_eq!(event(&mut events).await, "fired");
    for reply in [http1_reply, http2_reply] {
        let reply = tokio::time::timeout(PATIENCE, reply)
            .await
            .unwrap()
            .unwrap();
        assert!(reply.is_err(), "no response: the connection was dropped");
    }
}
