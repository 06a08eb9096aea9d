//! Response framing.

use super::*;

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
