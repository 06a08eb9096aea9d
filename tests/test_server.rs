//! TestServer in direct mode: request parts, bodies, trailers, connection
//! info, limits, aborts, stop, and use through `dyn Server`.

#![cfg(feature = "test-util")]

#[path = "support/keeper.rs"]
mod keeper;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderValue;
use http::{Method, StatusCode, Version};
use serverbridge::application::from_fn;
use serverbridge::feature::{
    Address, ConnectionInfo, MaxRequestBodySize, RequestTrailers, ResponseTrailers,
    ServerAddresses, TlsInfo,
};
use serverbridge::testing::TestServer;
use serverbridge::{Error, HttpContext, Result, Server};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Describes the request parts, one per line.
async fn describe(ctx: &mut HttpContext) -> Result<()> {
    let request = ctx.request();
    let multi: Vec<_> = request
        .headers
        .get_all("x-multi")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let text = format!(
        "method={}\nscheme={}\npath_base={}\npath={}\nquery={}\nraw_target={}\nversion={:?}\nhost={:?}\nx-multi={:?}",
        request.method,
        request.scheme,
        request.path_base,
        request.path,
        request.query,
        request.raw_target,
        request.version,
        request.host(),
        multi,
    );
    ctx.write(text).await
}

#[tokio::test]
async fn each_request_gets_its_own_host_on_a_reused_collection() {
    // Direct mode reuses one collection, keeping a lone Host that the next
    // request may repeat: each request must still see exactly its own.
    async fn hosts(ctx: &mut HttpContext) -> Result<()> {
        let all: Vec<_> = ctx
            .request()
            .headers
            .get_all("host")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        ctx.write(all.join(",")).await
    }
    let server = TestServer::new(hosts);
    let seen = |response: serverbridge::testing::TestResponse| response.text();
    let get = |target| server.get(target).send();
    assert_eq!(seen(get("/").await.unwrap()).await.unwrap(), "localhost");
    assert_eq!(seen(get("/").await.unwrap()).await.unwrap(), "localhost");
    let absolute = get("http://example.test:8080/a").await.unwrap();
    assert_eq!(seen(absolute).await.unwrap(), "example.test:8080");
    assert_eq!(seen(get("/").await.unwrap()).await.unwrap(), "localhost");
    let own = server.get("/").header("host", "mine.test").send().await;
    assert_eq!(seen(own.unwrap()).await.unwrap(), "mine.test");
    assert_eq!(seen(get("/").await.unwrap()).await.unwrap(), "localhost");
    let h2 = server.get("/").version(Version::HTTP_2).send().await;
    assert_eq!(seen(h2.unwrap()).await.unwrap(), "");
    assert_eq!(seen(get("/").await.unwrap()).await.unwrap(), "localhost");
}

#[tokio::test]
async fn request_parts_arrive_intact() {
    let server = TestServer::new(describe);
    let purge = Method::from_bytes(b"PURGE").unwrap();
    let response = server
        .request(purge, "/a%20b/%2F?x=1&y=%20")
        .header("x-multi", "one")
        .header("x-multi", "two")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.text().await.unwrap(),
        [
            "method=PURGE",
            "scheme=http",
            "path_base=",
            "path=/a%20b/%2F",
            "query=x=1&y=%20",
            "raw_target=/a%20b/%2F?x=1&y=%20",
            "version=HTTP/1.1",
            "host=Some(\"localhost\")",
            "x-multi=[\"one\", \"two\"]",
        ]
        .join("\n")
    );
}

#[tokio::test]
async fn request_without_query_and_with_dot_segments() {
    let server = TestServer::new(describe);
    let response = server
        .get("/x/../y/./z")
        .header("host", "example.test:8080")
        .version(Version::HTTP_10)
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines[3], "path=/x/../y/./z", "never normalised");
    assert_eq!(lines[4], "query=");
    assert_eq!(lines[5], "raw_target=/x/../y/./z");
    assert_eq!(lines[6], "version=HTTP/1.0");
    assert_eq!(lines[7], "host=Some(\"example.test:8080\")");
}

#[tokio::test]
async fn the_asterisk_form_keeps_its_target_on_new_and_reused_collections() {
    let server = TestServer::new(describe);
    // The second request refills the first one's collection.
    for _ in 0..2 {
        let response = server.request(Method::OPTIONS, "*").send().await.unwrap();
        let text = response.text().await.unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines[0], "method=OPTIONS");
        assert_eq!(lines[3], "path=");
        assert_eq!(lines[5], "raw_target=*");
    }
    let response = server.get("/after").send().await.unwrap();
    let text = response.text().await.unwrap();
    assert!(text.contains("\npath=/after\n"), "{text}");
}

