//! Bodies across the edge, streamed both ways with a small bound.
//!
//! - Request: actix's `Payload` is `!Send` (it lives on the worker), and the
//!   core's `RequestBody` must be `Send`. A small local task on the worker
//!   (the *pump*) reads the payload only when the channel has room for one
//!   chunk, so at most one chunk waits between actix and the app; actix's own
//!   payload buffer stops reading the socket when that chunk is not taken.
//! - Response: [`ActixBody`] hands the application's pipe body to actix as a
//!   `MessageBody`, chunk by chunk as actix pulls; a declared length goes out
//!   as `Content-Length`, anything else chunked.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use bytes::Bytes;
use futures::StreamExt;
use http::StatusCode;
use http_body::{Body, Frame, SizeHint};
use serverbridge::{BoxError, Error, PipeBody};
use tokio::sync::mpsc;

/// How many chunks may wait between the pump and the app: one.
const CHUNKS_IN_FLIGHT: usize = 1;

/// The request body the application reads: chunks from the pump.
#[derive(Debug)]
pub(crate) struct PayloadBody {
    chunks: mpsc::Receiver<Result<Bytes, BoxError>>,
    /// Bytes still expected, when the request declared its length.
    remaining: Option<u64>,
}

/// What a failed read of actix's payload means to the app, as on the
/// built-in server: a malformed body (actix reports a bad chunk as
/// `EncodingCorrupted`) is a parse error with `400`; a body cut short, a
/// reset or any other I/O failure means the client is gone
/// ([`Error::is_closed`], `400` should the app answer).
fn payload_error(err: PayloadError) -> Error {
    match err {
        PayloadError::EncodingCorrupted => Error::parse(
            format!("malformed request body: {err}"),
            StatusCode::BAD_REQUEST,
        ),
        PayloadError::Io(io) => Error::body_read(&io),
        other => Error::body_cut_short(format!("reading the request body: {other}")),
    }
}

impl PayloadBody {
    /// Starts the pump on the current worker and returns the app's end.
    /// `length` is the declared Content-Length, if any.
    pub(crate) fn spawn(mut payload: Payload, length: Option<u64>) -> PayloadBody {
        let (tx, chunks) = mpsc::channel(CHUNKS_IN_FLIGHT);
        actix_rt::spawn(async move {
            // Room first, then read: a slow reader stops the pump, so
            // nothing piles up here. A dropped body (the request is over)
            // ends the pump, which drops the payload.
            while let Ok(permit) = tx.reserve().await {
                match payload.next().await {
                    Some(Ok(chunk)) => permit.send(Ok(chunk)),
                    Some(Err(err)) => {
                        permit.send(Err(payload_error(err).into()));
                        break;
                    }
                    None => break,
                }
            }
        });
        PayloadBody {
            chunks,
            remaining: length,
        }
    }
}

impl Body for PayloadBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.chunks.poll_recv(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(remaining) = &mut self.remaining {
                    *remaining = remaining.saturating_sub(chunk.len() as u64);
                }
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(err))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == Some(0)
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

/// The application's response body as actix's `MessageBody`.
#[derive(Debug)]
pub(crate) struct ActixBody {
    body: Option<PipeBody>,
    /// The whole rest of the body, taken from `body` (see `try_into_bytes`).
    ready: Option<Bytes>,
    /// Reported once instead of a body (a response without a head).
    failure: Option<Error>,
    size: BodySize,
}

impl ActixBody {
    /// `size`: what actix frames the body with (`Sized(n)` writes
    /// `Content-Length: n`, `Stream` chunks it, `None` sends no body).
    pub(crate) fn new(body: PipeBody, size: BodySize) -> ActixBody {
        ActixBody {
            body: Some(body),
            ready: None,
            failure: None,
            size,
        }
    }

    /// A body that fails at once: actix drops the connection.
    pub(crate) fn failed(err: Error) -> ActixBody {
        ActixBody {
            body: None,
            ready: None,
            failure: Some(err),
            size: BodySize::Stream,
        }
    }
}

impl MessageBody for ActixBody {
    type Error = Error;

    fn size(&self) -> BodySize {
        self.size
    }

    /// A response the application finished before actix took its head goes
    /// out as one buffer: actix then neither boxes nor polls a stream. Only
    /// with a declared length the buffer meets (else the body streams, and
    /// actix reports the mismatch as it would).
    fn try_into_bytes(mut self) -> Result<Bytes, Self> {
        let BodySize::Sized(length) = self.size else {
            return Err(self);
        };
        let Some(body) = self.body.take() else {
            return Err(self);
        };
        match body.try_into_bytes() {
            Ok(bytes) if bytes.len() as u64 == length => Ok(bytes),
            Ok(bytes) => {
                self.ready = Some(bytes);
                Err(self)
            }
            Err(body) => {
                self.body = Some(body);
                Err(self)
            }
        }
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Error>>> {
        if let Some(bytes) = self.ready.take().filter(|b| !b.is_empty()) {
            return Poll::Ready(Some(Ok(bytes)));
        }
        let Some(body) = self.body.as_mut() else {
            return Poll::Ready(self.failure.take().map(Err));
        };
        loop {
            let frame = match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(Err(err))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            };
            // Trailers cannot go out through actix: the adapter does not
            // offer `ResponseTrailers`, so only an empty set can get here.
            if let Ok(data) = frame.into_data() {
                if !data.is_empty() {
                    return Poll::Ready(Some(Ok(data)));
                }
            }
        }
    }
}
