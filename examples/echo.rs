//! Run with: cargo run --example echo -- --urls http://127.0.0.1:5001
//!
//! The conformance target: answers every request with 200,
//! `content-type: text/plain` and the body
//! `method=<METHOD> path=<PATH> query=<QUERY> body=<N>`, where N is the number
//! of request-body bytes it read (it always reads the whole body).

use std::sync::Arc;

use serverbridge::server::HttpServer;
use serverbridge::{HttpContext, Result, Server};

/// The echo app (the wire tests use this very function).
pub(crate) async fn echo(ctx: &mut HttpContext) -> Result<()> {
    let mut n = 0usize;
    while let Some(chunk) = ctx.request_body().chunk().await? {
        n += chunk.len();
    }
    let request = ctx.request();
    let text = format!(
        "method={} path={} query={} body={n}",
        request.method, request.path, request.query
    );
    ctx.response_mut()
        .headers
        .insert("content-type", "text/plain".parse().expect("valid"));
    ctx.write(text).await
}

fn urls_from_args() -> String {
    let mut args = std::env::args().skip(1);
    let mut urls =
        std::env::var("SERVERBRIDGE_URLS").unwrap_or_else(|_| "http://127.0.0.1:5000".into());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--urls" => urls = args.next().unwrap_or_default(),
            other => {
                eprintln!("unknown argument {other:?}; usage: echo [--urls URLS]");
                std::process::exit(2);
            }
        }
    }
    urls
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber_init();
    let mut server = match HttpServer::new().urls(&urls_from_args()) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("{err}");
            std::process::exit(2);
        }
    };
    server.start(Arc::new(echo)).await?;
    for url in server.addresses().urls() {
        println!("listening on {url}");
    }
    tokio::signal::ctrl_c().await?;
    server
        .stop(tokio::time::Instant::now() + std::time::Duration::from_secs(5))
        .await
}

fn tracing_subscriber_init() {}
