//! The catalog, and the checks on connections and on the server itself.

use std::time::Duration;

use futures::future::BoxFuture;
use http::{Method, Version};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::harness::{
    empty, ensure, fail, receive, unsupported, Client, Harness, Verdict, PATIENCE,
};
use super::probe::ID;
use super::{requests, responses, Check, Profile};
use crate::feature::{ServerAddress, ServerAddresses};

/// Every check, in run order. Ids are stable: SPEC.md and the README's
/// matrix use them.
pub(super) static CATALOG: [Check; 26] = [
    check("request.method", Profile::Minimum, "Standard and extension methods (PROPFIND, X-PROBE-EXT) arrive as sent.", requests::method),
    check("request.path", Profile::Minimum, "Paths arrive exactly as sent: percent-encodings, dot segments and empty segments are not decoded or normalised.", requests::path),
    check("request.query", Profile::Minimum, "The query arrives without `?`, undecoded, with repeated keys and empty values kept.", requests::query),
    check("request.headers", Profile::Minimum, "Repeated headers arrive as separate values in order; inner spaces, empty values and value case are kept.", requests::headers),
    check("request.path-base", Profile::Minimum, "The server leaves `path_base` empty and puts the whole path in `path`.", requests::path_base),
    check("request.body.length", Profile::Minimum, "Request bodies of 0 B, 1 B and 64 KiB sent with a Content-Length reach the app intact.", requests::body_length),
    check("response.status-headers", Profile::Minimum, "The status and repeated response headers reach the client.", responses::status_and_headers),
    check("response.body.length", Profile::Minimum, "Buffered responses of 0 B, 1 B and 64 KiB arrive intact, with a Content-Length.", responses::body_length),
    check("response.error-before-head", Profile::Minimum, "An app error before the head becomes a 500 with an empty body, and dispose_context gets the error.", responses::error_before_head),
    check("lifecycle.order", Profile::Minimum, "create_context, process_request, on_starting (last registered first, before the head), on_completed, dispose_context run in that order.", responses::lifecycle_order),
    check("request.body.streamed", Profile::Standard, "Request bodies of 0 B, 1 B and 64 KiB streamed without a length reach the app intact.", requests::body_streamed),
    check("request.body.large", Profile::Standard, "A 16 MiB request body arrives intact, with a length and streamed.", requests::body_large),
    check("response.body.streamed", Profile::Standard, "Responses flushed piece by piece (1 B, 64 KiB) arrive intact; a flushed piece arrives while the app waits.", responses::body_streamed),
    check("response.body.large", Profile::Standard, "A 16 MiB response arrives intact, streamed and buffered.", responses::body_large),
    check("response.head", Profile::Standard, "A HEAD response keeps its headers and Content-Length and has no body.", responses::head_method),
    check("response.error-after-head", Profile::Standard, "An app error after the head was sent cuts the response off: it never looks complete.", responses::error_after_head),
    check("connection.keep-alive", Profile::Standard, "Two requests on one connection are served on it (same ConnectionInfo id); another connection has another id.", keep_alive),
    check("connection.info", Profile::Standard, "ConnectionInfo has an id, and for TCP the server's local port and a loopback peer.", connection_info),
    check("lifetime.client-abort", Profile::Standard, "RequestLifetime fires when the client goes away while the app is running.", client_abort),
    check("server.addresses", Profile::Standard, "After start, ServerAddresses lists every bound address with port 0 resolved, and each one answers.", addresses),
    check("server.features", Profile::Standard, "Server-level features (ServerAddresses) are visible in every request's features.", server_features),
    check("server.graceful-stop", Profile::Standard, "stop refuses new connections, lets the in-flight request finish, and returns after it and before its deadline.", graceful_stop),
    check("request.trailers", Profile::Full, "Request trailers sent after a streamed body reach the app (RequestTrailers).", requests::trailers),
    check("response.trailers", Profile::Full, "Response trailers set by the app (ResponseTrailers) reach a client that asked for them.", responses::trailers),
    check("connection.http10-keep-alive", Profile::Full, "HTTP/1.0 requests asking for keep-alive get responses that say so (Connection: keep-alive) and share one connection.", http10_keep_alive),
    check("connection.upgrade", Profile::Full, "An HTTP/1.1 upgrade answers 101 and hands both sides the raw connection.", upgrade),
];

