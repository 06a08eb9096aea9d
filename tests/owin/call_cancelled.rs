//! Owin.CallCancelled.

use super::*;

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn waits_for_cancellation(log: Shared<Vec<String>>, flush_first: bool) -> impl AppFunc {
    app_func(move |env: &mut Environment| {
        let log = log.clone();
        Box::pin(async move {
            if flush_first {
                env.flush().await?;
            }
            let Some(ValueRef::Cancellation(token)) = env.get(keys::CALL_CANCELLED) else {
                panic!("owin.CallCancelled is a Cancellation");
            };
            log.lock()
                .unwrap()
                .push(format!("waiting cancelled={}", token.is_cancelled()));
            token.cancelled().await;
            log.lock().unwrap().push("cancelled".to_owned());
            Err(Error::aborted("the client went away"))
        })
    })
}

#[tokio::test]
async fn call_cancelled_fires_when_the_client_aborts() {
    let log: Shared<Vec<String>> = shared();
    let server = TestServer::new(OwinApp::new(waits_for_cancellation(log.clone(), false)));
    let request = server.get("/wait");
    let client = request.lifetime();
    let abort = {
        let log = log.clone();
        async move {
            wait_until("the AppFunc to wait", || !log.lock().unwrap().is_empty()).await;
            client.abort();
        }
    };
    let (result, ()) = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::join!(request.send(), abort)
    })
    .await
    .expect("the AppFunc saw the cancellation");
    // The app failed before the head: whatever the client gets, it is not a 200.
    if let Ok(response) = result {
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    // The client is gone at once; the AppFunc sees the cancellation as it
    // runs on.
    wait_until("the AppFunc to see the cancellation", || {
        log.lock().unwrap().len() >= 2
    })
    .await;
    assert_eq!(
        *log.lock().unwrap(),
        vec!["waiting cancelled=false", "cancelled"]
    );
}

#[tokio::test]
async fn call_cancelled_fires_when_the_client_drops_the_response() {
    let log: Shared<Vec<String>> = shared();
    let server = TestServer::new(OwinApp::new(waits_for_cancellation(log.clone(), true)));
    let response = server.get("/stream").send().await.unwrap();
    assert_eq!(response.status(), 200);
    drop(response);
    wait_until("owin.CallCancelled", || log.lock().unwrap().len() == 2).await;
    assert_eq!(
        *log.lock().unwrap(),
        vec!["waiting cancelled=false", "cancelled"]
    );
}
