//! [`Lint`]: middleware that checks both sides of the contract.
//!
//! Wrap an application in [`Lint`] (or put [`Lint::middleware`] first in a
//! [`Builder`](crate::Builder)) while developing or testing a server or an
//! app. On the way in it checks what the **server** provided; on the way out
//! it checks what the **app** did. Every check has a stable rule id, listed in
//! [`RULES`] and in SPEC.md (a test keeps the two in step). Model: Rack::Lint.
//!
//! Violations are recorded in a [`LintReport`]; in [`LintMode::Fail`] they
//! also fail the request (a server-side violation before the app runs, an
//! app-side one after), so they cannot go unnoticed in a test.
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use serverbridge::lint::Lint;
//! use serverbridge::testing::TestServer;
//! use serverbridge::{HttpContext, Result};
//!
//! async fn sloppy(ctx: &mut HttpContext) -> Result<()> {
//!     ctx.flush().await?;
//!     ctx.response_mut().status = http::StatusCode::IM_A_TEAPOT; // too late
//!     Ok(())
//! }
//!
//! let lint = Lint::new(sloppy);
//! let report = lint.report();
//! let server = TestServer::new(lint);
//! server.get("/").send().await.unwrap().bytes().await.unwrap();
//! assert_eq!(report.rule_ids(), vec!["response.head-after-start"]);
//! # });
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use http::header::{self, HeaderName};
use http::{HeaderMap, Method, StatusCode, Version};

use crate::application::Application;
use crate::builder::{Middleware, Next};
use crate::context::HttpContext;
use crate::error::{Error, Result};
use crate::feature::{RequestFeature, RequestId, ResponseBody, ResponseFeature};
use crate::features::Features;

/// Which side of the contract a rule binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The server (what it puts in the features).
    Server,
    /// The application (what it does with the response).
    Application,
}

/// One contract rule.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    /// The stable id.
    pub id: &'static str,
    /// Who must keep it.
    pub side: Side,
    /// What it requires.
    pub text: &'static str,
}

const fn rule(id: &'static str, side: Side, text: &'static str) -> Rule {
    Rule { id, side, text }
}

/// Every rule, in SPEC.md's order.
pub const RULES: &[Rule] = &[
    rule("server.required-features", Side::Server, "The features hold a RequestFeature, a ResponseFeature and a ResponseBody."),
    rule("server.response-fresh", Side::Server, "The response the app receives has not started, has status 200 and no headers."),
    rule("server.request-id", Side::Server, "A RequestId, when present, is not empty."),
    rule("request.path", Side::Server, "The path starts with '/', or is empty when the path base holds the whole path, or for the asterisk and authority forms."),
    rule("request.path-base", Side::Server, "The path base is empty, or starts with '/' and does not end with '/'."),
    rule("request.query", Side::Server, "The query does not start with '?'."),
    rule("request.raw-target", Side::Server, "The raw target is not empty."),
    rule("request.scheme", Side::Server, "The scheme is http or https."),
    rule("request.version", Side::Server, "The version is HTTP/1.0, HTTP/1.1, HTTP/2 or HTTP/3."),
    rule("request.host", Side::Server, "An HTTP/1.1 request has exactly one Host header."),
    rule("response.head-after-start", Side::Application, "Status, reason and headers do not change after the head was sent."),
    rule("response.body-for-head", Side::Application, "No body bytes are written for a HEAD request."),
    rule("response.body-not-allowed", Side::Application, "No body is written for a 1xx, 204 or 304 response."),
    rule("response.content-length-mismatch", Side::Application, "A declared Content-Length equals the body length."),
    rule("response.content-length-invalid", Side::Application, "A Content-Length header is a single decimal number."),
    rule("response.informational-status", Side::Application, "The final status is not 1xx (101 goes out through upgrade only)."),
    rule("response.length-not-allowed", Side::Application, "A 1xx or 204 response has no Content-Length."),
    rule("response.write-after-complete", Side::Application, "Nothing is written after the response completed."),
    rule("response.callback-after-start", Side::Application, "on_starting callbacks are registered before the head is sent."),
    rule("response.hop-by-hop-header", Side::Application, "The app sets no Connection (but `Connection: close`, which asks for the close), Keep-Alive, Transfer-Encoding, TE, Proxy-Connection or (outside 101) Upgrade header: framing is the server's."),
    rule("response.reason-phrase", Side::Application, "A custom reason phrase has only tab, space and visible characters."),
    rule("request.body-limit-after-read", Side::Application, "MaxRequestBodySize is not changed after the body was read."),
    rule("upgrade.not-upgradable", Side::Application, "Upgrade is only attempted on an upgradable request."),
    rule("upgrade.after-start", Side::Application, "Upgrade is only attempted before the head was sent."),
    rule("upgrade.status-changed", Side::Application, "No on_starting callback changes the 101 of an upgrade."),
    rule("owin.value-type", Side::Application, "A standard OWIN key is set with its own value type."),
    rule("owin.read-only-key", Side::Application, "Read-only OWIN keys are not set."),
];

