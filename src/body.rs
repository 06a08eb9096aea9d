//! Request and response body types.
//!
//! [`RequestBody`] is the streaming request body every server hands to the
//! application: an [`http_body::Body`] of [`Bytes`] with trailers, plus the
//! conveniences apps need (read a chunk, read everything within a limit).
//! [`BoxBody`] is the pull body an application hands back through
//! [`ResponseBody::send_body`](crate::feature::ResponseBody::send_body).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use sync_wrapper::SyncWrapper;

use crate::error::{BoxError, Error, Result};
use crate::feature::MaxRequestBodySize;

/// A type-erased pull body of [`Bytes`], the currency of
/// [`send_body`](crate::feature::ResponseBody::send_body).
pub type BoxBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Error>;

/// Boxes any body whose data is a [`Buf`] and whose error converts to a
/// [`BoxError`].
///
/// # Example
///
/// ```
/// let body = serverbridge::body::boxed(http_body_util::Full::new(bytes::Bytes::from("hi")));
/// assert_eq!(http_body::Body::size_hint(&body).exact(), Some(2));
/// ```
pub fn boxed<B>(body: B) -> BoxBody
where
    B: Body + Send + 'static,
    B::Data: Buf,
    B::Error: Into<BoxError>,
{
    // Our own adapter rather than `map_frame`: it keeps the size hint, which
    // is what gives a pulled body its `Content-Length`.
    IntoBytes { inner: body }.boxed_unsync()
}

pin_project_lite::pin_project! {
    struct IntoBytes<B> {
        #[pin]
        inner: B,
    }
}

impl<B> Body for IntoBytes<B>
where
    B: Body,
    B::Data: Buf,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match ready!(self.project().inner.poll_frame(cx)) {
            Some(Ok(frame)) => Poll::Ready(Some(Ok(
                frame.map_data(|mut data| data.copy_to_bytes(data.remaining()))
            ))),
            Some(Err(err)) => Poll::Ready(Some(Err(Error::from(err.into())))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

type DynBody = Pin<Box<dyn Body<Data = Bytes, Error = Error> + Send>>;

enum Kind {
    Empty,
    Full(Option<Bytes>),
    /// The body, and its size hint as of the last poll (`SyncWrapper`
    /// hands out only `&mut`, and `size_hint` takes `&self`).
    Stream(SyncWrapper<DynBody>, SizeHint),
    /// Failed past its limit (of this many bytes): every later read fails
    /// the same way, never reads as a body that ended.
    OverLimit(u64),
}

/// A slot the request trailers land in once the body has been read to its end;
/// shared between [`RequestBody`] and the
/// [`RequestTrailers`](crate::feature::RequestTrailers) feature.
pub(crate) type TrailerSlot = Arc<Mutex<Option<HeaderMap>>>;

struct Limit {
    feature: MaxRequestBodySize,
    seen: u64,
    checked_hint: bool,
}

/// The streaming request body.
///
/// Implements [`http_body::Body`]; data frames are [`Bytes`], a final trailers
/// frame may follow. Errors are [`Error`]s: a body cut short by the client is
/// [`Error::is_closed`], one over its limit is [`Error::is_limit`].
///
/// # Example
///
/// ```
/// # tokio_test_block_on(async {
/// use serverbridge::body::RequestBody;
///
/// let mut body = RequestBody::from("hello");
/// assert_eq!(body.read_to_end(1024).await.unwrap(), "hello");
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub struct RequestBody {
    kind: Kind,
    trailers: Option<TrailerSlot>,
    limit: Option<Limit>,
}

impl Default for RequestBody {
    fn default() -> Self {
        RequestBody::empty()
    }
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Empty => "empty",
            Kind::Full(_) => "full",
            Kind::Stream(..) => "stream",
            Kind::OverLimit(_) => "over its limit",
        };
        f.debug_struct("RequestBody")
            .field("kind", &kind)
            .field("size_hint", &self.size_hint())
            .finish()
    }
}

impl RequestBody {
    /// A body with no bytes.
    pub const fn empty() -> Self {
        RequestBody {
            kind: Kind::Empty,
            trailers: None,
            limit: None,
        }
    }

