//! TestServer's wire mode: the same client API as direct mode, but every
//! request goes as bytes through the built-in server's engine.

#![cfg(feature = "test-util")]

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use serverbridge::application::from_fn;
use serverbridge::feature::{ConnectionInfo, RequestTrailers, ResponseTrailers, TlsInfo};
use serverbridge::server::HttpServer;
use serverbridge::testing::{Mode, TestServer};
use serverbridge::{HttpContext, Result, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

async fn describe(ctx: &mut HttpContext) -> Result<()> {
    let body = ctx.read_body(1 << 20).await?;
    let request = ctx.request();
    let multi: Vec<&str> = request
        .headers
        .get_all("x-multi")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let text = format!(
        "{} {} path={} query={} raw={} multi={} body={} scheme={} peer={:?}",
        request.method,
        request.version == http::Version::HTTP_11,
        request.path,
        request.query,
        request.raw_target,
        multi.join("|"),
        body.len(),
        request.scheme,
        ctx.connection().and_then(|c| c.peer.clone()),
    );
    ctx.write(text).await
}

fn wire(app: impl serverbridge::Application) -> TestServer {
    TestServer::new(app).with_mode(Mode::Wire)
}

#[tokio::test]
async fn request_parts_arrive_intact_through_real_parsing() {
    let server = wire(describe);
    let response = server
        .request(
            Method::from_bytes(b"PURGE").unwrap(),
            "/a%20b/%2F/../c?x=1&y",
        )
        .header("x-multi", "one")
        .header("x-multi", "two")
        .body("12345")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // The real server's framing and headers.
    assert!(response.headers().contains_key("date"));
    let text = response.text().await.unwrap();
    assert!(
        text.starts_with(
            "PURGE true path=/a%20b/%2F/../c query=x=1&y raw=/a%20b/%2F/../c?x=1&y multi=one|two body=5 scheme=http"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_malformed_request_gets_the_same_status_as_on_a_real_socket() {
    let bad: &[u8] =
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";

    let server = wire(describe);
    let mut io = server.raw().unwrap();
    io.write_all(bad).await.unwrap();
    let mut in_memory = Vec::new();
    io.read_to_end(&mut in_memory).await.unwrap();

    let mut real = HttpServer::new().bind("127.0.0.1:0".parse().unwrap());
    real.start(Arc::new(describe)).await.unwrap();
    let addr = match &real.addresses().get()[0] {
        serverbridge::feature::ServerAddress::Tcp { addr, .. } => *addr,
        other => panic!("{other:?}"),
    };
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(bad).await.unwrap();
    let mut on_socket = Vec::new();
    socket.read_to_end(&mut on_socket).await.unwrap();
    real.stop(tokio::time::Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();

    let status_line = |bytes: &[u8]| bytes.split(|&b| b == b'\r').next().unwrap().to_vec();
    assert_eq!(status_line(&in_memory), b"HTTP/1.1 400 Bad Request");
    assert_eq!(status_line(&in_memory), status_line(&on_socket));
}

#[tokio::test]
async fn a_flushed_response_streams_chunked() {
    let server = wire(from_fn(|ctx| {
        Box::pin(async move {
            ctx.write("one,").await?;
            ctx.flush().await?;
            ctx.write("two").await
        })
    }));
    let mut response = server.get("/").send().await.unwrap();
    assert_eq!(response.headers()["transfer-encoding"], "chunked");
    assert!(!response.headers().contains_key("content-length"));
    assert_eq!(response.chunk().await.unwrap().unwrap(), "one,");
    assert_eq!(response.read_to_end().await.unwrap(), "two");
}

#[tokio::test]
async fn connection_and_tls_info_reach_the_app() {
    let peer: std::net::SocketAddr = "203.0.113.7:4242".parse().unwrap();
    let info = ConnectionInfo::tcp("w1", "127.0.0.1:443".parse().unwrap(), peer);
    let server = wire(describe).with_connection(info).with_tls(TlsInfo {
        protocol: Some("TLSv1.3".into()),
        ..Default::default()
    });
    let text = server.get("/").send().await.unwrap().text().await.unwrap();
    assert!(text.contains("scheme=https"), "{text}");
    assert!(text.contains("peer=Some(Tcp(203.0.113.7:4242))"), "{text}");
}

#[tokio::test]
async fn a_client_abort_fires_the_request_lifetime() {
    let (seen_tx, seen_rx) = oneshot::channel::<()>();
    let seen_tx = Arc::new(std::sync::Mutex::new(Some(seen_tx)));
    let server = wire(from_fn(move |ctx| {
        let seen_tx = seen_tx.clone();
        Box::pin(async move {
            ctx.lifetime().unwrap().cancelled().await;
            if let Some(tx) = seen_tx.lock().unwrap().take() {
                let _ = tx.send(());
            }
            Ok(())
        })
    }));
    let request = server.get("/wait");
    let client = request.lifetime();
    let abort = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        client.abort();
    };
    let (sent, ()) = tokio::join!(request.send(), abort);
    assert!(sent.unwrap_err().is_aborted());
    tokio::time::timeout(Duration::from_secs(5), seen_rx)
        .await
        .expect("the app saw the client go away")
        .unwrap();
}

#[tokio::test]
async fn the_body_limit_answers_413() {
    let server = wire(describe).with_max_request_body_size(Some(4));
    let response = server.post("/").body("12345").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.headers()["connection"], "close");
}

#[tokio::test]
async fn trailers_cross_the_wire_both_ways() {
    let server = wire(from_fn(|ctx| {
        Box::pin(async move {
            let body = ctx.read_body(1 << 20).await?;
            let sum = ctx
                .features()
                .get::<RequestTrailers>()
                .and_then(|t| t.get())
                .and_then(|t| t.get("x-sum").cloned());
            if let (Some(sum), Some(out)) = (sum, ctx.features_mut().get_mut::<ResponseTrailers>())
            {
                out.headers.insert("x-echo-sum", sum);
            }
            ctx.write(body).await?;
            ctx.flush().await
        })
    }));
    let mut response = server
        .post("/")
        .header("trailer", "x-sum")
        .body("abc")
        .trailer("x-sum", "6")
        .send()
        .await
        .unwrap();
    assert_eq!(response.read_to_end().await.unwrap(), "abc");
    assert_eq!(response.trailers().unwrap()["x-echo-sum"], "6");
}

#[tokio::test]
async fn every_request_has_its_own_request_id_in_both_modes() {
    async fn id(ctx: &mut HttpContext) -> Result<()> {
        let id = ctx.request_id().map(|r| r.to_string()).unwrap_or_default();
        ctx.write(id).await
    }
    for mode in [Mode::Direct, Mode::Wire] {
        let server = TestServer::new(id).with_mode(mode);
        let a = server.get("/").send().await.unwrap().text().await.unwrap();
        let b = server.get("/").send().await.unwrap().text().await.unwrap();
        assert!(a.starts_with('T'), "{mode:?}: {a}");
        assert_ne!(a, b, "{mode:?}: two requests share the RequestId {a}");
    }
}

#[tokio::test]
async fn an_https_target_is_https_in_both_modes() {
    async fn scheme(ctx: &mut HttpContext) -> Result<()> {
        let s = ctx.request().scheme.to_string();
        ctx.write(s).await
    }
    for mode in [Mode::Direct, Mode::Wire] {
        let server = TestServer::new(scheme).with_mode(mode);
        let https = server.get("https://example.com/").send().await.unwrap();
        assert_eq!(https.text().await.unwrap(), "https", "{mode:?}");
        let http = server.get("http://example.com/").send().await.unwrap();
        assert_eq!(http.text().await.unwrap(), "http", "{mode:?}");
    }
}

#[tokio::test]
async fn the_apps_framing_fields_do_not_reach_the_client_in_either_mode() {
    async fn hop(ctx: &mut HttpContext) -> Result<()> {
        let h = &mut ctx.response_mut().headers;
        h.insert("connection", "keep-alive".parse().unwrap());
        h.insert("transfer-encoding", "gzip".parse().unwrap());
        ctx.write("hello").await
    }
    async fn closes(ctx: &mut HttpContext) -> Result<()> {
        let h = &mut ctx.response_mut().headers;
        h.insert("connection", "close".parse().unwrap());
        ctx.write("bye").await
    }
    for mode in [Mode::Direct, Mode::Wire] {
        let server = TestServer::new(hop).with_mode(mode);
        let response = server.get("/").send().await.unwrap();
        let headers = format!("{:?}", response.headers());
        assert!(
            !response.headers().contains_key("connection"),
            "{mode:?}: {headers}"
        );
        assert!(
            response
                .headers()
                .get("transfer-encoding")
                .is_none_or(|v| v == "chunked"),
            "{mode:?}: {headers}"
        );
        let server = TestServer::new(closes).with_mode(mode);
        let response = server.get("/").send().await.unwrap();
        assert_eq!(response.headers()["connection"], "close", "{mode:?}");
    }
}

#[tokio::test]
async fn a_request_body_has_the_framing_field_a_client_sends_in_both_modes() {
    async fn framing(ctx: &mut HttpContext) -> Result<()> {
        let h = &ctx.request().headers;
        let field = |name: &str| h.get(name).map(|v| v.to_str().unwrap().to_owned());
        let text = format!(
            "content-length={:?} transfer-encoding={:?}",
            field("content-length"),
            field("transfer-encoding")
        );
        ctx.write(text).await
    }
    for mode in [Mode::Direct, Mode::Wire] {
        let server = TestServer::new(framing).with_mode(mode);
        let text = server
            .post("/")
            .body("abc")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(
            text, r#"content-length=Some("3") transfer-encoding=None"#,
            "{mode:?}"
        );
        let text = server.get("/").send().await.unwrap().text().await.unwrap();
        assert_eq!(
            text, "content-length=None transfer-encoding=None",
            "{mode:?}"
        );
    }
}
