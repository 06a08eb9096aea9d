//! Runs an application and turns what it pushes into [`ResponseBody`] into a
//! pulled `http::Response`: the machinery behind "an Application is a
//! `tower::Service`" and TestServer's direct mode.
//!
//! The request's lifecycle future (the *driver*) is polled by whoever waits
//! for the response, then by whoever reads its body: no task is spawned on the
//! normal path. If the response or its body is dropped before the driver is
//! done (the client went away), the pipe fires the request's
//! [`RequestLifetime`], makes further writes fail with
//! [`Error::is_closed`], and spawns the rest of the driver on the current
//! tokio runtime so `on_completed` and `dispose_context` still run.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, Response};
use http_body::{Body, Frame, SizeHint};

use crate::body::BoxBody;
use crate::error::{Error, Result};
use crate::feature::{RequestLifetime, ResponseBody, ResponseHead};
use crate::features::Features;

/// How many body bytes may wait in the pipe before `write` waits for the
/// reader: the backpressure bound of a client that stops reading.
pub(crate) const PIPE_CAPACITY: usize = 64 * 1024;

/// A custom reason phrase, carried in the response extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReasonPhrase(pub String);

enum End {
    Open,
    Complete,
    Passthrough(BoxBody),
    Aborted,
    Taken,
}

/// The frames waiting for the reader, in order. Most responses are one
/// frame: it waits in `first`, and the queue allocates only for more.
#[derive(Default)]
struct Frames {
    first: Option<Frame<Bytes>>,
    rest: VecDeque<Frame<Bytes>>,
}

impl Frames {
    fn push_back(&mut self, frame: Frame<Bytes>) {
        // `first` is taken before `rest`, so it may be filled only while
        // `rest` is empty.
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(frame);
        } else {
            self.rest.push_back(frame);
        }
    }

    fn pop_front(&mut self) -> Option<Frame<Bytes>> {
        self.first.take().or_else(|| self.rest.pop_front())
    }

    fn is_empty(&self) -> bool {
        self.first.is_none() && self.rest.is_empty()
    }

    fn clear(&mut self) {
        self.first = None;
        self.rest.clear();
    }
}

struct Shared {
    head: Option<http::response::Parts>,
    frames: Frames,
    queued: usize,
    end: End,
    reader_gone: bool,
    producer: Option<Waker>,
    /// The last request's driver slot, spent, for the next one.
    spare: Option<Driver>,
}

/// The pipe: its state, and a flag the reader's guard raises when it goes
/// (a store, not a lock: the guard of a settled body has nothing else to
/// tell).
struct Pipe {
    state: Mutex<Shared>,
    /// The reader's guard is gone: with the collection's link and sink the
    /// only holders left, the pipe may be reused.
    guard_dropped: AtomicBool,
}

impl Pipe {
    fn new(state: Shared) -> SharedRef {
        Arc::new(Pipe {
            state: Mutex::new(state),
            guard_dropped: AtomicBool::new(false),
        })
    }
}

type SharedRef = Arc<Pipe>;

fn lock(shared: &SharedRef) -> MutexGuard<'_, Shared> {
    // A poisoned lock only means a panic elsewhere mid-update; the data is
    // plain queues and flags, still coherent enough to finish or fail.
    shared.state.lock().unwrap_or_else(|p| p.into_inner())
}

/// The [`ResponseBody`] end of the pipe.
pub(crate) struct PipeSink {
    shared: SharedRef,
}

impl fmt::Debug for PipeSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PipeSink")
    }
}

#[cold]
fn reader_gone() -> Error {
    Error::closed("the client stopped reading the response")
}

/// The reader's copy of the head.
fn response_parts(head: ResponseHead<'_>) -> http::response::Parts {
    let (mut parts, ()) = Response::new(()).into_parts();
    parts.status = head.status;
    parts.version = head.version;
    parts.headers = head.headers.clone();
    if head.status.canonical_reason() != Some(head.reason) {
        parts
            .extensions
            .insert(ReasonPhrase(head.reason.to_owned()));
    }
    parts
}

