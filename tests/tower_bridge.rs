//! tower both ways: an axum `Router` as an Application, and an Application as
//! a `tower::Service`.

#![cfg(feature = "test-util")]

#[path = "support/keeper.rs"]
mod keeper;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query};
use axum::routing::{get, post};
use axum::{Extension, Router};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use serverbridge::application::from_fn;
use serverbridge::testing::TestServer;
use serverbridge::tower::{AppService, PathBase, ServiceApp};
use serverbridge::{Builder, HttpContext, Result};
use tokio::sync::oneshot;
use tower::ServiceExt;
use tower_http::set_header::SetResponseHeaderLayer;

fn router() -> Router {
    Router::new()
        .route(
            "/users/{id}",
            get(
                |Path(id): Path<u32>, Query(query): Query<BTreeMap<String, String>>| async move {
                    format!("user {id} query {query:?}")
                },
            ),
        )
        .route("/echo", post(|body: Bytes| async move { body }))
        .route("/uri", get(|uri: Uri| async move { uri.to_string() }))
        .route(
            "/base",
            get(|Extension(base): Extension<PathBase>| async move { base.0 }),
        )
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("x-powered-by"),
            HeaderValue::from_static("axum"),
        ))
}

#[tokio::test]
async fn axum_router_with_extractors_runs_on_the_test_server() {
    let server = TestServer::new(ServiceApp::new(router()));

    let response = server.get("/users/42?b=2&a=1").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-powered-by"], "axum");
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    let body = r#"user 42 query {"a": "1", "b": "2"}"#;
    assert_eq!(
        response.headers()["content-length"],
        body.len().to_string().as_str()
    );
    assert_eq!(response.text().await.unwrap(), body);
}

#[tokio::test]
async fn axum_post_echoes_the_body() {
    let server = TestServer::new(ServiceApp::new(router()));
    let response = server
        .post("/echo")
        .header("content-type", "application/octet-stream")
        .body("ping pong")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-powered-by"], "axum");
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    assert_eq!(response.headers()["content-length"], "9");
    assert_eq!(response.text().await.unwrap(), "ping pong");
}

#[tokio::test]
async fn axum_post_echoes_a_streamed_body() {
    let server = TestServer::new(ServiceApp::new(router()));
    let chunks = ["one ", "two ", "three"].map(|c| Ok::<_, std::io::Error>(Bytes::from(c)));
    let response = server
        .post("/echo")
        .body_stream(futures::stream::iter(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "one two three");
}

#[tokio::test]
async fn axum_answers_404_for_an_unknown_route_and_405_for_a_wrong_method() {
    let server = TestServer::new(ServiceApp::new(router()));
    let response = server.get("/nowhere").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["x-powered-by"], "axum");
    assert_eq!(response.headers()["content-length"], "0");
    assert_eq!(response.text().await.unwrap(), "");

    let response = server.get("/echo").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
}

#[tokio::test]
async fn axum_rejects_a_bad_path_parameter_with_400() {
    let server = TestServer::new(ServiceApp::new(router()));
    let response = server.get("/users/abc").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()["x-powered-by"], "axum");
}

#[tokio::test]
async fn axum_router_under_map_sees_the_path_without_the_prefix() {
    async fn fallback(ctx: &mut HttpContext) -> Result<()> {
        let text = format!("fallback {}", ctx.request().path);
        ctx.write(text).await
    }
    let app = Builder::new()
        .map("/api", |api| api.run(ServiceApp::new(router())))
        .run(fallback);
    let server = TestServer::new(app);

    let response = server.get("/api/uri?x=1").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "/uri?x=1");

    let response = server.get("/api/users/7?q=z").send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), r#"user 7 query {"q": "z"}"#);

    let response = server.get("/api/base").send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "/api");

    // Outside the prefix the router is not involved.
    let response = server.get("/users/7").send().await.unwrap();
    assert!(!response.headers().contains_key("x-powered-by"));
    assert_eq!(response.text().await.unwrap(), "fallback /users/7");

    // An unknown route under the prefix is axum's 404.
    let response = server.get("/api/nowhere").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["x-powered-by"], "axum");
}

#[tokio::test]
async fn headers_set_before_the_service_are_merged_with_its_own() {
    async fn server_header(ctx: &mut HttpContext, next: serverbridge::Next<'_>) -> Result<()> {
        let headers = &mut ctx.response_mut().headers;
        headers.insert("server", HeaderValue::from_static("serverbridge"));
        headers.insert("x-powered-by", HeaderValue::from_static("outer"));
        next.run(ctx).await
    }
    let app = Builder::new()
        .use_fn(server_header)
        .run(ServiceApp::new(router()));
    let server = TestServer::new(app);
    let response = server.get("/uri").send().await.unwrap();
    assert_eq!(response.headers()["server"], "serverbridge");
    let powered: Vec<_> = response.headers().get_all("x-powered-by").iter().collect();
    assert_eq!(
        powered,
        ["axum"],
        "the service's value replaces the outer one"
    );
}

