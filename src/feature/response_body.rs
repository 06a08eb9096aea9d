//! [`ResponseBody`]: the server's sink for the response.

use std::ops::Range;
use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, Version};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::body::BoxBody;
use crate::error::{Error, Result};

/// The head handed to [`ResponseBody::start`].
#[derive(Debug, Clone, Copy)]
pub struct ResponseHead<'a> {
    /// The status code.
    pub status: StatusCode,
    /// The reason phrase to send.
    pub reason: &'a str,
    /// The headers, final: `Content-Length` is set when the length is known.
    pub headers: &'a HeaderMap,
    /// The request's version (servers answer in kind).
    pub version: Version,
}

/// A byte range of a file for [`ResponseBody::send_file`]; `None` sends to the
/// end of the file.
pub type FileRange = Option<Range<u64>>;

/// The response body sink: a behaviour feature, stored as
/// `dyn ResponseBody` (the analogue of `IHttpResponseBodyFeature`).
/// **Required**: every server provides it.
///
/// Applications do not call it directly: they write through
/// [`HttpContext`](crate::HttpContext), which enforces the contract (body
/// rules, Content-Length, HEAD), buffers small responses and runs
/// `on_starting` callbacks, then drives this sink in a fixed order:
/// `start` once, then `write`/`flush` any number of times, then exactly one
/// of `complete`, `send_body`, `send_file` or `abort`. A server implements the
/// first four; `send_body` and `send_file` have default implementations on
/// `write`, which a server overrides when it can do better (hyper takes a pull
/// body as it is; a socket server can use `sendfile`).
///
/// Middleware may wrap the server's sink (compression, say) by replacing the
/// feature with its own that forwards to the original.
///
/// # Fast paths
///
/// `start_now`, `write_now` and `complete_now` let a sink that can act
/// without waiting (it only appends to a buffer) skip the boxed future of its
/// async method: [`HttpContext`](crate::HttpContext) tries them first and
/// falls back to `start`, `write` and `complete` when they decline.
/// `respond_now` takes a whole small response in one call (most responses
/// are one buffered write): a sink that guards its state with a lock takes
/// it once instead of three times. They are optional; the defaults decline.
/// A wrapper that forwards the async methods should forward these too, or
/// leave the defaults.
#[async_trait]
pub trait ResponseBody: Send + Sync {
    /// Sends the head if that needs no waiting; `None` declines (then
    /// [`start`](Self::start) is called).
    fn start_now(&mut self, head: ResponseHead<'_>) -> Option<Result<()>> {
        let _ = head;
        None
    }

    /// Takes a chunk if that needs no waiting: `Ok(None)` took it,
    /// `Ok(Some(data))` declines and gives it back (then
    /// [`write`](Self::write) is called).
    fn write_now(&mut self, data: Bytes) -> Result<Option<Bytes>> {
        Ok(Some(data))
    }

    /// Ends the body if that needs no waiting; `None` declines and leaves
    /// `trailers` in place (then [`complete`](Self::complete) is called).
    fn complete_now(&mut self, trailers: &mut Option<HeaderMap>) -> Option<Result<()>> {
        let _ = trailers;
        None
    }

    /// Sends a whole response if that needs no waiting: the head, then
    /// `body` when there is one, then the end without trailers, as `start`,
    /// `write` and `complete` would. `None` declines having done nothing and
    /// leaves `body` in place (then the other methods are called, each
    /// through its own fast path first). Called instead of `start` for a
    /// response completed before it started, without trailers, whose whole
    /// body is `body` (already checked against a declared `Content-Length`;
    /// always `None` for `HEAD` and for statuses without a body).
    fn respond_now(
        &mut self,
        head: ResponseHead<'_>,
        body: &mut Option<Bytes>,
    ) -> Option<Result<()>> {
        let _ = (head, body);
        None
    }

    /// Sends (or queues) the head. Called once, before any data.
    async fn start(&mut self, head: ResponseHead<'_>) -> Result<()>;

    /// Sends a chunk of the body.
    async fn write(&mut self, data: Bytes) -> Result<()>;

    /// Pushes everything queued so far to the client.
    async fn flush(&mut self) -> Result<()>;

    /// Ends the body, with trailers when the server can send them (servers
    /// that cannot drop them; see [`ResponseTrailers`](crate::feature::ResponseTrailers)).
    async fn complete(&mut self, trailers: Option<HeaderMap>) -> Result<()>;

    /// Abandons the response: the client must see it as incomplete (the
    /// connection is dropped or the stream reset), never as a complete one.
    fn abort(&mut self, reason: &Error) {
        let _ = reason;
    }

    /// Sends the rest of the body from a pull body, trailers included, and
    /// completes the response. The default copies frames into `write` and
    /// `complete`.
    async fn send_body(&mut self, mut body: BoxBody) -> Result<()> {
        let mut trailers = None;
        while let Some(frame) = body.frame().await {
            let frame = frame?;
            match frame.into_data() {
                Ok(data) => {
                    if !data.is_empty() {
                        self.write(data).await?;
                    }
                }
                Err(frame) => {
                    if let Ok(t) = frame.into_trailers() {
                        trailers.get_or_insert_with(HeaderMap::new).extend(t);
                    }
                }
            }
        }
        self.complete(trailers).await
    }

    /// Sends a file (or a byte range of it) as the rest of the body and
    /// completes the response. The default reads 64 KiB at a time into
    /// `write`. The caller has set `Content-Length` to the range's length.
    async fn send_file(&mut self, path: &Path, range: FileRange) -> Result<()> {
        let mut pieces = FilePieces::open(path, range).await?;
        while let Some(piece) = pieces.next().await? {
            self.write(piece).await?;
        }
        self.complete(None).await
    }
}

/// A file (or a byte range of it) read in pieces of at most 64 KiB: what
/// `send_file` writes when a server has no better way.
pub(crate) struct FilePieces {
    file: tokio::fs::File,
    /// Bytes left in the range; `None` reads to the end of the file.
    remaining: Option<u64>,
}

impl FilePieces {
    const PIECE: u64 = 64 * 1024;

    pub(crate) async fn open(path: &Path, range: FileRange) -> Result<Self> {
        let mut file = tokio::fs::File::open(path).await?;
        let (start, end) = match range {
            Some(range) => (range.start, Some(range.end)),
            None => (0, None),
        };
        if start > 0 {
            file.seek(std::io::SeekFrom::Start(start)).await?;
        }
        Ok(FilePieces {
            file,
            remaining: end.map(|end| end.saturating_sub(start)),
        })
    }

    /// The next piece; `None` at the end of the range. A file that ends
    /// before its range (it shrank) is an `UnexpectedEof` error.
    pub(crate) async fn next(&mut self) -> Result<Option<Bytes>> {
        let want = self.remaining.map_or(Self::PIECE, |r| r.min(Self::PIECE));
        if want == 0 {
            return Ok(None);
        }
        let mut piece = vec![0u8; want as usize];
        let n = self.file.read(&mut piece).await?;
        if n == 0 {
            if self.remaining.is_some_and(|r| r > 0) {
                return Err(Error::io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            return Ok(None);
        }
        piece.truncate(n);
        if let Some(r) = self.remaining.as_mut() {
            *r -= n as u64;
        }
        Ok(Some(Bytes::from(piece)))
    }
}