impl PipeSink {
    fn start_sync(&mut self, head: ResponseHead<'_>) -> Result<()> {
        let parts = response_parts(head);
        let mut shared = lock(&self.shared);
        if shared.reader_gone {
            return Err(reader_gone());
        }
        shared.head = Some(parts);
        Ok(())
    }

    /// Ends the body. Nothing to do once the reader is gone (or the pipe
    /// is shut in a pooled collection, where the last reader may still be
    /// taking its frames and must see them end as they did).
    fn complete_sync(&mut self, trailers: Option<HeaderMap>) {
        let mut shared = lock(&self.shared);
        if shared.reader_gone {
            return;
        }
        if let Some(trailers) = trailers {
            shared.frames.push_back(Frame::trailers(trailers));
        }
        shared.end = End::Complete;
    }
}

#[async_trait]
impl ResponseBody for PipeSink {
    fn start_now(&mut self, head: ResponseHead<'_>) -> Option<Result<()>> {
        Some(self.start_sync(head))
    }

    /// The head, the body and the end under one lock.
    fn respond_now(
        &mut self,
        head: ResponseHead<'_>,
        body: &mut Option<Bytes>,
    ) -> Option<Result<()>> {
        let parts = response_parts(head);
        let mut shared = lock(&self.shared);
        if shared.reader_gone {
            return Some(Err(reader_gone()));
        }
        shared.head = Some(parts);
        if let Some(data) = body.take().filter(|d| !d.is_empty()) {
            shared.push_data(data);
        }
        shared.end = End::Complete;
        Some(Ok(()))
    }

    fn write_now(&mut self, data: Bytes) -> Result<Option<Bytes>> {
        let mut shared = lock(&self.shared);
        if shared.reader_gone {
            return Err(reader_gone());
        }
        if shared.queued >= PIPE_CAPACITY {
            return Ok(Some(data));
        }
        shared.push_data(data);
        Ok(None)
    }

    fn complete_now(&mut self, trailers: &mut Option<HeaderMap>) -> Option<Result<()>> {
        self.complete_sync(trailers.take());
        Some(Ok(()))
    }

    async fn start(&mut self, head: ResponseHead<'_>) -> Result<()> {
        self.start_sync(head)
    }

    async fn write(&mut self, data: Bytes) -> Result<()> {
        let mut data = Some(data);
        std::future::poll_fn(|cx| {
            let mut shared = lock(&self.shared);
            if shared.reader_gone {
                return Poll::Ready(Err(reader_gone()));
            }
            if shared.queued >= PIPE_CAPACITY {
                shared.producer = Some(cx.waker().clone());
                return Poll::Pending;
            }
            shared.push_data(data.take().expect("polled after completion"));
            Poll::Ready(Ok(()))
        })
        .await
    }

    async fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    async fn complete(&mut self, trailers: Option<HeaderMap>) -> Result<()> {
        self.complete_sync(trailers);
        Ok(())
    }

    fn abort(&mut self, _reason: &Error) {
        let mut shared = lock(&self.shared);
        if !shared.reader_gone {
            shared.end = End::Aborted;
        }
    }

    /// Hands the body to the reader as it is: no copy, no extra task.
    async fn send_body(&mut self, body: BoxBody) -> Result<()> {
        let mut shared = lock(&self.shared);
        if shared.reader_gone {
            return Err(reader_gone());
        }
        shared.end = End::Passthrough(body);
        Ok(())
    }
}

/// What a request's driver is made of.
struct DriverArgs {
    app: crate::application::BoxApplication,
    features: Features,
    on_done: Option<Box<dyn FnOnce(crate::lifecycle::RequestOutcome) + Send>>,
    pool: Option<Arc<FeaturePool>>,
    /// The collection's revision as the server built it (see
    /// [`FeaturePool::recycle`]).
    revision: u64,
    /// Counts the request as in flight until its lifecycle ends.
    _in_flight: Option<InFlightGuard>,
}