#[tokio::test]
async fn an_application_served_through_oneshot() {
    async fn hello(ctx: &mut HttpContext) -> Result<()> {
        let text = format!(
            "{} {} {}",
            ctx.request().method,
            ctx.request().path,
            ctx.request().query
        );
        ctx.response_mut()
            .headers
            .insert("content-type", HeaderValue::from_static("text/plain"));
        ctx.write(text).await
    }
    let request = Request::put("/items/1?full=yes")
        .body(String::new())
        .unwrap();
    let response = AppService::new(hello).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(response.headers()["content-length"], "21");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "PUT /items/1 full=yes");
}

#[tokio::test]
async fn an_application_reads_the_request_body_through_oneshot() {
    async fn echo(ctx: &mut HttpContext) -> Result<()> {
        let body = ctx.read_body(1024).await?;
        ctx.response_mut().status = StatusCode::CREATED;
        ctx.write(body).await
    }
    let request = Request::post("/")
        .body(Full::new(Bytes::from_static(b"request body")))
        .unwrap();
    let response = AppService::new(echo).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["content-length"], "12");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "request body");
}

#[tokio::test]
async fn an_application_error_through_oneshot_is_a_500() {
    async fn fails(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut()
            .headers
            .insert("x-lost", HeaderValue::from_static("1"));
        Err(serverbridge::Error::app_msg("boom"))
    }
    let request = Request::get("/").body(String::new()).unwrap();
    let response = AppService::new(fails).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.headers().len(), 1);
    assert_eq!(response.headers()["content-length"], "0");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(body.is_empty());
}

#[tokio::test]
async fn a_streaming_application_through_app_service_yields_chunks_in_order() {
    async fn stream(ctx: &mut HttpContext) -> Result<()> {
        for chunk in ["alpha", "beta", "gamma"] {
            ctx.write(chunk).await?;
            ctx.flush().await?;
        }
        Ok(())
    }
    let request = Request::get("/").body(String::new()).unwrap();
    let response = AppService::new(stream).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!response.headers().contains_key("content-length"));
    let mut body = response.into_body();
    let mut chunks = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.unwrap();
        chunks.push(frame.into_data().unwrap());
    }
    assert_eq!(chunks, ["alpha", "beta", "gamma"]);
}

#[tokio::test]
async fn a_body_is_one_buffer_only_when_the_app_finished_before_the_head_was_read() {
    async fn whole(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("whole").await
    }
    async fn streamed(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("first").await?;
        ctx.flush().await?;
        tokio::task::yield_now().await;
        ctx.write("second").await
    }
    let get = || Request::get("/").body(String::new()).unwrap();
    // Done before the head was taken: the rest is here, and the lifecycle
    // is over (taking it is reading the body to its end).
    let response = AppService::new(whole).oneshot(get()).await.unwrap();
    assert_eq!(response.into_body().try_into_bytes().unwrap(), "whole");
    // Taken after its chunk was read: the rest is empty.
    let mut body = AppService::new(whole)
        .oneshot(get())
        .await
        .unwrap()
        .into_body();
    let frame = body.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "whole");
    assert_eq!(body.try_into_bytes().unwrap(), "");
    // Still running when the head was taken: the body comes back, unread.
    let response = AppService::new(streamed).oneshot(get()).await.unwrap();
    let body = response.into_body().try_into_bytes().unwrap_err();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, "firstsecond");
}

#[tokio::test]
async fn dropping_the_response_body_early_fires_the_request_lifetime() {
    let (tx, rx) = oneshot::channel::<(bool, bool)>();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let app = from_fn(move |ctx| {
        let tx = tx.clone();
        Box::pin(async move {
            ctx.write("first").await?;
            ctx.flush().await?;
            ctx.lifetime().unwrap().cancelled().await;
            // A write after the client left fails as closed.
            let write_failed_closed = match ctx.write("second").await {
                Ok(()) => ctx.flush().await.is_err_and(|e| e.is_closed()),
                Err(e) => e.is_closed(),
            };
            if let Some(tx) = tx.lock().unwrap().take() {
                let _ = tx.send((ctx.is_aborted(), write_failed_closed));
            }
            Ok(())
        })
    });
    let request = Request::get("/").body(String::new()).unwrap();
    let response = AppService::new(app).oneshot(request).await.unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "first");
    drop(body);

    let (aborted, write_failed_closed) = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .expect("the app saw the cancellation in time")
        .expect("the app reported");
    assert!(aborted, "ctx.is_aborted() after the client went away");
    assert!(
        write_failed_closed,
        "writes after the client left fail as closed"
    );
}

