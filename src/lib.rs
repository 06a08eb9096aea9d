//! One contract between HTTP servers and HTTP applications.
//!
//! serverbridge gives servers and applications a shared model, the way ASP.NET
//! Core's `IServer` and feature collection, OWIN's environment dictionary and
//! Ruby's Rack do in their worlds:
//!
//! - [`Features`]: a typed collection per request (plain data features and
//!   behaviour features as trait objects), layered over connection- and
//!   server-level defaults. The standard ones are in [`feature`].
//! - [`HttpContext`]: typed access to one request's features, and the
//!   response-writing API that enforces the contract.
//! - [`Application`]: what a server runs per request; any
//!   `async fn(&mut HttpContext) -> Result<()>` is one.
//! - [`Server`]: what a server implements; object-safe, so the server can be
//!   picked at run time.
//! - [`owin::Environment`]: the OWIN dictionary as a live view over the same
//!   features, with `AppFunc` bridges both ways.
//! - [`Builder`]: a middleware pipeline (`use_fn`, `layer`, `map`, `run`).
//! - [`tower`]: any `tower::Service` (an axum `Router`) is an
//!   Application, and any Application is a `tower::Service`.
//! - [`host::Host`] (feature `host`): picks the server by name
//!   (`SERVERBRIDGE_SERVER`), binds `SERVERBRIDGE_URLS`, stops gracefully on
//!   SIGINT/SIGTERM. [`tower::TowerHost`] runs an Application on a tower host
//!   you do not control (`axum::serve`).
//! - [`lint::Lint`]: middleware that checks both sides against SPEC.md.
//! - For server authors: [`server::HttpServer`] (feature `server`, default),
//!   the built-in HTTP/1.1 server; [`endpoint`] (feature `listen`): where a
//!   server listens; [`http1`] (feature `http1`): HTTP/1.1 response framing;
//!   [`FeaturePool`]: reuse of finished requests' features.
//! - [`testing::TestServer`] (feature `test-util`): an in-memory server.
//! - [`conformance`] (feature `conformance`): the kit that checks a server
//!   against the contract, check by check.
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use serverbridge::testing::TestServer;
//! use serverbridge::{Builder, HttpContext, Next, Result};
//!
//! async fn server_header(ctx: &mut HttpContext, next: Next<'_>) -> Result<()> {
//!     ctx.response_mut().headers.insert("server", "serverbridge".parse().unwrap());
//!     next.run(ctx).await
//! }
//!
//! async fn hello(ctx: &mut HttpContext) -> Result<()> {
//!     ctx.write("Hello, World!").await
//! }
//!
//! let app = Builder::new().use_fn(server_header).run(hello);
//! let server = TestServer::new(app);
//! let response = server.get("/").send().await.unwrap();
//! assert_eq!(response.headers()["server"], "serverbridge");
//! assert_eq!(response.text().await.unwrap(), "Hello, World!");
//! # });
//! ```

pub mod application;
pub mod body;
mod builder;
mod cold;
#[cfg(feature = "conformance")]
pub mod conformance;
mod context;
#[cfg(feature = "listen")]
pub mod endpoint;
mod error;
pub mod feature;
mod features;
#[cfg(feature = "host")]
pub mod host;
#[cfg(feature = "http1")]
pub mod http1;
pub mod lifecycle;
pub mod lint;
pub mod owin;
mod pipe;
#[cfg(feature = "server")]
pub mod server;
mod server_trait;
mod target;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod tower;

pub use application::{Application, BoxApplication};
pub use builder::{Builder, Middleware, Next};
pub use context::{HttpContext, DEFAULT_RESPONSE_BUFFER};
pub use error::{BoxError, Error, Result};
pub use features::Features;
pub use pipe::{FeaturePool, PipeBody, PipeResponse, ReasonPhrase};
pub use server_trait::Server;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
