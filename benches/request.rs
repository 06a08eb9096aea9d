//! Run with: cargo bench --bench request
#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]
//!
//! One GET through TestServer's direct mode into a hello app, on the feature
//! path and through the OWIN `AppFunc` bridge. Each sample runs a batch of
//! requests inside one `block_on`, so the figure is the cost of a request,
//! not of entering the runtime.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use http::header::CONTENT_TYPE;
use http::HeaderValue;
use serverbridge::owin::{keys, Environment, OwinApp};
use serverbridge::testing::TestServer;
use serverbridge::{HttpContext, Result};

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

criterion_group!(benches, direct);
criterion_main!(benches);
