//! Run with: cargo run --release -p serverbridge-tiny-http --example tiny_baseline -- --port 18083 --workers 1
//!
//! The benchmark baseline: raw tiny_http 0.12, the same number of worker
//! threads calling `recv` and answering `Hello, World!` with `Server` and
//! `Content-Type`, as `tiny_plaintext` does through serverbridge.

use std::sync::Arc;

fn main() {
    let (mut port, mut workers) = (18083u16, 1usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse::<usize>().ok());
        match (arg.as_str(), value) {
            ("--port", Some(v)) => port = u16::try_from(v).unwrap_or(18083),
            ("--workers", Some(v)) => workers = v.max(1),
            _ => {
                eprintln!("usage: tiny_baseline [--port N] [--workers N]");
                std::process::exit(2);
            }
        }
    }
    let server = match tiny_http::Server::http(("127.0.0.1", port)) {
        Ok(server) => Arc::new(server),
        Err(err) => {
            eprintln!("tiny_baseline: {err}");
            std::process::exit(1);
        }
    };
    println!("listening on http://{}", server.server_addr());
    let server_header =
        tiny_http::Header::from_bytes(&b"Server"[..], &b"tiny_http"[..]).expect("valid");
    let content_type =
        tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"text/plain"[..]).expect("valid");
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let server = server.clone();
            let (server_header, content_type) = (server_header.clone(), content_type.clone());
            std::thread::spawn(move || {
                while let Ok(request) = server.recv() {
                    let response = tiny_http::Response::from_string("Hello, World!")
                        .with_header(server_header.clone())
                        .with_header(content_type.clone());
                    let _ = request.respond(response);
                }
            })
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
}
