//! `Lint` against SPEC.md §7: one test per rule id, each provoking exactly that
//! violation, plus the modes and the Builder middleware.
//!
//! Server-side rules need a broken "server": the tests build the features by
//! hand (from `RecordingSink::features`), break them, and drive the app with
//! `lifecycle::run_request`, as a server would.

#![cfg(feature = "test-util")]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderValue, Method, StatusCode, Version};
use serverbridge::application::from_fn;
use serverbridge::feature::{
    MaxRequestBodySize, OnUpgrade, RequestFeature, RequestId, ResponseBody, ResponseFeature,
    Upgrade, Upgraded,
};
use serverbridge::lifecycle::{run_request, RequestOutcome};
use serverbridge::lint::{Lint, LintMode, LintReport, Side, RULES};
use serverbridge::owin::{app_func, keys, Environment, OwinApp, Value};
use serverbridge::testing::{RecordingSink, SinkEvent, TestServer};
use serverbridge::{Application, Builder, Error, Features, HttpContext, Result};

// ---------------------------------------------------------------------------
// helpers

/// Features a well-behaved HTTP/1.1 server would build: request, fresh
/// response, sink, and a Host header.
fn good(method: &str, target: &str) -> (Features, RecordingSink) {
    let (mut features, recording) = RecordingSink::features(method, target);
    request(&mut features)
        .headers
        .insert(HOST, HeaderValue::from_static("example.com"));
    (features, recording)
}

fn request(features: &mut Features) -> &mut RequestFeature {
    features
        .get_mut::<RequestFeature>()
        .expect("RequestFeature")
}

fn response(features: &mut Features) -> &mut ResponseFeature {
    features
        .get_mut::<ResponseFeature>()
        .expect("ResponseFeature")
}

/// Runs `app` under a recording Lint on hand-built features.
async fn lint_run<A: Application>(app: A, features: Features) -> (LintReport, RequestOutcome) {
    let lint = Lint::new(app);
    let report = lint.report();
    let outcome = run_request(&lint, features).await;
    (report, outcome)
}

/// Runs `app` under a recording Lint on a clean `GET /`.
async fn lint_get<A: Application>(app: A) -> (LintReport, RequestOutcome, RecordingSink) {
    lint_method(app, "GET").await
}

async fn lint_method<A: Application>(
    app: A,
    method: &str,
) -> (LintReport, RequestOutcome, RecordingSink) {
    let (features, recording) = good(method, "/");
    let (report, outcome) = lint_run(app, features).await;
    (report, outcome, recording)
}

#[track_caller]
fn assert_only(report: &LintReport, rule: &str) {
    assert!(
        RULES.iter().any(|r| r.id == rule),
        "{rule} is not a rule id"
    );
    assert_eq!(
        report.rule_ids(),
        vec![rule],
        "violations: {:#?}",
        report.violations()
    );
}

#[track_caller]
fn assert_rule_error(outcome: &RequestOutcome, rule: &str) {
    let err = outcome.error.as_ref().expect("the request failed");
    assert!(err.is_contract(), "{err:?}");
    assert_eq!(err.rule(), Some(rule), "{err:?}");
}

async fn noop(_: &mut HttpContext) -> Result<()> {
    Ok(())
}

async fn hello(ctx: &mut HttpContext) -> Result<()> {
    ctx.write("hello").await
}

/// Server-side violation: `break_it` mutates the otherwise good features of
/// `GET /`; the app does nothing.
async fn server_violation(break_it: impl FnOnce(&mut Features)) -> (LintReport, RequestOutcome) {
    let (mut features, _) = good("GET", "/");
    break_it(&mut features);
    lint_run(noop, features).await
}

fn side(rule: &str) -> Side {
    RULES.iter().find(|r| r.id == rule).expect("a rule").side
}

// ---------------------------------------------------------------------------
// the baseline

