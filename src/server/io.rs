//! The connection's buffered I/O, shared by the connection loop, the request
//! body, the response sink and the upgrade.
//!
//! All of them run in the connection's one task (the app's future is polled
//! by the connection loop), so the mutexes are never contended; they exist
//! because features must be `Send + Sync`. No lock is held across an await.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
// `BytesMut::try_reclaim` needs bytes 1.7 or later.
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;

use super::conn::Exchange;
use super::decode::{Decoded, Decoder};
use crate::error::{Error, Result};
use crate::feature::{
    ConnectionClose, MaxRequestBodySize, MinRequestBodyDataRate, MinResponseDataRate, OnUpgrade,
    RequestLifetime, Upgrade, Upgraded,
};

pub(crate) type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
pub(crate) type BoxWrite = Box<dyn ConnWrite>;

/// The write half of a connection's transport, which can end the connection
/// with a reset instead of a clean close.
pub(crate) trait ConnWrite: AsyncWrite + Send + Unpin {
    /// Drops the half so that the connection ends with a reset (TCP: no
    /// FIN, `SO_LINGER` 0 when the socket closes): a body delimited by the
    /// close that was cut off must not end the way a complete one does.
    /// Transports without a reset just drop.
    fn reset(self: Box<Self>) {}
}

impl ConnWrite for tokio::net::tcp::OwnedWriteHalf {
    fn reset(self: Box<Self>) {
        // A linger of zero never blocks: the close is a reset.
        let stream: &tokio::net::TcpStream = (*self).as_ref();
        let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
        // No shutdown (its FIN would come first): the socket closes, with
        // the reset, when the read half goes too.
        self.forget();
    }
}

impl ConnWrite for tokio::net::unix::OwnedWriteHalf {}

impl<T: AsyncRead + AsyncWrite + Send> ConnWrite for tokio::io::WriteHalf<T> {}

/// How much the connection reads ahead while the app runs (to notice a
/// client going away); past this it stops reading (backpressure).
pub(crate) const READ_AHEAD: usize = 64 * 1024;
/// Response bytes buffered before a write waits for the socket.
pub(crate) const WRITE_HIGH_WATER: usize = 64 * 1024;

/// Buffers of idle connections go back to a small per-thread pool, so an
/// idle connection holds none and a busy one allocates none.
const POOL_MAX: usize = 64;
const BUFFER_SIZE: usize = 8 * 1024;

thread_local! {
    static POOL: std::cell::RefCell<Vec<BytesMut>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A buffer from the pool (or a new one).
pub(crate) fn take_buffer() -> BytesMut {
    POOL.with(|pool| pool.borrow_mut().pop())
        .unwrap_or_else(|| BytesMut::with_capacity(BUFFER_SIZE))
}

/// Returns an empty buffer to the pool. Splitting heads off the front shrinks
/// a buffer's capacity; reclaiming gets the whole allocation back without a
/// new one, provided nothing still refers into it (else it is dropped).
pub(crate) fn give_buffer(mut buf: BytesMut) {
    buf.clear();
    if !buf.try_reclaim(BUFFER_SIZE) {
        return;
    }
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < POOL_MAX {
            pool.push(buf);
        }
    });
}

pub(crate) struct ReadSide {
    pub(crate) io: Option<BoxRead>,
    pub(crate) buf: BytesMut,
    pub(crate) eof: bool,
    pub(crate) failed: bool,
    pub(crate) body: Option<BodyState>,
}

pub(crate) struct BodyState {
    pub(crate) decoder: Decoder,
    /// `Expect: 100-continue` not yet answered.
    pub(crate) send_continue: bool,
    /// The request (its number on the connection) the body belongs to.
    pub(crate) request: u64,
}

pub(crate) struct WriteSide {
    pub(crate) io: Option<BoxWrite>,
    pub(crate) buf: BytesMut,
    /// The current response's head went into `buf`.
    pub(crate) response_started: bool,
    /// The current response's body ends at the close (HTTP/1.0, or no
    /// length): cut off, it must end with a reset.
    pub(crate) close_delimited: bool,
    pub(crate) failed: bool,
    /// Bytes written out of `buf` so far: tells how much of what was in it
    /// at some point has gone out since.
    pub(crate) flushed: u64,
}

