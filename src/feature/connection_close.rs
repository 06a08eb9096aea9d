//! [`ConnectionClose`]: ask for the connection to close after this response.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Asks the server to close the connection gracefully once the current
/// response is complete (the analogue of
/// `IConnectionLifetimeNotificationFeature.RequestClose`). HTTP/1.1 servers
/// answer with `Connection: close` if the head is not yet sent; HTTP/2
/// servers send GOAWAY.
///
/// Clones share one flag; servers also set it during a graceful stop, so an
/// app can see that the connection is going away.
///
/// Provided by: servers with persistent connections.
///
/// # Example
///
/// ```
/// let close = serverbridge::feature::ConnectionClose::default();
/// assert!(!close.is_requested());
/// close.request();
/// assert!(close.is_requested());
/// ```
#[derive(Clone, Debug, Default)]
pub struct ConnectionClose {
    requested: Arc<AtomicBool>,
}

impl ConnectionClose {
    /// A feature sharing the server's own flag.
    pub fn from_flag(flag: Arc<AtomicBool>) -> Self {
        ConnectionClose { requested: flag }
    }

    /// Asks for a graceful close after the current response.
    pub fn request(&self) {
        self.requested.store(true, Ordering::Relaxed);
    }

    /// Whether a close was asked for.
    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::Relaxed)
    }

    /// Makes this a flag nothing has asked on, for a server that reuses the
    /// feature for the next request: in place when nothing else holds it;
    /// otherwise a new flag, and the holders keep the old one (a clone the
    /// last request's app kept cannot close the next request), as
    /// [`RequestLifetime::renew`](super::RequestLifetime::renew) does.
    ///
    /// # Example
    ///
    /// ```
    /// use serverbridge::feature::ConnectionClose;
    ///
    /// let mut close = ConnectionClose::default();
    /// close.request();
    /// let kept = close.clone();
    /// close.reset();
    /// assert!(!close.is_requested());
    /// kept.request(); // the old request's handle
    /// assert!(!close.is_requested());
    /// ```
    pub fn reset(&mut self) {
        match Arc::get_mut(&mut self.requested) {
            Some(flag) => *flag.get_mut() = false,
            None => self.requested = Arc::default(),
        }
    }
}
