//! Bodies a status forbids, declared lengths, send_body and send_file.

use super::*;

#[tokio::test]
async fn bodies_are_refused_for_204_304_and_1xx() {
    for status in [
        StatusCode::NO_CONTENT,
        StatusCode::NOT_MODIFIED,
        StatusCode::SWITCHING_PROTOCOLS,
        StatusCode::CONTINUE,
        StatusCode::from_u16(103).unwrap(),
    ] {
        let (mut ctx, recording) = context("GET", "/");
        ctx.response_mut().status = status;
        let err = ctx.write("x").await.unwrap_err();
        assert_eq!(err.rule(), Some("response.body-not-allowed"), "{status}");
        assert!(err.is_contract());
        // No byte went anywhere.
        assert!(recording.events().is_empty(), "{status}");
        // An empty write is not a body.
        ctx.write(Bytes::new()).await.unwrap();
    }
}

#[tokio::test]
async fn send_body_and_send_file_are_refused_for_204() {
    let (mut ctx, _recording) = context("GET", "/");
    ctx.response_mut().status = StatusCode::NO_CONTENT;
    let err = ctx
        .send_body(Full::new(Bytes::from_static(b"x")))
        .await
        .unwrap_err();
    assert_eq!(err.rule(), Some("response.body-not-allowed"));

    let file = TempFile::new(b"abc");
    let (mut ctx, _recording) = context("GET", "/");
    ctx.response_mut().status = StatusCode::NOT_MODIFIED;
    let err = ctx.send_file(&file.0, None).await.unwrap_err();
    assert_eq!(err.rule(), Some("response.body-not-allowed"));
}

#[tokio::test]
async fn a_204_gets_no_content_length() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut().status = StatusCode::NO_CONTENT;
        Ok(())
    }
    let (outcome, recording) = run("GET", app).await;
    assert!(outcome.completed);
    assert_eq!(recording.status(), Some(StatusCode::NO_CONTENT));
    assert!(!recording.headers().unwrap().contains_key("content-length"));
}

#[tokio::test]
async fn buffered_body_then_status_204_fails_with_a_500() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("abc").await?;
        ctx.response_mut().status = StatusCode::NO_CONTENT;
        Ok(())
    }
    let (outcome, recording) = run("GET", app).await;
    assert_eq!(
        outcome.error.unwrap().rule(),
        Some("response.body-not-allowed")
    );
    assert_eq!(recording.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert_eq!(recording.headers().unwrap()["content-length"], "0");
    assert!(recording.body().is_empty());
}

#[tokio::test]
async fn writing_more_than_the_declared_length_fails() {
    let (mut ctx, recording) = context("GET", "/");
    ctx.response_mut()
        .headers
        .insert("content-length", HeaderValue::from_static("10"));
    ctx.write("0123456789").await.unwrap();
    let err = ctx.write("a").await.unwrap_err();
    assert_eq!(err.rule(), Some("response.content-length-mismatch"));
    assert_eq!(ctx.bytes_written(), 10, "the refused byte is not counted");

    // In one write, too.
    let (mut ctx, _) = context("GET", "/");
    ctx.response_mut()
        .headers
        .insert("content-length", HeaderValue::from_static("10"));
    let err = ctx.write("0123456789a").await.unwrap_err();
    assert_eq!(err.rule(), Some("response.content-length-mismatch"));
    assert!(recording.events().is_empty());
}

#[tokio::test]
async fn writing_less_than_the_declared_length_fails_on_complete() {
    let (mut ctx, _recording) = context("GET", "/");
    ctx.response_mut()
        .headers
        .insert("content-length", HeaderValue::from_static("10"));
    ctx.write("01234").await.unwrap();
    let err = ctx.complete().await.unwrap_err();
    assert_eq!(err.rule(), Some("response.content-length-mismatch"));
}

#[tokio::test]
async fn short_buffered_body_through_the_lifecycle_is_a_500() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut()
            .headers
            .insert("content-length", HeaderValue::from_static("10"));
        ctx.write("01234").await
    }
    let (outcome, recording) = run("GET", app).await;
    assert_eq!(
        outcome.error.as_ref().unwrap().rule(),
        Some("response.content-length-mismatch")
    );
    // Nothing had been sent (the body was buffered): a bare 500, not a
    // 200 that claims ten bytes and delivers five.
    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::INTERNAL_SERVER_ERROR),
            SinkEvent::Complete { trailers: false },
        ]
    );
    assert_eq!(recording.headers().unwrap()["content-length"], "0");
    assert!(recording.body().is_empty());
    assert!(outcome.completed);
}

#[tokio::test]
async fn short_body_after_a_flush_aborts() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut()
            .headers
            .insert("content-length", HeaderValue::from_static("10"));
        ctx.write("01234").await?;
        ctx.flush().await
    }
    let (outcome, recording) = run("GET", app).await;
    assert_eq!(
        outcome.error.as_ref().unwrap().rule(),
        Some("response.content-length-mismatch")
    );
    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::OK),
            SinkEvent::Write(5),
            SinkEvent::Flush,
            SinkEvent::Abort,
        ]
    );
    assert_eq!(recording.headers().unwrap()["content-length"], "10");
    assert!(!outcome.completed);
}

