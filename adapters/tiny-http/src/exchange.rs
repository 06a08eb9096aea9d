//! One request's I/O: the request body read from tiny_http's reader, and the
//! response sink writing to tiny_http's raw writer.
//!
//! Both run on the worker thread that drives the request's lifecycle, and
//! both block it: a body read waits for the client's bytes, a write waits for
//! the socket. That is the point of a worker pool over a blocking server: the
//! worker is this request's, and nothing else runs on its runtime.
//!
//! tiny_http hands out the response writer only by consuming its `Request`
//! (`into_writer`), which also ends the request body. So the head goes out at
//! the first body write past the held-back one, a flush or completion (not
//! at `start`, which only encodes it), after the unread rest of the request
//! body is read and discarded in [`CHUNK`]-sized pieces: the next request on
//! the connection starts where this body ends.

use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use serverbridge::feature::{ResponseBody, ResponseHead};
use serverbridge::http1::{self, chunk_size_line, BodyFraming, HeadContext};
use serverbridge::{Error, Result};

/// The largest piece read from the request body at a time, and the bound on
/// request-body bytes in flight per request (one chunk, nothing read ahead).
pub(crate) const CHUNK: usize = 16 * 1024;

/// The most body bytes held back before the head goes out: a response
/// completed within this goes out in one piece.
const HOLD_BACK: usize = 64 * 1024;

/// tiny_http's `Server` header, added to every response that has none (as
/// tiny_http's own `respond` adds it).
const SERVER: &str = "tiny-http (Rust)";

/// What the request said about the connection, for the response head.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RequestTraits {
    pub(crate) head_request: bool,
    pub(crate) http10: bool,
    /// `Connection: close`, or HTTP/1.0 without keep-alive: tiny_http
    /// closes the connection after this request.
    pub(crate) closing: bool,
    /// HTTP/1.0 with `Connection: keep-alive`.
    pub(crate) keep_alive_10: bool,
    /// A CONNECT: a 2xx answer has no body and no framing fields (RFC 9110
    /// §9.3.6) and, with no tunnel here, says `Connection: close`.
    pub(crate) connect_request: bool,
    /// The request body is the raw connection (`Connection: upgrade` with no
    /// framing): it is never read.
    pub(crate) raw_body: bool,
    /// The request body is known to be empty or read to its end.
    pub(crate) body_done: bool,
}

/// The state one request's body and sink share.
pub(crate) struct Exchange {
    request: Option<tiny_http::Request>,
    writer: Option<Box<dyn Write + Send>>,
    traits: RequestTraits,
    /// The head, encoded at `start` and sent with the first body bytes; the
    /// first body write is held back (framed) after it, so that a response
    /// completed in one piece goes out in one write.
    head: Option<Vec<u8>>,
    /// The encoded head's length (what follows it is held-back body).
    head_len: usize,
    held_back: bool,
    /// Decided at `start` from the head and the request.
    framing: BodyFraming,
    /// Set by `stop` at its deadline: further writes fail.
    pub(crate) cancelled: Arc<std::sync::atomic::AtomicBool>,
    failed: bool,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("committed", &self.request.is_none())
            .field("framing", &self.framing)
            .finish()
    }
}

