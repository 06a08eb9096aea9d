//! The per-connection hyper `Service`: hyper's request becomes the request's
//! features (nothing copied), and the core's pipe turns what the app pushes
//! into the response hyper pulls.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TE, UPGRADE};
use http::uri::Scheme;
use http::{HeaderValue, Method, Request, StatusCode, Version};
use http_body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serverbridge::body::RequestBody;
use serverbridge::feature::{
    MaxRequestBodySize, OnUpgrade, RequestFeature, RequestId, RequestTrailers, ResponseTrailers,
    Upgrade, Upgraded,
};
use serverbridge::tower::AppService;
use serverbridge::{
    Error, FeaturePool, Features, HttpContext, PipeBody, PipeResponse, ReasonPhrase, Result,
};
use tokio_util::sync::CancellationToken;

/// Serves one connection's requests.
pub(crate) struct ConnService {
    app: AppService,
    /// Answers, instead of the app, a request whose target's form its
    /// method does not take ([`refuse_target`]).
    refuse: AppService,
    /// `ConnectionInfo`, over the server's features: the defaults layer of
    /// every request on the connection.
    connection: Arc<Features>,
    connection_id: Arc<str>,
    sequence: AtomicU64,
    max_request_body_size: Option<u64>,
    /// Finished requests' collections, refilled in place for the next ones
    /// (one at a time on HTTP/1, one per stream in flight on HTTP/2).
    pool: Arc<FeaturePool>,
    /// The server's stop signal, when keep-alive is on: an HTTP/1.0
    /// response is marked keep-alive only while the server is not stopping.
    http10_keep_alive: Option<CancellationToken>,
}

impl fmt::Debug for ConnService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnService")
            .field("connection_id", &self.connection_id)
            .finish_non_exhaustive()
    }
}

impl ConnService {
    pub(crate) fn new(
        app: AppService,
        refuse: AppService,
        connection: Arc<Features>,
        connection_id: Arc<str>,
        max_request_body_size: Option<u64>,
        http10_keep_alive: Option<CancellationToken>,
    ) -> Self {
        ConnService {
            app,
            refuse,
            connection,
            connection_id,
            sequence: AtomicU64::new(0),
            max_request_body_size,
            pool: Arc::new(FeaturePool::default()),
            http10_keep_alive,
        }
    }

    /// Writes `<connection id>:<n>` into `id`: the built-in server's (and
    /// Kestrel's) format.
    fn write_request_id(&self, id: &mut RequestId) {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        id.set_sequence(&self.connection_id, n);
    }

    /// A finished request's collection to refill, or a new one with the
    /// features every request gets.
    fn collection(&self) -> Features {
        if let Some(features) = self.pool.take().filter(|f| {
            f.contains::<RequestFeature>()
                && f.contains::<RequestId>()
                && f.contains::<MaxRequestBodySize>()
        }) {
            return features;
        }
        let mut features = Features::with_capacity(10, Some(self.connection.clone()));
        features.insert(RequestFeature::default());
        features.insert(RequestId(String::new()));
        features.insert(MaxRequestBodySize::new(self.max_request_body_size));
        features
    }
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = http::Response<serverbridge::PipeBody>;
    type Error = Error;
    type Future = Respond;

