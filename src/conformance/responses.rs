//! Checks on responses and the request lifecycle.

use futures::future::BoxFuture;
use http::header::CONTENT_LENGTH;
use http::{Method, StatusCode};
use http_body_util::BodyExt;

use super::harness::{empty, ensure, fail, unsupported, Harness, Verdict};
use super::probe::{pattern, Digest, MODE, SIZE, TRAILER};

pub(super) fn status_and_headers(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        let (_, request) = h.request(Method::GET, "/status", "status");
        let received = h
            .send(request.body(empty()).map_err(|e| fail(e.to_string()))?)
            .await?;
        ensure!(
            received.status == StatusCode::CREATED,
            "status {}",
            received.status
        );
        let repeated: Vec<_> = received.headers.get_all("x-probe-repeat").iter().collect();
        ensure!(
            repeated == ["one", "two"],
            "repeated header arrived as {repeated:?}"
        );
        ensure!(received.body == "created", "body {:?}", received.body);
        Ok(())
    })
}

/// Asks for `size` bytes written `mode` and checks they arrive intact;
/// `with_length` also wants a `Content-Length` header of `size`.
async fn body_returns(h: &mut Harness, size: usize, mode: &str, with_length: bool) -> Verdict {
    let (_, request) = h.request(Method::GET, "/body", "body");
    let request = request
        .header(SIZE, size)
        .header(MODE, mode)
        .body(empty())
        .map_err(|e| fail(e.to_string()))?;
    let received = h.send(request).await?;
    let what = format!("{size} B {mode}");
    ensure!(received.status == 200, "{what}: status {}", received.status);
    let expected = Digest::of_pattern(size as u64);
    ensure!(
        received.digest.len == size as u64,
        "{what}: {} bytes arrived",
        received.digest.len
    );
    ensure!(
        received.digest.hash == expected.hash,
        "{what}: the bytes arrived changed"
    );
    if with_length {
        let length = received.headers.get(CONTENT_LENGTH);
        ensure!(
            length.is_some_and(|v| v.as_bytes() == size.to_string().as_bytes()),
            "{what}: Content-Length {length:?}, not {size} (a buffered response that fits goes out with its length)"
        );
    }
    Ok(())
}

pub(super) fn body_length(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        for size in [0, 1, 64 * 1024] {
            body_returns(h, size, "buffered", true).await?;
        }
        Ok(())
    })
}

pub(super) fn body_streamed(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        for size in [1, 64 * 1024] {
            body_returns(h, size, "streamed", false).await?;
        }
        flushed_piece_arrives_at_once(h).await
    })
}

/// How long a flushed piece may take to reach the client while the app
/// waits (a bound on a failure, not a measurement).
const FLUSH_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// The probe writes 1 KiB, flushes, and waits at the gate: the head and
/// those bytes must reach the client while it waits (a server that sends
/// nothing until the app ends would pass a check on the bytes alone). Then
/// the gate opens and the second KiB follows.
async fn flushed_piece_arrives_at_once(h: &mut Harness) -> Verdict {
    let (_, request) = h.request(Method::GET, "/body", "body");
    let request = request
        .header(SIZE, 2048)
        .header(MODE, "gated")
        .body(empty())
        .map_err(|e| fail(e.to_string()))?;
    let mut conn = h.connect().await?;
    let first = async {
        let response = conn.send(request).await?;
        let (parts, mut body) = response.into_parts();
        let mut got = bytes::BytesMut::new();
        while got.len() < 1024 {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        got.extend_from_slice(&data);
                    }
                }
                Some(Err(err)) => return Err(err),
                None => break,
            }
        }
        Ok((parts, body, got))
    };
    let first = tokio::time::timeout(FLUSH_PATIENCE, first).await;
    // Whatever came, the app goes on now.
    h.probe.gate.add_permits(1);
    let (parts, body, got) = first
        .map_err(|_| {
            fail("the flushed piece did not reach the client while the app waited (no streaming)")
        })?
        .map_err(|e| fail(format!("gated: {e}")))?;
    ensure!(parts.status == 200, "gated: status {}", parts.status);
    ensure!(
        got.len() >= 1024 && got[..1024] == pattern(0, 1024)[..],
        "gated: the first KiB arrived as {} bytes, or changed",
        got.len()
    );
    let rest = body
        .collect()
        .await
        .map_err(|e| fail(format!("gated: the rest failed: {e}")))?
        .to_bytes();
    let mut all = got.to_vec();
    all.extend_from_slice(&rest);
    ensure!(
        all == pattern(0, 2048)[..],
        "gated: {} bytes arrived, or they changed",
        all.len()
    );
    Ok(())
}

pub(super) fn body_large(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        body_returns(h, 16 * 1024 * 1024, "streamed", false).await?;
        body_returns(h, 16 * 1024 * 1024, "buffered", false).await
    })
}

