//! The connection state machine: read a head, run the request, finish the
//! exchange, keep the connection alive or close it. Generic over any
//! `AsyncRead + AsyncWrite` transport (a socket, or TestServer's in-memory
//! duplex).

use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use http::uri::Scheme;
use http::{StatusCode, Version};
use http_body::SizeHint;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::decode::{Decoded, Decoder};
use super::encode::{BodyFraming, HeadContext};
use super::io::{BodyState, Http1Body, Http1Upgrade, Shared, WatchPeer};
use super::limits::Limits;
use super::parse::{parse_head, Framing, Parsed, RequestHead};
use super::sink::Http1Sink;
use crate::application::BoxApplication;
use crate::body::RequestBody;
use crate::error::{Error, Result};
use crate::feature::{
    ConnectionClose, ConnectionInfo, MaxRequestBodySize, RequestFeature, RequestId,
    RequestLifetime, RequestTrailers, ResponseBody, ResponseFeature, ResponseTrailers, Upgrade,
};
use crate::features::Features;
use crate::lifecycle::run_request;

/// What every connection of a server shares.
pub(crate) struct ConnConfig {
    pub(crate) limits: Limits,
    pub(crate) scheme: Scheme,
    pub(crate) server_features: Arc<Features>,
    /// Graceful stop: finish the current exchange with `Connection: close`,
    /// close idle connections at once.
    pub(crate) stopping: CancellationToken,
    /// Hard stop: drop the connection now.
    pub(crate) abort: CancellationToken,
}

/// Per-exchange flags shared between the sink and the loop.
pub(crate) struct Exchange {
    pub(crate) closing: AtomicBool,
    pub(crate) aborted: AtomicBool,
    keep_alive: bool,
    close_requested: ConnectionClose,
    stopping: CancellationToken,
}

impl Exchange {
    /// Whether the response must say `Connection: close`.
    pub(crate) fn must_close(&self) -> bool {
        !self.keep_alive || self.close_requested.is_requested() || self.stopping.is_cancelled()
    }
}

/// Serves one connection to its end.
pub(crate) async fn serve<T>(
    io: T,
    info: ConnectionInfo,
    app: BoxApplication,
    config: Arc<ConnConfig>,
) where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (read, write) = tokio::io::split(io);
    let shared = Shared::new(
        Box::new(read),
        Box::new(write),
        BytesMut::with_capacity(8 * 1024),
    );
    let id = info.id.clone();
    let mut connection = Features::with_defaults(config.server_features.clone());
    connection.insert(info);
    let connection = Arc::new(connection);
    let span = tracing::debug_span!("connection", id = %id);
    let _enter = span.enter();
    let mut sequence = 0u64;
    loop {
        let head = match read_head(&shared, &config, sequence == 0).await {
            Ok(Some(head)) => head,
            Ok(None) => break,
            Err(err) => {
                tracing::debug!(error = %err, "rejected request");
                reject(&shared, &err).await;
                break;
            }
        };
        sequence += 1;
        let keep = exchange(&shared, &config, &connection, &id, sequence, head, &app).await;
        if !keep {
            break;
        }
    }
    if !shared.upgraded.load(Ordering::Acquire) {
        shutdown(&shared).await;
    }
}

async fn shutdown(shared: &Shared) {
    use tokio::io::AsyncWriteExt;
    let _ = shared.flush().await;
    let io = shared.write().io.take();
    if let Some(mut io) = io {
        let _ = io.shutdown().await;
    }
}

/// Sends a bare error response and lets the caller close.
async fn reject(shared: &Shared, err: &Error) {
    let status = err.status().unwrap_or(StatusCode::BAD_REQUEST);
    {
        let mut write = shared.write();
        let buf = &mut write.buf;
        buf.put_slice(b"HTTP/1.1 ");
        buf.put_slice(status.as_str().as_bytes());
        buf.put_u8(b' ');
        buf.put_slice(status.canonical_reason().unwrap_or("").as_bytes());
        buf.put_slice(b"\r\ncontent-length: 0\r\nconnection: close\r\ndate: ");
        buf.put_slice(super::date::now().as_bytes());
        buf.put_slice(b"\r\n\r\n");
    }
    let _ = shared.flush().await;
}

