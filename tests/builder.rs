//! `Builder`: middleware order, short-circuits, `map` and tower layers.

#![cfg(feature = "test-util")]

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use http::header::{HeaderName, HeaderValue};
use http::StatusCode;
use serverbridge::application::from_fn;
use serverbridge::testing::TestServer;
use serverbridge::{Builder, Error, HttpContext, Middleware, Next, Result};
use tower_http::set_header::SetResponseHeaderLayer;

/// A tower-http layer that sets `x-layer: 1` on the response.
fn x_layer() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(
        HeaderName::from_static("x-layer"),
        HeaderValue::from_static("1"),
    )
}

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

/// Logs before and after calling `next`, or short-circuits.
struct Logger {
    name: &'static str,
    log: Log,
    short_circuit: bool,
}

impl Logger {
    fn new(name: &'static str, log: &Log) -> Self {
        Logger {
            name,
            log: log.clone(),
            short_circuit: false,
        }
    }
}

impl Middleware for Logger {
    fn call<'a>(&'a self, ctx: &'a mut HttpContext, next: Next<'a>) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if self.short_circuit {
                self.log.push(format!("{} short-circuit", self.name));
                ctx.response_mut().status = StatusCode::FORBIDDEN;
                return ctx.write(format!("denied by {}", self.name)).await;
            }
            self.log.push(format!("{} before", self.name));
            let result = next.run(ctx).await;
            self.log.push(format!("{} after", self.name));
            result
        })
    }
}

/// A terminal handler that logs and writes "handler".
fn handler(log: &Log) -> impl serverbridge::Application {
    let log = log.clone();
    from_fn(move |ctx| {
        let log = log.clone();
        Box::pin(async move {
            log.push("handler");
            ctx.write("handler").await
        })
    })
}

/// Writes `base=<path_base> path=<path> query=<query>`.
async fn where_am_i(ctx: &mut HttpContext) -> Result<()> {
    let request = ctx.request();
    let text = format!(
        "base={} path={} query={}",
        request.path_base, request.path, request.query
    );
    ctx.write(text).await
}

async fn fallback(ctx: &mut HttpContext) -> Result<()> {
    let text = format!("fallback {}", ctx.request().path);
    ctx.write(text).await
}

async fn get_text(server: &TestServer, uri: &str) -> (StatusCode, String) {
    let response = server.get(uri).send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn middleware_runs_in_the_order_added_and_unwinds_in_reverse() {
    let log = Log::default();
    let app = Builder::new()
        .use_fn(Logger::new("m1", &log))
        .use_fn(Logger::new("m2", &log))
        .use_fn(Logger::new("m3", &log))
        .run(handler(&log));
    let server = TestServer::new(app);
    let (status, body) = get_text(&server, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "handler");
    assert_eq!(
        log.entries(),
        [
            "m1 before",
            "m2 before",
            "m3 before",
            "handler",
            "m3 after",
            "m2 after",
            "m1 after",
        ]
    );
}

#[tokio::test]
async fn a_middleware_that_does_not_call_next_short_circuits() {
    let log = Log::default();
    let mut m2 = Logger::new("m2", &log);
    m2.short_circuit = true;
    let app = Builder::new()
        .use_fn(Logger::new("m1", &log))
        .use_fn(m2)
        .use_fn(Logger::new("m3", &log))
        .run(handler(&log));
    let server = TestServer::new(app);
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(response.headers()["content-length"], "12");
    assert_eq!(response.text().await.unwrap(), "denied by m2");
    assert_eq!(
        log.entries(),
        ["m1 before", "m2 short-circuit", "m1 after"],
        "m3 and the handler never run"
    );
}

#[tokio::test]
async fn async_fn_middleware_can_edit_the_request_and_the_response() {
    async fn add_header(ctx: &mut HttpContext, next: Next<'_>) -> Result<()> {
        ctx.request_mut()
            .headers
            .insert("x-added", HeaderValue::from_static("by-middleware"));
        ctx.response_mut()
            .headers
            .insert("server", HeaderValue::from_static("serverbridge"));
        next.run(ctx).await
    }
    async fn echo_header(ctx: &mut HttpContext) -> Result<()> {
        let value = ctx.request().headers["x-added"]
            .to_str()
            .unwrap()
            .to_owned();
        ctx.write(value).await
    }
    let server = TestServer::new(Builder::new().use_fn(add_header).run(echo_header));
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.headers()["server"], "serverbridge");
    assert_eq!(response.text().await.unwrap(), "by-middleware");
}