/// How many requests a server has whose lifecycle has not ended, for a
/// graceful stop that waits for them (TestServer's).
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    count: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
    /// The lifetimes of the requests in flight that gave one, by number:
    /// fired when a stop's deadline passes.
    lifetimes: Mutex<Vec<(u64, RequestLifetime)>>,
    next: std::sync::atomic::AtomicU64,
}

// Only TestServer counts its requests so far.
#[cfg_attr(not(feature = "test-util"), allow(dead_code))]
impl InFlight {
    /// Counts one more, until the guard drops.
    pub(crate) fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::AcqRel);
        InFlightGuard {
            count: self.clone(),
            watched: None,
        }
    }

    /// Resolves when none is left.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Fires the lifetime of every request in flight that gave one.
    pub(crate) fn abort_all(&self) {
        if let Ok(lifetimes) = self.lifetimes.lock() {
            for (_, lifetime) in lifetimes.iter() {
                lifetime.abort();
            }
        }
    }

    /// [`abort_all`](Self::abort_all) when dropped, unless disarmed.
    pub(crate) fn abort_on_drop(&self) -> AbortInFlight<'_> {
        AbortInFlight(Some(self))
    }
}

/// See [`InFlight::abort_on_drop`].
pub(crate) struct AbortInFlight<'a>(Option<&'a InFlight>);

#[cfg_attr(not(feature = "test-util"), allow(dead_code))]
impl AbortInFlight<'_> {
    /// Drops without aborting.
    pub(crate) fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for AbortInFlight<'_> {
    fn drop(&mut self) {
        if let Some(in_flight) = self.0 {
            in_flight.abort_all();
        }
    }
}

/// One request of an [`InFlight`] count.
#[derive(Debug)]
pub(crate) struct InFlightGuard {
    count: Arc<InFlight>,
    /// The number its lifetime is registered under.
    watched: Option<u64>,
}

#[cfg_attr(not(feature = "test-util"), allow(dead_code))]
impl InFlightGuard {
    /// Registers the request's lifetime, for [`InFlight::abort_all`].
    pub(crate) fn watch(&mut self, lifetime: &RequestLifetime) {
        let n = self.count.next.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut lifetimes) = self.count.lifetimes.lock() {
            lifetimes.push((n, lifetime.clone()));
            self.watched = Some(n);
        }
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if let Some(n) = self.watched {
            if let Ok(mut lifetimes) = self.count.lifetimes.lock() {
                if let Some(i) = lifetimes.iter().position(|(m, _)| *m == n) {
                    lifetimes.swap_remove(i);
                }
            }
        }
        if self.count.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.count.idle.notify_waiters();
        }
    }
}

/// The request's whole lifecycle as one future.
async fn lifecycle(args: DriverArgs) {
    let outcome = crate::lifecycle::run_request(&*args.app, args.features).await;
    if let Some(on_done) = args.on_done {
        on_done(outcome);
    } else if let Some(pool) = args.pool {
        pool.recycle(outcome.features, args.revision);
    }
}

pin_project_lite::pin_project! {
    /// A heap slot that outlives the driver in it: a pooled pipe keeps the
    /// spent slot and writes the next request's driver into it in place,
    /// where a boxed future would cost an allocation per request. `make`
    /// builds the driver (a function, so the future's type needs no name).
    struct Slot<F, M> {
        #[pin]
        driver: Option<F>,
        make: M,
    }
}

