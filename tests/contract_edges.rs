//! Edges of the core contract an independent review found the code did not
//! keep: each test holds one promise of SPEC.md or a doc comment (response
//! lengths after the head, aborts in callbacks, bodies a status forbids,
//! `layer` and the context hooks, body limits, request trailers, a
//! misplaced feature).

#![cfg(feature = "test-util")]

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::StatusCode;
use http_body::{Body, Frame, SizeHint};
use http_body_util::StreamBody;
use serverbridge::body::RequestBody;
use serverbridge::feature::{MaxRequestBodySize, RequestTrailers, ResponseBody, ResponseFeature};
use serverbridge::lifecycle::run_request;
use serverbridge::testing::{RecordingSink, SinkEvent, TestServer};
use serverbridge::{Application, Builder, Error, Features, HttpContext, Next, Result};

// ---------------------------------------------------------------------------
// 1. A status change after the head was sent switches off the Content-Length
//    check: the response completes short, as if it were whole.
//
// SPEC §5: "A declared Content-Length the body does not match is an error
// ... fewer fail the completion. Before the head: a 500. After: an abort.
// Never a silently truncated response." ResponseFeature docs: after the head
// is sent, changes to status "do not reach the wire". Yet `complete`
// decides whether the declared length binds from the *current* status.
// ---------------------------------------------------------------------------
#[tokio::test]
async fn a_status_changed_after_the_head_leaves_its_content_length_binding() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut()
            .headers
            .insert("content-length", "10".parse().unwrap());
        ctx.write("hello").await?;
        ctx.flush().await?; // head `200, Content-Length: 10` is out
                            // Too late to reach the wire (Lint: response.head-after-start) …
        ctx.response_mut().status = StatusCode::NOT_MODIFIED;
        Ok(()) // … 5 of the 10 promised bytes
    }
    let (features, recording) = RecordingSink::features("GET", "/");
    let outcome = run_request(&app, features).await;
    assert_eq!(recording.status(), Some(StatusCode::OK));
    assert_eq!(recording.body(), "hello");
    assert!(
        recording.events().contains(&SinkEvent::Abort),
        "a 200 with Content-Length: 10 and 5 bytes must be aborted, got {:?}",
        recording.events()
    );
    assert!(!outcome.completed, "the short response counts as completed");
}

// ---------------------------------------------------------------------------
// 2. An on_starting callback that aborts the request does not stop the head:
//    the sink is told `abort`, then `start`, `write` and `complete`.
//
// ResponseBody docs: the context drives the sink "start once, then
// write/flush ..., then exactly one of complete, send_body, send_file or
// abort". HttpContext::abort docs: "tells the server's sink to drop the
// response, and refuses further writes". SPEC §1.1: abort() "drops the
// connection or stream".
// ---------------------------------------------------------------------------
/// Aborts the request from an `on_starting` callback, then writes.
async fn aborts_in_on_starting(ctx: &mut HttpContext) -> Result<()> {
    ctx.on_starting(|ctx| {
        ctx.abort();
        Ok(())
    })?;
    ctx.write("secret").await
}

#[tokio::test]
async fn an_abort_in_on_starting_stops_the_response_at_the_sink() {
    let (features, recording) = RecordingSink::features("GET", "/");
    let _ = run_request(&aborts_in_on_starting, features).await;
    assert_eq!(
        recording.events(),
        [SinkEvent::Abort],
        "nothing may reach the sink after abort"
    );
}

/// The same through TestServer: the client reads a whole 200 for a request
/// the app aborted.
#[tokio::test]
async fn an_abort_in_on_starting_reaches_the_client_as_an_abort() {
    let server = TestServer::new(aborts_in_on_starting);
    let sent = server.get("/").send().await;
    let text = match sent {
        Ok(response) => response.text().await,
        Err(err) => Err(err),
    };
    assert!(
        text.is_err(),
        "an aborted request must not read as a complete response: {text:?}"
    );
}

// ---------------------------------------------------------------------------
// 3. send_body of a body of unknown length on a 204 drops its bytes
//    silently and succeeds.
//
// SPEC §5: "A body for 1xx, 204 or 304 is an error
// (response.body-not-allowed)". `write` enforces it; `send_body` only looks
// at the size hint's lower bound and otherwise never polls the body.
// ---------------------------------------------------------------------------
#[tokio::test]
async fn send_body_with_bytes_on_a_204_is_an_error() {
    static RESULT: Mutex<Option<std::result::Result<(), Option<&'static str>>>> = Mutex::new(None);
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut().status = StatusCode::NO_CONTENT;
        let frames = futures::stream::iter([Ok::<_, Error>(Frame::data(Bytes::from_static(
            b"not allowed",
        )))]);
        let result = ctx.send_body(StreamBody::new(frames)).await;
        *RESULT.lock().unwrap() = Some(result.as_ref().map(|_| ()).map_err(|e| e.rule()));
        result
    }
    let (features, recording) = RecordingSink::features("GET", "/");
    run_request(&app, features).await;
    assert_eq!(
        *RESULT.lock().unwrap(),
        Some(Err(Some("response.body-not-allowed"))),
        "11 body bytes for a 204 vanished silently; sink saw {:?}",
        recording.events()
    );
}

