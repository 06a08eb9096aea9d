//! Exchanges.

use super::*;

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

pub(crate) async fn upgrade_echo(ctx: &mut HttpContext) -> Result<()> {
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

#[tokio::test(start_paused = true)]
async fn a_body_cut_short_by_a_half_close_is_a_400_that_says_connection_close() {
    // The echo app lets the failed read end the request: the lifecycle
    // answers 400, and the connection cannot carry another request.
    let requests = [
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nhello",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n",
    ];
    for request in requests {
        let (mut client, _) = connect(echo, Limits::default());
        client.send(request).await;
        client.io.shutdown().await.expect("half-close");
        let bytes = normalise_date(&client.read_until_close().await);
        assert_eq!(
            escape(&bytes),
            escape(
                format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: {FIXED_DATE}\r\n\
                     connection: close\r\n\r\n"
                )
                .as_bytes()
            ),
            "{request:?}"
        );
    }
}