/// The driver's slot, type-erased.
trait DriverSlot: Send {
    /// Polls the driver; ready (and the slot empty) once it is done.
    fn poll_driver(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()>;
    /// Puts a new driver in the slot.
    fn refill(self: Pin<&mut Self>, args: DriverArgs);
}

impl<F, M> DriverSlot for Slot<F, M>
where
    F: Future<Output = ()> + Send,
    M: Fn(DriverArgs) -> F + Send,
{
    fn poll_driver(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if let Some(driver) = this.driver.as_mut().as_pin_mut() {
            std::task::ready!(driver.poll(cx));
            this.driver.set(None);
        }
        Poll::Ready(())
    }

    fn refill(self: Pin<&mut Self>, args: DriverArgs) {
        let this = self.project();
        let driver = (this.make)(args);
        let mut slot = this.driver;
        slot.set(Some(driver));
    }
}

/// The driver: the request's whole lifecycle, in its slot.
type Driver = Pin<Box<dyn DriverSlot>>;

/// A new slot holding the driver for `args`.
fn new_driver(args: DriverArgs) -> Driver {
    Box::pin(Slot {
        driver: Some(lifecycle(args)),
        make: lifecycle,
    })
}

/// A driver left to finish on its own (spawned).
struct Detached(Driver);

impl Future for Detached {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll_driver(cx)
    }
}

impl Shared {
    fn new() -> Self {
        Shared {
            head: None,
            frames: Frames::default(),
            queued: 0,
            end: End::Open,
            reader_gone: false,
            producer: None,
            spare: None,
        }
    }

    /// Queues a body chunk for the reader.
    fn push_data(&mut self, data: Bytes) {
        self.queued += data.len();
        self.frames.push_back(Frame::data(data));
    }

    /// As new, keeping the queue's capacity (and the spare slot).
    fn reset(&mut self) {
        self.head = None;
        self.frames.clear();
        self.queued = 0;
        self.end = End::Open;
        self.reader_gone = false;
        self.producer = None;
    }
}

/// The pipe of a pooled collection's sink, kept with the collection (a
/// private feature: no app can reach it) so the next request on the
/// collection can reuse the pipe and the sink in place.
struct PipeLink {
    shared: SharedRef,
    /// Where the sink's box is: the collection's sink is this pipe's only
    /// if its box is still this one.
    sink: usize,
}

/// The address of a sink's box, to tell whether a slot still holds it.
fn sink_address(sink: &(dyn ResponseBody + 'static)) -> usize {
    (sink as *const dyn ResponseBody).cast::<()>() as usize
}

/// Owns the driver; on drop before the driver is done, fires the lifetime and
/// lets the driver finish on its own.
struct Guard {
    /// `None` once the driver is done.
    driver: Option<Driver>,
    /// The driver's slot once the driver is done, until it is handed back
    /// to the pipe for the next request.
    spent: Option<Driver>,
    shared: SharedRef,
    lifetime: Option<RequestLifetime>,
    /// The reader saw the whole response: dropping now is not a disconnect.
    done: bool,
    /// The body ends only once the driver is done too, so a reader that
    /// needs the lifecycle's outcome (a `Builder` layer taking its features
    /// back) has it when the body ends.
    hold_end: bool,
}

impl Guard {
    fn poll_driver(&mut self, cx: &mut Context<'_>) {
        if let Some(driver) = self.driver.as_mut() {
            if driver.as_mut().poll_driver(cx).is_ready() {
                self.spent = self.driver.take();
            }
        }
    }

    /// The end of the body: now, or with `hold_end` once the driver (polled
    /// with this context just before) is done.
    fn poll_end(&self) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        if self.hold_end && self.driver.is_some() {
            return Poll::Pending;
        }
        Poll::Ready(None)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.shared.guard_dropped.store(true, Ordering::Release);
        let Some(mut driver) = self.driver.take() else {
            return;
        };
        if !self.done {
            let mut shared = lock(&self.shared);
            // The app completed and the reader has every frame it pushed: a
            // reader that stops without asking for the end (hyper after a
            // `101`, a HEAD, or a full Content-Length) saw the whole response.
            let whole = shared.frames.is_empty() && matches!(shared.end, End::Complete);
            if !whole {
                shared.reader_gone = true;
                shared.frames.clear();
                if let Some(waker) = shared.producer.take() {
                    waker.wake();
                }
                drop(shared);
                if let Some(lifetime) = &self.lifetime {
                    lifetime.abort();
                }
                if let Ok(handle) = tokio::runtime::Handle::try_current() {
                    handle.spawn(Detached(driver));
                }
                return;
            }
        }
        // The response is whole. What is left of the lifecycle after the
        // sink completed (`on_completed`, `dispose_context`, the outcome
        // callback) is synchronous: one poll here finishes it, where a spawn
        // would cost a task per request. An app still awaiting after
        // `complete` gets its task as before.
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        if driver.as_mut().poll_driver(&mut cx).is_pending() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(Detached(driver));
            }
        }
    }
}

