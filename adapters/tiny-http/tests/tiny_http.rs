//! `TinyHttpServer` beyond the kit: 16 MiB bodies both ways without
//! buffering them, graceful stop with a request in flight, the same bytes
//! as the built-in server for the same requests, connection info and
//! request ids per peer, and apps that wait on the worker's runtime.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serverbridge::application::from_fn;
use serverbridge::feature::{Address, ServerAddress};
use serverbridge::server::HttpServer;
use serverbridge::{Error, HttpContext, Result, Server};
use serverbridge_tiny_http::{TinyHttpServer, REQUEST_CHUNK};
use tokio::time::Instant;

const MIB: usize = 1 << 20;
/// How long a test waits for the other side before it fails (a bound, not
/// a measurement).
const PATIENCE: Duration = Duration::from_secs(60);

async fn start(app: impl serverbridge::Application) -> (TinyHttpServer, SocketAddr) {
    let mut server = TinyHttpServer::new("127.0.0.1:0".parse().unwrap()).workers(2);
    server.start(Arc::new(app)).await.unwrap();
    let addr = server.local_addr().unwrap();
    (server, addr)
}

fn stop_deadline() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// A 16 MiB request body reaches the app in pieces of at most
/// `REQUEST_CHUNK` bytes (nothing read ahead), and the app sees the first
/// half before the client sends the second: the body is never buffered
/// whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_16_mib_request_body_streams_in_bounded_pieces() {
    let (half_tx, half_rx) = mpsc::channel::<()>();
    let half_tx = Mutex::new(Some(half_tx));
    let largest = Arc::new(AtomicUsize::new(0));
    let seen = largest.clone();
    let app = from_fn(move |ctx: &mut HttpContext| {
        let signal = half_tx.lock().unwrap().take();
        let largest = seen.clone();
        Box::pin(async move {
            let (mut total, mut sum) = (0usize, 0u64);
            while let Some(chunk) = ctx.request_body().chunk().await? {
                largest.fetch_max(chunk.len(), Ordering::Relaxed);
                total += chunk.len();
                sum += chunk.iter().map(|&b| u64::from(b)).sum::<u64>();
                if total >= 8 * MIB {
                    if let Some(signal) = &signal {
                        let _ = signal.send(());
                    }
                }
            }
            ctx.write(format!("{total} {sum}")).await
        })
    });
    let (mut server, addr) = start(app).await;
    let reply = tokio::task::spawn_blocking(move || {
        let piece: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
        let mut stream = connect(addr);
        let head = format!(
            "POST /up HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            16 * MIB
        );
        stream.write_all(head.as_bytes()).unwrap();
        for _ in 0..8 {
            stream.write_all(&piece).unwrap();
        }
        // The app must have read the first half before the second is sent.
        half_rx
            .recv_timeout(PATIENCE)
            .expect("the app never saw the first 8 MiB: the body was buffered");
        for _ in 0..8 {
            stream.write_all(&piece).unwrap();
        }
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        reply
    })
    .await
    .unwrap();
    let expected_sum: u64 = 16 * (0..MIB).map(|i| (i % 251) as u64).sum::<u64>();
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(
        reply.ends_with(&format!("\r\n\r\n{} {expected_sum}", 16 * MIB)),
        "{reply}"
    );
    let largest = largest.load(Ordering::Relaxed);
    assert!(
        largest <= REQUEST_CHUNK,
        "a piece of {largest} bytes: more than {REQUEST_CHUNK} in flight"
    );
    server.stop(stop_deadline()).await.unwrap();
}

