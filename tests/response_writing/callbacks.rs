//! `on_starting` callbacks and the rules for Content-Length.

use super::*;

#[tokio::test]
async fn on_starting_can_change_headers_before_content_length_is_final() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        ctx.on_starting(|ctx| {
            ctx.response_mut()
                .headers
                .insert("x-late", HeaderValue::from_static("yes"));
            Ok(())
        })?;
        ctx.write("abcd").await
    }
    let (_, recording) = run("GET", app).await;
    let headers = recording.headers().unwrap();
    assert_eq!(headers["x-late"], "yes");
    assert_eq!(headers["content-length"], "4");
}

#[tokio::test]
async fn on_starting_registered_after_start_is_refused() {
    let seen: Arc<Mutex<Option<&'static str>>> = Arc::default();
    let store = seen.clone();
    let app = from_fn(move |ctx| {
        let store = store.clone();
        Box::pin(async move {
            ctx.flush().await?;
            let err = ctx.on_starting(|_| Ok(())).unwrap_err();
            *store.lock().unwrap() = err.rule();
            Ok(())
        })
    });
    let (outcome, _) = run("GET", app).await;
    assert!(outcome.completed);
    assert_eq!(*seen.lock().unwrap(), Some("response.callback-after-start"));
}

#[tokio::test]
async fn an_invalid_declared_content_length_is_refused() {
    let (mut ctx, _recording) = context("GET", "/");
    ctx.response_mut()
        .headers
        .insert("content-length", HeaderValue::from_static("ten"));
    let err = ctx.write("x").await.unwrap_err();
    assert_eq!(err.rule(), Some("response.content-length-invalid"));
}

/// The length rules read the fields one way for a few headers and another
/// for many: both must agree.
#[tokio::test]
async fn length_rules_hold_with_few_and_many_headers() {
    for extra in [0usize, 20] {
        let add = |ctx: &mut serverbridge::HttpContext| {
            for i in 0..extra {
                let name = http::header::HeaderName::from_bytes(format!("x-extra-{i}").as_bytes())
                    .unwrap();
                ctx.response_mut()
                    .headers
                    .insert(name, HeaderValue::from_static("1"));
            }
        };
        // Two Content-Length values: invalid.
        let (mut ctx, _) = context("GET", "/");
        add(&mut ctx);
        let headers = &mut ctx.response_mut().headers;
        headers.append("content-length", HeaderValue::from_static("1"));
        headers.append("content-length", HeaderValue::from_static("1"));
        let err = ctx.write("x").await.unwrap_err();
        assert_eq!(
            err.rule(),
            Some("response.content-length-invalid"),
            "{extra}"
        );

        // A declared length the body exceeds.
        let (mut ctx, _) = context("GET", "/");
        add(&mut ctx);
        ctx.response_mut()
            .headers
            .insert("content-length", HeaderValue::from_static("2"));
        let err = ctx.write("abc").await.unwrap_err();
        assert_eq!(
            err.rule(),
            Some("response.content-length-mismatch"),
            "{extra}"
        );

        // Transfer-Encoding set by the app: no length added.
        let (mut ctx, recording) = context("GET", "/");
        add(&mut ctx);
        ctx.response_mut()
            .headers
            .insert("transfer-encoding", HeaderValue::from_static("chunked"));
        ctx.write("abc").await.unwrap();
        ctx.complete().await.unwrap();
        let headers = recording.headers().unwrap();
        assert!(!headers.contains_key("content-length"), "{extra}");

        // Nothing declared: the buffered body's length.
        let (mut ctx, recording) = context("GET", "/");
        add(&mut ctx);
        ctx.write("abcd").await.unwrap();
        ctx.complete().await.unwrap();
        assert_eq!(
            recording.headers().unwrap()["content-length"],
            "4",
            "{extra}"
        );
    }
}

#[tokio::test]
async fn a_buffered_response_with_trailers_gets_no_content_length() {
    let (mut features, recording) = RecordingSink::features("GET", "/");
    features.insert(ResponseTrailers::default());
    let mut ctx = HttpContext::new(features);
    ctx.features_mut()
        .get_mut::<ResponseTrailers>()
        .unwrap()
        .headers
        .insert("x-checksum", HeaderValue::from_static("abc"));
    ctx.write("body").await.unwrap();
    ctx.complete().await.unwrap();
    let headers = recording.headers().unwrap();
    assert!(
        !headers.contains_key("content-length"),
        "trailers need a framing that carries them: {headers:?}"
    );
    assert_eq!(recording.body(), "body");
    assert_eq!(recording.trailers().unwrap()["x-checksum"], "abc");
}

#[tokio::test]
async fn send_file_with_a_mismatched_declared_length_fails_before_the_head() {
    let file = TempFile::new(b"0123456789");
    let path = file.0.clone();
    let (outcome, recording) = run(
        "GET",
        from_fn(move |ctx| {
            let path = path.clone();
            Box::pin(async move {
                ctx.response_mut()
                    .headers
                    .insert("content-length", HeaderValue::from_static("4"));
                ctx.send_file(&*path, None).await
            })
        }),
    )
    .await;
    assert_eq!(
        outcome.error.unwrap().rule(),
        Some("response.content-length-mismatch")
    );
    assert_eq!(recording.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert_eq!(recording.headers().unwrap()["content-length"], "0");
    assert!(!recording.events().contains(&SinkEvent::Abort));
}

#[tokio::test]
async fn send_file_of_nothing_on_a_204_adds_no_content_length() {
    let file = TempFile::new(b"");
    let (mut ctx, recording) = context("GET", "/");
    ctx.response_mut().status = StatusCode::NO_CONTENT;
    ctx.send_file(&file.0, None).await.unwrap();
    assert_eq!(recording.status(), Some(StatusCode::NO_CONTENT));
    assert!(!recording.headers().unwrap().contains_key("content-length"));
}

#[tokio::test]
async fn a_callback_that_makes_the_response_204_leaves_no_content_length() {
    // The context sets the length of a buffered (here empty) response before
    // the on_starting callbacks run; one that changes the status to one
    // without a body must not leave that length behind (RFC 9110 §8.6).
    let (mut ctx, recording) = context("GET", "/");
    ctx.on_starting(|ctx| {
        ctx.response_mut().status = StatusCode::NO_CONTENT;
        Ok(())
    })
    .unwrap();
    ctx.complete().await.unwrap();
    assert_eq!(recording.status(), Some(StatusCode::NO_CONTENT));
    assert_eq!(recording.headers().unwrap().get("content-length"), None);
}
