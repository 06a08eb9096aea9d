//! Run with: cargo run --example echo -- --urls http://127.0.0.1:5001
//!
//! The conformance target: answers every request with 200,
//! `content-type: text/plain` and the body
//! `method=<METHOD> path=<PATH> query=<QUERY> body=<N>`, where N is the number
//! of request-body bytes it read (it always reads the whole body).
//!
//! Hosted like `hello`: `--server NAME` (`builtin`, `axum`, `hyper`, `actix`, `tiny_http`), `--urls URLS`,
//! `--shutdown-timeout SECONDS` or the `SERVERBRIDGE_*` variables; SIGINT or
//! SIGTERM stops it gracefully, a second signal at once. Exit codes: 0 after
//! a graceful stop, 2 for a bad setting, 1 otherwise.

use serverbridge::{HttpContext, Result};

#[path = "support/servers.rs"]
mod servers;

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

/// Everything but the process exit: returns the exit code (tests/host.rs
/// runs this in a child process).
pub(crate) async fn run(args: Vec<String>) -> i32 {
    servers::serve("echo", args, echo).await
}

#[tokio::main]
async fn main() {
    std::process::exit(run(std::env::args().skip(1).collect()).await);
}
