//! The probe: the application the kit runs on the server under test. It
//! records what each request looked like from inside (keyed by the request's
//! `x-probe-id` header) and answers as the request's `x-probe-action`
//! header asks, so the kit can compare what was sent with what arrived.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, Semaphore};

use crate::application::Application;
use crate::context::HttpContext;
use crate::error::{Error, Result};
use crate::feature::{
    ConnectionInfo, RequestFeature, RequestTrailers, ResponseTrailers, ServerAddresses, Upgrade,
};
use crate::features::Features;

/// The header naming a request, so its observation can be found.
pub(super) const ID: &str = "x-probe-id";
/// The header choosing what the probe does.
pub(super) const ACTION: &str = "x-probe-action";
/// The response size for the `body` action.
pub(super) const SIZE: &str = "x-probe-size";
/// `buffered` (one write, no flush) or `streamed` (a flush after each
/// 16 KiB piece) for the `body` action.
pub(super) const MODE: &str = "x-probe-mode";
/// The trailer the probe sends, and the one it expects.
pub(super) const TRAILER: &str = "x-probe-trailer";

/// How long the probe waits for the kit (a gate, a lifetime) before giving up.
const PATIENCE: Duration = Duration::from_secs(20);

/// What one request looked like from inside the app.
#[derive(Debug, Default, Clone)]
pub(super) struct Seen {
    pub(super) method: Option<Method>,
    pub(super) path: String,
    pub(super) path_base: String,
    pub(super) query: String,
    pub(super) raw_target: String,
    pub(super) version: Option<Version>,
    pub(super) headers: HeaderMap,
    /// Body length and digest, once read to its end.
    pub(super) body: Option<(u64, u64)>,
    pub(super) body_error: Option<String>,
    pub(super) connection: Option<ConnectionInfo>,
    /// The `ServerAddresses` the request's features show, as URLs.
    pub(super) addresses: Option<Vec<String>>,
    /// `None`: no `RequestTrailers` feature.
    pub(super) trailers: Option<Option<HeaderMap>>,
    /// Whether the request had a `RequestLifetime`.
    pub(super) has_lifetime: bool,
    /// Whether it fired (abort action only, once the wait ended).
    pub(super) lifetime_fired: Option<bool>,
    /// Lifecycle events in order: `create`, `process`, `starting:N`,
    /// `completed:N`, `dispose` or `dispose:ERROR`.
    pub(super) events: Vec<String>,
    /// Whether the `Upgrade` feature was offered (upgrade action only).
    pub(super) upgrade: Option<bool>,
    pub(super) started: bool,
}

/// Shared between the probe (inside the server) and the kit.
#[derive(Debug)]
pub(super) struct ProbeState {
    seen: Mutex<HashMap<String, Seen>>,
    changed: Notify,
    /// Released by the kit to let `wait` requests answer.
    pub(super) gate: Semaphore,
}

impl Default for ProbeState {
    fn default() -> Self {
        ProbeState {
            seen: Mutex::default(),
            changed: Notify::new(),
            gate: Semaphore::new(0),
        }
    }
}

impl ProbeState {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Seen>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Seen)) {
        f(self.lock().entry(id.to_owned()).or_default());
        self.changed.notify_waiters();
    }

    /// What the probe saw of request `id` so far.
    pub(super) fn get(&self, id: &str) -> Option<Seen> {
        self.lock().get(id).cloned()
    }

    /// Waits until `ready` holds for request `id`, at most `within`.
    pub(super) async fn wait_for(
        &self,
        id: &str,
        within: Duration,
        ready: impl Fn(&Seen) -> bool,
    ) -> Option<Seen> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(seen) = self.get(id).filter(|s| ready(s)) {
                return Some(seen);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }
}

/// The byte at `offset` of every body the kit and the probe exchange.
pub(super) fn pattern_byte(offset: u64) -> u8 {
    (offset % 251) as u8
}

/// `len` bytes of the pattern starting at `offset`.
pub(super) fn pattern(offset: u64, len: usize) -> Bytes {
    (0..len as u64).map(|i| pattern_byte(offset + i)).collect()
}

/// FNV-1a, folded over chunks: enough to tell a body intact from a body
/// corrupted, reordered or cut, without keeping 16 MiB around.
#[derive(Clone, Copy, Debug)]
pub(super) struct Digest {
    pub(super) len: u64,
    pub(super) hash: u64,
}

impl Default for Digest {
    fn default() -> Self {
        Digest {
            len: 0,
            hash: 0xcbf2_9ce4_8422_2325,
        }
    }
}