// ---------------------------------------------------------------------------
// 4. A `layer` in a Builder pipeline hides the application's
//    create_context / dispose_context from the server.
//
// SPEC §9: "A pipeline's create_context and dispose_context are those of
// the application given to run: every middleware and map passes them
// through". `LayerApp` implements neither, so with a layer anywhere in the
// pipeline the server calls the default `create_context`, and the
// middleware before the layer does not see what the app's create_context
// set up; `dispose_context` runs inside the layer, with the inner error
// only, not the error the request ended with.
// ---------------------------------------------------------------------------
struct Marker;

#[derive(Default)]
struct ContextApp {
    disposed: Arc<Mutex<Vec<Option<String>>>>,
}

impl Application for ContextApp {
    fn create_context(&self, mut features: Features) -> HttpContext {
        features.insert(Marker);
        HttpContext::new(features)
    }

    fn process_request<'a>(&'a self, ctx: &'a mut HttpContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { ctx.write("app").await })
    }

    fn dispose_context(&self, _ctx: &mut HttpContext, error: Option<&Error>) {
        self.disposed
            .lock()
            .unwrap()
            .push(error.map(|e| e.to_string()));
    }
}

#[tokio::test]
async fn a_layer_passes_create_context_through() {
    static SAW_MARKER: AtomicUsize = AtomicUsize::new(0);
    async fn outer(ctx: &mut HttpContext, next: Next<'_>) -> Result<()> {
        if ctx.features().contains::<Marker>() {
            SAW_MARKER.fetch_add(1, Ordering::SeqCst);
        }
        next.run(ctx).await
    }
    // Without the layer, the middleware sees the app's context.
    let plain = Builder::new().use_fn(outer).run(ContextApp::default());
    let (features, _) = RecordingSink::features("GET", "/");
    run_request(&plain, features).await;
    assert_eq!(SAW_MARKER.load(Ordering::SeqCst), 1);
    // With an identity layer after it, it does not.
    let layered = Builder::new()
        .use_fn(outer)
        .layer(tower::layer::util::Identity::new())
        .run(ContextApp::default());
    let (features, _) = RecordingSink::features("GET", "/");
    run_request(&layered, features).await;
    assert_eq!(
        SAW_MARKER.load(Ordering::SeqCst),
        2,
        "the pipeline's create_context is not the app's once a layer is in it"
    );
}

#[tokio::test]
async fn a_layer_passes_dispose_context_through() {
    async fn fails_after(ctx: &mut HttpContext, next: Next<'_>) -> Result<()> {
        next.run(ctx).await?;
        Err(Error::app_msg("outer failure"))
    }
    let app = ContextApp::default();
    let disposed = app.disposed.clone();
    let pipeline = Builder::new()
        .use_fn(fails_after)
        .layer(tower::layer::util::Identity::new())
        .run(app);
    let (features, _) = RecordingSink::features("GET", "/");
    let outcome = run_request(&pipeline, features).await;
    assert!(outcome.error.is_some());
    assert_eq!(
        *disposed.lock().unwrap(),
        [Some("application error: outer failure".to_owned())],
        "dispose_context must get the error that ended the request"
    );
}

// ---------------------------------------------------------------------------
// 5. After a limit error the request body reads as cleanly ended.
//
// RequestBody docs: "one over its limit is Error::is_limit"; with_limit:
// "reading past it fails with an Error::is_limit error". After the first
// error the body turns into an empty one: the next read is Ok(None), an
// ordinary end of body, so a handler after a middleware that swallowed the
// 413 reads an empty (truncated) body as if it were whole. (Kestrel keeps
// throwing the same BadHttpRequestException on every later read.)
// ---------------------------------------------------------------------------
#[tokio::test]
async fn a_body_over_its_limit_fails_every_read() {
    let limit = MaxRequestBodySize::new(Some(3));
    let mut body = RequestBody::from("abcdef").with_limit(limit);
    assert!(body.chunk().await.unwrap_err().is_limit());
    let again = body.chunk().await;
    assert!(
        matches!(&again, Err(err) if err.is_limit()),
        "a second read must fail too, not end the body cleanly: {again:?}"
    );
}