/// The future of the response head.
pub struct PipeResponse {
    /// Moves into the body with the head (`None` after that).
    guard: Option<Guard>,
}

impl fmt::Debug for PipeResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PipeResponse")
    }
}

impl Future for PipeResponse {
    type Output = Result<Response<PipeBody>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(guard) = self.guard.as_mut() else {
            // Polled again after the head: as before, there is no second one.
            return Poll::Ready(Err(Error::aborted(
                "the request ended without a response head",
            )));
        };
        guard.poll_driver(cx);
        let mut shared = lock(&guard.shared);
        let head = shared.head.take();
        // A driver that is done left the whole body behind: one chunk at
        // most and the end is the common case, taken now under this lock so
        // reading the body needs none.
        let settled = (head.is_some()
            && guard.driver.is_none()
            && matches!(shared.end, End::Complete)
            && shared.frames.rest.is_empty()
            && shared.frames.first.as_ref().is_none_or(Frame::is_data))
        .then(|| {
            shared.end = End::Taken;
            shared.queued = 0;
            shared.spare = guard.spent.take();
            let frame = shared.frames.first.take();
            frame.and_then(|f| f.into_data().ok())
        });
        drop(shared);
        match head {
            Some(parts) => {
                let guard = self.guard.take().expect("checked above");
                let body = PipeBody {
                    guard,
                    passthrough: None,
                    settled,
                };
                Poll::Ready(Ok(Response::from_parts(parts, body)))
            }
            None if guard.driver.is_none() => Poll::Ready(Err(Error::aborted(
                "the request ended without a response head",
            ))),
            None => Poll::Pending,
        }
    }
}

/// The response body read from the pipe. Dropping it before its end counts as
/// the client going away.
pub struct PipeBody {
    guard: Guard,
    passthrough: Option<BoxBody>,
    /// The rest of a body whose driver was done when the head was taken:
    /// its one chunk, if not yet read (the end follows it). Bytes rather
    /// than a frame: the body is moved on its way to the reader, and a
    /// frame is three times the size.
    settled: Option<Option<Bytes>>,
}

impl fmt::Debug for PipeBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PipeBody")
    }
}

impl Body for PipeBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        if let Some(rest) = this.settled.as_mut() {
            return match rest.take() {
                Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
                None => {
                    this.guard.done = true;
                    Poll::Ready(None)
                }
            };
        }
        this.guard.poll_driver(cx);
        if this.passthrough.is_none() {
            let mut shared = lock(&this.guard.shared);
            if let Some(frame) = shared.frames.pop_front() {
                if let Some(data) = frame.data_ref() {
                    shared.queued -= data.len();
                }
                if let Some(waker) = shared.producer.take() {
                    waker.wake();
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            match std::mem::replace(&mut shared.end, End::Taken) {
                End::Passthrough(body) => this.passthrough = Some(body),
                End::Complete => {
                    this.guard.done = true;
                    return this.guard.poll_end();
                }
                // An aborted body stays aborted: polled again, it fails
                // again rather than end as if complete.
                End::Aborted => {
                    shared.end = End::Aborted;
                    return Poll::Ready(Some(Err(Error::aborted(
                        "the response was aborted before its end",
                    ))));
                }
                End::Taken => {
                    this.guard.done = true;
                    return this.guard.poll_end();
                }
                End::Open => {
                    shared.end = End::Open;
                    if this.guard.driver.is_none() {
                        shared.end = End::Aborted;
                        return Poll::Ready(Some(Err(Error::aborted(
                            "the request ended before the response was complete",
                        ))));
                    }
                    return Poll::Pending;
                }
            }
        }
        let body = this.passthrough.as_mut().expect("set above");
        let frame = Pin::new(body).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            this.guard.done = true;
            this.passthrough = None;
            return this.guard.poll_end();
        }
        frame
    }

    /// Unknown unless a pull body is passed through, even for a settled
    /// body: a server that reads an exact hint as a length would frame a
    /// response the app flushed (or wrote past the buffer) with one, where
    /// the built-in server chunks it.
    fn size_hint(&self) -> SizeHint {
        match &self.passthrough {
            Some(body) => body.size_hint(),
            None => SizeHint::default(),
        }
    }

    /// Ended when the app completed and every frame was taken (a reader
    /// may stop there without polling for the end: the lifecycle's rest
    /// runs when the body drops).
    fn is_end_stream(&self) -> bool {
        if let Some(rest) = &self.settled {
            return rest.is_none();
        }
        if let Some(body) = &self.passthrough {
            return body.is_end_stream();
        }
        if self.guard.hold_end && self.guard.driver.is_some() {
            return false;
        }
        let shared = lock(&self.guard.shared);
        shared.frames.is_empty() && matches!(shared.end, End::Complete | End::Taken)
    }
}