impl Digest {
    pub(super) fn update(&mut self, data: &[u8]) {
        for byte in data {
            self.hash ^= u64::from(*byte);
            self.hash = self.hash.wrapping_mul(0x0100_0000_01b3);
        }
        self.len += data.len() as u64;
    }

    /// The digest of `len` pattern bytes.
    pub(super) fn of_pattern(len: u64) -> Digest {
        let mut digest = Digest::default();
        let mut offset = 0;
        while offset < len {
            let piece = (len - offset).min(64 * 1024);
            digest.update(&pattern(offset, piece as usize));
            offset += piece;
        }
        digest
    }
}

/// The probe application.
#[derive(Debug)]
pub(super) struct Probe {
    pub(super) state: Arc<ProbeState>,
}

fn id_of(features: &Features) -> String {
    features
        .get::<RequestFeature>()
        .and_then(|r| r.headers.get(ID))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

fn header<'a>(ctx: &'a HttpContext, name: &str) -> &'a str {
    ctx.request()
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

impl Application for Probe {
    fn create_context(&self, features: Features) -> HttpContext {
        self.state
            .update(&id_of(&features), |s| s.events.push("create".into()));
        HttpContext::new(features)
    }

    fn process_request<'a>(&'a self, ctx: &'a mut HttpContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.process(ctx))
    }

    fn dispose_context(&self, ctx: &mut HttpContext, error: Option<&Error>) {
        let event = match error {
            Some(error) => format!("dispose:{error}"),
            None => "dispose".to_owned(),
        };
        self.state
            .update(&id_of(ctx.features()), |s| s.events.push(event));
    }
}

impl Probe {
    async fn process(&self, ctx: &mut HttpContext) -> Result<()> {
        let id = id_of(ctx.features());
        self.record(&id, ctx);
        match header(ctx, ACTION) {
            "body" => self.body(ctx).await,
            "fail" => Err(Error::app_msg("the probe fails before the head")),
            "fail-after-head" => {
                ctx.write(pattern(0, 10)).await?;
                ctx.flush().await?;
                Err(Error::app_msg("the probe fails after the head"))
            }
            "lifecycle" => self.lifecycle(&id, ctx).await,
            "wait" => self.wait(&id, ctx).await,
            "abort" => self.abort(&id, ctx).await,
            "trailers" => self.trailers(&id, ctx).await,
            "upgrade" => self.upgrade(&id, ctx).await,
            "status" => {
                ctx.response_mut().status = StatusCode::CREATED;
                let headers = &mut ctx.response_mut().headers;
                headers.append("x-probe-repeat", HeaderValue::from_static("one"));
                headers.append("x-probe-repeat", HeaderValue::from_static("two"));
                ctx.write("created").await
            }
            _ => {
                self.read_body(&id, ctx).await;
                ctx.write("ok").await
            }
        }
    }

    /// Records the request's parts and the features it sees.
    fn record(&self, id: &str, ctx: &HttpContext) {
        let request = ctx.request();
        let connection = ctx.connection().cloned();
        let addresses = ctx.features().get::<ServerAddresses>().map(|a| a.urls());
        let has_lifetime = ctx.lifetime().is_some();
        self.state.update(id, |s| {
            s.events.push("process".into());
            s.method = Some(request.method.clone());
            s.path = request.path.clone();
            s.path_base = request.path_base.clone();
            s.query = request.query.clone();
            s.raw_target = request.raw_target.clone();
            s.version = Some(request.version);
            s.headers = request.headers.clone();
            s.connection = connection;
            s.addresses = addresses;
            s.has_lifetime = has_lifetime;
        });
    }

    /// Reads the body to its end, recording its digest or the error.
    async fn read_body(&self, id: &str, ctx: &mut HttpContext) {
        let mut digest = Digest::default();
        loop {
            match ctx.request_body().chunk().await {
                Ok(Some(chunk)) => digest.update(&chunk),
                Ok(None) => break,
                Err(err) => {
                    let text = err.to_string();
                    self.state.update(id, |s| s.body_error = Some(text));
                    return;
                }
            }
        }
        self.state
            .update(id, |s| s.body = Some((digest.len, digest.hash)));
    }

