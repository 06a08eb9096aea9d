//! Real sockets.

use super::*;

pub(crate) const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);

fn deadline(after: Duration) -> Instant {
    Instant::now() + after
}

pub(crate) fn tcp_addresses(server: &HttpServer) -> Vec<std::net::SocketAddr> {
    server
        .addresses()
        .get()
        .into_iter()
        .filter_map(|a| match a {
            ServerAddress::Tcp { addr, .. } => Some(addr),
            _ => None,
        })
        .collect()
}

pub(crate) async fn tcp_client(addr: std::net::SocketAddr) -> Client<tokio::net::TcpStream> {
    let stream = tokio::time::timeout(SOCKET_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connected");
    Client::new(stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_0_becomes_a_real_port_in_server_addresses() {
    let mut server = HttpServer::new().bind("127.0.0.1:0".parse().expect("valid"));
    server.start(Arc::new(echo)).await.expect("started");
    let addrs = tcp_addresses(&server);
    assert_eq!(addrs.len(), 1);
    assert_ne!(addrs[0].port(), 0);
    let from_features = server
        .features()
        .get::<ServerAddresses>()
        .expect("the server lists its addresses")
        .urls();
    assert_eq!(from_features, vec![format!("http://{}", addrs[0])]);

    let mut client = tcp_client(addrs[0]).await;
    client.send(get_close("/real?x=1")).await;
    let response = client.response().await;
    assert_eq!(response.text(), "method=GET path=/real query=x=1 body=0");
    client.expect_eof().await;
    server
        .stop(deadline(SOCKET_TIMEOUT))
        .await
        .expect("stopped");
    assert!(server.addresses().get().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_endpoints_serve_at_once() {
    let ipv6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    let mut server = HttpServer::new().bind("127.0.0.1:0".parse().expect("valid"));
    if ipv6 {
        server = server.bind("[::1]:0".parse().expect("valid"));
    } else {
        eprintln!("no IPv6 loopback here: a second IPv4 endpoint instead");
        server = server.bind("127.0.0.1:0".parse().expect("valid"));
    }
    server.start(Arc::new(echo)).await.expect("started");
    let addrs = tcp_addresses(&server);
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    assert!(addrs[0].is_ipv4());
    assert_eq!(addrs[1].is_ipv6(), ipv6);
    // Both open at once, answered in either order.
    let mut first = tcp_client(addrs[0]).await;
    let mut second = tcp_client(addrs[1]).await;
    second.send(get_close("/second")).await;
    first.send(get_close("/first")).await;
    assert_echo(&second.response().await, "GET", "/second", 0);
    assert_echo(&first.response().await, "GET", "/first", 0);
    server
        .stop(deadline(SOCKET_TIMEOUT))
        .await
        .expect("stopped");
}

#[tokio::test]
async fn a_failing_endpoint_leaves_nothing_listening() {
    let dir = std::env::temp_dir().join(format!("serverbridge-fail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("first.sock");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut server = HttpServer::new()
        .bind_unix(&path)
        .bind(taken.local_addr().expect("address"));
    let err = server.start(Arc::new(echo)).await.unwrap_err();
    assert!(err.is_io(), "{err:?}");
    // The first endpoint was bound, then given back: nobody answers on it.
    assert!(tokio::net::UnixStream::connect(&path).await.is_err());
    assert!(server.addresses().get().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_serves_raw_http() {
    let dir = std::env::temp_dir().join(format!(
        "serverbridge-wire-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("echo.sock");
    let mut server = HttpServer::new().bind_unix(&path);
    server.start(Arc::new(echo)).await.expect("started");
    assert_eq!(
        server.addresses().get(),
        vec![ServerAddress::Unix(path.clone())]
    );
    let stream = tokio::net::UnixStream::connect(&path)
        .await
        .expect("connected");
    let mut client = Client::new(stream);
    client
        .send("POST /unix HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc")
        .await;
    assert_echo(&client.response().await, "POST", "/unix", 3);
    client.send(get_close("/again")).await;
    assert_echo(&client.response().await, "GET", "/again", 0);
    client.expect_eof().await;
    server
        .stop(deadline(SOCKET_TIMEOUT))
        .await
        .expect("stopped");
    assert!(!path.exists(), "the socket file is removed at stop");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An app that signals when a request arrives and answers `/wait` only once
/// released.
fn held_app() -> (
    impl Application,
    mpsc::UnboundedReceiver<()>,
    oneshot::Sender<()>,
) {
    let (started_tx, started_rx) = mpsc::unbounded_channel();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let release_rx = Arc::new(tokio::sync::Mutex::new(Some(release_rx)));
    let app = from_fn(move |ctx: &mut HttpContext| -> BoxFuture<'_, Result<()>> {
        let started = started_tx.clone();
        let release = release_rx.clone();
        Box::pin(async move {
            if ctx.request().path == "/wait" {
                let _ = started.send(());
                let rx = release.lock().await.take();
                if let Some(rx) = rx {
                    let _ = rx.await;
                }
            }
            echo(ctx).await
        })
    });
    (app, started_rx, release_tx)
}

/// A connection attempt after the stop: refused, or closed without a byte.
async fn assert_refused(addr: std::net::SocketAddr) {
    let Ok(Ok(stream)) =
        tokio::time::timeout(SOCKET_TIMEOUT, tokio::net::TcpStream::connect(addr)).await
    else {
        return;
    };
    let mut client = Client::new(stream);
    client.send(get("/late")).await;
    client.expect_eof().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_finishes_the_request_in_flight_with_connection_close() {
    let (app, mut started, release) = held_app();
    let mut server = HttpServer::new().bind("127.0.0.1:0".parse().expect("valid"));
    server.start(Arc::new(app)).await.expect("started");
    let addr = tcp_addresses(&server)[0];

    let mut idle = tcp_client(addr).await;
    idle.send(get("/idle")).await;
    assert_echo(&idle.response().await, "GET", "/idle", 0);
    // One that carried several requests waits differently (it keeps its
    // state for a grace second): it must close at once too.
    let mut kept = tcp_client(addr).await;
    for path in ["/1", "/2", "/3"] {
        kept.send(get(path)).await;
        assert_echo(&kept.response().await, "GET", path, 0);
    }

    let mut busy = tcp_client(addr).await;
    busy.send(get("/wait")).await;
    tokio::time::timeout(SOCKET_TIMEOUT, started.recv())
        .await
        .expect("the request reached the app")
        .expect("signalled");

    let stopper = tokio::spawn(async move {
        let result = server.stop(deadline(SOCKET_TIMEOUT)).await;
        (server, result)
    });
    // The idle connections close at once; new connections are refused.
    idle.expect_eof().await;
    kept.expect_eof().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_refused(addr).await;
    assert!(
        !stopper.is_finished(),
        "stop waits for the request in flight"
    );

    release.send(()).expect("the app waits");
    let response = busy.response().await;
    assert_echo(&response, "GET", "/wait", 0);
    assert!(response.closes(), "{}", escape(&response.raw));
    busy.expect_eof().await;

    let (server, result) = tokio::time::timeout(SOCKET_TIMEOUT, stopper)
        .await
        .expect("stop returns once the request is done")
        .expect("no panic");
    result.expect("stopped");
    assert!(server.addresses().get().is_empty());
}

async fn stuck(_: &mut HttpContext) -> Result<()> {
    std::future::pending::<()>().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stop_deadline_aborts_a_stuck_request() {
    // The app hands its lifetime out (to background work, say), then never
    // answers: the abort drops its future, and fires the lifetime first.
    let (lifetimes_tx, mut lifetimes) = mpsc::unbounded_channel();
    let app = from_fn(move |ctx: &mut HttpContext| -> BoxFuture<'_, Result<()>> {
        let lifetimes_tx = lifetimes_tx.clone();
        Box::pin(async move {
            let lifetime = ctx.features().get::<RequestLifetime>().cloned();
            let _ = lifetimes_tx.send(lifetime.expect("a lifetime"));
            stuck(ctx).await
        })
    });
    let mut server = HttpServer::new().bind("127.0.0.1:0".parse().expect("valid"));
    server.start(Arc::new(app)).await.expect("started");
    let addr = tcp_addresses(&server)[0];
    let mut client = tcp_client(addr).await;
    client.send(get("/")).await;
    let lifetime = lifetimes.recv().await.expect("the app ran");

    let grace = Duration::from_millis(200);
    let start = Instant::now();
    tokio::time::timeout(SOCKET_TIMEOUT, server.stop(deadline(grace)))
        .await
        .expect("stop returns soon after its deadline")
        .expect("stopped");
    assert!(start.elapsed() >= grace, "stop waited for the deadline");
    assert!(lifetime.is_cancelled(), "the request's lifetime fired");
    client.expect_eof().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_concurrent_connections_a_connection_is_closed_at_accept() {
    let limits = Limits {
        max_concurrent_connections: Some(1),
        ..Limits::default()
    };
    let mut server = HttpServer::new()
        .bind("127.0.0.1:0".parse().expect("valid"))
        .limits(limits);
    server.start(Arc::new(echo)).await.expect("started");
    let addr = tcp_addresses(&server)[0];

    let mut first = tcp_client(addr).await;
    first.send(get("/first")).await;
    assert_echo(&first.response().await, "GET", "/first", 0);

    let mut second = tcp_client(addr).await;
    second.send(get("/second")).await;
    second.expect_eof().await;

    first.send(get_close("/first-again")).await;
    assert_echo(&first.response().await, "GET", "/first-again", 0);
    first.expect_eof().await;

    // The slot frees once the first connection is gone.
    let mut served = false;
    for _ in 0..50 {
        let mut third = tcp_client(addr).await;
        third.send(get_close("/third")).await;
        let bytes = third.read_until_close().await;
        if !bytes.is_empty() {
            assert!(
                bytes.starts_with(b"HTTP/1.1 200 OK\r\n"),
                "{}",
                escape(&bytes)
            );
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "a new connection is served once the first closed");
    server
        .stop(deadline(SOCKET_TIMEOUT))
        .await
        .expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_on_one_socket_leaves_the_server_serving() {
    let mut server = HttpServer::new().bind("127.0.0.1:0".parse().expect("valid"));
    server
        .start(Arc::new(panics_on_request))
        .await
        .expect("started");
    let addr = tcp_addresses(&server)[0];
    let mut other = tcp_client(addr).await;
    let mut client = tcp_client(addr).await;
    client.send(get_close("/panic")).await;
    let response = client.response().await;
    assert_eq!(response.status, 500);
    assert_eq!(response.header("content-length"), Some("0"));
    client.expect_eof().await;
    other.send(get_close("/still-here")).await;
    assert_echo(&other.response().await, "GET", "/still-here", 0);
    server
        .stop(deadline(SOCKET_TIMEOUT))
        .await
        .expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_concurrent_upgraded_connections_an_upgrade_gets_503() {
    let limits = Limits {
        max_concurrent_upgraded_connections: Some(1),
        ..Limits::default()
    };
    let mut server = HttpServer::new()
        .bind("127.0.0.1:0".parse().expect("valid"))
        .limits(limits);
    server.start(Arc::new(upgrade_echo)).await.expect("started");
    let addr = tcp_addresses(&server)[0];
    let upgrade = "GET /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n";

    let mut first = tcp_client(addr).await;
    first.send(upgrade).await;
    assert!(first
        .response()
        .await
        .raw
        .starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    first.send("held").await;
    assert_eq!(first.exact(4).await, b"held");

    // The one slot is taken: the next upgrade is refused before its head.
    let mut second = tcp_client(addr).await;
    second.send(upgrade).await;
    let refused = second.response().await;
    assert!(
        refused
            .raw
            .starts_with(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n"),
        "{}",
        escape(&refused.raw)
    );

    // Once the first upgraded connection is gone, its slot is free again.
    first.io.shutdown().await.expect("half-close");
    first.expect_eof().await;
    let mut upgraded = false;
    for _ in 0..50 {
        let mut third = tcp_client(addr).await;
        third.send(upgrade).await;
        if third
            .response()
            .await
            .raw
            .starts_with(b"HTTP/1.1 101 Switching Protocols\r\n")
        {
            upgraded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(upgraded, "the slot frees once the upgraded connection ends");
    server
        .stop(deadline(SOCKET_TIMEOUT))
        .await
        .expect("stopped");
}

#[tokio::test(start_paused = true)]
async fn a_body_slower_than_the_minimum_rate_gets_408_after_the_grace() {
    let (mut client, _server) = connect(echo, Limits::default());
    let start = Instant::now();
    client
        .send("POST /slow HTTP/1.1\r\nHost: h\r\nContent-Length: 10000\r\n\r\n")
        .await;
    client.send("x".repeat(100)).await;
    let response = client.response().await;
    assert_eq!(response.status, 408, "{}", escape(&response.raw));
    assert!(response.closes(), "{}", escape(&response.raw));
    client.expect_eof().await;
    // 100 bytes at 240 B/s is well inside the 5 s grace: the grace decides.
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_body_at_the_minimum_rate_is_read_to_its_end() {
    let (mut client, _server) = connect(echo, Limits::default());
    client
        .send("POST /steady HTTP/1.1\r\nHost: h\r\nContent-Length: 3000\r\n\r\n")
        .await;
    // 300 bytes a second for ten seconds: above 240 B/s all along.
    for _ in 0..10 {
        client.send("y".repeat(300)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_echo(&client.response().await, "POST", "/steady", 3000);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_is_dropped_at_the_minimum_response_rate() {
    let (seen_tx, seen_rx) = oneshot::channel();
    let seen_tx = Arc::new(std::sync::Mutex::new(Some(seen_tx)));
    let app = from_fn(move |ctx| {
        let seen_tx = seen_tx.clone();
        Box::pin(async move {
            let chunk = bytes::Bytes::from(vec![b'z'; 64 * 1024]);
            let mut outcome = Ok(());
            // 16 MiB: far more than the transport buffers.
            for _ in 0..256 {
                if let Err(err) = ctx.write(chunk.clone()).await {
                    outcome = Err(err);
                    break;
                }
            }
            let timed_out = matches!(&outcome, Err(err) if err.is_timeout());
            if let Some(tx) = seen_tx.lock().unwrap().take() {
                let _ = tx.send(timed_out);
            }
            outcome
        })
    });
    let (mut client, _server) = connect(app, Limits::default());
    let start = Instant::now();
    client.send(get("/big")).await;
    // The client never reads: the server's writes stall.
    let timed_out = seen_rx.await.expect("the app finished");
    assert!(timed_out, "the app's write failed with a timeout");
    // Budget for a 64 KiB flush at 240 B/s is about 273 s, not forever.
    let waited = start.elapsed();
    assert!(waited < Duration::from_secs(600), "{waited:?}");
    assert!(waited >= Duration::from_secs(200), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn an_app_can_turn_off_the_body_rate_for_its_request() {
    let app = from_fn(|ctx| {
        Box::pin(async move {
            ctx.features()
                .get::<serverbridge::feature::MinRequestBodyDataRate>()
                .expect("the built-in server provides it")
                .set(None);
            echo(ctx).await
        })
    });
    let (mut client, _server) = connect(app, Limits::default());
    client
        .send("POST /trickle HTTP/1.1\r\nHost: h\r\nContent-Length: 20\r\n\r\n")
        .await;
    // One byte every 10 s: far below 240 B/s, long past the 5 s grace.
    for _ in 0..20 {
        client.send("t").await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    assert_echo(&client.response().await, "POST", "/trickle", 20);
}

#[tokio::test(start_paused = true)]
async fn an_app_can_turn_off_the_response_rate_for_its_response() {
    let (done_tx, done_rx) = oneshot::channel::<bool>();
    let done_tx = Arc::new(std::sync::Mutex::new(Some(done_tx)));
    let app = from_fn(move |ctx| {
        let done_tx = done_tx.clone();
        Box::pin(async move {
            ctx.features()
                .get::<serverbridge::feature::MinResponseDataRate>()
                .expect("the built-in server provides it")
                .set(None);
            let chunk = bytes::Bytes::from(vec![b'z'; 64 * 1024]);
            let mut failed = false;
            for _ in 0..64 {
                if ctx.write(chunk.clone()).await.is_err() {
                    failed = true;
                    break;
                }
            }
            if let Some(tx) = done_tx.lock().unwrap().take() {
                let _ = tx.send(failed);
            }
            Ok(())
        })
    });
    let (mut client, _server) = connect(app, Limits::default());
    client.send(get("/slow-reader")).await;
    // With the rate on, the writes would time out after about 273 s.
    let outcome = tokio::time::timeout(Duration::from_secs(3600), done_rx).await;
    assert!(
        outcome.is_err(),
        "the app is still writing after an hour: {outcome:?}"
    );
}

/// Inserts a marker feature, and reports whether one was already there (left
/// over from an earlier request on the same connection).
async fn marks(ctx: &mut HttpContext) -> Result<()> {
    #[derive(Debug)]
    struct Marker;
    let leaked = ctx.features().contains::<Marker>();
    ctx.features_mut().insert(Marker);
    ctx.write(if leaked { "leaked" } else { "clean" }).await
}

#[tokio::test(start_paused = true)]
async fn features_an_app_adds_never_reach_the_next_request() {
    for version in ["HTTP/1.1", "HTTP/1.0"] {
        let (mut client, _server) = connect(marks, Limits::default());
        for _ in 0..3 {
            client
                .send(format!(
                    "GET / {version}\r\nHost: h\r\nConnection: keep-alive\r\n\r\n"
                ))
                .await;
            let response = client.response().await;
            assert_eq!(response.text(), "clean", "{version}");
        }
    }
}
