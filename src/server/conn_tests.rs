//! Connection-loop tests that need the crate's insides (the hard-stop
//! token, the cached date): byte-level behaviour over an in-memory duplex.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{serve, ConnConfig};
use crate::feature::ConnectionInfo;
use crate::server::{HttpServer, Limits};
use crate::{Features, HttpContext, Result};

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";

/// Serves `io` to its end as the built-in server would, default limits.
async fn serve_with_default_limits(io: tokio::io::DuplexStream, app: crate::BoxApplication) {
    HttpServer::serve_connection(io, ConnectionInfo::default(), app, Limits::default()).await;
}

/// Plants a marker date mid-poll: a head encoded later in the same poll
/// carries it only if the connection read the clock once, at the start
/// of the poll, and not per response.
async fn plants_a_date(ctx: &mut HttpContext) -> Result<()> {
    crate::http1::plant_stale_date();
    ctx.write("ok").await
}

/// Serves one `GET /` with `Connection: close` to `app` on a connection
/// with `info`; the response, read to the close.
async fn one_closing_get(app: crate::BoxApplication, info: ConnectionInfo) -> String {
    let (mut client, server) = tokio::io::duplex(4096);
    let conn = tokio::spawn(HttpServer::serve_connection(
        server,
        info,
        app,
        Limits::default(),
    ));
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    client.read_to_string(&mut response).await.unwrap();
    conn.await.unwrap();
    response
}

#[tokio::test]
async fn heads_encoded_in_one_poll_share_the_date_read_when_it_began() {
    let response = one_closing_get(Arc::new(plants_a_date), ConnectionInfo::default()).await;
    let planted = format!("\r\ndate: {}\r\n", crate::http1::STALE_DATE);
    assert!(response.contains(&planted), "{response}");
}

#[tokio::test(start_paused = true)]
async fn a_failed_write_stops_the_requests_buffered_behind_it() {
    // Request 1 answers at once (its response is held for the batch),
    // request 2 waits, and meanwhile the held response fails to go out:
    // the client is gone. Request 2 finishes anyway; request 3, already
    // buffered, must not run.
    struct SecondWaits(AtomicUsize);
    impl crate::Application for SecondWaits {
        fn process_request<'a>(
            &'a self,
            ctx: &'a mut HttpContext,
        ) -> futures::future::BoxFuture<'a, Result<()>> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if n == 1 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                ctx.write("done").await
            })
        }
    }
    let app = Arc::new(SecondWaits(AtomicUsize::new(0)));
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    client.write_all(&GET.repeat(3)).await.unwrap();
    drop(client);
    serve_with_default_limits(server, app.clone()).await;
    assert_eq!(app.0.load(Ordering::SeqCst), 2);
}

/// Serves one request whose response cannot go out (the client never
/// reads), then stops hard: the connection must end.
async fn hard_stop_with_an_unread_response<A: crate::Application>(app: A) {
    // No minimum response rate: only the hard stop can end the wait.
    let limits = Limits {
        min_response_data_rate: None,
        ..Limits::default()
    };
    let config = Arc::new(ConnConfig::new(limits, Arc::new(Features::new())));
    let abort = config.abort.clone();
    // A pipe far smaller than the response.
    let (mut client, server) = tokio::io::duplex(1024);
    client.write_all(GET).await.unwrap();
    let conn = tokio::spawn(serve(server, Features::new(), Arc::new(app), config));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!conn.is_finished(), "the response cannot have gone out");
    abort.cancel();
    tokio::time::timeout(Duration::from_secs(60), conn)
        .await
        .expect("the connection ends at the hard stop")
        .unwrap();
    drop(client);
}

#[tokio::test(start_paused = true)]
async fn a_hard_stop_ends_a_flush_after_the_app_finished() {
    // Small enough to be buffered, and flushed by the connection loop.
    async fn small(ctx: &mut HttpContext) -> Result<()> {
        ctx.write(vec![b'x'; 8 * 1024]).await
    }
    hard_stop_with_an_unread_response(small).await;
}

#[tokio::test(start_paused = true)]
async fn a_hard_stop_ends_a_write_while_the_app_runs() {
    // Large enough to be written straight through, by the app's write.
    async fn large(ctx: &mut HttpContext) -> Result<()> {
        ctx.write(vec![b'x'; 32 * 1024]).await
    }
    hard_stop_with_an_unread_response(large).await;
}

#[tokio::test(start_paused = true)]
async fn a_hard_stop_sends_nothing_more_of_the_cut_off_response() {
    // HTTP/1.0 without a length: the body ends with the connection, so
    // bytes sent after the stop, then the close, would look complete.
    async fn cut_off(ctx: &mut HttpContext) -> Result<()> {
        ctx.start().await?;
        ctx.write("partial").await?;
        std::future::pending().await
    }
    let config = Arc::new(ConnConfig::new(
        Limits::default(),
        Arc::new(Features::new()),
    ));
    let abort = config.abort.clone();
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    client.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let conn = tokio::spawn(serve(server, Features::new(), Arc::new(cut_off), config));
    tokio::time::sleep(Duration::from_secs(1)).await;
    abort.cancel();
    conn.await.unwrap();
    let mut received = String::new();
    client.read_to_string(&mut received).await.unwrap();
    assert!(!received.contains("partial"), "{received}");
}

