//! A panicking AppFunc.

use super::*;

#[tokio::test]
async fn a_panicking_app_func_gives_a_bare_500() {
    let callback_ran = Arc::new(AtomicBool::new(false));
    async fn panics(env: &mut Environment, callback_ran: Arc<AtomicBool>) -> Result<()> {
        env.set(keys::RESPONSE_STATUS_CODE, Value::Int(201))?;
        env.headers_mut(keys::RESPONSE_HEADERS)
            .unwrap()
            .insert("x-before-panic", HeaderValue::from_static("1"));
        env.on_sending_headers(move |_| {
            callback_ran.store(true, Ordering::SeqCst);
            Ok(())
        })?;
        env.write("partial").await?;
        panic!("the AppFunc panicked on purpose");
    }
    let app = {
        let callback_ran = callback_ran.clone();
        OwinApp::new(app_func(move |env: &mut Environment| {
            Box::pin(panics(env, callback_ran.clone()))
        }))
    };
    let server = TestServer::new(app);
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.headers()[CONTENT_LENGTH], "0");
    assert!(response.headers().get("x-before-panic").is_none());
    assert_eq!(response.bytes().await.unwrap(), "");
    assert!(
        !callback_ran.load(Ordering::SeqCst),
        "on_starting callbacks do not run for the error response"
    );
}

#[tokio::test]
async fn the_context_is_back_after_the_app_func_for_later_middleware() {
    // Feature-based middleware after an OwinApp sees the same context (the
    // environment borrowed it, it did not copy it).
    let seen: Shared<Option<(StatusCode, u64)>> = shared();
    let after = {
        let seen = seen.clone();
        after(move |ctx: &mut HttpContext| {
            let seen = seen.clone();
            Box::pin(async move {
                *seen.lock().unwrap() = Some((ctx.response().status, ctx.bytes_written()));
            })
        })
    };
    let app = OwinApp::new(app_func(|env: &mut Environment| {
        Box::pin(async move {
            env.set(keys::RESPONSE_STATUS_CODE, Value::Int(203))?;
            env.write("12345").await
        })
    }));
    let server = TestServer::new(Builder::new().use_fn(after).run(app));
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.status(), 203);
    assert_eq!(response.headers()[CONTENT_LENGTH], "5");
    assert_eq!(
        *seen.lock().unwrap(),
        Some((StatusCode::from_u16(203).unwrap(), 5))
    );
}

#[tokio::test(start_paused = true)]
async fn a_timeout_around_an_owin_app_finds_the_request_where_it_left_it() {
    async fn timeout_504(ctx: &mut HttpContext, next: Next<'_>) -> Result<()> {
        match tokio::time::timeout(Duration::from_millis(100), next.run(ctx)).await {
            Ok(result) => result,
            Err(_) => {
                ctx.response_mut().status = StatusCode::GATEWAY_TIMEOUT;
                ctx.write("timed out").await
            }
        }
    }
    let slow = OwinApp::new(app_func(|env: &mut Environment| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            env.write("late").await
        })
    }));
    let server = TestServer::new(Builder::new().use_fn(timeout_504).run(slow));
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(response.text().await.unwrap(), "timed out");
}

#[test]
fn values_under_unknown_keys_come_back_as_what_they_were() {
    let mut env = Environment::new();
    let mut headers = HeaderMap::new();
    headers.insert("x-a", HeaderValue::from_static("1"));
    env.set("my.headers", Value::Headers(headers.clone()))
        .unwrap();
    env.set("my.key", Value::Str("v".into())).unwrap();
    env.set("my.int", Value::Int(3)).unwrap();
    env.set("my.flag", Value::Bool(true)).unwrap();
    let addresses = vec![ServerAddress::parse("http://127.0.0.1:1").unwrap()];
    env.set("my.addresses", Value::Addresses(addresses.clone()))
        .unwrap();
    assert_eq!(env.get("my.headers").unwrap().as_headers(), Some(&headers));
    assert_eq!(
        env.get("my.headers").unwrap().downcast_ref::<HeaderMap>(),
        Some(&headers)
    );
    assert_eq!(env.get("my.key").unwrap().as_str(), Some("v"));
    assert_eq!(
        env.get("my.key")
            .unwrap()
            .downcast_ref::<String>()
            .map(String::as_str),
        Some("v")
    );
    assert_eq!(env.get("my.int").unwrap().as_int(), Some(3));
    assert_eq!(env.get("my.flag").unwrap().as_bool(), Some(true));
    assert_eq!(
        env.get("my.addresses")
            .unwrap()
            .downcast_ref::<Vec<ServerAddress>>(),
        Some(&addresses)
    );
}
