//! HTTP/1.1 response framing for servers that write their own bytes: the
//! head, chunked body framing and a cached `Date`.
//!
//! The built-in server writes every response with these functions, and so
//! does any adapter that frames responses itself (the tiny_http adapter), so
//! servers in the workspace send the same heads for the same response. A
//! custom server gets the rules for free:
//!
//! - the server owns framing: an app's `Transfer-Encoding` and `Connection`
//!   fields are dropped and replaced by the server's, and an app's
//!   `Connection: close` makes the connection close;
//! - a known `Content-Length` frames the body (a field that does not parse,
//!   or a second one, is dropped); without one the body is chunked on
//!   HTTP/1.1 and delimited by the close on HTTP/1.0;
//! - a reason phrase with characters a status line cannot carry (CR, LF,
//!   other controls) is replaced by the standard one;
//! - HEAD, 1xx, 204 and 304 responses have no body (RFC 9110 §6.4.1), and a
//!   2xx to CONNECT has neither body nor framing fields (RFC 9112 §6.3);
//! - a response without `Date` gets one (RFC 9110 §6.6.1).
//!
//! Behind the `http1` feature (part of `server`).
//!
//! # Example
//!
//! ```
//! use http::{HeaderMap, StatusCode};
//! use serverbridge::http1::{chunk_size_line, encode_head, last_chunk, BodyFraming, HeadContext};
//!
//! let mut out = Vec::new();
//! let mut headers = HeaderMap::new();
//! headers.insert("date", "Tue, 24 Nov 2026 09:00:00 GMT".parse().unwrap());
//! let head = encode_head(&mut out, StatusCode::OK, "OK", &headers, HeadContext::default());
//! assert_eq!(head.framing, BodyFraming::Chunked);
//! out.extend_from_slice(&chunk_size_line(5));
//! out.extend_from_slice(b"hello\r\n");
//! last_chunk(&mut out, None);
//! assert_eq!(
//!     out,
//!     b"HTTP/1.1 200 OK\r\ndate: Tue, 24 Nov 2026 09:00:00 GMT\r\n\
//!       transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
//! );
//! ```

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BufMut;
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, SERVER, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, StatusCode};

/// How a response body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body bytes go out (HEAD, 1xx, 204, 304, a 2xx to CONNECT).
    None,
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// Chunked (HTTP/1.1): frame each piece with [`chunk_size_line`] and
    /// end with [`last_chunk`].
    Chunked,
    /// Until the connection closes (HTTP/1.0 without a length).
    Close,
}

/// What [`encode_head`] needs to know about the request and the connection.
/// Build it from `HeadContext::default()` (an HTTP/1.1 `GET` on a
/// connection that stays open) and set what differs.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct HeadContext {
    /// The request was a HEAD: the head is complete, no body follows.
    pub head_request: bool,
    /// The request was HTTP/1.0: no chunked framing.
    pub http10: bool,
    /// The connection closes after this response (the client asked, a
    /// limit, a graceful stop): the head says `Connection: close` (except a
    /// `101`, which always says `Connection: upgrade`).
    pub closing: bool,
    /// An HTTP/1.0 client asked for keep-alive and gets it.
    pub keep_alive_10: bool,
    /// The request was a CONNECT.
    pub connect_request: bool,
    /// A `Server` value to add when the app set none.
    pub default_server: Option<&'static str>,
}

/// What [`encode_head`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodedHead {
    /// How the body that follows must be framed.
    pub framing: BodyFraming,
    /// The connection must close after this response (the head says so,
    /// unless it is a `101`: then the connection belongs to the upgrade).
    pub closing: bool,
}

