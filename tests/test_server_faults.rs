//! Client faults on demand, in both TestServer modes, and what the app sees.

#![cfg(feature = "test-util")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serverbridge::testing::{Fault, Mode, TestServer};
use serverbridge::{Application, Error, HttpContext, Result};

/// Reads the body chunk by chunk and records what happened.
#[derive(Clone, Default)]
struct Observer {
    log: Arc<Mutex<Vec<String>>>,
}

impl Observer {
    fn push(&self, entry: String) {
        self.log.lock().unwrap().push(entry);
    }
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

fn kind(err: &Error) -> &'static str {
    if err.is_closed() {
        "closed"
    } else if err.is_timeout() {
        "timeout"
    } else if err.is_app() {
        "app"
    } else {
        "other"
    }
}

impl Application for Observer {
    fn process_request<'a>(&'a self, ctx: &'a mut HttpContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let log = self.clone();
            ctx.on_completed(move |_| {
                log.push("completed".into());
                Ok(())
            });
            let mut sizes = Vec::new();
            loop {
                match ctx.request_body().chunk().await {
                    Ok(Some(chunk)) => sizes.push(chunk.len()),
                    Ok(None) => break,
                    Err(err) => {
                        self.push(format!("read {sizes:?}"));
                        self.push(format!("error {}", kind(&err)));
                        self.push(format!("lifetime fired {}", ctx.is_aborted()));
                        return Err(err);
                    }
                }
            }
            self.push(format!("read {sizes:?}"));
            ctx.write("ok").await
        })
    }

    fn dispose_context(&self, _ctx: &mut HttpContext, error: Option<&Error>) {
        self.push(format!("dispose {}", error.map_or("none", kind)));
    }
}

