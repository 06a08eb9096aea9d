//! One request on an actix worker: actix's request in, the Application's
//! response out.
//!
//! The Application runs as an [`AppService`] (the core's pipe): its future is
//! polled by actix's handler future, then by actix pulling the response
//! body, so no task is spawned per request. Actix drops both when the client
//! goes away; the pipe then fires the request's [`RequestLifetime`] and
//! finishes the lifecycle on the worker's runtime.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;

use actix_http::ConnectionType;
use actix_web::body::{BodySize, BoxBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::HttpResponse;
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{Request, Response, StatusCode};
use serverbridge::body::RequestBody;
use serverbridge::feature::{ConnectionInfo, MaxRequestBodySize, RequestId, RequestLifetime};
use serverbridge::tower::AppService;
use serverbridge::{Error, PipeBody};
use tower::Service;

use crate::body::{ActixBody, PayloadBody};
use crate::convert;

/// What `on_connect` records per connection (in actix's connection data).
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) info: ConnectionInfo,
    /// Requests served on this connection so far (for [`RequestId`]).
    pub(crate) requests: Cell<u64>,
}

impl Connection {
    pub(crate) fn new(id: u64, local: SocketAddr, peer: SocketAddr) -> Connection {
        Connection {
            info: ConnectionInfo::tcp(format!("actix-{id}"), local, peer),
            requests: Cell::new(0),
        }
    }
}

/// Per worker: the application and the request settings.
pub(crate) struct Worker {
    pub(crate) service: AppService,
    pub(crate) max_request_body_size: Option<u64>,
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
    let response = match into_request(&worker, &http_request, payload) {
        Ok(request) => {
            let mut service = worker.service.clone();
            match service.call(request).await {
                Ok(response) => into_actix(response, is_head),
                Err(err) => {
                    // The request ended without a head (the app aborted it):
                    // a body that fails at once makes actix drop the
                    // connection, the closest to "abort" actix offers.
                    tracing::debug!(error = %err, "no response head: dropping the connection");
                    let mut response = HttpResponse::with_body(
                        http02::StatusCode::INTERNAL_SERVER_ERROR,
                        ActixBody::failed(err),
                    );
                    response
                        .head_mut()
                        .set_connection_type(ConnectionType::Close);
                    response.map_into_boxed_body()
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

/// Builds the `http` 1.x request the [`AppService`] takes.
fn into_request(
    worker: &Worker,
    actix: &actix_web::HttpRequest,
    payload: Payload,
) -> Result<Request<RequestBody>, Error> {
    let head = actix.head();
    let headers = convert::request_headers(&head.headers)?;
    let length = declared_length(&headers);
    let body = match payload {
        Payload::None => RequestBody::empty(),
        payload if length == Some(0) => {
            drop(payload);
            RequestBody::empty()
        }
        payload => RequestBody::new(PayloadBody::spawn(payload, length)),
    };
    let limit = MaxRequestBodySize::new(worker.max_request_body_size);
    let body = body.with_limit(limit.clone());
    let mut request = Request::new(body);
    *request.method_mut() = convert::method(&head.method)?;
    *request.uri_mut() = convert::uri(&head.uri)?;
    *request.version_mut() = convert::version(head.version);
    *request.headers_mut() = headers;
    let extensions = request.extensions_mut();
    extensions.insert(RequestLifetime::new());
    extensions.insert(limit);
    if let Some(connection) = actix.conn_data::<Connection>() {
        let n = connection.requests.get() + 1;
        connection.requests.set(n);
        extensions.insert(RequestId(format!("{}:{n}", connection.info.id)));
        extensions.insert(connection.info.clone());
    }
    Ok(request)
}

/// The Content-Length the request declared, when it framed the body with it.
fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    if headers.contains_key(TRANSFER_ENCODING) {
        return None;
    }
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// The Application's response as actix's, with the framing actix needs.
fn into_actix(response: Response<PipeBody>, is_head: bool) -> HttpResponse<BoxBody> {
    let (mut parts, body) = response.into_parts();
    let status = parts.status;
    let mut size = BodySize::Stream;
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        size = BodySize::None;
    } else if let Some(length) = single_length(&parts.headers) {
        // Actix writes Content-Length from the size: the app's header goes.
        parts.headers.remove(CONTENT_LENGTH);
        size = BodySize::Sized(length);
    } else if is_head {
        size = BodySize::None;
    }
    let close = parts
        .headers
        .get_all(CONNECTION)
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    let mut actix = HttpResponse::with_body(convert::status(status), ActixBody::new(body, size));
    if let Err(err) = convert::response_headers(&parts.headers, actix.headers_mut()) {
        tracing::warn!(error = %err, "a response header actix cannot carry was left out");
    }
    if close {
        actix.head_mut().set_connection_type(ConnectionType::Close);
    }
    actix.map_into_boxed_body()
}

/// The response's Content-Length, when it has exactly one valid one.
fn single_length(headers: &http::HeaderMap) -> Option<u64> {
    let mut values = headers.get_all(CONTENT_LENGTH).iter();
    let first = values.next()?;
    if values.next().is_some() || headers.contains_key(TRANSFER_ENCODING) {
        return None;
    }
    first.to_str().ok()?.parse().ok()
}
