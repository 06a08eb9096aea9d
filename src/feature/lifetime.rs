//! [`RequestLifetime`]: the request's cancellation signal.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// A signal that fires when the request is over early: the client went away,
/// or someone called [`RequestLifetime::abort`] (the analogue of
/// `IHttpRequestLifetimeFeature` and OWIN's `owin.CallCancelled`).
///
/// Clones share the signal, so an app can hand one to a spawned task.
/// `abort()` fires it, as a server does when the client goes away; it does
/// not tell the server to drop the response. An app that means to end its
/// request calls [`HttpContext::abort`](crate::HttpContext::abort), which
/// fires this signal and has the server drop the connection (HTTP/1) or
/// reset the stream (HTTP/2) without sending anything more.
///
/// Every server makes one per request, so it is cheap where tokio-util's
/// `CancellationToken` is not: cloning and dropping are one atomic
/// operation each (a token takes a lock shared with its parent for both),
/// and checking it is one atomic load. A signal can have
/// [children](Self::child) (a connection's, say, whose requests all fire
/// when it does); one without any pays nothing for the possibility.
///
/// Provided by: every server in this workspace. Absent: a server that cannot
/// notice a client going away.
///
/// # Example
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let lifetime = serverbridge::feature::RequestLifetime::new();
/// let watcher = lifetime.clone();
/// lifetime.abort();
/// watcher.cancelled().await; // resolves at once
/// assert!(watcher.is_cancelled());
/// # });
/// ```
#[derive(Clone, Default)]
pub struct RequestLifetime {
    signal: Arc<Signal>,
}

#[derive(Default)]
struct Signal {
    fired: AtomicBool,
    notify: Notify,
    /// Signals that fire with this one; dead ones are pruned as new ones
    /// come (never touched by a signal without children).
    children: Mutex<Vec<Weak<Signal>>>,
}

impl Signal {
    fn fire(&self) {
        if self.fired.swap(true, Ordering::AcqRel) {
            return;
        }
        self.notify.notify_waiters();
        let children =
            std::mem::take(&mut *self.children.lock().unwrap_or_else(|p| p.into_inner()));
        for child in children {
            if let Some(child) = child.upgrade() {
                child.fire();
            }
        }
    }
}

impl fmt::Debug for RequestLifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestLifetime")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl RequestLifetime {
    /// A signal that has not fired.
    pub fn new() -> Self {
        RequestLifetime::default()
    }

    /// A new signal that fires when this one does (at once if this one has
    /// already fired); firing the child leaves this one alone. A
    /// connection's lifetime hands each of its requests a child.
    ///
    /// ```
    /// let connection = serverbridge::feature::RequestLifetime::new();
    /// let (first, second) = (connection.child(), connection.child());
    /// first.abort();
    /// assert!(!connection.is_cancelled() && !second.is_cancelled());
    /// connection.abort();
    /// assert!(second.is_cancelled());
    /// ```
    pub fn child(&self) -> RequestLifetime {
        let child = RequestLifetime::new();
        let mut children = self
            .signal
            .children
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if self.is_cancelled() {
            drop(children);
            child.abort();
            return child;
        }
        if children.len() == children.capacity() {
            children.retain(|c| c.strong_count() > 0);
        }
        children.push(Arc::downgrade(&child.signal));
        child
    }

    /// Makes this a signal that has not fired, for the next request on a
    /// reused feature collection: in place, with no allocation, when nothing
    /// else holds it (no clone, no parent); otherwise a new signal, and the
    /// holders keep the old one. Children of the old signal are let go (as
    /// when a signal is dropped, they no longer fire with it).
    ///
    /// ```
    /// let mut lifetime = serverbridge::feature::RequestLifetime::new();
    /// lifetime.abort();
    /// let held = lifetime.clone();
    /// lifetime.renew(); // held elsewhere: a new signal
    /// assert!(held.is_cancelled() && !lifetime.is_cancelled());
    /// lifetime.abort();
    /// drop(held);
    /// lifetime.renew(); // its own: reset in place
    /// assert!(!lifetime.is_cancelled());
    /// ```
    pub fn renew(&mut self) {
        match Arc::get_mut(&mut self.signal) {
            Some(signal) => {
                *signal.fired.get_mut() = false;
                signal
                    .children
                    .get_mut()
                    .unwrap_or_else(|p| p.into_inner())
                    .clear();
            }
            None => *self = RequestLifetime::new(),
        }
    }

    /// Resolves when the request is aborted.
    pub fn cancelled(&self) -> Cancelled<'_> {
        Cancelled {
            // Made before the flag is read: a `notify_waiters` from now on
            // reaches it even before its first poll.
            notified: self.signal.notify.notified(),
            fired: &self.signal.fired,
        }
    }

    /// Whether the request was aborted.
    pub fn is_cancelled(&self) -> bool {
        self.signal.fired.load(Ordering::Acquire)
    }

    /// Fires the signal (what a server does when the client goes away).
    /// Firing twice is the same as once. To drop the response too, an app
    /// calls [`HttpContext::abort`](crate::HttpContext::abort).
    pub fn abort(&self) {
        self.signal.fire();
    }
}

