//! The built-in server on the wire, one behaviour per test: limits at and
//! one past their bounds, timeouts on the paused clock, pipelining,
//! `100-continue`, upgrades, client aborts, panics, response framing, body
//! draining, and real sockets (port 0, several endpoints, unix sockets,
//! graceful stop, the connection limit).

#![cfg(feature = "server")]

#[path = "../support/keeper.rs"]
mod keeper;
#[path = "../support/wire.rs"]
mod wire;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use http::HeaderValue;
use serverbridge::application::from_fn;
use serverbridge::feature::{
    MaxRequestBodySize, RequestLifetime, ResponseTrailers, ServerAddress, ServerAddresses,
};
use serverbridge::server::{HttpServer, Limits};
use serverbridge::{Application, HttpContext, Result, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use wire::{
    connect, connect_shared, echo, echo_body, escape, normalise_date, Client, Response, FIXED_DATE,
};

/// A GET for `path` with a Host header.
fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n")
}

/// A GET for `path` that asks for the connection to close.
fn get_close(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
}

/// The exact bytes of a rejection, date normalised.
fn rejection(status: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\ndate: {FIXED_DATE}\r\n\r\n"
    )
}

/// Reads to the close and asserts the bytes are exactly `status`'s rejection.
async fn assert_rejected<S>(client: &mut Client<S>, status: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let bytes = normalise_date(&client.read_until_close().await);
    assert_eq!(
        escape(&bytes),
        escape(rejection(status).as_bytes()),
        "expected the {status} rejection, then a close"
    );
}

fn assert_echo(response: &Response, method: &str, path: &str, body: usize) {
    assert_eq!(response.status, 200, "{}", escape(&response.raw));
    assert_eq!(response.text(), echo_body(method, path, "", body));
}

/// Lets the server act on what it has (the paused clock only moves when
/// every task is idle).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

fn small_body_limit() -> Limits {
    Limits {
        max_request_body_size: Some(100),
        ..Limits::default()
    }
}

fn body_of(n: usize) -> String {
    "x".repeat(n)
}

mod draining;
mod exchanges;
mod framing;
mod informational;
mod limits;
mod panics;
mod sockets;
mod timeouts;

use exchanges::upgrade_echo;
use panics::panics_on_request;
use sockets::{tcp_addresses, tcp_client, SOCKET_TIMEOUT};
