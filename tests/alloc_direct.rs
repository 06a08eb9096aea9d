//! Heap allocations per request through TestServer direct mode: a hello app,
//! requests one after another. Its own test binary, because it installs a
//! counting global allocator.

#![cfg(feature = "test-util")]

use http::header::CONTENT_TYPE;
use http::HeaderValue;
use serverbridge::testing::TestServer;
use serverbridge::{HttpContext, Result};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

async fn hello(ctx: &mut HttpContext) -> Result<()> {
    ctx.response_mut()
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    ctx.write("Hello, World!").await
}

#[test]
fn a_direct_request_allocates_three_times() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (allocations, requests) = runtime.block_on(async {
        let server = TestServer::new(hello);
        // Warm up: the first requests build the collection, the pipe and
        // the driver's slot that later ones reuse.
        for _ in 0..50 {
            let body = server.get("/").send().await.unwrap().bytes().await.unwrap();
            assert_eq!(body, "Hello, World!");
        }
        let requests = 500u64;
        let before = dhat::HeapStats::get().total_blocks;
        for _ in 0..requests {
            let body = server.get("/").send().await.unwrap().bytes().await.unwrap();
            assert_eq!(body, "Hello, World!");
        }
        (dhat::HeapStats::get().total_blocks - before, requests)
    });
    let per_request = allocations as f64 / requests as f64;
    println!("{per_request:.3} heap allocations per direct request");
    // The app's boxed future (`Application` is object-safe) and the two
    // blocks of the response's header map, the test's own copy of the head
    // (the app may still read its headers). The collection, the pipe, the
    // driver's slot and the request id are reused; the `Content-Length` is
    // static text.
    assert_eq!(
        allocations,
        3 * requests,
        "{per_request:.3} allocations per request over {requests} requests"
    );
}
