//! An in-memory server for testing applications and middleware (feature
//! `test-util`).
//!
//! [`TestServer`] implements [`Server`](crate::Server) and sends requests straight into the
//! application (*direct* mode): no bytes, no sockets, the same features and
//! lifecycle as a real server ([`lifecycle::run_request`]), with connection and
//! TLS info settable and client-side aborts on demand.
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

mod recording;
mod server;

pub use recording::{RecordingSink, SinkEvent};
pub use server::{TestRequest, TestResponse, TestServer};
