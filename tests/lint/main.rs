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

mod app_rules;
mod baseline;
mod coverage;
mod modes;
mod server_rules;