/// A broken rule, with what was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The rule id.
    pub rule: &'static str,
    /// What was seen.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.rule, self.message)
    }
}

/// The violations a [`Lint`] saw; clones share one list.
#[derive(Clone, Debug, Default)]
pub struct LintReport {
    violations: Arc<Mutex<Vec<Violation>>>,
}

impl LintReport {
    fn push(&self, rule: &'static str, message: impl Into<String>) {
        tracing::warn!(rule, "lint violation");
        if let Ok(mut list) = self.violations.lock() {
            list.push(Violation {
                rule,
                message: message.into(),
            });
        }
    }

    /// Every violation, in order.
    pub fn violations(&self) -> Vec<Violation> {
        self.violations
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// The rule ids of the violations, in order.
    pub fn rule_ids(&self) -> Vec<&'static str> {
        self.violations().into_iter().map(|v| v.rule).collect()
    }

    /// Whether nothing was violated.
    pub fn is_clean(&self) -> bool {
        self.violations().is_empty()
    }

    /// Forgets what was seen.
    pub fn clear(&self) {
        if let Ok(mut list) = self.violations.lock() {
            list.clear();
        }
    }
}

/// What a violation does besides being recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LintMode {
    /// Record only.
    #[default]
    Record,
    /// Record and fail the request with a contract error.
    Fail,
}

/// The contract checker; see the [module docs](self).
pub struct Lint<A> {
    inner: A,
    report: LintReport,
    mode: LintMode,
}

impl<A> fmt::Debug for Lint<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lint").field("mode", &self.mode).finish()
    }
}

impl<A: Application> Lint<A> {
    /// Checks around `inner`, recording violations.
    pub fn new(inner: A) -> Self {
        Lint {
            inner,
            report: LintReport::default(),
            mode: LintMode::Record,
        }
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: LintMode) -> Self {
        self.mode = mode;
        self
    }

    /// The report (shared with this lint).
    pub fn report(&self) -> LintReport {
        self.report.clone()
    }
}

impl Lint<()> {
    /// The checks as a [`Builder`](crate::Builder) middleware, recording into
    /// `report`.
    pub fn middleware(report: LintReport, mode: LintMode) -> impl Middleware {
        LintMiddleware { report, mode }
    }
}

/// The head as it was sent.
#[derive(Clone, PartialEq)]
struct Head {
    status: StatusCode,
    reason: Option<String>,
    headers: HeaderMap,
}

struct Snapshot {
    /// The head as sent, taken by the last `on_starting` callback.
    head: Arc<Mutex<Option<Head>>>,
    /// The app returned before its head went out: the head is checked when
    /// it goes out (at completion, after the callbacks), not before.
    deferred: Arc<std::sync::atomic::AtomicBool>,
}

fn check_server(ctx: &HttpContext, report: &LintReport) -> usize {
    let before = report.violations().len();
    let features = ctx.features();
    let request = features.get::<RequestFeature>();
    let response = features.get::<ResponseFeature>();
    if request.is_none() || response.is_none() || !features.contains_dyn::<dyn ResponseBody>() {
        report.push(
            "server.required-features",
            format!("features present: {:?}", features.type_names()),
        );
    }
    if let Some(response) = response {
        if response.has_started()
            || response.status != StatusCode::OK
            || !response.headers.is_empty()
        {
            report.push("server.response-fresh", format!("{response:?}"));
        }
    }
    if features
        .get::<RequestId>()
        .is_some_and(|id| id.0.is_empty())
    {
        report.push("server.request-id", "the RequestId is empty");
    }
    let Some(request) = request else {
        return report.violations().len() - before;
    };
    let special_form = request.raw_target == "*" || request.method == Method::CONNECT;
    let path_ok = request.path.starts_with('/')
        || (request.path.is_empty() && (!request.path_base.is_empty() || special_form));
    if !path_ok {
        report.push("request.path", format!("path {:?}", request.path));
    }
    let base = &request.path_base;
    if !base.is_empty() && (!base.starts_with('/') || base.ends_with('/')) {
        report.push("request.path-base", format!("path_base {base:?}"));
    }
    if request.query.starts_with('?') {
        report.push("request.query", format!("query {:?}", request.query));
    }
    if request.raw_target.is_empty() {
        report.push("request.raw-target", "the raw target is empty");
    }
    if request.scheme != http::uri::Scheme::HTTP && request.scheme != http::uri::Scheme::HTTPS {
        report.push("request.scheme", format!("scheme {}", request.scheme));
    }
    let versions = [
        Version::HTTP_10,
        Version::HTTP_11,
        Version::HTTP_2,
        Version::HTTP_3,
    ];
    if !versions.contains(&request.version) {
        report.push("request.version", format!("{:?}", request.version));
    }
    if request.version == Version::HTTP_11 {
        let hosts = request.headers.get_all(header::HOST).iter().count();
        if hosts != 1 {
            report.push("request.host", format!("{hosts} Host headers"));
        }
    }
    report.violations().len() - before
}

