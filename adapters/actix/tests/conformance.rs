//! The conformance kit on [`ActixServer`]: it meets the standard profile,
//! and the checks it cannot do (trailers, upgrades) report unsupported.
//! The summary is kept with the core's, in the root's
//! `tests/conformance/08-actix.txt` (`BLESS=1` rewrites it), from which the
//! README's support matrix is generated.

use std::path::PathBuf;

use serverbridge::conformance::{self, Profile, Report};
use serverbridge::Server;
use serverbridge_actix::ActixServer;

fn summaries() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/conformance"
    ))
}

/// Asserts the profile, then checks (or, with `BLESS=1`, writes) the summary.
fn keep(file: &str, title: &str, report: &Report, claimed: Profile) {
    println!("{title}\n{report}");
    report.assert_meets(claimed);
    report.keep_summary(summaries().join(format!("{file}.txt")), title);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_server_meets_standard() {
    let report = conformance::run(|| {
        Box::new(
            ActixServer::new()
                .workers(1)
                .bind("127.0.0.1:0".parse().unwrap()),
        ) as Box<dyn Server>
    })
    .await;
    keep("08-actix", "actix-web", &report, Profile::Standard);
    let not_passed = report.not_passed();
    assert_eq!(
        not_passed,
        [
            ("request.trailers", "unsupported"),
            ("response.trailers", "unsupported"),
            ("connection.upgrade", "unsupported"),
        ]
    );
}
