//! Writing responses through `HttpContext`: buffering, Content-Length, HEAD,
//! body rules, `send_body`, `send_file`, trailers.

#![cfg(feature = "test-util")]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::Full;
use serverbridge::application::from_fn;
use serverbridge::feature::{RequestLifetime, ResponseTrailers};
use serverbridge::lifecycle::{run_request, RequestOutcome};
use serverbridge::testing::{RecordingSink, SinkEvent, TestServer};
use serverbridge::{Application, HttpContext, Result, DEFAULT_RESPONSE_BUFFER};

/// A context for `method target` writing into a fresh recording sink.
fn context(method: &str, target: &str) -> (HttpContext, RecordingSink) {
    let (features, recording) = RecordingSink::features(method, target);
    (HttpContext::new(features), recording)
}

/// Runs `app` through the full lifecycle on a recording sink.
async fn run(method: &str, app: impl Application) -> (RequestOutcome, RecordingSink) {
    let (mut features, recording) = RecordingSink::features(method, "/");
    features.insert(RequestLifetime::new());
    let outcome = run_request(&app, features).await;
    (outcome, recording)
}

fn count_starts(events: &[SinkEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, SinkEvent::Start(_)))
        .count()
}

/// A file under the temp dir with a unique name, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(contents: &[u8]) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "serverbridge-response-writing-{}-{}.bin",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

mod buffering;
mod callbacks;
mod completion;
mod lengths;
mod unreturned_failures;