/// Waits for and parses the next request head. `Ok(None)`: the connection
/// ends quietly (peer closed, idle timeout, graceful stop while idle).
async fn read_head(
    shared: &Shared,
    config: &ConnConfig,
    first: bool,
) -> Result<Option<RequestHead>> {
    let limits = &config.limits;
    let mut started: Option<Instant> = None;
    loop {
        {
            let mut read = shared.read();
            if !read.buf.is_empty() {
                started.get_or_insert_with(Instant::now);
                match parse_head(&read.buf, limits, true)? {
                    Parsed::Complete(head, used) => {
                        let _ = read.buf.split_to(used);
                        return Ok(Some(*head));
                    }
                    Parsed::Partial => {}
                }
            }
            if read.eof || read.failed {
                return Ok(None);
            }
        }
        let fill = std::future::poll_fn(|cx| shared.poll_fill(cx));
        let outcome = match started {
            None => {
                let idle = if first {
                    limits.request_headers_timeout
                } else {
                    limits.keep_alive_timeout
                };
                tokio::select! {
                    biased;
                    _ = config.stopping.cancelled() => return Ok(None),
                    _ = config.abort.cancelled() => return Ok(None),
                    read = tokio::time::timeout(idle, fill) => match read {
                        Ok(read) => read,
                        Err(_) => return Ok(None),
                    },
                }
            }
            Some(start) => {
                let deadline = start + limits.request_headers_timeout;
                tokio::select! {
                    biased;
                    _ = config.abort.cancelled() => return Ok(None),
                    read = tokio::time::timeout_at(deadline, fill) => match read {
                        Ok(read) => read,
                        Err(_) => {
                            return Err(Error::timeout("request headers not received in time")
                                .with_status(StatusCode::REQUEST_TIMEOUT))
                        }
                    },
                }
            }
        };
        match outcome {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
}

fn request_id(connection: &str, n: u64) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut id = String::with_capacity(connection.len() + 9);
    id.push_str(connection);
    id.push(':');
    for shift in (0..8).rev() {
        id.push(char::from(HEX[((n >> (shift * 4)) & 0xF) as usize]));
    }
    id
}

/// Runs one exchange; returns whether the connection may carry another.
async fn exchange(
    shared: &Arc<Shared>,
    config: &ConnConfig,
    connection: &Arc<Features>,
    id: &str,
    sequence: u64,
    head: RequestHead,
    app: &BoxApplication,
) -> bool {
    let limits = &config.limits;
    let lifetime = RequestLifetime::new();
    *shared.lifetime.lock().unwrap_or_else(|p| p.into_inner()) = Some(lifetime.clone());
    let close_requested = ConnectionClose::default();
    let exchange = Arc::new(Exchange {
        closing: AtomicBool::new(false),
        aborted: AtomicBool::new(false),
        keep_alive: head.keep_alive,
        close_requested: close_requested.clone(),
        stopping: config.stopping.clone(),
    });
    shared.write().response_started = false;

    let limit = MaxRequestBodySize::new(limits.max_request_body_size);
    let (mut body, chunked) = match head.framing {
        Framing::Empty => (RequestBody::empty(), false),
        Framing::Length(n) => {
            shared.read().body = Some(BodyState {
                decoder: Decoder::length(n),
                send_continue: head.expect_continue,
            });
            let hint = SizeHint::with_exact(n);
            (
                RequestBody::new(Http1Body {
                    shared: shared.clone(),
                    hint,
                    limit: limit.clone(),
                    seen: 0,
                    close: close_requested.clone(),
                }),
                false,
            )
        }
        Framing::Chunked => {
            shared.read().body = Some(BodyState {
                decoder: Decoder::chunked(
                    limits.max_chunk_line_size,
                    limits.max_request_headers_total_size,
                ),
                send_continue: head.expect_continue,
            });
            let hint = SizeHint::default();
            (
                RequestBody::new(Http1Body {
                    shared: shared.clone(),
                    hint,
                    limit: limit.clone(),
                    seen: 0,
                    close: close_requested.clone(),
                }),
                true,
            )
        }
    };
    body = body.with_limit(limit.clone());
    let trailers = chunked.then(|| RequestTrailers::attach(&mut body));
    let http10 = head.version == Version::HTTP_10;
    let sink = Http1Sink {
        shared: shared.clone(),
        exchange: exchange.clone(),
        cx: HeadContext {
            head_request: head.method == http::Method::HEAD,
            http10,
            closing: false,
            keep_alive_10: http10 && head.keep_alive,
            connect_request: head.method == http::Method::CONNECT,
        },
        framing: BodyFraming::None,
    };
    let upgradable = head.upgrade && head.framing == Framing::Empty;
    let form = head.form;
    let request = RequestFeature {
        method: head.method,
        scheme: config.scheme.clone(),
        path_base: String::new(),
        path: head.path,
        query: head.query,
        raw_target: head.target,
        version: head.version,
        headers: head.headers,
        body,
    };
    let span = tracing::debug_span!(
        "request",
        method = %request.method,
        target = %request.raw_target,
        form = ?form
    );
    let _enter = span.enter();

    let mut features = Features::with_capacity(12, Some(connection.clone()));
    features.insert(request);
    features.insert(ResponseFeature::default());
    features.insert_dyn::<dyn ResponseBody>(Box::new(sink));
    features.insert(lifetime.clone());
    features.insert(RequestId(request_id(id, sequence)));
    features.insert(limit);
    features.insert(close_requested);
    if let Some(trailers) = trailers {
        features.insert(trailers);
    }
    if !http10 {
        features.insert(ResponseTrailers::default());
    }
    features.insert_dyn::<dyn Upgrade>(Box::new(Http1Upgrade {
        shared: shared.clone(),
        upgradable,
        claimed: false,
    }));

    let outcome = {
        let mut run = pin!(run_request(&**app, features));
        let mut watching = true;
        loop {
            tokio::select! {
                biased;
                outcome = &mut run => break Some(outcome),
                _ = WatchPeer { shared }, if watching => {
                    watching = false;
                    shared.peer_gone();
                }
                _ = config.abort.cancelled() => break None,
            }
        }
    };
    *shared.lifetime.lock().unwrap_or_else(|p| p.into_inner()) = None;
    let Some(outcome) = outcome else {
        return false;
    };
    if shared.upgraded.load(Ordering::Acquire) {
        return false;
    }
    if let Some(err) = &outcome.error {
        tracing::debug!(error = %err, "request failed");
    }
    if !outcome.completed || exchange.aborted.load(Ordering::Relaxed) {
        // Drop what is queued: an aborted response must not look complete.
        shared.write().buf.clear();
        if let Some(io) = shared.write().io.take() {
            drop(io);
        }
        return false;
    }
    let keep = !exchange.closing.load(Ordering::Relaxed)
        && !exchange.must_close()
        && drain(shared, limits).await;
    if !keep {
        return false;
    }
    // Pipelining: when the next request is already here, its response goes
    // out with this one in a single write.
    let next_ready = {
        let read = shared.read();
        read.buf.windows(4).any(|w| w == b"\r\n\r\n")
    };
    if !next_ready && shared.flush().await.is_err() {
        return false;
    }
    !shared.read().eof
}

/// Reads and drops what the app left of the request body, within the drain
/// bounds. Returns whether the connection is reusable.
async fn drain(shared: &Shared, limits: &Limits) -> bool {
    let mut drained = 0u64;
    let work = async {
        loop {
            {
                let mut read = shared.read();
                let read = &mut *read;
                let Some(body) = read.body.as_mut() else {
                    return true;
                };
                if body.send_continue {
                    // The client waits for 100 before sending the body: it
                    // was never asked for, so the connection cannot be reused.
                    read.body = None;
                    return false;
                }
                loop {
                    match body.decoder.decode(&mut read.buf) {
                        Ok(Decoded::Data(data)) => {
                            drained += data.len() as u64;
                            if drained > limits.max_drain_size {
                                read.body = None;
                                return false;
                            }
                        }
                        Ok(Decoded::Trailers(_)) | Ok(Decoded::End) => {
                            read.body = None;
                            return true;
                        }
                        Ok(Decoded::NeedMore) => break,
                        Err(_) => {
                            read.body = None;
                            return false;
                        }
                    }
                }
                if read.eof || read.failed {
                    read.body = None;
                    return false;
                }
            }
            // About to wait for the client: the response goes out first.
            if shared.flush().await.is_err() {
                return false;
            }
            match std::future::poll_fn(|cx| shared.poll_fill(cx)).await {
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            }
        }
    };
    let reusable = tokio::time::timeout(limits.drain_timeout, work)
        .await
        .unwrap_or(false);
    if !reusable {
        shared.read().body = None;
    }
    reusable
}
