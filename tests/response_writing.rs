//! Writing responses through `HttpContext`: buffering, Content-Length, HEAD,
//! body rules, `send_body`, `send_file`, trailers.

#![cfg(feature = "test-util")]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::Full;
use serverbridge::application::from_fn;
use serverbridge::feature::{RequestLifetime, ResponseTrailers};
use serverbridge::lifecycle::{run_request, RequestOutcome};
use serverbridge::testing::{RecordingSink, SinkEvent, TestServer};
use serverbridge::{Application, HttpContext, Result, DEFAULT_RESPONSE_BUFFER};

/// A context for `method target` writing into a fresh recording sink.
fn context(method: &str, target: &str) -> (HttpContext, RecordingSink) {
    let (features, recording) = RecordingSink::features(method, target);
    (HttpContext::new(features), recording)
}

/// Runs `app` through the full lifecycle on a recording sink.
async fn run(method: &str, app: impl Application) -> (RequestOutcome, RecordingSink) {
    let (mut features, recording) = RecordingSink::features(method, "/");
    features.insert(RequestLifetime::new());
    let outcome = run_request(&app, features).await;
    (outcome, recording)
}

fn count_starts(events: &[SinkEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, SinkEvent::Start(_)))
        .count()
}

/// A file under the temp dir with a unique name, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(contents: &[u8]) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "serverbridge-response-writing-{}-{}.bin",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

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

#[tokio::test]
async fn on_starting_can_change_headers_before_content_length_is_final() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        ctx.on_starting(|ctx| {
            ctx.response_mut()
                .headers
                .insert("x-late", HeaderValue::from_static("yes"));
            Ok(())
        })?;
        ctx.write("abcd").await
    }
    let (_, recording) = run("GET", app).await;
    let headers = recording.headers().unwrap();
    assert_eq!(headers["x-late"], "yes");
    assert_eq!(headers["content-length"], "4");
}

#[tokio::test]
async fn on_starting_registered_after_start_is_refused() {
    let seen: Arc<Mutex<Option<&'static str>>> = Arc::default();
    let store = seen.clone();
    let app = from_fn(move |ctx| {
        let store = store.clone();
        Box::pin(async move {
            ctx.flush().await?;
            let err = ctx.on_starting(|_| Ok(())).unwrap_err();
            *store.lock().unwrap() = err.rule();
            Ok(())
        })
    });
    let (outcome, _) = run("GET", app).await;
    assert!(outcome.completed);
    assert_eq!(*seen.lock().unwrap(), Some("response.callback-after-start"));
}

#[tokio::test]
async fn an_invalid_declared_content_length_is_refused() {
    let (mut ctx, _recording) = context("GET", "/");
    ctx.response_mut()
        .headers
        .insert("content-length", HeaderValue::from_static("ten"));
    let err = ctx.write("x").await.unwrap_err();
    assert_eq!(err.rule(), Some("response.content-length-invalid"));
}

/// The length rules read the fields one way for a few headers and another
/// for many: both must agree.
#[tokio::test]
async fn length_rules_hold_with_few_and_many_headers() {
    for extra in [0usize, 20] {
        let add = |ctx: &mut serverbridge::HttpContext| {
            for i in 0..extra {
                let name = http::header::HeaderName::from_bytes(format!("x-extra-{i}").as_bytes())
                    .unwrap();
                ctx.response_mut()
                    .headers
                    .insert(name, HeaderValue::from_static("1"));
            }
        };
        // Two Content-Length values: invalid.
        let (mut ctx, _) = context("GET", "/");
        add(&mut ctx);
        let headers = &mut ctx.response_mut().headers;
        headers.append("content-length", HeaderValue::from_static("1"));
        headers.append("content-length", HeaderValue::from_static("1"));
        let err = ctx.write("x").await.unwrap_err();
        assert_eq!(
            err.rule(),
            Some("response.content-length-invalid"),
            "{extra}"
        );

        // A declared length the body exceeds.
        let (mut ctx, _) = context("GET", "/");
        add(&mut ctx);
        ctx.response_mut()
            .headers
            .insert("content-length", HeaderValue::from_static("2"));
        let err = ctx.write("abc").await.unwrap_err();
        assert_eq!(
            err.rule(),
            Some("response.content-length-mismatch"),
            "{extra}"
        );

        // Transfer-Encoding set by the app: no length added.
        let (mut ctx, recording) = context("GET", "/");
        add(&mut ctx);
        ctx.response_mut()
            .headers
            .insert("transfer-encoding", HeaderValue::from_static("chunked"));
        ctx.write("abc").await.unwrap();
        ctx.complete().await.unwrap();
        let headers = recording.headers().unwrap();
        assert!(!headers.contains_key("content-length"), "{extra}");

        // Nothing declared: the buffered body's length.
        let (mut ctx, recording) = context("GET", "/");
        add(&mut ctx);
        ctx.write("abcd").await.unwrap();
        ctx.complete().await.unwrap();
        assert_eq!(
            recording.headers().unwrap()["content-length"],
            "4",
            "{extra}"
        );
    }
}

