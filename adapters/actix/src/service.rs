//! One request on an actix worker: actix's request in, the Application's
//! response out.
//!
//! The Application runs as an [`AppService`] (the core's pipe): its future is
//! polled by actix's handler future, then by actix pulling the response
//! body, so no task is spawned per request. Actix drops both when the client
//! goes away; the pipe then fires the request's [`RequestLifetime`] and
//! finishes the lifecycle on the worker's runtime.

use std::cell::{Cell, OnceCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use actix_http::ConnectionType;
use actix_web::body::{BodySize, BoxBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::HttpResponse;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{Response, StatusCode};
use serverbridge::body::RequestBody;
use serverbridge::feature::{ConnectionInfo, MaxRequestBodySize, RequestFeature, RequestId};
use serverbridge::tower::AppService;
use serverbridge::{Error, FeaturePool, Features, PipeBody};

use crate::body::{ActixBody, PayloadBody};
use crate::convert;

/// What `on_connect` records per connection (in actix's connection data).
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) info: ConnectionInfo,
    /// Requests served on this connection so far (for [`RequestId`]).
    pub(crate) requests: Cell<u64>,
    /// The connection info over the server's features: every request's
    /// defaults layer, built on the first request.
    defaults: OnceCell<Arc<Features>>,
    /// A request on it asked for the close (or took the connection): a
    /// pipelined request after it must not run (RFC 9112 §9.6).
    closing: Cell<bool>,
}

impl Connection {
    pub(crate) fn new(id: u64, local: SocketAddr, peer: SocketAddr) -> Connection {
        Connection {
            info: ConnectionInfo::tcp(format!("actix-{id}"), local, peer),
            requests: Cell::new(0),
            defaults: OnceCell::new(),
            closing: Cell::new(false),
        }
    }

    fn defaults(&self, server: Option<&Arc<Features>>) -> Arc<Features> {
        self.defaults
            .get_or_init(|| {
                let mut layer = Features::with_capacity(1, server.cloned());
                layer.insert(self.info.clone());
                Arc::new(layer)
            })
            .clone()
    }
}

/// How long a request pipelined after the connection's close waits before
/// the connection is dropped: the responses before it go out first.
const AFTER_CLOSE: std::time::Duration = std::time::Duration::from_millis(20);

/// Per worker: the application and the request settings.
pub(crate) struct Worker {
    pub(crate) service: AppService,
    pub(crate) max_request_body_size: Option<u64>,
    /// Finished requests' collections, refilled for the next ones.
    pub(crate) pool: Arc<FeaturePool>,
    /// Held (never used) so that [`ActixServer::stop`](crate::ActixServer)
    /// learns, by the channel closing, that every worker is gone.
    pub(crate) _alive: tokio::sync::mpsc::Sender<()>,
}

/// Serves one request.
pub(crate) async fn handle(
    worker: Rc<Worker>,
    request: ServiceRequest,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let (http_request, payload) = request.into_parts();
    let head = http_request.head();
    let is_head = head.method == http02::Method::HEAD;
    let http10 = head.version == http02::Version::HTTP_10;
    // actix frames a response by the connection state of the last request
    // it decoded, not this one's (a pipelined request after this one may
    // have replaced it): this request's own close is said on its response,
    // which makes actix close after it.
    let asked_close = head.connection_type() == ConnectionType::Close;
    // An upgrade request (not offered here) or a CONNECT: actix hands over
    // the rest of the connection as its payload, which the app must not
    // wait on; it gets no body, and the connection closes after the answer.
    let takes_connection =
        head.method == http02::Method::CONNECT || head.connection_type() == ConnectionType::Upgrade;
    let payload = if takes_connection {
        Payload::None
    } else {
        payload
    };
    let connection = http_request.conn_data::<Connection>();
    if connection.is_some_and(|c| c.closing.get()) {
        // Pipelined after a request that closes the connection: actix
        // decoded it already. The app does not run (RFC 9112 §9.6); the
        // connection is dropped once the responses before it have had
        // their moment to go out (a failed body drops what actix still
        // buffers).
        tokio::time::sleep(AFTER_CLOSE).await;
        return Ok(ServiceResponse::new(http_request, dropped_connection()));
    }
    if asked_close || takes_connection {
        if let Some(connection) = connection {
            connection.closing.set(true);
        }
    }
    let response = match into_request(&worker, &http_request, payload) {
        Ok(features) => {
            match worker.service.call_pooled(features, &worker.pool).await {
                Ok(response) => {
                    let mut response = into_actix(response, is_head, http10);
                    if asked_close || takes_connection {
                        response
                            .head_mut()
                            .set_connection_type(ConnectionType::Close);
                    }
                    response
                }
                Err(err) => {
                    // The request ended without a head (the app aborted it).
                    tracing::debug!(error = %err, "no response head: dropping the connection");
                    dropped_connection_with(err)
                }
            }
        }
        Err(err) => {
            let status = err.status().unwrap_or(StatusCode::BAD_REQUEST);
            let mut response = HttpResponse::new(convert::status(status));
            response
                .head_mut()
                .set_connection_type(ConnectionType::Close);
            response.map_into_boxed_body()
        }
    };
    Ok(ServiceResponse::new(http_request, response))
}

