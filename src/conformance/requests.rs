//! Checks that requests arrive intact: method, target, headers, bodies,
//! trailers.

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::StreamExt;
use http::{HeaderMap, Method, Version};
use http_body::Frame;
use http_body_util::StreamBody;

use super::harness::{empty, ensure, fail, full, unsupported, Harness, Verdict};
use super::probe::{pattern, Digest, TRAILER};
use crate::body::BoxBody;
use crate::error::Error;

/// A body of `chunks` pieces with no declared length, then `trailers`.
fn streamed(chunks: Vec<Bytes>, trailers: Option<HeaderMap>) -> BoxBody {
    let data = futures::stream::iter(chunks).map(|c| Ok::<_, Error>(Frame::data(c)));
    let tail = futures::stream::iter(trailers.map(|t| Ok(Frame::trailers(t))));
    crate::body::boxed(StreamBody::new(data.chain(tail)))
}

/// `size` pattern bytes in pieces of `piece` bytes.
fn pieces(size: usize, piece: usize) -> Vec<Bytes> {
    (0..size)
        .step_by(piece.max(1))
        .map(|offset| pattern(offset as u64, piece.min(size - offset)))
        .collect()
}

pub(super) fn method(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        let methods = [
            "GET",
            "POST",
            "PUT",
            "DELETE",
            "PATCH",
            "OPTIONS",
            "PROPFIND",
            "X-PROBE-EXT",
        ];
        for name in methods {
            let method = Method::from_bytes(name.as_bytes()).map_err(|_| fail("bad method"))?;
            let (id, request) = h.request(method.clone(), "/method", "");
            let received = h
                .send(request.body(empty()).map_err(|e| fail(e.to_string()))?)
                .await?;
            ensure!(received.status == 200, "{name}: status {}", received.status);
            let seen = h.processed(&id).await?;
            ensure!(
                seen.method.as_ref() == Some(&method),
                "{name} arrived as {:?}",
                seen.method
            );
        }
        Ok(())
    })
}

pub(super) fn path(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        let paths = [
            "/a%20b/c%2Fd/caf%C3%A9",
            "/x/./y/../z",
            "//double//slash/",
            "/~user/a;p=1/b",
        ];
        for target in paths {
            let (id, request) = h.request(Method::GET, target, "");
            h.send(request.body(empty()).map_err(|e| fail(e.to_string()))?)
                .await?;
            let seen = h.processed(&id).await?;
            ensure!(
                seen.path == target,
                "{target:?} arrived as path {:?}",
                seen.path
            );
            ensure!(seen.query.is_empty(), "{target:?}: query {:?}", seen.query);
        }
        Ok(())
    })
}

pub(super) fn query(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        let cases = [
            (
                "/q?a=1&a=2&b=%20x+y&empty=&flag",
                "a=1&a=2&b=%20x+y&empty=&flag",
            ),
            ("/q?%E2%9C%93=%3F%26", "%E2%9C%93=%3F%26"),
            ("/q", ""),
        ];
        for (target, expected) in cases {
            let (id, request) = h.request(Method::GET, target, "");
            h.send(request.body(empty()).map_err(|e| fail(e.to_string()))?)
                .await?;
            let seen = h.processed(&id).await?;
            ensure!(seen.path == "/q", "{target:?}: path {:?}", seen.path);
            ensure!(seen.query == expected, "{target:?}: query {:?}", seen.query);
        }
        Ok(())
    })
}

pub(super) fn headers(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        let (id, request) = h.request(Method::GET, "/headers", "");
        let request = request
            .header("x-probe-repeat", "one")
            .header("x-probe-repeat", "two")
            .header("x-probe-list", "a, b")
            .header("x-probe-inner-space", "a  b")
            .header("x-probe-empty", "")
            .header("x-probe-case", "MiXeD")
            .body(empty())
            .map_err(|e| fail(e.to_string()))?;
        h.send(request).await?;
        let seen = h.processed(&id).await?;
        let all = |name: &str| -> Vec<String> {
            seen.headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect()
        };
        ensure!(
            all("x-probe-repeat") == ["one", "two"],
            "repeated header arrived as {:?}",
            all("x-probe-repeat")
        );
        ensure!(
            all("x-probe-list") == ["a, b"],
            "list header arrived as {:?}",
            all("x-probe-list")
        );
        ensure!(
            all("x-probe-inner-space") == ["a  b"],
            "inner spaces arrived as {:?}",
            all("x-probe-inner-space")
        );
        ensure!(
            all("x-probe-empty") == [""],
            "empty header arrived as {:?}",
            all("x-probe-empty")
        );
        ensure!(
            all("x-probe-case") == ["MiXeD"],
            "value case arrived as {:?}",
            all("x-probe-case")
        );
        Ok(())
    })
}

