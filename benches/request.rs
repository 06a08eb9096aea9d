//! Run with: cargo bench --bench request
#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]
//!
//! One GET through TestServer into a hello app: in direct mode on the
//! feature path and through the OWIN `AppFunc` bridge, and in wire mode
//! (HTTP/1.1 bytes through the built-in engine) on one kept-alive connection
//! and on a new connection per request. Each sample runs a batch of requests
//! inside one `block_on`, so the figure is the cost of a request, not of
//! entering the runtime; requests per second = 1 / time.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use http::header::CONTENT_TYPE;
use http::HeaderValue;
use serverbridge::owin::{keys, Environment, OwinApp};
use serverbridge::testing::{ClientConnection, Connector, Mode, TestServer};
use serverbridge::{HttpContext, Result, Server};

async fn hello(ctx: &mut HttpContext) -> Result<()> {
    ctx.response_mut()
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    ctx.write("Hello, World!").await
}

async fn hello_owin(env: &mut Environment) -> Result<()> {
    env.headers_mut(keys::RESPONSE_HEADERS)
        .expect("response headers")
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    env.write("Hello, World!").await
}

fn run_batch(rt: &tokio::runtime::Runtime, server: &TestServer, iterations: u64) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iterations {
            let response = server.get("/").send().await.expect("response");
            let body = response.bytes().await.expect("body");
            assert_eq!(body.len(), 13);
        }
        start.elapsed()
    })
}

fn direct(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let features = TestServer::new(hello);
    let owin = TestServer::new(OwinApp::new(hello_owin));
    let mut group = c.benchmark_group("test_server_direct");
    group.bench_function("hello_features", |b| {
        b.iter_custom(|n| run_batch(&rt, &features, n))
    });
    group.bench_function("hello_owin", |b| {
        b.iter_custom(|n| run_batch(&rt, &owin, n))
    });
    group.finish();
}

fn run_connection(
    rt: &tokio::runtime::Runtime,
    conn: &mut ClientConnection,
    iterations: u64,
) -> Duration {
    use http_body_util::BodyExt;
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iterations {
            let request = http::Request::get("/")
                .header("host", "localhost")
                .body(Default::default())
                .expect("request");
            let response = conn.send(request).await.expect("response");
            let body = response.into_body().collect().await.expect("body");
            assert_eq!(body.to_bytes().len(), 13);
        }
        start.elapsed()
    })
}

fn wire(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = TestServer::new(hello).with_mode(Mode::Wire);
    let connector = server
        .features()
        .get::<Connector>()
        .expect("connector")
        .clone();
    let mut conn = rt.block_on(connector.connect()).expect("connection");
    let mut group = c.benchmark_group("test_server_wire");
    group.bench_function("hello_keep_alive", |b| {
        b.iter_custom(|n| run_connection(&rt, &mut conn, n))
    });
    group.bench_function("hello_new_connection", |b| {
        b.iter_custom(|n| run_batch(&rt, &server, n))
    });
    group.finish();
}

criterion_group!(benches, direct, wire);
criterion_main!(benches);
