//! Environment → features.

use super::*;

#[derive(Debug)]
struct User(&'static str);

/// What feature-based code saw after the AppFunc wrote every key.
#[derive(Debug, Default)]
struct AfterOwin {
    method: Option<Method>,
    path: String,
    path_base: String,
    version: Option<Version>,
    query: String,
    scheme: String,
    request_id: Option<String>,
    request_headers: HeaderMap,
    body: Bytes,
    status: Option<StatusCode>,
    reason: Option<String>,
    response_headers: HeaderMap,
    response_protocol: Option<String>,
    user: Option<&'static str>,
    connection: Option<ConnectionInfo>,
    aborted_before: bool,
    aborted_after_cancelling_the_replacement: bool,
    addresses: Vec<ServerAddress>,
    /// The environment read back right after the writes.
    reread: KeyValues,
    /// `env.keys()` right after the writes.
    keys_after: Vec<String>,
}

#[tokio::test]
async fn every_writable_key_writes_the_features() {
    let replacement = RequestLifetime::new();
    let out: Shared<AfterOwin> = shared();
    let sending_ran = Arc::new(AtomicBool::new(false));
    let listed = vec![ServerAddress::Tcp {
        scheme: "https".into(),
        addr: ip("0.0.0.0:8443"),
    }];

    let setter = {
        let replacement = replacement.clone();
        let out = out.clone();
        let sending_ran = sending_ran.clone();
        let listed = listed.clone();
        app_func(move |env: &mut Environment| {
            let replacement = replacement.clone();
            let out = out.clone();
            let sending_ran = sending_ran.clone();
            let listed = listed.clone();
            Box::pin(async move {
                env.set(keys::REQUEST_METHOD, "PATCH".into())?;
                env.set(keys::REQUEST_PATH, "/rewritten".into())?;
                env.set(keys::REQUEST_PATH_BASE, "/base".into())?;
                env.set(keys::REQUEST_PROTOCOL, "HTTP/1.0".into())?;
                env.set(keys::REQUEST_QUERY_STRING, "a=b".into())?;
                env.set(keys::REQUEST_SCHEME, "https".into())?;
                env.set(keys::REQUEST_ID, "corr-42".into())?;
                env.set(
                    keys::REQUEST_HEADERS,
                    Value::Headers(headers(&[("x-new", "1")])),
                )?;
                env.set(
                    keys::REQUEST_BODY,
                    Value::RequestBody(RequestBody::full("replaced")),
                )?;
                env.set(keys::REQUEST_USER, Value::Any(Box::new(User("alice"))))?;
                env.set(keys::RESPONSE_STATUS_CODE, Value::Int(201))?;
                env.set(keys::RESPONSE_REASON_PHRASE, "Made It".into())?;
                env.set(
                    keys::RESPONSE_HEADERS,
                    Value::Headers(headers(&[("x-out", "1")])),
                )?;
                env.set(keys::RESPONSE_PROTOCOL, "HTTP/1.0".into())?;
                env.set(keys::REMOTE_IP_ADDRESS, "192.0.2.7".into())?;
                env.set(keys::REMOTE_PORT, "4242".into())?;
                env.set(keys::LOCAL_IP_ADDRESS, "192.0.2.1".into())?;
                env.set(keys::LOCAL_PORT, "8443".into())?;
                env.set(keys::CALL_CANCELLED, Value::Cancellation(replacement))?;
                env.set(
                    keys::ON_SENDING_HEADERS,
                    Value::Callback(Box::new(move |ctx: &mut HttpContext| {
                        sending_ran.store(true, Ordering::SeqCst);
                        ctx.response_mut()
                            .headers
                            .insert("x-sending", HeaderValue::from_static("yes"));
                        Ok(())
                    })),
                )?;
                env.set(keys::HOST_ADDRESSES, Value::Addresses(listed))?;
                {
                    let mut out = out.lock().unwrap();
                    out.reread = read_all(env);
                    out.keys_after = env.keys();
                }
                env.write("done").await
            })
        })
    };

    let inspector = {
        let replacement = replacement.clone();
        let out = out.clone();
        after(move |ctx: &mut HttpContext| {
            let replacement = replacement.clone();
            let out = out.clone();
            Box::pin(async move {
                let body = ctx.read_body(1024).await.unwrap();
                let aborted_before = ctx.is_aborted();
                replacement.abort();
                let aborted_after = ctx.is_aborted();
                let features = ctx.features();
                let user = features
                    .get::<Extras>()
                    .and_then(|e| e.get(keys::REQUEST_USER))
                    .and_then(|u| u.downcast_ref::<User>())
                    .map(|u| u.0);
                let response_protocol = features
                    .get::<Extras>()
                    .and_then(|e| e.get(keys::RESPONSE_PROTOCOL))
                    .and_then(|p| p.downcast_ref::<String>())
                    .cloned();
                let addresses = features
                    .get::<serverbridge::feature::ServerAddresses>()
                    .map(|a| a.get())
                    .unwrap_or_default();
                let request = ctx.request();
                let response = ctx.response();
                let mut out = out.lock().unwrap();
                out.method = Some(request.method.clone());
                out.path = request.path.clone();
                out.path_base = request.path_base.clone();
                out.version = Some(request.version);
                out.query = request.query.clone();
                out.scheme = request.scheme.to_string();
                out.request_id = ctx.request_id().map(|id| id.0.clone());
                out.request_headers = request.headers.clone();
                out.body = body;
                out.status = Some(response.status);
                out.reason = response.reason.clone();
                out.response_headers = response.headers.clone();
                out.response_protocol = response_protocol;
                out.user = user;
                out.connection = ctx.connection().cloned();
                out.aborted_before = aborted_before;
                out.aborted_after_cancelling_the_replacement = aborted_after;
                out.addresses = addresses;
            })
        })
    };

    let app = Builder::new().use_fn(inspector).run(OwinApp::new(setter));
    let connection = ConnectionInfo::tcp("conn-9", ip("10.0.0.1:80"), ip("10.0.0.2:40000"));
    let server = TestServer::new(app).with_connection(connection.clone());
    let request = server
        .post("/orig?q=1")
        .header("x-in", "1")
        .body("original");
    let client_lifetime = request.lifetime();
    let response = request.send().await.unwrap();

    // What the client sees.
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.reason(), "Made It");
    assert_eq!(response.version(), Version::HTTP_10, "answered in kind");
    assert_eq!(response.headers()["x-out"], "1");
    assert_eq!(
        response.headers()["x-sending"],
        "yes",
        "server.OnSendingHeaders ran before the head"
    );
    assert_eq!(response.headers()[CONTENT_LENGTH], "4");
    assert_eq!(response.text().await.unwrap(), "done");
    assert!(sending_ran.load(Ordering::SeqCst));
    assert!(
        !client_lifetime.is_cancelled(),
        "cancelling the replaced owin.CallCancelled does not touch the server's"
    );

    // What feature-based code saw.
    let out = std::mem::take(&mut *out.lock().unwrap());
    assert_eq!(out.method, Some(Method::PATCH));
    assert_eq!(out.path, "/rewritten");
    assert_eq!(out.path_base, "/base");
    assert_eq!(out.version, Some(Version::HTTP_10));
    assert_eq!(out.query, "a=b");
    assert_eq!(out.scheme, "https");
    assert_eq!(out.request_id.as_deref(), Some("corr-42"));
    assert_eq!(out.request_headers, headers(&[("x-new", "1")]));
    assert_eq!(out.body, "replaced");
    assert_eq!(out.status, Some(StatusCode::CREATED));
    assert_eq!(out.reason.as_deref(), Some("Made It"));
    assert_eq!(
        out.response_headers,
        headers(&[("x-out", "1")]),
        "the head is not sent yet, so the OnSendingHeaders callback has not run"
    );
    assert_eq!(out.response_protocol.as_deref(), Some("HTTP/1.0"));
    assert_eq!(out.user, Some("alice"));
    let shadow = out.connection.expect("connection info");
    assert_eq!(
        shadow.id, "conn-9",
        "the shadow copy keeps the connection id"
    );
    assert_eq!(shadow.peer, Some(Address::Tcp(ip("192.0.2.7:4242"))));
    assert_eq!(shadow.local, Some(Address::Tcp(ip("192.0.2.1:8443"))));
    assert!(!out.aborted_before);
    assert!(
        out.aborted_after_cancelling_the_replacement,
        "RequestLifetime is the replacement token"
    );
    assert_eq!(out.addresses, listed);

    // The environment reads back what was written.
    let reread = &out.reread;
    assert_eq!(reread[keys::REQUEST_METHOD], str("PATCH"));
    assert_eq!(reread[keys::REQUEST_PATH], str("/rewritten"));
    assert_eq!(reread[keys::REQUEST_PATH_BASE], str("/base"));
    assert_eq!(reread[keys::REQUEST_PROTOCOL], str("HTTP/1.0"));
    assert_eq!(reread[keys::REQUEST_QUERY_STRING], str("a=b"));
    assert_eq!(reread[keys::REQUEST_SCHEME], str("https"));
    assert_eq!(reread[keys::REQUEST_ID], str("corr-42"));
    assert_eq!(reread[keys::REQUEST_USER], Some(Seen::Any));
    assert_eq!(reread[keys::RESPONSE_STATUS_CODE], Some(Seen::Int(201)));
    assert_eq!(reread[keys::RESPONSE_REASON_PHRASE], str("Made It"));
    assert_eq!(reread[keys::RESPONSE_PROTOCOL], str("HTTP/1.0"));
    assert_eq!(reread[keys::REMOTE_IP_ADDRESS], str("192.0.2.7"));
    assert_eq!(reread[keys::REMOTE_PORT], str("4242"));
    assert_eq!(reread[keys::LOCAL_IP_ADDRESS], str("192.0.2.1"));
    assert_eq!(reread[keys::LOCAL_PORT], str("8443"));
    assert_eq!(
        reread[keys::IS_LOCAL],
        Some(Seen::Bool(false)),
        "server.IsLocal follows the shadowed addresses"
    );
    assert_eq!(reread[keys::HOST_ADDRESSES], Some(Seen::Addresses(listed)));
    assert_eq!(
        out.keys_after,
        keys::ALL,
        "every key is present once, the Extras-backed ones not repeated"
    );
}

