//! `TowerHost`: axum's own `serve` hosting an Application over real TCP on
//! 127.0.0.1, with the graceful stop and its deadline.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serverbridge::feature::{ServerAddress, ServerAddresses};
use serverbridge::host::{Host, Registry};
use serverbridge::tower::{AppService, Shutdown, TowerHost};
use serverbridge::{HttpContext, Result, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::{timeout, Instant};

/// How long any wait in these tests may take before the test fails.
const BOUND: Duration = Duration::from_secs(10);

async fn axum_serve(listener: TcpListener, app: AppService, shutdown: Shutdown) -> io::Result<()> {
    let router = axum::Router::new().fallback_service(app.infallible());
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn hello(ctx: &mut HttpContext) -> Result<()> {
    ctx.write(format!("hello {}", ctx.request().path)).await
}

fn tcp_address(server: &dyn Server) -> SocketAddr {
    let addresses = server
        .features()
        .get::<ServerAddresses>()
        .expect("published")
        .get();
    match addresses.as_slice() {
        [ServerAddress::Tcp { scheme, addr }] if scheme == "http" => *addr,
        other => panic!("expected one http address, got {other:?}"),
    }
}

/// Sends one request with `Connection: close` and reads the whole reply.
async fn get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut reply = String::new();
    timeout(BOUND, stream.read_to_string(&mut reply))
        .await
        .expect("reply in time")
        .expect("read");
    reply
}

/// Waits until connecting to `addr` is refused.
async fn refused(addr: SocketAddr) {
    timeout(BOUND, async {
        loop {
            match TcpStream::connect(addr).await {
                Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => return,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await
    .expect("new connections are refused");
}

#[tokio::test]
async fn axum_serve_hosts_an_application_on_port_0_and_publishes_the_address() {
    let mut server = TowerHost::new(axum_serve).bind("127.0.0.1:0".parse().unwrap());
    server.start(Arc::new(hello)).await.unwrap();
    let addr = tcp_address(&server);
    assert_ne!(addr.port(), 0, "port 0 is resolved");

    let reply = get(addr, "/a/b?c").await;
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.ends_with("\r\n\r\nhello /a/b"), "{reply}");

    server
        .stop(Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    assert!(server
        .features()
        .get::<ServerAddresses>()
        .unwrap()
        .get()
        .is_empty());
    refused(addr).await;
}

#[tokio::test]
async fn a_target_in_a_form_its_method_does_not_take_is_400_without_the_app() {
    // hyper takes any target `http::Uri` parses; the bridge checks the
    // forms as the built-in server does.
    let mut server = TowerHost::new(axum_serve).bind("127.0.0.1:0".parse().unwrap());
    server.start(Arc::new(hello)).await.unwrap();
    let addr = tcp_address(&server);
    for target in ["*", "a", "http://u@h/p"] {
        let reply = get(addr, target).await;
        assert!(
            reply.starts_with("HTTP/1.1 400 Bad Request\r\n") && !reply.contains("hello"),
            "GET {target}: {reply}"
        );
    }
    assert!(get(addr, "http://t/p").await.ends_with("hello /p"));
    server
        .stop(Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
}

/// An app that tells the test it has the request, then waits for a permit.
fn gated() -> (
    impl serverbridge::Application,
    mpsc::UnboundedReceiver<()>,
    Arc<Semaphore>,
) {
    let (entered, entered_rx) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(0));
    let app_gate = gate.clone();
    let app = serverbridge::application::from_fn(move |ctx: &mut HttpContext| {
        let entered = entered.clone();
        let gate = app_gate.clone();
        Box::pin(async move {
            let _ = entered.send(());
            let _permit = gate.acquire().await.expect("open");
            ctx.write("finished").await
        })
    });
    (app, entered_rx, gate)
}

#[tokio::test]
async fn graceful_stop_lets_the_request_in_flight_finish_and_refuses_new_connections() {
    let (app, mut entered, gate) = gated();
    let mut server = TowerHost::new(axum_serve).bind("127.0.0.1:0".parse().unwrap());
    server.start(Arc::new(app)).await.unwrap();
    let addr = tcp_address(&server);

    let in_flight = tokio::spawn(get(addr, "/slow"));
    timeout(BOUND, entered.recv()).await.unwrap().unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let stop = tokio::spawn(async move {
        let result = server.stop(deadline).await;
        (result, Instant::now())
    });
    refused(addr).await;
    assert!(!stop.is_finished(), "stop waits for the request in flight");

    gate.add_permits(1);
    let reply = timeout(BOUND, in_flight).await.unwrap().unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.ends_with("finished"), "{reply}");

    let (result, stopped_at) = timeout(BOUND, stop).await.unwrap().unwrap();
    result.unwrap();
    assert!(stopped_at < deadline, "stop returned before the deadline");
}

#[tokio::test]
async fn the_deadline_aborts_the_request_in_flight() {
    let (app, mut entered, _gate) = gated();
    let mut server = TowerHost::new(axum_serve).bind("127.0.0.1:0".parse().unwrap());
    server.start(Arc::new(app)).await.unwrap();
    let addr = tcp_address(&server);

    let in_flight = tokio::spawn(get(addr, "/never"));
    timeout(BOUND, entered.recv()).await.unwrap().unwrap();

    let started = Instant::now();
    timeout(
        BOUND,
        server.stop(Instant::now() + Duration::from_millis(200)),
    )
    .await
    .expect("stop ends after the deadline")
    .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    let reply = timeout(BOUND, in_flight).await.unwrap().unwrap();
    assert!(
        !reply.contains("finished"),
        "the aborted request has no complete response: {reply:?}"
    );
}

#[tokio::test]
async fn dropping_the_stop_future_aborts_what_remains_at_once() {
    let (app, mut entered, _gate) = gated();
    let mut server = TowerHost::new(axum_serve).bind("127.0.0.1:0".parse().unwrap());
    server.start(Arc::new(app)).await.unwrap();
    let addr = tcp_address(&server);

    let in_flight = tokio::spawn(get(addr, "/never"));
    timeout(BOUND, entered.recv()).await.unwrap().unwrap();

    let far = Instant::now() + Duration::from_secs(3600);
    let gave_up = timeout(Duration::from_millis(100), server.stop(far)).await;
    assert!(gave_up.is_err(), "the graceful stop was still waiting");
    let reply = timeout(BOUND, in_flight)
        .await
        .expect("the connection ends without waiting for the deadline")
        .unwrap();
    assert!(!reply.contains("finished"), "{reply:?}");
}

#[tokio::test]
async fn a_host_that_fails_makes_stop_return_its_error() {
    let mut server = TowerHost::new(|_listener, _app, _shutdown| async {
        Err(io::Error::other("the host broke"))
    })
    .bind("127.0.0.1:0".parse().unwrap());
    server.start(Arc::new(hello)).await.unwrap();
    let err = server
        .stop(Instant::now() + Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(err.is_io(), "{err:?}");
}

#[test]
fn unix_and_https_addresses_are_configuration_errors() {
    for address in [
        ServerAddress::Unix("/tmp/x.sock".into()),
        ServerAddress::Tcp {
            scheme: "https".into(),
            addr: "127.0.0.1:0".parse().unwrap(),
        },
    ] {
        let err = TowerHost::new(axum_serve)
            .bind_addresses(std::slice::from_ref(&address))
            .unwrap_err();
        assert!(err.is_config(), "{err:?}");
        assert!(err.to_string().contains("http://IP:PORT"), "{err}");
    }
}

#[tokio::test]
async fn the_host_runs_axum_serve_registered_by_name() {
    let mut registry = Registry::new();
    registry.register("axum", |addresses| {
        Ok(Box::new(
            TowerHost::new(axum_serve).bind_addresses(addresses)?,
        ))
    });
    let host = Host::builder()
        .registry(registry)
        .environment(|_| None)
        .server("axum")
        .urls("http://127.0.0.1:0")
        .handle_signals(false)
        .build()
        .unwrap();
    let running = host.start(hello).await.unwrap();
    assert_eq!(running.server_name(), "axum");
    let addr = match running.addresses() {
        [ServerAddress::Tcp { addr, .. }] => *addr,
        other => panic!("{other:?}"),
    };
    let reply = get(addr, "/via-host").await;
    assert!(reply.ends_with("hello /via-host"), "{reply}");
    running.stop().await.unwrap();
    refused(addr).await;
}
