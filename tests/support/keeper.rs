//! The app of the tests that a lifetime an app kept never aborts a later
//! request, whatever reuses collections (the built-in server, direct mode,
//! `call_pooled`).

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use serverbridge::application::from_fn;
use serverbridge::feature::RequestLifetime;
use serverbridge::{Application, HttpContext, Result};

/// `/keep` keeps a clone of its lifetime and answers `kept`; any other path
/// aborts the kept clone (as a spawned task that outlived its request
/// might), then answers `fired=<whether its own lifetime fired>`.
pub(crate) fn lifetime_keeper() -> impl Application {
    let kept = Arc::new(Mutex::new(None::<RequestLifetime>));
    from_fn(move |ctx: &mut HttpContext| -> BoxFuture<'_, Result<()>> {
        let kept = kept.clone();
        Box::pin(async move {
            let lifetime = ctx.lifetime().cloned().expect("a lifetime");
            if ctx.request().path == "/keep" {
                *kept.lock().unwrap() = Some(lifetime);
                return ctx.write("kept").await;
            }
            let old = kept.lock().unwrap().take();
            if let Some(old) = old {
                old.abort();
            }
            ctx.write(format!("fired={}", lifetime.is_cancelled()))
                .await
        })
    })
}
