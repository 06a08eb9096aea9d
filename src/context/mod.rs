//! [`HttpContext`]: one request's features with typed access.

use std::fmt;

use bytes::Bytes;

use crate::body::RequestBody;
use crate::error::{Error, Result};
use crate::feature::{
    Callback, ConnectionInfo, RequestFeature, RequestId, RequestLifetime, ResponseBody,
    ResponseFeature,
};
use crate::features::Features;

mod write;

pub(crate) use write::{body_allowed, parse_length};

/// Default size of the response buffer: a response that completes without a
/// flush and within this many bytes goes out with `Content-Length`.
pub const DEFAULT_RESPONSE_BUFFER: usize = 64 * 1024;

/// The state of the response body as the application wrote it.
#[derive(Debug)]
struct Output {
    /// The first buffered chunk, kept inline: most buffered responses are
    /// one write, and this saves the vector's allocation.
    first: Option<Bytes>,
    buffer: Vec<Bytes>,
    buffered: usize,
    buffer_limit: usize,
    /// Body bytes the application wrote (counted for HEAD too, where they are
    /// dropped).
    written: u64,
    /// The `Content-Length` the head was sent with.
    declared: Option<u64>,
    completed: bool,
    aborted: bool,
    /// An `on_starting` callback failed: the head the app meant to send
    /// must not go out (only the lifecycle's bare error response may).
    refused: bool,
    /// `upgrade` is sending its `101`: the one informational status that
    /// may be a response's head.
    upgrading: bool,
    /// The status the head went out with: the body's rules follow it, not
    /// a change the app makes after (which cannot reach the wire).
    sent_status: Option<http::StatusCode>,
}

impl Default for Output {
    fn default() -> Self {
        Output {
            first: None,
            buffer: Vec::new(),
            buffered: 0,
            buffer_limit: DEFAULT_RESPONSE_BUFFER,
            written: 0,
            declared: None,
            completed: false,
            aborted: false,
            refused: false,
            upgrading: false,
            sent_status: None,
        }
    }
}

/// One request: its [`Features`] with typed accessors and the
/// response-writing API (the analogue of `HttpContext`).
///
/// A server builds the features, [`Application::create_context`] wraps them
/// in an `HttpContext`, and the app reads the request and writes the response
/// through it. Writing goes through the context, not straight to the
/// [`ResponseBody`] sink, because the context enforces the contract:
///
/// - A response that completes without a flush and within the response
///   buffer (64 KiB by default) is sent whole with `Content-Length`; a flush
///   or a larger body sends the head first (the server then frames the body
///   as chunked on HTTP/1.1).
/// - `on_starting` callbacks run, last-registered first, just before the head.
/// - Bytes for a `1xx`, `204` or `304` response are an error
///   (`response.body-not-allowed`); a declared `Content-Length` the body does
///   not match is an error (`response.content-length-mismatch`), never a
///   silently truncated response.
/// - For `HEAD` the head is sent as for `GET` and body bytes are dropped.
///
/// # Example
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use serverbridge::testing::TestServer;
/// use serverbridge::{HttpContext, Result};
///
/// async fn hello(ctx: &mut HttpContext) -> Result<()> {
///     let name = ctx.request().query.clone();
///     ctx.response_mut().headers.insert("content-type", "text/plain".parse().unwrap());
///     ctx.write(format!("hello {name}")).await
/// }
///
/// let server = TestServer::new(hello);
/// let response = server.get("/?world").send().await.unwrap();
/// assert_eq!(response.status(), 200);
/// assert_eq!(response.headers()["content-length"], "11");
/// assert_eq!(response.text().await.unwrap(), "hello world");
/// # });
/// ```
///
/// [`Application::create_context`]: crate::Application::create_context
pub struct HttpContext {
    features: Features,
    out: Output,
}

impl Default for HttpContext {
    fn default() -> Self {
        HttpContext::new(Features::new())
    }
}

impl fmt::Debug for HttpContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpContext")
            .field("features", &self.features)
            .field("written", &self.out.written)
            .field("completed", &self.out.completed)
            .finish()
    }
}

fn missing(what: &str) -> String {
    format!("the server did not provide {what}, a required feature (rule server.required-features)")
}

impl HttpContext {
    /// Wraps a request's features.
    pub fn new(features: Features) -> Self {
        HttpContext {
            features,
            out: Output::default(),
        }
    }

    /// The feature collection.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// The feature collection, mutably.
    pub fn features_mut(&mut self) -> &mut Features {
        &mut self.features
    }

    /// Gives the features back (servers reuse them).
    pub fn into_features(self) -> Features {
        self.features
    }

    /// The request, if the server provided it.
    #[inline]
    pub fn try_request(&self) -> Option<&RequestFeature> {
        self.features.get()
    }

    /// The request.
    ///
    /// # Panics
    ///
    /// If the server broke the contract and provided no [`RequestFeature`];
    /// servers run the request inside a panic guard, which answers `500`.
    pub fn request(&self) -> &RequestFeature {
        self.try_request()
            .unwrap_or_else(|| panic!("{}", missing("RequestFeature")))
    }

    /// The request, mutably (middleware rewrites paths and headers).
    ///
    /// # Panics
    ///
    /// As [`request`](Self::request).
    pub fn request_mut(&mut self) -> &mut RequestFeature {
        self.features
            .get_mut()
            .unwrap_or_else(|| panic!("{}", missing("a local RequestFeature")))
    }

