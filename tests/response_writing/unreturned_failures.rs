//! Failures the app does not return.

use super::*;

/// Sends two pipelined requests on one in-memory connection to the built-in
/// engine and reads what comes back until the server closes or goes quiet.
async fn two_requests(app: impl Application) -> String {
    use serverbridge::testing::Mode;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::new(app).with_mode(Mode::Wire);
    let mut io = server.raw().unwrap();
    io.write_all(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(std::time::Duration::from_secs(2), io.read(&mut buf));
        match read.await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_send_body_that_failed_breaks_the_response_even_when_the_app_carries_on() {
    async fn short_then_ok(ctx: &mut HttpContext) -> Result<()> {
        if ctx.request().path == "/second" {
            return ctx.write("SECOND").await;
        }
        ctx.response_mut()
            .headers
            .insert("content-length", HeaderValue::from_static("10"));
        let sent = ctx.send_body(Full::new(Bytes::from_static(b"12345"))).await;
        assert!(sent.is_err());
        Ok(()) // "the head is out: log it and move on"
    }
    async fn stream_fails_then_ok(ctx: &mut HttpContext) -> Result<()> {
        if ctx.request().path == "/second" {
            return ctx.write("SECOND").await;
        }
        let frames: Vec<std::result::Result<http_body::Frame<Bytes>, std::io::Error>> = vec![
            Ok(http_body::Frame::data(Bytes::from_static(b"abc"))),
            Err(std::io::Error::other("upstream failed")),
        ];
        let body = http_body_util::StreamBody::new(futures::stream::iter(frames));
        assert!(ctx.send_body(body).await.is_err());
        Ok(())
    }
    // The client must see the first response cut off and the connection
    // closed: never the next response's bytes as the rest of this body.
    // (What of it was still buffered may not go out at all.)
    let text = two_requests(short_then_ok).await;
    assert!(!text.contains("SECOND"), "{text:?}");
    assert!(
        text.is_empty() || text.ends_with("\r\n\r\n12345"),
        "{text:?}"
    );
    let text = two_requests(stream_fails_then_ok).await;
    assert!(!text.contains("SECOND"), "{text:?}");
    assert!(!text.contains("0\r\n\r\n"), "no last chunk: {text:?}");
}

#[tokio::test]
async fn send_body_and_send_file_run_on_starting_before_they_size_the_response() {
    use serverbridge::testing::Mode;
    fn not_modified(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut().status = StatusCode::NOT_MODIFIED;
        Ok(())
    }
    async fn body_then_304(ctx: &mut HttpContext) -> Result<()> {
        ctx.on_starting(not_modified)?;
        ctx.send_body(Full::new(Bytes::from_static(b"full body")))
            .await
    }
    async fn empty_body_then_304(ctx: &mut HttpContext) -> Result<()> {
        ctx.on_starting(not_modified)?;
        ctx.send_body(http_body_util::Empty::<Bytes>::new()).await
    }
    async fn big_write_then_204(ctx: &mut HttpContext) -> Result<()> {
        ctx.on_starting(|ctx| {
            ctx.response_mut().status = StatusCode::NO_CONTENT;
            Ok(())
        })?;
        ctx.set_response_buffer_limit(0);
        ctx.write("body for a 204").await
    }
    for mode in [Mode::Direct, Mode::Wire] {
        // A body the callbacks made illegal is the app's error before the
        // head: a bare 500, as `write` gives.
        for app in [
            TestServer::new(body_then_304).with_mode(mode),
            TestServer::new(big_write_then_204).with_mode(mode),
        ] {
            let response = app.get("/").send().await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::INTERNAL_SERVER_ERROR,
                "{mode:?}"
            );
        }
        let response = TestServer::new(empty_body_then_304)
            .with_mode(mode)
            .get("/")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{mode:?}");
        assert!(
            !response.headers().contains_key("content-length"),
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn a_failed_on_starting_callback_refuses_the_head_for_good() {
    async fn carries_on(ctx: &mut HttpContext) -> Result<()> {
        ctx.on_starting(|_| Err(serverbridge::Error::app_msg("not allowed to start")))?;
        assert!(ctx.flush().await.is_err());
        // The app ignores that and tries again: still refused.
        assert!(ctx.write("secret").await.is_ok(), "buffered, nothing sent");
        assert!(ctx.flush().await.is_err());
        Ok(())
    }
    let response = TestServer::new(carries_on).get("/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.bytes().await.unwrap(), "");
}

#[tokio::test]
async fn send_file_of_a_directory_fails_before_the_head() {
    async fn dir(ctx: &mut HttpContext) -> Result<()> {
        ctx.send_file(std::env::temp_dir(), None).await
    }
    let response = TestServer::new(dir).get("/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}