const HOP_BY_HOP: &[HeaderName] = &[
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::TE,
    header::UPGRADE,
];

/// Whether every `Connection` field is just `close`: the app asking for
/// the close, which every server honours (SPEC §11), not framing of its own.
fn only_close(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .all(|value| value.as_bytes().trim_ascii().eq_ignore_ascii_case(b"close"))
}

fn check_head(head: &Head, report: &LintReport) {
    for name in HOP_BY_HOP {
        if head.headers.contains_key(name)
            && !(name == header::UPGRADE && head.status == StatusCode::SWITCHING_PROTOCOLS)
            && !(name == header::CONNECTION && only_close(&head.headers))
        {
            report.push(
                "response.hop-by-hop-header",
                format!("{name} set by the app"),
            );
        }
    }
    for name in ["keep-alive", "proxy-connection"] {
        if head.headers.contains_key(name) {
            report.push(
                "response.hop-by-hop-header",
                format!("{name} set by the app"),
            );
        }
    }
    if head.status.is_informational() && head.status != StatusCode::SWITCHING_PROTOCOLS {
        report.push(
            "response.informational-status",
            format!("final status {}", head.status),
        );
    }
    if let Some(reason) = &head.reason {
        if !crate::feature::reason_fits(reason) {
            report.push("response.reason-phrase", format!("reason {reason:?}"));
        }
    }
    if (head.status.is_informational() || head.status == StatusCode::NO_CONTENT)
        && head.headers.contains_key(header::CONTENT_LENGTH)
    {
        report.push(
            "response.length-not-allowed",
            format!("Content-Length on a {} response", head.status),
        );
    }
}

fn head_of(response: &ResponseFeature) -> Head {
    Head {
        status: response.status,
        reason: response.reason.clone(),
        headers: response.headers.clone(),
    }
}

