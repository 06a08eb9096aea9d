//! The conformance kit on `TinyHttpServer`; the summary is kept in the root
//! `tests/conformance/09-tiny-http.txt` (`BLESS=1` rewrites it) and feeds the
//! README's support matrix.

use std::path::PathBuf;

use serverbridge::conformance::{self, Outcome, Profile};
use serverbridge::Server;
use serverbridge_tiny_http::TinyHttpServer;

fn summaries() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/conformance"
    ))
}

/// Minimum, and every standard check but the one tiny_http cannot do
/// (noticing a client that went away); no request trailers, no upgrade.
/// What it lacks reports unsupported, never pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_http_meets_minimum() {
    let report = conformance::run(|| {
        Box::new(TinyHttpServer::new("127.0.0.1:0".parse().unwrap()).workers(4)) as Box<dyn Server>
    })
    .await;
    let title = "tiny_http";
    println!("{title}\n{report}");
    report.assert_meets(Profile::Minimum);
    let not_passed = report.not_passed();
    assert_eq!(
        not_passed,
        [
            ("lifetime.client-abort", "unsupported"),
            ("request.trailers", "unsupported"),
            ("connection.upgrade", "unsupported"),
        ]
    );
    assert!(matches!(
        report.outcome("lifetime.client-abort"),
        Some(Outcome::Unsupported(_))
    ));
    report.keep_summary(summaries().join("09-tiny-http.txt"), title);
}