/// A 16 MiB response reaches the client as the app writes it: the client
/// has the first 8 MiB before the app writes the second half.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_16_mib_response_streams_before_the_app_finishes() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let opened = gate.clone();
    let app = from_fn(move |ctx: &mut HttpContext| {
        let gate = opened.clone();
        Box::pin(async move {
            let piece = Bytes::from(vec![b'x'; 64 * 1024]);
            for half in 0..2 {
                for _ in 0..128 {
                    ctx.write(piece.clone()).await?;
                }
                if half == 0 {
                    ctx.flush().await?;
                    gate.notified().await;
                }
            }
            Ok(())
        })
    });
    let (mut server, addr) = start(app).await;
    let (got_half_tx, got_half_rx) = mpsc::channel::<()>();
    let client = tokio::task::spawn_blocking(move || {
        let mut stream = connect(addr);
        stream
            .write_all(b"GET /down HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        let mut received = Vec::new();
        let mut told = false;
        loop {
            let n = stream.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            received.extend_from_slice(&buf[..n]);
            if !told && count_x(&received) >= 8 * MIB {
                told = true;
                let _ = got_half_tx.send(());
            }
        }
        received
    });
    tokio::task::spawn_blocking(move || got_half_rx.recv_timeout(PATIENCE))
        .await
        .unwrap()
        .expect("the client never got the first 8 MiB: the response was buffered");
    gate.notify_one();
    let received = client.await.unwrap();
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{}", &text[..200]);
    assert!(text.contains("transfer-encoding: chunked\r\n"));
    let (_, body) = text.split_once("\r\n\r\n").unwrap();
    assert_eq!(decode_chunked(body.as_bytes()).0.len(), 16 * MIB);
    server.stop(stop_deadline()).await.unwrap();
}

fn count_x(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'x').count()
}

/// `stop` closes the listener at once and lets the request in flight end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_finishes_the_request_in_flight() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let started = Arc::new(AtomicU64::new(0));
    let (opened, counter) = (gate.clone(), started.clone());
    let app = from_fn(move |ctx: &mut HttpContext| {
        let (gate, started) = (opened.clone(), counter.clone());
        Box::pin(async move {
            started.fetch_add(1, Ordering::SeqCst);
            gate.notified().await;
            ctx.write("done").await
        })
    });
    let (mut server, addr) = start(app).await;
    let in_flight = tokio::task::spawn_blocking(move || {
        let mut stream = connect(addr);
        stream
            .write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        let mut reply = Vec::new();
        let mut buf = [0u8; 1024];
        // Keep-alive: read until the body is there, not to the end.
        while !reply.ends_with(b"done") {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "closed before the response ended");
            reply.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(reply).unwrap()
    });
    for _ in 0..600 {
        if started.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        started.load(Ordering::SeqCst),
        1,
        "the request never started"
    );
    let stopping = async {
        let result = server.stop(stop_deadline()).await;
        (result, server.addresses().get().is_empty())
    };
    let meanwhile = async {
        let mut refused = false;
        for _ in 0..100 {
            if TcpStream::connect(addr).is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        gate.notify_one();
        refused
    };
    let ((stopped, cleared), refused) = tokio::join!(stopping, meanwhile);
    stopped.unwrap();
    assert!(cleared, "addresses still listed after stop");
    assert!(refused, "new connections were still accepted during stop");
    let reply = in_flight.await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert_eq!(started.load(Ordering::SeqCst), 1);
}

/// The app both servers run.
async fn various(ctx: &mut HttpContext) -> Result<()> {
    if ctx.request().method == http::Method::CONNECT {
        // A 2xx to CONNECT carries no body (RFC 9110 §9.3.6).
        return ctx.write("no tunnel here").await;
    }
    let path = ctx.request().path.clone();
    match path.as_str() {
        "/" => ctx.write("hello").await,
        "/status" => {
            let response = ctx.response_mut();
            response.status = http::StatusCode::CREATED;
            response.headers.append("x-a", "1".parse().unwrap());
            response.headers.append("x-a", "2".parse().unwrap());
            let query = ctx.request().query.clone();
            ctx.write(format!("made {query}")).await
        }
        "/stream" => {
            for i in 0..20 {
                ctx.write(vec![b'a' + i; 10_000]).await?;
                ctx.flush().await?;
            }
            Ok(())
        }
        "/echo" => {
            let body = ctx.read_body(MIB).await?;
            ctx.response_mut()
                .headers
                .insert("content-type", "application/octet-stream".parse().unwrap());
            ctx.write(body).await
        }
        "/fail" => Err(Error::app_msg("boom")),
        "/empty" => {
            ctx.response_mut().status = http::StatusCode::NO_CONTENT;
            Ok(())
        }
        _ => {
            ctx.response_mut().status = http::StatusCode::NOT_FOUND;
            ctx.write("no such thing").await
        }
    }
}

