//! Client-side faults on demand: what a misbehaving or vanishing client does
//! to a request body, in either TestServer mode.

use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, HeaderValue};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};

use crate::body::RequestBody;
use crate::error::Error;
use crate::feature::RequestLifetime;

/// A fault the test client injects into its request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The client goes away before sending any body byte.
    AbortBeforeBody,
    /// The client goes away after sending this many body bytes.
    AbortAfterBodyBytes(usize),
    /// The body arrives `bytes` at a time, one piece per `every` (use
    /// tokio's paused clock in tests: no real waiting).
    Trickle {
        /// Bytes per piece.
        bytes: usize,
        /// Time between pieces.
        every: Duration,
    },
    /// The request declares this `Content-Length`, but the client sends only
    /// the body it has and then closes (end of stream).
    TruncatedBody {
        /// The declared length (more than the body has).
        declared: u64,
    },
}

fn gone() -> Error {
    Error::body_cut_short("the client went away before the end of the body")
}

type Frames = Result<Frame<Bytes>, Error>;

impl Fault {
    /// Whether the client goes away mid-request (it then reads no response).
    pub(super) fn client_goes_away(self) -> bool {
        matches!(self, Fault::AbortBeforeBody | Fault::AbortAfterBodyBytes(_))
    }
}

/// The body's data frames, then `Err(gone)` instead of the end. In direct
/// mode `lifetime` is the app's too and is fired here (the client is gone);
/// on the wire the failing body makes the client drop the connection, and the
/// server notices by itself.
fn cut_after(body: RequestBody, limit: usize, lifetime: Option<RequestLifetime>) -> RequestBody {
    let data = body.into_data_stream();
    let frames = stream::unfold(
        (data, limit, Some(lifetime)),
        |(mut data, left, lifetime)| async move {
            let lifetime = lifetime?;
            if left > 0 {
                if let Some(Ok(mut chunk)) = data.next().await {
                    let take = chunk.len().min(left);
                    let rest = left - take;
                    let piece = chunk.split_to(take);
                    let state = (data, rest, Some(lifetime));
                    return Some((Ok::<_, Error>(Frame::data(piece)), state));
                }
            }
            // Yield first, as a socket would between sends: a client (hyper
            // on the wire) flushes what it has before the failure ends it.
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
            if let Some(lifetime) = lifetime {
                lifetime.abort();
            }
            Some((Err(gone()), (data, 0, None)))
        },
    );
    RequestBody::new(StreamBody::new(frames))
}

/// The body re-cut into pieces of `bytes`, one per `every`.
/// The client goes away right after it sent what it sends: a real server
/// notices the closed connection whether or not the app reads the body, so
/// the request's lifetime fires a few scheduler turns after the request is
/// dispatched, not only when the app reads up to the cut. (Without a tokio
/// runtime, it fires at the cut.)
fn gone_soon(lifetime: Option<&RequestLifetime>) {
    let (Some(lifetime), Ok(runtime)) = (lifetime, tokio::runtime::Handle::try_current()) else {
        return;
    };
    let lifetime = lifetime.clone();
    runtime.spawn(async move {
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        lifetime.abort();
    });
}

fn trickle(body: RequestBody, bytes: usize, every: Duration) -> RequestBody {
    let bytes = bytes.max(1);
    // Data frames are cut into pieces; trailers pass as they are.
    let pieces = http_body_util::BodyStream::new(body).flat_map(move |frame| {
        let pieces: Vec<Frames> = match frame.map(Frame::into_data) {
            Ok(Ok(chunk)) => chunk
                .chunks(bytes)
                .map(|piece| Ok(Frame::data(Bytes::copy_from_slice(piece))))
                .collect(),
            Ok(Err(other)) => vec![Ok(other)],
            Err(err) => vec![Err(err)],
        };
        stream::iter(pieces)
    });
    let paced = pieces.then(move |piece| async move {
        tokio::time::sleep(every).await;
        piece
    });
    RequestBody::new(StreamBody::new(paced))
}

/// Applies `fault` to a request's headers and body; `lifetime` is the app's
/// (direct mode) or `None` (wire mode: the server sees the connection end).
pub(super) fn apply(
    fault: Fault,
    headers: &mut HeaderMap,
    body: RequestBody,
    lifetime: Option<RequestLifetime>,
) -> RequestBody {
    match fault {
        // With no body to send, the request is whole and the client's close
        // is a half-close as far as a server can tell: nothing fires (the
        // client just never reads the response).
        Fault::AbortBeforeBody | Fault::AbortAfterBodyBytes(_)
            if http_body::Body::is_end_stream(&body) =>
        {
            body
        }
        Fault::AbortBeforeBody => {
            gone_soon(lifetime.as_ref());
            cut_after(body, 0, lifetime)
        }
        Fault::AbortAfterBodyBytes(n) => {
            gone_soon(lifetime.as_ref());
            cut_after(body, n, lifetime)
        }
        Fault::Trickle { bytes, every } => trickle(body, bytes, every),
        Fault::TruncatedBody { declared } => {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(declared));
            cut_after(body, usize::MAX, lifetime)
        }
    }
}
