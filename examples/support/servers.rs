//! The servers the hosted examples can run on, by name (`--server NAME`):
//! the Host's registry with every adapter in the workspace, one
//! `register` call each, and [`serve`], the hosted examples' whole run.
//! Included by `hello`, `echo` and `axum_anywhere`.

use std::io;

use serverbridge::host::{Host, Registry};
use serverbridge::tower::{AppService, Shutdown, TowerHost};
use serverbridge::Application;
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

/// Builds the Host from `args` and the environment, starts `app`, prints
/// where it listens and runs until SIGINT/SIGTERM. Returns the exit code:
/// 0 after a graceful stop, 2 for a bad setting, 1 otherwise; errors go to
/// stderr after `name:`.
#[allow(dead_code, reason = "axum_anywhere uses only the registry")]
pub(crate) async fn serve(name: &str, args: Vec<String>, app: impl Application) -> i32 {
    let host = match Host::builder().registry(registry()).args(args).build() {
        Ok(host) => host,
        Err(err) => {
            eprintln!("{name}: {}", chain(&err));
            return 2;
        }
    };
    let running = match host.start(app).await {
        Ok(running) => running,
        Err(err) => {
            eprintln!("{name}: {}", chain(&err));
            return 1;
        }
    };
    for url in running.urls() {
        println!("listening on {url}");
    }
    match running.run().await {
        Ok(()) => {
            println!("stopped");
            0
        }
        Err(err) => {
            eprintln!("{name}: {}", chain(&err));
            1
        }
    }
}

/// The error and its causes, `: `-separated (`Display` prints one level;
/// "i/o error" alone would not say which).
fn chain(err: &serverbridge::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
