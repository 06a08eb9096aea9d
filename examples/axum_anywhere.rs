//! Run with: cargo run --example axum_anywhere
//!
//! One axum `Router` with tower-http layers (a response header, CORS, a
//! request-body limit) runs on every server we have, in turn: the in-memory
//! TestServer, then each server of the registry on 127.0.0.1 port 0 through
//! the Host (the built-in server, axum's own `serve` through `TowerHost`,
//! hyper through `serverbridge-hyper`, actix-web through `serverbridge-actix` and tiny_http through
//! `serverbridge-tiny-http`). Each gets the same three requests; the
//! responses are printed. It stops each server and exits by itself (within
//! 10 s at most).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::Path;
use axum::routing::{get, post};
use axum::Router;
use http::HeaderValue;
use serverbridge::feature::ServerAddress;
use serverbridge::host::Host;
use serverbridge::testing::TestServer;
use serverbridge::tower::ServiceApp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_http::cors::CorsLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;

#[path = "support/servers.rs"]
mod servers;

/// The one application: an axum Router with tower-http layers.
fn router() -> Router {
    Router::new()
        .route(
            "/hello/{name}",
            get(|Path(name): Path<String>| async move { format!("hello, {name}") }),
        )
        .route("/echo", post(|body: String| async move { body }))
        .layer(RequestBodyLimitLayer::new(16))
        .layer(CorsLayer::permissive())
        .layer(SetResponseHeaderLayer::overriding(
            http::header::HeaderName::from_static("x-powered-by"),
            HeaderValue::from_static("axum on serverbridge"),
        ))
}

/// The requests every server gets.
const REQUESTS: [&str; 3] = [
    "GET /hello/world HTTP/1.1\r\nHost: example\r\nOrigin: http://a.test\r\nConnection: close\r\n\r\n",
    "POST /echo HTTP/1.1\r\nHost: example\r\nContent-Length: 5\r\nConnection: close\r\n\r\nshort",
    "POST /echo HTTP/1.1\r\nHost: example\r\nContent-Length: 40\r\nConnection: close\r\n\r\nthis body is longer than sixteen bytes!!",
];

/// Sends one raw request and returns the status line, two headers and body.
async fn exchange(addr: SocketAddr, request: &str) -> io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await?;
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default().to_owned();
    let wanted: Vec<&str> = lines
        .filter(|line| {
            let line = line.to_ascii_lowercase();
            line.starts_with("x-powered-by") || line.starts_with("access-control-allow-origin")
        })
        .collect();
    Ok(format!("{status} | {} | {body:?}", wanted.join(" | ")))
}

async fn run() -> serverbridge::Result<()> {
    let app = ServiceApp::new(router());

    println!("== TestServer (in memory)");
    let test = TestServer::new(app.clone());
    let response = test
        .get("/hello/world")
        .header("origin", "http://a.test")
        .send()
        .await?;
    let status = response.status();
    let powered_by = response.headers()["x-powered-by"].clone();
    println!(
        "  {status} | x-powered-by: {powered_by:?} | {:?}",
        response.text().await?
    );

    let registry = servers::registry();
    for name in registry.names() {
        let host = Host::builder()
            .registry(registry.clone())
            .environment(|_| None) // this example ignores SERVERBRIDGE_*
            .server(name)
            .urls("http://127.0.0.1:0")
            .shutdown_timeout(Duration::from_secs(2))
            .handle_signals(false)
            .build()?;
        let running = host.start(app.clone()).await?;
        let Some(ServerAddress::Tcp { addr, .. }) = running.addresses().first().cloned() else {
            return Err(serverbridge::Error::app_msg(format!(
                "{name} published no TCP address"
            )));
        };
        println!("== {name}: listening on http://{addr}");
        for request in REQUESTS {
            println!("  {}", exchange(addr, request).await?);
        }
        running.stop().await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    match tokio::time::timeout(Duration::from_secs(10), run()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            eprintln!("axum_anywhere: {err}");
            std::process::exit(1);
        }
        Err(_) => {
            eprintln!("axum_anywhere: did not finish within 10 s");
            std::process::exit(1);
        }
    }
}
