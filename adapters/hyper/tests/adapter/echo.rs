//! Echo of every request part over HTTP/1.1 and HTTP/2; addresses; unix
//! sockets; the per-request features.

use std::sync::Arc;

use http::StatusCode;
use serverbridge::application::from_fn;
use serverbridge::feature::{
    ConnectionInfo, MaxRequestBodySize, RequestId, ServerAddress, ServerAddresses,
};
use serverbridge::{HttpContext, Result, Server};
use serverbridge_hyper::{HyperServer, Settings};

use crate::common::*;

#[tokio::test]
async fn echo_http1() {
    let (mut server, addr) = start(echo).await;
    let mut client = h1(addr).await;
    let req = request("POST", "/a%2Fb/./c?x=1&y=%20")
        .header("x-echo-one", "1")
        .header("x-echo-many", "a")
        .header("x-echo-many", "b")
        .body(full("hello body"))
        .unwrap();
    let (parts, body) = collect(client.send_request(req).await.unwrap()).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(parts.version, http::Version::HTTP_11);
    assert_eq!(header(&parts, "x-method"), "POST");
    assert_eq!(header(&parts, "x-path"), "/a%2Fb/./c");
    assert_eq!(header(&parts, "x-query"), "x=1&y=%20");
    assert_eq!(header(&parts, "x-target"), "/a%2Fb/./c?x=1&y=%20");
    assert_eq!(header(&parts, "x-version"), "HTTP/1.1");
    assert_eq!(header(&parts, "x-host"), "test.local");
    assert_eq!(header(&parts, "x-echo-one"), "1");
    let many: Vec<_> = parts.headers.get_all("x-echo-many").iter().collect();
    assert_eq!(many, ["a", "b"]);
    assert_eq!(header(&parts, "content-length"), "10");
    assert_eq!(body, "hello body");
    server.stop(deadline(5)).await.unwrap();
}

#[tokio::test]
async fn echo_http2_prior_knowledge() {
    let (mut server, addr) = start(echo).await;
    let mut client = h2(addr).await;
    let req = request_h2("PUT", "/p/q?z=9")
        .header("x-echo-two", "2")
        .body(full(vec![7u8; 100_000]))
        .unwrap();
    let (parts, body) = collect(client.send_request(req).await.unwrap()).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(parts.version, http::Version::HTTP_2);
    assert_eq!(header(&parts, "x-method"), "PUT");
    assert_eq!(header(&parts, "x-path"), "/p/q");
    assert_eq!(header(&parts, "x-query"), "z=9");
    assert_eq!(header(&parts, "x-target"), "/p/q?z=9");
    assert_eq!(header(&parts, "x-version"), "HTTP/2.0");
    // `:authority` shows as `Host`.
    assert_eq!(header(&parts, "x-host"), "test.local");
    assert_eq!(header(&parts, "x-echo-two"), "2");
    assert_eq!(body.len(), 100_000);
    assert!(body.iter().all(|&b| b == 7));
    server.stop(deadline(5)).await.unwrap();
}

#[tokio::test]
async fn http2_streams_run_concurrently() {
    // Each request waits for the other: only concurrent streams finish.
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let app = from_fn(move |ctx| {
        let barrier = barrier.clone();
        Box::pin(async move {
            barrier.wait().await;
            ctx.write("ok").await
        })
    });
    let (mut server, addr) = start(app).await;
    let client = h2(addr).await;
    let send = |path: &'static str| {
        let mut client = client.clone();
        async move {
            let req = request_h2("GET", path).body(full("")).unwrap();
            collect(client.send_request(req).await.unwrap()).await
        }
    };
    let both = tokio::time::timeout(PATIENCE, futures::future::join(send("/1"), send("/2")))
        .await
        .expect("both streams in time");
    assert_eq!(both.0 .1, "ok");
    assert_eq!(both.1 .1, "ok");
    server.stop(deadline(5)).await.unwrap();
}

