//! A real client against the built-in server: the `curl` binary, run as a
//! subprocess against the echo app (`examples/echo.rs`'s) served in-process
//! on 127.0.0.1, port 0. CI installs curl; without it these tests fail with
//! a message saying so.

#![cfg(feature = "server")]

#[path = "support/wire.rs"]
mod wire;

use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use serverbridge::feature::ServerAddress;
use serverbridge::server::HttpServer;
use serverbridge::Server;
use wire::{echo, echo_body};

const CURL_TIMEOUT: Duration = Duration::from_secs(30);

/// The echo app on a fresh port; returns the server and its base URL.
async fn start_echo() -> (HttpServer, String) {
    let mut server = HttpServer::new().bind("127.0.0.1:0".parse().expect("valid"));
    server.start(Arc::new(echo)).await.expect("started");
    let addr = server
        .addresses()
        .get()
        .into_iter()
        .find_map(|a| match a {
            ServerAddress::Tcp { addr, .. } => Some(addr),
            _ => None,
        })
        .expect("a TCP address");
    (server, format!("http://{addr}"))
}

async fn stop(mut server: HttpServer) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    server.stop(deadline).await.expect("stopped");
}

/// Runs curl with `args` (no config file, no proxy, bounded time) and
/// returns its output, failing the test if curl is missing or fails.
async fn curl(args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new("curl");
    command
        .arg("-q") // ignore ~/.curlrc
        .args([
            "--noproxy",
            "*",
            "--max-time",
            "20",
            "--silent",
            "--show-error",
        ])
        .args(args)
        .kill_on_drop(true);
    let output = match tokio::time::timeout(CURL_TIMEOUT, command.output()).await {
        Err(_) => panic!("curl {args:?} did not finish within {CURL_TIMEOUT:?}"),
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::NotFound => panic!(
            "the `curl` binary is not on PATH: tests/wire_curl.rs drives a real curl \
             against the built-in server; install it (e.g. `apt-get install curl`)"
        ),
        Ok(Err(err)) => panic!("could not run curl: {err}"),
        Ok(Ok(output)) => output,
    };
    assert!(
        output.status.success(),
        "curl {args:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A file of `len` bytes in the temp dir, removed on drop.
struct TempBody(PathBuf);

impl TempBody {
    fn new(name: &str, len: usize) -> Self {
        let path = std::env::temp_dir().join(format!(
            "serverbridge-wire-curl-{}-{name}",
            std::process::id()
        ));
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, data).expect("temp file");
        TempBody(path)
    }

    fn arg(&self) -> String {
        format!("@{}", self.0.display())
    }
}

impl Drop for TempBody {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_get_with_a_query() {
    let (server, base) = start_echo().await;
    let output = curl(&["--include", &format!("{base}/search/a%20b?q=1&r=two")]).await;
    let text = stdout(&output);
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let expected = echo_body("GET", "/search/a%20b", "q=1&r=two", 0);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\ncontent-type: text/plain\r\n"), "{head}");
    let length = format!("\r\ncontent-length: {}\r\n", expected.len());
    assert!(head.contains(&length), "{head}");
    assert!(head.contains("\r\ndate: "), "{head}");
    assert_eq!(body, expected);
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_posts_100_kb_after_100_continue() {
    let (server, base) = start_echo().await;
    let body = TempBody::new("post", 100 * 1024);
    // curl only adds `Expect: 100-continue` by itself past 1 MiB (since
    // 7.x); ask for it so the exchange is the same on every curl.
    let output = curl(&[
        "--verbose",
        "--header",
        "Expect: 100-continue",
        "--data-binary",
        &body.arg(),
        &format!("{base}/upload"),
    ])
    .await;
    let log = stderr(&output);
    assert!(log.contains("> Expect: 100-continue"), "{log}");
    assert!(log.contains("< HTTP/1.1 100 Continue"), "{log}");
    assert!(log.contains("< HTTP/1.1 200 OK"), "{log}");
    assert_eq!(
        stdout(&output),
        echo_body("POST", "/upload", "", 100 * 1024)
    );
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_posts_past_1_mib_with_its_own_expect() {
    let (server, base) = start_echo().await;
    let len = 1024 * 1024 + 1;
    let body = TempBody::new("big", len);
    let output = curl(&[
        "--verbose",
        "--data-binary",
        &body.arg(),
        &format!("{base}/big"),
    ])
    .await;
    let log = stderr(&output);
    // Whether curl asked is its business; if it did, the server answered.
    if log.contains("> Expect: 100-continue") {
        assert!(log.contains("< HTTP/1.1 100 Continue"), "{log}");
    }
    assert_eq!(stdout(&output), echo_body("POST", "/big", "", len));
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_uploads_chunked() {
    let (server, base) = start_echo().await;
    let body = TempBody::new("chunked", 100 * 1024);
    let output = curl(&[
        "--verbose",
        "--header",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &body.arg(),
        &format!("{base}/chunked?x=y"),
    ])
    .await;
    let log = stderr(&output);
    assert!(log.contains("> Transfer-Encoding: chunked"), "{log}");
    assert_eq!(
        stdout(&output),
        echo_body("POST", "/chunked", "x=y", 100 * 1024)
    );
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_reuses_the_connection_for_two_urls() {
    let (server, base) = start_echo().await;
    let output = curl(&[
        "--write-out",
        "|%{num_connects}\n",
        &format!("{base}/one"),
        &format!("{base}/two?2"),
    ])
    .await;
    assert_eq!(
        stdout(&output),
        format!(
            "{}|1\n{}|0\n",
            echo_body("GET", "/one", "", 0),
            echo_body("GET", "/two", "2", 0)
        ),
        "the second URL goes over the first connection (num_connects 0)"
    );
    stop(server).await;
}
