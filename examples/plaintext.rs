//! Run with: cargo run --release --example plaintext -- --port 8080 --threads 1
//!
//! The benchmark target: `GET /` answers `200` with `Hello, World!`, and
//! `Date`, `Server` and `Content-Type` headers (TechEmpower's plaintext test).

use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{CONTENT_TYPE, SERVER};
use http::HeaderValue;
use serverbridge::server::HttpServer;
use serverbridge::{HttpContext, Result, Server};

async fn plaintext(ctx: &mut HttpContext) -> Result<()> {
    let headers = &mut ctx.response_mut().headers;
    headers.insert(SERVER, HeaderValue::from_static("serverbridge"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    ctx.write(&b"Hello, World!"[..]).await
}

fn main() -> Result<()> {
    let mut port = 8080u16;
    let mut threads = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse::<usize>().ok());
        match (arg.as_str(), value) {
            ("--port", Some(v)) => port = u16::try_from(v).unwrap_or(8080),
            ("--threads", Some(v)) => threads = v.max(1),
            _ => {
                eprintln!("usage: plaintext [--port N] [--threads N]");
                std::process::exit(2);
            }
        }
    }
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(async {
        let mut server = HttpServer::new().bind(SocketAddr::from(([127, 0, 0, 1], port)));
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