    /// The response head, if the server provided it.
    #[inline]
    pub fn try_response(&self) -> Option<&ResponseFeature> {
        self.features.get()
    }

    /// The response head.
    ///
    /// # Panics
    ///
    /// If the server provided no [`ResponseFeature`] (see [`request`](Self::request)).
    pub fn response(&self) -> &ResponseFeature {
        self.try_response()
            .unwrap_or_else(|| panic!("{}", missing("ResponseFeature")))
    }

    /// The response head, mutably.
    ///
    /// # Panics
    ///
    /// As [`response`](Self::response).
    pub fn response_mut(&mut self) -> &mut ResponseFeature {
        self.features
            .get_mut()
            .unwrap_or_else(|| panic!("{}", missing("a local ResponseFeature")))
    }

    /// The request body, for reading.
    pub fn request_body(&mut self) -> &mut RequestBody {
        &mut self.request_mut().body
    }

    /// Reads the whole request body, failing with [`Error::is_limit`] (413)
    /// past `max` bytes.
    pub async fn read_body(&mut self, max: usize) -> Result<Bytes> {
        self.request_mut().body.read_to_end(max).await
    }

    /// The connection the request arrived on, if the server says.
    pub fn connection(&self) -> Option<&ConnectionInfo> {
        self.features.get()
    }

    /// The request's cancellation signal, if the server provides one.
    pub fn lifetime(&self) -> Option<&RequestLifetime> {
        self.features.get()
    }

    /// The request id, if the server assigns one.
    pub fn request_id(&self) -> Option<&RequestId> {
        self.features.get()
    }

    /// Whether the request was aborted (client gone, or [`abort`](Self::abort)).
    pub fn is_aborted(&self) -> bool {
        self.out.aborted || self.lifetime().is_some_and(RequestLifetime::is_cancelled)
    }

    /// Whether this context's [`abort`](Self::abort) was called (not merely
    /// the client going away, after which a response may still be sent).
    pub(crate) fn abort_called(&self) -> bool {
        self.out.aborted
    }

    /// Aborts the request: fires [`RequestLifetime`], tells the server's sink
    /// to drop the response, and refuses further writes.
    pub fn abort(&mut self) {
        if let Some(lifetime) = self.lifetime() {
            lifetime.abort();
        }
        let reason = Error::aborted("the request was aborted");
        if let Some(sink) = self.features.get_dyn_mut::<dyn ResponseBody>() {
            sink.abort(&reason);
        }
        self.out.completed = true;
        self.out.aborted = true;
    }

    /// Ends a response whose body failed after its head went out: the sink
    /// drops it (the client sees it incomplete, the connection is not
    /// reused), the lifetime fires, and it never counts as completed,
    /// whether or not the app returns the error.
    pub(crate) fn break_response(&mut self, reason: &Error) {
        if let Some(lifetime) = self.lifetime() {
            lifetime.abort();
        }
        if let Some(sink) = self.features.get_dyn_mut::<dyn ResponseBody>() {
            sink.abort(reason);
        }
        self.out.completed = true;
        self.out.aborted = true;
    }

    /// Registers a callback to run just before the head is sent.
    pub fn on_starting(
        &mut self,
        callback: impl FnOnce(&mut HttpContext) -> Result<()> + Send + Sync + 'static,
    ) -> Result<()> {
        self.response_mut().on_starting(Box::new(callback))
    }

    /// Registers a callback to run after the response is finished.
    pub fn on_completed(
        &mut self,
        callback: impl FnOnce(&mut HttpContext) -> Result<()> + Send + Sync + 'static,
    ) {
        self.response_mut().on_completed(Box::new(callback));
    }

    /// Runs callbacks one by one with this context; a panic in a callback
    /// becomes an error. The first error is returned after all have run.
    pub(crate) fn run_callbacks(&mut self, callbacks: Vec<Callback>) -> Result<()> {
        let mut first = None;
        for callback in callbacks {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(self)));
            let err = match outcome {
                Ok(Ok(())) => continue,
                Ok(Err(err)) => err,
                Err(panic) => {
                    Error::app_msg(format!("callback panicked: {}", panic_message(&panic)))
                }
            };
            first.get_or_insert(err);
        }
        first.map_or(Ok(()), Err)
    }

    /// Body bytes the application has written so far (for `HEAD`, the bytes
    /// it wrote and the context dropped).
    pub fn bytes_written(&self) -> u64 {
        self.out.written
    }

    /// The `Content-Length` the head was sent with, if it was sent with one.
    pub(crate) fn declared_length_sent(&self) -> Option<u64> {
        self.out.declared
    }

    /// Whether the response was completed (or aborted).
    pub fn is_completed(&self) -> bool {
        self.out.completed
    }

    /// Marks the response as finished by a lifecycle that ran on another
    /// context over the same features: later writes are refused.
    pub(crate) fn mark_completed(&mut self) {
        self.out.completed = true;
    }

    /// Sets the response buffer size in bytes (default
    /// [`DEFAULT_RESPONSE_BUFFER`]); `0` sends the head on the first write.
    pub fn set_response_buffer_limit(&mut self, bytes: usize) {
        self.out.buffer_limit = bytes;
    }
}

/// The message of a panic payload.
pub(crate) fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}
