//! Run_application: a host that speaks only OWIN.

use super::*;

fn owin_host_request(recording: &RecordingSink) -> Environment {
    let mut env = Environment::new();
    env.set(keys::REQUEST_METHOD, "POST".into()).unwrap();
    env.set(keys::REQUEST_PATH_BASE, "/app".into()).unwrap();
    env.set(keys::REQUEST_PATH, "/submit".into()).unwrap();
    env.set(keys::REQUEST_QUERY_STRING, "draft=1".into())
        .unwrap();
    env.set(
        keys::REQUEST_HEADERS,
        Value::Headers(headers(&[
            ("host", "owin.example"),
            ("content-type", "text/plain"),
        ])),
    )
    .unwrap();
    env.set(
        keys::REQUEST_BODY,
        Value::RequestBody(RequestBody::full("payload")),
    )
    .unwrap();
    env.set(
        keys::RESPONSE_BODY,
        Value::ResponseBody(Box::new(recording.clone())),
    )
    .unwrap();
    env.set("host.Custom", "kept".into()).unwrap();
    env
}

#[tokio::test]
async fn run_application_runs_a_feature_based_app_for_an_owin_host() {
    let observed: Shared<Option<String>> = shared();
    let app = {
        let observed = observed.clone();
        from_fn(move |ctx: &mut HttpContext| {
            let observed = observed.clone();
            Box::pin(async move {
                let body = ctx.read_body(1024).await?;
                let request = ctx.request();
                *observed.lock().unwrap() = Some(format!(
                    "{} {}|{}?{} {:?} {}",
                    request.method,
                    request.path_base,
                    request.path,
                    request.query,
                    request.headers.get("content-type"),
                    String::from_utf8_lossy(&body),
                ));
                ctx.response_mut().status = StatusCode::ACCEPTED;
                ctx.response_mut()
                    .headers
                    .insert("x-app", HeaderValue::from_static("1"));
                ctx.write("echo: ").await?;
                ctx.write(body).await
            })
        })
    };
    let recording = RecordingSink::default();
    let mut env = owin_host_request(&recording);
    owin::run_application(&app, &mut env).await.unwrap();

    assert_eq!(
        observed.lock().unwrap().as_deref(),
        Some("POST /app|/submit?draft=1 Some(\"text/plain\") payload")
    );
    // The response keys hold what was sent.
    assert_eq!(
        env.get(keys::RESPONSE_STATUS_CODE).map(seen),
        Some(Seen::Int(202))
    );
    assert_eq!(
        env.get(keys::RESPONSE_REASON_PHRASE).map(seen),
        str("Accepted")
    );
    let sent = env
        .get(keys::RESPONSE_HEADERS)
        .and_then(|v| v.as_headers().cloned())
        .unwrap();
    assert_eq!(sent["x-app"], "1");
    assert_eq!(sent[CONTENT_LENGTH], "13");
    assert_eq!(recording.status(), Some(StatusCode::ACCEPTED));
    assert_eq!(recording.headers().unwrap(), sent);
    assert_eq!(recording.body(), "echo: payload");
    assert_eq!(
        recording.events().last(),
        Some(&SinkEvent::Complete { trailers: false })
    );
    // Keys the host set survive the trip.
    assert_eq!(
        env.get("host.Custom")
            .and_then(|v| v.downcast_ref::<String>())
            .map(String::as_str),
        Some("kept")
    );
    assert!(env.contains_key(keys::RESPONSE_BODY));
    // The lifecycle completed the response: the host cannot write more.
    let events = recording.events().len();
    let err = env
        .write("late")
        .await
        .expect_err("written after completion");
    assert_eq!(err.rule(), Some("response.write-after-complete"), "{err:?}");
    env.flush().await.unwrap();
    assert_eq!(recording.events().len(), events, "{:?}", recording.events());
    assert_eq!(recording.body(), "echo: payload");
}

#[tokio::test]
async fn run_application_reports_the_error_and_answers_500() {
    async fn fails(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut()
            .headers
            .insert("x-dropped", HeaderValue::from_static("1"));
        Err(Error::app_msg("boom"))
    }
    let recording = RecordingSink::default();
    let mut env = owin_host_request(&recording);
    let err = owin::run_application(&fails, &mut env)
        .await
        .expect_err("the app failed");
    assert!(err.is_app(), "{err:?}");
    assert_eq!(
        env.get(keys::RESPONSE_STATUS_CODE).map(seen),
        Some(Seen::Int(500))
    );
    assert_eq!(recording.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    let sent = recording.headers().unwrap();
    assert_eq!(sent[CONTENT_LENGTH], "0");
    assert!(sent.get("x-dropped").is_none());
}

#[tokio::test]
async fn run_application_without_a_response_body_is_a_contract_error() {
    let ran = Arc::new(AtomicBool::new(false));
    let app = {
        let ran = ran.clone();
        from_fn(move |_ctx: &mut HttpContext| {
            ran.store(true, Ordering::SeqCst);
            Box::pin(async { Ok(()) })
        })
    };
    let mut env = Environment::new();
    env.set("host.Custom", "kept".into()).unwrap();
    let err = owin::run_application(&app, &mut env)
        .await
        .expect_err("no owin.ResponseBody");
    assert!(err.is_contract(), "{err:?}");
    assert_eq!(err.rule(), Some("server.required-features"));
    assert!(!ran.load(Ordering::SeqCst), "the app did not run");
    assert!(
        env.get("host.Custom").is_some(),
        "the environment is left as it was"
    );
}
