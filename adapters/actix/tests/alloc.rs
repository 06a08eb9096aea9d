//! Heap allocations per keep-alive request on `ActixServer`: the plaintext
//! app, one connection, requests one after another. Its own test binary,
//! because it installs a counting global allocator.
//!
//! The bound guards the adapter's reuse: each worker refills one finished
//! request's feature collection (pipe, sink and driver slot included) for
//! the next, rather than building them anew per request.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use http::header::{CONTENT_TYPE, SERVER};
use http::HeaderValue;
use serverbridge::{HttpContext, Result, Server};
use serverbridge_actix::ActixServer;

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

async fn plaintext(ctx: &mut HttpContext) -> Result<()> {
    let headers = &mut ctx.response_mut().headers;
    headers.insert(SERVER, HeaderValue::from_static("serverbridge"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    ctx.write(&b"Hello, World!"[..]).await
}

fn one_request(client: &mut TcpStream, buf: &mut [u8]) {
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut got = 0;
    while !buf[..got].ends_with(b"Hello, World!") {
        let n = client.read(&mut buf[got..]).unwrap();
        assert!(n > 0, "the server closed the connection");
        got += n;
    }
    assert!(buf.starts_with(b"HTTP/1.1 200 OK\r\n"));
}

#[test]
fn a_keep_alive_request_on_actix_allocates_a_bounded_number_of_times() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut server = ActixServer::new()
        .workers(1)
        .bind("127.0.0.1:0".parse().unwrap());
    runtime
        .block_on(server.start(Arc::new(plaintext)))
        .expect("start");
    let addr = support::address(&server);
    let mut client = TcpStream::connect(addr).unwrap();
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut buf = vec![0u8; 4096];
    // Warm up: the worker and the connection build what they reuse.
    for _ in 0..50 {
        one_request(&mut client, &mut buf);
    }
    let requests = 500u64;
    let started = std::time::Instant::now();
    let before = dhat::HeapStats::get().total_blocks;
    for _ in 0..requests {
        one_request(&mut client, &mut buf);
    }
    let allocations = dhat::HeapStats::get().total_blocks - before;
    let seconds = started.elapsed().as_secs() + 1;
    drop(client);
    runtime
        .block_on(server.stop(tokio::time::Instant::now() + std::time::Duration::from_secs(5)))
        .expect("stop");
    let per_request = allocations as f64 / requests as f64;
    println!("{per_request:.3} heap allocations per keep-alive request");
    assert!(
        allocations <= BOUND_PER_REQUEST * requests + PER_SECOND * seconds,
        "{per_request:.3} allocations per request over {requests} requests"
    );
}

/// Ten: actix's own share (its request and its service futures) and the
/// adapter's: the app's boxed future and the stop-deadline wrapper's, the
/// response header map the pipe hands over, and the copies of the request's
/// header values into `http` 1.x and of the response's into `http` 0.2 (a
/// lone `Host` repeated on the connection is not copied again; the target
/// goes into the request's strings without an `http::Uri`). A new
/// collection, pipe and driver per request would be 17 more.
const BOUND_PER_REQUEST: u64 = 10;

/// What actix's clock allocates now and then, by time rather than by
/// request (its cached `Date`).
const PER_SECOND: u64 = 8;
