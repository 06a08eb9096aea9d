//! A serverbridge [`Server`](serverbridge::Server) on hyper 1.x:
//! [`HyperServer`] runs any serverbridge application over HTTP/1.1 and
//! HTTP/2 on the same port, with hyper-util's auto connection builder and
//! graceful shutdown.
//!
//! # How requests are mapped
//!
//! hyper's request becomes the request's features without copying: the
//! method, URI, version and header map move into
//! [`RequestFeature`](serverbridge::feature::RequestFeature), and hyper's
//! `Incoming` body becomes the
//! [`RequestBody`](serverbridge::body::RequestBody) (its trailers land in
//! [`RequestTrailers`](serverbridge::feature::RequestTrailers)). The response
//! goes back through the core's pipe
//! ([`AppService::call_features`](serverbridge::tower::AppService::call_features)):
//! a body handed over with `send_body` goes to hyper as it is, pushed writes
//! stream with a bounded buffer (64 KiB, then `write` waits for hyper to take
//! the bytes), and a response completed without a flush goes out with
//! `Content-Length`.
//!
//! # Capabilities
//!
//! | | |
//! |---|---|
//! | HTTP versions | HTTP/1.0 (keep-alive when asked: the adapter adds `Connection: keep-alive` to a response with a length), HTTP/1.1 (keep-alive, pipelining), HTTP/2 with prior knowledge (h2c), on one port ([`Protocols`]) |
//! | transports | TCP (several endpoints, port 0), unix domain sockets, inherited listeners |
//! | blocking | no: async on the caller's tokio runtime (one task per connection; HTTP/2 streams on their own tasks) |
//! | required features | `RequestFeature`, `ResponseFeature`, `ResponseBody` |
//! | [`ConnectionInfo`](serverbridge::feature::ConnectionInfo) | yes, per connection (defaults layer): id, local and peer address (unix: the path) |
//! | [`ServerAddresses`](serverbridge::feature::ServerAddresses) | yes, server-level (defaults layer), filled by `start`, cleared by `stop` |
//! | [`RequestLifetime`](serverbridge::feature::RequestLifetime) | yes: fires when hyper drops the request (client gone on HTTP/1, stream reset on HTTP/2, connection closed) |
//! | [`RequestId`](serverbridge::feature::RequestId) | yes, `<connection id>:<n>` |
//! | [`MaxRequestBodySize`](serverbridge::feature::MaxRequestBodySize) | yes, [`Settings::max_request_body_size`], per request adjustable |
//! | [`RequestTrailers`](serverbridge::feature::RequestTrailers) | yes (chunked HTTP/1.1, HTTP/2) |
//! | [`ResponseTrailers`](serverbridge::feature::ResponseTrailers) | HTTP/2: yes. HTTP/1.1: offered only when the request's `TE` lists `trailers` (hyper sends them to no one else), on chunked responses, and hyper sends only the fields the response's `Trailer` header names. HTTP/1.0: no |
//! | [`Upgrade`](serverbridge::feature::Upgrade) | HTTP/1.1, through `hyper::upgrade::on` |
//! | limits and timeouts | hyper's, as [`Settings`] (header read timeout 30 s, 100 headers, HTTP/2 streams …) |
//! | graceful stop | yes: stop accepting, in-flight requests finish until the deadline, the rest are dropped (at once if the `stop` future is dropped) |
//! | request body errors | as on the built-in server: a malformed body is a parse error (`400`); a body cut short or reset is [`Error::is_closed`](serverbridge::Error::is_closed) |
//! | reason phrase | the app's, on HTTP/1 (HTTP/2 has none) |
//!
//! Not provided: TLS ([`TlsInfo`](serverbridge::feature::TlsInfo)),
//! [`ConnectionClose`](serverbridge::feature::ConnectionClose) (set
//! `Connection: close` on the response instead), minimum data rates, HTTP/2
//! over TLS (ALPN) and the `Upgrade: h2c` dance, CONNECT tunnels (hyper
//! takes a 2xx answer to CONNECT as a tunnel and fails one with a body,
//! closing without the head: answer CONNECT with a non-2xx status), and
//! request-line limits of their own (hyper bounds the whole head with
//! [`Settings::max_buffer_size`]). Unlike the built-in server, hyper does not
//! reject every ambiguous framing the built-in server rejects; see SPEC.md.
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use serverbridge::feature::ServerAddress;
//! use serverbridge::{HttpContext, Result, Server};
//! use serverbridge_hyper::HyperServer;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! async fn hello(ctx: &mut HttpContext) -> Result<()> {
//!     ctx.write("Hello, World!").await
//! }
//!
//! let mut server = HyperServer::new().bind("127.0.0.1:0".parse().unwrap());
//! server.start(Arc::new(hello)).await.unwrap();
//! let ServerAddress::Tcp { addr, .. } = server.addresses().get()[0].clone() else { panic!() };
//!
//! let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
//! socket.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
//! let mut reply = String::new();
//! socket.read_to_string(&mut reply).await.unwrap();
//! assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(reply.contains("content-length: 13\r\n"));
//! assert!(reply.ends_with("Hello, World!"));
//!
//! server.stop(tokio::time::Instant::now() + std::time::Duration::from_secs(1)).await.unwrap();
//! assert!(server.addresses().get().is_empty());
//! # });
//! ```

mod opening;
mod server;
mod service;
mod settings;

pub use server::HyperServer;
pub use settings::{Protocols, Settings};
