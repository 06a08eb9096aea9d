//! The built-in server on the wire, one behaviour per test: limits at and
//! one past their bounds, timeouts on the paused clock, pipelining,
//! `100-continue`, upgrades, client aborts, panics, response framing, body
//! draining, and real sockets (port 0, several endpoints, unix sockets,
//! graceful stop, the connection limit).

#![cfg(feature = "server")]

#[path = "support/keeper.rs"]
mod keeper;
#[path = "support/wire.rs"]
mod wire;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use http::HeaderValue;
use serverbridge::application::from_fn;
use serverbridge::feature::{MaxRequestBodySize, ResponseTrailers, ServerAddress, ServerAddresses};
use serverbridge::server::{HttpServer, Limits};
use serverbridge::{Application, HttpContext, Result, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use wire::{
    connect, connect_shared, echo, echo_body, escape, normalise_date, Client, Response, FIXED_DATE,
};

/// A GET for `path` with a Host header.
fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n")
}

/// A GET for `path` that asks for the connection to close.
fn get_close(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
}

/// The exact bytes of a rejection, date normalised.
fn rejection(status: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\ndate: {FIXED_DATE}\r\n\r\n"
    )
}

/// Reads to the close and asserts the bytes are exactly `status`'s rejection.
async fn assert_rejected<S>(client: &mut Client<S>, status: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let bytes = normalise_date(&client.read_until_close().await);
    assert_eq!(
        escape(&bytes),
        escape(rejection(status).as_bytes()),
        "expected the {status} rejection, then a close"
    );
}

fn assert_echo(response: &Response, method: &str, path: &str, body: usize) {
    assert_eq!(response.status, 200, "{}", escape(&response.raw));
    assert_eq!(response.text(), echo_body(method, path, "", body));
}

/// Lets the server act on what it has (the paused clock only moves when
/// every task is idle).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

fn small_body_limit() -> Limits {
    Limits {
        max_request_body_size: Some(100),
        ..Limits::default()
    }
}

fn body_of(n: usize) -> String {
    "x".repeat(n)
}

// ---------------------------------------------------------------- limits

#[tokio::test(start_paused = true)]
async fn request_line_at_its_limit_is_served_one_byte_more_is_414() {
    let max = Limits::default().max_request_line_size;
    // "GET " + target + " HTTP/1.1" is the request line, CRLF excluded.
    let target = |line: usize| format!("/{}", "a".repeat(line - 4 - 9 - 1));

    let (mut client, _) = connect(echo, Limits::default());
    let fits = target(max);
    client.send(get(&fits)).await;
    assert_echo(&client.response().await, "GET", &fits, 0);

    let (mut client, _) = connect(echo, Limits::default());
    client.send(get(&target(max + 1))).await;
    assert_rejected(&mut client, "414 URI Too Long").await;
}

#[tokio::test(start_paused = true)]
async fn an_unfinished_request_line_is_414_as_soon_as_it_is_too_long() {
    let max = Limits::default().max_request_line_size;
    let (mut client, _) = connect(echo, Limits::default());
    client.send(format!("GET /{}", "a".repeat(max - 5))).await;
    settle().await;
    assert!(
        client.pending().await.is_empty() && !client.is_eof(),
        "{max} bytes of request line: still waiting"
    );
    client.send("a").await;
    assert_rejected(&mut client, "414 URI Too Long").await;
}

/// A header section of `size` bytes: the lines after the request line,
/// the empty line included.
fn headers_of_size(size: usize) -> String {
    // "Host: h\r\n" is 9 bytes, "X: " 3, its CRLF 2, the empty line 2.
    format!(
        "GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n",
        "v".repeat(size - 16)
    )
}

#[tokio::test(start_paused = true)]
async fn header_bytes_at_their_limit_are_served_one_byte_more_is_431() {
    let max = Limits::default().max_request_headers_total_size;
    let (mut client, _) = connect(echo, Limits::default());
    client.send(headers_of_size(max)).await;
    assert_echo(&client.response().await, "GET", "/", 0);

    let (mut client, _) = connect(echo, Limits::default());
    client.send(headers_of_size(max + 1)).await;
    assert_rejected(&mut client, "431 Request Header Fields Too Large").await;
}

#[tokio::test(start_paused = true)]
async fn an_unfinished_head_past_both_bounds_is_431_without_waiting_for_its_end() {
    // The server buffers an unfinished head up to the request-line and
    // header-section limits together, then refuses it.
    let limits = Limits::default();
    let bound = limits.max_request_line_size + limits.max_request_headers_total_size;
    let (mut client, _) = connect(echo, limits);
    let head = headers_of_size(bound + 64);
    client.send(&head[..head.len() - 4]).await;
    assert_rejected(&mut client, "431 Request Header Fields Too Large").await;
}

fn with_header_lines(n: usize) -> String {
    let mut head = String::from("GET / HTTP/1.1\r\nHost: h\r\n");
    for i in 1..n {
        head.push_str(&format!("X-{i}: v\r\n"));
    }
    head + "\r\n"
}

#[tokio::test(start_paused = true)]
async fn header_count_at_its_limit_is_served_one_more_is_431() {
    let max = Limits::default().max_request_header_count;
    let (mut client, _) = connect(echo, Limits::default());
    client.send(with_header_lines(max)).await;
    assert_echo(&client.response().await, "GET", "/", 0);

    let (mut client, _) = connect(echo, Limits::default());
    client.send(with_header_lines(max + 1)).await;
    assert_rejected(&mut client, "431 Request Header Fields Too Large").await;
}

fn post(length: usize) -> String {
    format!(
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: {length}\r\n\r\n{}",
        body_of(length)
    )
}

/// The bare `413` the lifecycle answers with when the app's body read fails.
async fn assert_413_and_close<S>(client: &mut Client<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let response = client.response().await;
    assert_eq!(response.status, 413, "{}", escape(&response.raw));
    assert_eq!(response.header("content-length"), Some("0"));
    assert!(
        response.closes(),
        "a 413 must say `connection: close`: {}",
        escape(&response.raw)
    );
    client.expect_eof().await;
}

#[tokio::test(start_paused = true)]
async fn a_content_length_at_the_body_limit_is_read_one_more_is_413() {
    let (mut client, _) = connect(echo, small_body_limit());
    client.send(post(100)).await;
    assert_echo(&client.response().await, "POST", "/", 100);

    let (mut client, _) = connect(echo, small_body_limit());
    client.send(post(101)).await;
    assert_413_and_close(&mut client).await;
}

#[tokio::test(start_paused = true)]
async fn a_declared_length_over_the_limit_gets_413_without_100_continue() {
    let (mut client, _) = connect(echo, small_body_limit());
    client
        .send("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 101\r\n\r\n")
        .await;
    // No `100 Continue`: the client must not be invited to send a body that
    // is refused anyway.
    assert_413_and_close(&mut client).await;
}