#[tokio::test]
async fn an_error_from_the_handler_passes_through_middleware() {
    let log = Log::default();
    async fn fails(_: &mut HttpContext) -> Result<()> {
        Err(Error::limit("nope", StatusCode::PAYLOAD_TOO_LARGE))
    }
    let app = Builder::new().use_fn(Logger::new("m1", &log)).run(fails);
    let server = TestServer::new(app);
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.headers()["content-length"], "0");
    assert_eq!(log.entries(), ["m1 before", "m1 after"]);
}

#[tokio::test]
async fn map_matches_whole_segments_only() {
    let app = Builder::new()
        .map("/api", |branch| branch.run(where_am_i))
        .run(fallback);
    let server = TestServer::new(app);

    assert_eq!(get_text(&server, "/api").await.1, "base=/api path= query=");
    assert_eq!(
        get_text(&server, "/api/").await.1,
        "base=/api path=/ query="
    );
    assert_eq!(
        get_text(&server, "/api/x").await.1,
        "base=/api path=/x query="
    );
    assert_eq!(
        get_text(&server, "/api/x/y?q=1&r=2").await.1,
        "base=/api path=/x/y query=q=1&r=2"
    );
    assert_eq!(get_text(&server, "/apix").await.1, "fallback /apix");
    assert_eq!(get_text(&server, "/ap").await.1, "fallback /ap");
    assert_eq!(get_text(&server, "/API").await.1, "fallback /API");
    assert_eq!(get_text(&server, "/").await.1, "fallback /");
}

#[tokio::test]
async fn nested_maps_accumulate_path_base() {
    let app = Builder::new()
        .map("/api", |api| {
            api.map("/v1", |v1| v1.run(where_am_i)).run(where_am_i)
        })
        .run(fallback);
    let server = TestServer::new(app);
    assert_eq!(
        get_text(&server, "/api/v1/users").await.1,
        "base=/api/v1 path=/users query="
    );
    assert_eq!(
        get_text(&server, "/api/v1").await.1,
        "base=/api/v1 path= query="
    );
    assert_eq!(
        get_text(&server, "/api/v2/users").await.1,
        "base=/api path=/v2/users query="
    );
}

#[tokio::test]
async fn map_restores_path_and_path_base_after_the_branch() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();

    struct Observe(Arc<Mutex<Vec<String>>>);
    impl Middleware for Observe {
        fn call<'a>(
            &'a self,
            ctx: &'a mut HttpContext,
            next: Next<'a>,
        ) -> BoxFuture<'a, Result<()>> {
            Box::pin(async move {
                let result = next.run(ctx).await;
                let request = ctx.request();
                self.0.lock().unwrap().push(format!(
                    "after: base={:?} path={:?} ok={}",
                    request.path_base,
                    request.path,
                    result.is_ok()
                ));
                result
            })
        }
    }

    async fn fails(ctx: &mut HttpContext) -> Result<()> {
        // Even a branch that rewrites the path and fails is undone.
        ctx.request_mut().path = "/rewritten".to_owned();
        Err(Error::app_msg("branch failed"))
    }

    let app = Builder::new()
        .use_fn(Observe(seen.clone()))
        .map("/api", |api| {
            api.map("/v1", |v1| v1.run(where_am_i)).run(where_am_i)
        })
        .map("/bad", |bad| bad.run(fails))
        .run(fallback);
    let server = TestServer::new(app);

    assert_eq!(
        get_text(&server, "/api/v1/x").await.1,
        "base=/api/v1 path=/x query="
    );
    let (status, _) = get_text(&server, "/bad/thing").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            r#"after: base="" path="/api/v1/x" ok=true"#,
            r#"after: base="" path="/bad/thing" ok=false"#,
        ]
    );
}

#[test]
#[should_panic(expected = "a map prefix starts with '/'")]
fn map_rejects_a_prefix_with_a_trailing_slash() {
    let _ = Builder::new().map("/api/", |b| b.run(fallback));
}

#[tokio::test]
async fn a_tower_http_layer_adds_its_header() {
    let app = Builder::new()
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("x-layer"),
            HeaderValue::from_static("set-by-tower-http"),
        ))
        .run(where_am_i);
    let server = TestServer::new(app);
    let response = server.get("/hello?a=b").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-layer"], "set-by-tower-http");
    let body = "base= path=/hello query=a=b";
    assert_eq!(
        response.headers()["content-length"],
        body.len().to_string().as_str()
    );
    assert_eq!(response.text().await.unwrap(), body);
}

