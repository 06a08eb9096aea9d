//! The request lifecycle every server runs: one function, so the order is the
//! same everywhere.
//!
//! 1. `create_context` with the server's features, inside a panic guard. A
//!    panic there loses the features (the sink among them): nothing is sent,
//!    the outcome carries an empty collection and the error, not completed,
//!    and the server closes the connection (Kestrel's rule for a throwing
//!    `CreateContext`). No context, so no `dispose_context`.
//! 2. `process_request`, inside a panic guard (the call too, not only the
//!    future it returns).
//! 3. Success: [`HttpContext::complete`] (runs `on_starting` last-registered
//!    first, sends the head if needed, finishes the body, checks
//!    Content-Length).
//! 4. Failure before the head was sent: a bare response with the error's
//!    status ([`Error::status`], else `500`) and `Content-Length: 0`; the
//!    `on_starting` callbacks do not run (Kestrel's rule). Failure after:
//!    the response is aborted ([`ResponseBody::abort`] and
//!    [`RequestLifetime`](crate::feature::RequestLifetime) fire), never ended
//!    as if complete.
//! 5. `on_completed` callbacks, last-registered first (a failing one is logged
//!    and does not stop the others).
//! 6. `dispose_context` with the error.
//!
//! What is left to the server: draining an unread request body, keep-alive.

use futures::FutureExt;
use http::StatusCode;

use crate::application::Application;
use crate::cold::OutOfLine;
use crate::context::{panic_message, HttpContext};
use crate::error::Error;
use crate::feature::{ResponseBody, ResponseFeature};
use crate::features::Features;

/// What happened to one request, for the server's bookkeeping.
#[derive(Debug)]
pub struct RequestOutcome {
    /// The features, back for reuse (the request body may be partly unread).
    pub features: Features,
    /// The error that ended the request, if any (also given to
    /// `dispose_context`).
    pub error: Option<Error>,
    /// Whether the response was completed normally (`false`: aborted, the
    /// connection must not be reused).
    pub completed: bool,
}

/// Runs one request through `app` (see the [module docs](self)).
///
/// # Example
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use serverbridge::lifecycle::run_request;
/// use serverbridge::testing::RecordingSink;
/// use serverbridge::{Features, HttpContext, Result};
///
/// async fn fails(_: &mut HttpContext) -> Result<()> {
///     Err(serverbridge::Error::app_msg("boom"))
/// }
///
/// let (features, recording) = RecordingSink::features("GET", "/");
/// let outcome = run_request(&fails, features).await;
/// assert!(outcome.error.unwrap().is_app());
/// assert_eq!(recording.status(), Some(http::StatusCode::INTERNAL_SERVER_ERROR));
/// assert_eq!(recording.headers().unwrap()["content-length"], "0");
/// # });
/// ```
pub async fn run_request<A>(app: &A, features: Features) -> RequestOutcome
where
    A: Application + ?Sized,
{
    let created = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        app.create_context(features)
    }));
    let mut ctx = match created {
        Ok(ctx) => ctx,
        Err(panic) => return context_lost(&panic),
    };
    // The call itself runs inside the guard too: an app may panic before it
    // returns its future.
    let processed = std::panic::AssertUnwindSafe(async { app.process_request(&mut ctx).await })
        .catch_unwind()
        .await;
    let mut error = match processed {
        Ok(Ok(())) => None,
        Ok(Err(err)) => Some(err),
        Err(panic) => Some(Error::app_msg(format!(
            "the application panicked: {}",
            panic_message(&panic)
        ))),
    };
    let mut completed = false;
    if error.is_none() {
        match ctx.complete().await {
            // `complete` does nothing after `ctx.abort()`: not completed. A
            // client that went away (the lifetime fired) does not count: the
            // app finished its response, and a half-closed client reads it.
            Ok(()) => completed = !ctx.abort_called(),
            Err(err) => error = Some(err),
        }
    }
    if let Some(err) = &error {
        if !completed {
            completed = OutOfLine::new(fail(&mut ctx, err)).await;
        }
    }
    // A callback may register more: they run too, until none are left.
    loop {
        let on_completed = match ctx.features_mut().get_mut::<ResponseFeature>() {
            Some(response) => response.take_on_completed(),
            None => Vec::new(),
        };
        if on_completed.is_empty() {
            break;
        }
        if let Err(err) = ctx.run_callbacks(on_completed) {
            tracing::warn!(error = %err, "an on_completed callback failed");
        }
    }
    let disposed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        app.dispose_context(&mut ctx, error.as_ref())
    }));
    if let Err(panic) = disposed {
        tracing::error!(panic = %panic_message(&panic), "dispose_context panicked");
    }
    RequestOutcome {
        features: ctx.into_features(),
        error,
        completed,
    }
}

/// The outcome when `create_context` panicked: the features went down with
/// it (the response sink among them), so nothing can be sent, and there is
/// no context to dispose of. The server closes the connection, as Kestrel
/// does when `CreateContext` throws.
fn context_lost(panic: &Box<dyn std::any::Any + Send>) -> RequestOutcome {
    let error = Error::app_msg(format!("create_context panicked: {}", panic_message(panic)));
    tracing::error!(error = %error, "no context for the request");
    RequestOutcome {
        features: Features::new(),
        error: Some(error),
        completed: false,
    }
}

/// Ends a failed request: an error response if nothing was sent, otherwise an
/// abort. Returns whether a complete (error) response went out.
async fn fail(ctx: &mut HttpContext, err: &Error) -> bool {
    // Only a response of this request's own (not one in the shared
    // defaults layer, a broken server's) can carry the error response.
    let local = ctx
        .features_mut()
        .get_mut::<ResponseFeature>()
        .map(|r| r.has_started());
    if local == Some(false) && !ctx.is_completed() {
        let status = err.status().unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if ctx.send_error_response(status).await.is_ok() {
            return true;
        }
    }
    // Aborted already (`ctx.abort()`): the sink was told once.
    if ctx.abort_called() {
        return false;
    }
    if let Some(lifetime) = ctx.lifetime() {
        lifetime.abort();
    }
    if let Some(sink) = ctx.features_mut().get_dyn_mut::<dyn ResponseBody>() {
        sink.abort(err);
    }
    false
}