impl PipeBody {
    /// The rest of the body as one `Bytes`, when all of it is here already:
    /// the application completed the response (one chunk at most, no
    /// trailers) before its head was read, so its lifecycle is over and
    /// nothing is left to wait for. Otherwise the body, unchanged, to read
    /// frame by frame.
    ///
    /// For a server that can send a buffer whole without a stream (actix's
    /// `MessageBody::try_into_bytes`). What was read before stays read: the
    /// rest of a body whose chunk was taken is empty.
    ///
    /// # Example
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use serverbridge::feature::RequestFeature;
    /// use serverbridge::tower::AppService;
    /// use serverbridge::{Features, HttpContext, Result};
    ///
    /// async fn hello(ctx: &mut HttpContext) -> Result<()> {
    ///     ctx.write("hello").await
    /// }
    ///
    /// let mut features = Features::new();
    /// features.insert(RequestFeature::default());
    /// let response = AppService::new(hello).call_features(features).await.unwrap();
    /// let bytes = response.into_body().try_into_bytes().unwrap();
    /// assert_eq!(&bytes[..], b"hello");
    /// # });
    /// ```
    pub fn try_into_bytes(mut self) -> std::result::Result<Bytes, PipeBody> {
        match self.settled.as_mut() {
            Some(rest) => {
                let bytes = rest.take().unwrap_or_default();
                self.guard.done = true;
                Ok(bytes)
            }
            None => Err(self),
        }
    }

    /// A body that fails at once as aborted: the body of a response standing
    /// in for a service error, so a host drops the connection.
    pub(crate) fn aborted() -> PipeBody {
        let shared = Pipe::new(Shared {
            end: End::Aborted,
            ..Shared::new()
        });
        PipeBody {
            guard: Guard {
                driver: None,
                spent: None,
                shared,
                lifetime: None,
                done: false,
                hold_end: false,
            },
            passthrough: None,
            settled: None,
        }
    }
}

