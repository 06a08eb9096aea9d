//! The request body read from the gateway's stdin, and the response sink
//! writing the CGI response (header block, then body) to stdout.

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, TRANSFER_ENCODING};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use serverbridge::feature::{ResponseBody, ResponseHead};
use serverbridge::{Error, Result};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The largest piece read from stdin at a time.
const CHUNK: usize = 16 * 1024;

/// Boxed stdin.
pub(crate) type Input = Box<dyn AsyncRead + Send + Unpin>;
/// Boxed stdout.
pub(crate) type Output = Box<dyn AsyncWrite + Send + Unpin>;

/// The request body: exactly `CONTENT_LENGTH` bytes of stdin (RFC 3875
/// §4.2: the script must not read more), or, for a body the server passes
/// without a length (a chunked request), stdin to its end.
pub(crate) struct StdinBody {
    input: Input,
    remaining: Option<u64>,
    ended: bool,
}

impl StdinBody {
    pub(crate) fn new(input: Input, length: Option<u64>) -> Self {
        StdinBody {
            input,
            remaining: length,
            ended: length == Some(0),
        }
    }
}

impl Body for StdinBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        let want = this
            .remaining
            .map_or(CHUNK, |r| usize::try_from(r).unwrap_or(CHUNK).min(CHUNK));
        let mut buf = BytesMut::zeroed(want);
        let mut read = ReadBuf::new(&mut buf);
        match Pin::new(&mut this.input).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(err)) => {
                this.ended = true;
                Poll::Ready(Some(Err(Error::body_cut_short(format!(
                    "reading the request body from stdin failed: {err}"
                )))))
            }
            Poll::Ready(Ok(())) => {
                let n = read.filled().len();
                if n == 0 {
                    this.ended = true;
                    if this.remaining.is_some_and(|r| r > 0) {
                        return Poll::Ready(Some(Err(Error::body_cut_short(
                            "stdin ended before CONTENT_LENGTH bytes",
                        ))));
                    }
                    return Poll::Ready(None);
                }
                buf.truncate(n);
                if let Some(r) = this.remaining.as_mut() {
                    *r = r.saturating_sub(n as u64);
                    this.ended = *r == 0;
                }
                Poll::Ready(Some(Ok(Frame::data(buf.freeze()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(r) => SizeHint::with_exact(r),
            None => SizeHint::default(),
        }
    }
}

/// Writes the CGI header block for `head` (RFC 3875 §6): `Status:` first,
/// then the app's fields, lines ending in LF, a blank line. `Connection`
/// and `Transfer-Encoding` are the web server's business and are left out.
pub(crate) fn header_block(head: ResponseHead<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"Status: ");
    out.extend_from_slice(head.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.reason.as_bytes());
    out.push(b'\n');
    for (name, value) in head.headers {
        if name == CONNECTION || name == TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// The response sink: the header block goes out with the first body bytes
/// (or at a flush or the end), the body as it is written.
pub(crate) struct StdoutSink {
    // A Mutex only to be `Sync`: every method has `&mut self`, so `get_mut`
    // never locks.
    output: Mutex<Output>,
    head: Option<Vec<u8>>,
    failed: bool,
}

impl StdoutSink {
    pub(crate) fn new(output: Output) -> Self {
        StdoutSink {
            output: Mutex::new(output),
            head: None,
            failed: false,
        }
    }

    async fn send(&mut self, data: &[u8]) -> Result<()> {
        if self.failed {
            return Err(Error::closed("the response was aborted"));
        }
        let output = self.output.get_mut().unwrap_or_else(|p| p.into_inner());
        let result = match self.head.take() {
            Some(mut head) => {
                head.extend_from_slice(data);
                output.write_all(&head).await
            }
            None if data.is_empty() => Ok(()),
            None => output.write_all(data).await,
        };
        result.map_err(|err| {
            self.failed = true;
            Error::closed(format!("writing to stdout failed: {err}"))
        })
    }
}

impl std::fmt::Debug for StdoutSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StdoutSink")
    }
}

#[async_trait]
impl ResponseBody for StdoutSink {
    fn start_now(&mut self, head: ResponseHead<'_>) -> Option<Result<()>> {
        self.head = Some(header_block(head));
        Some(Ok(()))
    }

    async fn start(&mut self, head: ResponseHead<'_>) -> Result<()> {
        self.head = Some(header_block(head));
        Ok(())
    }

    async fn write(&mut self, data: Bytes) -> Result<()> {
        self.send(&data).await
    }

    async fn flush(&mut self) -> Result<()> {
        self.send(&[]).await?;
        let output = self.output.get_mut().unwrap_or_else(|p| p.into_inner());
        output
            .flush()
            .await
            .map_err(|err| Error::closed(format!("flushing stdout failed: {err}")))
    }

    /// CGI has no trailers: they are dropped.
    async fn complete(&mut self, _trailers: Option<HeaderMap>) -> Result<()> {
        self.flush().await
    }

    /// A CGI program cannot mark its output incomplete: stdout just ends.
    /// The web server then ends the response as it sees fit (see the crate's
    /// limitations). Nothing more is written.
    fn abort(&mut self, _reason: &Error) {
        self.failed = true;
    }
}
