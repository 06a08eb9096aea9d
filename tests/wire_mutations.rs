//! Mutated requests against the built-in server: every corpus request is
//! corrupted in a few random ways (a fixed seed, so failures reproduce) and
//! written into one connection. Whatever the bytes, the connection task must
//! not panic, must end by itself, and must answer only with well-formed
//! HTTP/1.1 status lines: a rejection or a response, never garbage.

#![cfg(feature = "server")]

#[path = "support/wire.rs"]
mod wire;

use std::path::PathBuf;
use std::time::Duration;

use serverbridge::server::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wire::{connect, echo, escape};

/// Cases per run: bounded, and fast on the paused clock.
const CASES: usize = 1500;

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[u8] = b"\r\n \t:;,\"\\/?#%0fF9-+\x00\x01\x7f\x80\xff";

const SNIPPETS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b"Content-Length: 5\r\n",
    b"Content-Length: 0\r\n",
    b"Content-Length: -1\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip\r\n",
    b"Host: other\r\n",
    b"Expect: 100-continue\r\n",
    b"Connection: close\r\n",
    b" folded\r\n",
    b"0\r\n\r\n",
    b"ffffffffffffffffff\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(6) {
            0 if !bytes.is_empty() => {
                let at = at.min(bytes.len() - 1);
                bytes[at] = INTERESTING[rng.below(INTERESTING.len())];
            }
            1 if !bytes.is_empty() => {
                bytes.remove(at.min(bytes.len() - 1));
            }
            2 => {
                let snippet = SNIPPETS[rng.below(SNIPPETS.len())];
                bytes.splice(at..at, snippet.iter().copied());
            }
            3 => bytes.truncate(at),
            4 if !bytes.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(bytes.len());
                let slice = bytes[at.min(end)..end].to_vec();
                bytes.splice(at..at, slice);
            }
            _ => {
                let byte = (rng.next() & 0xff) as u8;
                bytes.insert(at, byte);
            }
        }
    }
    bytes
}

/// Whether `output` is empty or starts with `HTTP/1.1 ddd `.
fn starts_well(output: &[u8]) -> bool {
    output.is_empty()
        || (output.len() >= 13
            && output.starts_with(b"HTTP/1.1 ")
            && output[9..12].iter().all(u8::is_ascii_digit)
            && (b'1'..=b'5').contains(&output[9])
            && output[12] == b' ')
}

#[tokio::test(start_paused = true)]
async fn mutated_requests_never_panic_and_get_well_formed_answers() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .expect("the corpus folder")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "request"))
        .map(|path| std::fs::read(path).expect("readable"))
        .collect();
    seeds.sort();
    assert!(seeds.len() > 20, "the corpus is there");

    let mut rng = Rng(0x5EED_F00D_CAFE_BEEF);
    let mut failures = Vec::new();
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for case in 0..CASES {
        let input = mutate(&mut rng, &seeds[case % seeds.len()]);
        let (mut client, server) = connect(echo, Limits::default());
        let _ = client.io.write_all(&input).await;
        let _ = client.io.shutdown().await;
        let mut output = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(600), client.io.read_to_end(&mut output))
                .await;
        let ended = tokio::time::timeout(Duration::from_secs(600), server).await;
        let status = if output.len() >= 12 {
            String::from_utf8_lossy(&output[9..12]).into_owned()
        } else {
            "none".to_owned()
        };
        *statuses.entry(status).or_default() += 1;
        let problem = match (read, ended) {
            (Err(_), _) => Some("the connection did not end".to_owned()),
            (_, Err(_)) => Some("the connection task did not end".to_owned()),
            (_, Ok(Err(join))) => Some(format!("the connection task failed: {join}")),
            _ if !starts_well(&output) => Some("a malformed answer".to_owned()),
            _ => None,
        };
        if let Some(problem) = problem {
            failures.push(format!(
                "case {case}: {problem}\n  sent: {}\n  got:  {}",
                escape(&input),
                escape(&output[..output.len().min(300)])
            ));
        }
    }
    println!("first statuses over {CASES} mutated requests: {statuses:?}");
    // The mutations must reach both outcomes, or the test tests nothing.
    assert!(
        statuses.get("200").copied().unwrap_or(0) > CASES / 20,
        "{statuses:?}"
    );
    assert!(
        statuses.get("400").copied().unwrap_or(0) > CASES / 20,
        "{statuses:?}"
    );
    assert!(
        failures.is_empty(),
        "{} of {CASES} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
