//! Coverage.

use super::*;

#[test]
fn every_rule_has_a_test_here() {
    let source = [
        include_str!("server_rules.rs"),
        include_str!("app_rules.rs"),
        include_str!("modes.rs"),
    ]
    .concat();
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
        "rules without a `rule_<id>` test in tests/lint/: {missing:?}"
    );
    assert_eq!(RULES.len(), 27);
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