#[tokio::test]
async fn request_trailers_are_offered_only_with_a_body() {
    async fn reports(ctx: &mut HttpContext) -> Result<()> {
        let offered = ctx.features().contains::<RequestTrailers>();
        ctx.write(format!("trailers={offered}")).await
    }
    let server = TestServer::new(reports);
    // Twice each: the second request refills the first one's collection.
    for _ in 0..2 {
        let text = server.get("/").send().await.unwrap().text().await.unwrap();
        assert_eq!(text, "trailers=false");
        let text = server
            .post("/")
            .body("x")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(text, "trailers=true");
    }
}

#[tokio::test]
async fn an_invalid_target_is_a_parse_error() {
    let server = TestServer::new(describe);
    let err = server.get("/a b").send().await.unwrap_err();
    assert!(err.is_parse());
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
}

/// The status a request gets, whether the server answered it or the
/// client refused to send it (direct mode refuses with the status the wire
/// would answer).
async fn status_of(server: &TestServer, method: &str, target: &str) -> (StatusCode, String) {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    match server.request(method, target).send().await {
        Ok(response) => (response.status(), response.text().await.unwrap()),
        Err(err) => (err.status().unwrap(), String::new()),
    }
}

#[tokio::test]
async fn direct_mode_takes_and_refuses_the_targets_the_wire_does() {
    use serverbridge::testing::Mode;
    let direct = TestServer::new(describe);
    let wire = TestServer::new(describe).with_mode(Mode::Wire);
    let cases = [
        ("GET", "/p?q=1", StatusCode::OK),
        ("GET", "*", StatusCode::BAD_REQUEST),
        ("OPTIONS", "*", StatusCode::OK),
        ("CONNECT", "example.test:443", StatusCode::OK),
        ("CONNECT", "/not-an-authority", StatusCode::BAD_REQUEST),
        ("GET", "http://example.test:8080/p?q", StatusCode::OK),
        ("GET", "https://example.test/x?q", StatusCode::OK),
        ("GET", "http://user@example.test/", StatusCode::BAD_REQUEST),
        ("GET", "ftp://example.test/", StatusCode::BAD_REQUEST),
    ];
    // Twice: the second round refills the first round's collections.
    for _ in 0..2 {
        for (method, target, expected) in cases {
            let seen = status_of(&direct, method, target).await;
            assert_eq!(seen.0, expected, "direct: {method} {target}");
            let on_wire = status_of(&wire, method, target).await;
            assert_eq!(on_wire.0, expected, "wire: {method} {target}");
            if method == "CONNECT" {
                // A 2xx to CONNECT opens a tunnel: no body to compare.
                continue;
            }
            // What the app saw: the same parts, but for the scheme (the
            // wire's is the connection's, not the target's).
            let strip = |text: &str| -> String {
                text.lines()
                    .filter(|l| !l.starts_with("scheme="))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            assert_eq!(strip(&seen.1), strip(&on_wire.1), "{method} {target}");
        }
    }
    let text = status_of(&direct, "GET", "https://example.test?q").await.1;
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(
        lines[..6],
        [
            "method=GET",
            "scheme=https",
            "path_base=",
            "path=/",
            "query=q",
            "raw_target=https://example.test?q"
        ]
    );
    assert_eq!(lines[7], "host=Some(\"example.test\")");
}

#[tokio::test]
async fn a_streamed_request_body_arrives_chunk_by_chunk() {
    async fn chunks(ctx: &mut HttpContext) -> Result<()> {
        let mut seen = Vec::new();
        while let Some(chunk) = ctx.request_body().chunk().await? {
            seen.push(String::from_utf8(chunk.to_vec()).unwrap());
        }
        ctx.write(seen.join("|")).await
    }
    let server = TestServer::new(chunks);
    let stream = futures::stream::iter(
        ["ab", "cde", "f"].map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c.as_bytes()))),
    );
    let response = server.post("/").body_stream(stream).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "ab|cde|f");
}

