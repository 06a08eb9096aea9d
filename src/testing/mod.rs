//! An in-memory server for testing applications and middleware (feature
//! `test-util`).
//!
//! [`TestServer`] implements [`Server`](crate::Server). In *direct* mode (the
//! default) it sends requests straight into the application: no bytes, no
//! sockets, the same features and lifecycle as a real server
//! ([`lifecycle::run_request`]). In *wire* mode ([`Mode::Wire`]) the same
//! requests go as bytes through the built-in server's HTTP/1.1 engine over an
//! in-memory duplex, so parsing, limits, status codes and framing are the
//! real ones; [`TestServer::raw`] gives the bytes themselves. Connection and
//! TLS info are settable and client aborts happen on demand in both modes.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use serverbridge::testing::TestServer;
//! use serverbridge::{HttpContext, Result};
//!
//! async fn echo(ctx: &mut HttpContext) -> Result<()> {
//!     let body = ctx.read_body(1 << 20).await?;
//!     ctx.write(body).await
//! }
//!
//! let server = TestServer::new(echo);
//! let response = server.post("/").body("ping").send().await.unwrap();
//! assert_eq!(response.text().await.unwrap(), "ping");
//! # });
//! ```
//!
//! [`lifecycle::run_request`]: crate::lifecycle::run_request

mod client;
mod connect;
mod faults;
mod recording;
mod server;
mod wire;

pub use client::{ClientConnection, Connector};
pub use faults::Fault;
pub use recording::{RecordingSink, SinkEvent};
pub use server::{Mode, TestBody, TestRequest, TestResponse, TestServer};
