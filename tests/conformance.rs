//! The conformance kit on every server in this crate, at the profile each
//! claims; each run's summary is kept in `tests/conformance/NAME.txt`
//! (`BLESS=1` rewrites it), and the README's support matrix is generated
//! from those files (`scripts/support-matrix`).

use std::path::PathBuf;

use serverbridge::conformance::{self, Profile, Report};
use serverbridge::server::HttpServer;
use serverbridge::testing::{Mode, TestServer};
use serverbridge::Server;

#[path = "../examples/custom_server.rs"]
#[allow(dead_code, unreachable_pub, reason = "the example's own main and API")]
mod custom_server;

fn summaries() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

/// Asserts the profile, then checks (or, with `BLESS=1`, writes) the summary.
fn keep(file: &str, title: &str, report: &Report, claimed: Profile) {
    println!("{title}\n{report}");
    report.assert_meets(claimed);
    report.keep_summary(summaries().join(format!("{file}.txt")), title);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_server_meets_full() {
    let report = conformance::run(|| {
        Box::new(HttpServer::new().bind("127.0.0.1:0".parse().unwrap())) as Box<dyn Server>
    })
    .await;
    keep("01-builtin", "built-in", &report, Profile::Full);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_server_direct_meets_standard() {
    let report = conformance::run(|| Box::new(TestServer::unstarted()) as Box<dyn Server>).await;
    keep(
        "02-test-direct",
        "TestServer direct",
        &report,
        Profile::Standard,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_server_wire_meets_full() {
    let report = conformance::run(|| {
        Box::new(TestServer::unstarted().with_mode(Mode::Wire)) as Box<dyn Server>
    })
    .await;
    keep("03-test-wire", "TestServer wire", &report, Profile::Full);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_server_meets_minimum() {
    let report = conformance::run(|| {
        Box::new(custom_server::CustomServer::new(
            "127.0.0.1:0".parse().unwrap(),
        )) as Box<dyn Server>
    })
    .await;
    keep(
        "04-custom",
        "custom_server example",
        &report,
        Profile::Minimum,
    );
}

async fn axum_serve(
    listener: tokio::net::TcpListener,
    app: serverbridge::tower::AppService,
    shutdown: serverbridge::tower::Shutdown,
) -> std::io::Result<()> {
    let router = axum::Router::new().fallback_service(app.infallible());
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The host owns its connections, so no `ConnectionInfo` and no upgrade
/// (both unsupported, never passes), and hyper inside `axum::serve` closes
/// an HTTP/1.0 connection after each response: it meets the minimum
/// profile and every other standard check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_host_with_axum_serve_meets_minimum() {
    let report = conformance::run(|| {
        let host =
            serverbridge::tower::TowerHost::new(axum_serve).bind("127.0.0.1:0".parse().unwrap());
        Box::new(host) as Box<dyn Server>
    })
    .await;
    keep(
        "05-tower-axum",
        "TowerHost (axum::serve)",
        &report,
        Profile::Minimum,
    );
    let not_passed: Vec<_> = report.not_passed().into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        not_passed,
        [
            "connection.keep-alive",
            "connection.info",
            "connection.http10-keep-alive",
            "connection.upgrade"
        ]
    );
}