#[tokio::test]
async fn send_body_sets_content_length_from_the_size_hint() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        ctx.send_body(Full::new(Bytes::from_static(b"pulled body")))
            .await
    }
    let (outcome, recording) = run("GET", app).await;
    assert!(outcome.completed, "{:?}", outcome.error);
    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::OK),
            SinkEvent::Write(11),
            SinkEvent::Complete { trailers: false },
        ]
    );
    assert_eq!(recording.headers().unwrap()["content-length"], "11");
    assert_eq!(recording.body(), "pulled body");
}

#[tokio::test]
async fn send_body_after_buffered_writes_counts_both() {
    let (mut ctx, recording) = context("GET", "/");
    ctx.write("head:").await.unwrap();
    ctx.send_body(Full::new(Bytes::from_static(b"tail")))
        .await
        .unwrap();
    assert_eq!(recording.headers().unwrap()["content-length"], "9");
    assert_eq!(recording.body(), "head:tail");
    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::OK),
            SinkEvent::Write(5),
            SinkEvent::Write(4),
            SinkEvent::Complete { trailers: false },
        ]
    );
}

#[tokio::test]
async fn send_body_with_a_mismatched_declared_length_fails_the_body() {
    // Shorter than declared: the body ends early, which is an error.
    let (mut ctx, recording) = context("GET", "/");
    ctx.response_mut()
        .headers
        .insert("content-length", HeaderValue::from_static("10"));
    let err = ctx
        .send_body(Full::new(Bytes::from_static(b"hello")))
        .await
        .unwrap_err();
    assert_eq!(err.rule(), Some("response.content-length-mismatch"));
    assert!(!recording
        .events()
        .iter()
        .any(|e| matches!(e, SinkEvent::Complete { .. })));

    // Longer than declared: the oversize frame is refused.
    let (mut ctx, recording) = context("GET", "/");
    ctx.response_mut()
        .headers
        .insert("content-length", HeaderValue::from_static("3"));
    let err = ctx
        .send_body(Full::new(Bytes::from_static(b"hello")))
        .await
        .unwrap_err();
    assert_eq!(err.rule(), Some("response.content-length-mismatch"));
    assert!(recording.body().is_empty(), "no byte past the length");
}

#[tokio::test]
async fn send_body_mismatch_reaches_a_pulling_client_as_an_error() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut()
            .headers
            .insert("content-length", HeaderValue::from_static("10"));
        ctx.send_body(Full::new(Bytes::from_static(b"hello"))).await
    }
    let server = TestServer::new(app);
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-length"], "10");
    let err = response.bytes().await.unwrap_err();
    assert_eq!(err.rule(), Some("response.content-length-mismatch"));
}

#[tokio::test]
async fn send_file_whole_and_ranged() {
    let contents = b"0123456789abcdefghij";
    let file = TempFile::new(contents);

    let (mut ctx, recording) = context("GET", "/");
    ctx.send_file(&file.0, None).await.unwrap();
    assert_eq!(recording.headers().unwrap()["content-length"], "20");
    assert_eq!(recording.body(), &contents[..]);
    assert_eq!(ctx.bytes_written(), 20);
    assert_eq!(
        recording.events().last(),
        Some(&SinkEvent::Complete { trailers: false })
    );

    let (mut ctx, recording) = context("GET", "/");
    ctx.response_mut().status = StatusCode::PARTIAL_CONTENT;
    ctx.send_file(&file.0, Some(4..10)).await.unwrap();
    assert_eq!(recording.status(), Some(StatusCode::PARTIAL_CONTENT));
    assert_eq!(recording.headers().unwrap()["content-length"], "6");
    assert_eq!(recording.body(), "456789");
    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::PARTIAL_CONTENT),
            SinkEvent::Write(6),
            SinkEvent::Complete { trailers: false },
        ]
    );

    // A range past the end of the file is refused before anything is sent.
    let (mut ctx, recording) = context("GET", "/");
    assert!(ctx.send_file(&file.0, Some(10..21)).await.is_err());
    assert!(recording.events().is_empty());
}

#[tokio::test]
async fn send_file_through_the_test_server() {
    let file = TempFile::new(b"file body over the pipe");
    let path = Arc::new(file.0.clone());
    let app = from_fn(move |ctx| {
        let path = path.clone();
        Box::pin(async move { ctx.send_file(&*path, Some(5..9)).await })
    });
    let server = TestServer::new(app);
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.headers()["content-length"], "4");
    assert_eq!(response.text().await.unwrap(), "body");
}

#[tokio::test]
async fn send_file_adds_no_content_length_beside_the_apps_transfer_encoding() {
    // RFC 9112 §6.2: a sender MUST NOT send Content-Length with
    // Transfer-Encoding. `complete` and `send_body` leave such a response
    // unlengthed; so does `send_file`.
    let file = TempFile::new(b"0123456789");
    let (mut ctx, recording) = context("GET", "/");
    ctx.response_mut().headers.insert(
        http::header::TRANSFER_ENCODING,
        http::HeaderValue::from_static("chunked"),
    );
    ctx.send_file(&file.0, None).await.unwrap();
    let headers = recording.headers().unwrap();
    assert!(!headers.contains_key("content-length"), "{headers:?}");
    assert_eq!(recording.body(), "0123456789");
}
