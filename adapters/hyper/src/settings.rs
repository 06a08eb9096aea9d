//! [`Settings`]: hyper's limits and timeouts, with this crate's defaults.

use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;

/// Which protocols a connection may speak.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocols {
    /// HTTP/1.x, or HTTP/2 with prior knowledge (h2c: the client sends the
    /// HTTP/2 preface first), told apart by the first bytes. The default.
    #[default]
    Auto,
    /// HTTP/1.x only: an HTTP/2 preface is a malformed HTTP/1 request.
    Http1Only,
    /// HTTP/2 only (prior knowledge): HTTP/1 bytes fail the connection.
    Http2Only,
}

/// hyper's limits and timeouts, and the limits this adapter adds. Every field
/// says its default, its unit, and what happens when it is exceeded.
///
/// Start from [`Settings::default`] and change fields:
///
/// ```
/// use std::time::Duration;
/// use serverbridge_hyper::{HyperServer, Settings};
///
/// let mut settings = Settings::default();
/// settings.header_read_timeout = Some(Duration::from_secs(10));
/// settings.http2_max_concurrent_streams = Some(100);
/// let server = HyperServer::new().settings(settings);
/// assert_eq!(server.get_settings().max_headers, 100);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Settings {
    /// Which protocols to speak. Default: [`Protocols::Auto`].
    pub protocols: Protocols,
    /// HTTP/1: time a client has to send a whole request head, counted
    /// from when hyper starts waiting for it, so it also bounds an idle
    /// keep-alive connection (the built-in server's keep-alive timeout is a
    /// separate 130 s). Default: 30 s (Kestrel's request headers timeout);
    /// `None` disables it. Exceeded: hyper closes the connection without a
    /// response.
    pub header_read_timeout: Option<Duration>,
    /// HTTP/1: the most header fields in a request head. Default: 100.
    /// Exceeded: `431 Request Header Fields Too Large`, then close. (A value
    /// other than 100 makes hyper parse headers on the heap, a few percent
    /// slower.)
    pub max_headers: usize,
    /// HTTP/1: the connection's read buffer, in bytes, which bounds the
    /// request head. Default: 8 KiB + 400 KiB (hyper's). Exceeded by a head:
    /// `431 Request Header Fields Too Large`, then close. Must be at least
    /// 8192.
    pub max_buffer_size: usize,
    /// HTTP/1: keep connections open between requests. Default: `true`.
    pub keep_alive: bool,
    /// HTTP/1: let a client shut down its write side and still read the
    /// response. Default: `false`: an end of input while a request is in
    /// flight is a client gone (the request's
    /// [`RequestLifetime`](serverbridge::feature::RequestLifetime) fires).
    pub half_close: bool,
    /// HTTP/1: gather the responses of pipelined requests into fewer writes.
    /// Default: `false` (hyper calls it experimental).
    pub pipeline_flush: bool,
    /// HTTP/2: the most concurrent streams a client may open. Default:
    /// `Some(200)` (hyper's); `None` is no limit. Exceeded: the extra stream
    /// is refused (`REFUSED_STREAM`).
    pub http2_max_concurrent_streams: Option<u32>,
    /// HTTP/2: send a PING this often to check the client is there. Default:
    /// `None` (off).
    pub http2_keep_alive_interval: Option<Duration>,
    /// HTTP/2: how long to wait for the PING's acknowledgement. Default:
    /// 20 s. Exceeded: the connection is closed. Only with
    /// [`http2_keep_alive_interval`](Self::http2_keep_alive_interval).
    pub http2_keep_alive_timeout: Duration,
    /// HTTP/2: the largest header list (`SETTINGS_MAX_HEADER_LIST_SIZE`), in
    /// bytes. Default: 16 KiB (hyper's). Exceeded: the stream is refused
    /// with `431` semantics (a reset).
    pub http2_max_header_list_size: u32,
    /// HTTP/2: the largest frame the server accepts, in bytes. Default:
    /// 16 KiB (the protocol's minimum). Exceeded: a connection error.
    pub http2_max_frame_size: u32,
    /// HTTP/2: the initial per-stream flow-control window, in bytes: how
    /// much request body a client may send ahead of the app reading it.
    /// Default: 768 KiB (Kestrel's). Kept below the connection window, so
    /// that one request whose app has not read its body yet cannot take
    /// the whole connection window and stall every other stream's body.
    pub http2_initial_stream_window_size: u32,
    /// HTTP/2: the initial connection-wide flow-control window, in bytes:
    /// how much request body all streams together may send ahead of their
    /// apps reading it. Default: 1 MiB (Kestrel's and hyper's).
    pub http2_initial_connection_window_size: u32,
    /// HTTP/2: the largest response data buffered per stream before the
    /// app's writes wait, in bytes. Default: 400 KiB (hyper's).
    pub http2_max_send_buffer_size: usize,
    /// The largest request body, in bytes, per request; apps may change it
    /// through [`MaxRequestBodySize`](serverbridge::feature::MaxRequestBodySize)
    /// until they read the body. Default: `Some(30_000_000)` (Kestrel's);
    /// `None` is no limit. Exceeded: the body read fails with
    /// [`Error::is_limit`](serverbridge::Error::is_limit), so an app that
    /// returns it gets `413 Payload Too Large`.
    pub max_request_body_size: Option<u64>,
    /// The most open connections; `None` (the default) is no limit.
    /// Exceeded: a new connection is closed at accept.
    pub max_concurrent_connections: Option<usize>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            protocols: Protocols::Auto,
            header_read_timeout: Some(Duration::from_secs(30)),
            max_headers: 100,
            max_buffer_size: 8192 + 4096 * 100,
            keep_alive: true,
            half_close: false,
            pipeline_flush: false,
            http2_max_concurrent_streams: Some(200),
            http2_keep_alive_interval: None,
            http2_keep_alive_timeout: Duration::from_secs(20),
            http2_max_header_list_size: 16 * 1024,
            http2_max_frame_size: 16 * 1024,
            http2_initial_stream_window_size: 768 * 1024,
            http2_initial_connection_window_size: 1024 * 1024,
            http2_max_send_buffer_size: 400 * 1024,
            max_request_body_size: Some(30_000_000),
            max_concurrent_connections: None,
        }
    }
}

/// hyper's default header count; setting it at all moves parsing to the heap.
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

impl Settings {
    /// The connection builder these settings describe.
    pub(crate) fn builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        let mut http1 = builder.http1();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .max_buf_size(self.max_buffer_size.max(8192))
            .keep_alive(self.keep_alive)
            .half_close(self.half_close)
            .pipeline_flush(self.pipeline_flush);
        if self.max_headers != HYPER_DEFAULT_MAX_HEADERS {
            http1.max_headers(self.max_headers);
        }
        let mut http2 = builder.http2();
        http2
            .timer(TokioTimer::new())
            .max_concurrent_streams(self.http2_max_concurrent_streams)
            .keep_alive_interval(self.http2_keep_alive_interval)
            .keep_alive_timeout(self.http2_keep_alive_timeout)
            .max_header_list_size(self.http2_max_header_list_size)
            .max_frame_size(self.http2_max_frame_size)
            .initial_stream_window_size(self.http2_initial_stream_window_size)
            .initial_connection_window_size(self.http2_initial_connection_window_size)
            .max_send_buf_size(self.http2_max_send_buffer_size);
        match self.protocols {
            Protocols::Auto => builder,
            Protocols::Http1Only => builder.http1_only(),
            Protocols::Http2Only => builder.http2_only(),
        }
    }
}