async fn run(mode: Mode, fault: Fault, body: &'static str) -> Vec<String> {
    let observer = Observer::default();
    let server = TestServer::new(observer.clone()).with_mode(mode);
    let _ = server.post("/").body(body).fault(fault).send().await;
    // The lifecycle ends after the app: give it the moment it needs.
    for _ in 0..100 {
        if observer.log().iter().any(|e| e.starts_with("dispose")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    observer.log()
}

const BOTH: [Mode; 2] = [Mode::Direct, Mode::Wire];

#[tokio::test]
async fn a_client_gone_mid_body() {
    for mode in BOTH {
        let log = run(mode, Fault::AbortAfterBodyBytes(3), "hello world").await;
        assert_eq!(
            log,
            [
                "read [3]",
                "error closed",
                "lifetime fired true",
                "completed",
                "dispose closed"
            ],
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn a_client_gone_before_the_body() {
    for mode in BOTH {
        let log = run(mode, Fault::AbortBeforeBody, "hello").await;
        assert_eq!(
            log,
            [
                "read []",
                "error closed",
                "lifetime fired true",
                "completed",
                "dispose closed"
            ],
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_then_eof() {
    for mode in BOTH {
        let log = run(mode, Fault::TruncatedBody { declared: 100 }, "abc").await;
        assert_eq!(log.len(), 5, "{mode:?}: {log:?}");
        assert_eq!(log[0], "read [3]", "{mode:?}");
        assert_eq!(
            &log[1..],
            [
                "error closed",
                "lifetime fired true",
                "completed",
                "dispose closed"
            ],
            "{mode:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_trickled_body_arrives_in_small_pieces() {
    let every = Duration::from_secs(1);
    let log = run(Mode::Direct, Fault::Trickle { bytes: 2, every }, "abcdefg").await;
    assert_eq!(log, ["read [2, 2, 2, 1]", "completed", "dispose none"]);
}

#[tokio::test(start_paused = true)]
async fn a_body_trickled_below_the_minimum_rate_times_out_on_the_wire() {
    // One byte every 10 s is far below 240 B/s: past the 5 s grace, the
    // built-in server stops waiting.
    let every = Duration::from_secs(10);
    let log = run(Mode::Wire, Fault::Trickle { bytes: 1, every }, "abcdef").await;
    assert_eq!(
        log,
        [
            "read []",
            "error timeout",
            "lifetime fired false",
            "completed",
            "dispose timeout"
        ]
    );
}

/// Writes up to 16 MiB in 64 KiB pieces, counting what `write` accepted.
fn firehose(accepted: Arc<std::sync::atomic::AtomicUsize>) -> impl Application {
    serverbridge::application::from_fn(move |ctx| {
        let accepted = accepted.clone();
        Box::pin(async move {
            let piece = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
            for _ in 0..256 {
                ctx.write(piece.clone()).await?;
                accepted.fetch_add(piece.len(), std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        })
    })
}

#[tokio::test]
async fn a_client_that_stops_reading_gets_backpressure_not_unbounded_buffering() {
    for mode in BOTH {
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let server = TestServer::new(firehose(accepted.clone())).with_mode(mode);
        // The head arrives; the client then never reads the body.
        let response = server.get("/").send().await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let buffered = accepted.load(std::sync::atomic::Ordering::Relaxed);
        // Direct: the 64 KiB pipe. Wire: the server's 64 KiB write buffer,
        // the 64 KiB in-memory link and the client's read buffer. Far below
        // the 16 MiB the app would write.
        assert!(
            buffered <= 1024 * 1024,
            "{mode:?}: {buffered} bytes accepted"
        );
        assert!(buffered >= 64 * 1024, "{mode:?}: {buffered} bytes accepted");
        drop(response);
    }
}

#[tokio::test]
async fn a_half_close_after_the_request_still_gets_the_response() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::new(serverbridge::application::from_fn(|ctx| {
        Box::pin(async move {
            // Like Kestrel and hyper, the server treats the FIN as the client
            // going away, and still sends what the app writes.
            ctx.lifetime().unwrap().cancelled().await;
            ctx.write("still here").await
        })
    }));
    let mut io = server.raw().unwrap();
    io.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        .await
        .unwrap();
    io.shutdown().await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), io.read_to_end(&mut reply))
        .await
        .expect("the server answers and closes")
        .unwrap();
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("still here"), "{text}");
}

/// Streams pieces until a write fails; records the error, the lifetime and
/// the lifecycle's end.
fn streamer(observer: Observer) -> impl Application {
    struct Streamer(Observer);
    impl Application for Streamer {
        fn process_request<'a>(&'a self, ctx: &'a mut HttpContext) -> BoxFuture<'a, Result<()>> {
            Box::pin(async move {
                let log = self.0.clone();
                ctx.on_completed(move |_| {
                    log.push("completed".into());
                    Ok(())
                });
                for _ in 0..10_000 {
                    let written = async {
                        ctx.write(vec![b'x'; 16 * 1024]).await?;
                        ctx.flush().await
                    };
                    if let Err(err) = written.await {
                        self.0.push(format!("write error {}", kind(&err)));
                        self.0.push(format!("lifetime fired {}", ctx.is_aborted()));
                        return Err(err);
                    }
                }
                self.0.push("wrote everything".into());
                Ok(())
            })
        }
        fn dispose_context(&self, _ctx: &mut HttpContext, error: Option<&Error>) {
            self.0
                .push(format!("dispose {}", error.map_or("none", kind)));
        }
    }
    Streamer(observer)
}

async fn disposed(observer: &Observer) -> Vec<String> {
    for _ in 0..500 {
        if observer.log().iter().any(|e| e.starts_with("dispose")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    observer.log()
}

#[tokio::test]
async fn a_client_gone_mid_response() {
    for mode in BOTH {
        let observer = Observer::default();
        let server = TestServer::new(streamer(observer.clone())).with_mode(mode);
        let mut response = server.get("/").send().await.unwrap();
        // The client reads the first piece, then goes away.
        let first = response.chunk().await.unwrap().unwrap();
        assert!(!first.is_empty());
        drop(response);
        let log = disposed(&observer).await;
        assert_eq!(
            log,
            [
                "write error closed",
                "lifetime fired true",
                "completed",
                "dispose closed"
            ],
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn a_disconnect_while_the_app_is_still_running() {
    for mode in BOTH {
        let observer = Observer::default();
        let seen = observer.clone();
        let app = serverbridge::application::from_fn(move |ctx| {
            let seen = seen.clone();
            Box::pin(async move {
                seen.push("running".into());
                // The app works on, without reading or writing, until the
                // client is gone.
                let lifetime = ctx.lifetime().cloned().unwrap();
                let fired =
                    tokio::time::timeout(Duration::from_secs(5), lifetime.cancelled()).await;
                seen.push(format!("lifetime fired {}", fired.is_ok()));
                Ok(())
            })
        });
        let server = TestServer::new(app).with_mode(mode);
        let request = server.get("/");
        let client = request.lifetime();
        let sent = tokio::spawn(async move {
            // The client disconnects once the app is running.
            for _ in 0..500 {
                if !observer.log().is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            client.abort();
            observer
        });
        let outcome = request.send().await;
        let observer = sent.await.unwrap();
        let outcome = outcome.map(|r| r.status());
        assert!(
            outcome
                .as_ref()
                .is_err_and(|e| e.is_aborted() || e.is_closed()),
            "{mode:?}: {outcome:?}"
        );
        for _ in 0..500 {
            if observer.log().len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            observer.log(),
            ["running", "lifetime fired true"],
            "{mode:?}"
        );
    }
}

/// What `waits_without_reading` recorded, once it has (bounded).
async fn outcome(fired: &Mutex<Option<bool>>) -> Option<bool> {
    for _ in 0..400 {
        if let Some(seen) = *fired.lock().unwrap() {
            return Some(seen);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// Waits (at most 2 s) for the request's lifetime without reading the body;
/// reports whether it fired.
fn waits_without_reading(fired: Arc<Mutex<Option<bool>>>) -> impl Application {
    serverbridge::application::from_fn(move |ctx: &mut HttpContext| {
        let fired = fired.clone();
        Box::pin(async move {
            let lifetime = ctx.lifetime().cloned().expect("a lifetime");
            let ok = tokio::time::timeout(Duration::from_secs(2), lifetime.cancelled())
                .await
                .is_ok();
            *fired.lock().unwrap() = Some(ok);
            ctx.write("late").await
        }) as BoxFuture<'_, Result<()>>
    })
}

#[tokio::test]
async fn a_client_gone_fires_the_lifetime_of_an_app_that_does_not_read_in_both_modes() {
    // A real server notices the closed connection whether or not the app
    // reads the body.
    for mode in [Mode::Direct, Mode::Wire] {
        for fault in [Fault::AbortBeforeBody, Fault::AbortAfterBodyBytes(2)] {
            let fired = Arc::new(Mutex::new(None));
            let server = TestServer::new(waits_without_reading(fired.clone())).with_mode(mode);
            let sent = server.post("/").body("some body").fault(fault).send().await;
            assert!(
                sent.is_err(),
                "{mode:?} {fault:?}: no response for a client gone"
            );
            let seen = outcome(&fired).await;
            assert_eq!(seen, Some(true), "{mode:?} {fault:?}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_trickled_body_keeps_its_trailers() {
    async fn body_and_trailers(ctx: &mut HttpContext) -> Result<()> {
        let trailers = ctx
            .features()
            .get::<serverbridge::feature::RequestTrailers>()
            .cloned();
        let body = ctx.read_body(1 << 20).await?;
        let trailers = trailers.and_then(|t| t.get()).unwrap_or_default();
        let sum = trailers
            .get("x-sum")
            .map(|v| v.to_str().unwrap().to_owned());
        ctx.write(format!("len={} x-sum={sum:?}", body.len())).await
    }
    for mode in [Mode::Direct, Mode::Wire] {
        let server = TestServer::new(body_and_trailers).with_mode(mode);
        let text = server
            .post("/")
            .header("trailer", "x-sum")
            .body("abcdef")
            .trailer("x-sum", "42")
            .fault(Fault::Trickle {
                bytes: 2,
                every: Duration::from_millis(10),
            })
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(text, r#"len=6 x-sum=Some("42")"#, "{mode:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_client_gone_reads_no_response_and_a_cut_response_fails_alike_in_both_modes() {
    async fn reads_then_answers(ctx: &mut HttpContext) -> Result<()> {
        let _ = ctx.read_body(1024).await;
        ctx.write("answer").await
    }
    async fn fails_after_head(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("partial").await?;
        ctx.flush().await?;
        Err(Error::app_msg("boom"))
    }
    for mode in [Mode::Direct, Mode::Wire] {
        for fault in [Fault::AbortBeforeBody, Fault::AbortAfterBodyBytes(3)] {
            let server = TestServer::new(reads_then_answers).with_mode(mode);
            let sent = server
                .post("/")
                .body("0123456789")
                .fault(fault)
                .send()
                .await;
            let err = sent.expect_err("no response for a client that went away");
            assert!(err.is_aborted(), "{mode:?} {fault:?}: {err}");
        }
        let server = TestServer::new(fails_after_head).with_mode(mode);
        let response = server.get("/").send().await.unwrap();
        let err = response.bytes().await.unwrap_err();
        assert!(err.is_aborted(), "{mode:?}: {err:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_client_gone_without_a_body_to_send_is_a_half_close_in_both_modes() {
    // The request is whole: a server cannot tell the close from a client
    // that half-closes and waits for its response, so the lifetime does not
    // fire (as on the built-in server and hyper); the client reads nothing.
    for mode in [Mode::Direct, Mode::Wire] {
        for fault in [Fault::AbortBeforeBody, Fault::AbortAfterBodyBytes(3)] {
            let fired = Arc::new(Mutex::new(None));
            let server = TestServer::new(waits_without_reading(fired.clone())).with_mode(mode);
            let sent = server.get("/").fault(fault).send().await;
            assert!(sent.unwrap_err().is_aborted(), "{mode:?} {fault:?}");
            let seen = outcome(&fired).await;
            assert_eq!(
                seen,
                Some(false),
                "{mode:?} {fault:?}: the lifetime did not fire"
            );
        }
    }
}
