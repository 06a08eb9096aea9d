//! OWIN middleware.

use super::*;

fn logging(name: &'static str, log: Shared<Vec<String>>) -> OwinMiddleware {
    Box::new(move |next: BoxAppFunc| -> BoxAppFunc {
        Arc::new(app_func(move |env: &mut Environment| {
            let next = next.clone();
            let log = log.clone();
            Box::pin(async move {
                log.lock().unwrap().push(format!("{name} in"));
                env.headers_mut(keys::RESPONSE_HEADERS)
                    .unwrap()
                    .append("x-order", HeaderValue::from_static(name));
                let result = next.call(env).await;
                log.lock().unwrap().push(format!("{name} out"));
                result
            })
        }))
    })
}

#[tokio::test]
async fn compose_runs_the_first_middleware_outermost() {
    let log: Shared<Vec<String>> = shared();
    let end: BoxAppFunc = {
        let log = log.clone();
        Arc::new(app_func(move |env: &mut Environment| {
            let log = log.clone();
            Box::pin(async move {
                log.lock().unwrap().push("app".to_owned());
                env.write("end").await
            })
        }))
    };
    let pipeline = compose(
        vec![
            logging("first", log.clone()),
            logging("second", log.clone()),
        ],
        end,
    );
    let server = TestServer::new(OwinApp::new(pipeline));
    let response = server.get("/").send().await.unwrap();
    let order: Vec<_> = response.headers().get_all("x-order").iter().collect();
    assert_eq!(order, vec!["first", "second"]);
    assert_eq!(response.text().await.unwrap(), "end");
    assert_eq!(
        *log.lock().unwrap(),
        vec!["first in", "second in", "app", "second out", "first out"]
    );
}

#[tokio::test]
async fn compose_without_middleware_is_the_app() {
    let end: BoxAppFunc = Arc::new(app_func(|env: &mut Environment| {
        Box::pin(async move { env.write("bare").await })
    }));
    let server = TestServer::new(OwinApp::new(compose(Vec::new(), end)));
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "bare");
}

#[tokio::test]
async fn feature_app_func_runs_a_feature_based_app_inside_an_owin_pipeline() {
    let log: Shared<Vec<String>> = shared();
    let feature_app = {
        let log = log.clone();
        from_fn(move |ctx: &mut HttpContext| {
            let log = log.clone();
            Box::pin(async move {
                log.lock().unwrap().push(format!(
                    "feature app sees {} and x-order {:?}",
                    ctx.request().path,
                    ctx.response().headers.get("x-order")
                ));
                ctx.response_mut().status = StatusCode::ACCEPTED;
                ctx.write("from the feature app").await
            })
        })
    };
    let pipeline = compose(
        vec![logging("owin", log.clone())],
        Arc::new(FeatureAppFunc::new(feature_app)),
    );
    let server = TestServer::new(OwinApp::new(pipeline));
    let response = server.get("/mixed").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.headers()["x-order"], "owin");
    assert_eq!(response.text().await.unwrap(), "from the feature app");
    assert_eq!(
        *log.lock().unwrap(),
        vec![
            "owin in",
            "feature app sees /mixed and x-order Some(\"owin\")",
            "owin out"
        ]
    );
}
