//! Run with: cargo run --release -p serverbridge-hyper --example hyper_plaintext -- --port 8082
//!
//! The benchmark target on `HyperServer`: the same plaintext app as the
//! core's `examples/plaintext.rs` (`200`, `Hello, World!`, `Date`, `Server`,
//! `Content-Type`), one thread, `pipeline_flush(true)` like the raw hyper
//! baseline (`examples/hyper_baseline.rs`). `scripts/bench --mode hyper`
//! runs the two side by side. `--http1-only` skips the HTTP/2 preface sniff.

use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{CONTENT_TYPE, SERVER};
use http::HeaderValue;
use serverbridge::{HttpContext, Result, Server};
use serverbridge_hyper::{HyperServer, Protocols, Settings};

async fn plaintext(ctx: &mut HttpContext) -> Result<()> {
    let headers = &mut ctx.response_mut().headers;
    headers.insert(SERVER, HeaderValue::from_static("serverbridge"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    ctx.write(&b"Hello, World!"[..]).await
}

fn main() -> Result<()> {
    let mut port = 8082u16;
    let mut settings = Settings::default();
    settings.pipeline_flush = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => match args.next().and_then(|v| v.parse().ok()) {
                Some(v) => port = v,
                None => usage(),
            },
            "--http1-only" => settings.protocols = Protocols::Http1Only,
            _ => usage(),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut server = HyperServer::new()
            .settings(settings)
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

fn usage() -> ! {
    eprintln!("usage: hyper_plaintext [--port N] [--http1-only]");
    std::process::exit(2);
}
