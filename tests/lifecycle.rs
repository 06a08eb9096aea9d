//! The request lifecycle as `lifecycle::run_request` drives it, observed by a
//! recording application and a logging response sink.

#![cfg(feature = "test-util")]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, StatusCode};
use serverbridge::feature::{RequestLifetime, ResponseBody, ResponseHead};
use serverbridge::lifecycle::{run_request, RequestOutcome};
use serverbridge::testing::{RecordingSink, SinkEvent};
use serverbridge::{Application, Error, Features, HttpContext, Result};

/// A shared, ordered log.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, entry: impl Into<String>) {
        self.0.lock().unwrap().push(entry.into());
    }

    fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Forwards to a [`RecordingSink`] and logs each call into the app's log, so
/// the sink calls interleave with the app's own entries.
struct LoggingSink {
    inner: RecordingSink,
    log: Log,
}

#[async_trait]
impl ResponseBody for LoggingSink {
    async fn start(&mut self, head: ResponseHead<'_>) -> Result<()> {
        self.log
            .push(format!("sink start {}", head.status.as_u16()));
        self.inner.start(head).await
    }

    async fn write(&mut self, data: Bytes) -> Result<()> {
        self.log.push(format!("sink write {}", data.len()));
        self.inner.write(data).await
    }

    async fn flush(&mut self) -> Result<()> {
        self.log.push("sink flush");
        self.inner.flush().await
    }

    async fn complete(&mut self, trailers: Option<HeaderMap>) -> Result<()> {
        self.log.push("sink complete");
        self.inner.complete(trailers).await
    }

    fn abort(&mut self, reason: &Error) {
        self.log.push("sink abort");
        self.inner.abort(reason);
    }
}

/// What the recording app does in `process_request`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Behaviour {
    /// Registers callbacks, writes "hello", succeeds.
    Succeed,
    /// Sets a header, registers callbacks, fails before anything was sent.
    FailBeforeStart,
    /// Writes and flushes, then fails.
    FailAfterStart,
    /// Panics before anything was sent.
    PanicBeforeStart,
    /// Writes and flushes, then panics.
    PanicAfterStart,
    /// Fails with a 413 limit error before anything was sent.
    LimitBeforeStart,
    /// Registers on_completed callbacks of which some fail or panic.
    FailingCompletedCallbacks,
    /// Registers an on_starting callback that fails.
    FailingStartingCallback,
}

struct RecordingApp {
    log: Log,
    behaviour: Behaviour,
    /// The error `dispose_context` received, as `Display` text.
    disposed_error: Arc<Mutex<Option<String>>>,
    /// Whether `dispose_context` received an application error.
    disposed_is_app: Arc<Mutex<Option<bool>>>,
}

impl RecordingApp {
    fn new(behaviour: Behaviour) -> Self {
        RecordingApp {
            log: Log::default(),
            behaviour,
            disposed_error: Arc::default(),
            disposed_is_app: Arc::default(),
        }
    }

    fn register_callbacks(&self, ctx: &mut HttpContext) -> Result<()> {
        for i in 1..=2 {
            let log = self.log.clone();
            ctx.on_starting(move |ctx| {
                log.push(format!("on_starting {i}"));
                ctx.response_mut()
                    .headers
                    .append("x-starting", i.to_string().parse().unwrap());
                Ok(())
            })?;
        }
        for i in 1..=2 {
            let log = self.log.clone();
            ctx.on_completed(move |_| {
                log.push(format!("on_completed {i}"));
                Ok(())
            });
        }
        Ok(())
    }
}

impl Application for RecordingApp {
    fn create_context(&self, features: Features) -> HttpContext {
        self.log.push("create_context");
        HttpContext::new(features)
    }