#[tokio::test]
async fn a_clean_app_on_test_server_is_clean() {
    async fn tidy(ctx: &mut HttpContext) -> Result<()> {
        let body = ctx.read_body(1024).await?;
        ctx.response_mut().status = StatusCode::CREATED;
        ctx.response_mut().reason = Some("Made\tIt".into());
        ctx.response_mut()
            .headers
            .insert("content-type", HeaderValue::from_static("text/plain"));
        ctx.on_starting(|ctx| {
            ctx.response_mut()
                .headers
                .insert("x-started", HeaderValue::from_static("1"));
            Ok(())
        })?;
        if ctx.request().method == Method::HEAD {
            return Ok(());
        }
        ctx.write(body).await?;
        ctx.flush().await?;
        ctx.write(" and more").await
    }
    let lint = Lint::new(tidy);
    let report = lint.report();
    let server = TestServer::new(lint);
    let response = server.post("/a/b?c=d").body("posted").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.text().await.unwrap(), "posted and more");
    for method in [Method::GET, Method::HEAD] {
        let response = server.request(method, "/").send().await.unwrap();
        response.bytes().await.unwrap();
    }
    assert!(report.is_clean(), "{:#?}", report.violations());
}

#[tokio::test]
async fn special_request_forms_are_clean() {
    // The asterisk form, the authority form, HTTP/1.0 without Host, and an
    // empty path under a path base are all allowed.
    let cases: Vec<Box<dyn FnOnce() -> Features>> = vec![
        Box::new(|| good("OPTIONS", "*").0),
        Box::new(|| good("CONNECT", "example.com:443").0),
        Box::new(|| {
            let (mut f, _) = RecordingSink::features("GET", "/");
            request(&mut f).version = Version::HTTP_10;
            f
        }),
        Box::new(|| {
            let (mut f, _) = good("GET", "/api");
            let r = request(&mut f);
            r.path = String::new();
            r.path_base = "/api".into();
            f
        }),
        Box::new(|| {
            let (mut f, _) = good("GET", "/");
            request(&mut f).version = Version::HTTP_2;
            request(&mut f).headers.remove(HOST);
            request(&mut f).scheme = http::uri::Scheme::HTTPS;
            f
        }),
    ];
    for (i, case) in cases.into_iter().enumerate() {
        let (report, outcome) = lint_run(noop, case()).await;
        assert!(
            report.is_clean(),
            "case {i}: {:#?} {outcome:?}",
            report.violations()
        );
    }
}

// ---------------------------------------------------------------------------
// server rules

#[tokio::test]
async fn rule_server_required_features() {
    // A server that forgot the ResponseFeature.
    let (report, outcome) = server_violation(|f| {
        f.remove::<ResponseFeature>();
    })
    .await;
    assert_only(&report, "server.required-features");
    assert_eq!(side("server.required-features"), Side::Server);
    assert_rule_error(&outcome, "server.required-features");
    assert!(!outcome.completed);

    // And one that forgot the sink.
    let (report, outcome) = server_violation(|f| {
        f.remove_dyn::<dyn ResponseBody>();
    })
    .await;
    assert_only(&report, "server.required-features");
    assert!(!outcome.completed);
}

#[tokio::test]
async fn rule_server_response_fresh() {
    let (report, _) = server_violation(|f| response(f).mark_started()).await;
    assert_only(&report, "server.response-fresh");
    let (report, _) = server_violation(|f| response(f).status = StatusCode::NOT_FOUND).await;
    assert_only(&report, "server.response-fresh");
    let (report, _) = server_violation(|f| {
        response(f)
            .headers
            .insert("x-stale", HeaderValue::from_static("1"));
    })
    .await;
    assert_only(&report, "server.response-fresh");
}

#[tokio::test]
async fn rule_server_request_id() {
    let (report, _) = server_violation(|f| {
        f.insert(RequestId::new(""));
    })
    .await;
    assert_only(&report, "server.request-id");
}

#[tokio::test]
async fn rule_request_path() {
    let (report, _) = server_violation(|f| request(f).path = "x".into()).await;
    assert_only(&report, "request.path");
    // Empty without a path base or a special form.
    let (report, _) = server_violation(|f| request(f).path = String::new()).await;
    assert_only(&report, "request.path");
}