/// Feature collections of finished requests, kept for the next ones: a
/// server that refills a collection in place instead of building one per
/// request saves an allocation per feature (the built-in server does the
/// same with one collection per connection).
///
/// Used with [`AppService::call_pooled`](crate::tower::AppService::call_pooled)
/// (the hyper and actix adapters keep one pool per connection) and by
/// [`TestServer`](crate::testing::TestServer)'s direct mode. A collection
/// comes back only if the application left its set of features as the
/// server built it (an app that inserted or removed a feature made the
/// collection its own), and comes back emptied of the request: the request
/// body is empty and its header map cleared (capacity kept; a lone `host`
/// field stays, as the next request usually repeats it), the response
/// is reset, and the response body is the last request's sink, shut until
/// the next `call_pooled` opens its pipe again (in place once the last
/// response's reader is gone, else with a new pipe): `start`, `write` and
/// `send_body` fail as closed, `flush`, `complete` and `abort` do nothing.
/// What else the server put in (a request id, a body size limit) is as the
/// last request left it: refill it before reuse. That includes the last
/// request's [`RequestLifetime`], which may have fired:
/// [`AppService::call_pooled`](crate::tower::AppService::call_pooled)
/// [renews](RequestLifetime::renew) it; a server that runs a pooled
/// collection another way must.
///
/// # Example
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use serverbridge::feature::RequestFeature;
/// use serverbridge::tower::AppService;
/// use serverbridge::{FeaturePool, Features, HttpContext, Result};
///
/// async fn hello(ctx: &mut HttpContext) -> Result<()> {
///     ctx.write("hi").await
/// }
///
/// let service = AppService::new(hello);
/// let pool = Arc::new(FeaturePool::default());
/// let mut features = Features::new();
/// features.insert(RequestFeature::default());
/// let response = service.call_pooled(features, &pool).await.unwrap();
/// drop(response); // the lifecycle is over: the collection is back
/// let mut again = pool.take().expect("recycled");
/// let (parts, ()) = http::Request::get("/next").body(()).unwrap().into_parts();
/// let request = again.get_mut::<RequestFeature>().unwrap();
/// request.refill(parts, Default::default(), None);
/// assert_eq!(request.path, "/next");
/// # });
/// ```
#[derive(Debug, Default)]
pub struct FeaturePool {
    free: Mutex<Vec<Features>>,
}

/// How many idle collections a pool keeps (one per request in flight at
/// once is enough; more would only hold memory).
const POOL_SIZE: usize = 8;

impl FeaturePool {
    /// A collection to reuse, if one is idle.
    pub fn take(&self) -> Option<Features> {
        self.free.lock().ok()?.pop()
    }

    /// Takes back a finished request's features if the app left their set
    /// as the server built it (`revision`: an app that inserted or removed a
    /// feature made them its own). What the request held is released now,
    /// not when the collection is next used: the body, the headers, pending
    /// callbacks. The sink and its pipe stay, shut, for the next request
    /// (see [`call`]).
    fn recycle(&self, mut features: Features, revision: u64) {
        use crate::feature::{RequestFeature, ResponseFeature, ResponseTrailers};
        if features.revision() != revision {
            return;
        }
        // The sink and its pipe stay for the next request to reuse; until
        // then the sink fails every call, as if its reader were gone (the
        // reader of this response may still be taking its last frames).
        let Some(link) = features.get::<PipeLink>() else {
            return;
        };
        lock(&link.shared).reader_gone = true;
        let Some(request) = features.get_mut::<RequestFeature>() else {
            return;
        };
        request.body = crate::body::RequestBody::empty();
        // A lone Host stays: the next request on the collection usually
        // names the same one (TestServer's keeps it when it does), and a
        // server that refills the request replaces the map anyway.
        let lone_host = request.headers.len() == 1
            && request.headers.keys().next() == Some(&http::header::HOST);
        if !lone_host {
            request.headers.clear();
        }
        let Some(response) = features.get_mut::<ResponseFeature>() else {
            return;
        };
        response.reset();
        if let Some(trailers) = features.get_mut::<ResponseTrailers>() {
            trailers.headers.clear();
        }
        if let Ok(mut free) = self.free.lock() {
            if free.len() < POOL_SIZE {
                free.push(features);
            }
        }
    }
}

/// Runs `app` on `features` (which must hold the request) with a pipe,
/// calling `on_done` with the outcome once the whole lifecycle ran. The
/// pipe is new, with a new sink in `features` (replacing any), unless
/// `features` come from `pool` with their last pipe free to reuse.
pub(crate) fn call(
    app: crate::application::BoxApplication,
    features: Features,
    lifetime: RequestLifetime,
    on_done: Option<Box<dyn FnOnce(crate::lifecycle::RequestOutcome) + Send>>,
    pool: Option<Arc<FeaturePool>>,
) -> PipeResponse {
    call_counted(app, features, lifetime, on_done, pool, None)
}

