//! Application rules.

use super::*;

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
async fn rule_upgrade_status_changed() {
    // A callback that changes the 101 would send another head and still
    // hand the connection over: refused before the connection is claimed.
    async fn upgrades_with_a_callback(ctx: &mut HttpContext) -> Result<()> {
        ctx.on_starting(|ctx| {
            ctx.response_mut().status = StatusCode::OK;
            Ok(())
        })?;
        ctx.upgrade().await.map(drop)
    }
    let (features, recording, claims) = with_upgrade(true);
    let (report, outcome) = lint_run(upgrades_with_a_callback, features).await;
    assert_only(&report, "upgrade.status-changed");
    assert_rule_error(&outcome, "upgrade.status-changed");
    assert_eq!(
        claims.load(Ordering::SeqCst),
        0,
        "the connection is not claimed"
    );
    assert_eq!(
        recording.status(),
        Some(StatusCode::INTERNAL_SERVER_ERROR),
        "the lifecycle's bare error response"
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