#[tokio::test(start_paused = true)]
async fn a_chunked_body_crossing_the_limit_is_413() {
    let (mut client, _) = connect(echo, small_body_limit());
    client
        .send(format!(
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3c\r\n{}\r\n28\r\n{}\r\n0\r\n\r\n",
            body_of(60),
            body_of(40)
        ))
        .await;
    assert_echo(&client.response().await, "POST", "/", 100);

    let (mut client, _) = connect(echo, small_body_limit());
    client
        .send(format!(
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3c\r\n{}\r\n29\r\n{}\r\n0\r\n\r\n",
            body_of(60),
            body_of(41)
        ))
        .await;
    assert_413_and_close(&mut client).await;
}

#[tokio::test(start_paused = true)]
async fn the_app_can_raise_the_body_limit_before_reading() {
    let app = from_fn(|ctx: &mut HttpContext| -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let limit = ctx
                .features()
                .get::<MaxRequestBodySize>()
                .expect("the server provides MaxRequestBodySize")
                .clone();
            assert_eq!(limit.get(), Some(100));
            limit.set(Some(1000))?;
            echo(ctx).await?;
            // Read: the limit is frozen now.
            assert!(limit.set(None).is_err());
            Ok(())
        })
    });
    let (mut client, _) = connect(app, small_body_limit());
    client.send(post(1000)).await;
    assert_echo(&client.response().await, "POST", "/", 1000);
}

// ---------------------------------------------------------------- timeouts

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

// ---------------------------------------------------------------- exchanges

#[tokio::test(start_paused = true)]
async fn pipelined_requests_in_one_write_are_answered_in_order() {
    let (mut client, _) = connect(echo, Limits::default());
    let requests = [
        get("/1"),
        "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc".to_owned(),
        "POST /3 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"
            .to_owned(),
        "HEAD /4 HTTP/1.1\r\nHost: h\r\n\r\n".to_owned(),
        get("/5"),
        get_close("/6"),
    ];
    client.send(requests.concat()).await;
    assert_echo(&client.response().await, "GET", "/1", 0);
    assert_echo(&client.response().await, "POST", "/2", 3);
    assert_echo(&client.response().await, "POST", "/3", 2);
    let head = client.head_response().await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("33"));
    assert!(head.body.is_empty());
    assert_echo(&client.response().await, "GET", "/5", 0);
    let last = client.response().await;
    assert_echo(&last, "GET", "/6", 0);
    assert!(last.closes());
    client.expect_eof().await;
}

/// RFC 9112 §2.2: the empty line a client sends after a POST body is
/// ignored, even when its CR and LF come in separate writes.
#[tokio::test(start_paused = true)]
async fn an_empty_line_after_a_body_split_between_writes_is_ignored() {
    let (mut client, _) = connect(echo, Limits::default());
    client
        .send("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello\r")
        .await;
    assert_echo(&client.response().await, "POST", "/a", 5);
    settle().await;
    client.send(format!("\n{}", get("/b"))).await;
    assert_echo(&client.response().await, "GET", "/b", 0);
}

#[tokio::test(start_paused = true)]
async fn a_response_held_for_a_pipelined_batch_goes_out_before_the_server_waits() {
    // The next request's first bytes came with this one: the response waits
    // to share a write with the next, but not for bytes the client may
    // only send once it has this response.
    let (mut client, _) = connect(echo, Limits::default());
    let start = Instant::now();
    client
        .send(format!("{}GET /2 HTTP/1.1\r\nHo", get("/1")))
        .await;
    assert_echo(&client.response().await, "GET", "/1", 0);
    assert_eq!(start.elapsed(), Duration::ZERO, "held until a timeout");
    client.send("st: h\r\n\r\n").await;
    assert_echo(&client.response().await, "GET", "/2", 0);
}

#[tokio::test(start_paused = true)]
async fn a_held_back_response_goes_out_while_the_next_request_waits() {
    // `/slow` waits for the test; the response to `/1`, held back to share
    // a write with it, must not wait too.
    let (release, released) = oneshot::channel::<()>();
    let released = Arc::new(std::sync::Mutex::new(Some(released)));
    let app = from_fn(move |ctx: &mut HttpContext| -> BoxFuture<'_, Result<()>> {
        let released = released.clone();
        Box::pin(async move {
            if ctx.request().path == "/slow" {
                let wait = released.lock().unwrap().take().expect("once");
                let _ = wait.await;
            }
            echo(ctx).await
        })
    });
    let (mut client, _) = connect(app, Limits::default());
    let start = Instant::now();
    client.send(get("/1") + &get("/slow")).await;
    assert_echo(&client.response().await, "GET", "/1", 0);
    assert_eq!(start.elapsed(), Duration::ZERO, "held until /slow answered");
    release.send(()).expect("the app waits");
    assert_echo(&client.response().await, "GET", "/slow", 0);
}

#[tokio::test(start_paused = true)]
async fn an_aborted_request_still_lets_the_responses_before_it_out() {
    // `/abort` ends its connection; `/1`'s complete response, held back to
    // share a write with it, is still owed to the client.
    let app = from_fn(|ctx: &mut HttpContext| -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if ctx.request().path == "/abort" {
                ctx.response_mut()
                    .headers
                    .insert("x-partial", HeaderValue::from_static("yes"));
                ctx.write("never sent").await?;
                ctx.abort();
                return Ok(());
            }
            echo(ctx).await
        })
    });
    let (mut client, _) = connect(app, Limits::default());
    client.send(get("/1") + &get("/abort")).await;
    assert_only_the_first_response_then_close(&mut client, "never sent").await;
}

#[tokio::test(start_paused = true)]
async fn only_the_held_back_responses_go_out_while_the_next_app_waits() {
    // `/fail` starts its response (head and a chunk in the server's write
    // buffer, not flushed), waits, then fails: `/1`'s held-back response goes
    // out while it waits, `/fail`'s bytes never do.
    let app = from_fn(|ctx: &mut HttpContext| -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if ctx.request().path == "/fail" {
                ctx.response_mut()
                    .headers
                    .insert("x-partial", HeaderValue::from_static("yes"));
                ctx.start().await?;
                ctx.write("half a body").await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
                return Err(serverbridge::Error::app_msg("failed mid-response"));
            }
            echo(ctx).await
        })
    });
    let (mut client, _) = connect(app, Limits::default());
    client.send(get("/1") + &get("/fail")).await;
    assert_only_the_first_response_then_close(&mut client, "half a body").await;
}

/// Reads to the close: exactly `/1`'s echo response, and nothing of the
/// aborted one after it (its `x-partial` head, its `body`).
async fn assert_only_the_first_response_then_close<S>(client: &mut Client<S>, body: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let bytes = client.read_until_close().await;
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with(&echo_body("GET", "/1", "", 0)),
        "{}",
        escape(&bytes)
    );
    assert!(
        !text.contains("x-partial") && !text.contains(body),
        "{}",
        escape(&bytes)
    );
}

