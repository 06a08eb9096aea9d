//! [`RequestTrailers`] and [`ResponseTrailers`].

use http::HeaderMap;

use crate::body::TrailerSlot;

/// The request's trailers, available once the body has been read to its end
/// (the analogue of `IHttpRequestTrailersFeature`).
///
/// Provided by: servers that decode chunked HTTP/1.1 or HTTP/2 bodies. The
/// trailers also arrive as the body's last frame; this feature is for code
/// that reads the body with [`RequestBody::chunk`](crate::body::RequestBody::chunk).
///
/// # Example
///
/// ```
/// let trailers = serverbridge::feature::RequestTrailers::default();
/// assert!(!trailers.is_available());
/// ```
#[derive(Clone, Debug, Default)]
pub struct RequestTrailers {
    slot: TrailerSlot,
}

impl RequestTrailers {
    /// Makes the feature and attaches it to `body`, which fills it when its
    /// trailers frame is read.
    pub fn attach(body: &mut crate::body::RequestBody) -> Self {
        let feature = RequestTrailers::default();
        body.set_trailer_slot(feature.slot.clone());
        feature
    }

    /// Whether the body was read to its end: then [`get`](Self::get) gives
    /// the trailers, empty when none came (ASP.NET Core's `Available`).
    pub fn is_available(&self) -> bool {
        self.slot.lock().map(|s| s.is_some()).unwrap_or(false)
    }

    /// The trailers, once the body was read to its end (empty when none
    /// came).
    pub fn get(&self) -> Option<HeaderMap> {
        self.slot.lock().ok()?.clone()
    }
}

/// Trailers to send after the response body (the analogue of
/// `IHttpResponseTrailersFeature`). Set them any time before the response
/// completes; [`HttpContext::complete`](crate::HttpContext::complete) hands
/// them to the server.
///
/// Provided by: servers that can send trailers (chunked HTTP/1.1, HTTP/2).
/// Absent: trailers cannot be sent; do not add the feature yourself, the
/// server would drop them.
///
/// # Example
///
/// ```
/// let mut trailers = serverbridge::feature::ResponseTrailers::default();
/// trailers.headers.insert("grpc-status", "0".parse().unwrap());
/// assert_eq!(trailers.headers.len(), 1);
/// ```
#[derive(Clone, Debug, Default)]
pub struct ResponseTrailers {
    /// The trailers to send.
    pub headers: HeaderMap,
}
