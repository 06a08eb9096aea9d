//! TestServer in direct mode: request parts, bodies, trailers, connection
//! info, limits, aborts, stop, and use through `dyn Server`.

#![cfg(feature = "test-util")]

#[path = "../support/keeper.rs"]
mod keeper;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderValue;
use http::{Method, StatusCode, Version};
use serverbridge::application::from_fn;
use serverbridge::feature::{
    Address, ConnectionInfo, MaxRequestBodySize, RequestTrailers, ResponseTrailers,
    ServerAddresses, TlsInfo,
};
use serverbridge::testing::TestServer;
use serverbridge::{Error, HttpContext, Result, Server};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Describes the request parts, one per line.
async fn describe(ctx: &mut HttpContext) -> Result<()> {
    let request = ctx.request();
    let multi: Vec<_> = request
        .headers
        .get_all("x-multi")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let text = format!(
        "method={}\nscheme={}\npath_base={}\npath={}\nquery={}\nraw_target={}\nversion={:?}\nhost={:?}\nx-multi={:?}",
        request.method,
        request.scheme,
        request.path_base,
        request.path,
        request.query,
        request.raw_target,
        request.version,
        request.host(),
        multi,
    );
    ctx.write(text).await
}

mod bodies;
mod limits;
mod server;
mod stop;
mod targets;
