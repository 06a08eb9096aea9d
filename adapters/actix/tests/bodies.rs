//! 16 MiB bodies both ways through `ActixServer` without whole-body
//! buffering.
//!
//! How it is measured: the test counts the bytes one side has produced and
//! the other has consumed; their difference is everything buffered anywhere
//! between them (client, both kernels, actix, the adapter, the core's pipe).
//! Sockets get 64 KiB buffers on both sides (the listener's are inherited
//! by accepted sockets), so the kernel's share is small and fixed. The
//! consuming side first waits, without reading, until the producer stalls:
//! a server that buffered the whole body would never stall it, and the
//! difference would reach 16 MiB. Every sample of the difference, taken at
//! each produced chunk, must stay under [`BOUND_IN_FLIGHT`].

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serverbridge::application::from_fn;
use serverbridge::Server;
use serverbridge_actix::ActixServer;
use support::{connect, listener, BOUND};
use tokio::sync::Semaphore;

const TOTAL: u64 = 16 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;
const SOCKET_BUFFER: u32 = 64 * 1024;
/// The most that may be in flight: 2 MiB, an eighth of the body (socket
/// buffers, hyper's read buffer and a few chunks in actix and the pipe fit
/// well within it).
const BOUND_IN_FLIGHT: u64 = 2 * 1024 * 1024;

/// Counts shared by the test and the app.
#[derive(Default)]
struct Counters {
    produced: AtomicU64,
    consumed: AtomicU64,
    peak: AtomicU64,
}

impl Counters {
    /// Records `n` more produced bytes and samples what is in flight.
    fn produce(&self, n: u64) {
        let produced = self.produced.fetch_add(n, Ordering::SeqCst) + n;
        let in_flight = produced.saturating_sub(self.consumed.load(Ordering::SeqCst));
        self.peak.fetch_max(in_flight, Ordering::SeqCst);
    }

    /// Waits (bounded) until `produced` stops moving: the producer is
    /// held back by backpressure, or done.
    async fn until_stalled(&self) {
        let mut last = u64::MAX;
        let mut still = 0;
        for _ in 0..1000 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now = self.produced.load(Ordering::SeqCst);
            still = if now == last { still + 1 } else { 0 };
            last = now;
            if still == 10 {
                return;
            }
        }
        panic!("the producer never stalled");
    }
}

async fn start(app: impl serverbridge::Application) -> ActixServer {
    let mut server = ActixServer::new()
        .workers(1)
        .listener(listener(Some(SOCKET_BUFFER)));
    server.start(Arc::new(app)).await.expect("start");
    server
}

async fn stop(mut server: ActixServer) {
    server
        .stop(tokio::time::Instant::now() + BOUND)
        .await
        .expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_16_mib_request_body_streams_with_backpressure() {
    let counters = Arc::new(Counters::default());
    let gate = Arc::new(Semaphore::new(0));
    let app = {
        let (counters, gate) = (counters.clone(), gate.clone());
        from_fn(move |ctx| {
            let (counters, gate) = (counters.clone(), gate.clone());
            Box::pin(async move {
                // Not a byte read until the test has seen the client stall.
                let _ = gate.acquire().await;
                let mut n = 0u64;
                while let Some(chunk) = ctx.request_body().chunk().await? {
                    n += chunk.len() as u64;
                    counters
                        .consumed
                        .fetch_add(chunk.len() as u64, Ordering::SeqCst);
                }
                ctx.write(n.to_string()).await
            })
        })
    };
    let server = start(app).await;
    let addr = support::address(&server);

    let producer = counters.clone();
    let chunks = futures::stream::iter(0..TOTAL / CHUNK as u64).map(move |_| {
        producer.produce(CHUNK as u64);
        Ok::<_, std::io::Error>(Frame::data(Bytes::from(vec![b'x'; CHUNK])))
    });
    let request = http::Request::post("/upload")
        .header("host", "test")
        .header("content-length", TOTAL)
        .body(BodyExt::boxed(StreamBody::new(chunks)))
        .unwrap();
    let mut client = connect(addr, Some(SOCKET_BUFFER)).await;
    let exchange = tokio::spawn(async move {
        let response = client.send_request(request).await.expect("response");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, body)
    });

    counters.until_stalled().await;
    let stalled_at = counters.produced.load(Ordering::SeqCst);
    gate.add_permits(1);
    let (status, body) = tokio::time::timeout(BOUND, exchange)
        .await
        .expect("the upload ends in time")
        .unwrap();
    stop(server).await;

    assert_eq!(status, 200);
    assert_eq!(body, TOTAL.to_string());
    let peak = counters.peak.load(Ordering::SeqCst);
    println!("client stalled at {stalled_at} B; peak in flight {peak} B");
    assert!(
        stalled_at < TOTAL,
        "the whole body went out before the app read a byte"
    );
    assert!(peak < BOUND_IN_FLIGHT, "{peak} B were in flight at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_16_mib_response_streams_with_backpressure() {
    let counters = Arc::new(Counters::default());
    let app = {
        let counters = counters.clone();
        from_fn(move |ctx| {
            let counters = counters.clone();
            Box::pin(async move {
                let chunk = Bytes::from(vec![b'y'; CHUNK]);
                for _ in 0..TOTAL / CHUNK as u64 {
                    ctx.write(chunk.clone()).await?;
                    counters.produce(CHUNK as u64);
                }
                Ok(())
            })
        })
    };
    let server = start(app).await;
    let addr = support::address(&server);

    let mut client = connect(addr, Some(SOCKET_BUFFER)).await;
    let request = http::Request::get("/download")
        .header("host", "test")
        .body(support::empty())
        .unwrap();
    let response = tokio::time::timeout(BOUND, client.send_request(request))
        .await
        .expect("head in time")
        .expect("response");
    assert_eq!(response.status(), 200);
    // The client does not read until the app stalls.
    counters.until_stalled().await;
    let stalled_at = counters.produced.load(Ordering::SeqCst);
    let mut body = response.into_body();
    let mut received = 0u64;
    let read = async {
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.expect("body frame").into_data() {
                received += data.len() as u64;
                counters
                    .consumed
                    .fetch_add(data.len() as u64, Ordering::SeqCst);
            }
        }
    };
    tokio::time::timeout(BOUND, read)
        .await
        .expect("the download ends in time");
    stop(server).await;

    assert_eq!(received, TOTAL);
    let peak = counters.peak.load(Ordering::SeqCst);
    println!("app stalled at {stalled_at} B; peak in flight {peak} B");
    assert!(
        stalled_at < TOTAL,
        "the whole response was accepted before the client read a byte"
    );
    assert!(peak < BOUND_IN_FLIGHT, "{peak} B were in flight at once");
}