#[tokio::test]
async fn a_failing_request_stream_fails_the_read() {
    async fn reads(ctx: &mut HttpContext) -> Result<()> {
        match ctx.read_body(1024).await {
            Ok(body) => ctx.write(body).await,
            Err(err) => {
                ctx.response_mut().status = StatusCode::BAD_REQUEST;
                ctx.write(format!("closed={}", err.is_closed())).await
            }
        }
    }
    let server = TestServer::new(reads);
    let stream = futures::stream::iter([
        Ok(Bytes::from_static(b"ab")),
        Err(Error::closed("client hung up")),
    ]);
    let response = server.post("/").body_stream(stream).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.text().await.unwrap(), "closed=true");
}

#[tokio::test]
async fn request_trailers_are_visible_after_the_body_was_read() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        let trailers = ctx.features().get::<RequestTrailers>().unwrap().clone();
        let before = trailers.is_available();
        let body = ctx.read_body(1024).await?;
        let after = trailers.get().unwrap_or_default();
        let checksum = after
            .get("x-checksum")
            .map(|v| v.to_str().unwrap().to_owned());
        ctx.write(format!(
            "body={} before={before} checksum={checksum:?} count={}",
            String::from_utf8_lossy(&body),
            after.len()
        ))
        .await
    }
    let server = TestServer::new(app);
    let response = server
        .post("/")
        .body("payload")
        .trailer("x-checksum", "abc123")
        .trailer("x-other", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.text().await.unwrap(),
        r#"body=payload before=false checksum=Some("abc123") count=2"#
    );
}

#[tokio::test]
async fn connection_and_tls_info_from_the_server_and_per_request() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        let conn = ctx.connection().cloned();
        let tls = ctx.features().get::<TlsInfo>().cloned();
        let text = format!(
            "scheme={} id={:?} local={:?} peer={:?} tls={:?}",
            ctx.request().scheme,
            conn.as_ref().map(|c| c.id.clone()),
            conn.as_ref()
                .and_then(|c| c.local.as_ref().map(ToString::to_string)),
            conn.as_ref()
                .and_then(|c| c.peer.as_ref().map(ToString::to_string)),
            tls.and_then(|t| t.protocol),
        );
        ctx.write(text).await
    }

    async fn text(request: serverbridge::testing::TestRequest<'_>) -> String {
        request.send().await.unwrap().text().await.unwrap()
    }

    // Defaults.
    let server = TestServer::new(app);
    let default = text(server.get("/")).await;
    assert!(default.starts_with("scheme=http id=Some(\"T"), "{default}");
    assert!(
        default.ends_with("local=Some(\"127.0.0.1:80\") peer=Some(\"127.0.0.1:50000\") tls=None"),
        "{default}"
    );

    // Set on the server.
    let server = TestServer::new(app)
        .with_connection(ConnectionInfo::tcp(
            "conn-1",
            addr("10.0.0.1:443"),
            addr("192.0.2.7:61000"),
        ))
        .with_tls(TlsInfo {
            protocol: Some("TLSv1.3".to_owned()),
            ..Default::default()
        });
    assert_eq!(
        text(server.get("/")).await,
        r#"scheme=https id=Some("conn-1") local=Some("10.0.0.1:443") peer=Some("192.0.2.7:61000") tls=Some("TLSv1.3")"#
    );

    // Per request: another peer, TLS kept from the server.
    let response = text(server.get("/").connection(ConnectionInfo::tcp(
        "conn-2",
        addr("10.0.0.1:443"),
        addr("198.51.100.1:1234"),
    )))
    .await;
    assert_eq!(
        response,
        r#"scheme=https id=Some("conn-2") local=Some("10.0.0.1:443") peer=Some("198.51.100.1:1234") tls=Some("TLSv1.3")"#
    );

    // Per request TLS on a plain server.
    let server = TestServer::new(app);
    let response = text(server.get("/").tls(TlsInfo {
        protocol: Some("TLSv1.2".to_owned()),
        ..Default::default()
    }))
    .await;
    assert!(response.starts_with("scheme=https "), "{response}");
    assert!(response.ends_with(r#"tls=Some("TLSv1.2")"#), "{response}");
    // ... and the next request is plain again.
    let response = text(server.get("/")).await;
    assert!(response.starts_with("scheme=http "), "{response}");
    assert!(response.ends_with("tls=None"), "{response}");
}

#[tokio::test]
async fn unix_socket_connection_info() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        let conn = ctx.connection().unwrap();
        let text = format!("{:?} local={}", conn.peer, conn.is_local());
        ctx.write(text).await
    }
    let server = TestServer::new(app).with_connection(ConnectionInfo {
        id: "u1".to_owned(),
        local: Some(Address::Unix(Some("/run/app.sock".into()))),
        peer: Some(Address::Unix(None)),
    });
    let response = server.get("/").send().await.unwrap();
    assert_eq!(
        response.text().await.unwrap(),
        "Some(Unix(None)) local=true"
    );
}

