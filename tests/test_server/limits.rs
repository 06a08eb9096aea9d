//! The request-body limit and client aborts.

use super::*;

/// Lowers the body limit to `limit` before reading, then echoes the body.
fn limited_echo(limit: u64) -> impl serverbridge::Application {
    from_fn(move |ctx| {
        Box::pin(async move {
            ctx.features()
                .get::<MaxRequestBodySize>()
                .unwrap()
                .set(Some(limit))?;
            let body = ctx.read_body(1 << 20).await?;
            ctx.write(body).await
        })
    })
}

#[tokio::test]
async fn a_body_over_the_limit_set_by_the_app_is_a_413() {
    let server = TestServer::new(limited_echo(10));
    let response = server
        .post("/")
        .body("01234567890123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.headers().len(), 1);
    assert_eq!(response.headers()["content-length"], "0");
    assert_eq!(response.text().await.unwrap(), "");

    // A streamed body (no declared length) is counted as it arrives.
    let stream = futures::stream::iter(
        ["0123456", "789012", "3456789"]
            .map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c.as_bytes()))),
    );
    let response = server.post("/").body_stream(stream).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.headers()["content-length"], "0");

    // Within the limit.
    let response = server.post("/").body("0123456789").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "0123456789");
}

#[tokio::test]
async fn the_server_default_limit_applies() {
    async fn echo(ctx: &mut HttpContext) -> Result<()> {
        let limit = ctx.features().get::<MaxRequestBodySize>().unwrap().get();
        let body = ctx.read_body(1 << 20).await?;
        ctx.write(format!("{limit:?} {}", body.len())).await
    }
    let server = TestServer::new(echo);
    let response = server.post("/").body("abc").send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "Some(30000000) 3");

    let server = TestServer::new(echo).with_max_request_body_size(Some(4));
    let response = server.post("/").body("abcde").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let server = TestServer::new(echo).with_max_request_body_size(None);
    let response = server.post("/").body("abcde").send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "None 5");
}

#[tokio::test]
async fn changing_the_limit_after_reading_fails() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        let limit = ctx.features().get::<MaxRequestBodySize>().unwrap().clone();
        let before = limit.is_read_only();
        let _ = ctx.read_body(1024).await?;
        let err = limit.set(Some(5)).unwrap_err();
        ctx.write(format!(
            "before={before} after={} rule={:?} limit={:?}",
            limit.is_read_only(),
            err.rule(),
            limit.get()
        ))
        .await
    }
    let server = TestServer::new(app);
    let response = server.post("/").body("data").send().await.unwrap();
    assert_eq!(
        response.text().await.unwrap(),
        r#"before=false after=true rule=Some("request.body-limit-after-read") limit=Some(30000000)"#
    );
}

#[tokio::test]
async fn a_client_abort_reaches_the_app() {
    let seen: Arc<Mutex<Option<bool>>> = Arc::default();
    let store = seen.clone();
    let app = from_fn(move |ctx| {
        let store = store.clone();
        Box::pin(async move {
            ctx.lifetime().unwrap().cancelled().await;
            *store.lock().unwrap() = Some(ctx.is_aborted());
            ctx.write("saw the abort").await
        })
    });
    let server = TestServer::new(app);
    let request = server.get("/");
    let lifetime = request.lifetime();
    let abort = async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!lifetime.is_cancelled());
        lifetime.abort();
    };
    let (response, ()) = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::join!(request.send(), abort)
    })
    .await
    .expect("send returns once the client is gone");
    // The client went away: it gets no response, as on the wire.
    assert!(response.unwrap_err().is_aborted());
    // The app still runs to its end and sees the abort.
    for _ in 0..500 {
        if seen.lock().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(*seen.lock().unwrap(), Some(true));
}

#[tokio::test]
async fn dropping_the_test_response_early_fires_the_request_lifetime() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let app = from_fn(move |ctx| {
        let tx = tx.clone();
        Box::pin(async move {
            ctx.write("partial").await?;
            ctx.flush().await?;
            ctx.lifetime().unwrap().cancelled().await;
            if let Some(tx) = tx.lock().unwrap().take() {
                let _ = tx.send(());
            }
            Ok(())
        })
    });
    let server = TestServer::new(app);
    let mut response = server.get("/").send().await.unwrap();
    assert_eq!(response.chunk().await.unwrap().unwrap(), "partial");
    drop(response);
    tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .unwrap()
        .unwrap();
}
