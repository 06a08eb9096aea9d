//! [`RecordingSink`]: a [`ResponseBody`] that records what it was told.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, StatusCode};

use crate::error::{Error, Result};
use crate::feature::{RequestFeature, ResponseBody, ResponseFeature, ResponseHead};
use crate::features::Features;

/// One call the sink received, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkEvent {
    /// `start` with this status.
    Start(StatusCode),
    /// `write` of this many bytes.
    Write(usize),
    /// `flush`.
    Flush,
    /// `complete` (with trailers or not).
    Complete {
        /// Whether trailers were passed.
        trailers: bool,
    },
    /// `abort`.
    Abort,
    /// `respond_now` took a whole response: this status and this many body
    /// bytes (only after [`RecordingSink::take_whole_responses`]).
    Respond(StatusCode, usize),
}

#[derive(Debug, Default)]
struct Recorded {
    status: Option<StatusCode>,
    reason: Option<String>,
    headers: Option<HeaderMap>,
    body: BytesMut,
    trailers: Option<HeaderMap>,
    events: Vec<SinkEvent>,
    take_whole: bool,
}

/// A response sink for tests of middleware and servers: records the head, the
/// body, the trailers and the order of calls.
#[derive(Clone, Debug, Default)]
pub struct RecordingSink {
    recorded: Arc<Mutex<Recorded>>,
}

impl RecordingSink {
    /// Features for a request with no body: [`RequestFeature`],
    /// [`ResponseFeature`] and this sink; returns a handle to read what was
    /// recorded.
    pub fn features(method: &str, target: &str) -> (Features, RecordingSink) {
        let request = http::Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET))
            .uri(target)
            .body(())
            .unwrap_or_default();
        let (parts, ()) = request.into_parts();
        let mut features = Features::new();
        features.insert(RequestFeature::from_parts(parts, Default::default()));
        features.insert(ResponseFeature::default());
        let sink = RecordingSink::default();
        features.insert_dyn::<dyn ResponseBody>(Box::new(sink.clone()));
        (features, sink)
    }

    /// Makes the sink take whole responses through
    /// [`ResponseBody::respond_now`] (recorded as [`SinkEvent::Respond`]),
    /// as a server's fast path would; by default it declines, so every
    /// response arrives as `start`, `write` and `complete`.
    pub fn take_whole_responses(&self) {
        self.with(|r| r.take_whole = true);
    }

    fn with<T>(&self, f: impl FnOnce(&mut Recorded) -> T) -> T {
        f(&mut self.recorded.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The status the head was sent with.
    pub fn status(&self) -> Option<StatusCode> {
        self.with(|r| r.status)
    }

    /// The reason phrase the head was sent with.
    pub fn reason(&self) -> Option<String> {
        self.with(|r| r.reason.clone())
    }

    /// The headers the head was sent with.
    pub fn headers(&self) -> Option<HeaderMap> {
        self.with(|r| r.headers.clone())
    }

    /// The body bytes written.
    pub fn body(&self) -> Bytes {
        self.with(|r| Bytes::copy_from_slice(&r.body))
    }

    /// The trailers passed to `complete`.
    pub fn trailers(&self) -> Option<HeaderMap> {
        self.with(|r| r.trailers.clone())
    }

    /// Every call, in order.
    pub fn events(&self) -> Vec<SinkEvent> {
        self.with(|r| r.events.clone())
    }
}

#[async_trait]
impl ResponseBody for RecordingSink {
    fn respond_now(
        &mut self,
        head: ResponseHead<'_>,
        body: &mut Option<Bytes>,
    ) -> Option<Result<()>> {
        self.with(|r| {
            if !r.take_whole {
                return None;
            }
            let data = body.take().unwrap_or_default();
            r.status = Some(head.status);
            r.reason = Some(head.reason.to_owned());
            r.headers = Some(head.headers.clone());
            r.body.extend_from_slice(&data);
            r.events.push(SinkEvent::Respond(head.status, data.len()));
            Some(Ok(()))
        })
    }

    async fn start(&mut self, head: ResponseHead<'_>) -> Result<()> {
        self.with(|r| {
            r.status = Some(head.status);
            r.reason = Some(head.reason.to_owned());
            r.headers = Some(head.headers.clone());
            r.events.push(SinkEvent::Start(head.status));
        });
        Ok(())
    }

    async fn write(&mut self, data: Bytes) -> Result<()> {
        self.with(|r| {
            r.body.extend_from_slice(&data);
            r.events.push(SinkEvent::Write(data.len()));
        });
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        self.with(|r| r.events.push(SinkEvent::Flush));
        Ok(())
    }

    async fn complete(&mut self, trailers: Option<HeaderMap>) -> Result<()> {
        self.with(|r| {
            r.events.push(SinkEvent::Complete {
                trailers: trailers.is_some(),
            });
            r.trailers = trailers;
        });
        Ok(())
    }

    fn abort(&mut self, _reason: &Error) {
        self.with(|r| r.events.push(SinkEvent::Abort));
    }
}
