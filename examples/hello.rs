//! Run with: cargo run --example hello
//!
//! A hello app and one exchange with it, printed. Until the built-in HTTP/1.1
//! server lands (issue 2/5) this runs against the in-memory TestServer; the
//! app itself does not change when the server does.

use std::sync::Arc;

use serverbridge::lint::Lint;
use serverbridge::testing::TestServer;
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

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let app = Lint::new(Builder::new().use_fn(server_header).run(hello));
    let report = app.report();

    // Started through the `Server` trait, as any server would be.
    let mut server = TestServer::unstarted();
    server.start(Arc::new(app)).await?;

    let response = server.get("/greet?name=serverbridge").send().await?;
    println!("> GET /greet?name=serverbridge HTTP/1.1");
    println!("> host: localhost");
    println!(">");
    println!(
        "< HTTP/1.1 {} {}",
        response.status().as_u16(),
        response.reason()
    );
    for (name, value) in response.headers() {
        println!("< {}: {}", name, value.to_str().unwrap_or("<binary>"));
    }
    println!("<");
    print!("{}", response.text().await?);

    server.stop(tokio::time::Instant::now()).await?;
    assert!(report.is_clean(), "lint: {:?}", report.violations());
    Ok(())
}
