//! Run with: scripts/instructions [MODE...]
//!
//! A fixed number of requests through one path, for counting instructions
//! and allocations per request under valgrind (`scripts/instructions` runs
//! it at two counts and prints the difference per request, which removes
//! start-up). Wall-clock timings on a shared machine drift by ±15%;
//! instruction counts do not, so they are what a change to the per-request
//! path is judged by.
//!
//! Usage: `instructions N MODE`, MODE one of:
//!
//! - `direct`: TestServer direct mode, hello app (the feature path);
//! - `owin`: the same through the OWIN `AppFunc` bridge;
//! - `pipelined`: TestServer wire mode (the built-in server's engine over an
//!   in-memory duplex), 16 requests pipelined at a time;
//! - `keep-alive`: the same, one request at a time (each waits for its
//!   response): what a connection pays to wait between requests;
//! - `hyper`: `HyperServer` (HTTP/1 only, `pipeline_flush`) on 127.0.0.1, 16
//!   pipelined at a time over TCP;
//! - `raw-hyper`: raw hyper with the same handler, the same way.
//!
//! The client's own work is in every figure (about 1,500 instructions per
//! request in the pipelined modes), so compare modes that share a client.
#![allow(missing_docs, reason = "a measuring binary, not an API")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::HeaderValue;
use http_body_util::Full;
use serverbridge::owin::OwinApp;
use serverbridge::testing::{Mode, TestServer};
use serverbridge::Server;
use serverbridge_hyper::{HyperServer, Protocols, Settings};

#[path = "support/apps.rs"]
mod apps;
use apps::{hello, hello_owin, in_batches, pipelined};

async fn direct(server: &TestServer, n: u64) {
    for _ in 0..n {
        let response = server.get("/").send().await.expect("response");
        assert_eq!(response.bytes().await.expect("body").len(), 13);
    }
}

/// A HyperServer on port 0, as `scripts/bench --mode hyper-http1` runs it.
async fn hyper_server() -> (HyperServer, SocketAddr) {
    let mut settings = Settings::default();
    settings.pipeline_flush = true;
    settings.protocols = Protocols::Http1Only;
    let mut server = HyperServer::new()
        .settings(settings)
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)));
    server.start(Arc::new(hello)).await.expect("start");
    let url = server.addresses().urls()[0].clone();
    let addr = url
        .trim_start_matches("http://")
        .parse()
        .expect("a TCP address");
    (server, addr)
}

/// Raw hyper with the same handler, serving one connection.
async fn raw_hyper() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let service = hyper::service::service_fn(|_request| async {
            let mut response = http::Response::new(Full::new(Bytes::from_static(b"Hello, World!")));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            Ok::<_, Infallible>(response)
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .pipeline_flush(true)
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
            .await;
    });
    addr
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let mode = args.next().unwrap_or_default();
    if n == 0 {
        eprintln!("usage: instructions N direct|owin|pipelined|keep-alive|hyper|raw-hyper");
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        match mode.as_str() {
            "direct" => direct(&TestServer::new(hello), n).await,
            "owin" => direct(&TestServer::new(OwinApp::new(hello_owin)), n).await,
            "pipelined" => {
                let server = TestServer::new(hello).with_mode(Mode::Wire);
                let mut io = server.raw().expect("raw connection");
                pipelined(&mut io, n).await;
            }
            "keep-alive" => {
                let server = TestServer::new(hello).with_mode(Mode::Wire);
                let mut io = server.raw().expect("raw connection");
                in_batches(&mut io, n, 1).await;
            }
            "hyper" => {
                let (mut server, addr) = hyper_server().await;
                let mut io = tokio::net::TcpStream::connect(addr).await.expect("connect");
                pipelined(&mut io, n).await;
                drop(io);
                let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
                server.stop(deadline).await.expect("stop");
            }
            "raw-hyper" => {
                let addr = raw_hyper().await;
                let mut io = tokio::net::TcpStream::connect(addr).await.expect("connect");
                pipelined(&mut io, n).await;
            }
            other => {
                eprintln!("unknown mode {other:?}");
                std::process::exit(2);
            }
        }
    });
}