#[tokio::test(start_paused = true)]
async fn a_lifetime_the_app_kept_is_not_the_next_requests() {
    // The connection reuses its request lifetime only when the app kept no
    // clone: a clone kept past its request (a spawned task's, say) must not
    // abort the next request on the connection.
    let app = keeper::lifetime_keeper();
    let (mut client, _) = connect(app, Limits::default());
    // Pipelined, so the connection keeps its features between the two.
    client.send(get("/keep") + &get("/next")).await;
    assert_eq!(client.response().await.text(), "kept");
    let response = client.response().await;
    assert_eq!(response.text(), "fired=false");
    assert!(!response.closes());
}

#[tokio::test(start_paused = true)]
async fn expect_100_continue_is_answered_when_the_app_reads_the_body() {
    let (mut client, _) = connect(echo, Limits::default());
    client
        .send("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        .await;
    assert_eq!(
        escape(&client.exact(25).await),
        escape(b"HTTP/1.1 100 Continue\r\n\r\n")
    );
    client.send("hello").await;
    let response = client.response().await;
    assert_echo(&response, "POST", "/", 5);
    assert!(!response.closes());
    // The connection carries on.
    client.send(get_close("/next")).await;
    assert_echo(&client.response().await, "GET", "/next", 0);
    client.expect_eof().await;
}

async fn refuse_unread(ctx: &mut HttpContext) -> Result<()> {
    ctx.response_mut().status = http::StatusCode::UNAUTHORIZED;
    ctx.write("no").await
}

#[tokio::test(start_paused = true)]
async fn expect_100_continue_is_not_sent_when_the_app_answers_without_reading() {
    let (mut client, _) = connect(refuse_unread, Limits::default());
    client
        .send("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        .await;
    let response = client.response().await;
    assert_eq!(response.status, 401, "{}", escape(&response.raw));
    assert_eq!(response.text(), "no");
    // RFC 9110 §10.1.1: the body was never asked for; the server closes and
    // says so in the response.
    assert!(
        response.closes(),
        "the final response must say `connection: close`: {}",
        escape(&response.raw)
    );
    client.expect_eof().await;
}

async fn upgrade_echo(ctx: &mut HttpContext) -> Result<()> {
    ctx.response_mut()
        .headers
        .insert("upgrade", HeaderValue::from_static("echo"));
    let mut io = ctx.upgrade().await?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = io.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        io.write_all(&buf[..n]).await?;
        io.flush().await?;
    }
    let _ = io.shutdown().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_upgraded_connection_echoes_bytes() {
    let (mut client, server) = connect(upgrade_echo, Limits::default());
    // Bytes right behind the head belong to the new protocol.
    client
        .send("GET /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly")
        .await;
    let head = client.response().await;
    assert_eq!(
        escape(&normalise_date(head.raw.as_slice())),
        escape(
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nupgrade: echo\r\ndate: {FIXED_DATE}\r\nconnection: upgrade\r\n\r\n"
            )
            .as_bytes()
        )
    );
    assert_eq!(client.exact(5).await, b"early");
    for message in ["ping", "not HTTP at all\r\n\r\n", "pong"] {
        client.send(message).await;
        assert_eq!(client.exact(message.len()).await, message.as_bytes());
    }
    client.io.shutdown().await.expect("half-close");
    client.expect_eof().await;
    server.await.expect("the connection task ends");
}

#[tokio::test(start_paused = true)]
async fn without_connection_upgrade_the_request_is_not_upgradable() {
    let (mut client, _) = connect(upgrade_echo, Limits::default());
    client
        .send("GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: echo\r\nConnection: close\r\n\r\n")
        .await;
    let response = client.response().await;
    assert_eq!(response.status, 500, "{}", escape(&response.raw));
    client.expect_eof().await;
}

/// An app that reports what it saw of the client going away.
fn lifetime_reporter(
    read_body: bool,
) -> (impl Application, mpsc::UnboundedReceiver<(bool, String)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = from_fn(move |ctx: &mut HttpContext| -> BoxFuture<'_, Result<()>> {
        let tx = tx.clone();
        Box::pin(async move {
            let lifetime = ctx
                .lifetime()
                .expect("the server provides RequestLifetime")
                .clone();
            let body = if read_body {
                match ctx.read_body(usize::MAX).await {
                    Ok(body) => format!("read {} bytes", body.len()),
                    Err(err) => format!("closed={} {err}", err.is_closed()),
                }
            } else {
                String::new()
            };
            lifetime.cancelled().await;
            let _ = tx.send((lifetime.is_cancelled(), body));
            Ok(())
        })
    });
    (app, rx)
}

#[tokio::test]
async fn a_client_gone_after_its_request_fires_the_request_lifetime() {
    let (app, mut seen) = lifetime_reporter(false);
    let (mut client, server) = connect(app, Limits::default());
    client.send(get("/")).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(client);
    let (cancelled, _) = tokio::time::timeout(Duration::from_secs(5), seen.recv())
        .await
        .expect("the app saw the abort in time")
        .expect("reported");
    assert!(cancelled);
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the connection ends")
        .expect("cleanly");
}

#[tokio::test]
async fn a_client_gone_mid_body_fails_the_read_and_fires_the_request_lifetime() {
    let (app, mut seen) = lifetime_reporter(true);
    let (mut client, server) = connect(app, Limits::default());
    client
        .send("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n0123456789")
        .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(client);
    let (cancelled, body) = tokio::time::timeout(Duration::from_secs(5), seen.recv())
        .await
        .expect("the app saw the abort in time")
        .expect("reported");
    assert!(cancelled);
    assert!(body.starts_with("closed=true"), "{body}");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the connection ends")
        .expect("cleanly");
}

// ---------------------------------------------------------------- response framing

async fn streamed(ctx: &mut HttpContext) -> Result<()> {
    ctx.write("hello").await?;
    ctx.flush().await?;
    ctx.write(" world").await
}

/// Sends `request` to `app` and asserts the exact bytes up to the close
/// (date normalised); `expected` has `{FIXED_DATE}` filled in.
async fn assert_answers_exactly<A: Application>(app: A, request: &str, expected: &str) {
    let (mut client, _) = connect(app, Limits::default());
    client.send(request).await;
    let bytes = normalise_date(&client.read_until_close().await);
    assert_eq!(escape(&bytes), escape(expected.as_bytes()));
}

#[tokio::test(start_paused = true)]
async fn a_flushed_response_is_chunked_with_a_last_chunk() {
    assert_answers_exactly(
        streamed,
        &get_close("/"),
        &format!(
            "HTTP/1.1 200 OK\r\ndate: {FIXED_DATE}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
                 5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        ),
    )
    .await;
}

