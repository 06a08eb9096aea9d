//! Runs any serverbridge [`Application`] as a CGI/1.1 program (RFC 3875):
//! the web server (Apache's mod_cgi, nginx with fcgiwrap, lighttpd, IIS)
//! starts the program once per request, the request comes from the
//! meta-variables and stdin, the response goes to stdout.
//!
//! - [`run`] is the whole program: it reads the real environment, stdin and
//!   stdout and returns the process's exit code.
//! - [`serve`] is the testable core: any environment, any `AsyncRead` as
//!   stdin, any `AsyncWrite` as stdout.
//!
//! ```no_run
//! use serverbridge::{HttpContext, Result};
//!
//! async fn hello(ctx: &mut HttpContext) -> Result<()> {
//!     ctx.write("hello from CGI").await
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     serverbridge_cgi::run(hello)
//! }
//! ```
//!
//! # The request
//!
//! | meta-variable | becomes |
//! |---|---|
//! | `REQUEST_METHOD` | `method` (required) |
//! | `SCRIPT_NAME` | `path_base` |
//! | `PATH_INFO` | `path`; but when `REQUEST_URI` (Apache, nginx) starts with `SCRIPT_NAME`, `path` is the rest of its path as sent, not decoded (RFC 3875 decodes `PATH_INFO`) |
//! | `QUERY_STRING` | `query`, as sent |
//! | `REQUEST_URI` | `raw_target` (else `SCRIPT_NAME` + `PATH_INFO` + `?QUERY_STRING`) |
//! | `SERVER_PROTOCOL` | `version` (`HTTP/1.0`, `HTTP/1.1`, `HTTP/2`…) |
//! | `HTTPS` (`on`/`1`) | `scheme` `https` |
//! | `CONTENT_LENGTH`, `CONTENT_TYPE` | the `content-length` and `content-type` headers; the body is exactly `CONTENT_LENGTH` bytes of stdin |
//! | `HTTP_*` | headers: `HTTP_X_FOO` → `x-foo` |
//! | `REMOTE_ADDR`, `REMOTE_PORT` | [`ConnectionInfo::peer`](serverbridge::feature::ConnectionInfo), and its id |
//! | `SERVER_ADDR` (else `SERVER_NAME` if an IP), `SERVER_PORT` | `ConnectionInfo::local`, and the server-level [`ServerAddresses`] in every request's defaults |
//! | `UNIQUE_ID` (mod_unique_id) | [`RequestId`](serverbridge::feature::RequestId), else the connection id |
//!
//! Without `CONTENT_LENGTH`, a request that came with
//! `Transfer-Encoding` (`HTTP_TRANSFER_ENCODING`, which Apache passes for a
//! chunked request body) reads stdin to its end; any other has no body.
//!
//! # The response
//!
//! A header block, `Status: 200 OK` first, then the app's headers (without
//! `Connection` and `Transfer-Encoding`), lines ending in LF, a blank line,
//! then the body as the app writes it (RFC 3875 §6, document response). A
//! response completed within `HttpContext`'s buffer has a `Content-Length`;
//! a longer one streams, and the web server frames it. Non-parsed-header
//! (`nph-`) output is not produced.
//!
//! # Capabilities
//!
//! | | |
//! |---|---|
//! | [`RequestFeature`](serverbridge::feature::RequestFeature), [`ResponseFeature`], [`ResponseBody`] | yes, streaming both ways |
//! | [`ConnectionInfo`](serverbridge::feature::ConnectionInfo) | when `REMOTE_ADDR` is set |
//! | [`RequestId`](serverbridge::feature::RequestId), [`ServerAddresses`] | yes (from the meta-variables) |
//! | [`RequestLifetime`](serverbridge::feature::RequestLifetime), trailers, [`Upgrade`](serverbridge::feature::Upgrade), body limits | **no** |
//!
//! # Limitations (CGI's own)
//!
//! - **Repeated request headers arrive joined**: the web server folds them
//!   into one meta-variable (`a, b`), and header names lose their case and
//!   the difference between `-` and `_`.
//! - **An aborted response cannot be marked**: the program's stdout just
//!   ends. A web server frames what it got; with a `Content-Length` the
//!   client sees the response short, without one (chunked by the server) it
//!   looks complete. Set `Content-Length` when a truncated body must be
//!   detectable.
//! - **No client-disconnect signal**, no trailers, no upgrade, one request
//!   per process (keep-alive is the web server's).
//! - `PATH_INFO` is decoded by the server (RFC 3875 §4.1.5); the raw path is
//!   only known from `REQUEST_URI`, which RFC 3875 does not define.
//!
//! The kit's column for CGI in the README's support matrix is measured
//! through an in-process gateway (this crate's tests) that turns HTTP into
//! meta-variables and stdin the way Apache does; `tests/apache.rs` runs the
//! example program behind a real Apache for the process boundary.

