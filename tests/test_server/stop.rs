//! `stop` in both modes, as the built-in server's: idle connections close at
//! once, responses in flight say `Connection: close`, and what still runs at
//! the deadline is aborted.

use super::*;
use serverbridge::body::BoxBody;
use serverbridge::feature::RequestLifetime;
use serverbridge::testing::{ClientConnection, Connector, Mode};
use tokio::sync::mpsc;
use tokio::time::Instant;

const BOTH: [Mode; 2] = [Mode::Direct, Mode::Wire];

fn get_root() -> http::Request<BoxBody> {
    http::Request::get("/")
        .header("host", "localhost")
        .body(BoxBody::default())
        .expect("a request")
}

async fn connect(server: &TestServer) -> ClientConnection {
    server
        .features()
        .get::<Connector>()
        .expect("a started TestServer offers a Connector")
        .connect()
        .await
        .expect("connected")
}

#[tokio::test(start_paused = true)]
async fn an_idle_keep_alive_connection_does_not_hold_stop_up() {
    async fn ok(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("ok").await
    }
    for mode in BOTH {
        let mut server = TestServer::new(ok).with_mode(mode);
        let mut client = connect(&server).await;
        let response = client.send(get_root()).await.expect("a response");
        assert_eq!(response.status(), StatusCode::OK, "{mode:?}");
        // The connection stays open, idle, as a pooled client's would.
        let started = Instant::now();
        server
            .stop(started + Duration::from_secs(60))
            .await
            .expect("stopped");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{mode:?}: stop waited {:?} for an idle connection",
            started.elapsed()
        );
        assert!(
            client.send(get_root()).await.is_err(),
            "{mode:?}: the idle connection is closed (or refused) after stop"
        );
    }
}

/// An app that says it started, then waits for `release` before answering.
fn held(
    started: mpsc::UnboundedSender<()>,
    release: Arc<tokio::sync::Notify>,
) -> impl serverbridge::Application {
    from_fn(move |ctx: &mut HttpContext| {
        let started = started.clone();
        let release = release.clone();
        Box::pin(async move {
            let _ = started.send(());
            release.notified().await;
            ctx.write("finished").await
        })
    })
}

#[tokio::test(start_paused = true)]
async fn a_request_in_flight_at_stop_finishes_and_says_connection_close() {
    for mode in BOTH {
        let (started_tx, mut started) = mpsc::unbounded_channel();
        let release = Arc::new(tokio::sync::Notify::new());
        let mut server = TestServer::new(held(started_tx, release.clone())).with_mode(mode);
        let mut client = connect(&server).await;
        let request = tokio::spawn(async move {
            let response = client.send(get_root()).await.expect("a response");
            let close = response.headers().get("connection").cloned();
            let body = http_body_util::BodyExt::collect(response.into_body())
                .await
                .expect("the whole body")
                .to_bytes();
            (close, body)
        });
        started.recv().await.expect("the app started");
        let deadline = Instant::now() + Duration::from_secs(60);
        let (stopped, ()) = tokio::join!(server.stop(deadline), async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            release.notify_one();
        });
        stopped.expect("stopped");
        assert!(
            Instant::now() < deadline,
            "{mode:?}: stop returned once the request ended"
        );
        let (close, body) = request.await.expect("the client task");
        assert_eq!(&body[..], b"finished", "{mode:?}");
        assert_eq!(
            close,
            Some(HeaderValue::from_static("close")),
            "{mode:?}: a response finished during a stop says the connection closes"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn at_the_deadline_a_request_still_running_is_aborted() {
    for mode in BOTH {
        let (lifetimes_tx, mut lifetimes) = mpsc::unbounded_channel::<RequestLifetime>();
        // Hands its lifetime out (as an app handing it to background work
        // does), then never answers.
        let app = from_fn(move |ctx: &mut HttpContext| {
            let lifetimes_tx = lifetimes_tx.clone();
            Box::pin(async move {
                let lifetime = ctx
                    .features()
                    .get::<RequestLifetime>()
                    .expect("a lifetime")
                    .clone();
                let _ = lifetimes_tx.send(lifetime);
                std::future::pending::<()>().await;
                Ok(())
            })
        });
        let mut server = TestServer::new(app).with_mode(mode);
        let mut client = connect(&server).await;
        let request = tokio::spawn(async move { client.send(get_root()).await });
        let lifetime = lifetimes.recv().await.expect("the app started");
        let deadline = Instant::now() + Duration::from_secs(5);
        server.stop(deadline).await.expect("stopped");
        assert!(
            Instant::now() >= deadline,
            "{mode:?}: stop waited for the deadline"
        );
        assert!(
            lifetime.is_cancelled(),
            "{mode:?}: the request's lifetime fired at the deadline"
        );
        let sent = tokio::time::timeout(Duration::from_secs(1), request)
            .await
            .unwrap_or_else(|_| panic!("{mode:?}: the client is not left waiting"))
            .expect("the client task");
        let err = sent.expect_err("no response from an aborted request");
        assert!(err.is_aborted() || err.is_closed(), "{mode:?}: {err:?}");
    }
}