pub(super) fn head_method(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        // Two requests on one connection: a client knows a HEAD response
        // has no body and never reads one, so body bytes a server sent
        // after the head show up only as garbage before the next response.
        let mut conn = h.connect().await.map_err(|e| fail(e.to_string()))?;
        let (_, request) = h.request(Method::HEAD, "/body", "body");
        let request = request
            .header(SIZE, 100)
            .header(MODE, "buffered")
            .body(empty())
            .map_err(|e| fail(e.to_string()))?;
        let received = h
            .exchange(&mut conn, request)
            .await
            .map_err(|e| fail(format!("HEAD: {e}")))?;
        ensure!(received.status == 200, "status {}", received.status);
        ensure!(
            received.digest.len == 0,
            "HEAD answered with {} body bytes",
            received.digest.len
        );
        let length = received.headers.get(CONTENT_LENGTH);
        ensure!(
            length.is_some_and(|v| v == "100"),
            "HEAD lost the Content-Length: {length:?}"
        );
        let closing = received
            .headers
            .get_all(http::header::CONNECTION)
            .iter()
            .any(|v| {
                v.to_str()
                    .is_ok_and(|v| v.to_ascii_lowercase().contains("close"))
            });
        if closing {
            return Ok(());
        }
        let (_, request) = h.request(Method::GET, "/body", "body");
        let request = request
            .header(SIZE, 5)
            .header(MODE, "buffered")
            .body(empty())
            .map_err(|e| fail(e.to_string()))?;
        let next = h.exchange(&mut conn, request).await.map_err(|e| {
            fail(format!(
                "the request after a HEAD on its connection failed (body bytes after the HEAD head?): {e}"
            ))
        })?;
        ensure!(
            next.status == 200 && next.digest.len == 5,
            "the request after a HEAD got status {} and {} body bytes (body bytes after the HEAD head?)",
            next.status,
            next.digest.len
        );
        Ok(())
    })
}

pub(super) fn error_before_head(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        let (id, request) = h.request(Method::GET, "/fail", "fail");
        let received = h
            .send(request.body(empty()).map_err(|e| fail(e.to_string()))?)
            .await?;
        ensure!(
            received.status == StatusCode::INTERNAL_SERVER_ERROR,
            "status {}",
            received.status
        );
        ensure!(
            received.digest.len == 0,
            "the 500 has a body of {} bytes",
            received.digest.len
        );
        let length = received.headers.get(CONTENT_LENGTH);
        ensure!(
            length.is_none_or(|v| v == "0"),
            "the 500 has Content-Length {length:?}"
        );
        let seen = h
            .seen(&id, "dispose_context", |s| {
                s.events.iter().any(|e| e.starts_with("dispose"))
            })
            .await?;
        let dispose = seen.events.iter().find(|e| e.starts_with("dispose"));
        ensure!(
            dispose.is_some_and(|e| e.starts_with("dispose:")),
            "dispose_context did not get the app's error (events {:?})",
            seen.events
        );
        Ok(())
    })
}

pub(super) fn error_after_head(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        let (_, request) = h.request(Method::GET, "/fail", "fail-after-head");
        let mut conn = h.connect().await?;
        let response = conn
            .send(request.body(empty()).map_err(|e| fail(e.to_string()))?)
            .await;
        let response = match response {
            Ok(response) => response,
            // A server that buffers whole responses sends nothing at all (or,
            // on HTTP/2, resets the stream before the client took the head):
            // that does not look complete either.
            Err(_) => return Ok(()),
        };
        ensure!(response.status() == 200, "status {}", response.status());
        let mut body = response.into_body();
        let mut read = 0;
        loop {
            match body.frame().await {
                Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len()),
                // The response is cut off: what the client must see.
                Some(Err(_)) => return Ok(()),
                None => break,
            }
        }
        Err(fail(format!(
            "the response ended cleanly after {read} bytes although the app failed: a truncated response looks complete"
        )))
    })
}

pub(super) fn trailers(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        let (_, request) = h.request(Method::POST, "/trailers", "trailers");
        let request = request
            .header(http::header::TE, "trailers")
            .body(super::harness::full(pattern(0, 3)))
            .map_err(|e| fail(e.to_string()))?;
        let received = h.send(request).await?;
        ensure!(received.status == 200, "status {}", received.status);
        if received
            .headers
            .get("x-probe-sends-trailers")
            .is_some_and(|v| v == "no")
        {
            return Err(unsupported("no ResponseTrailers feature"));
        }
        let value = received.trailers.as_ref().and_then(|t| t.get(TRAILER));
        ensure!(
            value.is_some_and(|v| v == "sent-after-the-body"),
            "the client got trailers {:?}",
            received.trailers
        );
        Ok(())
    })
}

pub(super) fn lifecycle_order(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        let (id, request) = h.request(Method::GET, "/lifecycle", "lifecycle");
        let received = h
            .send(request.body(empty()).map_err(|e| fail(e.to_string()))?)
            .await?;
        ensure!(received.status == 200, "status {}", received.status);
        let started: Vec<_> = received.headers.get_all("x-probe-started").iter().collect();
        ensure!(
            started == ["2", "1"],
            "on_starting's headers arrived as {started:?} (want both, last-registered first)"
        );
        let seen = h
            .seen(&id, "dispose_context", |s| {
                s.events.iter().any(|e| e.starts_with("dispose"))
            })
            .await?;
        let want = [
            "create",
            "process",
            "starting:2",
            "starting:1",
            "completed:2",
            "completed:1",
            "dispose",
        ];
        ensure!(
            seen.events == want,
            "lifecycle events {:?}, want {want:?}",
            seen.events
        );
        Ok(())
    })
}