mod io;
mod request;

use std::process::ExitCode;
use std::sync::Arc;

use serverbridge::feature::{ResponseBody, ResponseFeature, ServerAddresses};
use serverbridge::{lifecycle, Application, Error, Features, Result};
use tokio::io::{AsyncRead, AsyncWrite};

pub use request::Env;

/// Runs `app` for the one request of this process: the real environment,
/// stdin and stdout, on a current-thread tokio runtime. Returns
/// [`ExitCode::SUCCESS`] when a response was written (an error response
/// included), [`ExitCode::FAILURE`] when there was none (the meta-variables
/// did not describe a request, or stdout failed); the reason goes to stderr,
/// which web servers log.
pub fn run<A: Application>(app: A) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("serverbridge-cgi: no runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let env = std::env::vars_os().map(|(k, v)| {
        (
            k.to_string_lossy().into_owned(),
            v.to_string_lossy().into_owned(),
        )
    });
    let outcome = runtime.block_on(serve(env, tokio::io::stdin(), tokio::io::stdout(), &app));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("serverbridge-cgi: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Serves one CGI request: builds the features from `env` (see the
/// [crate docs](crate) for the mapping) with `stdin` as the body, runs the
/// lifecycle, and writes the CGI response to `stdout`.
///
/// # Errors
///
/// A parse error ([`Error::is_parse`]) when `env` has no usable
/// `REQUEST_METHOD` (then nothing was written); the application's or the
/// output's error otherwise (an application error before the head has
/// already become a `Status: 500` response).
///
/// # Example
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use serverbridge::{HttpContext, Result};
///
/// async fn echo(ctx: &mut HttpContext) -> Result<()> {
///     let body = ctx.read_body(1024).await?;
///     let request = ctx.request();
///     let text = format!("{} {} {} {:?}", request.path_base, request.path, request.query, body);
///     ctx.write(text).await
/// }
///
/// let env = [
///     ("REQUEST_METHOD", "POST"),
///     ("SCRIPT_NAME", "/cgi-bin/echo"),
///     ("PATH_INFO", "/a b"),
///     ("REQUEST_URI", "/cgi-bin/echo/a%20b?x=1"),
///     ("QUERY_STRING", "x=1"),
///     ("CONTENT_LENGTH", "5"),
///     ("SERVER_PROTOCOL", "HTTP/1.1"),
/// ]
/// .map(|(k, v)| (k.to_owned(), v.to_owned()));
/// // stdout: one end of an in-memory pipe; the test reads the other.
/// let (mut reader, stdout) = tokio::io::duplex(64 * 1024);
/// serverbridge_cgi::serve(env, &b"hello, and more"[..], stdout, &echo).await.unwrap();
/// let mut output = String::new();
/// tokio::io::AsyncReadExt::read_to_string(&mut reader, &mut output).await.unwrap();
/// assert_eq!(
///     output,
///     "Status: 200 OK\ncontent-length: 33\n\n/cgi-bin/echo /a%20b x=1 b\"hello\""
/// );
/// # });
/// ```
pub async fn serve<E, R, W, A>(env: E, stdin: R, stdout: W, app: &A) -> Result<()>
where
    E: IntoIterator<Item = (String, String)>,
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
    A: Application + ?Sized,
{
    let env = Env::new(env);
    let mut features = request::features(&env, Box::new(stdin), server_features(&env))?;
    features.insert(ResponseFeature::default());
    features.insert_dyn::<dyn ResponseBody>(Box::new(io::StdoutSink::new(Box::new(stdout))));
    let outcome = lifecycle::run_request(app, features).await;
    match (outcome.error, outcome.completed) {
        (_, true) => Ok(()),
        (Some(err), false) => Err(err),
        (None, false) => Err(Error::aborted("the response was aborted")),
    }
}

fn server_features(env: &Env) -> Arc<Features> {
    let addresses = ServerAddresses::default();
    if let Some(address) = request::server_address(env) {
        addresses.push(address);
    }
    let mut features = Features::new();
    features.insert(addresses);
    Arc::new(features)
}
