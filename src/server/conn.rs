//! The connection state machine: read a head, run the request, finish the
//! exchange, keep the connection alive or close it. Generic over any
//! `AsyncRead + AsyncWrite` transport (a socket, or TestServer's in-memory
//! duplex).

use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;

use bytes::{BufMut, BytesMut};
use http::uri::Scheme;
use http::{StatusCode, Version};
use http_body::SizeHint;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::decode::{Decoded, Decoder};
use super::io::{
    BodyState, BoxRead, BoxWrite, Http1Body, Http1Upgrade, MinRate, Shared, WatchPeer,
};
use super::limits::Limits;
use super::parse::{parse_head, Framing, RequestHead};
use super::sink::Http1Sink;
use crate::application::BoxApplication;
use crate::body::RequestBody;
use crate::cold::OutOfLine;
use crate::error::{Error, Result};
use crate::feature::{
    ConnectionClose, ConnectionInfo, MaxRequestBodySize, MinDataRate, MinRequestBodyDataRate,
    MinResponseDataRate, RequestFeature, RequestId, RequestLifetime, RequestTrailers, ResponseBody,
    ResponseFeature, ResponseTrailers, TlsInfo, Upgrade,
};
use crate::features::Features;
use crate::http1::{BodyFraming, HeadContext};
use crate::lifecycle::run_request;

/// How long an idle keep-alive connection that carried several requests keeps
/// the request state it reuses (features, parser scratch, buffers) before
/// giving it back.
const IDLE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// The server's graceful-stop signal: a token to wait on, and a flag for the
/// question every response asks ("must this one close the connection?"):
/// `CancellationToken::is_cancelled` takes a lock shared by every connection.
#[derive(Clone, Default)]
pub(crate) struct StopSignal {
    token: CancellationToken,
    flag: Arc<AtomicBool>,
}

impl StopSignal {
    pub(crate) fn cancel(&self) {
        self.flag.store(true, Ordering::Release);
        self.token.cancel();
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    pub(crate) fn cancelled(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }
}

/// The server's graceful stop as an idle connection waits for it, between
/// requests. Polling a `WaitForCancellationFuture` takes the token's lock
/// (shared by every connection) and its waiter list's, and making one per
/// wait adds a registration and a removal: more than a small request costs.
/// This one registers once per connection (again only if the task's waker
/// changes, which a task's does not) and answers every later poll from the
/// signal's flag, which [`StopSignal::cancel`] sets before it wakes anyone.
struct StopWait<'a, 'b> {
    signal: &'b StopSignal,
    waiter: std::pin::Pin<&'a mut tokio_util::sync::WaitForCancellationFuture<'b>>,
    registered: Option<std::task::Waker>,
}

impl std::future::Future for StopWait<'_, '_> {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.signal.is_cancelled() {
            return Poll::Ready(());
        }
        if holds(&this.registered, cx.waker()) {
            return Poll::Pending;
        }
        if this.waiter.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        this.registered = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// What a connection waits on between requests, made once per connection:
/// the graceful stop ([`StopWait`]) and one timer, reused from wait to wait.
///
/// The timer is lazy: a wait's deadline is only written down, and the timer
/// moves only when that deadline comes sooner than the one it is set to.
/// When it fires before the wait's deadline (the usual case for a busy
/// connection, whose deadline moves later with every request), it is set
/// again and waits on. So a keep-alive request costs a comparison rather
/// than a timer reset; a connection pays a wake-up per timeout period.
struct Waits<'a, 'b> {
    stop: StopWait<'a, 'b>,
    timer: Timer<'a>,
    /// When the current wait times out (the timer may be set earlier).
    deadline: Instant,
}

/// The waits' lazy timer, and the waker it was last polled with while it
/// stays set as it is: the timer wheel holds that waker until the timer
/// fires or moves, so a later wait of the same task only looks whether it
/// fired (polling it again re-registers the same waker, which costs more
/// than a keep-alive request's other waiting).
struct Timer<'a> {
    sleep: std::pin::Pin<&'a mut tokio::time::Sleep>,
    armed: Option<std::task::Waker>,
}

/// Whether the waker kept in `slot` wakes the same task as `waker`.
fn holds(slot: &Option<std::task::Waker>, waker: &std::task::Waker) -> bool {
    slot.as_ref().is_some_and(|kept| kept.will_wake(waker))
}

impl Timer<'_> {
    fn reset(&mut self, deadline: Instant) {
        self.armed = None;
        self.sleep.as_mut().reset(deadline);
    }
}

