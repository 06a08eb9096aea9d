//! Run with: cargo run --example hello
//!
//! The hello app, hosted: on the built-in HTTP/1.1 server at
//! http://127.0.0.1:5000 until Ctrl-C (SIGINT) or SIGTERM, then a graceful
//! stop (30 s deadline; a second signal stops at once). Try:
//! `curl -i 'http://127.0.0.1:5000/?name=you'`.
//!
//! Options (each overrides its environment variable):
//! `--server NAME` (`SERVERBRIDGE_SERVER`: `builtin`, `axum`, `hyper`, `actix`, `tiny_http`),
//! `--urls URLS` (`SERVERBRIDGE_URLS`: `;`-separated `http://IP:PORT`,
//! `http://localhost:PORT`, `http://*:PORT` or `unix:/PATH`), `--shutdown-timeout SECONDS`
//! (`SERVERBRIDGE_SHUTDOWN_TIMEOUT`). Exit codes: 0 after a graceful stop,
//! 2 for a bad setting, 1 otherwise.

use serverbridge::lint::Lint;
use serverbridge::{Builder, HttpContext, Next, Result};

#[path = "support/servers.rs"]
mod servers;

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

/// Everything but the process exit: returns the exit code.
pub(crate) async fn run(args: Vec<String>) -> i32 {
    // Lint checks the app and the server against SPEC.md as requests pass.
    let app = Lint::new(Builder::new().use_fn(server_header).run(hello));
    let report = app.report();
    let code = servers::serve("hello", args, app).await;
    for violation in report.violations() {
        eprintln!("lint: {violation}");
    }
    code
}

#[tokio::main]
async fn main() {
    std::process::exit(run(std::env::args().skip(1).collect()).await);
}