const fn check(
    id: &'static str,
    profile: Profile,
    description: &'static str,
    run: super::harness::CheckFn,
) -> Check {
    Check {
        id,
        profile,
        description,
        run,
    }
}

fn keep_alive(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        let mut first = h.connect().await?;
        let mut ids = Vec::new();
        for _ in 0..2 {
            let (id, request) = h.request(Method::GET, "/keep-alive", "");
            let received = h
                .exchange(
                    &mut first,
                    request.body(empty()).map_err(|e| fail(e.to_string()))?,
                )
                .await
                .map_err(|e| {
                    fail(format!(
                        "request {} on the same connection: {e}",
                        ids.len() + 1
                    ))
                })?;
            ensure!(received.status == 200, "status {}", received.status);
            ids.push(id);
        }
        let mut second = h.connect().await?;
        let (id, request) = h.request(Method::GET, "/keep-alive", "");
        h.exchange(
            &mut second,
            request.body(empty()).map_err(|e| fail(e.to_string()))?,
        )
        .await?;
        ids.push(id);
        let mut connections = Vec::new();
        for id in &ids {
            let seen = h.processed(id).await?;
            let Some(info) = seen.connection else {
                return Err(unsupported("no ConnectionInfo feature"));
            };
            connections.push(info.id);
        }
        ensure!(
            connections[0] == connections[1],
            "two requests on one connection saw ids {:?} and {:?}",
            connections[0],
            connections[1]
        );
        ensure!(
            connections[0] != connections[2],
            "two connections share the id {:?}",
            connections[0]
        );
        Ok(())
    })
}

/// RFC 9112 Appendix C.2.2: an HTTP/1.0 connection persists only when the
/// response says `Connection: keep-alive`. Persisting is optional: a
/// server that answers without it (and closes) does not support the
/// check; one that says keep-alive and then does not serve the next
/// request on the connection fails it.
fn http10_keep_alive(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        if h.version == Version::HTTP_2 {
            return Err(unsupported("HTTP/2 carries no HTTP/1.0 requests"));
        }
        let mut conn = h.connect().await?;
        let mut ids = Vec::new();
        for n in 1..=2 {
            let (id, request) = h.request(Method::GET, "/keep-alive-10", "");
            let request = request
                .version(Version::HTTP_10)
                .header(http::header::CONNECTION, "keep-alive")
                .body(empty())
                .map_err(|e| fail(e.to_string()))?;
            let received = h
                .exchange(&mut conn, request)
                .await
                .map_err(|e| fail(format!("HTTP/1.0 keep-alive request {n}: {e}")))?;
            ensure!(received.status == 200, "status {}", received.status);
            let says_keep_alive = received
                .headers
                .get_all(http::header::CONNECTION)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|token| token.trim().eq_ignore_ascii_case("keep-alive"));
            if !says_keep_alive {
                return Err(if n == 1 {
                    unsupported(
                        "HTTP/1.0 responses do not say keep-alive: one request a connection",
                    )
                } else {
                    fail("the second HTTP/1.0 response does not say keep-alive")
                });
            }
            ids.push(id);
        }
        let mut connections = Vec::new();
        for id in &ids {
            let seen = h.processed(id).await?;
            ensure!(
                seen.version == Some(Version::HTTP_10),
                "the app saw version {:?}, not HTTP/1.0",
                seen.version
            );
            let Some(info) = seen.connection else {
                return Err(unsupported("no ConnectionInfo feature"));
            };
            connections.push(info.id);
        }
        ensure!(
            connections[0] == connections[1],
            "two HTTP/1.0 keep-alive requests on one connection saw ids {:?} and {:?}",
            connections[0],
            connections[1]
        );
        Ok(())
    })
}

