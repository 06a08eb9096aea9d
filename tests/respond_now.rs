//! `ResponseBody::respond_now`: a response completed before it started, with
//! at most one buffered chunk and no trailers, reaches a sink that takes whole
//! responses in one call; everything else keeps the `start`, `write`,
//! `complete` order.

#![cfg(feature = "test-util")]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use serverbridge::feature::{RequestLifetime, ResponseBody, ResponseHead, ResponseTrailers};
use serverbridge::lifecycle::{run_request, RequestOutcome};
use serverbridge::testing::{RecordingSink, SinkEvent};
use serverbridge::{Application, Error, HttpContext, Result};

/// Runs `app` on a recording sink that takes whole responses.
async fn run(method: &str, app: impl Application) -> (RequestOutcome, RecordingSink) {
    let (mut features, recording) = RecordingSink::features(method, "/");
    recording.take_whole_responses();
    features.insert(RequestLifetime::new());
    features.insert(ResponseTrailers::default());
    let outcome = run_request(&app, features).await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    (outcome, recording)
}

#[tokio::test]
async fn one_buffered_write_goes_out_in_one_call_with_its_length() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut().status = StatusCode::CREATED;
        ctx.response_mut()
            .headers
            .insert("content-type", HeaderValue::from_static("text/plain"));
        ctx.write("hello").await
    }
    let (outcome, recording) = run("GET", app).await;
    assert!(outcome.completed);
    assert_eq!(
        recording.events(),
        [SinkEvent::Respond(StatusCode::CREATED, 5)]
    );
    let headers = recording.headers().unwrap();
    assert_eq!(headers["content-length"], "5");
    assert_eq!(headers["content-type"], "text/plain");
    assert_eq!(recording.body(), "hello");
}

#[tokio::test]
async fn a_response_without_a_body_goes_out_in_one_call() {
    async fn empty(_: &mut HttpContext) -> Result<()> {
        Ok(())
    }
    async fn no_content(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut().status = StatusCode::NO_CONTENT;
        Ok(())
    }
    let (_, recording) = run("GET", empty).await;
    assert_eq!(recording.events(), [SinkEvent::Respond(StatusCode::OK, 0)]);
    assert_eq!(recording.headers().unwrap()["content-length"], "0");
    let (_, recording) = run("GET", no_content).await;
    assert_eq!(
        recording.events(),
        [SinkEvent::Respond(StatusCode::NO_CONTENT, 0)]
    );
    assert!(!recording.headers().unwrap().contains_key("content-length"));
}

#[tokio::test]
async fn head_goes_out_in_one_call_with_the_get_length_and_no_body() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("hello").await
    }
    let (_, recording) = run("HEAD", app).await;
    assert_eq!(recording.events(), [SinkEvent::Respond(StatusCode::OK, 0)]);
    assert_eq!(recording.headers().unwrap()["content-length"], "5");
    assert!(recording.body().is_empty());
}

#[tokio::test]
async fn two_buffered_writes_keep_the_ordinary_calls() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("hello").await?;
        ctx.write(" world").await
    }
    let (_, recording) = run("GET", app).await;
    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::OK),
            SinkEvent::Write(5),
            SinkEvent::Write(6),
            SinkEvent::Complete { trailers: false },
        ]
    );
    assert_eq!(recording.headers().unwrap()["content-length"], "11");
}

#[tokio::test]
async fn a_flushed_response_is_not_whole() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("hello").await?;
        ctx.flush().await
    }
    let (_, recording) = run("GET", app).await;
    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::OK),
            SinkEvent::Write(5),
            SinkEvent::Flush,
            SinkEvent::Complete { trailers: false },
        ]
    );
}

fn add_trailer(ctx: &mut HttpContext) {
    ctx.features_mut()
        .get_mut::<ResponseTrailers>()
        .expect("the trailers feature")
        .headers
        .insert("x-checksum", HeaderValue::from_static("42"));
}

#[tokio::test]
async fn trailers_keep_the_ordinary_calls_and_reach_complete() {
    async fn set_before(ctx: &mut HttpContext) -> Result<()> {
        add_trailer(ctx);
        ctx.write("hello").await
    }
    async fn set_by_on_starting(ctx: &mut HttpContext) -> Result<()> {
        ctx.on_starting(|ctx| {
            add_trailer(ctx);
            Ok(())
        })?;
        ctx.write("hello").await
    }
    assert_trailers_went_to_complete(run("GET", set_before).await.1);
    assert_trailers_went_to_complete(run("GET", set_by_on_starting).await.1);
}

fn assert_trailers_went_to_complete(recording: RecordingSink) {
    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::OK),
            SinkEvent::Write(5),
            SinkEvent::Complete { trailers: true },
        ]
    );
    assert_eq!(recording.trailers().unwrap()["x-checksum"], "42");
}

#[tokio::test]
async fn the_whole_response_carries_what_on_starting_set() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("abcd").await?;
        ctx.on_starting(|ctx| {
            let response = ctx.response_mut();
            response.status = StatusCode::ACCEPTED;
            response.reason = Some("Queued".to_owned());
            Ok(())
        })
    }
    let (_, recording) = run("GET", app).await;
    assert_eq!(
        recording.events(),
        [SinkEvent::Respond(StatusCode::ACCEPTED, 4)]
    );
    assert_eq!(recording.reason().as_deref(), Some("Queued"));
    assert_eq!(recording.headers().unwrap()["content-length"], "4");
}

/// A sink whose `respond_now` fails as a gone client would; records the
/// statuses `start` is called with afterwards.
#[derive(Clone, Default)]
struct Refusing {
    started: Arc<Mutex<Vec<StatusCode>>>,
}

#[async_trait]
impl ResponseBody for Refusing {
    fn respond_now(&mut self, _: ResponseHead<'_>, _: &mut Option<Bytes>) -> Option<Result<()>> {
        Some(Err(Error::closed("the client went away")))
    }
    async fn start(&mut self, head: ResponseHead<'_>) -> Result<()> {
        self.started.lock().unwrap().push(head.status);
        Ok(())
    }
    async fn write(&mut self, _: Bytes) -> Result<()> {
        Ok(())
    }
    async fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    async fn complete(&mut self, _: Option<HeaderMap>) -> Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_failed_respond_now_fails_the_request_like_a_failed_start() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("hello").await
    }
    let (mut features, _) = RecordingSink::features("GET", "/");
    let sink = Refusing::default();
    features.insert_dyn::<dyn ResponseBody>(Box::new(sink.clone()));
    features.insert(RequestLifetime::new());
    let outcome = run_request(&app, features).await;
    assert!(outcome.error.as_ref().is_some_and(Error::is_closed));
    // Nothing went out, so the lifecycle's error response did, through the
    // ordinary calls.
    assert_eq!(
        *sink.started.lock().unwrap(),
        [StatusCode::INTERNAL_SERVER_ERROR]
    );
}