const REQUESTS: [&str; 13] = [
    // Kept alive, then closed: the first response of each pair is one that
    // tiny_http's own `respond` sends (completed in one piece).
    "GET /status?q HTTP/1.1\r\nhost: x\r\n\r\nGET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabcGET /nothing HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    "HEAD / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    "GET /status?x=1&y HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    "GET /stream HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 11\r\nconnection: close\r\n\r\nhello world",
    "POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    "GET /fail HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    "GET /empty HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    "GET /nothing HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    "GET /stream HTTP/1.0\r\nhost: x\r\n\r\n",
    "CONNECT x:443 HTTP/1.1\r\nhost: x:443\r\nconnection: close\r\n\r\n",
];

type Normalised = (String, Vec<String>, Vec<u8>);

/// Each response of a reply: status line, headers in order (names
/// lowercased; `date` and `server` left out) and the decoded body.
fn normalise(mut reply: &[u8]) -> Vec<Normalised> {
    let mut out = Vec::new();
    while !reply.is_empty() && out.len() < 10 {
        let end = reply
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a head");
        let head = String::from_utf8_lossy(&reply[..end]).into_owned();
        reply = &reply[end + 4..];
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().to_owned();
        let headers: Vec<String> = lines
            .map(|l| {
                let (name, value) = l.split_once(':').unwrap();
                format!("{}:{}", name.to_ascii_lowercase(), value)
            })
            .filter(|l| !l.starts_with("date:") && !l.starts_with("server:"))
            .collect();
        let length = headers
            .iter()
            .find_map(|h| h.strip_prefix("content-length: "))
            .map(|v| v.parse::<usize>().unwrap());
        let body = if headers.iter().any(|h| h == "transfer-encoding: chunked") {
            let (body, used) = decode_chunked(reply);
            reply = &reply[used..];
            body
        } else if status.contains(" 204 ") {
            Vec::new()
        } else if let Some(length) = length.filter(|_| !reply.is_empty()) {
            // (a HEAD response has a length and nothing after it)
            let body = reply[..length].to_vec();
            reply = &reply[length..];
            body
        } else {
            let body = reply.to_vec();
            reply = &[];
            body
        };
        out.push((status, headers, body));
    }
    out
}

/// The decoded body and the bytes it took.
fn decode_chunked(all: &[u8]) -> (Vec<u8>, usize) {
    let mut body = all;
    let mut out = Vec::new();
    for _ in 0..100_000 {
        let line_end = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..line_end]).unwrap(), 16).unwrap();
        body = &body[line_end + 2..];
        if size == 0 {
            return (out, all.len() - body.len() + 2);
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
    panic!("too many chunks");
}

fn send_all(addr: SocketAddr) -> Vec<Vec<Normalised>> {
    REQUESTS
        .iter()
        .map(|request| {
            let mut stream = connect(addr);
            stream.write_all(request.as_bytes()).unwrap();
            let mut reply = Vec::new();
            stream.read_to_end(&mut reply).unwrap();
            normalise(&reply)
        })
        .collect()
}

/// The same requests get the same status, headers (but `Date` and
/// `Server`) and bodies from the built-in server and from tiny_http.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_responses_as_the_builtin_server() {
    let mut builtin = HttpServer::new().bind("127.0.0.1:0".parse().unwrap());
    builtin.start(Arc::new(various)).await.unwrap();
    let builtin_addr = match builtin.addresses().get().first() {
        Some(ServerAddress::Tcp { addr, .. }) => *addr,
        other => panic!("no TCP address: {other:?}"),
    };
    let (mut tiny, tiny_addr) = start(various).await;
    let (expected, got) =
        tokio::task::spawn_blocking(move || (send_all(builtin_addr), send_all(tiny_addr)))
            .await
            .unwrap();
    for ((request, expected), got) in REQUESTS.iter().zip(&expected).zip(&got) {
        assert_eq!(expected, got, "for {request:?}");
    }
    // The set covers what it means to: streamed, chunked, HEAD, errors.
    assert_eq!(expected[0].len(), 2);
    assert!(expected[5][0]
        .1
        .contains(&"transfer-encoding: chunked".to_owned()));
    assert!(expected[8][0].0.starts_with("HTTP/1.1 500"));
    assert_eq!(expected[12][0].2, b"", "no body after a 2xx to CONNECT");
    builtin.stop(stop_deadline()).await.unwrap();
    tiny.stop(stop_deadline()).await.unwrap();
}