/// [`call`], with the request counted in `in_flight` until its lifecycle
/// ends.
pub(crate) fn call_counted(
    app: crate::application::BoxApplication,
    mut features: Features,
    lifetime: RequestLifetime,
    on_done: Option<Box<dyn FnOnce(crate::lifecycle::RequestOutcome) + Send>>,
    pool: Option<Arc<FeaturePool>>,
    in_flight: Option<InFlightGuard>,
) -> PipeResponse {
    use crate::feature::ResponseFeature;
    if !features.contains::<ResponseFeature>() {
        features.insert(ResponseFeature::default());
    }
    features.insert(lifetime.clone());
    // A pooled collection's pipe is reused in place when its last reader
    // is gone and the collection's sink is still its own (the same box, and
    // the pipe held by nothing else but the link and that sink). Otherwise
    // a new pipe and sink.
    let reusable = features.get::<PipeLink>().and_then(|link| {
        let own_sink = features
            .get_dyn::<dyn ResponseBody>()
            .is_some_and(|sink| sink_address(sink) == link.sink);
        let reuse = own_sink
            && link.shared.guard_dropped.load(Ordering::Acquire)
            && Arc::strong_count(&link.shared) == 2;
        if !reuse {
            return None;
        }
        let spare = {
            let mut shared = lock(&link.shared);
            shared.reset();
            shared.spare.take()
        };
        link.shared.guard_dropped.store(false, Ordering::Relaxed);
        Some((link.shared.clone(), spare))
    });
    let (shared, spare) = match reusable {
        Some(reused) => reused,
        None => {
            let shared = Pipe::new(Shared::new());
            let sink: Box<dyn ResponseBody> = Box::new(PipeSink {
                shared: shared.clone(),
            });
            let address = sink_address(&*sink);
            features.insert_dyn::<dyn ResponseBody>(sink);
            if pool.is_some() {
                features.insert(PipeLink {
                    shared: shared.clone(),
                    sink: address,
                });
            }
            (shared, None)
        }
    };
    let hold_end = on_done.is_some();
    let args = DriverArgs {
        app,
        revision: features.revision(),
        features,
        on_done,
        pool,
        _in_flight: in_flight,
    };
    let driver = match spare {
        Some(mut slot) => {
            slot.as_mut().refill(args);
            slot
        }
        None => new_driver(args),
    };
    PipeResponse {
        guard: Some(Guard {
            driver: Some(driver),
            spent: None,
            shared,
            lifetime: Some(lifetime),
            done: false,
            hold_end,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(frame: Option<Frame<Bytes>>) -> Option<Bytes> {
        frame.and_then(|f| f.into_data().ok())
    }

    #[test]
    fn frames_leave_in_the_order_they_came() {
        let mut frames = Frames::default();
        frames.push_back(Frame::data(Bytes::from_static(b"a")));
        frames.push_back(Frame::data(Bytes::from_static(b"b")));
        assert_eq!(data(frames.pop_front()).as_deref(), Some(&b"a"[..]));
        // `first` is free again, but `b` still waits: `c` goes after it.
        frames.push_back(Frame::data(Bytes::from_static(b"c")));
        assert_eq!(data(frames.pop_front()).as_deref(), Some(&b"b"[..]));
        frames.push_back(Frame::data(Bytes::from_static(b"d")));
        assert_eq!(data(frames.pop_front()).as_deref(), Some(&b"c"[..]));
        assert_eq!(data(frames.pop_front()).as_deref(), Some(&b"d"[..]));
        assert!(frames.is_empty() && frames.pop_front().is_none());
        frames.push_back(Frame::data(Bytes::from_static(b"e")));
        assert!(frames.rest.capacity() > 0 && frames.rest.is_empty());
        assert!(!frames.is_empty());
        frames.clear();
        assert!(frames.is_empty());
    }
}
