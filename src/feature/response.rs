//! [`ResponseFeature`]: status, headers and the lifecycle callbacks.

use std::fmt;

use http::{HeaderMap, StatusCode};

use crate::context::HttpContext;
use crate::error::{Error, Result};

/// A callback registered with [`ResponseFeature::on_starting`] or
/// [`ResponseFeature::on_completed`]. It gets the whole context, so it can
/// read the request, add headers (on starting) or log (on completed).
pub type Callback = Box<dyn FnOnce(&mut HttpContext) -> Result<()> + Send + Sync>;

/// The response head and its lifecycle (the analogue of
/// `IHttpResponseFeature`). **Required**: every server provides it.
///
/// `status`, `reason` and `headers` may change until the head is sent
/// ([`has_started`](Self::has_started)); after that, changes do not reach the
/// wire (and [`Lint`](crate::lint::Lint) reports them as
/// `response.head-after-start`).
///
/// Callbacks run last-registered first: `on_starting` ones just before the
/// head is sent, `on_completed` ones after the response is finished.
///
/// # Example
///
/// ```
/// use serverbridge::feature::ResponseFeature;
///
/// let mut response = ResponseFeature::default();
/// assert_eq!(response.status, http::StatusCode::OK);
/// response.on_starting(Box::new(|ctx| {
///     ctx.response_mut().headers.insert("x-started", "1".parse().unwrap());
///     Ok(())
/// })).unwrap();
/// assert!(!response.has_started());
/// ```
pub struct ResponseFeature {
    /// The status code (default `200 OK`).
    pub status: StatusCode,
    /// A custom reason phrase; `None` sends the canonical one.
    pub reason: Option<String>,
    /// The response headers.
    pub headers: HeaderMap,
    started: bool,
    on_starting: Vec<Callback>,
    on_completed: Vec<Callback>,
}

impl Default for ResponseFeature {
    fn default() -> Self {
        ResponseFeature {
            status: StatusCode::OK,
            reason: None,
            headers: HeaderMap::new(),
            started: false,
            on_starting: Vec::new(),
            on_completed: Vec::new(),
        }
    }
}

impl fmt::Debug for ResponseFeature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFeature")
            .field("status", &self.status)
            .field("reason", &self.reason)
            .field("headers", &self.headers)
            .field("has_started", &self.started)
            .field("on_starting", &self.on_starting.len())
            .field("on_completed", &self.on_completed.len())
            .finish()
    }
}

/// Whether a reason phrase can go on a status line as it is (RFC 9112 §4:
/// tab, space, visible characters and obs-text only). The one rule for the
/// head's reason, the HTTP/1 encoder and the lint.
pub(crate) fn reason_fits(reason: &str) -> bool {
    reason
        .bytes()
        .all(|b| b == b'\t' || b == b' ' || b.is_ascii_graphic() || b >= 0x80)
}

impl ResponseFeature {
    /// Resets to a fresh response (`200`, no headers, no callbacks) keeping
    /// the header map's capacity: for servers that reuse one feature
    /// collection per connection, as Kestrel does.
    pub fn reset(&mut self) {
        self.status = StatusCode::OK;
        self.reason = None;
        // Clearing walks the whole index even when there is nothing in it.
        if !self.headers.is_empty() {
            self.headers.clear();
        }
        self.started = false;
        // Usually empty: clearing an empty list still calls its drop.
        if !self.on_starting.is_empty() {
            self.on_starting.clear();
        }
        if !self.on_completed.is_empty() {
            self.on_completed.clear();
        }
    }

    /// Whether the head has been handed to the server (it may still be in a
    /// send buffer).
    pub fn has_started(&self) -> bool {
        self.started
    }

    /// Marks the head as sent. Called by [`HttpContext`] when it sends the
    /// head; servers and bridges that send a head themselves call it too.
    pub fn mark_started(&mut self) {
        self.started = true;
    }

    /// The reason phrase that goes on the wire: the custom one, or the
    /// canonical one for the status when there is none or the custom one
    /// has a character a status line cannot carry (RFC 9112 §4 allows tab,
    /// space, visible characters and obs-text): a CR or LF there would end
    /// the line and let the reason write header lines of its own. Every
    /// server gets the head's reason from here.
    ///
    /// # Example
    ///
    /// ```
    /// use serverbridge::feature::ResponseFeature;
    ///
    /// let mut response = ResponseFeature::default();
    /// response.reason = Some("Fine".into());
    /// assert_eq!(response.reason_phrase(), "Fine");
    /// response.reason = Some("OK\r\nSet-Cookie: x=1".into());
    /// assert_eq!(response.reason_phrase(), "OK");
    /// ```
    pub fn reason_phrase(&self) -> &str {
        match &self.reason {
            Some(reason) if reason_fits(reason) => reason,
            _ => self.status.canonical_reason().unwrap_or(""),
        }
    }

    /// Registers a callback to run just before the head is sent. Fails (rule
    /// `response.callback-after-start`) once the head was sent.
    pub fn on_starting(&mut self, callback: Callback) -> Result<()> {
        if self.started {
            return Err(Error::contract(
                "response.callback-after-start",
                "on_starting registered after the response started",
            ));
        }
        self.on_starting.push(callback);
        Ok(())
    }

    /// Registers a callback to run after the response is finished (or
    /// aborted), before the context is disposed.
    pub fn on_completed(&mut self, callback: Callback) {
        self.on_completed.push(callback);
    }

    /// Whether any `on_starting` callback is registered.
    pub(crate) fn has_on_starting(&self) -> bool {
        !self.on_starting.is_empty()
    }

    /// Takes the `on_starting` callbacks in the order they must run
    /// (last-registered first).
    pub fn take_on_starting(&mut self) -> Vec<Callback> {
        let mut callbacks = std::mem::take(&mut self.on_starting);
        callbacks.reverse();
        callbacks
    }

    /// Takes the `on_completed` callbacks in the order they must run
    /// (last-registered first).
    pub fn take_on_completed(&mut self) -> Vec<Callback> {
        let mut callbacks = std::mem::take(&mut self.on_completed);
        callbacks.reverse();
        callbacks
    }
}