    /// A body of one whole buffer.
    pub fn full(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        if data.is_empty() {
            return RequestBody::empty();
        }
        RequestBody {
            kind: Kind::Full(Some(data)),
            trailers: None,
            limit: None,
        }
    }

    /// Wraps any body (hyper's `Incoming`, a channel, a stream …).
    pub fn new<B>(body: B) -> Self
    where
        B: Body + Send + 'static,
        B::Data: Buf,
        B::Error: Into<BoxError>,
    {
        RequestBody {
            kind: {
                let hint = body.size_hint();
                Kind::Stream(SyncWrapper::new(Box::pin(boxed(body))), hint)
            },
            trailers: None,
            limit: None,
        }
    }

    /// Attaches the slot the trailers are copied into when the body ends.
    pub(crate) fn set_trailer_slot(&mut self, slot: TrailerSlot) {
        self.trailers = Some(slot);
    }

    /// Enforces `limit` on this body: the first read makes the limit read-only,
    /// and reading past it fails with an [`Error::is_limit`] error carrying
    /// `413 Payload Too Large`. A body whose declared length already exceeds
    /// the limit fails on the first read, before any byte is consumed.
    pub fn with_limit(mut self, limit: MaxRequestBodySize) -> Self {
        self.limit = Some(Limit {
            feature: limit,
            seen: 0,
            checked_hint: false,
        });
        self
    }

    /// Reads the next data chunk; `None` at the end. Trailers are skipped (and
    /// land in the [`RequestTrailers`](crate::feature::RequestTrailers) feature).
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            match self.frame().await {
                None => return Ok(None),
                Some(Err(err)) => return Err(err),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            return Ok(Some(data));
                        }
                    }
                }
            }
        }
    }

    /// Reads the rest of the body into one buffer, failing with
    /// [`Error::is_limit`] (status 413) once it grows past `max` bytes.
    pub async fn read_to_end(&mut self, max: usize) -> Result<Bytes> {
        let mut first: Option<Bytes> = None;
        let mut rest = BytesMut::new();
        let mut total = 0usize;
        while let Some(chunk) = self.chunk().await? {
            total += chunk.len();
            if total > max {
                return Err(Error::limit(
                    format!("request body larger than {max} bytes"),
                    StatusCode::PAYLOAD_TOO_LARGE,
                ));
            }
            match &first {
                None if rest.is_empty() => first = Some(chunk),
                _ => {
                    if let Some(first) = first.take() {
                        rest.extend_from_slice(&first);
                    }
                    rest.extend_from_slice(&chunk);
                }
            }
        }
        Ok(first.unwrap_or_else(|| rest.freeze()))
    }

    fn check_limit_before(&mut self) -> Option<(Error, u64)> {
        // What the body says it holds (a stream's declared length included)
        // is refused before a byte is read.
        let hint = self.size_hint();
        let limit = self.limit.as_mut()?;
        if !limit.checked_hint {
            limit.checked_hint = true;
            limit.feature.mark_read_only();
            if let Some(max) = limit.feature.get() {
                if hint.lower() > max {
                    return Some((limit_error(max), max));
                }
            }
        }
        None
    }

    fn count(&mut self, frame: &Frame<Bytes>) -> Option<(Error, u64)> {
        let limit = self.limit.as_mut()?;
        if let Some(data) = frame.data_ref() {
            limit.seen += data.len() as u64;
            if let Some(max) = limit.feature.get() {
                if limit.seen > max {
                    return Some((limit_error(max), max));
                }
            }
        }
        None
    }

    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>>>> {
        match &mut self.kind {
            Kind::Empty => Poll::Ready(None),
            Kind::OverLimit(max) => Poll::Ready(Some(Err(limit_error(*max)))),
            Kind::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Kind::Stream(body, hint) => {
                let mut body = body.get_mut().as_mut();
                let polled = body.as_mut().poll_frame(cx);
                *hint = body.size_hint();
                polled
            }
        }
    }

    async fn frame(&mut self) -> Option<Result<Frame<Bytes>>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_frame(cx)).await
    }
}