#[tokio::test]
async fn shadowed_addresses_do_not_leak_into_the_next_request_on_the_same_server() {
    let seen_remote: Shared<Vec<(Option<Seen>, Option<Seen>)>> = shared();
    let app = {
        let seen_remote = seen_remote.clone();
        OwinApp::new(app_func(move |env: &mut Environment| {
            let seen_remote = seen_remote.clone();
            Box::pin(async move {
                let shadow = env.get(keys::REQUEST_PATH).unwrap().as_str() == Some("/shadow");
                if shadow {
                    env.set(keys::REMOTE_IP_ADDRESS, "198.51.100.1".into())?;
                    env.set(keys::REMOTE_PORT, "1".into())?;
                }
                seen_remote.lock().unwrap().push((
                    env.get(keys::REMOTE_IP_ADDRESS).map(seen),
                    env.get(keys::REMOTE_PORT).map(seen),
                ));
                Ok(())
            })
        }))
    };
    let server = TestServer::new(app);
    server.get("/shadow").send().await.unwrap();
    server.get("/after").send().await.unwrap();
    assert_eq!(
        *seen_remote.lock().unwrap(),
        vec![
            (str("198.51.100.1"), str("1")),
            (str("127.0.0.1"), str("50000"))
        ]
    );
}

#[test]
fn read_only_keys_and_wrong_value_types_are_refused() {
    let mut env = Environment::new();
    for key in keys::READ_ONLY {
        for value in [
            Value::Str("x".into()),
            Value::Bool(true),
            Value::Any(Box::new(1u8)),
        ] {
            let err = env.set(key, value).expect_err(key);
            assert!(err.is_contract(), "{key}: {err:?}");
            assert_eq!(err.rule(), Some("owin.read-only-key"), "{key}");
        }
    }
    // No writable standard key takes a Bool.
    for key in keys::ALL.iter().filter(|k| !keys::READ_ONLY.contains(k)) {
        let err = env.set(key, Value::Bool(true)).expect_err(key);
        assert_eq!(err.rule(), Some("owin.value-type"), "{key}: {err:?}");
    }
    // The right variant with a value the feature cannot hold.
    let bad: Vec<(&str, Value)> = vec![
        (keys::REQUEST_PATH, Value::Int(1)),
        (keys::RESPONSE_STATUS_CODE, Value::Int(42)),
        (keys::RESPONSE_STATUS_CODE, Value::Int(-200)),
        (keys::RESPONSE_STATUS_CODE, Value::Int(1000)),
        (keys::RESPONSE_STATUS_CODE, Value::Str("200".into())),
        (keys::REQUEST_METHOD, Value::Str("BAD METHOD".into())),
        (keys::REQUEST_PROTOCOL, Value::Str("HTTP/4".into())),
        (keys::RESPONSE_PROTOCOL, Value::Str("SPDY".into())),
        (keys::REQUEST_SCHEME, Value::Str("not a scheme".into())),
        (keys::REMOTE_IP_ADDRESS, Value::Str("not-an-ip".into())),
        (keys::LOCAL_PORT, Value::Str("70000".into())),
        (keys::REQUEST_USER, Value::Str("alice".into())),
    ];
    for (key, value) in bad {
        let shown = format!("{key} = {value:?}");
        let err = env.set(key, value).expect_err(&shown);
        assert_eq!(err.rule(), Some("owin.value-type"), "{shown}: {err:?}");
    }
    // Nothing changed.
    let values = read_all(&env);
    assert_eq!(values[keys::REQUEST_PATH], str("/"));
    assert_eq!(values[keys::RESPONSE_STATUS_CODE], Some(Seen::Int(200)));
    assert_eq!(values[keys::REQUEST_METHOD], str("GET"));
    assert_eq!(values[keys::VERSION], str("1.0.1"));
    assert_eq!(values[keys::REQUEST_USER], None);
    assert_eq!(values[keys::REMOTE_IP_ADDRESS], None);
}
