//! The standard environment keys (OWIN 1.0.1 and the common keys).
//!
//! SPEC.md has the same table with each key's value type and whether it can
//! be written; a test keeps the two in step with [`ALL`].

/// `owin.RequestBody`: the request body ([`Value::RequestBody`](super::Value::RequestBody)).
pub const REQUEST_BODY: &str = "owin.RequestBody";
/// `owin.RequestHeaders`: the request headers ([`Value::Headers`](super::Value::Headers)).
pub const REQUEST_HEADERS: &str = "owin.RequestHeaders";
/// `owin.RequestMethod`: the method, a string.
pub const REQUEST_METHOD: &str = "owin.RequestMethod";
/// `owin.RequestPath`: the path after the path base, a string.
pub const REQUEST_PATH: &str = "owin.RequestPath";
/// `owin.RequestPathBase`: the path base, a string.
pub const REQUEST_PATH_BASE: &str = "owin.RequestPathBase";
/// `owin.RequestProtocol`: `HTTP/1.0`, `HTTP/1.1`, `HTTP/2`, a string.
pub const REQUEST_PROTOCOL: &str = "owin.RequestProtocol";
/// `owin.RequestQueryString`: the query without `?`, a string.
pub const REQUEST_QUERY_STRING: &str = "owin.RequestQueryString";
/// `owin.RequestScheme`: `http` or `https`, a string.
pub const REQUEST_SCHEME: &str = "owin.RequestScheme";
/// `owin.RequestId`: the request id, a string.
pub const REQUEST_ID: &str = "owin.RequestId";
/// `owin.RequestUser`: the authenticated user, any value.
pub const REQUEST_USER: &str = "owin.RequestUser";
/// `owin.ResponseBody`: the response body stream (write with
/// [`Environment::write`](super::Environment::write)).
pub const RESPONSE_BODY: &str = "owin.ResponseBody";
/// `owin.ResponseHeaders`: the response headers.
pub const RESPONSE_HEADERS: &str = "owin.ResponseHeaders";
/// `owin.ResponseStatusCode`: the status code, an integer.
pub const RESPONSE_STATUS_CODE: &str = "owin.ResponseStatusCode";
/// `owin.ResponseReasonPhrase`: the reason phrase, a string.
pub const RESPONSE_REASON_PHRASE: &str = "owin.ResponseReasonPhrase";
/// `owin.ResponseProtocol`: the response protocol, a string (defaults to the
/// request's).
pub const RESPONSE_PROTOCOL: &str = "owin.ResponseProtocol";
/// `owin.CallCancelled`: fires when the request is aborted.
pub const CALL_CANCELLED: &str = "owin.CallCancelled";
/// `owin.Version`: `"1.0.1"`, read-only.
pub const VERSION: &str = "owin.Version";
/// `server.RemoteIpAddress`: the client's IP, a string.
pub const REMOTE_IP_ADDRESS: &str = "server.RemoteIpAddress";
/// `server.RemotePort`: the client's port, a string (OWIN's type).
pub const REMOTE_PORT: &str = "server.RemotePort";
/// `server.LocalIpAddress`: the server's IP, a string.
pub const LOCAL_IP_ADDRESS: &str = "server.LocalIpAddress";
/// `server.LocalPort`: the server's port, a string.
pub const LOCAL_PORT: &str = "server.LocalPort";
/// `server.IsLocal`: whether the client is on this machine, read-only.
pub const IS_LOCAL: &str = "server.IsLocal";
/// `server.Capabilities`: what the server supports, read-only.
pub const CAPABILITIES: &str = "server.Capabilities";
/// `server.OnSendingHeaders`: registers a callback to run before the head.
pub const ON_SENDING_HEADERS: &str = "server.OnSendingHeaders";
/// `host.Addresses`: where the server listens.
pub const HOST_ADDRESSES: &str = "host.Addresses";

/// The OWIN version this environment implements.
pub const OWIN_VERSION: &str = "1.0.1";

/// Every standard key, in SPEC.md's order.
pub const ALL: &[&str] = &[
    REQUEST_BODY,
    REQUEST_HEADERS,
    REQUEST_METHOD,
    REQUEST_PATH,
    REQUEST_PATH_BASE,
    REQUEST_PROTOCOL,
    REQUEST_QUERY_STRING,
    REQUEST_SCHEME,
    REQUEST_ID,
    REQUEST_USER,
    RESPONSE_BODY,
    RESPONSE_HEADERS,
    RESPONSE_STATUS_CODE,
    RESPONSE_REASON_PHRASE,
    RESPONSE_PROTOCOL,
    CALL_CANCELLED,
    VERSION,
    REMOTE_IP_ADDRESS,
    REMOTE_PORT,
    LOCAL_IP_ADDRESS,
    LOCAL_PORT,
    IS_LOCAL,
    CAPABILITIES,
    ON_SENDING_HEADERS,
    HOST_ADDRESSES,
];

/// The keys that cannot be set.
pub const READ_ONLY: &[&str] = &[VERSION, IS_LOCAL, CAPABILITIES];
