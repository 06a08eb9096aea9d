//! What both benchmarks share: the hello app (on the feature path and
//! through the OWIN bridge) and the pipelining client.

use http::header::CONTENT_TYPE;
use http::HeaderValue;
use serverbridge::owin::{keys, Environment};
use serverbridge::{HttpContext, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// `200`, `content-type: text/plain`, `Hello, World!`.
pub(crate) async fn hello(ctx: &mut HttpContext) -> Result<()> {
    ctx.response_mut()
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    ctx.write("Hello, World!").await
}

/// The same through the OWIN environment.
pub(crate) async fn hello_owin(env: &mut Environment) -> Result<()> {
    env.headers_mut(keys::RESPONSE_HEADERS)
        .expect("response headers")
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    env.write("Hello, World!").await
}

/// Sends `n` hello requests on `io`, 16 pipelined at a time, and waits for
/// every response (each ends with the 13-byte body; they are counted).
pub(crate) async fn pipelined(io: &mut (impl AsyncRead + AsyncWrite + Unpin), n: u64) {
    in_batches(io, n, 16).await;
}

/// Sends `n` hello requests on `io`, `size` at a time, and waits for every
/// response of a batch before the next (a batch of 1: keep-alive, not
/// pipelined).
pub(crate) async fn in_batches(io: &mut (impl AsyncRead + AsyncWrite + Unpin), n: u64, size: u64) {
    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let batch = REQUEST.repeat(size as usize);
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 0;
    while sent < n {
        let now = size.min(n - sent);
        io.write_all(&batch[..REQUEST.len() * now as usize])
            .await
            .expect("write");
        let mut seen = 0;
        while seen < now {
            let read = io.read(&mut buf).await.expect("read");
            assert!(read > 0, "the server closed the connection");
            seen += buf[..read]
                .windows(13)
                .filter(|w| *w == b"Hello, World!")
                .count() as u64;
        }
        sent += now;
    }
}