pub(super) fn path_base(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        let (id, request) = h.request(Method::GET, "/base/rest", "");
        h.send(request.body(empty()).map_err(|e| fail(e.to_string()))?)
            .await?;
        let seen = h.processed(&id).await?;
        ensure!(
            seen.path_base.is_empty(),
            "path_base {:?} (servers leave it empty; PathBase sets it)",
            seen.path_base
        );
        ensure!(seen.path == "/base/rest", "path {:?}", seen.path);
        Ok(())
    })
}

/// Sends `body` (of `size` pattern bytes) and checks the app read it whole.
async fn body_arrives(h: &mut Harness, size: u64, body: BoxBody, what: &str) -> Verdict {
    let (id, request) = h.request(Method::POST, "/body", "");
    let received = h
        .send(request.body(body).map_err(|e| fail(e.to_string()))?)
        .await?;
    ensure!(received.status == 200, "{what}: status {}", received.status);
    let seen = h
        .seen(&id, "the end of the body", |s| {
            s.body.is_some() || s.body_error.is_some()
        })
        .await?;
    if let Some(err) = seen.body_error {
        return Err(fail(format!("{what}: the app's read failed: {err}")));
    }
    let expected = Digest::of_pattern(size);
    let (len, hash) = seen.body.unwrap_or_default();
    ensure!(len == size, "{what}: the app read {len} bytes");
    ensure!(hash == expected.hash, "{what}: the bytes arrived changed");
    Ok(())
}

pub(super) fn body_length(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        for size in [0usize, 1, 64 * 1024] {
            let what = format!("{size} B with a length");
            body_arrives(h, size as u64, full(pattern(0, size)), &what).await?;
        }
        Ok(())
    })
}

pub(super) fn body_streamed(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        for size in [0usize, 1, 64 * 1024] {
            let what = format!("{size} B streamed");
            body_arrives(h, size as u64, streamed(pieces(size, 4096), None), &what).await?;
        }
        Ok(())
    })
}

pub(super) fn body_large(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        const SIZE: usize = 16 * 1024 * 1024;
        body_arrives(
            h,
            SIZE as u64,
            full(pattern(0, SIZE)),
            "16 MiB with a length",
        )
        .await?;
        let chunks = pieces(SIZE, 64 * 1024);
        body_arrives(h, SIZE as u64, streamed(chunks, None), "16 MiB streamed").await
    })
}

pub(super) fn trailers(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        let mut trailers = HeaderMap::new();
        trailers.insert(
            TRAILER,
            "sent-after-the-body"
                .parse()
                .map_err(|_| fail("bad trailer"))?,
        );
        let body = streamed(pieces(3, 1), Some(trailers));
        let (id, request) = h.request(Method::POST, "/trailers", "trailers");
        let mut request = request;
        if h.version != Version::HTTP_2 {
            request = request.header(http::header::TRAILER, TRAILER);
        }
        let request = request.header(http::header::TE, "trailers");
        h.send(request.body(body).map_err(|e| fail(e.to_string()))?)
            .await?;
        let seen = h
            .seen(&id, "the trailers", |s| {
                s.trailers.is_some()
                    || s.body_error.is_some()
                    || s.events.iter().any(|e| e.starts_with("dispose"))
            })
            .await?;
        let Some(received) = seen.trailers else {
            return Err(unsupported("no RequestTrailers feature"));
        };
        let value = received.as_ref().and_then(|t| t.get(TRAILER));
        ensure!(
            value.is_some_and(|v| v == "sent-after-the-body"),
            "the app saw trailers {received:?}"
        );
        Ok(())
    })
}
