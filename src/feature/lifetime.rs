//! [`RequestLifetime`]: the request's cancellation signal.

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// A signal that fires when the request is over early: the client went away,
/// or someone called [`RequestLifetime::abort`] (the analogue of
/// `IHttpRequestLifetimeFeature` and OWIN's `owin.CallCancelled`).
///
/// Clones share the signal, so an app can hand one to a spawned task. The
/// server watches the same signal: `abort()` makes it drop the connection
/// (HTTP/1) or reset the stream (HTTP/2) without sending anything more.
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
#[derive(Clone, Debug, Default)]
pub struct RequestLifetime {
    token: CancellationToken,
}

impl RequestLifetime {
    /// A signal that has not fired.
    pub fn new() -> Self {
        RequestLifetime::default()
    }

    /// Wraps an existing token (a server's per-connection token, say).
    pub fn from_token(token: CancellationToken) -> Self {
        RequestLifetime { token }
    }

    /// The underlying token.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Resolves when the request is aborted.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }

    /// Whether the request was aborted.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Aborts the request: the server drops the connection or stream.
    pub fn abort(&self) {
        self.token.cancel();
    }
}
