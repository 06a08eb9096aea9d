//! Writing after completion, trailers and reason phrases.

use super::*;

#[tokio::test]
async fn writing_after_complete_is_refused() {
    let (mut ctx, recording) = context("GET", "/");
    ctx.write("done").await.unwrap();
    ctx.complete().await.unwrap();
    assert!(ctx.is_completed());
    let err = ctx.write("more").await.unwrap_err();
    assert_eq!(err.rule(), Some("response.write-after-complete"));
    let err = ctx
        .send_body(Full::new(Bytes::from_static(b"more")))
        .await
        .unwrap_err();
    assert_eq!(err.rule(), Some("response.write-after-complete"));
    // complete is idempotent and nothing more reached the sink.
    ctx.complete().await.unwrap();
    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::OK),
            SinkEvent::Write(4),
            SinkEvent::Complete { trailers: false },
        ]
    );
}

#[tokio::test]
async fn response_trailers_are_passed_to_complete() {
    let (mut features, recording) = RecordingSink::features("GET", "/");
    features.insert(ResponseTrailers::default());
    let mut ctx = HttpContext::new(features);
    ctx.write("body").await.unwrap();
    ctx.features_mut()
        .get_mut::<ResponseTrailers>()
        .unwrap()
        .headers
        .insert("grpc-status", HeaderValue::from_static("0"));
    ctx.complete().await.unwrap();
    assert_eq!(
        recording.events().last(),
        Some(&SinkEvent::Complete { trailers: true })
    );
    let trailers = recording.trailers().unwrap();
    assert_eq!(trailers.len(), 1);
    assert_eq!(trailers["grpc-status"], "0");
}

/// A context with the `ResponseTrailers` feature and one trailer set.
fn context_with_trailer() -> (HttpContext, RecordingSink) {
    let (mut features, recording) = RecordingSink::features("GET", "/");
    let mut trailers = ResponseTrailers::default();
    trailers
        .headers
        .insert("grpc-status", HeaderValue::from_static("0"));
    features.insert(trailers);
    (HttpContext::new(features), recording)
}

#[tokio::test]
async fn response_trailers_follow_a_pulled_body_which_then_gets_no_length() {
    let (mut ctx, recording) = context_with_trailer();
    ctx.send_body(Full::new(Bytes::from_static(b"pulled")))
        .await
        .unwrap();
    assert_eq!(recording.body(), "pulled");
    assert_eq!(
        recording.headers().unwrap().get("content-length"),
        None,
        "trailers need a framing that can carry them"
    );
    assert_eq!(recording.trailers().unwrap()["grpc-status"], "0");
}

#[tokio::test]
async fn the_apps_trailers_join_a_pulled_bodys_own() {
    let (mut ctx, recording) = context_with_trailer();
    let mut own = http::HeaderMap::new();
    own.insert("x-own", HeaderValue::from_static("1"));
    let frames = vec![
        Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from_static(b"data"))),
        Ok(http_body::Frame::trailers(own)),
    ];
    ctx.send_body(http_body_util::StreamBody::new(futures::stream::iter(
        frames,
    )))
    .await
    .unwrap();
    assert_eq!(recording.body(), "data");
    let trailers = recording.trailers().unwrap();
    assert_eq!(trailers["x-own"], "1");
    assert_eq!(trailers["grpc-status"], "0");
}

#[tokio::test]
async fn response_trailers_follow_a_sent_file() {
    let file = TempFile::new(b"0123456789");
    let (mut ctx, recording) = context_with_trailer();
    ctx.send_file(&file.0, Some(2..8)).await.unwrap();
    assert_eq!(recording.body(), "234567");
    assert_eq!(recording.headers().unwrap().get("content-length"), None);
    assert_eq!(recording.trailers().unwrap()["grpc-status"], "0");
    assert_eq!(ctx.bytes_written(), 6);
}

#[tokio::test]
async fn empty_response_trailers_are_not_passed() {
    let (mut features, recording) = RecordingSink::features("GET", "/");
    features.insert(ResponseTrailers::default());
    let mut ctx = HttpContext::new(features);
    ctx.complete().await.unwrap();
    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::OK),
            SinkEvent::Complete { trailers: false },
        ]
    );
    assert_eq!(recording.trailers(), None);
}

#[tokio::test]
async fn custom_reason_phrase_reaches_the_sink() {
    let (mut ctx, recording) = context("GET", "/");
    ctx.response_mut().status = StatusCode::IM_A_TEAPOT;
    ctx.response_mut().reason = Some("Short And Stout".to_owned());
    ctx.complete().await.unwrap();
    assert_eq!(recording.status(), Some(StatusCode::IM_A_TEAPOT));
    assert_eq!(recording.reason().as_deref(), Some("Short And Stout"));

    // The canonical phrase when none is set.
    let (mut ctx, recording) = context("GET", "/");
    ctx.response_mut().status = StatusCode::NOT_FOUND;
    ctx.complete().await.unwrap();
    assert_eq!(recording.reason().as_deref(), Some("Not Found"));

    // The canonical phrase when the custom one could end the status line:
    // every server gets the head's reason from the context.
    let (mut ctx, recording) = context("GET", "/");
    ctx.response_mut().status = StatusCode::NOT_FOUND;
    ctx.response_mut().reason = Some("Gone\r\nSet-Cookie: x=1".to_owned());
    ctx.complete().await.unwrap();
    assert_eq!(recording.reason().as_deref(), Some("Not Found"));
}

#[tokio::test]
async fn custom_reason_phrase_reaches_a_test_server_client() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut().reason = Some("Fine Thanks".to_owned());
        ctx.write("ok").await
    }
    let server = TestServer::new(app);
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.reason(), "Fine Thanks");
}
