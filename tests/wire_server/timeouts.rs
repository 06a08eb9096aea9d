//! Timeouts.

use super::*;

#[tokio::test(start_paused = true)]
async fn request_headers_timeout_answers_408_and_closes() {
    let timeout = Limits::default().request_headers_timeout;
    let (mut client, _) = connect(echo, Limits::default());
    client.send("GET / HTTP/1.1\r\nHost: h\r\n").await;
    let start = Instant::now();
    tokio::time::sleep(timeout - Duration::from_secs(1)).await;
    assert!(
        client.pending().await.is_empty() && !client.is_eof(),
        "at 29 s the server still waits for the head"
    );
    client.set_timeout(Duration::from_secs(60));
    assert_rejected(&mut client, "408 Request Timeout").await;
    assert_eq!(start.elapsed(), timeout);
}

#[tokio::test(start_paused = true)]
async fn a_trickled_head_does_not_extend_the_headers_timeout() {
    let timeout = Limits::default().request_headers_timeout;
    let (mut client, _) = connect(echo, Limits::default());
    let start = Instant::now();
    // One byte every 10 s: the deadline counts from the first byte.
    for byte in "GET / HTTP/1.1\r\n".bytes().take(3) {
        client.send([byte]).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    client.set_timeout(Duration::from_secs(60));
    assert_rejected(&mut client, "408 Request Timeout").await;
    assert_eq!(start.elapsed(), timeout);
}

/// Waits out the keep-alive timeout from now: the connection is still open
/// a second before it, then closes silently, exactly at it.
async fn assert_closes_at_the_keep_alive_timeout(
    mut client: wire::Client<tokio::io::DuplexStream>,
    server: tokio::task::JoinHandle<()>,
) {
    let idle = Limits::default().keep_alive_timeout;
    let start = Instant::now();
    tokio::time::sleep(idle - Duration::from_secs(1)).await;
    assert!(
        client.pending().await.is_empty() && !client.is_eof(),
        "at 129 s the connection is still open"
    );
    client.set_timeout(Duration::from_secs(600));
    client.expect_eof().await;
    assert_eq!(start.elapsed(), idle);
    server.await.expect("the connection task ends cleanly");
}

#[tokio::test(start_paused = true)]
async fn an_idle_kept_alive_connection_closes_silently_after_the_keep_alive_timeout() {
    let (mut client, server) = connect(echo, Limits::default());
    client.send(get("/")).await;
    assert_echo(&client.response().await, "GET", "/", 0);
    assert_closes_at_the_keep_alive_timeout(client, server).await;
}

#[tokio::test(start_paused = true)]
async fn a_new_connection_that_sends_nothing_closes_silently_at_the_headers_timeout() {
    let (mut client, server) = connect(echo, Limits::default());
    let timeout = Limits::default().request_headers_timeout;
    let start = Instant::now();
    tokio::time::sleep(timeout - Duration::from_secs(1)).await;
    assert!(client.pending().await.is_empty() && !client.is_eof());
    client.set_timeout(Duration::from_secs(600));
    // No 408: there was no request to answer.
    client.expect_eof().await;
    assert_eq!(start.elapsed(), timeout);
    server.await.expect("the connection task ends cleanly");
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_carried_several_requests_keeps_the_same_timeouts() {
    // Past its second request a connection keeps its state for a grace
    // second before it gives it back: neither phase may change when it
    // closes, and a request after the grace is served as usual.
    let (mut client, server) = connect(echo, Limits::default());
    for path in ["/1", "/2", "/3"] {
        client.send(get(path)).await;
        assert_echo(&client.response().await, "GET", path, 0);
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    client.send(get("/4")).await;
    assert_echo(&client.response().await, "GET", "/4", 0);
    assert_closes_at_the_keep_alive_timeout(client, server).await;
}

#[tokio::test(start_paused = true)]
async fn a_partial_head_on_a_kept_alive_connection_gets_408_at_the_headers_timeout() {
    // The wait for the next request runs on the keep-alive timeout (130 s);
    // a partial head brings the deadline sooner (30 s from its first byte).
    let timeout = Limits::default().request_headers_timeout;
    let (mut client, _) = connect(echo, Limits::default());
    client.send(get("/")).await;
    assert_echo(&client.response().await, "GET", "/", 0);
    tokio::time::sleep(Duration::from_secs(3)).await;
    client.send("GET / HTTP/1.1\r\nHost: h\r\n").await;
    settle().await;
    let start = Instant::now();
    client.set_timeout(Duration::from_secs(600));
    assert_rejected(&mut client, "408 Request Timeout").await;
    // The clock moved 1 ms in `settle` after the head's first byte.
    assert_eq!(start.elapsed() + Duration::from_millis(1), timeout);
}

#[tokio::test(start_paused = true)]
async fn a_steadily_busy_connection_stays_open_and_closes_at_the_keep_alive_timeout() {
    // A request every 0.6 s: each moves the wait's deadline later than the
    // timer is set, so the timer fires early again and again, and must
    // neither close the connection nor stop it being served.
    let (mut client, server) = connect(echo, Limits::default());
    for n in 0..12 {
        let path = format!("/{n}");
        client.send(get(&path)).await;
        assert_echo(&client.response().await, "GET", &path, 0);
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let path = "/last";
    client.send(get(path)).await;
    assert_echo(&client.response().await, "GET", path, 0);
    assert_closes_at_the_keep_alive_timeout(client, server).await;
}