pub(crate) type Shared = Arc<Mutex<Exchange>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Exchange> {
    // Only this request's thread takes the lock; poisoning means a panic
    // mid-write, after which the flags are still the best we know.
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

fn closed(err: &std::io::Error) -> Error {
    Error::closed(format!("writing the response failed: {err}"))
}

impl Exchange {
    pub(crate) fn new(
        request: tiny_http::Request,
        traits: RequestTraits,
        cancelled: Arc<std::sync::atomic::AtomicBool>,
    ) -> Shared {
        Arc::new(Mutex::new(Exchange {
            request: Some(request),
            writer: None,
            traits,
            head: None,
            head_len: 0,
            held_back: false,
            framing: BodyFraming::None,
            cancelled,
            failed: false,
        }))
    }

    /// Takes a body chunk: held back while it may still be the whole body,
    /// else sent (the head first).
    fn write(&mut self, data: Bytes) -> Result<()> {
        if self.request.is_some() && !self.held_back && data.len() <= HOLD_BACK {
            if self.failed {
                return Err(Error::closed("the response was aborted"));
            }
            if let Some(mut head) = self.head.take() {
                self.frame_into(&mut head, &data);
                self.head = Some(head);
                self.held_back = true;
                return Ok(());
            }
        }
        self.commit(&data)
    }

    /// Sends the head if it has not gone out (see `open`), then `data`.
    fn commit(&mut self, data: &[u8]) -> Result<()> {
        if self.request.is_some() {
            self.open()?;
        }
        self.write_framed(data)
    }

    /// Sends the head: reads and discards the unread request body, takes the
    /// writer from tiny_http, writes the head and the held-back bytes (one
    /// buffer, one write).
    fn open(&mut self) -> Result<()> {
        if self.failed {
            return Err(Error::closed("the response was aborted"));
        }
        if self.cancelled.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(Error::aborted("the server stopped at its deadline"));
        }
        let Some(mut request) = self.request.take() else {
            return Ok(());
        };
        if !self.traits.raw_body && !self.traits.body_done {
            let mut sink = vec![0u8; CHUNK];
            loop {
                match request.as_reader().read(&mut sink) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(err) => {
                        self.failed = true;
                        return Err(closed(&err));
                    }
                }
            }
        }
        let out = self
            .head
            .take()
            .ok_or_else(|| Error::contract("response.head-after-start", "no head"))?;
        let mut writer = request.into_writer();
        writer.write_all(&out).map_err(|e| self.fail(&e))?;
        self.writer = Some(writer);
        Ok(())
    }

    fn fail(&mut self, err: &std::io::Error) -> Error {
        self.failed = true;
        self.writer = None;
        closed(err)
    }

    fn frame_into(&self, out: &mut Vec<u8>, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        match self.framing {
            BodyFraming::None => {}
            BodyFraming::Length(_) | BodyFraming::Close => out.extend_from_slice(data),
            BodyFraming::Chunked => {
                out.extend_from_slice(&chunk_size_line(data.len()));
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
            }
        }
    }

    fn write_framed(&mut self, data: &[u8]) -> Result<()> {
        if data.is_empty() || self.framing == BodyFraming::None {
            return Ok(());
        }
        if self.cancelled.load(std::sync::atomic::Ordering::Relaxed) {
            self.poison();
            return Err(Error::aborted("the server stopped at its deadline"));
        }
        let Some(writer) = self.writer.as_mut() else {
            return Err(Error::closed("the response has ended"));
        };
        let result = if self.framing == BodyFraming::Chunked {
            writer
                .write_all(&chunk_size_line(data.len()))
                .and_then(|()| writer.write_all(data))
                .and_then(|()| writer.write_all(b"\r\n"))
        } else {
            writer.write_all(data)
        };
        result.map_err(|e| self.fail(&e))
    }

    fn start(&mut self, head: ResponseHead<'_>) {
        let (out, framing) = encode_head(&head, self.traits);
        self.head_len = out.len();
        self.head = Some(out);
        self.held_back = false;
        self.framing = framing;
    }

    /// Ends the response. One that never went out (completed in one piece)
    /// is written here, head and body in one buffer.
    fn complete(&mut self, trailers: Option<HeaderMap>) -> Result<()> {
        self.commit(&[])?;
        let mut end = Vec::new();
        if self.framing == BodyFraming::Chunked {
            http1::last_chunk(&mut end, trailers.as_ref());
        }
        if let Some(mut writer) = self.writer.take() {
            // Dropping the writer lets tiny_http write the next response on
            // this connection.
            let written = if end.is_empty() {
                Ok(())
            } else {
                writer.write_all(&end)
            };
            written.and_then(|()| writer.flush()).map_err(|e| {
                self.failed = true;
                closed(&e)
            })?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.commit(&[])?;
        match self.writer.as_mut() {
            Some(writer) => writer.flush().map_err(|e| self.fail(&e)),
            None => Ok(()),
        }
    }

    /// Makes an unfinished response unmistakably incomplete. tiny_http gives
    /// no way to close the connection, so a chunked response gets a chunk
    /// header that is not hex: any client fails the body there instead of
    /// waiting. A response with Content-Length just stops short (the client
    /// waits for the rest until it gives up; it never sees it complete).
    fn poison(&mut self) {
        if !self.failed && self.request.is_some() && self.head.is_some() {
            // Nothing went out yet: send the head so the client sees a
            // response that breaks, rather than tiny_http's own 500 (which
            // looks complete). Before `failed` is set: `open` sends nothing
            // once it is.
            let head_len = self.head_len;
            if let Some(head) = self.head.as_mut() {
                head.truncate(head_len);
            }
            let _ = self.open();
        }
        self.failed = true;
        if let Some(mut writer) = self.writer.take() {
            if self.framing == BodyFraming::Chunked {
                let _ = writer.write_all(b"!\r\n\r\n");
            }
            let _ = writer.flush();
        }
    }

    /// Whether tiny_http still holds the request (nothing was sent).
    pub(crate) fn take_unanswered(&mut self) -> Option<tiny_http::Request> {
        self.request.take()
    }

    /// The writer, if the response was started but never completed.
    pub(crate) fn take_writer(&mut self) -> Option<Box<dyn Write + Send>> {
        self.writer.take()
    }
}