fn connection_info(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        let (id, request) = h.request(Method::GET, "/connection", "");
        h.send(request.body(empty()).map_err(|e| fail(e.to_string()))?)
            .await?;
        let seen = h.processed(&id).await?;
        let Some(info) = seen.connection else {
            return Err(unsupported("no ConnectionInfo feature"));
        };
        ensure!(!info.id.is_empty(), "the connection id is empty");
        if let ServerAddress::Tcp { addr, .. } = &h.address {
            ensure!(
                info.local.as_ref().and_then(|a| a.port()) == Some(addr.port()),
                "local address {:?}, the server listens on {addr}",
                info.local
            );
            let loopback = info
                .peer
                .as_ref()
                .and_then(|a| a.ip())
                .is_some_and(|ip| ip.is_loopback());
            ensure!(
                loopback,
                "peer {:?}, the kit connects from loopback",
                info.peer
            );
        }
        Ok(())
    })
}

fn client_abort(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        let (id, request) = h.request(Method::GET, "/abort", "abort");
        let request = request.body(empty()).map_err(|e| fail(e.to_string()))?;
        let mut conn = h.connect().await?;
        let in_flight = tokio::spawn(async move {
            let _ = conn.send(request).await;
            // Hold the connection until aborted.
            std::future::pending::<()>().await;
        });
        let started = h.seen(&id, "the request", |s| s.started).await;
        let has_lifetime = h.probe.get(&id).is_some_and(|s| s.has_lifetime);
        // The client goes away: its task, its connection and its socket drop.
        in_flight.abort();
        started?;
        if !has_lifetime {
            return Err(unsupported("no RequestLifetime feature"));
        }
        let seen = h
            .seen(&id, "the end of its wait", |s| s.lifetime_fired.is_some())
            .await?;
        ensure!(
            seen.lifetime_fired == Some(true),
            "RequestLifetime never fired after the client went away"
        );
        Ok(())
    })
}

fn addresses(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        let listed = h
            .server()
            .features()
            .get::<ServerAddresses>()
            .map(ServerAddresses::get)
            .unwrap_or_default();
        for address in &listed {
            if let ServerAddress::Tcp { addr, .. } = address {
                ensure!(addr.port() != 0, "{address} still has port 0 after start");
            }
            let (_, request) = h.request(Method::GET, "/address", "");
            let mut conn = h
                .client
                .connect_to(address)
                .await
                .map_err(|e| fail(format!("{address}: {e}")))?;
            let received = h
                .exchange(
                    &mut conn,
                    request.body(empty()).map_err(|e| fail(e.to_string()))?,
                )
                .await
                .map_err(|e| fail(format!("{address}: {e}")))?;
            ensure!(
                received.status == 200,
                "{address}: status {}",
                received.status
            );
        }
        Ok(())
    })
}

fn server_features(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        let (id, request) = h.request(Method::GET, "/features", "");
        h.send(request.body(empty()).map_err(|e| fail(e.to_string()))?)
            .await?;
        let seen = h.processed(&id).await?;
        let server = h
            .server()
            .features()
            .get::<ServerAddresses>()
            .map(ServerAddresses::urls);
        ensure!(seen.addresses.is_some(), "the request's features do not show the server-level ServerAddresses (server features belong in every request's defaults layer)");
        ensure!(
            seen.addresses == server,
            "the request saw addresses {:?}, the server lists {server:?}",
            seen.addresses
        );
        Ok(())
    })
}

/// Whether a new connection is refused (or closed unanswered) within a
/// second; `Ok(false)` if a request on it was answered.
async fn refused(client: &Client, version: Version) -> bool {
    let attempt = async {
        let mut conn = client.connect().await.ok()?;
        let mut request =
            http::Request::get("http://localhost/after-stop").header(ID, "after-stop");
        if version != Version::HTTP_2 {
            request = request
                .uri("/after-stop")
                .header(http::header::HOST, "localhost");
        }
        let request = request.version(version).body(empty()).ok()?;
        conn.send(request).await.ok().map(|_| ())
    };
    !matches!(
        tokio::time::timeout(Duration::from_secs(1), attempt).await,
        Ok(Some(()))
    )
}