#[tokio::test]
async fn a_buffered_response_with_trailers_gets_no_content_length() {
    let (mut features, recording) = RecordingSink::features("GET", "/");
    features.insert(ResponseTrailers::default());
    let mut ctx = HttpContext::new(features);
    ctx.features_mut()
        .get_mut::<ResponseTrailers>()
        .unwrap()
        .headers
        .insert("x-checksum", HeaderValue::from_static("abc"));
    ctx.write("body").await.unwrap();
    ctx.complete().await.unwrap();
    let headers = recording.headers().unwrap();
    assert!(
        !headers.contains_key("content-length"),
        "trailers need a framing that carries them: {headers:?}"
    );
    assert_eq!(recording.body(), "body");
    assert_eq!(recording.trailers().unwrap()["x-checksum"], "abc");
}

#[tokio::test]
async fn send_file_with_a_mismatched_declared_length_fails_before_the_head() {
    let file = TempFile::new(b"0123456789");
    let path = file.0.clone();
    let (outcome, recording) = run(
        "GET",
        from_fn(move |ctx| {
            let path = path.clone();
            Box::pin(async move {
                ctx.response_mut()
                    .headers
                    .insert("content-length", HeaderValue::from_static("4"));
                ctx.send_file(&*path, None).await
            })
        }),
    )
    .await;
    assert_eq!(
        outcome.error.unwrap().rule(),
        Some("response.content-length-mismatch")
    );
    assert_eq!(recording.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert_eq!(recording.headers().unwrap()["content-length"], "0");
    assert!(!recording.events().contains(&SinkEvent::Abort));
}

#[tokio::test]
async fn send_file_of_nothing_on_a_204_adds_no_content_length() {
    let file = TempFile::new(b"");
    let (mut ctx, recording) = context("GET", "/");
    ctx.response_mut().status = StatusCode::NO_CONTENT;
    ctx.send_file(&file.0, None).await.unwrap();
    assert_eq!(recording.status(), Some(StatusCode::NO_CONTENT));
    assert!(!recording.headers().unwrap().contains_key("content-length"));
}

#[tokio::test]
async fn a_callback_that_makes_the_response_204_leaves_no_content_length() {
    // The context sets the length of a buffered (here empty) response before
    // the on_starting callbacks run; one that changes the status to one
    // without a body must not leave that length behind (RFC 9110 §8.6).
    let (mut ctx, recording) = context("GET", "/");
    ctx.on_starting(|ctx| {
        ctx.response_mut().status = StatusCode::NO_CONTENT;
        Ok(())
    })
    .unwrap();
    ctx.complete().await.unwrap();
    assert_eq!(recording.status(), Some(StatusCode::NO_CONTENT));
    assert_eq!(recording.headers().unwrap().get("content-length"), None);
}

// ------------------------------------------ failures the app does not return

/// Sends two pipelined requests on one in-memory connection to the built-in
/// engine and reads what comes back until the server closes or goes quiet.
async fn two_requests(app: impl Application) -> String {
    use serverbridge::testing::Mode;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::new(app).with_mode(Mode::Wire);
    let mut io = server.raw().unwrap();
    io.write_all(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(std::time::Duration::from_secs(2), io.read(&mut buf));
        match read.await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_send_body_that_failed_breaks_the_response_even_when_the_app_carries_on() {
    async fn short_then_ok(ctx: &mut HttpContext) -> Result<()> {
        if ctx.request().path == "/second" {
            return ctx.write("SECOND").await;
        }
        ctx.response_mut()
            .headers
            .insert("content-length", HeaderValue::from_static("10"));
        let sent = ctx.send_body(Full::new(Bytes::from_static(b"12345"))).await;
        assert!(sent.is_err());
        Ok(()) // "the head is out: log it and move on"
    }
    async fn stream_fails_then_ok(ctx: &mut HttpContext) -> Result<()> {
        if ctx.request().path == "/second" {
            return ctx.write("SECOND").await;
        }
        let frames: Vec<std::result::Result<http_body::Frame<Bytes>, std::io::Error>> = vec![
            Ok(http_body::Frame::data(Bytes::from_static(b"abc"))),
            Err(std::io::Error::other("upstream failed")),
        ];
        let body = http_body_util::StreamBody::new(futures::stream::iter(frames));
        assert!(ctx.send_body(body).await.is_err());
        Ok(())
    }
    // The client must see the first response cut off and the connection
    // closed: never the next response's bytes as the rest of this body.
    // (What of it was still buffered may not go out at all.)
    let text = two_requests(short_then_ok).await;
    assert!(!text.contains("SECOND"), "{text:?}");
    assert!(
        text.is_empty() || text.ends_with("\r\n\r\n12345"),
        "{text:?}"
    );
    let text = two_requests(stream_fails_then_ok).await;
    assert!(!text.contains("SECOND"), "{text:?}");
    assert!(!text.contains("0\r\n\r\n"), "no last chunk: {text:?}");
}

#[tokio::test]
async fn send_body_and_send_file_run_on_starting_before_they_size_the_response() {
    use serverbridge::testing::Mode;
    fn not_modified(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut().status = StatusCode::NOT_MODIFIED;
        Ok(())
    }
    async fn body_then_304(ctx: &mut HttpContext) -> Result<()> {
        ctx.on_starting(not_modified)?;
        ctx.send_body(Full::new(Bytes::from_static(b"full body")))
            .await
    }
    async fn empty_body_then_304(ctx: &mut HttpContext) -> Result<()> {
        ctx.on_starting(not_modified)?;
        ctx.send_body(http_body_util::Empty::<Bytes>::new()).await
    }
    async fn big_write_then_204(ctx: &mut HttpContext) -> Result<()> {
        ctx.on_starting(|ctx| {
            ctx.response_mut().status = StatusCode::NO_CONTENT;
            Ok(())
        })?;
        ctx.set_response_buffer_limit(0);
        ctx.write("body for a 204").await
    }
    for mode in [Mode::Direct, Mode::Wire] {
        // A body the callbacks made illegal is the app's error before the
        // head: a bare 500, as `write` gives.
        for app in [
            TestServer::new(body_then_304).with_mode(mode),
            TestServer::new(big_write_then_204).with_mode(mode),
        ] {
            let response = app.get("/").send().await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::INTERNAL_SERVER_ERROR,
                "{mode:?}"
            );
        }
        let response = TestServer::new(empty_body_then_304)
            .with_mode(mode)
            .get("/")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{mode:?}");
        assert!(
            !response.headers().contains_key("content-length"),
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn a_failed_on_starting_callback_refuses_the_head_for_good() {
    async fn carries_on(ctx: &mut HttpContext) -> Result<()> {
        ctx.on_starting(|_| Err(serverbridge::Error::app_msg("not allowed to start")))?;
        assert!(ctx.flush().await.is_err());
        // The app ignores that and tries again: still refused.
        assert!(ctx.write("secret").await.is_ok(), "buffered, nothing sent");
        assert!(ctx.flush().await.is_err());
        Ok(())
    }
    let response = TestServer::new(carries_on).get("/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.bytes().await.unwrap(), "");
}

#[tokio::test]
async fn send_file_of_a_directory_fails_before_the_head() {
    async fn dir(ctx: &mut HttpContext) -> Result<()> {
        ctx.send_file(std::env::temp_dir(), None).await
    }
    let response = TestServer::new(dir).get("/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}