#[tokio::test]
async fn rule_request_path_base() {
    let (report, _) = server_violation(|f| request(f).path_base = "/a/".into()).await;
    assert_only(&report, "request.path-base");
    let (report, _) = server_violation(|f| request(f).path_base = "a".into()).await;
    assert_only(&report, "request.path-base");
}

#[tokio::test]
async fn rule_request_query() {
    let (report, _) = server_violation(|f| request(f).query = "?x".into()).await;
    assert_only(&report, "request.query");
}

#[tokio::test]
async fn rule_request_raw_target() {
    let (report, _) = server_violation(|f| request(f).raw_target = String::new()).await;
    assert_only(&report, "request.raw-target");
}

#[tokio::test]
async fn rule_request_scheme() {
    let (report, _) = server_violation(|f| request(f).scheme = "ftp".parse().unwrap()).await;
    assert_only(&report, "request.scheme");
}

#[tokio::test]
async fn rule_request_version() {
    let (report, _) = server_violation(|f| request(f).version = Version::HTTP_09).await;
    assert_only(&report, "request.version");
}

#[tokio::test]
async fn rule_request_host() {
    let (report, _) = server_violation(|f| {
        request(f).headers.remove(HOST);
    })
    .await;
    assert_only(&report, "request.host");
    let (report, _) = server_violation(|f| {
        request(f)
            .headers
            .append(HOST, HeaderValue::from_static("other.example"));
    })
    .await;
    assert_only(&report, "request.host");
}

#[tokio::test]
async fn several_server_violations_are_all_recorded() {
    let (report, _) = server_violation(|f| {
        let r = request(f);
        r.query = "?x".into();
        r.scheme = "ftp".parse().unwrap();
        f.insert(RequestId::new(""));
    })
    .await;
    assert_eq!(
        report.rule_ids(),
        vec!["server.request-id", "request.query", "request.scheme"]
    );
}

// ---------------------------------------------------------------------------
// application rules

#[tokio::test]
async fn rule_response_head_after_start() {
    async fn late_status(ctx: &mut HttpContext) -> Result<()> {
        ctx.flush().await?;
        ctx.response_mut().status = StatusCode::IM_A_TEAPOT;
        Ok(())
    }
    let (report, outcome, recording) = lint_get(late_status).await;
    assert_only(&report, "response.head-after-start");
    assert_eq!(side("response.head-after-start"), Side::Application);
    assert!(outcome.error.is_none());
    assert_eq!(
        recording.status(),
        Some(StatusCode::OK),
        "the wire has the old head"
    );

    async fn late_header(ctx: &mut HttpContext) -> Result<()> {
        ctx.flush().await?;
        ctx.response_mut()
            .headers
            .insert("x-late", HeaderValue::from_static("1"));
        Ok(())
    }
    let (report, _, _) = lint_get(late_header).await;
    assert_only(&report, "response.head-after-start");
}

#[tokio::test]
async fn rule_response_body_for_head() {
    let (report, outcome, recording) = lint_method(hello, "HEAD").await;
    assert_only(&report, "response.body-for-head");
    assert!(outcome.error.is_none());
    assert_eq!(recording.body(), "", "the bytes are dropped");
    assert_eq!(recording.headers().unwrap()[CONTENT_LENGTH], "5");
}

#[tokio::test]
async fn rule_response_body_not_allowed() {
    async fn no_content_with_body(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut().status = StatusCode::NO_CONTENT;
        ctx.write("oops").await
    }
    let (report, outcome, recording) = lint_get(no_content_with_body).await;
    assert_only(&report, "response.body-not-allowed");
    assert_rule_error(&outcome, "response.body-not-allowed");
    assert_eq!(recording.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
}

#[tokio::test]
async fn rule_response_content_length_mismatch_short() {
    // Declares 5, writes 3 and returns: Lint predicts the mismatch; the whole
    // body was buffered, so the lifecycle finds it before the head goes out
    // and answers a bare 500 (SPEC §5), never a truncated response.
    async fn short(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut()
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from_static("5"));
        ctx.write("abc").await
    }
    let (report, outcome, recording) = lint_get(short).await;
    assert_only(&report, "response.content-length-mismatch");
    assert_rule_error(&outcome, "response.content-length-mismatch");
    assert_eq!(recording.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert_eq!(recording.headers().unwrap()["content-length"], "0");
    assert!(recording.body().is_empty());
    assert!(!recording.events().contains(&SinkEvent::Abort));
}

#[tokio::test]
async fn rule_response_content_length_mismatch_short_after_flush() {
    async fn short_streamed(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut()
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from_static("5"));
        ctx.write("abc").await?;
        ctx.flush().await
    }
    let (report, outcome, recording) = lint_get(short_streamed).await;
    assert_only(&report, "response.content-length-mismatch");
    assert_rule_error(&outcome, "response.content-length-mismatch");
    assert_eq!(
        recording.events().last(),
        Some(&SinkEvent::Abort),
        "after the head: an abort"
    );
}