/// Announces and sets the trailer `x-checksum: 42`.
fn set_checksum_trailer(ctx: &mut HttpContext) {
    ctx.response_mut()
        .headers
        .insert("trailer", HeaderValue::from_static("x-checksum"));
    ctx.features_mut()
        .get_mut::<ResponseTrailers>()
        .expect("HTTP/1.1 requests can carry response trailers")
        .headers
        .insert("x-checksum", HeaderValue::from_static("42"));
}

async fn with_trailers(ctx: &mut HttpContext) -> Result<()> {
    set_checksum_trailer(ctx);
    ctx.write("hello").await
}

#[tokio::test(start_paused = true)]
async fn response_trailers_follow_the_last_chunk() {
    assert_answers_exactly(
        with_trailers,
        &get_close("/"),
        &format!(
            "HTTP/1.1 200 OK\r\ntrailer: x-checksum\r\ndate: {FIXED_DATE}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
                 5\r\nhello\r\n0\r\nx-checksum: 42\r\n\r\n"
        ),
    )
    .await;
}

async fn pulled_with_trailers(ctx: &mut HttpContext) -> Result<()> {
    set_checksum_trailer(ctx);
    ctx.send_body(http_body_util::Full::new(bytes::Bytes::from_static(
        b"hello",
    )))
    .await
}

