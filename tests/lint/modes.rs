//! Modes and placement.

use super::*;

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