// ---------------------------------------------------------------------------
// 6. with_limit: a streaming body whose declared length exceeds the limit
//    is read (bytes handed out) before it fails.
//
// RequestBody::with_limit docs: "A body whose declared length already
// exceeds the limit fails on the first read, before any byte is consumed."
// `check_limit_before` ignores the size hint of every streaming body.
// ---------------------------------------------------------------------------
struct Declared {
    chunks: Vec<&'static str>,
    length: u64,
}

impl Body for Declared {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        if self.chunks.is_empty() {
            return Poll::Ready(None);
        }
        let chunk = self.chunks.remove(0);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(chunk.as_bytes())))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.length)
    }
}

#[tokio::test]
async fn a_declared_length_over_the_limit_fails_before_any_byte() {
    let limit = MaxRequestBodySize::new(Some(3));
    let mut body = RequestBody::new(Declared {
        chunks: vec!["ab", "cdefghij"],
        length: 10,
    })
    .with_limit(limit);
    assert_eq!(body.size_hint().exact(), Some(10));
    let first = body.chunk().await;
    assert!(
        matches!(&first, Err(err) if err.is_limit()),
        "declared 10 bytes over a limit of 3: the first read must fail, got {first:?}"
    );
}

// ---------------------------------------------------------------------------
// 7. RequestTrailers never become available for a body read to its end
//    without trailers.
//
// SPEC §1.1: RequestTrailers are "available after the body is read to its
// end" (IHttpRequestTrailersFeature.Available: true once the body is
// read, with an empty map when none came). Here `is_available()` stays
// false, so an app cannot tell "not read yet" from "no trailers".
// ---------------------------------------------------------------------------
#[tokio::test]
async fn request_trailers_are_available_after_a_body_without_trailers() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        let body = ctx.read_body(1024).await?;
        assert_eq!(body, "abc");
        let available = ctx
            .features()
            .get::<RequestTrailers>()
            .map(RequestTrailers::is_available);
        ctx.write(format!("{available:?}")).await
    }
    let server = TestServer::new(app);
    let response = server.post("/").body("abc").send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "Some(true)");
}

// ---------------------------------------------------------------------------
// 8. A ResponseFeature visible only through the defaults layer makes the
//    lifecycle panic instead of failing.
//
// Features docs: lookups fall through to the defaults. HttpContext::complete
// comments: "A broken server: fail (the lifecycle aborts), do not panic".
// `complete` sees the default through `try_response`, then calls
// `response_mut`, which panics outside any guard.
// ---------------------------------------------------------------------------
#[tokio::test]
async fn a_response_feature_only_in_the_defaults_fails_without_a_panic() {
    async fn ok(_: &mut HttpContext) -> Result<()> {
        Ok(())
    }
    let (mut features, _recording) = RecordingSink::features("GET", "/");
    let response = features.remove::<ResponseFeature>().unwrap();
    let mut connection = Features::new();
    connection.insert(response);
    features.set_defaults(Some(Arc::new(connection)));
    let sink_present = features.contains_dyn::<dyn ResponseBody>();
    assert!(sink_present);
    let ran = tokio::spawn(async move { run_request(&ok, features).await.completed }).await;
    assert!(
        ran.is_ok(),
        "run_request must not panic on a server's misplaced feature"
    );
}

// ---------------------------------------------------------------------------
// 9. A write refused after the context already counted it: the bytes never
//    reach the buffer, but `complete` declares them in Content-Length and
//    completes a short response as whole.
//
// SPEC §5: "A declared Content-Length the body does not match is an error
// ... Never a silently truncated response." `write` adds the chunk to
// `written` before its overflow path runs the on_starting callbacks and
// re-checks the status; when that check refuses the chunk, the count stays.
// ---------------------------------------------------------------------------
#[tokio::test]
async fn a_refused_write_is_not_counted_in_content_length() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        ctx.set_response_buffer_limit(4);
        ctx.on_starting(|ctx| {
            // e.g. a conditional-request middleware turning this into a 204
            if ctx.request().headers.contains_key("x-empty") {
                ctx.response_mut().status = StatusCode::NO_CONTENT;
            }
            Ok(())
        })?;
        ctx.write("abc").await?; // buffered
        let refused = ctx.write("defgh").await; // overflow: callbacks make it 204
        assert!(refused.is_err());
        // The app recovers and sends what it has.
        ctx.response_mut().status = StatusCode::OK;
        Ok(())
    }
    let (mut features, recording) = RecordingSink::features("GET", "/");
    features
        .get_mut::<serverbridge::feature::RequestFeature>()
        .unwrap()
        .headers
        .insert("x-empty", "1".parse().unwrap());
    let outcome = run_request(&app, features).await;
    let length = recording
        .headers()
        .and_then(|h| h.get("content-length").cloned());
    assert_eq!(
        (length, recording.body(), outcome.completed),
        (Some("3".parse().unwrap()), Bytes::from_static(b"abc"), true),
        "events {:?}",
        recording.events()
    );
}