/// Reports the features a request sees.
async fn features_app(ctx: &mut HttpContext) -> Result<()> {
    let features = ctx.features();
    let addresses = features
        .get::<ServerAddresses>()
        .map(|a| a.urls().join(","))
        .unwrap_or_default();
    let info = features
        .get::<ConnectionInfo>()
        .cloned()
        .unwrap_or_default();
    let id = features
        .get::<RequestId>()
        .map(|i| i.to_string())
        .unwrap_or_default();
    let limit = features.get::<MaxRequestBodySize>().and_then(|l| l.get());
    let text = format!(
        "addresses={addresses}\nconnection={}\nlocal={}\npeer={}\nrequest={id}\nlimit={limit:?}\n",
        info.id,
        info.local.map(|a| a.to_string()).unwrap_or_default(),
        info.peer.map(|a| a.to_string()).unwrap_or_default(),
    );
    ctx.write(text).await
}

#[tokio::test]
async fn port_zero_is_resolved_and_published() {
    let (mut server, addr) = start(features_app).await;
    assert_ne!(addr.port(), 0);
    assert_eq!(server.addresses().urls(), vec![format!("http://{addr}")]);
    let mut client = h1(addr).await;
    let mut lines = Vec::new();
    for _ in 0..2 {
        let req = request("GET", "/").body(full("")).unwrap();
        let (_, body) = collect(client.send_request(req).await.unwrap()).await;
        lines.push(String::from_utf8(body.to_vec()).unwrap());
    }
    let first = &lines[0];
    assert!(
        first.contains(&format!("addresses=http://{addr}\n")),
        "{first}"
    );
    assert!(first.contains(&format!("local={addr}\n")), "{first}");
    assert!(first.contains("peer=127.0.0.1:"), "{first}");
    assert!(first.contains("limit=Some(30000000)"), "{first}");
    let connection = first
        .lines()
        .find_map(|l| l.strip_prefix("connection="))
        .unwrap();
    assert!(!connection.is_empty());
    assert!(
        first.contains(&format!("request={connection}:00000001\n")),
        "{first}"
    );
    assert!(
        lines[1].contains(&format!("request={connection}:00000002\n")),
        "{}",
        lines[1]
    );
    server.stop(deadline(5)).await.unwrap();
    assert!(server.addresses().get().is_empty(), "cleared on stop");
}