#[tokio::test]
async fn dispose_runs_after_the_client_went_away() {
    struct App(Arc<Mutex<Option<oneshot::Sender<String>>>>);
    impl serverbridge::Application for App {
        fn process_request<'a>(
            &'a self,
            ctx: &'a mut HttpContext,
        ) -> futures::future::BoxFuture<'a, Result<()>> {
            Box::pin(async move {
                ctx.write("x").await?;
                ctx.flush().await?;
                ctx.lifetime().unwrap().cancelled().await;
                Err(serverbridge::Error::aborted("client left"))
            })
        }
        fn dispose_context(&self, _: &mut HttpContext, error: Option<&serverbridge::Error>) {
            if let Some(tx) = self.0.lock().unwrap().take() {
                let _ = tx.send(error.map_or("none".to_owned(), |e| e.to_string()));
            }
        }
    }
    let (tx, rx) = oneshot::channel();
    let service = AppService::new(App(Arc::new(Mutex::new(Some(tx)))));
    let request = Request::get("/").body(String::new()).unwrap();
    let response = service.oneshot(request).await.unwrap();
    drop(response);
    let disposed = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(disposed, "request aborted: client left");
}

#[tokio::test]
async fn call_pooled_renews_the_lifetime_unless_the_app_kept_it() {
    use serverbridge::feature::RequestFeature;
    use serverbridge::{FeaturePool, Features};

    let service = AppService::new(keeper::lifetime_keeper());
    let pool = Arc::new(FeaturePool::default());
    let request = |features: Option<Features>, path: &str| {
        let mut features = features.unwrap_or_else(|| {
            let mut fresh = Features::new();
            fresh.insert(RequestFeature::default());
            fresh
        });
        let (parts, ()) = Request::get(path).body(()).unwrap().into_parts();
        let feature = features.get_mut::<RequestFeature>().unwrap();
        feature.refill(parts, Default::default(), None);
        features
    };
    let read = |response: http::Response<serverbridge::PipeBody>| async move {
        let body = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    };
    // Runs twice: the second time the app's clone is gone and the pooled
    // collection's lifetime is renewed in place, never aborted from before.
    for _ in 0..2 {
        let first = service
            .call_pooled(request(pool.take(), "/keep"), &pool)
            .await
            .unwrap();
        assert_eq!(read(first).await, "kept");
        let second = service
            .call_pooled(request(pool.take(), "/next"), &pool)
            .await
            .unwrap();
        assert_eq!(read(second).await, "fired=false");
    }
}

#[tokio::test]
async fn a_pooled_collections_sink_is_shut_until_the_next_call() {
    use serverbridge::feature::{RequestFeature, ResponseBody};
    use serverbridge::{FeaturePool, Features};

    let service = AppService::new(from_fn(|ctx: &mut HttpContext| {
        Box::pin(async move { ctx.write("hi").await })
    }));
    let pool = Arc::new(FeaturePool::default());
    let mut features = Features::new();
    features.insert(RequestFeature::default());
    // The response is whole once the head is out (the app completed at
    // once), so the collection is back while its body is still unread.
    let unread = service.call_pooled(features, &pool).await.unwrap();
    let mut idle = pool.take().expect("recycled");
    let sink = idle
        .get_dyn_mut::<dyn ResponseBody>()
        .expect("the slot stays");
    let err = sink.write(Bytes::from_static(b"stale")).await.unwrap_err();
    assert!(err.is_closed(), "{err}");
    // Nothing a stale sink does reaches the reader still on that pipe.
    sink.abort(&serverbridge::Error::app_msg("stale"));
    sink.complete(None).await.unwrap();
    let body = unread.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "hi");
    // The next call opens it again.
    let response = service.call_pooled(idle, &pool).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "hi");
}

// ------------------------------------------------- the target, as received

fn x_layer() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(
        HeaderName::from_static("x-layer"),
        HeaderValue::from_static("1"),
    )
}

/// The request as the app sees it.
async fn describe(ctx: &mut HttpContext) -> Result<()> {
    let r = ctx.request();
    let text = format!(
        "scheme={} base={:?} path={:?} query={:?} raw={:?}",
        r.scheme, r.path_base, r.path, r.query, r.raw_target
    );
    ctx.write(text).await
}