#[tokio::test]
async fn a_layer_overrides_a_header_the_handler_set() {
    async fn sets_header(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut()
            .headers
            .insert("x-layer", HeaderValue::from_static("from-handler"));
        ctx.response_mut()
            .headers
            .insert("x-handler", HeaderValue::from_static("kept"));
        ctx.write("body").await
    }
    let app = Builder::new()
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("x-layer"),
            HeaderValue::from_static("from-layer"),
        ))
        .run(sets_header);
    let server = TestServer::new(app);
    let response = server.get("/").send().await.unwrap();
    let layer: Vec<_> = response.headers().get_all("x-layer").iter().collect();
    assert_eq!(layer, ["from-layer"]);
    assert_eq!(response.headers()["x-handler"], "kept");
    assert_eq!(response.text().await.unwrap(), "body");
}

#[tokio::test]
async fn a_layer_inside_a_map_sees_the_mapped_path() {
    let app = Builder::new()
        .map("/api", |api| {
            api.layer(SetResponseHeaderLayer::overriding(
                HeaderName::from_static("x-api"),
                HeaderValue::from_static("1"),
            ))
            .run(where_am_i)
        })
        .run(fallback);
    let server = TestServer::new(app);
    let response = server.get("/api/items?n=3").send().await.unwrap();
    assert_eq!(response.headers()["x-api"], "1");
    assert_eq!(
        response.text().await.unwrap(),
        "base=/api path=/items query=n=3"
    );
    let response = server.get("/other").send().await.unwrap();
    assert!(!response.headers().contains_key("x-api"));
    assert_eq!(response.text().await.unwrap(), "fallback /other");
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Tenant(&'static str);

#[derive(Debug, Clone, PartialEq, Eq)]
struct HandledBy(String);

#[tokio::test]
async fn features_travel_through_a_layer_and_back() {
    let seen: Arc<Mutex<Option<String>>> = Arc::default();

    struct OuterWithId(Arc<Mutex<Option<String>>>);
    impl Middleware for OuterWithId {
        fn call<'a>(
            &'a self,
            ctx: &'a mut HttpContext,
            next: Next<'a>,
        ) -> BoxFuture<'a, Result<()>> {
            Box::pin(async move {
                ctx.features_mut().insert(Tenant("acme"));
                let result = next.run(ctx).await;
                let features = ctx.features();
                *self.0.lock().unwrap() = Some(format!(
                    "tenant={:?} handled={:?} request_id={}",
                    features.get::<Tenant>(),
                    features.get::<HandledBy>(),
                    ctx.request_id().is_some(),
                ));
                result
            })
        }
    }

    async fn inner(ctx: &mut HttpContext) -> Result<()> {
        let tenant = ctx.features().get::<Tenant>().cloned();
        ctx.features_mut()
            .insert(HandledBy(format!("inner for {tenant:?}")));
        ctx.write(format!("{tenant:?}")).await
    }

    let app = Builder::new()
        .use_fn(OuterWithId(seen.clone()))
        .layer(x_layer())
        .run(inner);
    let server = TestServer::new(app);
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.headers()["x-layer"], "1");
    assert_eq!(response.text().await.unwrap(), r#"Some(Tenant("acme"))"#);
    assert_eq!(
        seen.lock().unwrap().as_deref(),
        Some(
            r#"tenant=Some(Tenant("acme")) handled=Some(HandledBy("inner for Some(Tenant(\"acme\"))")) request_id=true"#
        )
    );
}

/// Records, after `next.run`, which features the outer side sees.
struct Outer(Arc<Mutex<Option<String>>>);

impl Middleware for Outer {
    fn call<'a>(&'a self, ctx: &'a mut HttpContext, next: Next<'a>) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            ctx.features_mut().insert(Tenant("acme"));
            let result = next.run(ctx).await;
            let features = ctx.features();
            *self.0.lock().unwrap() = Some(format!(
                "tenant={:?} handled={:?}",
                features.get::<Tenant>(),
                features.get::<HandledBy>(),
            ));
            result
        })
    }
}

/// Runs `inner` behind a layer, with [`Outer`] in front; returns the body and
/// what `Outer` saw.
async fn through_a_layer(inner: impl serverbridge::Application) -> (String, Option<String>) {
    let seen: Arc<Mutex<Option<String>>> = Arc::default();
    let app = Builder::new()
        .use_fn(Outer(seen.clone()))
        .layer(x_layer())
        .run(inner);
    let server = TestServer::new(app);
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.headers()["x-layer"], "1");
    let body = response.text().await.unwrap();
    let seen = seen.lock().unwrap().clone();
    (body, seen)
}