fn check_app(
    ctx: &HttpContext,
    snapshot: &Snapshot,
    result: &Result<()>,
    report: &LintReport,
) -> usize {
    let before = report.violations().len();
    if let Err(err) = result {
        if let Some(rule) = err.rule() {
            if RULES.iter().any(|r| r.id == rule) {
                report.push(rule, err.to_string());
            }
        }
    }
    let Some(response) = ctx.try_response() else {
        return report.violations().len() - before;
    };
    let now = head_of(response);
    // The snapshot is taken by the last `on_starting` callback; completing
    // a buffered response adds its `Content-Length` after the callbacks
    // (so that one that changes the status is seen first). That length is
    // the context's own, part of the head as sent.
    let sent = snapshot
        .head
        .lock()
        .ok()
        .and_then(|s| s.clone())
        .map(|mut sent| {
            let own = now.headers.get_all(header::CONTENT_LENGTH).iter().count() == 1
                && now
                    .headers
                    .get(header::CONTENT_LENGTH)
                    .is_some_and(|v| v.as_bytes() == ctx.bytes_written().to_string().as_bytes());
            if own && !sent.headers.contains_key(header::CONTENT_LENGTH) {
                if let Some(length) = now.headers.get(header::CONTENT_LENGTH) {
                    sent.headers.insert(header::CONTENT_LENGTH, length.clone());
                }
            }
            sent
        });
    match &sent {
        Some(sent) => {
            if *sent != now {
                report.push(
                    "response.head-after-start",
                    format!("sent {} then changed to {}", sent.status, now.status),
                );
            }
            check_head(sent, report);
        }
        // Not sent yet: the `on_starting` callbacks may still change it,
        // so the snapshot callback checks it as it goes out. Only what
        // fails the request here is checked now.
        None if result.is_ok() && !ctx.is_completed() => {
            snapshot
                .deferred
                .store(true, std::sync::atomic::Ordering::Release);
        }
        None => check_head(&now, report),
    }
    let is_head = ctx.try_request().is_some_and(|r| r.method == Method::HEAD);
    if is_head && ctx.bytes_written() > 0 {
        report.push(
            "response.body-for-head",
            format!("{} bytes written for HEAD", ctx.bytes_written()),
        );
    }
    // Predict what the lifecycle would report on completion, without
    // completing here (outer middleware may still write).
    let status = response.status;
    let body_allowed = crate::context::body_allowed(status);
    if result.is_ok() && !ctx.is_completed() && !response.has_started() {
        // The head's Content-Length is parsed only when it goes out: one
        // value, all digits.
        if let Err(err) = crate::context::parse_length(&response.headers) {
            report.push("response.content-length-invalid", err.to_string());
        }
    }
    if result.is_ok() && !is_head && !ctx.is_completed() {
        let declared = if response.has_started() {
            ctx.declared_length_sent()
        } else {
            response
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        if let Some(declared) = declared {
            if body_allowed && declared > ctx.bytes_written() {
                report.push(
                    "response.content-length-mismatch",
                    format!(
                        "Content-Length {declared}, {} bytes written",
                        ctx.bytes_written()
                    ),
                );
            }
        }
    }
    report.violations().len() - before
}

/// The checks before the app runs; `Err` in [`LintMode::Fail`] on a
/// server-side violation.
fn before(ctx: &mut HttpContext, report: &LintReport, mode: LintMode) -> Result<Snapshot> {
    let server_violations = check_server(ctx, report);
    if server_violations > 0 && mode == LintMode::Fail {
        return Err(Error::contract(
            "server.contract",
            format!("{server_violations} server-side lint violation(s)"),
        ));
    }
    let snapshot = Snapshot {
        head: Arc::new(Mutex::new(None)),
        deferred: Arc::default(),
    };
    if ctx.try_response().is_some_and(|r| !r.has_started()) {
        let slot = snapshot.head.clone();
        let deferred = snapshot.deferred.clone();
        let report = report.clone();
        // Registered first, so it runs last in its batch. Callbacks that
        // the batch's callbacks registered would run in a batch after it
        // (and may still change the head): they run here, in the order they
        // would have, so that the snapshot sees the head as sent.
        let _ = ctx.on_starting(move |ctx| {
            loop {
                let nested = ctx.response_mut().take_on_starting();
                if nested.is_empty() {
                    break;
                }
                ctx.run_callbacks(nested)?;
            }
            let head = head_of(ctx.response());
            if let Ok(mut slot) = slot.lock() {
                *slot = Some(head.clone());
            }
            if !deferred.load(std::sync::atomic::Ordering::Acquire) {
                return Ok(());
            }
            // The app returned before its head went out: this is the head
            // it goes out with, the callbacks' changes included.
            let before = report.violations().len();
            check_head(&head, &report);
            let is_head = ctx.try_request().is_some_and(|r| r.method == Method::HEAD);
            let written = ctx.bytes_written();
            if !crate::context::body_allowed(head.status) && !is_head && written > 0 {
                report.push(
                    "response.body-not-allowed",
                    format!("{written} bytes written for a {} response", head.status),
                );
            }
            let found = report.violations().len() - before;
            if found > 0 && mode == LintMode::Fail {
                return Err(Error::contract(
                    "application.contract",
                    format!("{found} application-side lint violation(s)"),
                ));
            }
            Ok(())
        });
    }
    Ok(snapshot)
}

/// The checks after the app ran.
fn after(
    ctx: &HttpContext,
    snapshot: &Snapshot,
    result: Result<()>,
    report: &LintReport,
    mode: LintMode,
) -> Result<()> {
    let app_violations = check_app(ctx, snapshot, &result, report);
    if app_violations > 0 && mode == LintMode::Fail && result.is_ok() {
        return Err(Error::contract(
            "application.contract",
            format!("{app_violations} application-side lint violation(s)"),
        ));
    }
    result
}

impl<A: Application> Application for Lint<A> {
    /// The wrapped application's: `Lint` is transparent.
    fn create_context(&self, features: Features) -> HttpContext {
        self.inner.create_context(features)
    }

    fn dispose_context(&self, ctx: &mut HttpContext, error: Option<&Error>) {
        self.inner.dispose_context(ctx, error);
    }

    fn process_request<'a>(&'a self, ctx: &'a mut HttpContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let snapshot = before(ctx, &self.report, self.mode)?;
            let result = self.inner.process_request(ctx).await;
            after(ctx, &snapshot, result, &self.report, self.mode)
        })
    }
}

struct LintMiddleware {
    report: LintReport,
    mode: LintMode,
}

impl Middleware for LintMiddleware {
    fn call<'a>(&'a self, ctx: &'a mut HttpContext, next: Next<'a>) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let snapshot = before(ctx, &self.report, self.mode)?;
            let result = next.run(ctx).await;
            after(ctx, &snapshot, result, &self.report, self.mode)
        })
    }
}