fn graceful_stop(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        let (id, request) = h.request(Method::GET, "/wait", "wait");
        let request = request.body(empty()).map_err(|e| fail(e.to_string()))?;
        let mut conn = h.connect().await?;
        let in_flight = tokio::spawn(async move {
            let response = conn.send(request).await?;
            receive(response).await
        });
        h.seen(&id, "the request", |s| s.started).await?;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let client = h.client.clone();
        let version = h.version;
        let probe = h.probe.clone();
        let meanwhile = async move {
            // The listener may close a moment after stop begins: retry.
            let mut refusal = false;
            for _ in 0..40 {
                if refused(&client, version).await {
                    refusal = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            probe.gate.add_permits(1);
            let finished = in_flight.await;
            (refusal, finished)
        };
        h.mark_stopped();
        // What the probe had seen of the request when `stop` returned: a
        // stop that returns while the request still runs does not wait
        // for its connections, whatever the client gets later.
        let probe = h.probe.clone();
        let stop = async {
            let stopped = h.server().stop(deadline).await;
            let disposed = probe.get(&id).map(|s| s.events);
            (stopped, disposed, tokio::time::Instant::now())
        };
        let ((stopped, disposed, returned), (refusal, finished)) = tokio::join!(stop, meanwhile);
        stopped.map_err(|e| fail(format!("stop failed: {e}")))?;
        ensure!(returned < deadline, "stop returned after its deadline");
        ensure!(
            refusal,
            "new connections were still answered 2 s after stop began"
        );
        let events = disposed.unwrap_or_default();
        ensure!(
            events.iter().any(|e| e.starts_with("dispose")),
            "stop returned before the in-flight request had finished (its lifecycle so far: {})",
            events.join(", ")
        );
        let received = finished
            .map_err(|e| fail(format!("the in-flight request's client failed: {e}")))?
            .map_err(|e| fail(format!("the in-flight request did not finish: {e}")))?;
        ensure!(
            received.status == 200 && received.body == "done",
            "the in-flight request ended with {} {:?}",
            received.status,
            received.body
        );
        Ok(())
    })
}

fn upgrade(h: &mut Harness) -> BoxFuture<'_, Verdict> {
    Box::pin(async move {
        if h.version == Version::HTTP_2 {
            return Err(unsupported("HTTP/2 has no Upgrade"));
        }
        let (id, request) = h.request(Method::GET, "/upgrade", "upgrade");
        let request = request
            .header(http::header::CONNECTION, "upgrade")
            .header(http::header::UPGRADE, "probe")
            .body(empty())
            .map_err(|e| fail(e.to_string()))?;
        let mut conn = h.connect().await?;
        let mut response = conn.send(request).await?;
        let offered = h
            .seen(&id, "the request", |s| s.upgrade.is_some())
            .await?
            .upgrade;
        if offered == Some(false) {
            return Err(unsupported("no Upgrade feature"));
        }
        ensure!(response.status() == 101, "status {}", response.status());
        let upgraded = hyper::upgrade::on(&mut response)
            .await
            .map_err(|e| fail(format!("the client could not take the connection: {e}")))?;
        let mut io = TokioIo::new(upgraded);
        io.write_all(b"ping")
            .await
            .map_err(|e| fail(e.to_string()))?;
        let mut pong = [0u8; 4];
        tokio::time::timeout(PATIENCE, io.read_exact(&mut pong))
            .await
            .map_err(|_| fail("no answer on the upgraded connection"))?
            .map_err(|e| fail(format!("reading the upgraded connection: {e}")))?;
        ensure!(
            &pong == b"pong",
            "the upgraded connection answered {pong:?}"
        );
        drop(conn);
        Ok(())
    })
}
