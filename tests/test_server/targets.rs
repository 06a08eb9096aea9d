//! Request parts and targets.

use super::*;

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
        ("GET", "/a%zz", StatusCode::BAD_REQUEST),
        ("GET", "/a%2F?q=%41", StatusCode::OK),
        ("GET", "/a?q=%zz", StatusCode::BAD_REQUEST),
        ("GET", "/a?q=a|b", StatusCode::BAD_REQUEST),
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
