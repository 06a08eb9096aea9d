//! The Host: configuration and its errors, start and stop on TCP port 0 and
//! on a unix socket, the deadline it hands the server, and the examples run
//! as real processes stopped by signals.
//!
//! The process tests run `examples/echo.rs` and `examples/hello.rs` (their
//! `run` function, everything but the one-line `main`) in a child process:
//! this test binary re-executes itself with `child_process` as the only test
//! and the example's arguments in an environment variable. That child is a
//! real process with its own signal handlers, built from the example's
//! current source by this very `cargo test`, so `cargo test --test host`
//! works alone and never runs a stale example binary.
#![allow(
    clippy::duplicate_mod,
    reason = "the echo and hello examples included here each include examples/support/servers.rs"
)]

#[path = "../examples/echo.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example is a binary; here its main is unused"
)]
mod echo_example;
#[path = "../examples/hello.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example is a binary; here its main is unused"
)]
mod hello_example;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serverbridge::feature::{ServerAddress, ServerAddresses};
use serverbridge::host::{Host, HostBuilder, Registry, DEFAULT_SHUTDOWN_TIMEOUT};
use serverbridge::{BoxApplication, Error, Features, HttpContext, Result, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long any wait in these tests may take before the test fails.
const BOUND: Duration = Duration::from_secs(10);

/// A builder that sees only `env`, never the process environment.
fn builder(env: &[(&str, &str)]) -> HostBuilder {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Host::builder()
        .environment(move |key| env.get(key).cloned())
        .handle_signals(false)
}

fn build_error(builder: HostBuilder) -> Error {
    match builder.build() {
        Ok(host) => panic!("expected an error, built {host:?}"),
        Err(err) => err,
    }
}

// ---- configuration -------------------------------------------------------

#[test]
fn defaults_are_builtin_on_127_0_0_1_5000_with_a_30_s_deadline() {
    let host = builder(&[]).build().unwrap();
    assert_eq!(host.server_name(), "builtin");
    assert_eq!(
        host.addresses(),
        [ServerAddress::parse("http://127.0.0.1:5000").unwrap()]
    );
    assert_eq!(host.shutdown_timeout(), Duration::from_secs(30));
    assert_eq!(DEFAULT_SHUTDOWN_TIMEOUT, Duration::from_secs(30));
}

/// A registry with a second server, to tell which one was picked.
fn registry_with_other() -> Registry {
    let mut registry = Registry::new();
    registry.register("other", |addresses| {
        Ok(Box::new(
            serverbridge::server::HttpServer::new().bind_addresses(addresses)?,
        ))
    });
    registry
}

#[test]
fn the_environment_is_read() {
    let host = builder(&[
        ("SERVERBRIDGE_SERVER", "other"),
        (
            "SERVERBRIDGE_URLS",
            " http://127.0.0.1:0 ; unix:/tmp/sb.sock ;",
        ),
        ("SERVERBRIDGE_SHUTDOWN_TIMEOUT", "2.5"),
    ])
    .registry(registry_with_other())
    .build()
    .unwrap();
    assert_eq!(host.server_name(), "other");
    assert_eq!(
        host.addresses(),
        [
            ServerAddress::parse("http://127.0.0.1:0").unwrap(),
            ServerAddress::Unix("/tmp/sb.sock".into()),
        ]
    );
    assert_eq!(host.shutdown_timeout(), Duration::from_millis(2500));
}

#[test]
fn builder_settings_and_arguments_override_the_environment() {
    let env = [
        ("SERVERBRIDGE_SERVER", "other"),
        ("SERVERBRIDGE_URLS", "http://127.0.0.1:1"),
        ("SERVERBRIDGE_SHUTDOWN_TIMEOUT", "7"),
    ];
    let host = builder(&env)
        .registry(registry_with_other())
        .server("builtin")
        .urls("http://[::1]:0")
        .shutdown_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    assert_eq!(host.server_name(), "builtin");
    assert_eq!(host.addresses()[0].to_string(), "http://[::1]:0");
    assert_eq!(host.shutdown_timeout(), Duration::from_secs(3));

    let host = builder(&env)
        .registry(registry_with_other())
        .args([
            "--server",
            "builtin",
            "--urls=unix:/tmp/a.sock",
            "--shutdown-timeout",
            "0.25",
        ])
        .build()
        .unwrap();
    assert_eq!(host.server_name(), "builtin");
    assert_eq!(
        host.addresses(),
        [ServerAddress::Unix("/tmp/a.sock".into())]
    );
    assert_eq!(host.shutdown_timeout(), Duration::from_millis(250));
}

#[test]
fn empty_environment_values_count_as_unset() {
    let host = builder(&[("SERVERBRIDGE_SERVER", ""), ("SERVERBRIDGE_URLS", "  ")])
        .build()
        .unwrap();
    assert_eq!(host.server_name(), "builtin");
    assert_eq!(host.addresses()[0].to_string(), "http://127.0.0.1:5000");
}

#[test]
fn an_unknown_server_is_a_config_error_naming_the_registered_ones() {
    // The message says where the name came from, as for the URLs.
    for (builder, source) in [
        (
            builder(&[]).registry(registry_with_other()).server("nginx"),
            "the --server setting",
        ),
        (
            builder(&[("SERVERBRIDGE_SERVER", "nginx")]).registry(registry_with_other()),
            "SERVERBRIDGE_SERVER",
        ),
    ] {
        let err = build_error(builder);
        assert!(err.is_config(), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("\"nginx\""), "{text}");
        assert!(text.contains("available: builtin, other"), "{text}");
        assert!(text.contains(source), "{text}");
        assert!(
            !text.contains(if source == "SERVERBRIDGE_SERVER" {
                "--server"
            } else {
                "SERVERBRIDGE_SERVER"
            }),
            "only the source it came from: {text}"
        );
    }
}

#[test]
fn malformed_urls_are_config_errors_naming_the_source_and_the_forms() {
    for bad in [
        "ftp://127.0.0.1:21",
        "https://127.0.0.1:443",
        "http://example.com:80",
        "http://127.0.0.1",
        "127.0.0.1:80",
        "http://127.0.0.1:0;unix:",
    ] {
        let err = build_error(builder(&[]).urls(bad));
        assert!(err.is_config(), "{bad}: {err:?}");
        let text = err.to_string();
        assert!(text.contains("--urls"), "{text}");
        assert!(
            text.contains("http://IP:PORT") && text.contains("unix:/PATH"),
            "{text}"
        );

        let err = build_error(builder(&[("SERVERBRIDGE_URLS", bad)]));
        assert!(err.to_string().contains("SERVERBRIDGE_URLS"), "{err}");
    }
    let err = build_error(builder(&[]).urls(" ; "));
    assert!(err.is_config());
    assert!(err.to_string().contains("no URL given"), "{err}");
}

#[test]
fn bad_arguments_and_timeouts_are_config_errors() {
    let cases: [(HostBuilder, &str); 5] = [
        (
            builder(&[]).args(["--port", "80"]),
            "unknown argument \"--port\"",
        ),
        (builder(&[]).args(["--urls"]), "--urls needs a value"),
        (
            builder(&[]).args(["--shutdown-timeout", "soon"]),
            "expected a number of seconds",
        ),
        (
            builder(&[("SERVERBRIDGE_SHUTDOWN_TIMEOUT", "-1")]),
            "SERVERBRIDGE_SHUTDOWN_TIMEOUT",
        ),
        (
            builder(&[]).urls("unix:/tmp/x.sock").registry({
                let mut registry = Registry::empty();
                registry.register("builtin", |_| Err(Error::config("the factory said no")));
                registry
            }),
            "the factory said no",
        ),
    ];
    for (builder, expected) in cases {
        let err = build_error(builder);
        assert!(err.is_config(), "{err:?}");
        assert!(err.to_string().contains(expected), "{err}");
    }
}

#[test]
fn registering_a_name_again_replaces_it_and_keeps_its_place() {
    let mut registry = registry_with_other();
    registry.register("builtin", |_| Err(Error::config("replaced")));
    assert_eq!(registry.names(), ["builtin", "other"]);
    let err = registry.build("builtin", &[]).err().expect("replaced");
    assert!(err.to_string().contains("replaced"));
    assert!(Registry::empty().names().is_empty());
}

// ---- start and stop, in process -------------------------------------------

async fn hello(ctx: &mut HttpContext) -> Result<()> {
    ctx.write("hello").await
}

/// Starts the built-in server on `urls` (one TCP address) with `app`;
/// returns the running host and the bound address.
async fn start_tcp<A: serverbridge::Application>(
    urls: &str,
    app: A,
) -> (serverbridge::host::RunningHost, SocketAddr) {
    let running = builder(&[])
        .urls(urls)
        .build()
        .unwrap()
        .start(app)
        .await
        .unwrap();
    let addr = match running.addresses() {
        [ServerAddress::Tcp { addr, .. }] => *addr,
        other => panic!("{other:?}"),
    };
    assert_ne!(addr.port(), 0);
    (running, addr)
}

/// One `GET /` with `Connection: close`; the whole reply.
async fn get_close(addr: SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    reply
}

#[tokio::test]
async fn start_on_port_0_serves_logs_the_real_port_and_stops() {
    // A body no other test's server sends (they run in parallel and bind
    // port 0 too).
    async fn port_zero(ctx: &mut HttpContext) -> Result<()> {
        ctx.write("served by the port-0 test").await
    }
    let (running, addr) = start_tcp("http://127.0.0.1:0", port_zero).await;
    assert_eq!(running.urls(), [format!("http://{addr}")]);

    let reply = get_close(addr).await;
    assert!(
        reply.ends_with("\r\n\r\nserved by the port-0 test"),
        "{reply}"
    );

    tokio::time::timeout(BOUND, running.stop())
        .await
        .unwrap()
        .unwrap();
    // Nothing of ours answers now. The freed port may already belong to
    // another test's server (tests run in parallel and bind port 0), so a
    // connection is not proof of failure; our answer would be.
    if let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await {
        let _ = stream
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await;
        let mut reply = String::new();
        let _ = tokio::time::timeout(BOUND, stream.read_to_string(&mut reply)).await;
        assert!(
            !reply.contains("served by the port-0 test"),
            "stopped: new connections are refused"
        );
    }
}

#[tokio::test]
async fn the_wildcard_url_binds_every_interface_and_serves_on_loopback() {
    // ASP.NET Core's `http://+:PORT` (and `*`): bound as 0.0.0.0, reached
    // here through 127.0.0.1 only.
    let (running, addr) = start_tcp("HTTP://+:0", hello).await;
    assert!(addr.ip().is_unspecified(), "{addr}");
    let loopback = SocketAddr::from(([127, 0, 0, 1], addr.port()));
    let reply = get_close(loopback).await;
    assert!(reply.ends_with("\r\n\r\nhello"), "{reply}");
    tokio::time::timeout(BOUND, running.stop())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn start_on_a_unix_socket_serves_and_stop_removes_the_socket() {
    let path = std::env::temp_dir().join(format!("serverbridge-host-{}.sock", std::process::id()));
    let running = builder(&[])
        .urls(format!("unix:{}", path.display()))
        .build()
        .unwrap()
        .start(hello)
        .await
        .unwrap();
    assert_eq!(running.addresses(), [ServerAddress::Unix(path.clone())]);

    let mut stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    assert!(reply.ends_with("hello"), "{reply}");

    running
        .run_until(std::future::ready(()))
        .await
        .expect("stops");
    assert!(!path.exists(), "the socket file is removed");
}

#[tokio::test]
async fn a_port_in_use_fails_start_with_an_io_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = builder(&[])
        .urls(format!("http://{}", taken.local_addr().unwrap()))
        .build()
        .unwrap()
        .start(hello)
        .await
        .unwrap_err();
    assert!(err.is_io(), "{err:?}");
}

/// A server that records the deadline it is given and keeps going until it.
struct DeadlineServer {
    features: Features,
    deadline: Arc<Mutex<Option<tokio::time::Instant>>>,
}

#[async_trait]
impl Server for DeadlineServer {
    fn features(&self) -> &Features {
        &self.features
    }
    async fn start(&mut self, _app: BoxApplication) -> Result<()> {
        Ok(())
    }
    async fn stop(&mut self, deadline: tokio::time::Instant) -> Result<()> {
        *self.deadline.lock().unwrap() = Some(deadline);
        tokio::time::sleep_until(deadline).await;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn the_server_gets_the_shutdown_timeout_as_its_deadline() {
    let deadline = Arc::new(Mutex::new(None));
    let seen = deadline.clone();
    let mut registry = Registry::empty();
    registry.register("recorder", move |_| {
        let addresses = ServerAddresses::default();
        let mut features = Features::new();
        features.insert(addresses);
        Ok(Box::new(DeadlineServer {
            features,
            deadline: seen.clone(),
        }))
    });
    let running = builder(&[("SERVERBRIDGE_SHUTDOWN_TIMEOUT", "12")])
        .registry(registry)
        .server("recorder")
        .build()
        .unwrap()
        .start(hello)
        .await
        .unwrap();
    assert!(running.addresses().is_empty(), "it publishes none");

    let (trigger, triggered) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(running.run_until(async move {
        let _ = triggered.await;
    }));
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert!(!run.is_finished(), "serves until the shutdown future");
    let asked = tokio::time::Instant::now();
    trigger.send(()).unwrap();
    run.await.unwrap().unwrap();
    assert_eq!(
        deadline.lock().unwrap().expect("stop called"),
        asked + Duration::from_secs(12)
    );
    assert_eq!(tokio::time::Instant::now(), asked + Duration::from_secs(12));
}

// ---- the examples as processes ---------------------------------------------

const CHILD: &str = "SERVERBRIDGE_TEST_CHILD";
const CHILD_ARGS: &str = "SERVERBRIDGE_TEST_CHILD_ARGS";

/// Not a test: the entry point of the child processes below.
#[test]
#[ignore = "the child-process entry point of the process tests"]
fn child_process() {
    let Ok(example) = std::env::var(CHILD) else {
        return;
    };
    let args: Vec<String> = std::env::var(CHILD_ARGS)
        .unwrap_or_default()
        .split('\u{1f}')
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let code = match example.as_str() {
        "echo" => runtime.block_on(echo_example::run(args)),
        "hello" => runtime.block_on(hello_example::run(args)),
        other => panic!("no example {other}"),
    };
    std::process::exit(code);
}

/// A running example process; killed if the test fails first.
struct Example {
    child: Child,
    stdout: mpsc::Receiver<String>,
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_example(example: &str, args: &[&str], env: &[(&str, &str)]) -> Example {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command
        .args(["child_process", "--exact", "--ignored", "--nocapture"])
        .env(CHILD, example)
        .env(CHILD_ARGS, args.join("\u{1f}"))
        .env_remove("SERVERBRIDGE_SERVER")
        .env_remove("SERVERBRIDGE_URLS")
        .env_remove("SERVERBRIDGE_SHUTDOWN_TIMEOUT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("spawn the example");
    let stdout = child.stdout.take().expect("piped");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    Example {
        child,
        stdout: received,
    }
}

impl Example {
    /// Reads stdout up to the "listening on http://..." line.
    fn listening(&self) -> SocketAddr {
        loop {
            let line = self
                .stdout
                .recv_timeout(BOUND)
                .expect("a 'listening on' line in time");
            if let Some(url) = line.strip_prefix("listening on http://") {
                return url.parse().expect("an address");
            }
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name}");
    }

    /// Waits for the exit (bounded); returns the code and stderr.
    fn exit(&mut self, within: Duration) -> (Option<i32>, String) {
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                start.elapsed() < within,
                "the example did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        (status.code(), stderr)
    }

    /// The stdout lines after "listening on", once the example exited: up
    /// to the end of its output (the reader thread may still be passing the
    /// last lines on when the exit is seen), within `BOUND`.
    fn rest_of_stdout(&self) -> Vec<String> {
        let start = std::time::Instant::now();
        let mut lines = Vec::new();
        loop {
            let left = BOUND.saturating_sub(start.elapsed());
            match self.stdout.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return lines,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("stdout did not end within {BOUND:?}: {lines:?}")
                }
            }
        }
    }
}

/// Starts a POST whose body the test holds back: sends the head with
/// `Expect: 100-continue`, waits for `100 Continue` (so the echo app is
/// reading the body: the request is in the app) and sends 5 of 10 bytes.
fn request_in_flight(addr: SocketAddr) -> std::net::TcpStream {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(BOUND)).unwrap();
    stream
        .write_all(
            b"POST /in-flight HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n",
        )
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).expect("100 Continue in time"), 1);
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 100 Continue\r\n"), "{head}");
    stream.write_all(b"hello").unwrap();
    stream
}