    fn process_request<'a>(&'a self, ctx: &'a mut HttpContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.log.push("process_request");
            match self.behaviour {
                Behaviour::Succeed => {
                    ctx.response_mut()
                        .headers
                        .insert("x-app", "1".parse().unwrap());
                    self.register_callbacks(ctx)?;
                    ctx.write("hello").await?;
                    self.log.push("process_request done");
                    Ok(())
                }
                Behaviour::FailBeforeStart => {
                    ctx.response_mut()
                        .headers
                        .insert("x-app", "1".parse().unwrap());
                    ctx.response_mut().status = StatusCode::CREATED;
                    self.register_callbacks(ctx)?;
                    ctx.write("lost").await?;
                    Err(Error::app_msg("failed before start"))
                }
                Behaviour::FailAfterStart => {
                    self.register_callbacks(ctx)?;
                    ctx.write("partial").await?;
                    ctx.flush().await?;
                    Err(Error::app_msg("failed after start"))
                }
                Behaviour::PanicBeforeStart => {
                    self.register_callbacks(ctx)?;
                    panic!("boom before start");
                }
                Behaviour::PanicAfterStart => {
                    ctx.write("partial").await?;
                    ctx.flush().await?;
                    panic!("boom after start");
                }
                Behaviour::LimitBeforeStart => {
                    self.register_callbacks(ctx)?;
                    Err(Error::limit(
                        "request body too large",
                        StatusCode::PAYLOAD_TOO_LARGE,
                    ))
                }
                Behaviour::FailingCompletedCallbacks => {
                    let log = self.log.clone();
                    ctx.on_completed(move |_| {
                        log.push("on_completed 1");
                        Ok(())
                    });
                    ctx.on_completed(|_| Err(Error::app_msg("callback 2 failed")));
                    ctx.on_completed(|_| panic!("callback 3 panicked"));
                    let log = self.log.clone();
                    ctx.on_completed(move |_| {
                        log.push("on_completed 4");
                        Ok(())
                    });
                    ctx.write("ok").await
                }
                Behaviour::FailingStartingCallback => {
                    let log = self.log.clone();
                    ctx.on_starting(move |_| {
                        log.push("on_starting 1");
                        Ok(())
                    })?;
                    ctx.on_starting(|_| Err(Error::app_msg("on_starting 2 failed")))?;
                    let log = self.log.clone();
                    ctx.on_starting(move |_| {
                        log.push("on_starting 3");
                        Ok(())
                    })?;
                    ctx.write("never sent").await
                }
            }
        })
    }

    fn dispose_context(&self, _ctx: &mut HttpContext, error: Option<&Error>) {
        match error {
            Some(err) => {
                self.log.push("dispose_context error");
                *self.disposed_error.lock().unwrap() = Some(err.to_string());
                *self.disposed_is_app.lock().unwrap() = Some(err.is_app());
            }
            None => self.log.push("dispose_context ok"),
        }
    }
}

/// Runs `app` on a GET request whose sink logs into the app's log; the
/// request carries a [`RequestLifetime`], returned too.
async fn run(app: &RecordingApp) -> (RequestOutcome, RecordingSink, RequestLifetime) {
    let (mut features, recording) = RecordingSink::features("GET", "/lifecycle");
    features.insert_dyn::<dyn ResponseBody>(Box::new(LoggingSink {
        inner: recording.clone(),
        log: app.log.clone(),
    }));
    let lifetime = RequestLifetime::new();
    features.insert(lifetime.clone());
    let outcome = run_request(app, features).await;
    (outcome, recording, lifetime)
}

#[tokio::test]
async fn successful_request_runs_every_step_in_order() {
    let app = RecordingApp::new(Behaviour::Succeed);
    let (outcome, recording, lifetime) = run(&app).await;

    assert_eq!(
        app.log.entries(),
        [
            "create_context",
            "process_request",
            "process_request done",
            "on_starting 2",
            "on_starting 1",
            "sink start 200",
            "sink write 5",
            "sink complete",
            "on_completed 2",
            "on_completed 1",
            "dispose_context ok",
        ]
    );
    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::OK),
            SinkEvent::Write(5),
            SinkEvent::Complete { trailers: false },
        ]
    );
    let headers = recording.headers().unwrap();
    assert_eq!(headers["x-app"], "1");
    assert_eq!(headers["content-length"], "5");
    let starting: Vec<_> = headers.get_all("x-starting").iter().collect();
    assert_eq!(
        starting,
        ["2", "1"],
        "on_starting runs last-registered first"
    );
    assert_eq!(recording.body(), "hello");
    assert!(outcome.error.is_none());
    assert!(outcome.completed);
    assert!(!lifetime.is_cancelled());
}