pin_project_lite::pin_project! {
    /// The future of [`RequestLifetime::cancelled`].
    pub struct Cancelled<'a> {
        #[pin]
        notified: Notified<'a>,
        fired: &'a AtomicBool,
    }
}

impl fmt::Debug for Cancelled<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cancelled")
    }
}

impl Future for Cancelled<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if this.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        // The signal notifies only when it fires, and never un-fires.
        this.notified.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[tokio::test]
    async fn a_waiter_made_before_the_abort_wakes_even_unpolled() {
        let lifetime = RequestLifetime::new();
        let waiter = lifetime.cancelled();
        lifetime.abort();
        assert_eq!(waiter.now_or_never(), Some(()));
    }

    #[tokio::test]
    async fn a_pending_waiter_on_another_task_wakes() {
        let lifetime = RequestLifetime::new();
        let watcher = lifetime.clone();
        let task = tokio::spawn(async move { watcher.cancelled().await });
        tokio::task::yield_now().await;
        assert!(!task.is_finished());
        assert!(lifetime.cancelled().now_or_never().is_none());
        lifetime.abort();
        task.await.expect("woken");
    }

    #[test]
    fn children_fire_with_their_parent_never_the_reverse() {
        let parent = RequestLifetime::new();
        let child = parent.child();
        let grandchild = child.child();
        grandchild.abort();
        assert!(!child.is_cancelled() && !parent.is_cancelled());
        parent.abort();
        assert!(child.is_cancelled());
        assert!(parent.child().is_cancelled(), "a late child fires at once");
    }

    #[test]
    fn dropped_children_are_pruned() {
        let parent = RequestLifetime::new();
        for _ in 0..10_000 {
            drop(parent.child());
        }
        let kept = parent.signal.children.lock().expect("lock").capacity();
        assert!(kept <= 16, "{kept} slots kept for children long gone");
    }

    #[tokio::test]
    async fn a_renewed_signal_is_new_to_its_holder_and_old_to_the_rest() {
        let parent = RequestLifetime::new();
        let mut child = parent.child();
        child.renew(); // linked to a parent: replaced, not reset
        parent.abort();
        assert!(!child.is_cancelled(), "renewed away from its parent");

        let mut lifetime = RequestLifetime::new();
        let grandchild = lifetime.child();
        lifetime.abort();
        lifetime.renew();
        assert!(!lifetime.is_cancelled());
        let waiter = lifetime.cancelled();
        lifetime.abort();
        assert_eq!(
            waiter.now_or_never(),
            Some(()),
            "waiters of the renewed signal wake"
        );
        drop(grandchild);
        let mut again = RequestLifetime::new();
        let kept = again.child();
        again.renew();
        again.abort();
        assert!(!kept.is_cancelled(), "children of the old signal let go");
    }

    #[test]
    fn clones_share_one_signal() {
        let lifetime = RequestLifetime::new();
        let (clone, other) = (lifetime.clone(), RequestLifetime::new());
        clone.abort();
        assert!(lifetime.is_cancelled() && !other.is_cancelled());
        assert_eq!(
            format!("{:?}", lifetime),
            "RequestLifetime { cancelled: true }"
        );
    }
}