/// Waits until the example refuses new connections: its graceful stop began.
fn wait_refused(addr: SocketAddr) {
    let start = std::time::Instant::now();
    loop {
        match std::net::TcpStream::connect(addr) {
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => return,
            _ => {
                assert!(start.elapsed() < BOUND, "still accepting after the signal");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

#[test]
fn sigterm_stops_the_echo_example_gracefully_with_a_request_in_flight() {
    for server in ["builtin", "axum", "hyper", "actix"] {
        let mut example = spawn_example(
            "echo",
            &["--server", server, "--urls", "http://127.0.0.1:0"],
            &[("SERVERBRIDGE_SHUTDOWN_TIMEOUT", "30")],
        );
        let addr = example.listening();
        let mut stream = request_in_flight(addr);

        example.signal("TERM");
        wait_refused(addr);
        stream.write_all(b"world").unwrap();
        let mut reply = String::new();
        stream
            .read_to_string(&mut reply)
            .expect("the whole response");
        assert!(
            reply.starts_with("HTTP/1.1 200 OK\r\n"),
            "{server}: {reply}"
        );
        assert!(
            reply.ends_with("method=POST path=/in-flight query= body=10"),
            "{server}: {reply}"
        );

        let (code, stderr) = example.exit(BOUND);
        assert_eq!(code, Some(0), "{server}: {stderr}");
        assert_eq!(example.rest_of_stdout(), ["stopped"], "{server}");
    }
}

#[test]
fn a_second_signal_stops_at_once() {
    for server in ["builtin", "axum", "hyper", "actix"] {
        let mut example = spawn_example(
            "echo",
            &[
                "--server",
                server,
                "--urls",
                "http://127.0.0.1:0",
                "--shutdown-timeout",
                "600",
            ],
            &[],
        );
        let addr = example.listening();
        let mut stream = request_in_flight(addr);

        example.signal("TERM");
        wait_refused(addr);
        example.signal("INT");
        let (code, stderr) = example.exit(Duration::from_secs(5));
        assert_eq!(code, Some(1), "{server}: {stderr}");
        assert!(
            stderr.contains("SIGINT during the graceful stop"),
            "{server}: {stderr}"
        );
        let mut rest = String::new();
        let _ = stream.read_to_string(&mut rest);
        assert!(!rest.contains("200 OK"), "{server}: {rest}");
    }
}

#[test]
fn bad_settings_exit_with_code_2_and_name_the_valid_choices() {
    /// Arguments, environment, and what stderr must say.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 3] = [
        (
            &["--server", "nope"],
            &[],
            "available: builtin, axum, hyper, actix, tiny_http",
        ),
        (&["--urls", "http://example.com:80"], &[], "unix:/PATH"),
        (
            &[],
            &[("SERVERBRIDGE_URLS", "localhost:80")],
            "SERVERBRIDGE_URLS",
        ),
    ];
    for (args, env, expected) in cases {
        let mut example = spawn_example("hello", args, env);
        let (code, stderr) = example.exit(BOUND);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn a_shutdown_timeout_too_long_for_a_clock_means_no_deadline_not_a_panic() {
    for huge in ["1e19", "1e12"] {
        let host = builder(&[])
            .args(["--urls", "http://127.0.0.1:0", "--shutdown-timeout", huge])
            .build()
            .expect("a huge timeout is accepted");
        let running = host.start(hello).await.unwrap();
        // Nothing in flight: the stop returns at once, deadline or none.
        let stopped = tokio::time::timeout(BOUND, tokio::spawn(running.stop())).await;
        stopped
            .expect("the stop returns")
            .expect("the stop does not panic")
            .unwrap();
    }
}
