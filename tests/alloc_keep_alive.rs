//! Heap allocations per keep-alive request on the built-in server: the
//! plaintext app, one connection, requests one after another. Its own test
//! binary, because it installs a counting global allocator.

use std::sync::Arc;

use http::header::{CONTENT_TYPE, SERVER};
use http::HeaderValue;
use serverbridge::feature::ConnectionInfo;
use serverbridge::server::{HttpServer, Limits};
use serverbridge::{HttpContext, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

async fn plaintext(ctx: &mut HttpContext) -> Result<()> {
    let headers = &mut ctx.response_mut().headers;
    headers.insert(SERVER, HeaderValue::from_static("serverbridge"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    ctx.write(&b"Hello, World!"[..]).await
}

async fn one_request(client: &mut DuplexStream, buf: &mut [u8]) {
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut got = 0;
    while !buf[..got].ends_with(b"Hello, World!") {
        let n = client.read(&mut buf[got..]).await.unwrap();
        assert!(n > 0, "the server closed the connection");
        got += n;
    }
    assert!(buf.starts_with(b"HTTP/1.1 200 OK\r\n"));
}

#[test]
fn a_plaintext_keep_alive_request_allocates_once() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let (per_request, requests) = runtime.block_on(async {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(HttpServer::serve_connection(
            server,
            ConnectionInfo::default(),
            Arc::new(plaintext),
            Limits::default(),
        ));
        let mut buf = vec![0u8; 4096];
        // Warm up: the connection builds the state it reuses.
        for _ in 0..50 {
            one_request(&mut client, &mut buf).await;
        }
        let requests = 500u64;
        let before = dhat::HeapStats::get().total_blocks;
        for _ in 0..requests {
            one_request(&mut client, &mut buf).await;
        }
        let allocations = dhat::HeapStats::get().total_blocks - before;
        (allocations, requests)
    });
    let (allocations, requests) = (per_request, requests);
    let per_request = allocations as f64 / requests as f64;
    // The cached `Date` value is formatted anew once per second (three
    // allocations: the text, the value's copy of it, and the shared count the
    // value's first clone makes): per second of run time, not per request.
    let date_refreshes = 3 * (started.elapsed().as_secs() + 1);
    println!("{per_request:.3} heap allocations per keep-alive request");
    // One per request: the app's boxed future (`Application` is object-safe).
    // The request's lifetime is renewed in place, buffers come from the pool
    // and are reclaimed whole, so nothing else allocates, not even now and
    // then.
    assert!(
        allocations <= requests + date_refreshes,
        "{per_request:.3} allocations per request over {requests} requests"
    );
}
