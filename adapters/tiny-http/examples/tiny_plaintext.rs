//! Run with: cargo run --release -p serverbridge-tiny-http --example tiny_plaintext -- --port 18082 --workers 1
//!
//! The benchmark target for the tiny_http adapter: `examples/plaintext.rs`'s
//! app (`Hello, World!` with `Server` and `Content-Type`) on
//! `TinyHttpServer`. `scripts/bench --mode tiny` runs it against
//! `tiny_baseline` (raw tiny_http).

use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{CONTENT_TYPE, SERVER};
use http::HeaderValue;
use serverbridge::{HttpContext, Result, Server};
use serverbridge_tiny_http::TinyHttpServer;

async fn plaintext(ctx: &mut HttpContext) -> Result<()> {
    let headers = &mut ctx.response_mut().headers;
    headers.insert(SERVER, HeaderValue::from_static("serverbridge"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    ctx.write(&b"Hello, World!"[..]).await
}

fn main() -> Result<()> {
    let (port, workers) = args("tiny_plaintext", 18082);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut server =
            TinyHttpServer::new(SocketAddr::from(([127, 0, 0, 1], port))).workers(workers);
        server.start(Arc::new(plaintext)).await?;
        for url in server.addresses().urls() {
            println!("listening on {url}");
        }
        tokio::signal::ctrl_c().await?;
        server
            .stop(tokio::time::Instant::now() + std::time::Duration::from_secs(1))
            .await
    })
}

/// `--port N --workers N`.
fn args(name: &str, default_port: u16) -> (u16, usize) {
    let (mut port, mut workers) = (default_port, 1usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse::<usize>().ok());
        match (arg.as_str(), value) {
            ("--port", Some(v)) => port = u16::try_from(v).unwrap_or(default_port),
            ("--workers", Some(v)) => workers = v.max(1),
            _ => {
                eprintln!("usage: {name} [--port N] [--workers N]");
                std::process::exit(2);
            }
        }
    }
    (port, workers)
}
