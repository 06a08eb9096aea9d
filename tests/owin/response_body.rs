//! Owin.ResponseBody replaced.

use super::*;

/// A sink that forwards to the server's and records a copy.
struct Tee {
    inner: Box<dyn ResponseBody>,
    copy: RecordingSink,
}

#[async_trait]
impl ResponseBody for Tee {
    async fn start(&mut self, head: ResponseHead<'_>) -> Result<()> {
        self.copy.start(head).await?;
        self.inner.start(head).await
    }
    async fn write(&mut self, data: Bytes) -> Result<()> {
        self.copy.write(data.clone()).await?;
        self.inner.write(data).await
    }
    async fn flush(&mut self) -> Result<()> {
        self.copy.flush().await?;
        self.inner.flush().await
    }
    async fn complete(&mut self, trailers: Option<HeaderMap>) -> Result<()> {
        self.copy.complete(trailers.clone()).await?;
        self.inner.complete(trailers).await
    }
    fn abort(&mut self, reason: &Error) {
        self.copy.abort(reason);
        self.inner.abort(reason);
    }
}

#[tokio::test]
async fn response_body_can_be_wrapped_and_replaced() {
    let copy = RecordingSink::default();
    let app = {
        let copy = copy.clone();
        OwinApp::new(app_func(move |env: &mut Environment| {
            let copy = copy.clone();
            Box::pin(async move {
                let inner = env
                    .context_mut()
                    .features_mut()
                    .remove_dyn::<dyn ResponseBody>()
                    .expect("the server's sink");
                assert!(!env.contains_key(keys::RESPONSE_BODY));
                env.set(
                    keys::RESPONSE_BODY,
                    Value::ResponseBody(Box::new(Tee { inner, copy })),
                )?;
                env.write("one ").await?;
                env.flush().await?;
                env.write("two").await
            })
        }))
    };
    let server = TestServer::new(app);
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "one two");
    assert_eq!(copy.status(), Some(StatusCode::OK));
    assert_eq!(copy.body(), "one two");
    assert_eq!(
        copy.events(),
        vec![
            SinkEvent::Start(StatusCode::OK),
            SinkEvent::Write(4),
            SinkEvent::Flush,
            SinkEvent::Write(3),
            SinkEvent::Complete { trailers: false },
        ]
    );
}

#[tokio::test]
async fn response_body_replaced_by_a_recording_sink_gets_everything() {
    let recording = RecordingSink::default();
    let app = {
        let recording = recording.clone();
        OwinApp::new(app_func(move |env: &mut Environment| {
            let recording = recording.clone();
            Box::pin(async move {
                env.set(
                    keys::RESPONSE_BODY,
                    Value::ResponseBody(Box::new(recording)),
                )?;
                env.set(keys::RESPONSE_STATUS_CODE, Value::Int(202))?;
                env.write("a").await?;
                env.flush().await?;
                env.write("b").await
            })
        }))
    };
    let server = TestServer::new(app);
    // The server's own sink was replaced, so the client gets no head.
    let err = server
        .get("/")
        .send()
        .await
        .expect_err("no head reached the client");
    assert!(err.is_aborted(), "{err:?}");
    assert_eq!(recording.status(), Some(StatusCode::ACCEPTED));
    assert_eq!(recording.body(), "ab");
    assert_eq!(
        recording.events(),
        vec![
            SinkEvent::Start(StatusCode::ACCEPTED),
            SinkEvent::Write(1),
            SinkEvent::Flush,
            SinkEvent::Write(1),
            SinkEvent::Complete { trailers: false },
        ]
    );
}