#[tokio::test]
async fn features_come_back_even_if_the_inner_app_awaits_after_completing() {
    async fn inner(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("done").await?;
        ctx.complete().await?;
        // Work after the response is complete (logging, say).
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        ctx.features_mut().insert(HandledBy("late".to_owned()));
        Ok(())
    }
    let (body, seen) = through_a_layer(inner).await;
    assert_eq!(body, "done");
    assert_eq!(
        seen.as_deref(),
        Some(r#"tenant=Some(Tenant("acme")) handled=Some(HandledBy("late"))"#)
    );
}

#[tokio::test]
async fn features_come_back_even_if_the_inner_app_awaits_after_send_body() {
    async fn inner(ctx: &mut HttpContext) -> Result<()> {
        ctx.send_body(http_body_util::Full::new(bytes::Bytes::from_static(
            b"pulled",
        )))
        .await?;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        ctx.features_mut()
            .insert(HandledBy("after send_body".to_owned()));
        Ok(())
    }
    let (body, seen) = through_a_layer(inner).await;
    assert_eq!(body, "pulled");
    assert_eq!(
        seen.as_deref(),
        Some(r#"tenant=Some(Tenant("acme")) handled=Some(HandledBy("after send_body"))"#)
    );
}

#[tokio::test]
async fn response_trailers_set_inside_a_layer_reach_the_client() {
    async fn inner(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("body").await?;
        ctx.features_mut()
            .get_mut::<serverbridge::feature::ResponseTrailers>()
            .ok_or_else(|| Error::unsupported("no ResponseTrailers"))?
            .headers
            .insert("x-sum", HeaderValue::from_static("42"));
        Ok(())
    }
    let app = Builder::new().layer(x_layer()).run(inner);
    let server = TestServer::new(app);
    let mut response = server.get("/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.read_to_end().await.unwrap(), "body");
    let trailers = response.trailers().expect("trailers");
    assert_eq!(trailers.len(), 1);
    assert_eq!(trailers["x-sum"], "42");
}

#[tokio::test]
async fn an_error_inside_a_layer_becomes_its_status() {
    async fn fails(_: &mut HttpContext) -> Result<()> {
        Err(Error::limit("too big", StatusCode::PAYLOAD_TOO_LARGE))
    }
    let app = Builder::new().layer(x_layer()).run(fails);
    let server = TestServer::new(app);
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.headers()["content-length"], "0");
    assert_eq!(response.text().await.unwrap(), "");
}

/// An application with its own context hooks, which it logs.
struct WithHooks {
    log: Log,
}

impl serverbridge::Application for WithHooks {
    fn create_context(&self, features: serverbridge::Features) -> HttpContext {
        self.log.push("create");
        HttpContext::new(features)
    }

    fn process_request<'a>(&'a self, ctx: &'a mut HttpContext) -> BoxFuture<'a, Result<()>> {
        self.log.push("process");
        Box::pin(async move { ctx.write("x").await })
    }

    fn dispose_context(&self, _ctx: &mut HttpContext, error: Option<&Error>) {
        self.log.push(format!("dispose error={}", error.is_some()));
    }
}

#[tokio::test]
async fn a_pipelines_context_hooks_are_its_final_applications() {
    // Through a middleware and a map that does not match: the final app's
    // create_context and dispose_context run, in the lifecycle's order.
    async fn pass(ctx: &mut HttpContext, next: Next<'_>) -> Result<()> {
        next.run(ctx).await
    }
    let log = Log::default();
    let app = Builder::new()
        .use_fn(pass)
        .map("/elsewhere", |branch| {
            branch.run(from_fn(|_ctx| Box::pin(async { Ok(()) })))
        })
        .run(WithHooks { log: log.clone() });
    let (features, _recording) = serverbridge::testing::RecordingSink::features("GET", "/");
    let outcome = serverbridge::lifecycle::run_request(&app, features).await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(log.entries(), ["create", "process", "dispose error=false"]);
}

#[tokio::test(start_paused = true)]
async fn map_restores_the_path_when_the_branch_is_dropped() {
    use std::time::Duration;
    async fn gives_up(ctx: &mut HttpContext, next: Next<'_>) -> Result<()> {
        let _ = tokio::time::timeout(Duration::from_millis(100), next.run(ctx)).await;
        let r = ctx.request();
        let text = format!("base={:?} path={:?}", r.path_base, r.path);
        ctx.write(text).await
    }
    async fn slow(ctx: &mut HttpContext) -> Result<()> {
        tokio::time::sleep(Duration::from_secs(5)).await;
        ctx.write("late").await
    }
    async fn hello(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("hello").await
    }
    let server = TestServer::new(
        Builder::new()
            .use_fn(gives_up)
            .map("/api", |b| b.run(slow))
            .run(hello),
    );
    let text = server
        .get("/api/x")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, r#"base="" path="/api/x""#);
}

#[tokio::test(start_paused = true)]
async fn a_flush_behind_a_layer_reaches_the_client_at_once() {
    use http_body_util::BodyExt;
    use serverbridge::testing::Mode;
    use std::time::Duration;
    async fn streams(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("event: 1\n\n").await?;
        ctx.flush().await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        ctx.write("event: 2\n\n").await
    }
    async fn whole(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("all at once").await
    }
    for mode in [Mode::Direct, Mode::Wire] {
        let server = TestServer::new(Builder::new().layer(x_layer()).run(streams)).with_mode(mode);
        // The clock is paused: a second passes only if nothing else can run.
        let limit = Duration::from_secs(1);
        let response = tokio::time::timeout(limit, server.get("/").send())
            .await
            .unwrap_or_else(|_| panic!("{mode:?}: no head before the app's pause"))
            .unwrap();
        assert_eq!(response.headers()["x-layer"], "1");
        let mut body = response.into_http().into_body();
        let frame = tokio::time::timeout(limit, body.frame())
            .await
            .unwrap_or_else(|_| panic!("{mode:?}: no event before the app's pause"));
        let data = frame.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&data[..], b"event: 1\n\n", "{mode:?}");
        // A whole body still goes out with its length, in one piece.
        let server = TestServer::new(Builder::new().layer(x_layer()).run(whole)).with_mode(mode);
        let response = server.get("/").send().await.unwrap();
        assert_eq!(response.headers()["content-length"], "11", "{mode:?}");
    }
}

#[tokio::test]
async fn an_abort_behind_a_layer_is_still_an_abort() {
    use serverbridge::testing::Mode;
    async fn aborts(ctx: &mut HttpContext) -> Result<()> {
        ctx.abort();
        Ok(())
    }
    for mode in [Mode::Direct, Mode::Wire] {
        let server = TestServer::new(Builder::new().layer(x_layer()).run(aborts)).with_mode(mode);
        let outcome = server.get("/").send().await.map(|r| r.status());
        assert!(outcome.is_err(), "{mode:?}: {outcome:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_layer_that_gives_up_on_the_inner_call_leaves_the_request_alive() {
    use serverbridge::testing::Mode;
    use std::time::Duration;
    /// Records what the outer side sees once the layer returned.
    struct Outer(Arc<Mutex<String>>);
    impl Middleware for Outer {
        fn call<'a>(
            &'a self,
            ctx: &'a mut HttpContext,
            next: Next<'a>,
        ) -> BoxFuture<'a, Result<()>> {
            Box::pin(async move {
                let result = next.run(ctx).await;
                *self.0.lock().unwrap() = format!(
                    "aborted={} lifetime_fired={} request_id={} error={}",
                    ctx.is_aborted(),
                    ctx.lifetime().is_some_and(|l| l.is_cancelled()),
                    ctx.request_id().is_some(),
                    result.is_err(),
                );
                result
            })
        }
    }
    async fn slow(ctx: &mut HttpContext) -> Result<()> {
        tokio::time::sleep(Duration::from_secs(5)).await;
        ctx.write("late").await
    }
    for mode in [Mode::Direct, Mode::Wire] {
        let seen = Arc::new(Mutex::new(String::new()));
        let app = Builder::new()
            .use_fn(Outer(seen.clone()))
            .layer(tower::timeout::TimeoutLayer::new(Duration::from_millis(
                100,
            )))
            .run(slow);
        let server = TestServer::new(app).with_mode(mode);
        let response = server.get("/").send().await.expect("a response");
        // The layer's error is answered 500, on a request neither aborted
        // nor cancelled: the client is still there.
        assert_eq!(
            response.status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "{mode:?}"
        );
        assert_eq!(
            *seen.lock().unwrap(),
            "aborted=false lifetime_fired=false request_id=true error=true",
            "{mode:?}"
        );
    }
}