#[tokio::test]
async fn request_ids_are_present_and_distinct() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        let id = ctx.request_id().unwrap().to_string();
        let conn = ctx.connection().unwrap().id.clone();
        ctx.write(format!("{conn} {id}")).await
    }
    let server = TestServer::new(app);
    let first = server.get("/").send().await.unwrap().text().await.unwrap();
    let second = server.get("/").send().await.unwrap().text().await.unwrap();
    let (conn1, id1) = first.split_once(' ').unwrap();
    let (conn2, id2) = second.split_once(' ').unwrap();
    assert_eq!(conn1, conn2);
    assert_ne!(id1, id2);
    assert_eq!(id1, format!("{conn1}:00000001"));
    assert_eq!(id2, format!("{conn1}:00000002"));

    // Another server has another connection id.
    let other = TestServer::new(app);
    let third = other.get("/").send().await.unwrap().text().await.unwrap();
    assert_ne!(third.split_once(' ').unwrap().0, conn1);

    // A connection id set by the test is the request id's prefix.
    let info = ConnectionInfo {
        id: "C42".into(),
        ..Default::default()
    };
    let custom = TestServer::new(app).with_connection(info);
    let fourth = custom.get("/").send().await.unwrap().text().await.unwrap();
    assert_eq!(fourth, "C42 C42:00000001");
}

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

#[tokio::test]
async fn a_stopped_server_refuses_requests() {
    async fn ok(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("ok").await
    }
    let mut server = TestServer::new(ok);
    assert_eq!(
        server.get("/").send().await.unwrap().status(),
        StatusCode::OK
    );

    server.stop(tokio::time::Instant::now()).await.unwrap();
    let err = server.get("/").send().await.unwrap_err();
    assert!(err.is_closed(), "{err:?}");

    // Started again with a new app.
    async fn again(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("again").await
    }
    server.start(Arc::new(again)).await.unwrap();
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "again");
}

#[tokio::test]
async fn an_unstarted_server_refuses_requests() {
    let server = TestServer::unstarted();
    let err = server.get("/").send().await.unwrap_err();
    assert!(err.is_closed());
}

#[tokio::test]
async fn response_trailers_reach_the_client_after_the_body() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("body").await?;
        ctx.flush().await?;
        let trailers = ctx
            .features_mut()
            .get_mut::<ResponseTrailers>()
            .ok_or_else(|| Error::unsupported("no ResponseTrailers"))?;
        trailers
            .headers
            .insert("grpc-status", HeaderValue::from_static("0"));
        trailers
            .headers
            .insert("x-digest", HeaderValue::from_static("abc"));
        Ok(())
    }
    let server = TestServer::new(app);
    let mut response = server.get("/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.trailers(), None, "not before the body was read");
    assert_eq!(response.read_to_end().await.unwrap(), "body");
    let trailers = response.trailers().expect("trailers after the body");
    assert_eq!(trailers.len(), 2);
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["x-digest"], "abc");
}

#[tokio::test]
async fn box_dyn_server_is_chosen_at_run_time() {
    async fn hello(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("hi").await
    }
    fn pick(name: &str) -> Box<dyn Server> {
        match name {
            "test" => Box::new(TestServer::unstarted()),
            other => panic!("unknown server {other}"),
        }
    }
    let mut server = pick("test");
    server.start(Arc::new(hello)).await.unwrap();
    let addresses = server.features().get::<ServerAddresses>().unwrap().clone();
    let urls = addresses.urls();
    assert_eq!(urls.len(), 1, "{urls:?}");
    assert!(
        urls[0].starts_with("memory:T"),
        "an in-memory address: {urls:?}"
    );
    // The address is reached through the server's Connector.
    let connector = server
        .features()
        .get::<serverbridge::testing::Connector>()
        .unwrap()
        .clone();
    let mut client = connector.connect().await.unwrap();
    let request = http::Request::get("/").body(Default::default()).unwrap();
    let response = client.send(request).await.unwrap();
    assert_eq!(response.status(), 200);
    server.stop(tokio::time::Instant::now()).await.unwrap();
    assert!(
        addresses.urls().is_empty(),
        "a stopped server lists nothing"
    );
    assert!(
        connector.connect().await.unwrap_err().is_closed(),
        "a stopped server refuses connections"
    );

    // The same calls through `&mut dyn Server` on a TestServer we can then
    // send requests to.
    async fn start_any(server: &mut dyn Server) -> Result<()> {
        server.start(Arc::new(hello)).await
    }
    let mut test = TestServer::unstarted();
    start_any(&mut test).await.unwrap();
    let response = test.get("/").send().await.unwrap();
    assert_eq!(response.headers()["content-length"], "2");
    assert_eq!(response.text().await.unwrap(), "hi");
    let stop: &mut dyn Server = &mut test;
    stop.stop(tokio::time::Instant::now()).await.unwrap();
    assert!(test.get("/").send().await.unwrap_err().is_closed());
}

