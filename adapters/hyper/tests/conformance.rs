//! The conformance kit on `HyperServer`, over HTTP/1.1 and HTTP/2 (prior
//! knowledge). Each run's summary is kept in the workspace's
//! `tests/conformance/` (`BLESS=1` rewrites it), which the README's support
//! matrix is generated from (`scripts/support-matrix`).

use std::path::PathBuf;

use http::Version;
use serverbridge::conformance::{self, Options, Outcome, Profile, Report};
use serverbridge::Server;
use serverbridge_hyper::HyperServer;

fn summaries() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/conformance")
}

fn keep(file: &str, title: &str, report: &Report, claimed: Profile) {
    println!("{title}\n{report}");
    report.assert_meets(claimed);
    report.keep_summary(summaries().join(format!("{file}.txt")), title);
}

fn factory() -> Box<dyn Server> {
    Box::new(HyperServer::new().bind("127.0.0.1:0".parse().unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_over_http1_meets_full() {
    let report = conformance::run(factory).await;
    keep("06-hyper-http1", "hyper (HTTP/1.1)", &report, Profile::Full);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_over_http2_meets_standard_and_reports_upgrade_unsupported() {
    let options = Options::default().version(Version::HTTP_2);
    let report = conformance::run_with(options, factory).await;
    keep(
        "07-hyper-http2",
        "hyper (HTTP/2)",
        &report,
        Profile::Standard,
    );
    assert!(
        matches!(
            report.outcome("connection.upgrade"),
            Some(Outcome::Unsupported(_))
        ),
        "{report}"
    );
}