/// Writes the app's view of the connection: `ConnectionInfo` id, peer and
/// local address, and the request id.
async fn who(ctx: &mut HttpContext) -> Result<()> {
    use serverbridge::feature::{ConnectionInfo, RequestId};
    let info = ctx.features().get::<ConnectionInfo>().cloned();
    let id = ctx
        .features()
        .get::<RequestId>()
        .map(|id| id.as_str().to_owned());
    let Some(info) = info else {
        return Err(Error::app_msg("no ConnectionInfo"));
    };
    ctx.write(format!(
        "{}|{:?}|{:?}|{}",
        info.id,
        info.peer,
        info.local,
        id.unwrap_or_default()
    ))
    .await
}

/// Sends `count` pipelined requests on one connection and returns the
/// bodies of the replies.
fn pipelined_bodies(addr: SocketAddr, count: usize) -> (SocketAddr, Vec<String>) {
    let mut stream = connect(addr);
    let peer = stream.local_addr().unwrap();
    let mut requests = "GET / HTTP/1.1\r\nhost: x\r\n\r\n".repeat(count - 1);
    requests.push_str("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    stream.write_all(requests.as_bytes()).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    let bodies = normalise(&reply)
        .into_iter()
        .map(|(status, _, body)| {
            assert!(status.starts_with("HTTP/1.1 200"), "{status}");
            String::from_utf8(body).unwrap()
        })
        .collect();
    (peer, bodies)
}

/// The connection info the requests of one connection share (kept per peer
/// address, since tiny_http does not expose connections) is that peer's, on
/// every request and every connection; request ids are `<peer>:<n>` (n in
/// eight hex digits, counting the server's requests), each one different.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_info_and_request_ids_follow_the_peer() {
    let (mut server, addr) = start(who).await;
    let (first, second) =
        tokio::task::spawn_blocking(move || (pipelined_bodies(addr, 3), pipelined_bodies(addr, 2)))
            .await
            .unwrap();
    let mut ids = std::collections::HashSet::new();
    for (peer, bodies) in [first, second] {
        assert!(bodies.len() >= 2, "{bodies:?}");
        for body in bodies {
            let parts: Vec<&str> = body.split('|').collect();
            assert_eq!(parts[0], peer.to_string(), "{body}");
            assert_eq!(
                parts[1],
                format!("{:?}", Some(Address::Tcp(peer))),
                "{body}"
            );
            assert_eq!(
                parts[2],
                format!("{:?}", Some(Address::Tcp(addr))),
                "{body}"
            );
            let (connection, n) = parts[3].rsplit_once(':').unwrap();
            assert_eq!(connection, peer.to_string(), "{body}");
            // `RequestId::set_sequence`'s format: eight hex digits.
            assert!(n.len() == 8 && u64::from_str_radix(n, 16).is_ok(), "{body}");
            assert!(ids.insert(parts[3].to_owned()), "request id reused: {body}");
        }
    }
    assert_eq!(ids.len(), 5);
    server.stop(stop_deadline()).await.unwrap();
}

/// An app that waits (a timer, a task it spawns) is driven by the worker's
/// runtime to its end; a pipelined request after it is answered in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_waits_on_the_runtime_is_driven_to_its_end() {
    async fn waits(ctx: &mut HttpContext) -> Result<()> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let task = tokio::spawn(async {
            tokio::task::yield_now().await;
            "from a task"
        });
        let text = task.await.map_err(|e| Error::app_msg(e.to_string()))?;
        ctx.write(text).await
    }
    let (mut server, addr) = start(waits).await;
    let (_, bodies) = tokio::task::spawn_blocking(move || pipelined_bodies(addr, 2))
        .await
        .unwrap();
    assert_eq!(bodies, ["from a task", "from a task"]);
    server.stop(stop_deadline()).await.unwrap();
}

