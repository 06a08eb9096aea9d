//! Run with: cargo run --release -p serverbridge-actix --example actix_plaintext -- --port 18082
//!
//! The benchmark target: the plaintext app of `examples/plaintext.rs`
//! (`200`, `Hello, World!`, `Server` and `Content-Type`) on `ActixServer`
//! with one worker. `scripts/bench --mode actix` runs it beside
//! `actix_baseline.rs`.

use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{CONTENT_TYPE, SERVER};
use http::HeaderValue;
use serverbridge::{HttpContext, Result, Server};
use serverbridge_actix::ActixServer;

async fn plaintext(ctx: &mut HttpContext) -> Result<()> {
    let headers = &mut ctx.response_mut().headers;
    headers.insert(SERVER, HeaderValue::from_static("serverbridge"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    ctx.write(&b"Hello, World!"[..]).await
}

fn main() -> Result<()> {
    let mut port = 18082u16;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().and_then(|v| v.parse().ok())) {
            ("--port", Some(v)) => port = v,
            _ => {
                eprintln!("usage: actix_plaintext [--port N]");
                std::process::exit(2);
            }
        }
    }
    // The caller's runtime only starts and stops the server: actix serves
    // on its own worker thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut server = ActixServer::new()
            .workers(1)
            .bind(SocketAddr::from(([127, 0, 0, 1], port)));
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