#[tokio::test]
async fn error_before_start_sends_a_bare_500() {
    let app = RecordingApp::new(Behaviour::FailBeforeStart);
    let (outcome, recording, lifetime) = run(&app).await;

    assert_eq!(recording.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    let headers = recording.headers().unwrap();
    assert_eq!(headers.len(), 1, "only Content-Length: {headers:?}");
    assert_eq!(headers["content-length"], "0");
    assert!(recording.body().is_empty(), "the buffered body is dropped");
    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::INTERNAL_SERVER_ERROR),
            SinkEvent::Complete { trailers: false },
        ]
    );
    let log = app.log.entries();
    assert!(
        !log.iter().any(|e| e.starts_with("on_starting")),
        "on_starting callbacks must not run for the error response: {log:?}"
    );
    assert_eq!(
        log,
        [
            "create_context",
            "process_request",
            "sink start 500",
            "sink complete",
            "on_completed 2",
            "on_completed 1",
            "dispose_context error",
        ]
    );
    assert_eq!(*app.disposed_is_app.lock().unwrap(), Some(true));
    assert_eq!(
        app.disposed_error.lock().unwrap().as_deref(),
        Some("application error: failed before start")
    );
    let error = outcome.error.unwrap();
    assert!(error.is_app());
    assert!(outcome.completed, "a complete error response went out");
    assert!(!lifetime.is_cancelled());
}

#[tokio::test]
async fn error_after_start_aborts_and_never_completes() {
    let app = RecordingApp::new(Behaviour::FailAfterStart);
    let (outcome, recording, lifetime) = run(&app).await;

    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::OK),
            SinkEvent::Write(7),
            SinkEvent::Flush,
            SinkEvent::Abort,
        ]
    );
    assert_eq!(recording.body(), "partial");
    assert!(
        !recording.headers().unwrap().contains_key("content-length"),
        "a flushed response has no Content-Length"
    );
    assert!(lifetime.is_cancelled(), "RequestLifetime fires on abort");
    assert_eq!(
        app.log.entries(),
        [
            "create_context",
            "process_request",
            "on_starting 2",
            "on_starting 1",
            "sink start 200",
            "sink write 7",
            "sink flush",
            "sink abort",
            "on_completed 2",
            "on_completed 1",
            "dispose_context error",
        ]
    );
    assert_eq!(*app.disposed_is_app.lock().unwrap(), Some(true));
    assert_eq!(
        app.disposed_error.lock().unwrap().as_deref(),
        Some("application error: failed after start")
    );
    assert!(outcome.error.unwrap().is_app());
    assert!(!outcome.completed);
}

#[tokio::test]
async fn panic_before_start_is_a_500_and_an_app_error() {
    let app = RecordingApp::new(Behaviour::PanicBeforeStart);
    let (outcome, recording, _lifetime) = run(&app).await;

    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::INTERNAL_SERVER_ERROR),
            SinkEvent::Complete { trailers: false },
        ]
    );
    assert_eq!(recording.headers().unwrap()["content-length"], "0");
    assert_eq!(*app.disposed_is_app.lock().unwrap(), Some(true));
    assert_eq!(
        app.disposed_error.lock().unwrap().as_deref(),
        Some("application error: the application panicked: boom before start")
    );
    let log = app.log.entries();
    assert!(!log.iter().any(|e| e.starts_with("on_starting")), "{log:?}");
    assert_eq!(
        log.last().map(String::as_str),
        Some("dispose_context error")
    );
    assert!(outcome.error.unwrap().is_app());
}

