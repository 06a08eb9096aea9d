//! Streaming.

use super::*;

#[tokio::test]
async fn streamed_request_body_and_flushed_response_body() {
    let chunks_seen: Shared<Vec<Bytes>> = shared();
    let app = {
        let chunks_seen = chunks_seen.clone();
        OwinApp::new(app_func(move |env: &mut Environment| {
            let chunks_seen = chunks_seen.clone();
            Box::pin(async move {
                while let Some(chunk) = env.request_body_mut().chunk().await? {
                    chunks_seen.lock().unwrap().push(chunk);
                }
                env.write("alpha,").await?;
                env.flush().await?;
                let late = env.set(
                    keys::ON_SENDING_HEADERS,
                    Value::Callback(Box::new(|_| Ok(()))),
                );
                assert_eq!(
                    late.expect_err("registered after the head").rule(),
                    Some("response.callback-after-start")
                );
                env.write("beta,").await?;
                env.write("gamma").await?;
                env.flush().await?;
                env.write("!").await
            })
        }))
    };
    let server = TestServer::new(app);
    let parts = ["one,", "two,", "three"].map(|s| Ok::<_, std::io::Error>(Bytes::from(s)));
    let mut response = server
        .post("/upload")
        .body_stream(futures::stream::iter(parts))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get(CONTENT_LENGTH).is_none(),
        "no Content-Length once flushed: {:?}",
        response.headers()
    );
    assert_eq!(response.chunk().await.unwrap().unwrap(), "alpha,");
    assert_eq!(response.read_to_end().await.unwrap(), "beta,gamma!");
    let chunks = chunks_seen.lock().unwrap().clone();
    assert_eq!(chunks, vec!["one,", "two,", "three"]);
}

#[tokio::test]
async fn unflushed_writes_are_sent_with_content_length() {
    let app = OwinApp::new(app_func(|env: &mut Environment| {
        Box::pin(async move {
            env.write("ab").await?;
            env.write("cd").await
        })
    }));
    let server = TestServer::new(app);
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.headers()[CONTENT_LENGTH], "4");
    assert_eq!(response.text().await.unwrap(), "abcd");
}
