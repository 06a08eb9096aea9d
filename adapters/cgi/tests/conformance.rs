//! The conformance kit on a CGI app, through the in-process gateway
//! (`tests/support/gateway.rs`): the probe runs in this process, so the kit
//! cannot watch an app in a separate CGI process; the gateway translates
//! HTTP to CGI and back as Apache does. `tests/apache.rs` covers the real
//! process boundary. The summary is kept in the root
//! `tests/conformance/10-cgi.txt` (`BLESS=1` rewrites it).

#[path = "support/gateway.rs"]
mod gateway;

use std::path::PathBuf;

use serverbridge::conformance::{self, Profile};
use serverbridge::Server;

fn summaries() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/conformance"
    ))
}

/// What CGI cannot do, by its nature: repeated request headers reach the
/// program joined into one meta-variable (so the minimum profile's
/// `request.headers` fails), stdout cannot mark a response aborted (the
/// gateway ends it cleanly, as Apache does), and there is no disconnect
/// signal, no trailers, no upgrade (unsupported, never pass).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cgi_through_the_gateway() {
    let report = conformance::run(|| {
        Box::new(gateway::Gateway::new("127.0.0.1:0".parse().unwrap())) as Box<dyn Server>
    })
    .await;
    let title = "CGI (in-process gateway)";
    println!("{title}\n{report}");
    let not_passed = report.not_passed();
    assert_eq!(
        not_passed,
        [
            ("request.headers", "fail"),
            ("response.error-after-head", "fail"),
            ("lifetime.client-abort", "unsupported"),
            ("request.trailers", "unsupported"),
            ("response.trailers", "unsupported"),
            ("connection.upgrade", "unsupported"),
        ]
    );
    assert!(!report.meets(Profile::Minimum));
    report.keep_summary(summaries().join("10-cgi.txt"), title);
}