#[tokio::test]
async fn panic_after_start_aborts() {
    let app = RecordingApp::new(Behaviour::PanicAfterStart);
    let (outcome, recording, lifetime) = run(&app).await;

    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::OK),
            SinkEvent::Write(7),
            SinkEvent::Flush,
            SinkEvent::Abort,
        ]
    );
    assert!(lifetime.is_cancelled());
    assert_eq!(
        app.disposed_error.lock().unwrap().as_deref(),
        Some("application error: the application panicked: boom after start")
    );
    assert!(!outcome.completed);
}

#[tokio::test]
async fn error_with_a_status_before_start_sends_that_status() {
    let app = RecordingApp::new(Behaviour::LimitBeforeStart);
    let (outcome, recording, _lifetime) = run(&app).await;

    assert_eq!(recording.status(), Some(StatusCode::PAYLOAD_TOO_LARGE));
    assert_eq!(recording.reason().as_deref(), Some("Payload Too Large"));
    let headers = recording.headers().unwrap();
    assert_eq!(headers.len(), 1, "{headers:?}");
    assert_eq!(headers["content-length"], "0");
    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::PAYLOAD_TOO_LARGE),
            SinkEvent::Complete { trailers: false },
        ]
    );
    assert_eq!(*app.disposed_is_app.lock().unwrap(), Some(false));
    assert_eq!(
        app.disposed_error.lock().unwrap().as_deref(),
        Some("limit exceeded: request body too large")
    );
    let error = outcome.error.unwrap();
    assert!(error.is_limit());
    assert_eq!(error.status(), Some(StatusCode::PAYLOAD_TOO_LARGE));
}

#[tokio::test]
async fn a_failing_on_completed_callback_does_not_stop_the_others() {
    let app = RecordingApp::new(Behaviour::FailingCompletedCallbacks);
    let (outcome, recording, _lifetime) = run(&app).await;

    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::OK),
            SinkEvent::Write(2),
            SinkEvent::Complete { trailers: false },
        ]
    );
    assert_eq!(
        app.log.entries(),
        [
            "create_context",
            "process_request",
            "sink start 200",
            "sink write 2",
            "sink complete",
            "on_completed 4",
            "on_completed 1",
            "dispose_context ok",
        ]
    );
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert!(outcome.completed);
}

#[tokio::test]
async fn a_failing_on_starting_callback_turns_into_a_500() {
    let app = RecordingApp::new(Behaviour::FailingStartingCallback);
    let (outcome, recording, _lifetime) = run(&app).await;

    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::INTERNAL_SERVER_ERROR),
            SinkEvent::Complete { trailers: false },
        ]
    );
    assert_eq!(recording.headers().unwrap()["content-length"], "0");
    assert!(recording.body().is_empty());
    assert_eq!(
        app.log.entries(),
        [
            "create_context",
            "process_request",
            "on_starting 3",
            "on_starting 1",
            "sink start 500",
            "sink complete",
            "dispose_context error",
        ]
    );
    assert_eq!(
        app.disposed_error.lock().unwrap().as_deref(),
        Some("application error: on_starting 2 failed")
    );
    assert!(outcome.error.unwrap().is_app());
}

#[tokio::test]
async fn an_app_that_aborts_and_returns_ok_is_not_completed() {
    async fn aborts(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("partial").await?;
        ctx.flush().await?;
        ctx.abort();
        Ok(())
    }

    let (mut features, recording) = RecordingSink::features("GET", "/");
    let lifetime = RequestLifetime::new();
    features.insert(lifetime.clone());
    let outcome = run_request(&aborts, features).await;

    assert_eq!(
        recording.events(),
        [
            SinkEvent::Start(StatusCode::OK),
            SinkEvent::Write(7),
            SinkEvent::Flush,
            SinkEvent::Abort,
        ]
    );
    assert!(lifetime.is_cancelled());
    assert!(
        !outcome.completed,
        "an aborted response must not be reported as completed"
    );
}

