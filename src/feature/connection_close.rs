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

    /// Withdraws the request: for a server that reuses the feature for the
    /// next request (clones share the flag).
    ///
    /// # Example
    ///
    /// ```
    /// use serverbridge::feature::ConnectionClose;
    ///
    /// let close = ConnectionClose::default();
    /// close.request();
    /// close.reset();
    /// assert!(!close.is_requested());
    /// ```
    pub fn reset(&self) {
        self.requested.store(false, Ordering::Relaxed);
    }
}
