//! serverbridge's [`Server`](serverbridge::Server) on actix-web 4: any
//! serverbridge [`Application`](serverbridge::Application) (an axum
//! `Router` through [`ServiceApp`](serverbridge::tower::ServiceApp), a
//! [`Builder`](serverbridge::Builder) pipeline) served by actix-web's
//! workers, started and stopped from an ordinary tokio application.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use serverbridge::{HttpContext, Result, Server};
//! use serverbridge_actix::ActixServer;
//!
//! async fn hello(ctx: &mut HttpContext) -> Result<()> {
//!     ctx.write("hello").await
//! }
//!
//! let mut server = ActixServer::new().bind("127.0.0.1:0".parse().unwrap());
//! server.start(Arc::new(hello)).await?;
//! let addr = server.addresses().get()[0].to_string();
//! // ... serve until it is time to stop:
//! server.stop(tokio::time::Instant::now() + std::time::Duration::from_secs(5)).await?;
//! # assert!(addr.starts_with("http://127.0.0.1:"));
//! # Ok::<(), serverbridge::Error>(())
//! # }).unwrap();
//! ```
//!
//! # Capabilities
//!
//! | | |
//! |---|---|
//! | features | [`RequestFeature`], [`ResponseFeature`], [`ResponseBody`] (required); [`ConnectionInfo`] (connection id, local and peer address), [`RequestLifetime`] (fires when actix drops the request because the client went away), [`RequestId`] (`actix-N:K`, K in hex as on the built-in server), [`MaxRequestBodySize`] (default 30,000,000 B, `413`); server level: [`ServerAddresses`] (port 0 resolved), shown in every request's defaults layer |
//! | HTTP versions | HTTP/1.0 and HTTP/1.1 (keep-alive, pipelining, chunked both ways, `Expect: 100-continue` by actix); no HTTP/2 |
//! | transports | TCP (`http://IP:PORT`, or a listener you opened); no unix sockets, no TLS |
//! | blocking | no: `start` and `stop` are async and `Send`, actix runs on its own threads |
//! | bodies | streamed both ways with a bound of a few chunks (see below); a buffered response goes out with `Content-Length`, a flushed one chunked |
//! | conformance | the kit's standard profile (`tests/conformance.rs`) |
//!
//! **Not supported** (the features are absent, so apps can tell; the kit
//! reports these checks as unsupported): request and response trailers
//! ([`RequestTrailers`], [`ResponseTrailers`]: actix-http 3 reads and writes
//! none), upgrades ([`Upgrade`]: actix hands upgrades to its own
//! handlers), [`TlsInfo`], [`ConnectionClose`] (an app can still answer with
//! `Connection: close`: actix closes the connection after the response),
//! minimum data rates. Custom reason phrases are replaced by the standard
//! one (actix only keeps `'static` phrases). Header names reach the app
//! lower-cased and, across different names, in actix's (hashed) order; the
//! values of one name keep their order.
//!
//! # Threads, and what crossing into `!Send` workers costs
//!
//! actix-web runs each worker as a single-threaded runtime whose futures are
//! `!Send`. [`start`](serverbridge::Server::start) starts an `actix_rt::System` on a
//! dedicated thread (`serverbridge-actix`), builds actix's `HttpServer` there
//! on listeners it has already bound, and talks to it only through `Send`
//! values: actix's `ServerHandle`, oneshot channels and a cancellation token.
//! Nothing of actix leaks into the caller's runtime.
//!
//! The application crosses once per worker, not per request: the
//! `Arc<dyn Application>` is cloned into each worker's actix `App`. Per
//! request the costs are the ones of the edge: the `http` 0.2 → 1.x copy of
//! method, target and headers (one allocation for the header map, one per
//! header value check), the response's way back (status and headers), and
//! the core's [`AppService`](serverbridge::tower::AppService) pipe (the
//! lifecycle future is polled by actix's handler future, then by actix
//! pulling the body: no task per request, no extra thread hop). A request
//! with a body also gets one small local task on the worker that moves
//! actix's `!Send` `Payload` into the `Send` request body.
//!
//! # Bodies without whole-body buffering
//!
//! - Request: the local task reads actix's payload only when the channel to
//!   the app has room for one chunk, so one chunk waits between actix and the
//!   app; actix itself stops reading the socket when its payload buffer is
//!   full.
//! - Response: actix pulls the application's pipe body chunk by chunk;
//!   writes wait when 64 KiB are queued in the pipe
//!   ([`DEFAULT_RESPONSE_BUFFER`](serverbridge::DEFAULT_RESPONSE_BUFFER) is
//!   the core's default for the buffered case).
//!
//! # Stopping
//!
//! [`stop`](serverbridge::Server::stop) calls actix's
//! `ServerHandle::stop(true)`: the listeners close, idle keep-alive
//! connections are closed, in-flight requests finish and their connections
//! close after the response. At the deadline the in-flight applications are
//! aborted (their `RequestLifetime` fires, their responses are cut off); one
//! second later actix's server future is dropped, which stops its workers by
//! force. `stop` returns when actix's thread and every worker's services are
//! gone. Dropping the stop future, or a running `ActixServer`, forces the
//! stop at once. actix checks its workers' connection counts once a second,
//! so a graceful stop takes up to about a second longer than its last
//! connection.
//!
//! [`RequestFeature`]: serverbridge::feature::RequestFeature
//! [`ResponseFeature`]: serverbridge::feature::ResponseFeature
//! [`ResponseBody`]: serverbridge::feature::ResponseBody
//! [`ConnectionInfo`]: serverbridge::feature::ConnectionInfo
//! [`RequestLifetime`]: serverbridge::feature::RequestLifetime
//! [`RequestId`]: serverbridge::feature::RequestId
//! [`MaxRequestBodySize`]: serverbridge::feature::MaxRequestBodySize
//! [`ServerAddresses`]: serverbridge::feature::ServerAddresses
//! [`RequestTrailers`]: serverbridge::feature::RequestTrailers
//! [`ResponseTrailers`]: serverbridge::feature::ResponseTrailers
//! [`Upgrade`]: serverbridge::feature::Upgrade
//! [`TlsInfo`]: serverbridge::feature::TlsInfo
//! [`ConnectionClose`]: serverbridge::feature::ConnectionClose

mod body;
mod convert;
mod server;
mod service;

pub use server::{ActixServer, DEFAULT_MAX_REQUEST_BODY_SIZE, DEFAULT_WORKERS};