#[tokio::test]
async fn several_endpoints_from_addresses() {
    let dir = std::env::temp_dir().join(format!("sb-hyper-multi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("app.sock");
    let mut server = HyperServer::from_addresses(&[
        ServerAddress::Tcp {
            scheme: "http".into(),
            addr: "127.0.0.1:0".parse().unwrap(),
        },
        ServerAddress::Tcp {
            scheme: "http".into(),
            addr: "127.0.0.1:0".parse().unwrap(),
        },
        ServerAddress::Unix(path.clone()),
    ])
    .unwrap();
    server.start(Arc::new(echo)).await.unwrap();
    let published = server.addresses().get();
    assert_eq!(published.len(), 3, "{published:?}");
    for address in &published[..2] {
        let ServerAddress::Tcp { addr, .. } = address else {
            panic!("{address:?}")
        };
        assert_ne!(addr.port(), 0);
        let mut client = h1(*addr).await;
        let (parts, _) = collect(
            client
                .send_request(request("GET", "/x").body(full("")).unwrap())
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(header(&parts, "x-path"), "/x");
    }
    assert_eq!(published[2], ServerAddress::Unix(path.clone()));
    assert!(HyperServer::from_addresses(&[ServerAddress::Tcp {
        scheme: "https".into(),
        addr: "127.0.0.1:0".parse().unwrap()
    }])
    .is_err());
    server.stop(deadline(5)).await.unwrap();
    assert!(!path.exists(), "the socket file is removed on stop");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn unix_socket() {
    let dir = std::env::temp_dir().join(format!("sb-hyper-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("echo.sock");
    let mut server = HyperServer::new().bind_unix(&path);
    server.start(Arc::new(features_app)).await.unwrap();
    assert_eq!(
        server.addresses().urls(),
        vec![format!("unix:{}", path.display())]
    );
    let stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    let (mut client, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let (parts, body) = collect(
        client
            .send_request(request("GET", "/").body(full("")).unwrap())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(parts.status, StatusCode::OK);
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        text.contains(&format!("local=unix:{}\n", path.display())),
        "{text}"
    );
    assert!(text.contains("peer=unix:(unnamed)\n"), "{text}");
    server.stop(deadline(5)).await.unwrap();
    assert!(!path.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn request_body_limit_gives_413() {
    let mut settings = Settings::default();
    settings.max_request_body_size = Some(1000);
    let (mut server, addr) = start_server(HyperServer::new().settings(settings), echo).await;
    for (size, status) in [
        (1000, StatusCode::OK),
        (1001, StatusCode::PAYLOAD_TOO_LARGE),
    ] {
        let mut client = h1(addr).await;
        let req = request("POST", "/").body(full(vec![b'a'; size])).unwrap();
        let (parts, _) = collect(client.send_request(req).await.unwrap()).await;
        assert_eq!(parts.status, status, "{size} bytes");
    }
    // The app raises the limit before reading.
    let raise = from_fn(|ctx| {
        Box::pin(async move {
            ctx.features()
                .get::<MaxRequestBodySize>()
                .unwrap()
                .set(Some(5000))?;
            let body = ctx.read_body(1 << 20).await?;
            ctx.write(body.len().to_string()).await
        })
    });
    let mut settings = Settings::default();
    settings.max_request_body_size = Some(1000);
    let (mut raised, addr) = start_server(HyperServer::new().settings(settings), raise).await;
    let mut client = h2(addr).await;
    let req = request_h2("POST", "/")
        .body(full(vec![b'a'; 4000]))
        .unwrap();
    let (parts, body) = collect(client.send_request(req).await.unwrap()).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(body, "4000");
    server.stop(deadline(5)).await.unwrap();
    raised.stop(deadline(5)).await.unwrap();
}

/// Marks the collection it ran on, and reports what it found there.
async fn marking_app(ctx: &mut HttpContext) -> Result<()> {
    #[derive(Debug)]
    struct Mark;
    let request = ctx.request();
    let text = format!(
        "path={} query={} body-limit={:?} id={} marked={} upgradable={}",
        request.path,
        request.query,
        ctx.features()
            .get::<MaxRequestBodySize>()
            .and_then(|l| l.get()),
        ctx.request_id().map(|i| i.to_string()).unwrap_or_default(),
        ctx.features().contains::<Mark>(),
        ctx.features()
            .contains_dyn::<dyn serverbridge::feature::Upgrade>(),
    );
    let path = request.path.clone();
    if path == "/mark" {
        ctx.features_mut().insert(Mark);
    }
    if path == "/shrink" {
        if let Some(limit) = ctx.features_mut().get_mut::<MaxRequestBodySize>() {
            limit.set(Some(5))?;
        }
    }
    ctx.write(text).await
}

#[tokio::test]
async fn a_reused_collection_carries_nothing_of_the_request_before() {
    let (mut server, addr) = start(marking_app).await;
    let mut client = h1(addr).await;
    let mut bodies = Vec::new();
    for target in ["/shrink?a=1", "/b", "/up", "/c", "/mark", "/d"] {
        let mut req = request("GET", target);
        if target == "/up" {
            req = req.header("connection", "upgrade").header("upgrade", "x");
        }
        // Ready again only once hyper's client task saw the response end.
        client.ready().await.unwrap();
        let (_, body) = collect(
            client
                .send_request(req.body(full("")).unwrap())
                .await
                .unwrap(),
        )
        .await;
        bodies.push(String::from_utf8(body.to_vec()).unwrap());
    }
    let id = |n: usize| {
        bodies[n]
            .split(" id=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_owned()
    };
    assert!(
        bodies[0].starts_with("path=/shrink query=a=1 body-limit=Some(30000000)"),
        "{}",
        bodies[0]
    );
    // The limit the first request lowered is back to the server's.
    assert!(
        bodies[1].starts_with("path=/b query= body-limit=Some(30000000)"),
        "{}",
        bodies[1]
    );
    assert!(bodies[2].contains("upgradable=true"), "{}", bodies[2]);
    // The upgrade the request before could claim is gone.
    assert!(bodies[3].contains("upgradable=false"), "{}", bodies[3]);
    // A feature the app added does not reach the next request.
    assert!(bodies[5].contains("marked=false"), "{}", bodies[5]);
    assert!(id(1).ends_with(":00000002"), "{}", id(1));
    assert!(id(5).ends_with(":00000006"), "{}", id(5));
    server.stop(deadline(5)).await.unwrap();
}

/// The raw target `*` and, SPEC §1.2, an empty path on both versions.
#[tokio::test]
async fn the_asterisk_form_keeps_its_raw_target_on_both_versions() {
    let (mut server, addr) = start(echo).await;
    let mut client = h1(addr).await;
    let req = request("OPTIONS", "*").body(full("")).unwrap();
    let (parts, _) = collect(client.send_request(req).await.unwrap()).await;
    assert_eq!(header(&parts, "x-target"), "*");
    assert_eq!(header(&parts, "x-path"), "", "HTTP/1.1");

    // HTTP/2 sends `*` as `:path` with a scheme and an authority around it.
    let mut client = h2(addr).await;
    let uri = http::Uri::builder()
        .scheme("http")
        .authority("test.local")
        .path_and_query("*")
        .build()
        .unwrap();
    let req = http::Request::builder()
        .method("OPTIONS")
        .uri(uri)
        .version(http::Version::HTTP_2)
        .body(full(""))
        .unwrap();
    let (parts, _) = collect(client.send_request(req).await.unwrap()).await;
    assert_eq!(header(&parts, "x-target"), "*");
    assert_eq!(
        header(&parts, "x-path"),
        "",
        "HTTP/2: the path of OPTIONS *"
    );
    server.stop(deadline(5)).await.unwrap();
}

/// `/close` asks for the close itself, `/stream` sends its body before it
/// knows its length; anything else is a small finished response.
async fn http10_app(ctx: &mut HttpContext) -> Result<()> {
    match ctx.request().path.as_str() {
        "/close" => {
            ctx.response_mut()
                .headers
                .insert(http::header::CONNECTION, "close".parse().unwrap());
            ctx.write("closing").await
        }
        "/stream" => {
            ctx.write("part").await?;
            ctx.flush().await?;
            ctx.write("s").await
        }
        _ => ctx.write("ok").await,
    }
}

#[tokio::test]
async fn http10_keep_alive_is_said_and_kept_when_the_response_has_a_length() {
    let (mut server, addr) = start(http10_app).await;
    let next = "GET /last HTTP/1.0\r\n\r\n";
    // Kept: the response says so and the next request is served.
    let out = raw_text(
        addr,
        &format!("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n{next}"),
    )
    .await;
    assert_eq!(out.matches("http/1.0 200 ok\r\n").count(), 2, "{out}");
    assert_eq!(
        out.matches("connection: keep-alive\r\n").count(),
        1,
        "{out}"
    );
    // Not kept: the app asked for the close, or the body had no length.
    for path in ["/close", "/stream"] {
        let out = raw_text(
            addr,
            &format!("GET {path} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n{next}"),
        )
        .await;
        assert_eq!(
            out.matches("http/1.0 200 ok\r\n").count(),
            1,
            "{path}: {out}"
        );
        assert!(!out.contains("keep-alive"), "{path}: {out}");
    }
    server.stop(deadline(5)).await.unwrap();
}

/// A target whose form its method does not take (RFC 9112 §3.2) gets 400
/// and the close before the app runs, as on the built-in server; `*` stays
/// `OPTIONS`'s.
#[tokio::test]
async fn targets_in_a_form_the_method_does_not_take_get_400() {
    let (mut server, addr) = start(echo).await;
    for line in [
        "GET *",
        "POST *",
        "GET a",
        "GET ..",
        "GET http://:80/",
        "GET http://[::g]/",
    ] {
        let out = raw_text(addr, &format!("{line} HTTP/1.1\r\nhost: x\r\n\r\n")).await;
        assert!(
            out.starts_with("http/1.1 400 bad request\r\n"),
            "{line}: {out}"
        );
        assert!(out.contains("connection: close\r\n"), "{line}: {out}");
        assert!(!out.contains("x-method"), "{line}: the app ran: {out}");
    }
    let out = raw_text(
        addr,
        "OPTIONS * HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(out.starts_with("http/1.1 200 ok\r\n"), "{out}");
    assert!(out.contains("x-target: *\r\n"), "{out}");
    server.stop(deadline(5)).await.unwrap();
}

/// Writes `requests` on one connection and reads until the server closes
/// it; the reply in lower case.
async fn raw_text(addr: std::net::SocketAddr, requests: &str) -> String {
    raw_exchange(addr, requests.as_bytes())
        .await
        .to_ascii_lowercase()
}