#[tokio::test]
async fn on_completed_callbacks_see_the_final_context() {
    // A callback registered by the app reads what went out.
    let seen: Arc<Mutex<Option<(u16, u64, bool)>>> = Arc::default();
    let store = seen.clone();
    let app = serverbridge::application::from_fn(move |ctx| {
        let store = store.clone();
        Box::pin(async move {
            ctx.on_completed(move |ctx| {
                *store.lock().unwrap() = Some((
                    ctx.response().status.as_u16(),
                    ctx.bytes_written(),
                    ctx.response().has_started(),
                ));
                Ok(())
            });
            ctx.response_mut().status = StatusCode::ACCEPTED;
            ctx.write("12345678").await
        })
    });
    let (features, recording) = RecordingSink::features("GET", "/");
    let outcome = run_request(&app, features).await;
    assert!(outcome.completed);
    assert_eq!(recording.status(), Some(StatusCode::ACCEPTED));
    assert_eq!(*seen.lock().unwrap(), Some((202, 8, true)));
}

#[tokio::test]
async fn abort_without_a_request_lifetime_is_still_an_abort() {
    async fn aborts(ctx: &mut HttpContext) -> Result<()> {
        assert!(ctx.lifetime().is_none());
        ctx.abort();
        assert!(ctx.is_aborted());
        assert!(ctx.is_completed());
        Ok(())
    }
    // RecordingSink::features has no RequestLifetime.
    let (features, recording) = RecordingSink::features("GET", "/");
    let outcome = run_request(&aborts, features).await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(recording.events(), [SinkEvent::Abort]);
    assert!(!outcome.completed);
}

/// An application whose `create_context` or `process_request` panics before
/// any future exists.
struct PanicsEarly {
    in_create: bool,
    disposed: Log,
}

impl Application for PanicsEarly {
    fn create_context(&self, features: Features) -> HttpContext {
        if self.in_create {
            panic!("no context today");
        }
        HttpContext::new(features)
    }

    fn process_request<'a>(&'a self, _: &'a mut HttpContext) -> BoxFuture<'a, Result<()>> {
        panic!("no future today");
    }

    fn dispose_context(&self, _: &mut HttpContext, error: Option<&Error>) {
        self.disposed.push(format!("disposed {}", error.is_some()));
    }
}

#[tokio::test]
async fn a_panic_in_create_context_is_an_app_error_and_no_response() {
    let app = PanicsEarly {
        in_create: true,
        disposed: Log::default(),
    };
    let (features, recording) = RecordingSink::features("GET", "/");
    let outcome = run_request(&app, features).await;
    let err = outcome.error.expect("the panic is the request's error");
    assert!(err.is_app(), "{err}");
    assert!(err.to_string().contains("no context today"), "{err}");
    // The features went down with the panic: no sink to answer through,
    // so nothing is sent and the server closes the connection.
    assert!(!outcome.completed);
    assert!(recording.events().is_empty(), "{:?}", recording.events());
    assert!(app.disposed.entries().is_empty());
}

#[tokio::test]
async fn a_panic_before_process_request_returns_its_future_is_a_500() {
    let app = PanicsEarly {
        in_create: false,
        disposed: Log::default(),
    };
    let (features, recording) = RecordingSink::features("GET", "/");
    let outcome = run_request(&app, features).await;
    let err = outcome.error.expect("the panic is the request's error");
    assert!(err.to_string().contains("no future today"), "{err}");
    assert!(outcome.completed, "a bare 500 went out");
    assert_eq!(recording.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert_eq!(app.disposed.entries(), ["disposed true"]);
}

#[tokio::test]
async fn an_on_completed_callback_may_register_another() {
    let log = Log::default();
    let seen = log.clone();
    let app = serverbridge::application::from_fn(move |ctx| {
        let log = seen.clone();
        Box::pin(async move {
            ctx.on_completed(move |ctx| {
                log.push("outer");
                let inner = log.clone();
                ctx.on_completed(move |_| {
                    inner.push("inner");
                    Ok(())
                });
                Ok(())
            });
            ctx.write("ok").await
        })
    });
    let (features, _recording) = RecordingSink::features("GET", "/");
    let outcome = run_request(&app, features).await;
    assert!(outcome.completed);
    assert_eq!(log.entries(), ["outer", "inner"]);
}
