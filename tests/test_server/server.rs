//! Start and stop, response trailers, the server chosen at run time,
//! direct-mode responses, `Connection: close`.

use super::*;

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
