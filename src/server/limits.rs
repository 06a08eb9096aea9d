//! [`Limits`]: every bound the built-in server enforces, with Kestrel's
//! defaults.

use std::time::Duration;

/// The built-in server's limits and timeouts. Each field documents its
/// default, its unit, and what the client gets when it is exceeded. Every
/// rejection is a short response with `Connection: close`, then a close.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use serverbridge::server::Limits;
///
/// let limits = Limits {
///     max_request_body_size: Some(1024 * 1024),
///     keep_alive_timeout: Duration::from_secs(10),
///     ..Limits::default()
/// };
/// assert_eq!(limits.max_request_line_size, 8 * 1024);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line (method, target, version), in bytes.
    /// Default 8 KiB (8,192). Exceeded: `414 URI Too Long`.
    pub max_request_line_size: usize,
    /// Largest header section (the lines after the request line), in bytes.
    /// Default 32 KiB (32,768). Exceeded: `431 Request Header Fields Too Large`.
    pub max_request_headers_total_size: usize,
    /// Most header lines. Default 100. Exceeded: `431`.
    pub max_request_header_count: usize,
    /// Largest request body, in bytes; adjustable per request through the
    /// [`MaxRequestBodySize`](crate::feature::MaxRequestBodySize) feature until
    /// the body is read. `None`: no limit. Default 30,000,000. Exceeded:
    /// `413 Payload Too Large` (a declared length at once; a chunked body as
    /// soon as a chunk size announces more than the limit leaves).
    pub max_request_body_size: Option<u64>,
    /// Time from the first byte of a request to the end of its head.
    /// Default 30 s. Exceeded: `408 Request Timeout`, then close. Also how
    /// long a new connection may stay silent before its first byte (then
    /// it closes without a response): a client that connects and sends
    /// nothing is held for this, not for the keep-alive timeout (Kestrel
    /// gives it the keep-alive timeout; hyper's header timeout does the
    /// same as here). Idle connections are cheap to open and costly to
    /// keep.
    pub request_headers_timeout: Duration,
    /// Time an idle kept-alive connection waits for the next request.
    /// Default 130 s. Exceeded: the connection closes without a response.
    pub keep_alive_timeout: Duration,
    /// Minimum request body rate, in bytes per second, enforced after
    /// `min_data_rate_grace`. `None`: off. Default 240 B/s. Too slow: `408`
    /// if the response has not started, else an abort.
    pub min_request_body_data_rate: Option<u64>,
    /// Minimum response rate, in bytes per second, after the grace period, for
    /// a client that stops reading. `None`: off. Default 240 B/s. Too slow:
    /// the connection is aborted.
    pub min_response_data_rate: Option<u64>,
    /// Grace period before the minimum data rates apply. Default 5 s.
    pub min_data_rate_grace: Duration,
    /// Most connections served at once; more are closed at accept.
    /// `None`: unlimited (the default).
    pub max_concurrent_connections: Option<usize>,
    /// Most upgraded connections at once; more upgrade requests get `503`.
    /// `None`: unlimited (the default).
    pub max_concurrent_upgraded_connections: Option<usize>,
    /// Most unread request body bytes drained after a response so the
    /// connection can be kept alive; more and the connection closes.
    /// Default 64 KiB.
    pub max_drain_size: u64,
    /// Time allowed to drain an unread request body. Default 5 s (Kestrel's
    /// fixed drain timeout); exceeded: the connection closes.
    pub drain_timeout: Duration,
    /// Largest chunk-size line (size plus extensions) in a chunked body, in
    /// bytes. Default 4 KiB. Exceeded: `400`.
    pub max_chunk_line_size: usize,
    /// The one leniency switch: take the visible characters RFC 3986 does
    /// not allow in a target's path or query (`"`, `<`, `>`, `\`, `^`,
    /// `` ` ``, `{`, `|`, `}`, `[`, `]`) and a `%` in the query that starts
    /// no pct-encoded byte, as sent. Browsers send some of them raw (the
    /// WHATWG URL standard leaves `|`, `[`, `]`, `{`, `}` and `^` unencoded
    /// in a query). Default `false`: `400` (RFC 9112 §3). Control
    /// characters, a fragment, and a malformed `%` in the path stay
    /// refused either way; none of these can change how a request is
    /// framed.
    pub allow_unencoded_target_characters: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line_size: 8 * 1024,
            max_request_headers_total_size: 32 * 1024,
            max_request_header_count: 100,
            max_request_body_size: Some(30_000_000),
            request_headers_timeout: Duration::from_secs(30),
            keep_alive_timeout: Duration::from_secs(130),
            min_request_body_data_rate: Some(240),
            min_response_data_rate: Some(240),
            min_data_rate_grace: Duration::from_secs(5),
            max_concurrent_connections: None,
            max_concurrent_upgraded_connections: None,
            max_drain_size: 64 * 1024,
            drain_timeout: Duration::from_secs(5),
            max_chunk_line_size: 4 * 1024,
            allow_unencoded_target_characters: false,
        }
    }
}