#[cold]
fn limit_error(max: u64) -> Error {
    Error::limit(
        format!("request body larger than the limit of {max} bytes"),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Some((err, max)) = this.check_limit_before() {
            this.kind = Kind::OverLimit(max);
            return Poll::Ready(Some(Err(err)));
        }
        let frame = ready!(this.poll_inner(cx));
        match frame {
            Some(Ok(frame)) => {
                if let Some((err, max)) = this.count(&frame) {
                    this.kind = Kind::OverLimit(max);
                    return Poll::Ready(Some(Err(err)));
                }
                if let (Some(trailers), Some(slot)) = (frame.trailers_ref(), &this.trailers) {
                    if let Ok(mut slot) = slot.lock() {
                        *slot = Some(trailers.clone());
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            None => {
                // Read to its end: the trailers are available, empty when
                // none came (ASP.NET Core's `Available`).
                if let Some(slot) = &this.trailers {
                    if let Ok(mut slot) = slot.lock() {
                        slot.get_or_insert_with(HeaderMap::new);
                    }
                }
                Poll::Ready(None)
            }
            other => Poll::Ready(other),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(data) => data.is_none(),
            // `SyncWrapper` only hands out `&mut`; a stream answers on poll.
            Kind::Stream(..) | Kind::OverLimit(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Kind::Stream(_, hint) => *hint,
            Kind::OverLimit(_) => SizeHint::default(),
        }
    }
}

impl From<Bytes> for RequestBody {
    fn from(data: Bytes) -> Self {
        RequestBody::full(data)
    }
}

impl From<&'static str> for RequestBody {
    fn from(data: &'static str) -> Self {
        RequestBody::full(Bytes::from_static(data.as_bytes()))
    }
}

impl From<String> for RequestBody {
    fn from(data: String) -> Self {
        RequestBody::full(data)
    }
}

impl From<Vec<u8>> for RequestBody {
    fn from(data: Vec<u8>) -> Self {
        RequestBody::full(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    fn stream(chunks: Vec<&'static str>, trailers: Option<HeaderMap>) -> RequestBody {
        let mut frames: Vec<Result<Frame<Bytes>, Error>> = chunks
            .into_iter()
            .map(|c| Ok(Frame::data(Bytes::from_static(c.as_bytes()))))
            .collect();
        if let Some(t) = trailers {
            frames.push(Ok(Frame::trailers(t)));
        }
        RequestBody::new(StreamBody::new(futures::stream::iter(frames)))
    }

    #[tokio::test]
    async fn read_to_end_joins_chunks_and_enforces_max() {
        let mut body = stream(vec!["ab", "cd", "e"], None);
        assert_eq!(body.read_to_end(5).await.unwrap(), "abcde");
        let mut body = stream(vec!["ab", "cd", "e"], None);
        let err = body.read_to_end(4).await.unwrap_err();
        assert!(err.is_limit());
        assert_eq!(err.status(), Some(StatusCode::PAYLOAD_TOO_LARGE));
    }

    #[tokio::test]
    async fn trailers_land_in_the_slot() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-sum", "9".parse().unwrap());
        let mut body = stream(vec!["a"], Some(trailers));
        let slot: TrailerSlot = Default::default();
        body.set_trailer_slot(slot.clone());
        assert_eq!(body.chunk().await.unwrap().unwrap(), "a");
        assert!(slot.lock().unwrap().is_none());
        assert!(body.chunk().await.unwrap().is_none());
        assert_eq!(slot.lock().unwrap().as_ref().unwrap()["x-sum"], "9");
    }

    #[tokio::test]
    async fn limit_counts_streamed_bytes_and_freezes_the_setting() {
        let limit = MaxRequestBodySize::new(Some(3));
        let mut body = stream(vec!["ab", "cd"], None).with_limit(limit.clone());
        assert!(!limit.is_read_only());
        assert_eq!(body.chunk().await.unwrap().unwrap(), "ab");
        assert!(limit.is_read_only());
        assert!(limit.set(Some(10)).is_err());
        assert!(body.chunk().await.unwrap_err().is_limit());
    }

    #[tokio::test]
    async fn limit_rejects_a_declared_length_before_reading() {
        let limit = MaxRequestBodySize::new(Some(3));
        let body = RequestBody::full("abcd").with_limit(limit);
        let err = body.collect().await.unwrap_err();
        assert!(err.is_limit());
    }
}