impl WriteSide {
    /// Ends the connection after a response was cut off: with a reset when
    /// the cut response's body was delimited by the close (a clean end
    /// would make it look complete), else with a plain close.
    pub(crate) fn cut_off(&mut self) {
        let Some(io) = self.io.take() else {
            return;
        };
        if self.response_started && self.close_delimited {
            io.reset();
        }
    }
}

/// One connection's I/O.
pub(crate) struct Shared {
    pub(crate) read: Mutex<ReadSide>,
    pub(crate) write: Mutex<WriteSide>,
    /// The connection was handed to an upgrade.
    pub(crate) upgraded: AtomicBool,
    /// The current request's lifetime, fired when the peer goes away.
    pub(crate) lifetime: Mutex<Option<RequestLifetime>>,
    /// The minimum response rate, adjustable per request through the
    /// feature that shares this setting.
    pub(crate) response_rate: MinResponseDataRate,
    /// The server's hard stop: a write waiting for a client that does not
    /// read gives up when it fires.
    abort: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub(crate) fn new(
        read: BoxRead,
        write: BoxWrite,
        buf: BytesMut,
        response_rate: MinResponseDataRate,
        abort: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Shared {
            read: Mutex::new(ReadSide {
                io: Some(read),
                buf,
                eof: false,
                failed: false,
                body: None,
            }),
            write: Mutex::new(WriteSide {
                io: Some(write),
                buf: BytesMut::new(),
                response_started: false,
                close_delimited: false,
                failed: false,
                flushed: 0,
            }),
            upgraded: AtomicBool::new(false),
            lifetime: Mutex::new(None),
            response_rate,
            abort,
        })
    }

    pub(crate) fn read(&self) -> MutexGuard<'_, ReadSide> {
        lock(&self.read)
    }

    pub(crate) fn write(&self) -> MutexGuard<'_, WriteSide> {
        lock(&self.write)
    }

    /// The peer went away: fire the current request's lifetime.
    pub(crate) fn peer_gone(&self) {
        if let Some(lifetime) = lock(&self.lifetime).as_ref() {
            lifetime.abort();
        }
    }

    /// Reads more bytes into the buffer. `Ok(0)` is end of stream.
    pub(crate) fn poll_fill(&self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut read = self.read();
        poll_fill(&mut read, cx)
    }

    /// Writes out the whole write buffer and flushes.
    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush_until(cx, u64::MAX)
    }

    /// Writes out the buffer until `mark` bytes in all have gone out of it
    /// (see [`WriteSide::flushed`]), or all of it, and flushes: the bytes
    /// after the mark stay buffered.
    pub(crate) fn poll_flush_until(&self, cx: &mut Context<'_>, mark: u64) -> Poll<io::Result<()>> {
        let mut write = self.write();
        let write = &mut *write;
        let Some(io) = write.io.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        while !write.buf.is_empty() && write.flushed < mark {
            let owed = usize::try_from(mark - write.flushed).unwrap_or(usize::MAX);
            let chunk = &write.buf[..owed.min(write.buf.len())];
            match Pin::new(&mut *io).poll_write(cx, chunk) {
                Poll::Ready(Ok(0)) => {
                    write.failed = true;
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => {
                    write.buf.advance(n);
                    write.flushed += n as u64;
                }
                Poll::Ready(Err(e)) => {
                    write.failed = true;
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        Pin::new(io).poll_flush(cx)
    }

    /// Writes out the buffer, within the minimum response rate (see
    /// [`Shared::within_rate`]).
    pub(crate) async fn flush(&self) -> io::Result<()> {
        let pending = self.write().buf.len() as u64;
        self.within_rate(pending, std::future::poll_fn(|cx| self.poll_flush(cx)))
            .await
    }

    /// Flushes the buffer, then writes `data` straight to the transport,
    /// within the minimum response rate.
    pub(crate) async fn write_direct(&self, mut data: Bytes) -> io::Result<()> {
        self.flush().await?;
        let len = data.len() as u64;
        let write = async {
            while !data.is_empty() {
                let written = std::future::poll_fn(|cx| {
                    let mut write = self.write();
                    match write.io.as_mut() {
                        Some(io) => Pin::new(io).poll_write(cx, &data),
                        None => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
                    }
                })
                .await?;
                if written == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                data.advance(written);
            }
            Ok(())
        };
        self.within_rate(len, write).await
    }

    /// Runs a write of `bytes` under the minimum response rate: it may take
    /// `max(grace, bytes / rate)`; a client that reads slower than that times
    /// out, and the connection is dropped. A hard stop ends the wait too.
    /// Either way the write side is marked failed: the connection carries
    /// no further request.
    async fn within_rate(
        &self,
        bytes: u64,
        write: impl Future<Output = io::Result<()>>,
    ) -> io::Result<()> {
        let mut write = std::pin::pin!(write);
        // Most writes finish at once: no timer and no abort waiter for them.
        let first = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
        if let Poll::Ready(done) = first {
            return done;
        }
        // `None`: the rate's budget ran out.
        let bounded = async {
            match self.response_rate.get() {
                None => Some(write.await),
                Some(rate) => {
                    let per_second = rate.bytes_per_second.max(1) as f64;
                    let budget = rate
                        .grace
                        .max(Duration::from_secs_f64(bytes as f64 / per_second));
                    tokio::time::timeout(budget, write).await.ok()
                }
            }
        };
        let failure = tokio::select! {
            biased;
            _ = self.abort.cancelled() => io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the server stopped before the client read the response",
            ),
            done = bounded => match done {
                Some(done) => return done,
                None => io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client reads the response slower than the minimum data rate",
                ),
            },
        };
        self.write().failed = true;
        Err(failure)
    }

    /// Gives back the buffers of an idle connection (nothing buffered either
    /// way): an idle keep-alive connection then costs a few hundred bytes,
    /// not its buffers' capacity.
    pub(crate) fn release_idle_buffers(&self) {
        {
            let mut read = self.read();
            if read.buf.is_empty() && read.buf.capacity() > 0 {
                give_buffer(std::mem::take(&mut read.buf));
            }
        }
        let mut write = self.write();
        if write.buf.is_empty() && write.buf.capacity() > 0 {
            give_buffer(std::mem::take(&mut write.buf));
        }
    }
}

pub(crate) fn poll_fill(read: &mut ReadSide, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
    let Some(io) = read.io.as_mut() else {
        return Poll::Ready(Ok(0));
    };
    if read.buf.capacity() == 0 {
        // An idle connection holds no read buffer: wait on a stack buffer and
        // allocate only for bytes that arrived.
        let mut stack = [std::mem::MaybeUninit::<u8>::uninit(); 2048];
        let mut chunk = ReadBuf::uninit(&mut stack);
        let poll = Pin::new(io).poll_read(cx, &mut chunk);
        return match poll {
            Poll::Ready(Ok(())) => {
                let n = chunk.filled().len();
                if n == 0 {
                    read.eof = true;
                } else {
                    read.buf = take_buffer();
                    read.buf.extend_from_slice(chunk.filled());
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => {
                read.failed = true;
                Poll::Ready(Err(e))
            }
            Poll::Pending => Poll::Pending,
        };
    }
    if read.buf.capacity() - read.buf.len() < 4096 {
        read.buf.reserve(8192);
    }
    let poll = tokio_util::io::poll_read_buf(Pin::new(io), cx, &mut read.buf);
    match &poll {
        Poll::Ready(Ok(0)) => read.eof = true,
        Poll::Ready(Err(_)) => read.failed = true,
        _ => {}
    }
    poll
}

/// The request body of an HTTP/1.1 request, decoded from the connection.
pub(crate) struct Http1Body {
    pub(crate) shared: Arc<Shared>,
    pub(crate) hint: SizeHint,
    /// The request's body limit, checked here too: a body refused with 413
    /// is left unread, so the connection must close.
    pub(crate) limit: MaxRequestBodySize,
    /// Body bytes handed out so far.
    pub(crate) seen: u64,
    /// Requested when the body cannot be read to its end (malformed framing,
    /// over the limit): the bytes after it cannot be trusted as the next
    /// request (smuggling), so the response says `Connection: close`.
    pub(crate) close: ConnectionClose,
    /// The minimum request body rate, when enforced.
    pub(crate) rate: Option<MinRate>,
    /// The request (its number on the connection) this body belongs to: a
    /// body an app kept past its request never reads the next one's bytes.
    pub(crate) request: u64,
    /// The end of the body was handed out.
    pub(crate) ended: bool,
}

/// The minimum data rate of a request body (Kestrel's
/// `MinRequestBodyDataRate`): only time spent waiting for the client counts;
/// past the grace period, the bytes received must keep up with `rate` per
/// second of that time.
pub(crate) struct MinRate {
    setting: MinRequestBodyDataRate,
    waited: Duration,
    pending_since: Option<tokio::time::Instant>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl MinRate {
    pub(crate) fn new(setting: MinRequestBodyDataRate) -> Self {
        MinRate {
            setting,
            waited: Duration::ZERO,
            pending_since: None,
            sleep: None,
        }
    }

    /// Bytes were already read ahead when the body was polled: the app was
    /// not waiting on this body when they came (it had dropped its read, or
    /// was busy elsewhere), so the wait that was open does not count.
    /// Kestrel's rule: only time the app spends waiting on the client
    /// counts.
    fn already_here(&mut self) {
        self.pending_since = None;
    }

    /// Bytes arrived: the wait so far counts.
    fn progress(&mut self) {
        if let Some(since) = self.pending_since.take() {
            self.waited += since.elapsed();
        }
    }

    /// Waiting for bytes with `seen` received: the rate, if it is broken
    /// (registering a wake-up for when it would be). The setting is read as
    /// it is now: the app may have changed it for this request.
    fn poll_expired(&mut self, seen: u64, cx: &mut Context<'_>) -> Option<u64> {
        let rate = self.setting.get()?;
        let per_second = rate.bytes_per_second.max(1);
        let now = tokio::time::Instant::now();
        let since = *self.pending_since.get_or_insert(now);
        let allowed = rate
            .grace
            .max(Duration::from_secs_f64(seen as f64 / per_second as f64));
        let deadline = super::after(since, allowed.saturating_sub(self.waited));
        if now >= deadline {
            return Some(per_second);
        }
        match self.sleep.as_mut() {
            Some(sleep) if sleep.deadline() == deadline => {}
            Some(sleep) => sleep.as_mut().reset(deadline),
            None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
        let expired = self
            .sleep
            .as_mut()
            .is_some_and(|s| s.as_mut().poll(cx).is_ready());
        expired.then_some(per_second)
    }
}

#[cold]
fn too_slow(rate: u64) -> Error {
    Error::timeout(format!(
        "the request body arrives slower than {rate} bytes per second"
    ))
    .with_status(http::StatusCode::REQUEST_TIMEOUT)
}

/// A body read after its request ended without reading it all (an app
/// kept it in a task that outlived the request).
#[cold]
fn request_over() -> Error {
    Error::closed("the request this body belongs to has ended")
        .with_status(http::StatusCode::BAD_REQUEST)
}

/// The client ended the stream mid-body.
#[cold]
fn closed_mid_body() -> Error {
    Error::body_cut_short("the client closed the connection before the end of the body")
}

#[cold]
fn too_large(max: u64) -> Error {
    Error::limit(
        format!("request body larger than the limit of {max} bytes"),
        http::StatusCode::PAYLOAD_TOO_LARGE,
    )
}

impl Body for Http1Body {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        let shared = &this.shared;
        // Read: the limit can no longer change.
        if this.seen == 0 {
            this.limit.mark_read_only();
        }
        let max = this.limit.get();
        // A declared length over the limit is refused before `100 Continue`
        // invites the client to send it.
        if let (0, Some(declared), Some(max)) = (this.seen, this.hint.exact(), max) {
            if declared > max {
                this.close.request();
                return Poll::Ready(Some(Err(too_large(max))));
            }
        }
        let send_continue = {
            let read = shared.read();
            match read.body.as_ref() {
                Some(body) if body.request == this.request => body.send_continue,
                // The connection moved on (or the body failed before).
                _ => return Poll::Ready(Some(Err(request_over()))),
            }
        };
        if send_continue {
            // RFC 9110 §10.1.1: answer 100 when the app first reads the
            // body, unless it already answered.
            {
                let mut write = shared.write();
                if !write.response_started {
                    write
                        .buf
                        .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                }
            }
            match shared.poll_flush(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(Error::io(e)))),
                Poll::Ready(Ok(())) => {}
            }
            if let Some(body) = shared.read().body.as_mut() {
                body.send_continue = false;
            }
        }
        let mut read = shared.read();
        let read = &mut *read;
        loop {
            let Some(body) = read.body.as_mut() else {
                return Poll::Ready(Some(Err(request_over())));
            };
            let decoded = body.decoder.decode(&mut read.buf);
            // A size line that announces more than the limit leaves is
            // refused at once, not when the data crosses it (a client could
            // hold the connection trickling a body that can never fit).
            let announced = body.decoder.announced();
            match decoded {
                Err(err) => {
                    read.body = None;
                    this.close.request();
                    return Poll::Ready(Some(Err(err)));
                }
                Ok(Decoded::Data(data)) => {
                    if let Some(rate) = this.rate.as_mut() {
                        rate.already_here();
                    }
                    this.seen += data.len() as u64;
                    // What remains of a known length.
                    if let Some(left) = this.hint.exact() {
                        this.hint = SizeHint::with_exact(left.saturating_sub(data.len() as u64));
                    }
                    if let Some(max) = max.filter(|&max| this.seen.saturating_add(announced) > max)
                    {
                        this.close.request();
                        return Poll::Ready(Some(Err(too_large(max))));
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Decoded::Trailers(trailers)) => {
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                }
                Ok(Decoded::End) => {
                    this.ended = true;
                    return Poll::Ready(None);
                }
                Ok(Decoded::NeedMore) => {
                    if let Some(max) = max.filter(|&max| this.seen.saturating_add(announced) > max)
                    {
                        this.close.request();
                        return Poll::Ready(Some(Err(too_large(max))));
                    }
                }
            }
            // Cut short, the body leaves the connection unusable: the
            // answer says so (`Connection: close`).
            if read.eof || read.failed {
                this.close.request();
                return Poll::Ready(Some(Err(closed_mid_body())));
            }
            match poll_fill(read, cx) {
                Poll::Pending => {
                    if let Some(rate) = this.rate.as_mut() {
                        if let Some(per_second) = rate.poll_expired(this.seen, cx) {
                            read.body = None;
                            this.close.request();
                            return Poll::Ready(Some(Err(too_slow(per_second))));
                        }
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Ok(n)) if n > 0 => {
                    if let Some(rate) = this.rate.as_mut() {
                        rate.progress();
                    }
                }
                Poll::Ready(Ok(0)) => {
                    // `peer_gone` takes the lifetime lock, not this one.
                    shared.peer_gone();
                    this.close.request();
                    return Poll::Ready(Some(Err(closed_mid_body())));
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    shared.peer_gone();
                    this.close.request();
                    return Poll::Ready(Some(Err(Error::io(e))));
                }
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        self.hint
    }
}

/// The `Upgrade` feature of an HTTP/1.1 connection (its per-request state
/// lives in the [`Exchange`]).
pub(crate) struct Http1Upgrade {
    pub(crate) shared: Arc<Shared>,
    pub(crate) exchange: Arc<Exchange>,
}

impl Upgrade for Http1Upgrade {
    fn is_upgradable(&self) -> bool {
        self.exchange.upgradable.load(Ordering::Relaxed)
    }

    fn on_upgrade(&mut self) -> Result<OnUpgrade> {
        if !self.exchange.upgradable.load(Ordering::Relaxed) {
            return Err(Error::contract(
                "upgrade.not-upgradable",
                "this request cannot be upgraded",
            ));
        }
        let permit = match &self.exchange.upgrade_slots {
            None => None,
            Some(slots) => Some(slots.clone().try_acquire_owned().map_err(|_| {
                Error::limit(
                    "too many upgraded connections",
                    http::StatusCode::SERVICE_UNAVAILABLE,
                )
            })?),
        };
        self.exchange.upgradable.store(false, Ordering::Relaxed);
        let shared = self.shared.clone();
        let tracker = self.exchange.tracker.clone();
        let abort = self.exchange.abort.clone();
        Ok(Box::pin(async move {
            // The 101 head is in the write buffer once the caller sent it.
            shared.flush().await?;
            let (read, prefix) = {
                let mut read = shared.read();
                (read.io.take(), read.buf.split().freeze())
            };
            let write = shared.write().io.take();
            shared.upgraded.store(true, Ordering::Release);
            match (read, write) {
                (Some(read), Some(write)) => {
                    let halves: Halves = Arc::new(Mutex::new(Some((read, write))));
                    let released = CancellationToken::new();
                    // The connection's task ends here; this watch keeps
                    // `stop` waiting until the app lets the connection go,
                    // and closes it at the deadline if it has not.
                    tracker.spawn(watch_upgraded(
                        halves.clone(),
                        released.clone(),
                        abort.clone(),
                    ));
                    Ok(Upgraded::new(UpgradedIo {
                        halves,
                        prefix,
                        _permit: permit,
                        _released: released.drop_guard(),
                        aborted: Box::pin(abort.cancelled_owned()),
                    }))
                }
                _ => Err(Error::closed("the connection is gone")),
            }
        }))
    }
}

/// An upgraded connection's transport, shared by the app's IO and the
/// server's watch (which takes it at a stop's deadline).
type Halves = Arc<Mutex<Option<(BoxRead, BoxWrite)>>>;

/// Until the app lets the upgraded connection go (`released`), or a stop's
/// deadline (`abort`): then the connection is closed whether or not the app
/// still holds its IO, whose reads and writes fail from then on.
async fn watch_upgraded(halves: Halves, released: CancellationToken, abort: CancellationToken) {
    tokio::select! {
        () = released.cancelled() => {}
        () = abort.cancelled() => {
            let taken = halves.lock().unwrap_or_else(|p| p.into_inner()).take();
            drop(taken);
        }
    }
}

fn upgraded_gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the server stopped: the upgraded connection is closed",
    )
}

/// The raw connection after an upgrade: bytes already read come first.
struct UpgradedIo {
    halves: Halves,
    prefix: Bytes,
    /// The upgraded-connection slot, given back when the app drops the IO.
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Tells the server's watch the app let the connection go.
    _released: tokio_util::sync::DropGuard,
    /// A stop's deadline: wakes an app waiting on the IO, which then fails.
    aborted: Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
}

impl UpgradedIo {
    /// Polls `op` on the transport; pending, the stop's deadline may end it.
    fn poll_io<T>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(&mut (BoxRead, BoxWrite), &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        let polled = {
            let mut halves = self.halves.lock().unwrap_or_else(|p| p.into_inner());
            match halves.as_mut() {
                Some(halves) => op(halves, cx),
                None => return Poll::Ready(Err(upgraded_gone())),
            }
        };
        if polled.is_pending() && self.aborted.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(upgraded_gone()));
        }
        polled
    }
}

impl AsyncRead for UpgradedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        self.poll_io(cx, |(read, _), cx| Pin::new(read).poll_read(cx, buf))
    }
}

impl AsyncWrite for UpgradedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(cx, |(_, write), cx| Pin::new(write).poll_write(cx, buf))
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_io(cx, |(_, write), cx| Pin::new(write).poll_flush(cx))
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_io(cx, |(_, write), cx| Pin::new(write).poll_shutdown(cx))
    }
}

/// Resolves when the peer goes away while a request runs: reads ahead (up to
/// [`READ_AHEAD`]) so that EOF or a reset is noticed even when the app is
/// not reading. Bytes read stay buffered for the body or the next request.
pub(crate) struct WatchPeer<'a> {
    pub(crate) shared: &'a Shared,
}

impl Future for WatchPeer<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut read = self.shared.read();
        loop {
            if read.io.is_none() {
                return Poll::Pending; // upgraded: not ours to watch
            }
            if read.eof || read.failed {
                return Poll::Ready(());
            }
            if read.buf.len() >= READ_AHEAD {
                return Poll::Pending;
            }
            match poll_fill(&mut read, cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(_) => continue,
            }
        }
    }
}