/// Appends the status line and header fields to `out` and decides the
/// body's framing (see the [module docs](self) for the rules). Fields are
/// written lowercase, as `http` stores them, in the map's order.
pub fn encode_head<B: BufMut + ?Sized>(
    out: &mut B,
    status: StatusCode,
    reason: &str,
    headers: &HeaderMap,
    cx: HeadContext,
) -> EncodedHead {
    let no_body = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    // RFC 9110 §9.3.6, RFC 9112 §6.3: a 2xx to CONNECT has no body and
    // no framing fields; the connection is a tunnel right after the head.
    // A server that does not tunnel closes instead.
    let tunnel = cx.connect_request && status.is_success();

    if status == StatusCode::OK && reason == "OK" {
        // Most responses: one copy.
        out.put_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.put_slice(b"HTTP/1.1 ");
        out.put_slice(status.as_str().as_bytes());
        out.put_u8(b' ');
        // RFC 9112 §4: HTAB, SP, visible characters and obs-text only; a
        // reason that could end the line (or carry anything else) is
        // replaced by the standard one, never written.
        let reason = if crate::feature::reason_fits(reason) {
            reason
        } else {
            status.canonical_reason().unwrap_or("")
        };
        out.put_slice(reason.as_bytes());
        out.put_slice(b"\r\n");
    }
    // One pass: write the fields and note what framing needs.
    let (mut app_close, mut length, mut has_date, mut has_server) = (false, None, false, false);
    for (name, value) in headers {
        if name == CONNECTION {
            app_close |= asks_close(value);
            continue;
        }
        if name == TRANSFER_ENCODING {
            continue;
        }
        if name == CONTENT_LENGTH {
            // One valid length frames the body; a field that does not parse,
            // or a second one, is dropped (never a length next to chunked,
            // never two lengths).
            // `1*DIGIT` (RFC 9110 §8.6): no sign, no space.
            let digits = value.as_bytes();
            let parsed = (!digits.is_empty() && digits.iter().all(u8::is_ascii_digit))
                .then(|| value.to_str().ok()?.parse::<u64>().ok())
                .flatten();
            match (length, parsed) {
                (None, Some(n)) => length = Some(n),
                _ => continue,
            }
            // RFC 9110 §8.6: never on a 1xx or 204 (a 304 may carry the
            // length a GET would have had).
            if tunnel || status.is_informational() || status == StatusCode::NO_CONTENT {
                continue;
            }
        }
        has_date |= name == DATE;
        has_server |= name == SERVER;
        put_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    let mut closing = cx.closing || app_close || tunnel;
    let framing = if no_body || cx.head_request || tunnel {
        BodyFraming::None
    } else if let Some(length) = length {
        BodyFraming::Length(length)
    } else if cx.http10 {
        closing = true;
        BodyFraming::Close
    } else {
        BodyFraming::Chunked
    };
    if !has_date {
        put_date(out);
    }
    if let (false, Some(server)) = (has_server, cx.default_server) {
        put_field(out, b"server", server.as_bytes());
    }
    if framing == BodyFraming::Chunked {
        out.put_slice(b"transfer-encoding: chunked\r\n");
    }
    if status == StatusCode::SWITCHING_PROTOCOLS {
        out.put_slice(b"connection: upgrade\r\n");
    } else if closing {
        out.put_slice(b"connection: close\r\n");
    } else if cx.keep_alive_10 {
        out.put_slice(b"connection: keep-alive\r\n");
    }
    out.put_slice(b"\r\n");
    EncodedHead { framing, closing }
}

/// Whether a `Connection` field value lists `close` (an app asking for the
/// close: the server owns the field and says it in its own words).
pub(crate) fn asks_close(value: &http::HeaderValue) -> bool {
    value
        .as_bytes()
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
}

#[inline]
fn put_field<B: BufMut + ?Sized>(out: &mut B, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// A chunk's size line: the length in lowercase hex, then CRLF, on the
/// stack (dereferences to its bytes).
#[derive(Clone, Copy)]
pub struct ChunkSizeLine {
    bytes: [u8; 18],
    start: u8,
}

impl std::ops::Deref for ChunkSizeLine {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[usize::from(self.start)..]
    }
}

impl std::fmt::Debug for ChunkSizeLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChunkSizeLine({:?})", String::from_utf8_lossy(self))
    }
}

