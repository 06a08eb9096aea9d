//! Stopping `ActixServer` with a request in flight: the graceful stop waits
//! for it and the client gets the whole response; at the deadline a request
//! that does not finish is aborted and `stop` still returns.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use serverbridge::application::from_fn;
use serverbridge::Server;
use serverbridge_actix::ActixServer;
use support::{try_connect, BOUND};
use tokio::sync::Semaphore;
use tokio::time::{timeout, Instant};

/// An app that signals `started`, waits for `gate`, then answers "done".
/// `aborted` records whether its RequestLifetime fired.
fn gated(
    started: Arc<Semaphore>,
    gate: Arc<Semaphore>,
    aborted: Arc<AtomicBool>,
) -> impl serverbridge::Application {
    from_fn(move |ctx| {
        let (started, gate, aborted) = (started.clone(), gate.clone(), aborted.clone());
        Box::pin(async move {
            let lifetime = ctx.lifetime().cloned().expect("RequestLifetime");
            let watch = tokio::spawn(async move {
                lifetime.cancelled().await;
                aborted.store(true, Ordering::SeqCst);
            });
            started.add_permits(1);
            let _ = gate.acquire().await;
            watch.abort();
            ctx.write("done").await
        })
    })
}

async fn get(addr: std::net::SocketAddr) -> Result<(u16, String), String> {
    let mut client = try_connect(addr, None).await.map_err(|e| e.to_string())?;
    let request = http::Request::get("/slow")
        .header("host", "test")
        .body(support::empty())
        .unwrap();
    let response = client
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_lets_the_in_flight_request_finish() {
    let (started, gate) = (Arc::new(Semaphore::new(0)), Arc::new(Semaphore::new(0)));
    let aborted = Arc::new(AtomicBool::new(false));
    let mut server = ActixServer::new()
        .workers(1)
        .bind("127.0.0.1:0".parse().unwrap());
    server
        .start(Arc::new(gated(
            started.clone(),
            gate.clone(),
            aborted.clone(),
        )))
        .await
        .unwrap();
    let addr = support::address(&server);
    let in_flight = tokio::spawn(get(addr));
    let _ = timeout(BOUND, started.acquire())
        .await
        .expect("the app started");

    let stopping = tokio::spawn(async move {
        let result = server.stop(Instant::now() + BOUND).await;
        (server, result)
    });
    // While the app is held, stop cannot be done: the request is in flight.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !stopping.is_finished(),
        "stop returned with a request in flight"
    );
    // New connections are no longer served.
    let refused = timeout(Duration::from_secs(2), get(addr)).await;
    assert!(
        !matches!(refused, Ok(Ok(_))),
        "a new request was answered during the stop: {refused:?}"
    );

    gate.add_permits(1);
    let reply = timeout(BOUND, in_flight)
        .await
        .expect("reply in time")
        .unwrap();
    assert_eq!(reply, Ok((200, "done".to_owned())));
    let (server, result) = timeout(BOUND, stopping)
        .await
        .expect("stop in time")
        .unwrap();
    result.expect("stop");
    assert!(
        !aborted.load(Ordering::SeqCst),
        "the finished request was aborted"
    );
    assert!(
        server.addresses().get().is_empty(),
        "addresses listed after stop"
    );
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the listener is still open after stop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_deadline_the_in_flight_request_is_aborted() {
    let (started, gate) = (Arc::new(Semaphore::new(0)), Arc::new(Semaphore::new(0)));
    let aborted = Arc::new(AtomicBool::new(false));
    let mut server = ActixServer::new()
        .workers(1)
        .bind("127.0.0.1:0".parse().unwrap());
    server
        .start(Arc::new(gated(started.clone(), gate, aborted.clone())))
        .await
        .unwrap();
    let addr = support::address(&server);
    let in_flight = tokio::spawn(get(addr));
    let _ = timeout(BOUND, started.acquire())
        .await
        .expect("the app started");

    // The gate never opens: the deadline passes with the request in flight.
    timeout(
        BOUND,
        server.stop(Instant::now() + Duration::from_millis(200)),
    )
    .await
    .expect("stop returns after the deadline")
    .expect("stop");
    let reply = timeout(BOUND, in_flight)
        .await
        .expect("client done")
        .unwrap();
    assert!(
        reply.is_err(),
        "the aborted request got a response: {reply:?}"
    );
    assert!(
        aborted.load(Ordering::SeqCst),
        "RequestLifetime did not fire"
    );
}