/// Encodes the head as the built-in server does (the same rules, from
/// [`serverbridge::http1`]), with tiny_http's `Server` field when the app set
/// none (as tiny_http's own `respond` adds it). tiny_http closes by itself
/// only when the request asked; an app's `Connection: close` is passed on,
/// and the client closes.
fn encode_head(head: &ResponseHead<'_>, traits: RequestTraits) -> (Vec<u8>, BodyFraming) {
    let mut cx = HeadContext::default();
    cx.head_request = traits.head_request;
    cx.http10 = traits.http10;
    cx.closing = traits.closing;
    cx.keep_alive_10 = traits.keep_alive_10;
    cx.connect_request = traits.connect_request;
    cx.default_server = Some(SERVER);
    // Room for a typical head and a small body after it.
    let mut out = Vec::with_capacity(512);
    let encoded = http1::encode_head(&mut out, head.status, head.reason, head.headers, cx);
    (out, encoded.framing)
}

/// Answers a request the adapter refuses (a target or field that does not
/// convert) with `400` and `Connection: close`, framed as every response
/// here is: tiny_http's own `respond` cannot say `Connection: close`, so
/// a client would keep the connection. (tiny_http keeps reading it: it
/// decides that from the request alone.)
pub(crate) fn refuse(request: tiny_http::Request) {
    let traits = RequestTraits {
        http10: *request.http_version() == tiny_http::HTTPVersion(1, 0),
        closing: true,
        ..RequestTraits::default()
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_LENGTH,
        http::HeaderValue::from_static("0"),
    );
    let head = ResponseHead {
        status: http::StatusCode::BAD_REQUEST,
        reason: "Bad Request",
        version: http::Version::HTTP_11,
        headers: &headers,
    };
    let (out, _) = encode_head(&head, traits);
    // Taking the writer ends the request; its unread body is drained first.
    let mut writer = request.into_writer();
    let _ = writer.write_all(&out).and_then(|()| writer.flush());
}

/// The response sink: the `dyn ResponseBody` feature.
pub(crate) struct TinySink {
    pub(crate) shared: Shared,
}

impl std::fmt::Debug for TinySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TinySink")
    }
}

