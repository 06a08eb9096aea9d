//! The servers the hosted examples can run on, by name (`--server NAME`):
//! the Host's registry with every adapter in the workspace, one
//! `register` call each. Included by `hello`, `echo` and `axum_anywhere`.

use std::io;

use serverbridge::host::Registry;
use serverbridge::tower::{AppService, Shutdown, TowerHost};
use serverbridge_actix::ActixServer;
use serverbridge_hyper::HyperServer;
use serverbridge_tiny_http::TinyHttpServer;
use tokio::net::TcpListener;

/// `builtin`, `axum`, `hyper`, `actix` and `tiny_http`.
pub(crate) fn registry() -> Registry {
    let mut registry = Registry::new(); // "builtin"
    registry.register("axum", |addresses| {
        Ok(Box::new(
            TowerHost::new(axum_serve).bind_addresses(addresses)?,
        ))
    });
    registry.register("hyper", |addresses| {
        Ok(Box::new(HyperServer::from_addresses(addresses)?))
    });
    registry.register("actix", |addresses| {
        Ok(Box::new(ActixServer::new().bind_addresses(addresses)?))
    });
    registry.register("tiny_http", |addresses| {
        Ok(Box::new(TinyHttpServer::bind_addresses(addresses)?))
    });
    registry
}

/// axum's own server hosting the application.
async fn axum_serve(listener: TcpListener, app: AppService, shutdown: Shutdown) -> io::Result<()> {
    let router = axum::Router::new().fallback_service(app.infallible());
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