#[tokio::test]
async fn rule_response_content_length_mismatch_long() {
    async fn long(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut()
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from_static("5"));
        ctx.write("abcdef").await
    }
    let (report, outcome, _) = lint_get(long).await;
    assert_only(&report, "response.content-length-mismatch");
    assert_rule_error(&outcome, "response.content-length-mismatch");
}

#[tokio::test]
async fn rule_response_content_length_invalid() {
    async fn invalid(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut()
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from_static("abc"));
        ctx.write("x").await
    }
    let (report, outcome, _) = lint_get(invalid).await;
    assert_only(&report, "response.content-length-invalid");
    assert_rule_error(&outcome, "response.content-length-invalid");
}

#[tokio::test]
async fn rule_response_content_length_invalid_without_a_write() {
    // Nothing written: the error surfaces only as the head goes out, after
    // the app returned; Lint predicts it as it predicts a mismatch.
    async fn invalid(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut()
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from_static("abc"));
        Ok(())
    }
    let (report, outcome, recording) = lint_get(invalid).await;
    assert_only(&report, "response.content-length-invalid");
    assert_rule_error(&outcome, "response.content-length-invalid");
    assert_eq!(recording.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
}

#[tokio::test]
async fn rule_response_body_not_allowed_after_the_status_changed() {
    // Buffered while the status allowed a body, then made 204.
    async fn late_204(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("body").await?;
        ctx.response_mut().status = StatusCode::NO_CONTENT;
        Ok(())
    }
    let (report, outcome, recording) = lint_get(late_204).await;
    assert_only(&report, "response.body-not-allowed");
    assert_rule_error(&outcome, "response.body-not-allowed");
    assert_eq!(recording.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
}

#[tokio::test]
async fn rule_response_length_not_allowed() {
    async fn no_content_with_length(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut().status = StatusCode::NO_CONTENT;
        ctx.response_mut()
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        Ok(())
    }
    let (report, _, _) = lint_get(no_content_with_length).await;
    assert_only(&report, "response.length-not-allowed");
}

#[tokio::test]
async fn rule_response_informational_status() {
    async fn early_hints(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut().status = StatusCode::from_u16(103).unwrap();
        Ok(())
    }
    let (report, outcome, recording) = lint_get(early_hints).await;
    assert_only(&report, "response.informational-status");
    assert!(outcome.error.is_some());
    assert_eq!(recording.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
}

#[tokio::test]
async fn rule_response_write_after_complete() {
    async fn writes_late(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("done").await?;
        ctx.complete().await?;
        ctx.write("more").await
    }
    let (report, outcome, recording) = lint_get(writes_late).await;
    assert_only(&report, "response.write-after-complete");
    assert_rule_error(&outcome, "response.write-after-complete");
    assert_eq!(recording.body(), "done");
}

#[tokio::test]
async fn rule_response_callback_after_start() {
    async fn registers_late(ctx: &mut HttpContext) -> Result<()> {
        ctx.flush().await?;
        ctx.on_starting(|_| Ok(()))
    }
    let (report, outcome, _) = lint_get(registers_late).await;
    assert_only(&report, "response.callback-after-start");
    assert_rule_error(&outcome, "response.callback-after-start");
}

#[tokio::test]
async fn rule_response_hop_by_hop_header() {
    async fn connection(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut()
            .headers
            .insert(CONNECTION, HeaderValue::from_static("upgrade"));
        Ok(())
    }
    let (report, _, _) = lint_get(connection).await;
    assert_only(&report, "response.hop-by-hop-header");

    async fn transfer_encoding(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut()
            .headers
            .insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        Ok(())
    }
    let (report, _, _) = lint_get(transfer_encoding).await;
    assert_only(&report, "response.hop-by-hop-header");

    async fn the_others(ctx: &mut HttpContext) -> Result<()> {
        let headers = &mut ctx.response_mut().headers;
        for name in ["keep-alive", "te", "proxy-connection", "upgrade"] {
            headers.insert(name, HeaderValue::from_static("x"));
        }
        Ok(())
    }
    let (report, _, _) = lint_get(the_others).await;
    assert_eq!(report.rule_ids(), vec!["response.hop-by-hop-header"; 4]);
}

#[tokio::test]
async fn rule_response_reason_phrase() {
    async fn injected(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut().reason = Some("OK\r\nSet-Cookie: x=1".into());
        Ok(())
    }
    let (report, _, _) = lint_get(injected).await;
    assert_only(&report, "response.reason-phrase");
}

#[tokio::test]
async fn rule_request_body_limit_after_read() {
    async fn late_limit(ctx: &mut HttpContext) -> Result<()> {
        let body = ctx.read_body(1024).await?;
        let limit = ctx
            .features()
            .get::<MaxRequestBodySize>()
            .expect("TestServer provides MaxRequestBodySize")
            .clone();
        limit.set(Some(1))?;
        ctx.write(body).await
    }
    let lint = Lint::new(late_limit);
    let report = lint.report();
    let server = TestServer::new(lint);
    let response = server.post("/").body("abc").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_only(&report, "request.body-limit-after-read");
}

/// An Upgrade feature for tests: counts the claims.
struct FakeUpgrade {
    upgradable: bool,
    claims: Arc<AtomicUsize>,
}

impl Upgrade for FakeUpgrade {
    fn is_upgradable(&self) -> bool {
        self.upgradable
    }

    fn on_upgrade(&mut self) -> Result<OnUpgrade> {
        self.claims.fetch_add(1, Ordering::SeqCst);
        let (io, _peer) = tokio::io::duplex(64);
        Ok(Box::pin(async move { Ok(Upgraded::new(io)) }))
    }
}

fn with_upgrade(upgradable: bool) -> (Features, RecordingSink, Arc<AtomicUsize>) {
    let (mut features, recording) = good("GET", "/chat");
    let claims = Arc::new(AtomicUsize::new(0));
    features.insert_dyn::<dyn Upgrade>(Box::new(FakeUpgrade {
        upgradable,
        claims: claims.clone(),
    }));
    (features, recording, claims)
}

async fn upgrades(ctx: &mut HttpContext) -> Result<()> {
    ctx.response_mut()
        .headers
        .insert(UPGRADE, HeaderValue::from_static("websocket"));
    ctx.upgrade().await.map(drop)
}

#[tokio::test]
async fn rule_upgrade_not_upgradable() {
    async fn tries(ctx: &mut HttpContext) -> Result<()> {
        ctx.upgrade().await.map(drop)
    }
    let (features, _, claims) = with_upgrade(false);
    let (report, outcome) = lint_run(tries, features).await;
    assert_only(&report, "upgrade.not-upgradable");
    assert_rule_error(&outcome, "upgrade.not-upgradable");
    assert_eq!(claims.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn rule_upgrade_after_start() {
    async fn flushes_then_upgrades(ctx: &mut HttpContext) -> Result<()> {
        ctx.flush().await?;
        ctx.upgrade().await.map(drop)
    }
    let (features, _, claims) = with_upgrade(true);
    let (report, outcome) = lint_run(flushes_then_upgrades, features).await;
    assert_only(&report, "upgrade.after-start");
    assert_rule_error(&outcome, "upgrade.after-start");
    assert_eq!(
        claims.load(Ordering::SeqCst),
        0,
        "a refused upgrade does not claim the connection"
    );
}

#[tokio::test]
async fn a_proper_upgrade_is_clean() {
    // `Upgrade` is allowed as a header on the 101.
    let (features, recording, claims) = with_upgrade(true);
    let (report, outcome) = lint_run(upgrades, features).await;
    assert!(report.is_clean(), "{:#?}", report.violations());
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(claims.load(Ordering::SeqCst), 1);
    assert_eq!(recording.status(), Some(StatusCode::SWITCHING_PROTOCOLS));
    assert_eq!(recording.headers().unwrap()[UPGRADE], "websocket");
}

#[tokio::test]
async fn rule_owin_value_type() {
    let app = OwinApp::new(app_func(|env: &mut Environment| {
        Box::pin(async move { env.set(keys::REQUEST_PATH, Value::Int(1)) })
    }));
    let (report, outcome, _) = lint_get(app).await;
    assert_only(&report, "owin.value-type");
    assert_rule_error(&outcome, "owin.value-type");

    let app = OwinApp::new(app_func(|env: &mut Environment| {
        Box::pin(async move { env.set(keys::RESPONSE_STATUS_CODE, Value::Int(42)) })
    }));
    let (report, _, _) = lint_get(app).await;
    assert_only(&report, "owin.value-type");
}

#[tokio::test]
async fn rule_owin_read_only_key() {
    let app = OwinApp::new(app_func(|env: &mut Environment| {
        Box::pin(async move { env.set(keys::VERSION, "2.0.0".into()) })
    }));
    let (report, outcome, _) = lint_get(app).await;
    assert_only(&report, "owin.read-only-key");
    assert_rule_error(&outcome, "owin.read-only-key");
}

#[tokio::test]
async fn errors_without_a_rule_are_not_violations() {
    async fn fails(_: &mut HttpContext) -> Result<()> {
        Err(Error::app_msg("boom"))
    }
    let (report, outcome, _) = lint_get(fails).await;
    assert!(report.is_clean(), "{:#?}", report.violations());
    assert!(outcome.error.unwrap().is_app());
}

// ---------------------------------------------------------------------------
// modes and placement

#[tokio::test]
async fn fail_mode_refuses_a_broken_server_before_the_app_runs() {
    let ran = Arc::new(AtomicBool::new(false));
    let app = {
        let ran = ran.clone();
        from_fn(move |ctx: &mut HttpContext| {
            ran.store(true, Ordering::SeqCst);
            Box::pin(async move { ctx.write("should not be sent").await })
        })
    };
    let lint = Lint::new(app).mode(LintMode::Fail);
    let report = lint.report();
    let (mut features, recording) = good("GET", "/");
    request(&mut features).query = "?x".into();
    let outcome = run_request(&lint, features).await;
    assert!(!ran.load(Ordering::SeqCst), "the app never ran");
    assert_only(&report, "request.query");
    let err = outcome.error.expect("a contract error");
    assert!(err.is_contract(), "{err:?}");
    assert_eq!(recording.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert_eq!(recording.headers().unwrap()[CONTENT_LENGTH], "0");
    assert_eq!(recording.body(), "");
}

#[tokio::test]
async fn fail_mode_turns_an_app_violation_into_an_error() {
    // Before the head: a bare 500.
    async fn bad_reason(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut().reason = Some("a\nb".into());
        ctx.write("body").await
    }
    let lint = Lint::new(bad_reason).mode(LintMode::Fail);
    let report = lint.report();
    let (features, recording) = good("GET", "/");
    let outcome = run_request(&lint, features).await;
    assert_only(&report, "response.reason-phrase");
    assert!(outcome.error.expect("an error").is_contract());
    assert_eq!(recording.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert_eq!(recording.reason().as_deref(), Some("Internal Server Error"));
    assert_eq!(recording.body(), "");

    // After the head: an abort.
    async fn late_status(ctx: &mut HttpContext) -> Result<()> {
        ctx.flush().await?;
        ctx.response_mut().status = StatusCode::IM_A_TEAPOT;
        Ok(())
    }
    let lint = Lint::new(late_status).mode(LintMode::Fail);
    let report = lint.report();
    let (features, recording) = good("GET", "/");
    let outcome = run_request(&lint, features).await;
    assert_only(&report, "response.head-after-start");
    assert!(outcome.error.expect("an error").is_contract());
    assert!(!outcome.completed);
    assert_eq!(recording.events().last(), Some(&SinkEvent::Abort));

    // Record mode lets the same app through.
    let (report, outcome, _) = lint_get(late_status).await;
    assert_only(&report, "response.head-after-start");
    assert!(outcome.error.is_none() && outcome.completed);
}

#[tokio::test]
async fn lint_middleware_in_a_builder_records_too() {
    async fn sloppy(ctx: &mut HttpContext) -> Result<()> {
        ctx.flush().await?;
        ctx.response_mut().status = StatusCode::IM_A_TEAPOT;
        Ok(())
    }
    let report = LintReport::default();
    let app = Builder::new()
        .use_fn(Lint::middleware(report.clone(), LintMode::Record))
        .run(sloppy);
    let server = TestServer::new(app);
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.bytes().await.unwrap();
    assert_only(&report, "response.head-after-start");

    report.clear();
    assert!(report.is_clean());
    let app = Builder::new()
        .use_fn(Lint::middleware(report.clone(), LintMode::Record))
        .map("/api", |branch| branch.run(hello))
        .run(noop);
    let server = TestServer::new(app);
    server
        .get("/api/x")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(report.is_clean(), "{:#?}", report.violations());
}

#[tokio::test]
async fn lint_middleware_in_fail_mode_stops_a_broken_server() {
    let report = LintReport::default();
    let ran = Arc::new(AtomicBool::new(false));
    let app = {
        let ran = ran.clone();
        Builder::new()
            .use_fn(Lint::middleware(report.clone(), LintMode::Fail))
            .run(from_fn(move |_ctx: &mut HttpContext| {
                ran.store(true, Ordering::SeqCst);
                Box::pin(async { Ok(()) })
            }))
    };
    let (mut features, recording) = good("GET", "/");
    request(&mut features).path_base = "/trailing/".into();
    let outcome = run_request(&app, features).await;
    assert!(!ran.load(Ordering::SeqCst));
    assert_only(&report, "request.path-base");
    assert!(outcome.error.is_some());
    assert_eq!(recording.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
}

// ---------------------------------------------------------------------------
// coverage

#[test]
fn every_rule_has_a_test_here() {
    let source = include_str!("lint.rs");
    let missing: Vec<&str> = RULES
        .iter()
        .map(|r| r.id)
        .filter(|id| {
            let test_name = format!("async fn rule_{}", id.replace(['.', '-'], "_"));
            !source.contains(&test_name)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "rules without a `rule_<id>` test in tests/lint.rs: {missing:?}"
    );
    assert_eq!(RULES.len(), 26);
}

/// An application with its own context hooks, which it counts.
struct WithHooks {
    created: Arc<AtomicUsize>,
    disposed: Arc<AtomicUsize>,
}

impl serverbridge::Application for WithHooks {
    fn create_context(&self, features: serverbridge::Features) -> HttpContext {
        self.created.fetch_add(1, Ordering::SeqCst);
        HttpContext::new(features)
    }

    fn process_request<'a>(
        &'a self,
        ctx: &'a mut HttpContext,
    ) -> futures::future::BoxFuture<'a, Result<()>> {
        Box::pin(async move { ctx.write("x").await })
    }

    fn dispose_context(&self, _ctx: &mut HttpContext, _error: Option<&serverbridge::Error>) {
        self.disposed.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn lint_is_transparent_to_the_context_hooks() {
    let created = Arc::new(AtomicUsize::new(0));
    let disposed = Arc::new(AtomicUsize::new(0));
    let lint = Lint::new(WithHooks {
        created: created.clone(),
        disposed: disposed.clone(),
    });
    let (features, _recording) = RecordingSink::features("GET", "/");
    let _ = run_request(&lint, features).await;
    assert_eq!(created.load(Ordering::SeqCst), 1);
    assert_eq!(disposed.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_header_set_by_a_callback_a_callback_registered_is_not_a_change_after_start() {
    // The nested callback runs in a later batch than Lint's snapshot would:
    // the header is in the head as sent, not added after it.
    async fn nested(ctx: &mut HttpContext) -> Result<()> {
        ctx.on_starting(|ctx| {
            ctx.on_starting(|ctx| {
                ctx.response_mut()
                    .headers
                    .insert("x-nested", HeaderValue::from_static("1"));
                Ok(())
            })
        })?;
        ctx.write("body").await?;
        ctx.flush().await
    }
    let lint = Lint::new(nested).mode(LintMode::Fail);
    let report = lint.report();
    let (mut features, recording) = RecordingSink::features("GET", "/");
    features
        .get_mut::<RequestFeature>()
        .unwrap()
        .headers
        .insert(HOST, HeaderValue::from_static("x"));
    let outcome = run_request(&lint, features).await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(recording.headers().unwrap()["x-nested"], "1");
    assert!(report.is_clean(), "{:#?}", report.violations());
}

#[tokio::test]
async fn a_callback_that_makes_the_response_204_is_clean() {
    // The context's own Content-Length comes after the callbacks: none on
    // the 204, and the head as sent is the head the app ends with.
    async fn late_204(ctx: &mut HttpContext) -> Result<()> {
        ctx.on_starting(|ctx| {
            ctx.response_mut().status = StatusCode::NO_CONTENT;
            Ok(())
        })
    }
    let (report, outcome, recording) = lint_get(late_204).await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(recording.status(), Some(StatusCode::NO_CONTENT));
    assert!(report.is_clean(), "{:#?}", report.violations());
}

#[tokio::test]
async fn connection_close_from_the_app_is_a_request_for_the_close_not_a_violation() {
    use serverbridge::lint::LintMode;
    use serverbridge::testing::Mode;
    async fn asks_for_close(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut()
            .headers
            .insert("connection", "close".parse().unwrap());
        ctx.write("bye").await
    }
    async fn keep_alive(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut()
            .headers
            .insert("connection", "keep-alive".parse().unwrap());
        ctx.write("hi").await
    }
    let lint = Lint::new(asks_for_close).mode(LintMode::Fail);
    let report = lint.report();
    let server = TestServer::new(lint).with_mode(Mode::Wire);
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    assert!(report.is_clean(), "{:?}", report.violations());
    let lint = Lint::new(keep_alive);
    let report = lint.report();
    let _ = TestServer::new(lint).get("/").send().await.unwrap();
    assert_eq!(report.rule_ids(), ["response.hop-by-hop-header"]);
}

#[tokio::test]
async fn what_on_starting_callbacks_do_to_a_response_sent_at_completion_is_checked() {
    use serverbridge::testing::{Mode, TestServer};
    async fn body_then_304(ctx: &mut HttpContext) -> Result<()> {
        ctx.on_starting(|ctx| {
            ctx.response_mut().status = StatusCode::NOT_MODIFIED;
            Ok(())
        })?;
        ctx.write("hello").await
    }
    async fn callback_sets_te(ctx: &mut HttpContext) -> Result<()> {
        ctx.on_starting(|ctx| {
            ctx.response_mut()
                .headers
                .insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
            Ok(())
        })?;
        ctx.write("hello").await
    }
    for mode in [Mode::Direct, Mode::Wire] {
        let cases: [(serverbridge::BoxApplication, StatusCode, &str); 2] = [
            (
                Arc::new(body_then_304),
                StatusCode::INTERNAL_SERVER_ERROR,
                "response.body-not-allowed",
            ),
            (
                Arc::new(callback_sets_te),
                StatusCode::OK,
                "response.hop-by-hop-header",
            ),
        ];
        for (app, status, rule) in cases {
            let lint = Lint::new(app);
            let report = lint.report();
            let server = TestServer::new(lint).with_mode(mode);
            let response = server.get("/").send().await.unwrap();
            assert_eq!(response.status(), status, "{mode:?} {rule}");
            assert_eq!(report.rule_ids(), [rule], "{mode:?}");
        }
    }
}
