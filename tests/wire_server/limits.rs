//! Limits.

use super::*;

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

#[tokio::test(start_paused = true)]
async fn a_chunk_announced_past_the_limit_is_413_before_its_data_arrives() {
    // The size line alone says the body cannot fit: no waiting for the
    // data (a client could hold the connection open trickling it).
    for size in ["65", "FFFFFFFFFFFFFFFF"] {
        let (mut client, _) = connect(echo, small_body_limit());
        client
            .send(format!(
                "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n{size}\r\nhello"
            ))
            .await;
        assert_413_and_close(&mut client).await;
    }
    // Two chunks: the second's size line crosses what is left.
    let (mut client, _) = connect(echo, small_body_limit());
    client
        .send(format!(
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3c\r\n{}\r\n29\r\n",
            body_of(60)
        ))
        .await;
    assert_413_and_close(&mut client).await;
    // Exactly up to the limit is still read.
    let (mut client, _) = connect(echo, small_body_limit());
    client
        .send(format!(
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n{}\r\n0\r\n\r\n",
            body_of(100)
        ))
        .await;
    assert_echo(&client.response().await, "POST", "/", 100);
}

#[tokio::test(start_paused = true)]
async fn characters_rfc_3986_leaves_out_of_a_target_are_400_unless_allowed() {
    let target = "/a|b?q=[1]&r=%zz";
    let (mut client, _) = connect(echo, Limits::default());
    client.send(get(target)).await;
    assert_rejected(&mut client, "400 Bad Request").await;

    let lenient = Limits {
        allow_unencoded_target_characters: true,
        ..Limits::default()
    };
    let (mut client, _) = connect(echo, lenient.clone());
    client.send(get(target)).await;
    let response = client.response().await;
    assert_eq!(response.status, 200, "{}", escape(&response.raw));
    assert_eq!(response.text(), echo_body("GET", "/a|b", "q=[1]&r=%zz", 0));
    // Still refused with the switch: what could change the framing, and a
    // malformed `%` in the path.
    for refused in ["/a%zz", "/a#f"] {
        let (mut client, _) = connect(echo, lenient.clone());
        client.send(get(refused)).await;
        assert_rejected(&mut client, "400 Bad Request").await;
    }
}
