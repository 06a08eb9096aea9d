//! Request bodies and trailers, connection and TLS info, request ids.

use super::*;

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