#[tokio::test(start_paused = true)]
async fn response_trailers_follow_a_pulled_body() {
    // The body's exact size would give it a Content-Length: the trailers
    // need chunked framing instead.
    assert_answers_exactly(
        pulled_with_trailers,
        &get_close("/"),
        &format!(
            "HTTP/1.1 200 OK\r\ntrailer: x-checksum\r\ndate: {FIXED_DATE}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
                 5\r\nhello\r\n0\r\nx-checksum: 42\r\n\r\n"
        ),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_streamed_response_to_http10_is_close_delimited() {
    // Even when the client asked for keep-alive: without a length, only the
    // close can end the body.
    assert_answers_exactly(
        streamed,
        "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        &format!("HTTP/1.1 200 OK\r\ndate: {FIXED_DATE}\r\nconnection: close\r\n\r\nhello world"),
    )
    .await;
}

async fn framed_by_the_app(ctx: &mut HttpContext) -> Result<()> {
    ctx.response_mut()
        .headers
        .insert("transfer-encoding", HeaderValue::from_static("chunked"));
    ctx.write("hello").await
}

#[tokio::test(start_paused = true)]
async fn a_whole_response_the_app_framed_as_chunked_ends_with_its_last_chunk() {
    // Completed at once, so the sink takes head, body and end in one call:
    // the app's own framing still holds.
    assert_answers_exactly(
        framed_by_the_app,
        &get_close("/"),
        &format!(
            "HTTP/1.1 200 OK\r\ndate: {FIXED_DATE}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
                 5\r\nhello\r\n0\r\n\r\n"
        ),
    )
    .await;
}

/// 15,000 bytes of the letter the path names (`/a`, `/b`, ...).
async fn letter_block(ctx: &mut HttpContext) -> Result<()> {
    let letter = ctx.request().path.as_bytes()[1];
    ctx.write(vec![letter; 15_000]).await
}

#[tokio::test(start_paused = true)]
async fn a_pipelined_batch_larger_than_the_write_buffer_arrives_whole_and_in_order() {
    // Six answers of 15,000 bytes are more than the 64 KiB write buffer
    // holds: the later ones wait for a flush instead of growing it.
    let (mut client, _) = connect(letter_block, Limits::default());
    let letters = ["a", "b", "c", "d", "e", "f"];
    let batch: String = letters.iter().map(|l| get(&format!("/{l}"))).collect();
    client.send(batch).await;
    for letter in letters {
        let response = client.response().await;
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-length"), Some("15000"));
        assert!(
            response.body == vec![letter.as_bytes()[0]; 15_000],
            "the body of /{letter} differs"
        );
    }
}

async fn big(ctx: &mut HttpContext) -> Result<()> {
    // Past the 64 KiB response buffer, in writes of several sizes (some go
    // straight to the socket).
    for (i, size) in [1, 70_000, 10, 20_000, 150_000].into_iter().enumerate() {
        ctx.write(vec![b'a' + i as u8; size]).await?;
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_large_streamed_response_decodes_to_what_the_app_wrote() {
    let (mut client, _) = connect(big, Limits::default());
    client.send(get("/")).await;
    let response = client.response().await;
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    let mut expected = Vec::new();
    for (i, size) in [1, 70_000, 10, 20_000, 150_000].into_iter().enumerate() {
        expected.extend(std::iter::repeat_n(b'a' + i as u8, size));
    }
    assert!(response.body == expected, "the body differs");
    // Kept alive and in step.
    client.send(get_close("/")).await;
    assert_eq!(client.response().await.body.len(), expected.len());
    client.expect_eof().await;
}

// ---------------------------------------------------------------- draining

async fn ignore_body(ctx: &mut HttpContext) -> Result<()> {
    let path = ctx.request().path.clone();
    ctx.write(format!("ignored {path}")).await
}

fn drain_limits() -> Limits {
    Limits {
        max_drain_size: 1000,
        ..Limits::default()
    }
}

#[tokio::test(start_paused = true)]
async fn an_unread_body_within_the_drain_limit_is_drained_and_the_connection_kept() {
    let (mut client, _) = connect(ignore_body, drain_limits());
    let chunked = format!(
        "POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n{}\r\n0\r\n\r\n",
        body_of(1000)
    );
    client
        .send(format!(
            "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n{}{chunked}{}",
            body_of(1000),
            get_close("/c")
        ))
        .await;
    for path in ["/a", "/b", "/c"] {
        let response = client.response().await;
        assert_eq!(response.text(), format!("ignored {path}"));
    }
    client.expect_eof().await;
}

#[tokio::test(start_paused = true)]
async fn an_unread_body_past_the_drain_limit_closes_the_connection() {
    let (mut client, _) = connect(ignore_body, drain_limits());
    client
        .send(format!(
            "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n{}{}",
            body_of(1001),
            get("/never")
        ))
        .await;
    let response = client.response().await;
    assert_eq!(response.text(), "ignored /a");
    client.expect_eof().await;
}

#[tokio::test(start_paused = true)]
async fn an_unread_body_that_never_comes_closes_after_the_drain_timeout() {
    let limits = Limits::default();
    let (mut client, _) = connect(ignore_body, limits.clone());
    client
        .send("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n12345")
        .await;
    let response = client.response().await;
    assert_eq!(response.text(), "ignored /a");
    let start = Instant::now();
    client.set_timeout(Duration::from_secs(60));
    client.expect_eof().await;
    assert_eq!(start.elapsed(), limits.drain_timeout);
}

// ---------------------------------------------------------------- panics

async fn panics_on_request(ctx: &mut HttpContext) -> Result<()> {
    if ctx.request().path == "/panic" {
        panic!("the app panicked on purpose");
    }
    echo(ctx).await
}

#[tokio::test(start_paused = true)]
async fn an_app_panic_is_a_500_and_other_connections_go_on() {
    let app: serverbridge::BoxApplication = Arc::new(panics_on_request);
    let (mut other, _) = connect_shared(app.clone(), Limits::default(), 1);
    let (mut client, _) = connect_shared(app, Limits::default(), 2);
    other.send(get("/before")).await;
    assert_echo(&other.response().await, "GET", "/before", 0);

    client.send(get("/panic")).await;
    let response = client.response().await;
    assert_eq!(
        escape(&normalise_date(&response.raw)),
        escape(
            format!(
                "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\ndate: {FIXED_DATE}\r\n\r\n"
            )
            .as_bytes()
        )
    );
    // The 500 was a complete response: this connection carries on too.
    client.send(get("/after")).await;
    assert_echo(&client.response().await, "GET", "/after", 0);
    other.send(get("/after")).await;
    assert_echo(&other.response().await, "GET", "/after", 0);
}

/// Panics in `create_context` for `/no-context`; otherwise echoes.
struct PanicsInCreate;

impl Application for PanicsInCreate {
    fn create_context(&self, features: serverbridge::Features) -> HttpContext {
        let ctx = HttpContext::new(features);
        if ctx.request().path == "/no-context" {
            panic!("no context today");
        }
        ctx
    }

    fn process_request<'a>(&'a self, ctx: &'a mut HttpContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(echo(ctx))
    }
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_create_context_closes_that_connection_only() {
    let app: serverbridge::BoxApplication = Arc::new(PanicsInCreate);
    let (mut other, other_task) = connect_shared(app.clone(), Limits::default(), 1);
    let (mut client, task) = connect_shared(app, Limits::default(), 2);
    // The sink went down with the features: no response, a close (as
    // Kestrel closes when CreateContext throws), and the panic stays inside
    // the request: the connection's task ends normally.
    client.send(get("/no-context")).await;
    client.expect_eof().await;
    task.await
        .expect("the connection task ends without a panic");
    other.send(get("/after")).await;
    assert_echo(&other.response().await, "GET", "/after", 0);
    drop(other);
    other_task.await.expect("the other connection ends cleanly");
}

// ---------------------------------------------------------------- real sockets

const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);

fn deadline(after: Duration) -> Instant {
    Instant::now() + after
}

fn tcp_addresses(server: &HttpServer) -> Vec<std::net::SocketAddr> {
    server
        .addresses()
        .get()
        .into_iter()
        .filter_map(|a| match a {
            ServerAddress::Tcp { addr, .. } => Some(addr),
            _ => None,
        })
        .collect()
}

async fn tcp_client(addr: std::net::SocketAddr) -> Client<tokio::net::TcpStream> {
    let stream = tokio::time::timeout(SOCKET_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connected");
    Client::new(stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_0_becomes_a_real_port_in_server_addresses() {
    let mut server = HttpServer::new().bind("127.0.0.1:0".parse().expect("valid"));
    server.start(Arc::new(echo)).await.expect("started");
    let addrs = tcp_addresses(&server);
    assert_eq!(addrs.len(), 1);
    assert_ne!(addrs[0].port(), 0);
    let from_features = server
        .features()
        .get::<ServerAddresses>()
        .expect("the server lists its addresses")
        .urls();
    assert_eq!(from_features, vec![format!("http://{}", addrs[0])]);

    let mut client = tcp_client(addrs[0]).await;
    client.send(get_close("/real?x=1")).await;
    let response = client.response().await;
    assert_eq!(response.text(), "method=GET path=/real query=x=1 body=0");
    client.expect_eof().await;
    server
        .stop(deadline(SOCKET_TIMEOUT))
        .await
        .expect("stopped");
    assert!(server.addresses().get().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_endpoints_serve_at_once() {
    let ipv6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    let mut server = HttpServer::new().bind("127.0.0.1:0".parse().expect("valid"));
    if ipv6 {
        server = server.bind("[::1]:0".parse().expect("valid"));
    } else {
        eprintln!("no IPv6 loopback here: a second IPv4 endpoint instead");
        server = server.bind("127.0.0.1:0".parse().expect("valid"));
    }
    server.start(Arc::new(echo)).await.expect("started");
    let addrs = tcp_addresses(&server);
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    assert!(addrs[0].is_ipv4());
    assert_eq!(addrs[1].is_ipv6(), ipv6);
    // Both open at once, answered in either order.
    let mut first = tcp_client(addrs[0]).await;
    let mut second = tcp_client(addrs[1]).await;
    second.send(get_close("/second")).await;
    first.send(get_close("/first")).await;
    assert_echo(&second.response().await, "GET", "/second", 0);
    assert_echo(&first.response().await, "GET", "/first", 0);
    server
        .stop(deadline(SOCKET_TIMEOUT))
        .await
        .expect("stopped");
}

#[tokio::test]
async fn a_failing_endpoint_leaves_nothing_listening() {
    let dir = std::env::temp_dir().join(format!("serverbridge-fail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("first.sock");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut server = HttpServer::new()
        .bind_unix(&path)
        .bind(taken.local_addr().expect("address"));
    let err = server.start(Arc::new(echo)).await.unwrap_err();
    assert!(err.is_io(), "{err:?}");
    // The first endpoint was bound, then given back: nobody answers on it.
    assert!(tokio::net::UnixStream::connect(&path).await.is_err());
    assert!(server.addresses().get().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_serves_raw_http() {
    let dir = std::env::temp_dir().join(format!(
        "serverbridge-wire-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("echo.sock");
    let mut server = HttpServer::new().bind_unix(&path);
    server.start(Arc::new(echo)).await.expect("started");
    assert_eq!(
        server.addresses().get(),
        vec![ServerAddress::Unix(path.clone())]
    );
    let stream = tokio::net::UnixStream::connect(&path)
        .await
        .expect("connected");
    let mut client = Client::new(stream);
    client
        .send("POST /unix HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc")
        .await;
    assert_echo(&client.response().await, "POST", "/unix", 3);
    client.send(get_close("/again")).await;
    assert_echo(&client.response().await, "GET", "/again", 0);
    client.expect_eof().await;
    server
        .stop(deadline(SOCKET_TIMEOUT))
        .await
        .expect("stopped");
    assert!(!path.exists(), "the socket file is removed at stop");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An app that signals when a request arrives and answers `/wait` only once
/// released.
fn held_app() -> (
    impl Application,
    mpsc::UnboundedReceiver<()>,
    oneshot::Sender<()>,
) {
    let (started_tx, started_rx) = mpsc::unbounded_channel();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let release_rx = Arc::new(tokio::sync::Mutex::new(Some(release_rx)));
    let app = from_fn(move |ctx: &mut HttpContext| -> BoxFuture<'_, Result<()>> {
        let started = started_tx.clone();
        let release = release_rx.clone();
        Box::pin(async move {
            if ctx.request().path == "/wait" {
                let _ = started.send(());
                let rx = release.lock().await.take();
                if let Some(rx) = rx {
                    let _ = rx.await;
                }
            }
            echo(ctx).await
        })
    });
    (app, started_rx, release_tx)
}

/// A connection attempt after the stop: refused, or closed without a byte.
async fn assert_refused(addr: std::net::SocketAddr) {
    let Ok(Ok(stream)) =
        tokio::time::timeout(SOCKET_TIMEOUT, tokio::net::TcpStream::connect(addr)).await
    else {
        return;
    };
    let mut client = Client::new(stream);
    client.send(get("/late")).await;
    client.expect_eof().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_finishes_the_request_in_flight_with_connection_close() {
    let (app, mut started, release) = held_app();
    let mut server = HttpServer::new().bind("127.0.0.1:0".parse().expect("valid"));
    server.start(Arc::new(app)).await.expect("started");
    let addr = tcp_addresses(&server)[0];

    let mut idle = tcp_client(addr).await;
    idle.send(get("/idle")).await;
    assert_echo(&idle.response().await, "GET", "/idle", 0);
    // One that carried several requests waits differently (it keeps its
    // state for a grace second): it must close at once too.
    let mut kept = tcp_client(addr).await;
    for path in ["/1", "/2", "/3"] {
        kept.send(get(path)).await;
        assert_echo(&kept.response().await, "GET", path, 0);
    }

    let mut busy = tcp_client(addr).await;
    busy.send(get("/wait")).await;
    tokio::time::timeout(SOCKET_TIMEOUT, started.recv())
        .await
        .expect("the request reached the app")
        .expect("signalled");

    let stopper = tokio::spawn(async move {
        let result = server.stop(deadline(SOCKET_TIMEOUT)).await;
        (server, result)
    });
    // The idle connections close at once; new connections are refused.
    idle.expect_eof().await;
    kept.expect_eof().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_refused(addr).await;
    assert!(
        !stopper.is_finished(),
        "stop waits for the request in flight"
    );

    release.send(()).expect("the app waits");
    let response = busy.response().await;
    assert_echo(&response, "GET", "/wait", 0);
    assert!(response.closes(), "{}", escape(&response.raw));
    busy.expect_eof().await;

    let (server, result) = tokio::time::timeout(SOCKET_TIMEOUT, stopper)
        .await
        .expect("stop returns once the request is done")
        .expect("no panic");
    result.expect("stopped");
    assert!(server.addresses().get().is_empty());
}

async fn stuck(_: &mut HttpContext) -> Result<()> {
    std::future::pending::<()>().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stop_deadline_aborts_a_stuck_request() {
    let mut server = HttpServer::new().bind("127.0.0.1:0".parse().expect("valid"));
    server.start(Arc::new(stuck)).await.expect("started");
    let addr = tcp_addresses(&server)[0];
    let mut client = tcp_client(addr).await;
    client.send(get("/")).await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    let grace = Duration::from_millis(200);
    let start = Instant::now();
    tokio::time::timeout(SOCKET_TIMEOUT, server.stop(deadline(grace)))
        .await
        .expect("stop returns soon after its deadline")
        .expect("stopped");
    assert!(start.elapsed() >= grace, "stop waited for the deadline");
    client.expect_eof().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_concurrent_connections_a_connection_is_closed_at_accept() {
    let limits = Limits {
        max_concurrent_connections: Some(1),
        ..Limits::default()
    };
    let mut server = HttpServer::new()
        .bind("127.0.0.1:0".parse().expect("valid"))
        .limits(limits);
    server.start(Arc::new(echo)).await.expect("started");
    let addr = tcp_addresses(&server)[0];

    let mut first = tcp_client(addr).await;
    first.send(get("/first")).await;
    assert_echo(&first.response().await, "GET", "/first", 0);

    let mut second = tcp_client(addr).await;
    second.send(get("/second")).await;
    second.expect_eof().await;

    first.send(get_close("/first-again")).await;
    assert_echo(&first.response().await, "GET", "/first-again", 0);
    first.expect_eof().await;

    // The slot frees once the first connection is gone.
    let mut served = false;
    for _ in 0..50 {
        let mut third = tcp_client(addr).await;
        third.send(get_close("/third")).await;
        let bytes = third.read_until_close().await;
        if !bytes.is_empty() {
            assert!(
                bytes.starts_with(b"HTTP/1.1 200 OK\r\n"),
                "{}",
                escape(&bytes)
            );
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "a new connection is served once the first closed");
    server
        .stop(deadline(SOCKET_TIMEOUT))
        .await
        .expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_on_one_socket_leaves_the_server_serving() {
    let mut server = HttpServer::new().bind("127.0.0.1:0".parse().expect("valid"));
    server
        .start(Arc::new(panics_on_request))
        .await
        .expect("started");
    let addr = tcp_addresses(&server)[0];
    let mut other = tcp_client(addr).await;
    let mut client = tcp_client(addr).await;
    client.send(get_close("/panic")).await;
    let response = client.response().await;
    assert_eq!(response.status, 500);
    assert_eq!(response.header("content-length"), Some("0"));
    client.expect_eof().await;
    other.send(get_close("/still-here")).await;
    assert_echo(&other.response().await, "GET", "/still-here", 0);
    server
        .stop(deadline(SOCKET_TIMEOUT))
        .await
        .expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_concurrent_upgraded_connections_an_upgrade_gets_503() {
    let limits = Limits {
        max_concurrent_upgraded_connections: Some(1),
        ..Limits::default()
    };
    let mut server = HttpServer::new()
        .bind("127.0.0.1:0".parse().expect("valid"))
        .limits(limits);
    server.start(Arc::new(upgrade_echo)).await.expect("started");
    let addr = tcp_addresses(&server)[0];
    let upgrade = "GET /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n";

    let mut first = tcp_client(addr).await;
    first.send(upgrade).await;
    assert!(first
        .response()
        .await
        .raw
        .starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    first.send("held").await;
    assert_eq!(first.exact(4).await, b"held");

    // The one slot is taken: the next upgrade is refused before its head.
    let mut second = tcp_client(addr).await;
    second.send(upgrade).await;
    let refused = second.response().await;
    assert!(
        refused
            .raw
            .starts_with(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n"),
        "{}",
        escape(&refused.raw)
    );

    // Once the first upgraded connection is gone, its slot is free again.
    first.io.shutdown().await.expect("half-close");
    first.expect_eof().await;
    let mut upgraded = false;
    for _ in 0..50 {
        let mut third = tcp_client(addr).await;
        third.send(upgrade).await;
        if third
            .response()
            .await
            .raw
            .starts_with(b"HTTP/1.1 101 Switching Protocols\r\n")
        {
            upgraded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(upgraded, "the slot frees once the upgraded connection ends");
    server
        .stop(deadline(SOCKET_TIMEOUT))
        .await
        .expect("stopped");
}

#[tokio::test(start_paused = true)]
async fn a_body_slower_than_the_minimum_rate_gets_408_after_the_grace() {
    let (mut client, _server) = connect(echo, Limits::default());
    let start = Instant::now();
    client
        .send("POST /slow HTTP/1.1\r\nHost: h\r\nContent-Length: 10000\r\n\r\n")
        .await;
    client.send("x".repeat(100)).await;
    let response = client.response().await;
    assert_eq!(response.status, 408, "{}", escape(&response.raw));
    assert!(response.closes(), "{}", escape(&response.raw));
    client.expect_eof().await;
    // 100 bytes at 240 B/s is well inside the 5 s grace: the grace decides.
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_body_at_the_minimum_rate_is_read_to_its_end() {
    let (mut client, _server) = connect(echo, Limits::default());
    client
        .send("POST /steady HTTP/1.1\r\nHost: h\r\nContent-Length: 3000\r\n\r\n")
        .await;
    // 300 bytes a second for ten seconds: above 240 B/s all along.
    for _ in 0..10 {
        client.send("y".repeat(300)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_echo(&client.response().await, "POST", "/steady", 3000);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_is_dropped_at_the_minimum_response_rate() {
    let (seen_tx, seen_rx) = oneshot::channel();
    let seen_tx = Arc::new(std::sync::Mutex::new(Some(seen_tx)));
    let app = from_fn(move |ctx| {
        let seen_tx = seen_tx.clone();
        Box::pin(async move {
            let chunk = bytes::Bytes::from(vec![b'z'; 64 * 1024]);
            let mut outcome = Ok(());
            // 16 MiB: far more than the transport buffers.
            for _ in 0..256 {
                if let Err(err) = ctx.write(chunk.clone()).await {
                    outcome = Err(err);
                    break;
                }
            }
            let timed_out = matches!(&outcome, Err(err) if err.is_timeout());
            if let Some(tx) = seen_tx.lock().unwrap().take() {
                let _ = tx.send(timed_out);
            }
            outcome
        })
    });
    let (mut client, _server) = connect(app, Limits::default());
    let start = Instant::now();
    client.send(get("/big")).await;
    // The client never reads: the server's writes stall.
    let timed_out = seen_rx.await.expect("the app finished");
    assert!(timed_out, "the app's write failed with a timeout");
    // Budget for a 64 KiB flush at 240 B/s is about 273 s, not forever.
    let waited = start.elapsed();
    assert!(waited < Duration::from_secs(600), "{waited:?}");
    assert!(waited >= Duration::from_secs(200), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn an_app_can_turn_off_the_body_rate_for_its_request() {
    let app = from_fn(|ctx| {
        Box::pin(async move {
            ctx.features()
                .get::<serverbridge::feature::MinRequestBodyDataRate>()
                .expect("the built-in server provides it")
                .set(None);
            echo(ctx).await
        })
    });
    let (mut client, _server) = connect(app, Limits::default());
    client
        .send("POST /trickle HTTP/1.1\r\nHost: h\r\nContent-Length: 20\r\n\r\n")
        .await;
    // One byte every 10 s: far below 240 B/s, long past the 5 s grace.
    for _ in 0..20 {
        client.send("t").await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    assert_echo(&client.response().await, "POST", "/trickle", 20);
}

#[tokio::test(start_paused = true)]
async fn an_app_can_turn_off_the_response_rate_for_its_response() {
    let (done_tx, done_rx) = oneshot::channel::<bool>();
    let done_tx = Arc::new(std::sync::Mutex::new(Some(done_tx)));
    let app = from_fn(move |ctx| {
        let done_tx = done_tx.clone();
        Box::pin(async move {
            ctx.features()
                .get::<serverbridge::feature::MinResponseDataRate>()
                .expect("the built-in server provides it")
                .set(None);
            let chunk = bytes::Bytes::from(vec![b'z'; 64 * 1024]);
            let mut failed = false;
            for _ in 0..64 {
                if ctx.write(chunk.clone()).await.is_err() {
                    failed = true;
                    break;
                }
            }
            if let Some(tx) = done_tx.lock().unwrap().take() {
                let _ = tx.send(failed);
            }
            Ok(())
        })
    });
    let (mut client, _server) = connect(app, Limits::default());
    client.send(get("/slow-reader")).await;
    // With the rate on, the writes would time out after about 273 s.
    let outcome = tokio::time::timeout(Duration::from_secs(3600), done_rx).await;
    assert!(
        outcome.is_err(),
        "the app is still writing after an hour: {outcome:?}"
    );
}

/// Inserts a marker feature, and reports whether one was already there (left
/// over from an earlier request on the same connection).
async fn marks(ctx: &mut HttpContext) -> Result<()> {
    #[derive(Debug)]
    struct Marker;
    let leaked = ctx.features().contains::<Marker>();
    ctx.features_mut().insert(Marker);
    ctx.write(if leaked { "leaked" } else { "clean" }).await
}

#[tokio::test(start_paused = true)]
async fn features_an_app_adds_never_reach_the_next_request() {
    for version in ["HTTP/1.1", "HTTP/1.0"] {
        let (mut client, _server) = connect(marks, Limits::default());
        for _ in 0..3 {
            client
                .send(format!(
                    "GET / {version}\r\nHost: h\r\nConnection: keep-alive\r\n\r\n"
                ))
                .await;
            let response = client.response().await;
            assert_eq!(response.text(), "clean", "{version}");
        }
    }
}

// ------------------------------------------------- a final status of 1xx

#[tokio::test(start_paused = true)]
async fn a_1xx_final_status_is_an_error_answered_500_not_an_interim_head() {
    for status in [103u16, 100, 101] {
        let app = from_fn(move |ctx: &mut HttpContext| -> BoxFuture<'_, Result<()>> {
            Box::pin(async move {
                if ctx.request().path == "/a" {
                    ctx.response_mut().status = http::StatusCode::from_u16(status).unwrap();
                    Ok(())
                } else {
                    ctx.write("B").await
                }
            })
        });
        let (mut client, _) = connect(app, Limits::default());
        client.send(format!("{}{}", get("/a"), get("/b"))).await;
        let first = client.response().await;
        assert_eq!(first.status, 500, "{status}: {}", escape(&first.raw));
        let second = client.response().await;
        assert_eq!(second.status, 200, "{status}");
        assert_eq!(second.text(), "B");
    }
}

#[tokio::test(start_paused = true)]
async fn timeouts_of_duration_max_mean_none_not_a_panic() {
    let limits = Limits {
        keep_alive_timeout: Duration::MAX,
        request_headers_timeout: Duration::MAX,
        min_data_rate_grace: Duration::MAX,
        ..Limits::default()
    };
    let (mut client, task) = connect(echo, limits);
    for path in ["/1", "/2"] {
        client.send(get(path)).await;
        assert_echo(&client.response().await, "GET", path, 0);
    }
    // A body that trickles in: the rate's deadline is computed too.
    client
        .send("POST /3 HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab")
        .await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    client.send("cd").await;
    assert_echo(&client.response().await, "POST", "/3", 4);
    drop(client);
    task.await
        .expect("the connection task ends without a panic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_deadline_ends_a_drain_of_an_unread_body() {
    async fn ignores_body(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("ok").await
    }
    let limits = Limits {
        drain_timeout: Duration::from_secs(600),
        ..Limits::default()
    };
    let mut server = HttpServer::new()
        .bind("127.0.0.1:0".parse().expect("valid"))
        .limits(limits);
    server.start(Arc::new(ignores_body)).await.expect("started");
    let addr = tcp_addresses(&server)[0];
    let mut client = tcp_client(addr).await;
    // Ten of a thousand body bytes: the app answers without reading, and
    // the server drains, waiting for the other 990.
    client
        .send("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n0123456789")
        .await;
    assert_eq!(client.response().await.status, 200);
    // A deadline already past: the drain ends now, not in ten minutes.
    let stopped = tokio::time::timeout(SOCKET_TIMEOUT, server.stop(Instant::now())).await;
    stopped
        .expect("stop returns at its deadline")
        .expect("stopped");
}

/// Sends an HTTP/1.0 GET (its response is delimited by the close), reads the
/// first bytes of the response, stops the server with a deadline already
/// past, and returns those bytes and how the stream ended.
async fn http10_cut_off_by_stop(server: &mut HttpServer) -> (String, std::io::Result<usize>) {
    let addr = tcp_addresses(server)[0];
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let mut first = vec![0u8; 4096];
    let n = tokio::time::timeout(SOCKET_TIMEOUT, stream.read(&mut first))
        .await
        .expect("the head comes")
        .unwrap();
    server.stop(Instant::now()).await.expect("stopped");
    let mut rest = Vec::new();
    let end = tokio::time::timeout(SOCKET_TIMEOUT, stream.read_to_end(&mut rest))
        .await
        .expect("the connection ends");
    (String::from_utf8_lossy(&first[..n]).into_owned(), end)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_delimited_response_cut_off_ends_with_a_reset_not_a_clean_close() {
    async fn partial_then_fails(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("partial body").await?;
        ctx.flush().await?;
        Err(serverbridge::Error::app_msg("the app failed mid-body"))
    }
    async fn partial_then_stuck(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("partial body").await?;
        ctx.flush().await?;
        std::future::pending::<Result<()>>().await
    }
    // The app fails after its head; then a stop's deadline cuts it off.
    let mut server = HttpServer::new().bind("127.0.0.1:0".parse().expect("valid"));
    server
        .start(Arc::new(partial_then_fails))
        .await
        .expect("started");
    let addr = tcp_addresses(&server)[0];
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let mut got = Vec::new();
    let end = tokio::time::timeout(SOCKET_TIMEOUT, stream.read_to_end(&mut got))
        .await
        .expect("the connection ends");
    // (The reset may overtake the bytes: then the client has less still.)
    assert!(
        end.is_err(),
        "a clean end makes {:?} look complete",
        String::from_utf8_lossy(&got)
    );
    server.stop(Instant::now()).await.expect("stopped");
    let mut server = HttpServer::new().bind("127.0.0.1:0".parse().expect("valid"));
    server
        .start(Arc::new(partial_then_stuck))
        .await
        .expect("started");
    let (head, end) = http10_cut_off_by_stop(&mut server).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(end.is_err(), "a clean end makes {head:?} look complete");
}

#[tokio::test(start_paused = true)]
async fn time_the_app_spends_not_reading_does_not_count_against_the_body_rate() {
    async fn reads_with_a_timeout_first(ctx: &mut HttpContext) -> Result<()> {
        let mut body = std::mem::take(&mut ctx.request_mut().body);
        let first = tokio::time::timeout(
            Duration::from_secs(1),
            http_body_util::BodyExt::frame(&mut body),
        )
        .await;
        assert!(first.is_err(), "nothing was sent yet");
        tokio::time::sleep(Duration::from_secs(20)).await; // other work
        let bytes = http_body_util::BodyExt::collect(body).await?.to_bytes();
        ctx.write(format!("read {}", bytes.len())).await
    }
    let (mut client, _) = connect(reads_with_a_timeout_first, Limits::default());
    client
        .send("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 20\r\n\r\n")
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    client.send("0123456789").await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    // The client made the app wait about 2 s in all: within the grace.
    client.send("0123456789").await;
    let response = client.response().await;
    assert_eq!(response.status, 200, "{}", escape(&response.raw));
    assert_eq!(response.text(), "read 20");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgraded_connection_the_app_holds_is_closed_by_the_stop_deadline() {
    async fn upgrade_and_hand_off(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut()
            .headers
            .insert("upgrade", HeaderValue::from_static("echo"));
        let mut io = ctx.upgrade().await?;
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            while let Ok(n) = io.read(&mut buf).await {
                if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        });
        Ok(())
    }
    let mut server = HttpServer::new().bind("127.0.0.1:0".parse().expect("valid"));
    server
        .start(Arc::new(upgrade_and_hand_off))
        .await
        .expect("started");
    let addr = tcp_addresses(&server)[0];
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let mut head = vec![0u8; 4096];
    let n = stream.read(&mut head).await.unwrap();
    assert!(
        head[..n].starts_with(b"HTTP/1.1 101"),
        "{}",
        escape(&head[..n])
    );
    stream.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    stream.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"ping");
    // A deadline already past: the upgraded connection is closed too.
    tokio::time::timeout(SOCKET_TIMEOUT, server.stop(Instant::now()))
        .await
        .expect("stop returns")
        .expect("stopped");
    let _ = stream.write_all(b"still here?").await;
    let mut buf = [0u8; 64];
    let after = tokio::time::timeout(SOCKET_TIMEOUT, stream.read(&mut buf))
        .await
        .expect("the connection ends");
    assert!(
        matches!(after, Ok(0) | Err(_)),
        "the upgraded connection outlived stop(): {after:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_body_s_size_hint_is_what_remains() {
    async fn body_hint(ctx: &mut HttpContext) -> Result<()> {
        let mut body = std::mem::take(&mut ctx.request_mut().body);
        let before = http_body::Body::size_hint(&body).exact();
        let frame = http_body_util::BodyExt::frame(&mut body).await.unwrap()?;
        let got = frame.into_data().map(|d| d.len()).unwrap_or(0);
        let after = http_body::Body::size_hint(&body).exact();
        ctx.write(format!("{before:?} {got} {after:?}")).await
    }
    let (mut client, _) = connect(body_hint, Limits::default());
    client
        .send("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n01234")
        .await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    client.send("56789").await;
    assert_eq!(client.response().await.text(), "Some(10) 5 Some(5)");
}