/// A worker reuses a finished request's feature collection for its next
/// request: nothing of one request reaches the next (request headers,
/// response status and headers, trailers, a feature the app inserted), and
/// the server side of the contract holds on each (`Lint`). One worker, so
/// every request goes through the same collection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_feature_collection_carries_nothing_over() {
    use serverbridge::feature::ResponseTrailers;
    use serverbridge::lint::Lint;

    #[derive(Debug)]
    struct Marker;

    async fn leaves_traces(ctx: &mut HttpContext) -> Result<()> {
        let seen = format!(
            "x-first={} marker={} trailers={} status={} headers={}",
            ctx.request().headers.contains_key("x-first"),
            ctx.features().contains::<Marker>(),
            ctx.features()
                .get::<ResponseTrailers>()
                .map_or("none".to_owned(), |t| t.headers.len().to_string()),
            ctx.response().status.as_u16(),
            ctx.response().headers.len(),
        );
        match ctx.request().path.as_str() {
            // A feature of its own: the collection is not reused after it.
            "/dirty" => drop(ctx.features_mut().insert(Marker)),
            // Changes in place: the collection is reused after it.
            "/touch" => {
                if let Some(trailers) = ctx.features_mut().get_mut::<ResponseTrailers>() {
                    trailers.headers.insert("x-trailer", "1".parse().unwrap());
                }
                let response = ctx.response_mut();
                response.status = http::StatusCode::ACCEPTED;
                response.headers.insert("x-left", "1".parse().unwrap());
            }
            _ => {}
        }
        ctx.write(seen).await
    }

    let lint = Lint::new(leaves_traces);
    let report = lint.report();
    let mut server = TinyHttpServer::new("127.0.0.1:0".parse().unwrap()).workers(1);
    server.start(Arc::new(lint)).await.unwrap();
    let addr = server.local_addr().unwrap();
    let reply = tokio::task::spawn_blocking(move || {
        let mut stream = connect(addr);
        stream
            .write_all(
                b"GET /dirty HTTP/1.1\r\nhost: x\r\nx-first: 1\r\n\r\n\
                  GET /clean HTTP/1.0\r\nconnection: keep-alive\r\n\r\n\
                  GET /touch HTTP/1.1\r\nhost: x\r\nx-first: 1\r\n\r\n\
                  GET /clean HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            )
            .unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).unwrap();
        String::from_utf8(reply).unwrap()
    })
    .await
    .unwrap();
    // Four responses; the third is chunked with a trailer, so split on the
    // status lines rather than parse the framing.
    let responses: Vec<&str> = reply.split("HTTP/1.1 ").skip(1).collect();
    assert_eq!(responses.len(), 4, "{reply}");
    let seen = [
        "x-first=true marker=false trailers=0 status=200 headers=0",
        "x-first=false marker=false trailers=none status=200 headers=0",
        "x-first=true marker=false trailers=0 status=200 headers=0",
        "x-first=false marker=false trailers=0 status=200 headers=0",
    ];
    for (response, seen) in responses.iter().zip(seen) {
        assert!(response.contains(seen), "{seen:?} not in {response:?}");
    }
    assert!(responses[2].starts_with("202 "), "{reply}");
    assert!(responses[2].contains("x-trailer: 1\r\n"), "{reply}");
    assert!(responses[3].starts_with("200 "), "{reply}");
    assert!(!responses[3].contains("x-left"), "{reply}");
    assert!(!responses[3].contains("x-trailer"), "{reply}");
    assert!(report.is_clean(), "{:?}", report.violations());
    server.stop(stop_deadline()).await.unwrap();
}

/// A target whose form the method does not take (RFC 9112 §3.2) is refused
/// with 400 and `Connection: close` before the app runs, as on the built-in
/// server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_in_a_form_the_method_does_not_take_get_400() {
    let (mut tiny, addr) = start(various).await;
    let replies = tokio::task::spawn_blocking(move || {
        [
            "GET *",
            "POST *",
            "GET a",
            "GET ..",
            "GET http://:80/",
            "OPTIONS **",
        ]
        .map(|line| {
            let mut stream = connect(addr);
            let head = format!("{line} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
            stream.write_all(head.as_bytes()).unwrap();
            let mut reply = Vec::new();
            stream.read_to_end(&mut reply).unwrap();
            (line, String::from_utf8_lossy(&reply).into_owned())
        })
    })
    .await
    .unwrap();
    for (line, reply) in replies {
        assert!(reply.starts_with("HTTP/1.1 400"), "{line}: {reply}");
        // The client is told to close (tiny_http's own `respond` cannot).
        assert!(
            reply.contains("\r\nconnection: close\r\n"),
            "{line}: {reply}"
        );
    }
    tiny.stop(stop_deadline()).await.unwrap();
}