impl Waits<'_, '_> {
    /// Sets the deadline of the waits that follow.
    fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
        if deadline < self.timer.sleep.deadline() || self.timer.sleep.is_elapsed() {
            self.timer.reset(deadline);
        }
    }
}

/// Ready once `deadline` has passed; `timer` is the waits' lazy timer.
/// (A function of the two fields, not a method: a `select!` borrows the
/// stop wait beside it.)
fn poll_deadline(
    timer: &mut Timer<'_>,
    deadline: Instant,
    cx: &mut std::task::Context<'_>,
) -> Poll<()> {
    if holds(&timer.armed, cx.waker()) && !timer.sleep.is_elapsed() {
        return Poll::Pending;
    }
    loop {
        // A task out of its cooperative budget gets `Pending` from the
        // timer without the timer taking its waker: it is armed only when
        // the poll could register.
        let registers = tokio::task::coop::has_budget_remaining();
        if std::future::Future::poll(timer.sleep.as_mut(), cx).is_pending() {
            if !registers {
                timer.armed = None;
            } else if !holds(&timer.armed, cx.waker()) {
                timer.armed = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
        if timer.sleep.deadline() >= deadline {
            return Poll::Ready(());
        }
        // Fired early: the deadline moved later since the timer was set.
        timer.reset(deadline);
    }
}

/// What every connection of a server shares.
pub(crate) struct ConnConfig {
    pub(crate) limits: Limits,
    pub(crate) scheme: Scheme,
    pub(crate) server_features: Arc<Features>,
    /// Graceful stop: finish the current exchange with `Connection: close`,
    /// close idle connections at once.
    pub(crate) stopping: StopSignal,
    /// Hard stop: drop the connection now. Always cancelled after
    /// `stopping` (a server stops gracefully first), so a connection idle
    /// between requests waits on `stopping` alone.
    pub(crate) abort: CancellationToken,
    /// Slots for upgraded connections (`max_concurrent_upgraded_connections`).
    pub(crate) upgrade_slots: Option<Arc<tokio::sync::Semaphore>>,
    /// What `stop` waits for: the connections, and the upgraded
    /// connections the app holds after theirs ended.
    pub(crate) tracker: tokio_util::task::TaskTracker,
}

impl ConnConfig {
    pub(crate) fn new(limits: Limits, server_features: Arc<Features>) -> Self {
        let upgrade_slots = limits
            .max_concurrent_upgraded_connections
            .map(|n| Arc::new(tokio::sync::Semaphore::new(n)));
        ConnConfig {
            limits,
            scheme: Scheme::HTTP,
            server_features,
            stopping: StopSignal::default(),
            abort: CancellationToken::new(),
            upgrade_slots,
            tracker: tokio_util::task::TaskTracker::new(),
        }
    }
}

/// The state of the current exchange, shared by the loop, the sink and the
/// upgrade feature. One per connection, reset for each request.
pub(crate) struct Exchange {
    pub(crate) closing: AtomicBool,
    pub(crate) aborted: AtomicBool,
    pub(crate) upgradable: AtomicBool,
    keep_alive: AtomicBool,
    head_request: AtomicBool,
    http10: AtomicBool,
    connect: AtomicBool,
    close_requested: Arc<AtomicBool>,
    stopping: StopSignal,
    pub(crate) upgrade_slots: Option<Arc<tokio::sync::Semaphore>>,
    /// Where an upgraded connection's watch runs, and what ends it at a
    /// stop's deadline.
    pub(crate) tracker: tokio_util::task::TaskTracker,
    pub(crate) abort: CancellationToken,
    /// The request body rate of the current request (shared with its
    /// feature), and the defaults both rates reset to.
    request_rate: MinRequestBodyDataRate,
    default_request_rate: Option<MinDataRate>,
    default_response_rate: Option<MinDataRate>,
}

/// A rate from the limits, in the features' terms.
fn default_rate(per_second: Option<u64>, limits: &Limits) -> Option<MinDataRate> {
    per_second.map(|bytes_per_second| MinDataRate {
        bytes_per_second,
        grace: limits.min_data_rate_grace,
    })
}

impl Exchange {
    fn new(config: &ConnConfig) -> Self {
        Exchange {
            closing: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
            upgradable: AtomicBool::new(false),
            keep_alive: AtomicBool::new(false),
            head_request: AtomicBool::new(false),
            http10: AtomicBool::new(false),
            connect: AtomicBool::new(false),
            close_requested: Arc::new(AtomicBool::new(false)),
            stopping: config.stopping.clone(),
            upgrade_slots: config.upgrade_slots.clone(),
            tracker: config.tracker.clone(),
            abort: config.abort.clone(),
            request_rate: MinRequestBodyDataRate::default(),
            default_request_rate: default_rate(
                config.limits.min_request_body_data_rate,
                &config.limits,
            ),
            default_response_rate: default_rate(
                config.limits.min_response_data_rate,
                &config.limits,
            ),
        }
    }

    fn reset(&self, head: &RequestHead, shared: &Shared) {
        self.request_rate.set(self.default_request_rate);
        shared.response_rate.set(self.default_response_rate);
        let relaxed = Ordering::Relaxed;
        self.closing.store(false, relaxed);
        self.aborted.store(false, relaxed);
        self.upgradable
            .store(head.upgrade && head.framing == Framing::Empty, relaxed);
        self.keep_alive.store(head.keep_alive, relaxed);
        self.head_request
            .store(head.method == http::Method::HEAD, relaxed);
        self.http10.store(head.version == Version::HTTP_10, relaxed);
        self.connect
            .store(head.method == http::Method::CONNECT, relaxed);
        self.close_requested.store(false, relaxed);
    }

    /// Whether the response must say `Connection: close`.
    pub(crate) fn must_close(&self) -> bool {
        !self.keep_alive.load(Ordering::Relaxed)
            || self.close_requested.load(Ordering::Relaxed)
            || self.stopping.is_cancelled()
    }

    /// What the encoder needs for the current response.
    pub(crate) fn head_context(&self) -> HeadContext {
        let http10 = self.http10.load(Ordering::Relaxed);
        HeadContext {
            head_request: self.head_request.load(Ordering::Relaxed),
            http10,
            closing: self.must_close(),
            keep_alive_10: http10 && self.keep_alive.load(Ordering::Relaxed),
            connect_request: self.connect.load(Ordering::Relaxed),
            default_server: None,
        }
    }
}

/// Serves one connection to its end.
pub(crate) async fn serve<T>(
    io: T,
    connection: Features,
    app: BoxApplication,
    config: Arc<ConnConfig>,
) where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (read, write) = tokio::io::split(io);
    serve_halves(Box::new(read), Box::new(write), connection, app, config).await;
}

/// Serves one connection, already split, to its end. A socket splits into
/// halves that need no lock (`TcpStream::into_split`); any other transport
/// goes through [`serve`], whose halves share it behind one.
pub(crate) async fn serve_halves(
    read: BoxRead,
    write: BoxWrite,
    mut connection: Features,
    app: BoxApplication,
    config: Arc<ConnConfig>,
) {
    let response_rate = MinResponseDataRate::new(default_rate(
        config.limits.min_response_data_rate,
        &config.limits,
    ));
    // No read buffer until bytes arrive (see `io::poll_fill`).
    let shared = Shared::new(
        read,
        write,
        BytesMut::new(),
        response_rate,
        config.abort.clone(),
    );
    let id = connection
        .get::<ConnectionInfo>()
        .map(|info| info.id.clone())
        .unwrap_or_default();
    // The request's scheme is what the connection is: https under TLS.
    let scheme = if connection.contains::<TlsInfo>() {
        Scheme::HTTPS
    } else {
        config.scheme.clone()
    };
    connection.set_defaults(Some(config.server_features.clone()));
    let connection = Arc::new(connection);
    // The span is attached to the future (entered on each poll), never held
    // entered across an await, where it would tag other tasks' events.
    let span = tracing::debug_span!("connection", id = %id);
    let mut conn = Conn {
        shared: shared.clone(),
        exchange: Arc::new(Exchange::new(&config)),
        connection,
        id,
        scheme,
        sequence: 0,
        head: RequestHead::default(),
        features: None,
        revision: 0,
    };
    let run = async move {
        let waiter = pin!(config.stopping.cancelled());
        let now = Instant::now();
        let timer = pin!(tokio::time::sleep_until(now));
        let mut waits = Waits {
            stop: StopWait {
                signal: &config.stopping,
                waiter,
                registered: None,
            },
            timer: Timer {
                sleep: timer,
                armed: None,
            },
            deadline: now,
        };
        loop {
            let sequence = conn.sequence;
            match read_head(
                &shared,
                &config,
                &mut waits,
                sequence,
                &mut conn.head,
                &mut conn.features,
            )
            .await
            {
                Ok(true) => {}
                Ok(false) => break,
                Err(err) => {
                    tracing::debug!(error = %err, "rejected request");
                    OutOfLine::new(reject(&shared, &err)).await;
                    break;
                }
            }
            conn.sequence += 1;
            if !conn.exchange(&config, &app).await {
                break;
            }
        }
        if !shared.upgraded.load(Ordering::Acquire) {
            OutOfLine::new(shutdown(&shared)).await;
        }
    };
    // Every head encoded in one poll carries the date read when it began.
    let mut run = pin!(run);
    let dated = std::future::poll_fn(|cx| {
        crate::http1::with_poll_date(|| std::future::Future::poll(run.as_mut(), cx))
    });
    // A span no subscriber wants is not entered on every poll (entering
    // one still costs a check per poll when `tracing` bridges to `log`).
    if span.is_disabled() {
        dated.await;
    } else {
        tracing::Instrument::instrument(dated, span).await;
    }
}

async fn shutdown(shared: &Shared) {
    use tokio::io::AsyncWriteExt;
    let _ = shared.flush().await;
    let io = shared.write().io.take();
    if let Some(mut io) = io {
        let _ = io.shutdown().await;
    }
}

/// Sends a bare error response and lets the caller close.
async fn reject(shared: &Shared, err: &Error) {
    let status = err.status().unwrap_or(StatusCode::BAD_REQUEST);
    {
        let mut write = shared.write();
        if write.buf.capacity() == 0 {
            write.buf = super::io::take_buffer();
        }
        let buf = &mut write.buf;
        buf.put_slice(b"HTTP/1.1 ");
        buf.put_slice(status.as_str().as_bytes());
        buf.put_u8(b' ');
        buf.put_slice(status.canonical_reason().unwrap_or("").as_bytes());
        buf.put_slice(b"\r\ncontent-length: 0\r\nconnection: close\r\ndate: ");
        buf.put_slice(crate::http1::date().as_bytes());
        buf.put_slice(b"\r\n\r\n");
    }
    let _ = shared.flush().await;
}

/// Waits for and parses the next request head into `head`. `Ok(false)`: the
/// connection ends quietly (peer closed, idle timeout, graceful stop while
/// idle).
async fn read_head(
    shared: &Shared,
    config: &ConnConfig,
    waits: &mut Waits<'_, '_>,
    sequence: u64,
    head: &mut RequestHead,
    reusable: &mut Option<Features>,
) -> Result<bool> {
    let first = sequence == 0;
    let busy = sequence >= 2;
    let limits = &config.limits;
    let mut started: Option<Instant> = None;
    loop {
        let ended = {
            let mut read = shared.read();
            if !read.buf.is_empty() {
                if parse_head(&mut read.buf, limits, true, head)? {
                    return Ok(true);
                }
                // The headers timeout runs from the first byte of a head
                // that is not all here (a whole one needs no clock).
                started.get_or_insert_with(Instant::now);
            }
            read.eof || read.failed
        };
        // Responses held back for a pipelined batch go out before waiting
        // (the client may wait for them before it sends the rest) and
        // before a quiet end.
        let held_back = !shared.write().buf.is_empty();
        if held_back && shared.flush().await.is_err() || ended {
            return Ok(false);
        }
        let fill = || std::future::poll_fn(|cx| shared.poll_fill(cx));
        let outcome = match started {
            None => {
                let idle = if first {
                    limits.request_headers_timeout
                } else {
                    limits.keep_alive_timeout
                };
                let now = Instant::now();
                // A connection that carried one request gives its state and
                // buffers back at once (most idle connections); one that
                // carried several keeps them for the grace, since the next
                // request is likely.
                let mut released = !busy;
                if released {
                    release_idle_state(shared, head, reusable);
                    waits.set_deadline(super::after(now, idle));
                } else {
                    waits.set_deadline(super::after(now, idle.min(IDLE_GRACE)));
                }
                loop {
                    let read = tokio::select! {
                        biased;
                        () = &mut waits.stop => return Ok(false),
                        read = fill() => Some(read),
                        () = std::future::poll_fn(|cx| poll_deadline(&mut waits.timer, waits.deadline, cx)) => None,
                    };
                    match read {
                        Some(read) => break read,
                        // Idle for real: give back what a busy connection
                        // reuses from request to request.
                        None if !released => {
                            released = true;
                            release_idle_state(shared, head, reusable);
                            waits.set_deadline(super::after(now, idle));
                        }
                        None => return Ok(false),
                    }
                }
            }
            Some(start) => {
                // A partial head finishes even during a graceful stop.
                waits.set_deadline(super::after(start, limits.request_headers_timeout));
                tokio::select! {
                    biased;
                    _ = config.abort.cancelled() => return Ok(false),
                    read = fill() => read,
                    () = std::future::poll_fn(|cx| poll_deadline(&mut waits.timer, waits.deadline, cx)) => {
                        return Err(Error::timeout("request headers not received in time")
                            .with_status(StatusCode::REQUEST_TIMEOUT))
                    }
                }
            }
        };
        match outcome {
            Ok(0) | Err(_) => return Ok(false),
            Ok(_) => {}
        }
    }
}

/// Gives back what an idle connection holds for its next request: its
/// buffers, its reused features and the parser's scratch head.
fn release_idle_state(shared: &Shared, head: &mut RequestHead, reusable: &mut Option<Features>) {
    shared.release_idle_buffers();
    *reusable = None;
    *head = RequestHead::default();
}

/// One connection's reusable state.
struct Conn {
    shared: Arc<Shared>,
    exchange: Arc<Exchange>,
    connection: Arc<Features>,
    id: String,
    scheme: Scheme,
    sequence: u64,
    /// The parser's scratch head: its strings and map swap with the request
    /// feature's, so both keep their capacity.
    head: RequestHead,
    /// The previous request's features, reused when the app left their
    /// entries as they were (same revision as after setup).
    features: Option<Features>,
    revision: u64,
}

impl Conn {
    /// Builds the connection's feature collection (first request, or after an
    /// app inserted or removed features).
    fn build_features(&self, limits: &Limits) -> Features {
        let mut features = Features::with_capacity(14, Some(self.connection.clone()));
        features.insert(RequestFeature::default());
        features.insert(ResponseFeature::default());
        features.insert_dyn::<dyn ResponseBody>(Box::new(Http1Sink {
            shared: self.shared.clone(),
            exchange: self.exchange.clone(),
            framing: BodyFraming::None,
        }));
        features.insert(RequestId(String::with_capacity(self.id.len() + 17)));
        features.insert(MaxRequestBodySize::new(limits.max_request_body_size));
        features.insert(ConnectionClose::from_flag(
            self.exchange.close_requested.clone(),
        ));
        features.insert(ResponseTrailers::default());
        features.insert(self.exchange.request_rate.clone());
        features.insert(self.shared.response_rate.clone());
        features.insert_dyn::<dyn Upgrade>(Box::new(Http1Upgrade {
            shared: self.shared.clone(),
            exchange: self.exchange.clone(),
        }));
        features
    }

    /// Prepares the features for the request in `self.head`.
    fn setup(&mut self, features: &mut Features, config: &ConnConfig) -> Result<()> {
        let limits = &config.limits;
        let head = &mut self.head;
        let shared = &self.shared;
        let missing =
            || Error::contract("server.required-features", "a reused feature went missing");
        let limit = {
            let limit = features
                .get_mut::<MaxRequestBodySize>()
                .ok_or_else(missing)?;
            limit.reset(limits.max_request_body_size);
            limit.clone()
        };
        let (decoder, hint) = match head.framing {
            Framing::Empty => (None, SizeHint::default()),
            Framing::Length(n) => (Some(Decoder::length(n)), SizeHint::with_exact(n)),
            Framing::Chunked => (
                Some(Decoder::chunked(
                    limits.max_chunk_line_size,
                    limits.max_request_headers_total_size,
                )),
                SizeHint::default(),
            ),
        };
        let mut body = match decoder {
            None => RequestBody::empty(),
            Some(decoder) => {
                shared.read().body = Some(BodyState {
                    decoder,
                    send_continue: head.expect_continue,
                    request: self.sequence,
                });
                // The body enforces the limit itself (a 413 asks for the
                // close), and freezes it at its first read.
                RequestBody::new(body_source(
                    shared,
                    &self.exchange,
                    hint,
                    &limit,
                    self.sequence,
                ))
            }
        };
        // Only a chunked request has trailers; the feature comes and goes.
        features.remove::<RequestTrailers>();
        if head.framing == Framing::Chunked {
            let trailers = RequestTrailers::attach(&mut body);
            features.insert(trailers);
        }
        let request = features.get_mut::<RequestFeature>().ok_or_else(missing)?;
        request.method = head.method.clone();
        request.scheme = self.scheme.clone();
        request.path_base.clear();
        request.version = head.version;
        request.body = body;
        std::mem::swap(&mut request.path, &mut head.path);
        std::mem::swap(&mut request.query, &mut head.query);
        std::mem::swap(&mut request.raw_target, &mut head.target);
        std::mem::swap(&mut request.headers, &mut head.headers);
        features
            .get_mut::<ResponseFeature>()
            .ok_or_else(missing)?
            .reset();
        if let Some(trailers) = features.get_mut::<ResponseTrailers>() {
            // Usually empty: clearing walks the index even then.
            if !trailers.headers.is_empty() {
                trailers.headers.clear();
            }
        }
        let id = features.get_mut::<RequestId>().ok_or_else(missing)?;
        id.set_sequence(&self.id, self.sequence);
        Ok(())
    }

    /// Runs one exchange; returns whether the connection may carry another.
    async fn exchange(&mut self, config: &ConnConfig, app: &BoxApplication) -> bool {
        let shared = self.shared.clone();
        self.exchange.reset(&self.head, &shared);
        // Responses held back to share a write with this one (pipelining):
        // how many bytes, and how much had gone out before this request.
        let (held, flushed_before) = {
            let mut write = shared.write();
            write.response_started = false;
            write.close_delimited = false;
            (write.buf.len(), write.flushed)
        };
        let mut features = match self.features.take() {
            Some(features) if features.revision() == self.revision => features,
            _ => self.build_features(&config.limits),
        };
        // Two handles: the request's, and the connection's, to fire it when
        // the peer goes away. The last request's is renewed in place when
        // the app kept no clone of it.
        let lifetime = features.reset_or_insert(RequestLifetime::renew, RequestLifetime::new);
        *shared.lifetime.lock().unwrap_or_else(|p| p.into_inner()) = Some(lifetime);
        let http10 = self.head.version == Version::HTTP_10;
        if let Err(err) = self.setup(&mut features, config) {
            tracing::error!(error = %err, "request setup failed");
            return false;
        }
        if http10 {
            // HTTP/1.0 cannot carry trailers.
            features.remove::<ResponseTrailers>();
        }
        self.revision = features.revision();
        // No span per request: it costs on every request even when nothing
        // listens, and an entered guard must not be held across awaits. The
        // events below carry the sequence number instead.
        let outcome = {
            let mut run = pin!(run_request(&**app, features));
            let mut watching = true;
            let mut holding = held > 0;
            let held_mark = flushed_before + held as u64;
            // Most apps answer at once: one poll, and no select to set up.
            let first =
                std::future::poll_fn(|cx| Poll::Ready(std::future::Future::poll(run.as_mut(), cx)))
                    .await;
            if let Poll::Ready(outcome) = first {
                Some(outcome)
            } else {
                // The app is waiting: polled out of line (see `OutOfLine`).
                let slow = async {
                    loop {
                        tokio::select! {
                            biased;
                            outcome = &mut run => break Some(outcome),
                            // The app waits (for body bytes, for anything): what was
                            // held back goes out now rather than after it. Only that:
                            // this response's own bytes go out as they would have
                            // without a batch (an abort may still drop them).
                            flushed = std::future::poll_fn(|cx| shared.poll_flush_until(cx, held_mark)), if holding => {
                                holding = false;
                                if flushed.is_err() {
                                    shared.peer_gone();
                                }
                            }
                            _ = WatchPeer { shared: &shared }, if watching => {
                                watching = false;
                                shared.peer_gone();
                            }
                            // A hard stop drops the app's future: whatever
                            // else holds the request's lifetime (work the app
                            // handed it to) learns of the abort first.
                            _ = config.abort.cancelled() => {
                                shared.peer_gone();
                                break None;
                            }
                        }
                    }
                };
                OutOfLine::new(slow).await
            }
        };
        *shared.lifetime.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let Some(mut outcome) = outcome else {
            // A hard stop mid-request: the response is cut off, and what
            // it buffered must not go out (an end-of-stream after it would
            // make a close-delimited body look complete).
            shared.write().cut_off();
            return false;
        };
        if shared.upgraded.load(Ordering::Acquire) {
            return false;
        }
        if let Some(err) = &outcome.error {
            tracing::debug!(request = self.sequence, error = %err, "request failed");
        }
        // Keep the features for the next request, minus what must not
        // outlive this one (the body's references into the read buffer).
        if let Some(request) = outcome.features.get_mut::<RequestFeature>() {
            request.body = RequestBody::empty();
            request.headers.clear();
        }
        // Reuse only what the app left as it was: an app that inserted or
        // removed a feature moved the revision, and its features must not
        // reach the next request.
        if outcome.features.revision() == self.revision {
            if http10 {
                outcome.features.insert(ResponseTrailers::default());
                self.revision = outcome.features.revision();
            }
            self.features = Some(outcome.features);
        } else {
            self.features = None;
        }
        // A write that failed (the client went away, or read too slowly)
        // ends the connection even when the app carried on: requests
        // already buffered behind this one must not run for a client that
        // is gone.
        let write_failed = shared.write().failed;
        if !outcome.completed || write_failed || self.exchange.aborted.load(Ordering::Relaxed) {
            // Drop what this response queued (an aborted response must not
            // look complete), but not the complete responses held back
            // before it: those are still owed, then the connection closes.
            let owed = {
                let mut write = shared.write();
                let gone = usize::try_from(write.flushed - flushed_before).unwrap_or(usize::MAX);
                let owed = held.saturating_sub(gone);
                write.buf.truncate(owed);
                owed
            };
            if owed > 0 {
                OutOfLine::new(async {
                    tokio::select! {
                        _ = shared.flush() => {}
                        _ = config.abort.cancelled() => {}
                    }
                })
                .await;
            }
            shared.write().cut_off();
            return false;
        }
        let keep = !self.exchange.closing.load(Ordering::Relaxed)
            && !self.exchange.must_close()
            && drain(&shared, &config.limits, &config.abort).await;
        if !keep {
            return false;
        }
        // Pipelining: when bytes of the next request are already here, this
        // response waits to go out with the next one in a single write;
        // `read_head` flushes it before it waits for more bytes.
        let next_here = !shared.read().buf.is_empty();
        next_here || shared.flush().await.is_ok()
    }
}

/// The request body reader for the current request.
fn body_source(
    shared: &Arc<Shared>,
    exchange: &Exchange,
    hint: SizeHint,
    limit: &MaxRequestBodySize,
    request: u64,
) -> Http1Body {
    Http1Body {
        shared: shared.clone(),
        hint,
        limit: limit.clone(),
        seen: 0,
        close: ConnectionClose::from_flag(exchange.close_requested.clone()),
        rate: Some(MinRate::new(exchange.request_rate.clone())),
        request,
        ended: false,
    }
}

/// Reads and drops what the app left of the request body, within the drain
/// bounds. Returns whether the connection is reusable.
async fn drain(shared: &Shared, limits: &Limits, abort: &CancellationToken) -> bool {
    // Most requests have no body left: no timer for them.
    if shared.read().body.is_none() {
        return true;
    }
    OutOfLine::new(drain_rest(shared, limits, abort)).await
}

/// [`drain`] once some of the body is left.
async fn drain_rest(shared: &Shared, limits: &Limits, abort: &CancellationToken) -> bool {
    let mut drained = 0u64;
    let work = async {
        loop {
            {
                let mut read = shared.read();
                let read = &mut *read;
                let Some(body) = read.body.as_mut() else {
                    return true;
                };
                if body.send_continue {
                    // The client waits for 100 before sending the body: it
                    // was never asked for, so the connection cannot be reused.
                    read.body = None;
                    return false;
                }
                loop {
                    match body.decoder.decode(&mut read.buf) {
                        Ok(Decoded::Data(data)) => {
                            drained += data.len() as u64;
                            if drained > limits.max_drain_size {
                                read.body = None;
                                return false;
                            }
                        }
                        Ok(Decoded::Trailers(_)) | Ok(Decoded::End) => {
                            read.body = None;
                            return true;
                        }
                        Ok(Decoded::NeedMore) => break,
                        Err(_) => {
                            read.body = None;
                            return false;
                        }
                    }
                }
                if read.eof || read.failed {
                    read.body = None;
                    return false;
                }
            }
            // About to wait for the client: the response goes out first.
            if shared.flush().await.is_err() {
                return false;
            }
            match std::future::poll_fn(|cx| shared.poll_fill(cx)).await {
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            }
        }
    };
    // Bounded by the drain timeout, and by a stop's deadline.
    let reusable = tokio::select! {
        reusable = tokio::time::timeout(limits.drain_timeout, work) => reusable.unwrap_or(false),
        () = abort.cancelled() => false,
    };
    if !reusable {
        shared.read().body = None;
    }
    reusable
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
