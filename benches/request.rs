//! Run with: cargo bench --bench request
#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]
//!
//! One GET through TestServer into a hello app: in direct mode on the
//! feature path and through the OWIN `AppFunc` bridge, and in wire mode
//! (HTTP/1.1 bytes through the built-in engine) on one kept-alive connection
//! with hyper's client, on a new connection per request, and 16 requests
//! pipelined at a time on one raw connection (the engine without a client). Each sample runs a batch of requests
//! inside one `block_on`, so the figure is the cost of a request, not of
//! entering the runtime; requests per second = 1 / time.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use serverbridge::owin::OwinApp;
use serverbridge::testing::{ClientConnection, Connector, Mode, TestServer};
use serverbridge::Server;

#[path = "support/apps.rs"]
mod apps;
use apps::{hello, hello_owin, pipelined};

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

/// `iterations` requests pipelined 16 at a time on one raw connection: the
/// engine's own cost without an HTTP client's.
fn run_pipelined(
    rt: &tokio::runtime::Runtime,
    io: &mut tokio::io::DuplexStream,
    iterations: u64,
) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        pipelined(io, iterations).await;
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
    let mut raw = rt.block_on(async { server.raw() }).expect("raw connection");
    group.bench_function("hello_pipelined_16", |b| {
        b.iter_custom(|n| run_pipelined(&rt, &mut raw, n))
    });
    group.finish();
}

criterion_group!(benches, direct, wire);
criterion_main!(benches);
