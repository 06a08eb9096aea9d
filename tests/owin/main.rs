//! The OWIN environment against SPEC.md §8: every key in both directions,
//! the read-only and value-type rules, streaming, cancellation, unknown keys,
//! OWIN middleware, and the bridges (`OwinApp`, `run_application`,
//! `FeatureAppFunc`).

#![cfg(feature = "test-util")]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::header::{CONTENT_LENGTH, HOST};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use serverbridge::application::from_fn;
use serverbridge::body::RequestBody;
use serverbridge::feature::{
    Address, ConnectionInfo, OnUpgrade, RequestLifetime, ResponseBody, ResponseHead,
    ResponseTrailers, ServerAddress, TlsInfo, Upgrade,
};
use serverbridge::owin::{
    self, app_func, compose, keys, AppFunc, BoxAppFunc, Environment, Extras, FeatureAppFunc,
    OwinApp, OwinMiddleware, Value, ValueRef,
};
use serverbridge::testing::{RecordingSink, SinkEvent, TestServer};
use serverbridge::{Builder, Error, HttpContext, Middleware, Next, Result};

/// An owned copy of what a key read gave.
#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Str(String),
    Int(i64),
    Bool(bool),
    Headers(HeaderMap),
    RequestBody,
    ResponseBody,
    Cancellation { cancelled: bool },
    OnSendingHeaders,
    Addresses(Vec<ServerAddress>),
    Map(BTreeMap<String, String>),
    Any,
}

fn seen(value: ValueRef<'_>) -> Seen {
    match value {
        ValueRef::Str(s) => Seen::Str(s.into_owned()),
        ValueRef::Int(i) => Seen::Int(i),
        ValueRef::Bool(b) => Seen::Bool(b),
        ValueRef::Headers(h) => Seen::Headers(h.clone()),
        ValueRef::RequestBody(_) => Seen::RequestBody,
        ValueRef::ResponseBody => Seen::ResponseBody,
        ValueRef::Cancellation(token) => Seen::Cancellation {
            cancelled: token.is_cancelled(),
        },
        ValueRef::OnSendingHeaders => Seen::OnSendingHeaders,
        ValueRef::Addresses(a) => Seen::Addresses(a),
        ValueRef::Map(m) => Seen::Map(m),
        ValueRef::Any(_) => Seen::Any,
    }
}

fn str(s: &str) -> Option<Seen> {
    Some(Seen::Str(s.to_owned()))
}

type KeyValues = BTreeMap<&'static str, Option<Seen>>;

/// Every standard key read through `env.get`.
fn read_all(env: &Environment) -> KeyValues {
    keys::ALL
        .iter()
        .map(|k| (*k, env.get(k).map(seen)))
        .collect()
}

type Shared<T> = Arc<Mutex<T>>;

fn shared<T: Default>() -> Shared<T> {
    Arc::new(Mutex::new(T::default()))
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_static(value));
    }
    map
}

fn ip(addr: &str) -> SocketAddr {
    addr.parse().unwrap()
}

/// A Builder middleware that runs `f` on the context after the rest of the
/// pipeline returned.
struct After<F>(F);

fn after<F>(f: F) -> After<F>
where
    F: for<'c> Fn(&'c mut HttpContext) -> BoxFuture<'c, ()> + Send + Sync + 'static,
{
    After(f)
}

impl<F> Middleware for After<F>
where
    F: for<'c> Fn(&'c mut HttpContext) -> BoxFuture<'c, ()> + Send + Sync + 'static,
{
    fn call<'a>(&'a self, ctx: &'a mut HttpContext, next: Next<'a>) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let result = next.run(ctx).await;
            (self.0)(ctx).await;
            result
        })
    }
}

/// A Builder middleware that runs `f` on the context before the rest.
struct Before<F>(F);

impl<F> Middleware for Before<F>
where
    F: Fn(&mut HttpContext) + Send + Sync + 'static,
{
    fn call<'a>(&'a self, ctx: &'a mut HttpContext, next: Next<'a>) -> BoxFuture<'a, Result<()>> {
        (self.0)(ctx);
        next.run(ctx)
    }
}

async fn not_found(ctx: &mut HttpContext) -> Result<()> {
    ctx.response_mut().status = StatusCode::NOT_FOUND;
    Ok(())
}

mod call_cancelled;
mod from_environment;
mod middleware;
mod panics;
mod response_body;
mod run_application;
mod streaming;
mod to_environment;
mod unknown_keys;