    fn call(&self, request: Request<Incoming>) -> Respond {
        let (mut parts, incoming) = request.into_parts();
        let http10_keep_alive = parts.version == Version::HTTP_10
            && self.http10_keep_alive.is_some()
            && lists(&parts.headers, &CONNECTION, "keep-alive");
        let on_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
        let has_body = !incoming.is_end_stream();
        let upgradable = on_upgrade.is_some()
            && !has_body
            && parts.version == Version::HTTP_11
            && parts.method != Method::CONNECT
            && any_value(&parts.headers, &UPGRADE, |_| true)
            && lists(&parts.headers, &CONNECTION, "upgrade");

        let mut features = self.collection();
        let max = self.max_request_body_size;
        let limit = features.reset_or_insert(
            |limit: &mut MaxRequestBodySize| limit.reset(max),
            || MaxRequestBodySize::new(max),
        );
        // A request without a body gets no boxed stream and no trailers:
        // GETs stay cheap.
        let body = if has_body {
            let incoming = http_body_util::BodyExt::map_err(incoming, body_error);
            let mut body = RequestBody::new(incoming).with_limit(limit);
            features.insert(RequestTrailers::attach(&mut body));
            body
        } else {
            features.remove::<RequestTrailers>();
            RequestBody::empty()
        };
        if let Some(id) = features.get_mut::<RequestId>() {
            self.write_request_id(id);
        }
        // `ResponseTrailers` only where hyper sends them: HTTP/2, and an
        // HTTP/1.1 request whose `TE` lists `trailers` (hyper drops them
        // otherwise; HTTP/1.0 has no chunked framing to carry them).
        let trailers = match parts.version {
            Version::HTTP_2 => true,
            Version::HTTP_11 => lists(&parts.headers, &TE, "trailers"),
            _ => false,
        };
        if !trailers {
            features.remove::<ResponseTrailers>();
        } else if !features.contains::<ResponseTrailers>() {
            features.insert(ResponseTrailers::default());
        }
        match on_upgrade.filter(|_| upgradable) {
            Some(on_upgrade) => {
                features.insert_dyn::<dyn Upgrade>(Box::new(HyperUpgrade {
                    on_upgrade: Some(on_upgrade),
                }));
            }
            None => {
                features.remove_dyn::<dyn Upgrade>();
            }
        }

        let h2 = parts.version == Version::HTTP_2;
        // HTTP/2 carries the host in `:authority`; apps (and the built-in
        // server's requests) read it from `Host`, as Kestrel does. A `Host`
        // beside it must name the same (RFC 9113 §8.3.1: a server SHOULD
        // treat another as malformed): two hosts in one request are what
        // Host-confusion attacks rely on.
        let mut conflicting_host = false;
        if h2 {
            if let Some(authority) = parts.uri.authority() {
                let mut hosts = parts.headers.get_all(HOST).iter();
                match (hosts.next(), hosts.next()) {
                    (None, _) => {
                        if let Ok(value) = HeaderValue::from_str(authority.as_str()) {
                            parts.headers.insert(HOST, value);
                        }
                    }
                    (Some(host), None) => {
                        conflicting_host = !host
                            .as_bytes()
                            .eq_ignore_ascii_case(authority.as_str().as_bytes());
                    }
                    (Some(_), Some(_)) => conflicting_host = true,
                }
            }
        }
        // The raw target: the origin form as sent (HTTP/2's `:path`); the
        // absolute form (an HTTP/1 request with a scheme) as a whole.
        let absolute = !h2 && parts.uri.scheme().is_some();
        let raw = match parts.uri.path_and_query() {
            // The asterisk form's `*` too (HTTP/2 sends it as `:path` with
            // a scheme and authority around it).
            Some(target) if !absolute => Some(target.clone()),
            _ => None,
        };
        // hyper takes any target `http::Uri` parses; the forms a method may
        // use are checked as the built-in server checks them (an origin
        // form, the usual case, needs no check). On HTTP/2, h2 refuses a
        // `:path` that is neither `/…` nor `*`; `*` is for OPTIONS only
        // (RFC 9113 §8.3.1).
        let refused = if h2 {
            conflicting_host || (parts.uri.path() == "*" && parts.method != Method::OPTIONS)
        } else {
            !raw.as_ref().is_some_and(|t| t.as_str().starts_with('/')) && !target_form_ok(&parts)
        };
        match features.get_mut::<RequestFeature>() {
            Some(request) => request.refill(parts, body, raw.as_ref().map(|t| t.as_str())),
            None => {
                features.insert(RequestFeature::from_parts(parts, body));
            }
        }
        // The scheme is what the connection is, never what the client
        // claims (an HTTP/2 `:scheme`, an HTTP/1 absolute-form target):
        // this adapter does not terminate TLS, so `http`.
        if let Some(request) = features.get_mut::<RequestFeature>() {
            if request.scheme != Scheme::HTTP {
                request.scheme = Scheme::HTTP;
            }
        }
        let app = if refused { &self.refuse } else { &self.app };
        Respond {
            inner: app.call_pooled(features, &self.pool),
            http10_keep_alive: http10_keep_alive
                .then(|| self.http10_keep_alive.clone())
                .flatten(),
        }
    }
}

/// What a failed read of hyper's request body means to the app, as on the
/// built-in server: a malformed body (a bad chunk line) is the client's
/// fault, a parse error with `400`; anything else (the connection closed or reset mid-body,
/// an HTTP/2 stream reset by the client, a body cut short) means the client
/// is gone: [`Error::is_closed`]. (hyper's own type would otherwise reach
/// the app as an application error, answered with `500`.)
fn body_error(err: hyper::Error) -> Error {
    if err.is_timeout() {
        return Error::timeout(format!("the request body: {err}"));
    }
    // hyper's HTTP/1 decoder reports a malformed body (chunk line, chunk
    // data end, trailers) as an `io::Error` under its own error; a body cut
    // short, a reset or an HTTP/2 stream reset has none of the malformed
    // kinds.
    let io = std::iter::successors(std::error::Error::source(&err), |cause| cause.source())
        .find_map(|cause| cause.downcast_ref::<std::io::Error>());
    match io {
        _ if err.is_parse() => Error::parse(
            format!("malformed request body: {err}"),
            StatusCode::BAD_REQUEST,
        ),
        Some(io) => Error::body_read(io),
        None => Error::body_cut_short(format!("the request body ended early: {err}")),
    }
}