/// The size line of a chunk of `len` bytes (a chunk of 0 bytes is the last
/// chunk: use [`last_chunk`] for it).
pub fn chunk_size_line(len: usize) -> ChunkSizeLine {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = [0u8; 18];
    bytes[16] = b'\r';
    bytes[17] = b'\n';
    let (mut start, mut n) = (16, len);
    loop {
        start -= 1;
        bytes[start] = HEX[n & 0xF];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    ChunkSizeLine {
        bytes,
        start: start as u8,
    }
}

/// Appends the last chunk and the trailer fields, ending a chunked body.
pub fn last_chunk<B: BufMut + ?Sized>(out: &mut B, trailers: Option<&HeaderMap>) {
    out.put_slice(b"0\r\n");
    for (name, value) in trailers.into_iter().flatten() {
        put_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.put_slice(b"\r\n");
}

/// Where the date starts in [`DateCache::line`] (after `date: `), and its
/// length: an HTTP date is always 29 bytes.
const DATE_AT: usize = 6;
const DATE_LEN: usize = 29;

/// The formatted date of the current second, per thread.
struct DateCache {
    second: u64,
    value: HeaderValue,
    /// The whole field line, `date: <value>\r\n`: one copy per response
    /// instead of four.
    line: [u8; DATE_AT + DATE_LEN + 2],
    /// Set while a server's poll runs under [`with_poll_date`]: heads
    /// encoded in it use the date read when the poll began.
    pinned: bool,
}

impl DateCache {
    /// Reads the clock; formats the date again when the second changed.
    fn refresh(&mut self) {
        let now = SystemTime::now();
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if self.second != second {
            let text = httpdate::fmt_http_date(now);
            self.value = HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static(""));
            if text.len() == DATE_LEN {
                self.line[DATE_AT..DATE_AT + DATE_LEN].copy_from_slice(text.as_bytes());
            }
            self.second = second;
        }
    }
}

thread_local! {
    static DATE_CACHE: RefCell<DateCache> = const {
        RefCell::new(DateCache {
            second: u64::MAX,
            value: HeaderValue::from_static(""),
            line: *b"date: Thu, 01 Jan 1970 00:00:00 GMT\r\n",
            pinned: false,
        })
    };
}

/// The current time as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`),
/// formatted once per second per thread (every response in that second
/// shares it; cloning the value is a reference count, not a copy).
pub fn date() -> HeaderValue {
    DATE_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        cache.refresh();
        cache.value.clone()
    })
}

/// Appends the `Date` field: the date read when the current dated poll
/// began (see [`with_poll_date`]), else the clock's now.
fn put_date<B: BufMut + ?Sized>(out: &mut B) {
    DATE_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if !cache.pinned {
            cache.refresh();
        }
        out.put_slice(&cache.line);
    });
}

/// Runs `poll` (one poll of a connection) with the clock read once: every
/// head encoded during it carries that date. A pipelined batch answered in
/// one poll reads the clock once instead of once per response (hyper does
/// the same per connection poll); a response written outside such a poll
/// (from another task) reads the clock itself.
#[cfg(feature = "server")]
pub(crate) fn with_poll_date<R>(poll: impl FnOnce() -> R) -> R {
    /// Restores the pin on the way out, a panicking poll included.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            let was = self.0;
            DATE_CACHE.with(|cache| cache.borrow_mut().pinned = was);
        }
    }
    let was = DATE_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        cache.refresh();
        std::mem::replace(&mut cache.pinned, true)
    });
    let _restore = Restore(was);
    poll()
}

/// The marker [`plant_stale_date`] plants (as long as a real date).
#[cfg(test)]
pub(crate) const STALE_DATE: &str = "stale, date planted by a test";