// The worker thread is this request's: a write that waits for the socket
// blocks only it, so the "now" fast paths take everything.
#[async_trait]
impl ResponseBody for TinySink {
    fn start_now(&mut self, head: ResponseHead<'_>) -> Option<Result<()>> {
        lock(&self.shared).start(head);
        Some(Ok(()))
    }

    fn write_now(&mut self, data: Bytes) -> Result<Option<Bytes>> {
        lock(&self.shared).write(data)?;
        Ok(None)
    }

    fn complete_now(&mut self, trailers: &mut Option<HeaderMap>) -> Option<Result<()>> {
        Some(lock(&self.shared).complete(trailers.take()))
    }

    /// The whole response under one lock.
    fn respond_now(
        &mut self,
        head: ResponseHead<'_>,
        body: &mut Option<Bytes>,
    ) -> Option<Result<()>> {
        let mut exchange = lock(&self.shared);
        exchange.start(head);
        if let Some(data) = body.take() {
            if let Err(err) = exchange.write(data) {
                return Some(Err(err));
            }
        }
        Some(exchange.complete(None))
    }

    async fn start(&mut self, head: ResponseHead<'_>) -> Result<()> {
        lock(&self.shared).start(head);
        Ok(())
    }

    async fn write(&mut self, data: Bytes) -> Result<()> {
        lock(&self.shared).write(data)
    }

    async fn flush(&mut self) -> Result<()> {
        lock(&self.shared).flush()
    }

    async fn complete(&mut self, trailers: Option<HeaderMap>) -> Result<()> {
        lock(&self.shared).complete(trailers)
    }

    fn abort(&mut self, _reason: &Error) {
        lock(&self.shared).poison();
    }
}

/// The request body: each poll reads one piece from tiny_http's reader
/// (chunked decoding and `Expect: 100-continue` are tiny_http's).
pub(crate) struct TinyBody {
    shared: Shared,
    remaining: Option<u64>,
    ended: bool,
}

impl TinyBody {
    pub(crate) fn new(shared: Shared, length: Option<u64>) -> Self {
        TinyBody {
            shared,
            remaining: length,
            ended: length == Some(0),
        }
    }

    fn read_piece(&mut self) -> Option<Result<Frame<Bytes>>> {
        let mut exchange = lock(&self.shared);
        let exchange = &mut *exchange;
        let Some(request) = exchange.request.as_mut() else {
            self.ended = true;
            return Some(Err(Error::closed(
                "the response has started: tiny_http cannot read the request body after that",
            )));
        };
        let want = self
            .remaining
            .map_or(CHUNK, |r| usize::try_from(r).unwrap_or(CHUNK).min(CHUNK));
        let mut buf = BytesMut::zeroed(want);
        loop {
            return match request.as_reader().read(&mut buf) {
                Ok(0) => {
                    self.ended = true;
                    exchange.traits.body_done = true;
                    if self.remaining.is_some_and(|r| r > 0) {
                        Some(Err(Error::body_cut_short(
                            "the client closed the connection before the end of the body",
                        )))
                    } else {
                        None
                    }
                }
                Ok(n) => {
                    buf.truncate(n);
                    if let Some(r) = self.remaining.as_mut() {
                        *r = r.saturating_sub(n as u64);
                        self.ended = *r == 0;
                    }
                    exchange.traits.body_done |= self.ended;
                    Some(Ok(Frame::data(buf.freeze())))
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    self.ended = true;
                    // The body cannot be read past this: not drained before
                    // the answer, and the connection is done with (tiny_http
                    // would read what follows as a request).
                    exchange.traits.body_done = true;
                    exchange.traits.closing = true;
                    // tiny_http's decoder says `InvalidInput` or
                    // `InvalidData` for a malformed chunked body.
                    Some(Err(Error::body_read(&err)))
                }
            };
        }
    }
}

impl Body for TinyBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        // A blocking read: the worker thread belongs to this request.
        Poll::Ready(this.read_piece())
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
