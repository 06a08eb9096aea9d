//! [`Opening`]: the time a new connection has to show which protocol it
//! speaks.
//!
//! hyper-util tells HTTP/1 from HTTP/2 (prior knowledge) by reading the
//! first bytes, with no timeout of its own, before hyper's
//! `header_read_timeout` starts: a client that sends nothing, or part of the
//! HTTP/2 preface, would hold the connection for ever. `Opening` fails the
//! read once the request-headers timeout passes before the bytes decide.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A connection's IO whose reads fail with `TimedOut` when `timeout` passes
/// before its first bytes part from the HTTP/2 preface (then hyper's own
/// HTTP/1 timeouts take over) or complete it.
pub(crate) struct Opening<I> {
    io: I,
    /// Preface bytes matched so far; `None` once the bytes decided.
    matched: Option<usize>,
    timeout: Duration,
    /// Set at the first read that waits.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<I> Opening<I> {
    pub(crate) fn new(io: I, timeout: Duration) -> Self {
        Opening {
            io,
            matched: Some(0),
            timeout,
            deadline: None,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Opening<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(matched) = this.matched else {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        };
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                let want = &PREFACE[matched..];
                let n = new.len().min(want.len());
                if new[..n] != want[..n] || matched + n == PREFACE.len() {
                    this.matched = None;
                    this.deadline = None;
                } else {
                    this.matched = Some(matched + n);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let deadline = this
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no request within the request headers timeout",
                    )));
                }
                Poll::Pending
            }
            failed => failed,
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Opening<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
