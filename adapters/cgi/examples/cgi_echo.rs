//! Run with: cargo build -p serverbridge-cgi --example cgi_echo, then point a
//! web server's CGI directory at `target/debug/examples/cgi_echo` (Apache:
//! `ScriptAlias /cgi-bin/ DIR/`), or by hand:
//! `REQUEST_METHOD=GET PATH_INFO=/x QUERY_STRING=a=1 target/debug/examples/cgi_echo`.
//!
//! A CGI program that echoes the request: method, path_base, path, query,
//! the headers (sorted, one per line) and the body, as `text/plain`.

use std::fmt::Write as _;
use std::process::ExitCode;

use serverbridge::{HttpContext, Result};

/// The echo app.
async fn echo(ctx: &mut HttpContext) -> Result<()> {
    let body = ctx.read_body(16 << 20).await?;
    let request = ctx.request();
    let mut text = format!(
        "method={}\npath_base={}\npath={}\nquery={}\n",
        request.method, request.path_base, request.path, request.query
    );
    let mut headers: Vec<String> = request
        .headers
        .iter()
        .map(|(name, value)| format!("{name}: {}", String::from_utf8_lossy(value.as_bytes())))
        .collect();
    headers.sort();
    for header in headers {
        let _ = writeln!(text, "header {header}");
    }
    let _ = write!(text, "body={}", String::from_utf8_lossy(&body));
    ctx.response_mut()
        .headers
        .insert("content-type", "text/plain".parse().expect("valid"));
    ctx.write(text).await
}

fn main() -> ExitCode {
    serverbridge_cgi::run(echo)
}
