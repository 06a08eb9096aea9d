//! The wire corpus: every `tests/corpus/NAME.request` is written raw into one
//! connection to the built-in server running the echo app, and what comes
//! back up to the close must equal `NAME.response` byte for byte (the `date:`
//! value normalised). One edge case per file pair; all mismatches are
//! reported at once.
//!
//! Besides the bytes, every case is held to the close discipline: if a
//! response says `connection: close` the server closes right after it;
//! otherwise the connection stays open until the keep-alive timeout.
//!
//! Regenerate the expected files with `BLESS=1 cargo test --test wire_corpus`,
//! then check every changed file by hand against RFC 9112 before committing.

#![cfg(feature = "server")]

#[path = "support/wire.rs"]
mod wire;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serverbridge::server::Limits;
use tokio::time::Instant;
use wire::{connect, echo, escape, normalise_date};

/// Longest a case may take on the paused clock (well past the keep-alive
/// timeout, so that a kept-alive connection ends by itself).
const CASE_LIMIT: Duration = Duration::from_secs(600);

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// Every case name (`NAME` of `NAME.request`), sorted.
fn case_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("tests/corpus exists")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            if path.extension()? != "request" {
                return None;
            }
            Some(path.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    names
}

/// What one replay produced.
struct Replay {
    bytes: Vec<u8>,
    /// Paused-clock time from the request to the close; `None`: no close.
    closed_after: Option<Duration>,
}

async fn replay(request: &[u8]) -> Replay {
    let (mut client, server) = connect(echo, Limits::default());
    client.send(request).await;
    let start = Instant::now();
    let bytes = client.read_until_close_within(CASE_LIMIT).await;
    let closed_after = bytes.as_ref().map(|_| start.elapsed());
    let bytes = match bytes {
        Some(bytes) => bytes,
        None => client.pending().await,
    };
    drop(client);
    let _ = tokio::time::timeout(Duration::from_secs(1), server).await;
    Replay {
        bytes,
        closed_after,
    }
}

/// Checks the close discipline; `Some(problem)` if it is broken.
fn close_problem(replay: &Replay, keep_alive: Duration) -> Option<String> {
    let bytes = &replay.bytes;
    let close_at = (0..bytes.len().saturating_sub(18))
        .rev()
        .find(|&i| bytes[i..i + 19].eq_ignore_ascii_case(b"connection: close\r\n"));
    // No echo body contains a status line, so one after the announcement is
    // a response the server should never have sent.
    if let Some(at) = close_at {
        if bytes[at..].windows(9).any(|w| w == b"HTTP/1.1 ") {
            return Some("a response after one that said `connection: close`".into());
        }
    }
    match (close_at.is_some(), replay.closed_after) {
        (_, None) => Some(format!("no close within {CASE_LIMIT:?}")),
        (true, Some(after)) if after >= Duration::from_secs(1) => Some(format!(
            "`connection: close` sent, but the close came only after {after:?}"
        )),
        (false, Some(after)) if after < keep_alive => Some(format!(
            "closed after {after:?} without `connection: close` (kept-alive \
             connections must stay open for the {keep_alive:?} idle timeout)"
        )),
        _ => None,
    }
}

#[tokio::test(start_paused = true)]
async fn corpus_replays_byte_for_byte() {
    let dir = corpus_dir();
    let bless = std::env::var_os("BLESS").is_some_and(|v| !v.is_empty() && v != "0");
    let names = case_names(&dir);
    assert!(
        names.len() >= 50,
        "expected at least 50 cases in {}, found {}",
        dir.display(),
        names.len()
    );
    let keep_alive = Limits::default().keep_alive_timeout;
    let mut failures = Vec::new();
    for name in &names {
        let request = std::fs::read(dir.join(format!("{name}.request"))).expect("readable");
        let replay = replay(&request).await;
        let actual = normalise_date(&replay.bytes);
        let response_path = dir.join(format!("{name}.response"));
        if bless {
            std::fs::write(&response_path, &actual).expect("writable");
        }
        let mut problems = Vec::new();
        match std::fs::read(&response_path) {
            Ok(expected) => {
                let expected = normalise_date(&expected);
                if expected != actual {
                    problems.push(format!(
                        "bytes differ\n--- expected ---\n{}\n--- actual ---\n{}",
                        escape(&expected),
                        escape(&actual)
                    ));
                }
            }
            Err(err) => problems.push(format!(
                "{}: {err}\n--- actual ---\n{}",
                response_path.display(),
                escape(&actual)
            )),
        }
        if let Some(problem) = close_problem(&replay, keep_alive) {
            problems.push(problem);
        }
        for problem in problems {
            failures.push(format!(
                "=== {name}\n--- request ---\n{}\n{problem}",
                escape(&request)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases failed:\n\n{}",
        failures.len(),
        names.len(),
        failures.join("\n\n")
    );
}

/// Every `.response` has its `.request` (a renamed case leaves no orphan).
#[test]
fn corpus_files_come_in_pairs() {
    let dir = corpus_dir();
    let names = case_names(&dir);
    let mut orphans = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("tests/corpus exists") {
        let path = entry.expect("readable").path();
        let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
            continue;
        };
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        match ext {
            "request" => {}
            "response" if names.contains(&stem) => {}
            _ => orphans.push(path.display().to_string()),
        }
    }
    assert!(orphans.is_empty(), "files without a pair: {orphans:?}");
}