/// A response whose body fails at once: actix drops the connection, the
/// closest to "abort" it offers.
fn dropped_connection_with(err: Error) -> HttpResponse<BoxBody> {
    let mut response = HttpResponse::with_body(
        http02::StatusCode::INTERNAL_SERVER_ERROR,
        ActixBody::failed(err),
    );
    response
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    response.map_into_boxed_body()
}

/// [`dropped_connection_with`] for a request after the close.
fn dropped_connection() -> HttpResponse<BoxBody> {
    dropped_connection_with(Error::closed(
        "a pipelined request after the connection's close",
    ))
}

/// A finished request's collection to refill, or a new one with the
/// features every request gets.
///
/// Neither trailers feature is ever in it: actix delivers no request
/// trailers and sends no response trailers, so the features say so (an app
/// finds neither) rather than dropping them silently. Keeping the set fixed
/// also lets [`FeaturePool`] take the collection back after each request.
fn collection(worker: &Worker) -> Features {
    if let Some(features) = worker.pool.take().filter(|f| {
        f.contains::<RequestFeature>()
            && f.contains::<RequestId>()
            && f.contains::<MaxRequestBodySize>()
    }) {
        return features;
    }
    let mut features = Features::with_capacity(10, None);
    features.insert(RequestFeature::default());
    features.insert(RequestId(String::new()));
    features.insert(MaxRequestBodySize::new(worker.max_request_body_size));
    features
}

/// The request's features: actix's request converted to `http` 1.x in a
/// reused collection (see [`FeaturePool`]).
fn into_request(
    worker: &Worker,
    actix: &actix_web::HttpRequest,
    payload: Payload,
) -> Result<Features, Error> {
    let head = actix.head();
    let method = convert::method(&head.method)?;
    let version = convert::version(head.version);
    let mut features = collection(worker);
    let max = worker.max_request_body_size;
    let limit = features.reset_or_insert(
        |limit: &mut MaxRequestBodySize| limit.reset(max),
        || MaxRequestBodySize::new(max),
    );
    // `collection` always holds it.
    let request = features.get_mut::<RequestFeature>().ok_or_else(|| {
        Error::app_msg("the request's collection has no RequestFeature")
            .with_status(StatusCode::INTERNAL_SERVER_ERROR)
    })?;
    // The last request's map, refilled in place (its capacity, and a
    // repeated lone Host, kept).
    convert::request_headers(&head.headers, &mut request.headers)?;
    // Before the target: the forms a target may take depend on it.
    request.method = method;
    // The target as sent: the origin form (HTTP/2's `:path`), HTTP/1's
    // absolute form whole, the authority form of a CONNECT.
    let uri = &head.uri;
    let set = match (uri.path_and_query(), uri.scheme()) {
        (Some(target), None) => request.set_target(target.as_str()),
        (Some(target), Some(_)) if version == http::Version::HTTP_2 => {
            request.set_target(target.as_str())
        }
        _ => request.set_target(&uri.to_string()),
    };
    if !set {
        return Err(convert::bad_request(format!("invalid target {uri}")));
    }
    request.scheme = http::uri::Scheme::HTTP;
    request.path_base.clear();
    request.version = version;
    // A request without a body gets no stream.
    request.body = match payload {
        Payload::None => RequestBody::empty(),
        payload => match declared_length(&request.headers) {
            Some(0) => RequestBody::empty(),
            length => RequestBody::new(PayloadBody::spawn(payload, length)).with_limit(limit),
        },
    };
    match actix.conn_data::<Connection>() {
        Some(connection) => {
            let n = connection.requests.get() + 1;
            connection.requests.set(n);
            if let Some(id) = features.get_mut::<RequestId>() {
                id.set_sequence(&connection.info.id, n);
            }
            features.set_defaults(Some(connection.defaults(worker.service.server_features())));
        }
        None => {
            features.remove::<RequestId>();
            features.set_defaults(worker.service.server_features().cloned());
        }
    }
    Ok(features)
}

/// The Content-Length the request declared, when it framed the body with it.
fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    if headers.contains_key(TRANSFER_ENCODING) {
        return None;
    }
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// The Application's response as actix's, with the framing actix needs.
///
/// An HTTP/1.0 client has no chunked framing (RFC 9112 §6.1), so a body of
/// unknown length to one is delimited by the close, as on the built-in
/// server; actix would chunk it whatever the request's version.
fn into_actix(response: Response<PipeBody>, is_head: bool, http10: bool) -> HttpResponse<BoxBody> {
    let (parts, body) = response.into_parts();
    let status = parts.status;
    let framing = convert::framing(&parts.headers);
    let size = if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        BodySize::None
    } else if let Some(length) = framing.length {
        // Actix writes Content-Length from the size.
        BodySize::Sized(length)
    } else if is_head {
        BodySize::None
    } else {
        BodySize::Stream
    };
    // Made with its final body: one set afterwards moves the response.
    let mut actix = HttpResponse::with_body(
        convert::status(status),
        BoxBody::new(ActixBody::new(body, size)),
    );
    convert::response_headers(&parts.headers, actix.headers_mut());
    if !matches!(size, BodySize::Sized(_)) {
        convert::content_lengths(&parts.headers, actix.headers_mut());
    }
    let close_delimited = http10 && size == BodySize::Stream;
    if close_delimited {
        actix.head_mut().no_chunking(true);
    }
    if framing.close || close_delimited {
        actix.head_mut().set_connection_type(ConnectionType::Close);
    }
    actix
}
