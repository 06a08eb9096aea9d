//! Graceful and hard stop for every connection, at one atomic load per poll.
//!
//! hyper-util's `GracefulShutdown` watcher and a `select!` on a cancellation
//! token both poll a waiter on every poll of the connection (a lock and a
//! waker check each), which on a keep-alive connection is every request. A
//! connection here registers its task's waker with each signal once (again
//! only if the waker changes, which a spawned task's does not) and learns of
//! a stop from the signal's flag, which [`Signal::fire`] sets before it
//! wakes anyone.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use hyper_util::server::graceful::GracefulConnection;
use pin_project_lite::pin_project;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// A one-way signal: fired once, seen by every connection.
#[derive(Clone, Default)]
pub(crate) struct Signal {
    token: CancellationToken,
    flag: Arc<AtomicBool>,
}

impl Signal {
    /// Fires the signal: the flag first, then the wake-ups.
    pub(crate) fn fire(&self) {
        self.flag.store(true, Ordering::Release);
        self.token.cancel();
    }

    pub(crate) fn is_fired(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}

pin_project! {
    /// A connection under the server's two stop signals: on `graceful` it
    /// shuts down gracefully; on `abort` it resolves to `None` at once (and
    /// is dropped with the task).
    pub(crate) struct Watched<C> {
        #[pin]
        conn: C,
        graceful: Signal,
        abort: Signal,
        #[pin]
        graceful_wait: WaitForCancellationFutureOwned,
        #[pin]
        abort_wait: WaitForCancellationFutureOwned,
        registered: Option<Waker>,
        shutting_down: bool,
    }
}

impl<C> Watched<C> {
    pub(crate) fn new(conn: C, graceful: &Signal, abort: &Signal) -> Self {
        Watched {
            conn,
            graceful_wait: graceful.token.clone().cancelled_owned(),
            abort_wait: abort.token.clone().cancelled_owned(),
            graceful: graceful.clone(),
            abort: abort.clone(),
            registered: None,
            shutting_down: false,
        }
    }
}

impl<C: GracefulConnection> Future for Watched<C> {
    type Output = Option<C::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if !this
            .registered
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()))
        {
            // Registered now; a signal that fired before is in its flag.
            let _ = this.graceful_wait.as_mut().poll(cx);
            let _ = this.abort_wait.as_mut().poll(cx);
            *this.registered = Some(cx.waker().clone());
        }
        if this.abort.is_fired() {
            return Poll::Ready(None);
        }
        if !*this.shutting_down && this.graceful.is_fired() {
            *this.shutting_down = true;
            this.conn.as_mut().graceful_shutdown();
        }
        this.conn.poll(cx).map(Some)
    }
}