/// Whether the request's target has a form its method takes (RFC 9112
/// §3.2): `RequestFeature::set_target`'s rules, the built-in server's.
fn target_form_ok(parts: &http::request::Parts) -> bool {
    let mut scratch = RequestFeature {
        method: parts.method.clone(),
        ..RequestFeature::default()
    };
    scratch.set_target(&parts.uri.to_string())
}

/// The app for a request [`target_form_ok`] refuses: `400`, and the close.
pub(crate) async fn refuse_target(ctx: &mut HttpContext) -> Result<()> {
    let response = ctx.response_mut();
    response.status = StatusCode::BAD_REQUEST;
    response
        .headers
        .insert(CONNECTION, HeaderValue::from_static("close"));
    Ok(())
}

/// Whether a `name` field's value passes `test`. A request carries a
/// handful of fields, and standard names compare as small integers: one
/// pass over a small map is cheaper than hashing the name (a large map is
/// cheaper to look up).
fn any_value(
    headers: &http::HeaderMap,
    name: &http::HeaderName,
    test: impl Fn(&HeaderValue) -> bool,
) -> bool {
    if headers.len() > 16 {
        return headers.get_all(name).iter().any(test);
    }
    headers.iter().any(|(n, v)| n == name && test(v))
}

/// Whether the comma-separated `name` field lists `token` (any case):
/// `Connection: keep-alive`, `TE: trailers` (RFC 9110 §7.6.1, §10.1.4).
fn lists(headers: &http::HeaderMap, name: &http::HeaderName, token: &str) -> bool {
    any_value(headers, name, |value| {
        value
            .to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// The response future hyper gets: the pipe's, with the app's reason
/// phrase where hyper reads it, plus HTTP/1.0 keep-alive.
///
/// hyper keeps an HTTP/1.0 connection open only when the response says
/// `Connection: keep-alive` (RFC 9112 Appendix C.2.2), which an app does
/// not write (the built-in server adds it as it frames the response). So
/// a response to an HTTP/1.0 request that asked for keep-alive says so
/// when it has a length (a response without one is delimited by the
/// close), did not ask for the close itself, and the server is not
/// stopping.
pub(crate) struct Respond {
    inner: PipeResponse,
    /// The stop signal, for an HTTP/1.0 request that asked for keep-alive.
    http10_keep_alive: Option<CancellationToken>,
}

impl fmt::Debug for Respond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Respond").finish_non_exhaustive()
    }
}

impl Future for Respond {
    type Output = Result<http::Response<PipeBody>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // Edited where it lies: no move of the response in and out of a
        // `Result` on the way through.
        let mut polled = Pin::new(&mut this.inner).poll(cx);
        let Poll::Ready(Ok(response)) = &mut polled else {
            return polled;
        };
        // The app's own reason phrase, in the extension hyper writes on
        // HTTP/1 (the pipe carries it in the core's).
        if let Some(ReasonPhrase(reason)) = response.extensions_mut().remove::<ReasonPhrase>() {
            if let Ok(reason) = hyper::ext::ReasonPhrase::try_from(reason) {
                response.extensions_mut().insert(reason);
            }
        }
        if let Some(stopping) = &this.http10_keep_alive {
            let delimited = response.headers().contains_key(CONTENT_LENGTH)
                || response.status() == StatusCode::NO_CONTENT
                || response.status() == StatusCode::NOT_MODIFIED;
            if delimited
                && !stopping.is_cancelled()
                && !lists(response.headers(), &CONNECTION, "close")
            {
                response
                    .headers_mut()
                    .append(CONNECTION, HeaderValue::from_static("keep-alive"));
            }
        }
        polled
    }
}

/// The [`Upgrade`] feature over hyper's upgrade API: after the app's `101`
/// head goes out, hyper hands over the connection (with any bytes it read
/// past the head).
struct HyperUpgrade {
    on_upgrade: Option<hyper::upgrade::OnUpgrade>,
}

impl Upgrade for HyperUpgrade {
    fn is_upgradable(&self) -> bool {
        self.on_upgrade.is_some()
    }

    fn on_upgrade(&mut self) -> Result<OnUpgrade> {
        let on_upgrade = self.on_upgrade.take().ok_or_else(|| {
            Error::contract(
                "upgrade.not-upgradable",
                "the connection was claimed already",
            )
        })?;
        Ok(Box::pin(async move {
            let upgraded = on_upgrade
                .await
                .map_err(|err| Error::closed(format!("the upgrade failed: {err}")))?;
            Ok(Upgraded::new(TokioIo::new(upgraded)))
        }))
    }
}
