//! Buffering: small responses whole, large ones streamed, HEAD.

use super::*;

#[tokio::test]
async fn small_response_goes_out_whole_with_content_length() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("hello").await?;
        ctx.write(" world").await?;
        assert!(!ctx.response().has_started(), "still buffered");
        Ok(())
    }
    let (outcome, recording) = run("GET", app).await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::OK),
            SinkEvent::Write(5),
            SinkEvent::Write(6),
            SinkEvent::Complete { trailers: false },
        ]
    );
    let headers = recording.headers().unwrap();
    assert_eq!(headers["content-length"], "11");
    assert!(!headers.contains_key("transfer-encoding"));
    assert_eq!(recording.body(), "hello world");
}

#[tokio::test]
async fn empty_response_gets_content_length_zero() {
    async fn app(_: &mut HttpContext) -> Result<()> {
        Ok(())
    }
    let (_, recording) = run("GET", app).await;
    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::OK),
            SinkEvent::Complete { trailers: false },
        ]
    );
    assert_eq!(recording.headers().unwrap()["content-length"], "0");
}

#[tokio::test]
async fn a_response_of_exactly_the_buffer_size_is_still_buffered() {
    let (mut ctx, recording) = context("GET", "/");
    ctx.write(vec![b'x'; DEFAULT_RESPONSE_BUFFER])
        .await
        .unwrap();
    assert!(!ctx.response().has_started());
    assert!(recording.events().is_empty());
    ctx.complete().await.unwrap();
    assert_eq!(
        recording.headers().unwrap()["content-length"],
        DEFAULT_RESPONSE_BUFFER.to_string().as_str()
    );
    assert_eq!(recording.body().len(), DEFAULT_RESPONSE_BUFFER);
}

#[tokio::test]
async fn a_response_larger_than_the_buffer_starts_before_complete() {
    assert_eq!(DEFAULT_RESPONSE_BUFFER, 64 * 1024);
    let (mut ctx, recording) = context("GET", "/");
    ctx.write(vec![b'a'; 40 * 1024]).await.unwrap();
    assert!(!ctx.response().has_started());
    ctx.write(vec![b'b'; 40 * 1024]).await.unwrap();
    assert!(ctx.response().has_started(), "80 KiB > 64 KiB: head sent");
    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::OK),
            SinkEvent::Write(40 * 1024),
            SinkEvent::Write(40 * 1024),
        ],
        "head and body sent before complete"
    );
    ctx.complete().await.unwrap();
    assert_eq!(
        recording.events().last(),
        Some(&SinkEvent::Complete { trailers: false })
    );
    assert_eq!(count_starts(&recording.events()), 1);
    let headers = recording.headers().unwrap();
    assert!(!headers.contains_key("content-length"), "{headers:?}");
    let body = recording.body();
    assert_eq!(body.len(), 80 * 1024);
    assert!(body[..40 * 1024].iter().all(|&b| b == b'a'));
    assert!(body[40 * 1024..].iter().all(|&b| b == b'b'));
    assert_eq!(ctx.bytes_written(), 80 * 1024);
}

#[tokio::test]
async fn a_flush_sends_the_head_without_content_length() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("a").await?;
        ctx.flush().await?;
        assert!(ctx.response().has_started());
        ctx.write("bc").await
    }
    let (outcome, recording) = run("GET", app).await;
    assert!(outcome.completed);
    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::OK),
            SinkEvent::Write(1),
            SinkEvent::Flush,
            SinkEvent::Write(2),
            SinkEvent::Complete { trailers: false },
        ]
    );
    assert!(!recording.headers().unwrap().contains_key("content-length"));
    assert_eq!(recording.body(), "abc");
}

#[tokio::test]
async fn buffer_limit_zero_sends_the_head_on_the_first_write() {
    let (mut ctx, recording) = context("GET", "/");
    ctx.set_response_buffer_limit(0);
    ctx.write("abc").await.unwrap();
    assert!(ctx.response().has_started());
    assert_eq!(
        recording.events(),
        [SinkEvent::Start(StatusCode::OK), SinkEvent::Write(3)]
    );
    ctx.complete().await.unwrap();
    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::OK),
            SinkEvent::Write(3),
            SinkEvent::Complete { trailers: false },
        ]
    );
    assert!(!recording.headers().unwrap().contains_key("content-length"));
}

#[tokio::test]
async fn head_keeps_headers_and_drops_the_body() {
    let (mut ctx, recording) = context("HEAD", "/");
    ctx.response_mut()
        .headers
        .insert("content-type", HeaderValue::from_static("text/plain"));
    ctx.write("hello").await.unwrap();
    ctx.write(" there").await.unwrap();
    assert_eq!(ctx.bytes_written(), 11, "dropped bytes are counted");
    ctx.complete().await.unwrap();
    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::OK),
            SinkEvent::Complete { trailers: false },
        ]
    );
    let headers = recording.headers().unwrap();
    assert_eq!(headers["content-type"], "text/plain");
    assert_eq!(headers["content-length"], "11", "the GET body's length");
    assert!(recording.body().is_empty());
}

#[tokio::test]
async fn head_larger_than_the_buffer_sends_no_body_bytes() {
    let (mut ctx, recording) = context("HEAD", "/");
    ctx.write(vec![0u8; 100_000]).await.unwrap();
    ctx.complete().await.unwrap();
    assert_eq!(ctx.bytes_written(), 100_000);
    assert!(recording.body().is_empty());
    assert!(!recording
        .events()
        .iter()
        .any(|e| matches!(e, SinkEvent::Write(_))));
}

#[tokio::test]
async fn head_through_the_test_server() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("0123456789").await
    }
    let server = TestServer::new(app);
    let response = server.head("/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-length"], "10");
    assert_eq!(response.bytes().await.unwrap(), "");
}