/// Sends `target` on the wire (the built-in engine takes targets a client
/// library would refuse) and returns the status line and the body.
async fn raw_get(server: &TestServer, target: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut io = server.raw().unwrap();
    let head = format!("GET {target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    io.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), io.read_to_end(&mut out))
        .await
        .expect("the server closes")
        .unwrap();
    let out = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head.lines().next().unwrap_or("").to_owned();
    (status, body.to_owned())
}

/// The built-in engine's limits with its one leniency switch on.
fn lenient_targets() -> serverbridge::server::Limits {
    serverbridge::server::Limits {
        allow_unencoded_target_characters: true,
        ..serverbridge::server::Limits::default()
    }
}

#[tokio::test]
async fn a_target_uri_refuses_reaches_a_router_encoded_not_as_the_root() {
    let router = Router::new()
        .route("/", get(|| async { "home" }))
        .route(
            "/search",
            get(
                |axum::extract::RawQuery(q): axum::extract::RawQuery| async move {
                    format!("search {}", q.unwrap_or_default())
                },
            ),
        )
        .fallback(|uri: Uri| async move { (StatusCode::NOT_FOUND, format!("no route for {uri}")) });
    // Characters RFC 3986 leaves out are 400 by default; taken as sent
    // with the leniency switch, they must still reach the router.
    let server = TestServer::new(ServiceApp::new(router))
        .with_mode(serverbridge::testing::Mode::Wire)
        .with_limits(lenient_targets());
    let (status, body) = raw_get(&server, "/search?q=\"rust\"").await;
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 200 OK", "search q=%22rust%22")
    );
    for (target, uri) in [("/admin`x", "/admin%60x"), ("/a<b>", "/a%3Cb%3E")] {
        let (status, body) = raw_get(&server, target).await;
        assert_eq!(status, "HTTP/1.1 404 Not Found", "{target}: {body}");
        assert_eq!(body, format!("no route for {uri}"));
    }
}

#[tokio::test]
async fn a_layer_changes_nothing_of_the_request_the_inner_app_sees() {
    let plain = TestServer::new(
        Builder::new()
            .map("/api", |b| b.run(describe))
            .run(describe),
    )
    .with_tls(serverbridge::feature::TlsInfo::default())
    .with_mode(serverbridge::testing::Mode::Wire)
    .with_limits(lenient_targets());
    let layered = TestServer::new(
        Builder::new()
            .layer(x_layer())
            .map("/api", |b| b.layer(x_layer()).run(describe))
            .run(describe),
    )
    .with_tls(serverbridge::feature::TlsInfo::default())
    .with_mode(serverbridge::testing::Mode::Wire)
    .with_limits(lenient_targets());
    for target in ["/x?y=1", "/api", "/api/items?n=1", "/a`b", "/x?q=a\"b"] {
        let (_, without) = raw_get(&plain, target).await;
        let (status, with) = raw_get(&layered, target).await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(without.starts_with("scheme=https"), "{without}");
        assert_eq!(with, without, "{target}: a layer changed the request");
    }
    // A layer that rewrites the URI is what the inner app then sees.
    let rewrites = TestServer::new(
        Builder::new()
            .layer(tower::util::MapRequestLayer::new(
                |mut r: Request<serverbridge::body::RequestBody>| {
                    *r.uri_mut() = Uri::from_static("/rewritten?z=9");
                    r
                },
            ))
            .run(describe),
    );
    let text = rewrites
        .get("/x?y=1")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains(r#"path="/rewritten" query="z=9""#), "{text}");
}

#[tokio::test]
async fn a_service_status_comes_with_its_own_reason_not_an_earlier_one() {
    async fn reason(ctx: &mut HttpContext, next: serverbridge::Next<'_>) -> Result<()> {
        ctx.response_mut().reason = Some("All Good".into());
        next.run(ctx).await
    }
    let router = Router::new().route("/", get(|| async { "home" }));
    let server = TestServer::new(Builder::new().use_fn(reason).run(ServiceApp::new(router)))
        .with_mode(serverbridge::testing::Mode::Wire);
    let response = server.get("/missing").send().await.unwrap();
    assert_eq!(
        (response.status().as_u16(), response.reason()),
        (404, "Not Found")
    );
}

#[tokio::test]
async fn an_aborted_response_body_stays_failed_when_polled_again() {
    async fn fails_after_head(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("partial").await?;
        ctx.flush().await?;
        Err(serverbridge::Error::app_msg("boom"))
    }
    let request = Request::builder()
        .uri("/")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = AppService::new(fails_after_head)
        .oneshot(request)
        .await
        .unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), "partial");
    for _ in 0..2 {
        let next = body.frame().await;
        assert!(
            matches!(&next, Some(Err(err)) if err.is_aborted()),
            "{next:?}"
        );
    }
}
