//! A final status of 1xx.

use super::*;

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
