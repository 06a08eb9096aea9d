//! Run with: cargo run --example hello
//!
//! The hello app on the built-in HTTP/1.1 server, on http://127.0.0.1:5000
//! (or `SERVERBRIDGE_URLS`, `;`-separated), until Ctrl-C; then a graceful
//! stop with a 5 s deadline. Try: `curl -i 'http://127.0.0.1:5000/?name=you'`.

use std::sync::Arc;
use std::time::Duration;

use serverbridge::lint::Lint;
use serverbridge::server::HttpServer;
use serverbridge::{Builder, HttpContext, Next, Result, Server};

/// The application: greets whoever asks.
async fn hello(ctx: &mut HttpContext) -> Result<()> {
    let name = match ctx.request().query.strip_prefix("name=") {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => "World".to_owned(),
    };
    ctx.response_mut().headers.insert(
        "content-type",
        "text/plain; charset=utf-8".parse().expect("valid"),
    );
    ctx.write(format!("Hello, {name}!\n")).await
}

/// A middleware: names the server on every response.
async fn server_header(ctx: &mut HttpContext, next: Next<'_>) -> Result<()> {
    ctx.response_mut()
        .headers
        .insert("server", "serverbridge".parse().expect("valid"));
    next.run(ctx).await
}

#[tokio::main]
async fn main() -> Result<()> {
    let urls =
        std::env::var("SERVERBRIDGE_URLS").unwrap_or_else(|_| "http://127.0.0.1:5000".into());
    let mut server = match HttpServer::new().urls(&urls) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("SERVERBRIDGE_URLS: {err}");
            std::process::exit(2);
        }
    };
    // Lint checks the app and the server against SPEC.md as requests pass.
    let app = Lint::new(Builder::new().use_fn(server_header).run(hello));
    let report = app.report();
    server.start(Arc::new(app)).await?;
    for url in server.addresses().urls() {
        println!("listening on {url}");
    }
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    server
        .stop(tokio::time::Instant::now() + Duration::from_secs(5))
        .await?;
    for violation in report.violations() {
        eprintln!("lint: {violation}");
    }
    Ok(())
}
