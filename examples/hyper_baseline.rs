//! Run with: cargo run --release --example hyper_baseline -- --port 8081
//!
//! The benchmark baseline: raw hyper 1.x (HTTP/1.1, `pipeline_flush(true)`,
//! one thread) serving the same plaintext response as `examples/plaintext.rs`.
//! `scripts/bench` runs both side by side.
//!
//! `--header-read-timeout SECS` gives hyper a tokio timer and that header
//! read timeout, as `serverbridge-hyper` configures it by default: the
//! baseline for measuring that adapter's own cost (hyper re-arms the timer
//! for every request head, which costs as much as a quarter of the adapter's
//! per-request overhead). Without it hyper runs with no timer, as it does
//! out of the box: the baseline for the built-in server.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, SERVER};
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};

async fn plaintext(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"Hello, World!")));
    let headers = response.headers_mut();
    headers.insert(SERVER, HeaderValue::from_static("hyper"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}

fn main() -> std::io::Result<()> {
    let mut port = 8081u16;
    let mut header_read_timeout = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (
            arg.as_str(),
            args.next().and_then(|v| v.parse::<u64>().ok()),
        ) {
            ("--port", Some(v)) if v <= u64::from(u16::MAX) => port = v as u16,
            ("--header-read-timeout", Some(v)) => {
                header_read_timeout = Some(std::time::Duration::from_secs(v));
            }
            _ => {
                eprintln!("usage: hyper_baseline [--port N] [--header-read-timeout SECS]");
                std::process::exit(2);
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        println!("listening on http://{}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder.pipeline_flush(true);
                if let Some(timeout) = header_read_timeout {
                    builder
                        .timer(TokioTimer::new())
                        .header_read_timeout(timeout);
                }
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service_fn(plaintext))
                    .await;
            });
        }
    })
}