/// Makes this thread's cached date [`STALE_DATE`], a marker any clock read
/// would replace (its second is long past).
#[cfg(test)]
pub(crate) fn plant_stale_date() {
    DATE_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        cache.second = 0;
        cache.value = HeaderValue::from_static(STALE_DATE);
        cache.line[DATE_AT..DATE_AT + DATE_LEN].copy_from_slice(STALE_DATE.as_bytes());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(status: StatusCode, headers: &HeaderMap, cx: HeadContext) -> (Vec<u8>, EncodedHead) {
        let mut out = Vec::new();
        let head = encode_head(
            &mut out,
            status,
            status.canonical_reason().unwrap_or(""),
            headers,
            cx,
        );
        (out, head)
    }

    fn dated() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(DATE, HeaderValue::from_static("x"));
        headers
    }

    #[test]
    fn the_server_owns_framing_fields() {
        let mut headers = dated();
        headers.insert("content-length", "5".parse().unwrap());
        headers.insert("transfer-encoding", "gzip".parse().unwrap());
        headers.insert("connection", "keep-alive, Close".parse().unwrap());
        let (out, head) = encode(StatusCode::OK, &headers, HeadContext::default());
        assert_eq!(
            head,
            EncodedHead {
                framing: BodyFraming::Length(5),
                closing: true
            }
        );
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\ndate: x\r\ncontent-length: 5\r\nconnection: close\r\n\r\n"
        );
    }

    #[test]
    fn no_length_on_a_204_and_a_304_keeps_its_own() {
        let mut headers = dated();
        headers.insert("content-length", "10".parse().unwrap());
        let (out, _) = encode(StatusCode::NO_CONTENT, &headers, HeadContext::default());
        assert_eq!(out, b"HTTP/1.1 204 No Content\r\ndate: x\r\n\r\n");
        let (out, _) = encode(StatusCode::NOT_MODIFIED, &headers, HeadContext::default());
        assert_eq!(
            out,
            b"HTTP/1.1 304 Not Modified\r\ndate: x\r\ncontent-length: 10\r\n\r\n"
        );
    }

    #[test]
    fn framing_choices() {
        let empty = dated();
        let cx = HeadContext::default();
        assert_eq!(
            encode(StatusCode::OK, &empty, cx).1.framing,
            BodyFraming::Chunked
        );
        let http10 = HeadContext { http10: true, ..cx };
        assert_eq!(
            encode(StatusCode::OK, &empty, http10).1,
            EncodedHead {
                framing: BodyFraming::Close,
                closing: true
            }
        );
        let head = HeadContext {
            head_request: true,
            ..cx
        };
        assert_eq!(
            encode(StatusCode::OK, &empty, head).1.framing,
            BodyFraming::None
        );
        for status in [
            StatusCode::CONTINUE,
            StatusCode::NO_CONTENT,
            StatusCode::NOT_MODIFIED,
        ] {
            assert_eq!(encode(status, &empty, cx).1.framing, BodyFraming::None);
        }
    }

    #[test]
    fn a_2xx_to_connect_has_no_framing_and_closes() {
        let mut headers = dated();
        headers.insert("content-length", "5".parse().unwrap());
        let cx = HeadContext {
            connect_request: true,
            ..HeadContext::default()
        };
        let (out, head) = encode(StatusCode::OK, &headers, cx);
        assert_eq!(head.framing, BodyFraming::None);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\ndate: x\r\nconnection: close\r\n\r\n"
        );
    }

    #[test]
    fn connection_fields_the_server_adds() {
        let headers = dated();
        let keep = HeadContext {
            http10: true,
            keep_alive_10: true,
            head_request: true,
            ..HeadContext::default()
        };
        let (out, _) = encode(StatusCode::OK, &headers, keep);
        assert!(out.ends_with(b"date: x\r\nconnection: keep-alive\r\n\r\n"));
        let (out, _) = encode(
            StatusCode::SWITCHING_PROTOCOLS,
            &headers,
            HeadContext::default(),
        );
        assert!(out.ends_with(b"connection: upgrade\r\n\r\n"));
    }

    #[test]
    fn date_and_server_only_when_the_app_set_none() {
        let cx = HeadContext {
            head_request: true,
            default_server: Some("sb"),
            ..HeadContext::default()
        };
        let (out, _) = encode(StatusCode::OK, &HeaderMap::new(), cx);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\r\nserver: sb\r\n"), "{text}");
        let date = text
            .split("date: ")
            .nth(1)
            .unwrap()
            .split("\r\n")
            .next()
            .unwrap();
        assert!(httpdate::parse_http_date(date).is_ok(), "{date}");
        let mut own = dated();
        own.insert(SERVER, HeaderValue::from_static("mine"));
        let (out, _) = encode(StatusCode::OK, &own, cx);
        assert_eq!(out, b"HTTP/1.1 200 OK\r\ndate: x\r\nserver: mine\r\n\r\n");
    }

    #[test]
    fn a_reason_that_could_break_the_line_is_replaced() {
        let mut out = Vec::new();
        let cx = HeadContext {
            head_request: true,
            ..HeadContext::default()
        };
        encode_head(
            &mut out,
            StatusCode::OK,
            "OK\r\nSet-Cookie: x=1",
            &dated(),
            cx,
        );
        assert!(
            out.starts_with(b"HTTP/1.1 200 OK\r\ndate: x\r\n"),
            "{out:?}"
        );
        out.clear();
        encode_head(
            &mut out,
            StatusCode::OK,
            "Fine\tand d\u{e9}j\u{e0} vu",
            &dated(),
            cx,
        );
        assert!(out.starts_with("HTTP/1.1 200 Fine\tand d\u{e9}j\u{e0} vu\r\n".as_bytes()));
    }

    #[test]
    fn only_one_valid_content_length_goes_out() {
        let cases: [(&[&str], Option<u64>); 6] = [
            (&["abc"], None),
            (&["10 "], None),
            (&["+5"], None),
            (&["99999999999999999999"], None),
            (&["5", "5"], Some(5)),
            (&["x", "7", "8"], Some(7)),
        ];
        for (fields, length) in cases {
            let mut headers = dated();
            for field in fields {
                headers.append(CONTENT_LENGTH, HeaderValue::from_str(field).unwrap());
            }
            let (out, head) = encode(StatusCode::OK, &headers, HeadContext::default());
            let text = String::from_utf8(out).unwrap();
            let lengths = text.matches("content-length").count();
            match length {
                Some(n) => {
                    assert_eq!(head.framing, BodyFraming::Length(n), "{fields:?}");
                    assert_eq!(lengths, 1, "{text}");
                    assert!(!text.contains("transfer-encoding"), "{text}");
                }
                None => {
                    assert_eq!(head.framing, BodyFraming::Chunked, "{fields:?}");
                    assert_eq!(lengths, 0, "{text}");
                }
            }
        }
    }

    #[test]
    fn chunks() {
        assert_eq!(&*chunk_size_line(0x1a2), b"1a2\r\n");
        assert_eq!(&*chunk_size_line(1), b"1\r\n");
        assert_eq!(&*chunk_size_line(usize::MAX), b"ffffffffffffffff\r\n");
        assert_eq!(
            format!("{:?}", chunk_size_line(16)),
            r#"ChunkSizeLine("10\r\n")"#
        );
        let mut out = Vec::new();
        let mut trailers = HeaderMap::new();
        trailers.insert("x-sum", "9".parse().unwrap());
        last_chunk(&mut out, Some(&trailers));
        assert_eq!(out, b"0\r\nx-sum: 9\r\n\r\n");
    }

    #[test]
    fn date_is_an_http_date() {
        let value = date();
        let text = value.to_str().unwrap();
        assert_eq!(text.len(), 29, "{text}");
        assert!(httpdate::parse_http_date(text).is_ok());
    }

    fn encoded_date() -> String {
        let (out, _) = encode(StatusCode::OK, &HeaderMap::new(), HeadContext::default());
        let text = String::from_utf8(out).unwrap();
        let line = text.lines().find(|l| l.starts_with("date: ")).unwrap();
        line["date: ".len()..].to_owned()
    }

    #[cfg(feature = "server")]
    #[test]
    fn a_dated_poll_reads_the_clock_once_for_every_head_in_it() {
        let dates = with_poll_date(|| {
            let first = encoded_date();
            // A head encoded later in the same poll does not read the clock.
            plant_stale_date();
            (first, encoded_date())
        });
        assert!(httpdate::parse_http_date(&dates.0).is_ok(), "{dates:?}");
        assert_eq!(dates.1, STALE_DATE);
        // Outside a poll, every head reads the clock.
        plant_stale_date();
        assert!(httpdate::parse_http_date(&encoded_date()).is_ok());
    }

    #[cfg(feature = "server")]
    #[test]
    fn a_panicking_poll_leaves_heads_reading_the_clock() {
        let panicked = std::panic::catch_unwind(|| with_poll_date(|| panic!("app")));
        assert!(panicked.is_err());
        plant_stale_date();
        assert!(httpdate::parse_http_date(&encoded_date()).is_ok());
    }
}
