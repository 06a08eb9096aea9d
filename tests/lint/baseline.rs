//! The baseline.

use super::*;

#[tokio::test]
async fn a_clean_app_on_test_server_is_clean() {
    async fn tidy(ctx: &mut HttpContext) -> Result<()> {
        let body = ctx.read_body(1024).await?;
        ctx.response_mut().status = StatusCode::CREATED;
        ctx.response_mut().reason = Some("Made\tIt".into());
        ctx.response_mut()
            .headers
            .insert("content-type", HeaderValue::from_static("text/plain"));
        ctx.on_starting(|ctx| {
            ctx.response_mut()
                .headers
                .insert("x-started", HeaderValue::from_static("1"));
            Ok(())
        })?;
        if ctx.request().method == Method::HEAD {
            return Ok(());
        }
        ctx.write(body).await?;
        ctx.flush().await?;
        ctx.write(" and more").await
    }
    let lint = Lint::new(tidy);
    let report = lint.report();
    let server = TestServer::new(lint);
    let response = server.post("/a/b?c=d").body("posted").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.text().await.unwrap(), "posted and more");
    for method in [Method::GET, Method::HEAD] {
        let response = server.request(method, "/").send().await.unwrap();
        response.bytes().await.unwrap();
    }
    assert!(report.is_clean(), "{:#?}", report.violations());
}

#[tokio::test]
async fn special_request_forms_are_clean() {
    // The asterisk form, the authority form, HTTP/1.0 without Host, and an
    // empty path under a path base are all allowed.
    let cases: Vec<Box<dyn FnOnce() -> Features>> = vec![
        Box::new(|| good("OPTIONS", "*").0),
        Box::new(|| good("CONNECT", "example.com:443").0),
        Box::new(|| {
            let (mut f, _) = RecordingSink::features("GET", "/");
            request(&mut f).version = Version::HTTP_10;
            f
        }),
        Box::new(|| {
            let (mut f, _) = good("GET", "/api");
            let r = request(&mut f);
            r.path = String::new();
            r.path_base = "/api".into();
            f
        }),
        Box::new(|| {
            let (mut f, _) = good("GET", "/");
            request(&mut f).version = Version::HTTP_2;
            request(&mut f).headers.remove(HOST);
            request(&mut f).scheme = http::uri::Scheme::HTTPS;
            f
        }),
    ];
    for (i, case) in cases.into_iter().enumerate() {
        let (report, outcome) = lint_run(noop, case()).await;
        assert!(
            report.is_clean(),
            "case {i}: {:#?} {outcome:?}",
            report.violations()
        );
    }
}