#[tokio::test]
async fn server_features_show_through_to_requests() {
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        let has = ctx.features().get::<ServerAddresses>().is_some();
        ctx.write(format!("{has}")).await
    }
    let server = TestServer::new(app);
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "true");
}

static FINISHED_IN_PLACE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

async fn completes_then_yields(ctx: &mut HttpContext) -> Result<()> {
    ctx.on_completed(|_| {
        FINISHED_IN_PLACE.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    });
    ctx.write("hi").await?;
    ctx.complete().await?;
    // Still running after the response is whole (one pending poll each:
    // the head, the chunk, the end).
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    Ok(())
}

/// A whole response dropped before its lifecycle ended finishes the
/// (synchronous) rest in place: `on_completed` has run when the drop returns,
/// with no task spawned for it.
#[tokio::test]
async fn dropping_a_whole_response_finishes_its_lifecycle_in_place() {
    let server = TestServer::new(completes_then_yields);
    let mut response = server.get("/").send().await.unwrap();
    assert_eq!(response.chunk().await.unwrap().as_deref(), Some(&b"hi"[..]));
    assert_eq!(response.chunk().await.unwrap(), None);
    assert!(!FINISHED_IN_PLACE.load(std::sync::atomic::Ordering::SeqCst));
    drop(response);
    assert!(FINISHED_IN_PLACE.load(std::sync::atomic::Ordering::SeqCst));
}

#[tokio::test]
async fn a_lifetime_an_app_kept_never_aborts_a_later_direct_request() {
    // Direct mode reuses collections and renews their lifetime in place
    // when nothing else holds it: a clone the app kept must keep the old
    // signal to itself.
    let app = keeper::lifetime_keeper();
    let server = TestServer::new(app);
    for _ in 0..3 {
        let kept = server.get("/keep").send().await.unwrap();
        assert_eq!(kept.text().await.unwrap(), "kept");
        let next = server.get("/next").send().await.unwrap();
        assert_eq!(next.text().await.unwrap(), "fired=false");
    }
}

#[tokio::test]
async fn a_response_still_being_read_keeps_its_pipe_while_later_requests_run() {
    // Finished requests' collections are reused with their response pipe;
    // a pipe whose reader still holds the body must never be.
    let app = from_fn(|ctx: &mut HttpContext| {
        Box::pin(async move {
            let path = ctx.request().path.clone();
            ctx.write(format!("first half of {path}; ")).await?;
            ctx.write(format!("second half of {path}")).await
        })
    });
    let server = TestServer::new(app);
    let mut held = Vec::new();
    for i in 0..4 {
        held.push(server.get(&format!("/{i}")).send().await.unwrap());
        let quick = server.get("/quick").send().await.unwrap();
        assert_eq!(
            quick.text().await.unwrap(),
            "first half of /quick; second half of /quick"
        );
    }
    for (i, response) in held.into_iter().enumerate() {
        assert_eq!(
            response.text().await.unwrap(),
            format!("first half of /{i}; second half of /{i}")
        );
    }
}

#[tokio::test]
async fn each_direct_response_has_exactly_its_own_headers() {
    // Direct mode refills a header map the last reader gave back: nothing
    // of the response before may show through.
    let app = from_fn(|ctx: &mut HttpContext| {
        Box::pin(async move {
            let path = ctx.request().path.clone();
            let headers = &mut ctx.response_mut().headers;
            if path == "/a" {
                headers.append("x-a", HeaderValue::from_static("1"));
                headers.append("x-a", HeaderValue::from_static("2"));
                headers.insert("x-only-a", HeaderValue::from_static("yes"));
            } else {
                headers.insert("x-b", HeaderValue::from_static("3"));
            }
            ctx.write(path).await
        })
    });
    let server = TestServer::new(app);
    for _ in 0..3 {
        for path in ["/a", "/b"] {
            let response = server.get(path).send().await.unwrap();
            let mut seen: Vec<(String, String)> = response
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                .collect();
            seen.sort();
            let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
            let mut expected = match path {
                "/a" => vec![pair("x-a", "1"), pair("x-a", "2"), pair("x-only-a", "yes")],
                _ => vec![pair("x-b", "3")],
            };
            expected.push(pair("content-length", "2"));
            expected.sort();
            assert_eq!(seen, expected, "{path}");
            assert_eq!(response.text().await.unwrap(), path);
        }
    }
}