#[tokio::test]
async fn a_body_kept_past_its_request_never_reads_the_next_ones() {
    // Request 1's app keeps its unread body; request 2's app reads that kept
    // body first, then its own. The kept one must fail, not hand out
    // request 2's bytes, and request 2 must get all of its own.
    struct KeepsTheFirstBody {
        kept: std::sync::Mutex<Option<crate::body::RequestBody>>,
        kept_read: std::sync::Mutex<Option<Result<bytes::Bytes>>>,
    }
    impl crate::Application for KeepsTheFirstBody {
        fn process_request<'a>(
            &'a self,
            ctx: &'a mut HttpContext,
        ) -> futures::future::BoxFuture<'a, Result<()>> {
            Box::pin(async move {
                let kept = self.kept.lock().unwrap().take();
                match kept {
                    None => {
                        let body = std::mem::take(ctx.request_body());
                        *self.kept.lock().unwrap() = Some(body);
                        ctx.write("kept").await
                    }
                    Some(mut body) => {
                        let read = body.read_to_end(1024).await;
                        *self.kept_read.lock().unwrap() = Some(read);
                        let own = ctx.read_body(1024).await?;
                        ctx.write(own).await
                    }
                }
            })
        }
    }
    let app = Arc::new(KeepsTheFirstBody {
        kept: std::sync::Mutex::new(None),
        kept_read: std::sync::Mutex::new(None),
    });
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    client
        .write_all(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nfirst\
              POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecond",
        )
        .await
        .unwrap();
    serve_with_default_limits(server, app.clone()).await;
    let mut received = String::new();
    client.read_to_string(&mut received).await.unwrap();
    assert!(received.ends_with("\r\n\r\nsecond"), "{received}");
    let kept_read = app.kept_read.lock().unwrap().take().expect("request 2 ran");
    let err = kept_read.expect_err("the kept body is over");
    assert!(err.is_closed(), "{err}");
}

/// Records, for every event, the span it happened in (name and `id`).
#[derive(Default)]
struct SpanRecorder {
    spans: std::sync::Mutex<Vec<(String, String)>>,
    current: std::sync::Mutex<Vec<u64>>,
    events: std::sync::Mutex<Vec<Option<(String, String)>>>,
}

impl tracing::Subscriber for SpanRecorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        struct Id(String);
        impl tracing::field::Visit for Id {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "id" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut id = Id(String::new());
        span.record(&mut id);
        let mut spans = self.spans.lock().unwrap();
        spans.push((span.metadata().name().to_owned(), id.0));
        tracing::span::Id::from_u64(spans.len() as u64)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {
        let current = self.current.lock().unwrap().last().copied();
        let span = current.map(|n| self.spans.lock().unwrap()[n as usize - 1].clone());
        self.events.lock().unwrap().push(span);
    }
    fn enter(&self, span: &tracing::span::Id) {
        self.current.lock().unwrap().push(span.into_u64());
    }
    fn exit(&self, _: &tracing::span::Id) {
        self.current.lock().unwrap().pop();
    }
}

#[test]
fn the_apps_events_happen_inside_the_connection_span_when_a_subscriber_listens() {
    async fn logs(ctx: &mut HttpContext) -> Result<()> {
        tracing::info!("in the app");
        ctx.write("ok").await
    }
    let recorder = Arc::new(SpanRecorder::default());
    let dispatch = tracing::Dispatch::from(recorder.clone());
    tracing::dispatcher::with_default(&dispatch, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let info = ConnectionInfo {
            id: "conn-7".to_owned(),
            ..ConnectionInfo::default()
        };
        let response = runtime.block_on(one_closing_get(Arc::new(logs), info));
        assert!(response.ends_with("ok"), "{response}");
    });
    let events = recorder.events.lock().unwrap();
    let app_event = Some(("connection".to_owned(), "conn-7".to_owned()));
    assert!(events.contains(&app_event), "{events:?}");
}

/// A wait polled when the task is out of its cooperative budget gets
/// `Pending` from the timer without the timer taking its waker: the next
/// wait must poll the timer again, or the timeout wakes nobody (a silent
/// client would hold the connection until the server stops).
#[tokio::test(start_paused = true)]
async fn an_idle_timer_polled_out_of_budget_still_fires_on_time() {
    use std::future::poll_fn;
    use std::task::Poll;
    let start = tokio::time::Instant::now();
    let deadline = start + Duration::from_secs(5);
    let mut timer = super::Timer {
        sleep: std::pin::pin!(tokio::time::sleep_until(start)),
        armed: None,
    };
    timer.reset(deadline);
    // One poll that spends the task's whole budget, then waits.
    let refused = poll_fn(|cx| {
        while let Poll::Ready(progress) = tokio::task::coop::poll_proceed(cx) {
            progress.made_progress();
        }
        Poll::Ready(super::poll_deadline(&mut timer, deadline, cx))
    })
    .await;
    assert!(refused.is_pending());
    assert!(
        timer.armed.is_none(),
        "armed by a poll that registered nothing"
    );
    let waited = tokio::time::timeout(
        Duration::from_secs(60),
        poll_fn(|cx| super::poll_deadline(&mut timer, deadline, cx)),
    )
    .await;
    assert!(waited.is_ok());
    assert_eq!(tokio::time::Instant::now(), deadline, "woken late");
}