    /// Answers `x-probe-size` pattern bytes, buffered or streamed.
    async fn body(&self, ctx: &mut HttpContext) -> Result<()> {
        let size: u64 = header(ctx, SIZE).parse().unwrap_or(0);
        if header(ctx, MODE) == "gated" {
            // Half, flushed; the kit opens the gate once it has it.
            let half = size / 2;
            ctx.write(pattern(0, half as usize)).await?;
            ctx.flush().await?;
            let permit = tokio::time::timeout(PATIENCE, self.state.gate.acquire()).await;
            match permit {
                Ok(Ok(permit)) => permit.forget(),
                _ => return Err(Error::app_msg("the probe's gate never opened")),
            }
            return ctx.write(pattern(half, (size - half) as usize)).await;
        }
        if header(ctx, MODE) != "streamed" {
            return ctx.write(pattern(0, size as usize)).await;
        }
        let mut offset = 0;
        while offset < size {
            let piece = (size - offset).min(16 * 1024);
            ctx.write(pattern(offset, piece as usize)).await?;
            ctx.flush().await?;
            offset += piece;
        }
        Ok(())
    }

    /// Two callbacks of each kind, recorded as they run.
    async fn lifecycle(&self, id: &str, ctx: &mut HttpContext) -> Result<()> {
        for n in 1..=2 {
            let state = self.state.clone();
            let tag = id.to_owned();
            ctx.on_starting(move |ctx| {
                state.update(&tag, |s| s.events.push(format!("starting:{n}")));
                ctx.response_mut()
                    .headers
                    .append("x-probe-started", HeaderValue::from(n));
                Ok(())
            })?;
            let state = self.state.clone();
            let tag = id.to_owned();
            ctx.on_completed(move |_| {
                state.update(&tag, |s| s.events.push(format!("completed:{n}")));
                Ok(())
            });
        }
        ctx.write("done").await
    }

    /// Holds the request until the kit opens the gate.
    async fn wait(&self, id: &str, ctx: &mut HttpContext) -> Result<()> {
        self.state.update(id, |s| s.started = true);
        let permit = tokio::time::timeout(PATIENCE, self.state.gate.acquire()).await;
        match permit {
            Ok(Ok(permit)) => permit.forget(),
            _ => return Err(Error::app_msg("the probe's gate never opened")),
        }
        ctx.write("done").await
    }

    /// Waits for the client to go away and records whether the lifetime
    /// fired.
    async fn abort(&self, id: &str, ctx: &mut HttpContext) -> Result<()> {
        let Some(lifetime) = ctx.lifetime().cloned() else {
            self.state.update(id, |s| s.started = true);
            return ctx.write("no lifetime").await;
        };
        self.state.update(id, |s| s.started = true);
        let fired = tokio::time::timeout(PATIENCE, lifetime.cancelled())
            .await
            .is_ok();
        self.state.update(id, |s| s.lifetime_fired = Some(fired));
        Ok(())
    }

    /// Reads the body and its trailers; answers with a trailer of its own.
    async fn trailers(&self, id: &str, ctx: &mut HttpContext) -> Result<()> {
        self.read_body(id, ctx).await;
        let received = ctx.features().get::<RequestTrailers>().map(|t| t.get());
        self.state.update(id, |s| s.trailers = received);
        let sends = ctx.features().contains::<ResponseTrailers>();
        ctx.response_mut().headers.insert(
            "x-probe-sends-trailers",
            HeaderValue::from_static(if sends { "yes" } else { "no" }),
        );
        if let Some(trailers) = ctx.features_mut().get_mut::<ResponseTrailers>() {
            trailers
                .headers
                .insert(TRAILER, HeaderValue::from_static("sent-after-the-body"));
        }
        ctx.response_mut()
            .headers
            .insert(http::header::TRAILER, HeaderValue::from_static(TRAILER));
        ctx.write("trailers").await?;
        ctx.flush().await
    }

    /// Upgrades and answers `ping` with `pong` on the raw connection.
    async fn upgrade(&self, id: &str, ctx: &mut HttpContext) -> Result<()> {
        let offered = ctx.features().contains_dyn::<dyn Upgrade>();
        self.state.update(id, |s| s.upgrade = Some(offered));
        if !offered {
            ctx.response_mut().status = StatusCode::NOT_IMPLEMENTED;
            return ctx.write("no upgrade").await;
        }
        ctx.response_mut()
            .headers
            .insert(http::header::UPGRADE, HeaderValue::from_static("probe"));
        ctx.response_mut().headers.insert(
            http::header::CONNECTION,
            HeaderValue::from_static("upgrade"),
        );
        let mut io = ctx.upgrade().await?;
        let mut ping = [0u8; 4];
        tokio::time::timeout(PATIENCE, io.read_exact(&mut ping))
            .await
            .map_err(|_| Error::app_msg("no ping after the upgrade"))??;
        if &ping == b"ping" {
            io.write_all(b"pong").await?;
            io.flush().await?;
        }
        io.shutdown().await?;
        Ok(())
    }
}