#[tokio::test]
async fn a_direct_body_the_app_completed_before_its_head_gives_its_chunk_then_ends() {
    use http_body::Body as _;
    async fn hello(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("hello").await
    }
    let server = TestServer::new(hello);
    let mut body = server
        .get("/")
        .send()
        .await
        .unwrap()
        .into_http()
        .into_body();
    // No length from the hint: the head carries it (or the server frames).
    assert_eq!(body.size_hint().exact(), None);
    assert!(!body.is_end_stream());
    let frame = http_body_util::BodyExt::frame(&mut body).await;
    assert_eq!(frame.unwrap().unwrap().into_data().unwrap(), "hello");
    assert!(body.is_end_stream());
    assert!(http_body_util::BodyExt::frame(&mut body).await.is_none());
}

#[tokio::test]
async fn a_direct_body_says_it_ended_once_complete_and_drained() {
    use http_body::Body as _;
    async fn two_parts(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("a").await?;
        ctx.flush().await?;
        tokio::task::yield_now().await;
        ctx.write("b").await
    }
    let server = TestServer::new(two_parts);
    let mut response = server.get("/").send().await.unwrap();
    assert_eq!(response.chunk().await.unwrap().as_deref(), Some(&b"a"[..]));
    let (parts, body) = response.into_http().into_parts();
    assert!(!body.is_end_stream(), "the app has not completed");
    let mut response = http::Response::from_parts(parts, body);
    let rest = http_body_util::BodyExt::collect(response.body_mut())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(rest, "b");
    assert!(response.body().is_end_stream());
    // A one-chunk body has ended as soon as its chunk is taken.
    let server = TestServer::new(describe);
    let mut response = server.get("/").send().await.unwrap();
    assert!(!response.chunk().await.unwrap().unwrap().is_empty());
    assert!(response.into_http().body().is_end_stream());
}

#[tokio::test]
async fn connection_close_is_offered_and_honoured_in_both_modes() {
    // The app asks for the close through the feature; the response says
    // so, as the built-in server's head does.
    async fn closes(ctx: &mut HttpContext) -> Result<()> {
        let close = ctx
            .features()
            .get::<serverbridge::feature::ConnectionClose>()
            .cloned();
        let Some(close) = close else {
            return ctx.write("no ConnectionClose").await;
        };
        if ctx.request().path == "/close" {
            close.request();
        }
        ctx.write("ok").await
    }
    for mode in [
        serverbridge::testing::Mode::Direct,
        serverbridge::testing::Mode::Wire,
    ] {
        let server = TestServer::new(closes).with_mode(mode);
        for (path, says_close) in [("/close", true), ("/", false), ("/close", true)] {
            let response = server.get(path).send().await.unwrap();
            let connection = response
                .headers()
                .get(http::header::CONNECTION)
                .map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(
                connection.as_deref() == Some("close"),
                says_close,
                "{mode:?} {path}: {connection:?}"
            );
            assert_eq!(response.text().await.unwrap(), "ok", "{mode:?}");
        }
    }
}

#[tokio::test]
async fn a_connection_close_kept_from_one_request_cannot_close_the_next() {
    use serverbridge::feature::ConnectionClose;
    static KEPT: std::sync::Mutex<Option<ConnectionClose>> = std::sync::Mutex::new(None);
    async fn app(ctx: &mut HttpContext) -> Result<()> {
        if ctx.request().path == "/first" {
            *KEPT.lock().unwrap() = ctx.features().get::<ConnectionClose>().cloned();
        } else if let Some(close) = KEPT.lock().unwrap().take() {
            close.request(); // the first request's background job, late
        }
        ctx.write("ok").await
    }
    let server = TestServer::new(app);
    server
        .get("/first")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let second = server.get("/second").send().await.unwrap();
    assert_eq!(second.headers().get("connection"), None);
}
