//! Real clients against the adapter: curl with HTTP/2 prior knowledge, and
//! h2load (Debian's `nghttp2-client`, installed here when missing).

use std::process::Command;

use serverbridge::Server;

use crate::common::*;

/// Whether `tool` runs, installing `package` with apt-get when it does not.
/// `false` (with a message) only if the install fails.
fn ensure(tool: &str, package: &str) -> bool {
    let present = |tool: &str| Command::new(tool).arg("--version").output().is_ok();
    if present(tool) {
        return true;
    }
    eprintln!("{tool} is missing: installing {package}");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-qq", package])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        install();
    }
    if present(tool) {
        return true;
    }
    eprintln!("SKIPPED: {tool} is not installed and `apt-get install {package}` failed");
    false
}

async fn run(command: &mut Command) -> std::process::Output {
    let mut command =
        tokio::process::Command::from(std::mem::replace(command, Command::new("true")));
    tokio::time::timeout(PATIENCE * 3, command.output())
        .await
        .expect("the tool finished in time")
        .expect("the tool ran")
}

#[tokio::test]
async fn curl_http2_prior_knowledge() {
    if !ensure("curl", "curl") {
        return;
    }
    let (mut server, addr) = start(echo).await;
    let output = run(Command::new("curl")
        .args(["-sS", "-i", "--http2-prior-knowledge", "--max-time", "10"])
        .args(["-H", "x-echo-tool: curl", "--data-binary", "from curl"])
        .arg(format!("http://{addr}/c%20url?q=1")))
    .await;
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.starts_with("HTTP/2 200"), "{text}");
    assert!(text.contains("x-method: POST"), "{text}");
    assert!(text.contains("x-path: /c%20url"), "{text}");
    assert!(text.contains("x-query: q=1"), "{text}");
    assert!(text.contains("x-version: HTTP/2.0"), "{text}");
    assert!(text.contains(&format!("x-host: {addr}")), "{text}");
    assert!(text.contains("x-echo-tool: curl"), "{text}");
    assert!(text.ends_with("\r\n\r\nfrom curl"), "{text}");
    server.stop(deadline(5)).await.unwrap();
}

#[tokio::test]
async fn h2load_all_requests_succeed() {
    if !ensure("h2load", "nghttp2-client") {
        return;
    }
    let (mut server, addr) = start(echo).await;
    // 4 connections x 10 concurrent streams, 2000 requests, each with a
    // 1 KiB body the echo app sends back.
    let data = std::env::temp_dir().join(format!("sb-hyper-h2load-{}", std::process::id()));
    std::fs::write(&data, vec![b'd'; 1024]).unwrap();
    let output = run(Command::new("h2load")
        .args(["-n", "2000", "-c", "4", "-m", "10", "-d"])
        .arg(&data)
        .arg(format!("http://{addr}/h2load")))
    .await;
    let text = String::from_utf8_lossy(&output.stdout);
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}\n{errors}");
    assert!(
        text.contains(
            "requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored"
        ),
        "{text}"
    );
    assert!(text.contains("status codes: 2000 2xx"), "{text}");
    // The protocol actually spoken was HTTP/2 (h2c).
    assert!(text.contains("Application protocol: h2c"), "{text}");
    let _ = std::fs::remove_file(&data);
    server.stop(deadline(5)).await.unwrap();
}
