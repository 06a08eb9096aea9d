//! Request head parsing: `httparse` for the grammar, then the strict rules of
//! RFC 9112 that decide framing, so that no two parties can read one request
//! two ways (request smuggling).
//!
//! Every rejection is an [`Error::is_parse`] (or [`Error::is_limit`]) error
//! carrying the status the connection answers with before it closes.

use std::mem::MaybeUninit;

use bytes::BytesMut;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Version};

use super::limits::Limits;
use crate::error::{Error, Result};
use crate::target::{
    check_target, check_target_strict, classify_target, target_authority, valid_host, TargetForm,
};

/// How the request body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed and validated request head. Reused from request to request on a
/// connection: its strings and header map keep their capacity.
#[derive(Debug)]
pub(crate) struct RequestHead {
    pub(crate) method: Method,
    pub(crate) target: String,
    pub(crate) form: TargetForm,
    /// The path as sent (origin form), or of the absolute-form URI.
    pub(crate) path: String,
    /// The query without `?`.
    pub(crate) query: String,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) framing: Framing,
    /// The connection may carry another request after this one.
    pub(crate) keep_alive: bool,
    /// `Expect: 100-continue`.
    pub(crate) expect_continue: bool,
    /// `Connection: upgrade` with an `Upgrade` header, on HTTP/1.1.
    pub(crate) upgrade: bool,
    /// Scratch space for the parser (kept for its capacity).
    spans: Vec<Span>,
    /// The last Host value found valid on this connection: the next
    /// request's usually repeats it, and then needs no check.
    valid_host: Vec<u8>,
    /// How many bytes of a partial head were seen (0: none yet).
    scanned: usize,
}

impl Default for RequestHead {
    fn default() -> Self {
        RequestHead {
            method: Method::GET,
            target: String::new(),
            form: TargetForm::Origin,
            path: String::new(),
            query: String::new(),
            version: Version::HTTP_11,
            headers: HeaderMap::new(),
            framing: Framing::Empty,
            keep_alive: false,
            expect_continue: false,
            upgrade: false,
            spans: Vec::new(),
            valid_host: Vec::new(),
            scanned: 0,
        }
    }
}

/// Where a header field sits in the head: name and value ranges.
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    name: (u32, u32),
    value: (u32, u32),
}

#[cold]
fn bad(message: &str) -> Error {
    Error::parse(message.to_owned(), StatusCode::BAD_REQUEST)
}

/// Whether `bytes` hold what ends a head: an empty line after a line
/// ending (`\n\n` or `\n\r\n`; which endings are allowed is checked once
/// the head is parsed).
fn may_end_head(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', bytes).any(|i| match bytes.get(i + 1) {
        Some(b'\n') => true,
        Some(b'\r') => bytes.get(i + 2) == Some(&b'\n'),
        _ => false,
    })
}

/// Whether the line ending just before `at` is CRLF.
fn crlf_before(head: &[u8], at: usize) -> bool {
    at >= 2 && &head[at - 2..at] == b"\r\n"
}

/// Checks the request line alone: its length limit (414) and whether an
/// unknown version deserves 505 rather than 400.
fn check_request_line(buf: &[u8], limits: &Limits) -> Result<bool> {
    let line_end = buf.iter().position(|&b| b == b'\r' || b == b'\n');
    // Without its end yet, what there is must still fit.
    let line = &buf[..line_end.unwrap_or(buf.len())];
    if line.len() > limits.max_request_line_size {
        return Err(Error::limit(
            format!(
                "request line longer than {} bytes",
                limits.max_request_line_size
            ),
            StatusCode::URI_TOO_LONG,
        ));
    }
    if line_end.is_none() {
        return Ok(false);
    }
    let mut parts = line.split(|&b| b == b' ');
    let (Some(_), Some(_), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("the request line is not `method SP target SP version`"));
    };
    if version != b"HTTP/1.1" && version != b"HTTP/1.0" {
        let well_formed = version.len() == 8
            && version.starts_with(b"HTTP/")
            && version[5].is_ascii_digit()
            && version[6] == b'.'
            && version[7].is_ascii_digit();
        if well_formed {
            return Err(Error::parse(
                "HTTP version not supported",
                StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            ));
        }
        return Err(bad("invalid HTTP version"));
    }
    Ok(true)
}

/// Parses the head at the start of `buf` into `head` (reusing its
/// capacity). `Ok(true)`: a whole head was parsed and removed from `buf`;
/// `Ok(false)`: more bytes are needed. Header values are slices of the head's
/// bytes, not copies.
pub(crate) fn parse_head(
    buf: &mut BytesMut,
    limits: &Limits,
    allow_leading_crlf: bool,
    head: &mut RequestHead,
) -> Result<bool> {
    // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before
    // the request line (clients that send a stray CRLF after a POST body).
    let skip = if allow_leading_crlf && buf.starts_with(b"\r\n") {
        2
    } else {
        // A lone CR may be the first half of that empty line.
        if allow_leading_crlf && buf[..] == b"\r"[..] {
            return Ok(false);
        }
        0
    };
    let bytes = &buf[skip..];
    // The request line's own checks (414, 505) run only when httparse did
    // not take the whole head: a head it parsed has a well-formed line of
    // a known version, whose length is checked below.
    let line_checked = || check_request_line(bytes, limits);
    let partial_past_limit =
        || bytes.len() > limits.max_request_line_size + limits.max_request_headers_total_size;
    // httparse skips any number of empty lines (bare LFs too) before the
    // request line; one CRLF is all that is taken (skipped above).
    if matches!(bytes.first(), Some(b'\r' | b'\n')) && !line_checked()? {
        return Ok(false);
    }
    // A head that was partial before is parsed again only once the bytes
    // since may end it: a head trickled in small pieces costs a scan of
    // each piece, not a parse of everything so far per piece. (The two
    // bytes before are scanned again: an end may straddle the pieces.)
    if head.scanned > 0 {
        let from = head.scanned.saturating_sub(2).min(bytes.len());
        if !may_end_head(&bytes[from..]) {
            line_checked()?;
            head.scanned = bytes.len();
            if partial_past_limit() {
                return Err(header_limit(limits));
            }
            return Ok(false);
        }
    }
    // Uninitialised slots: no 4 KiB memset per request.
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; 128];
    let capacity = limits.max_request_header_count.min(slots.len() - 1) + 1;
    let mut spans = std::mem::take(&mut head.spans);
    spans.clear();
    let (end, count) = {
        let mut request = httparse::Request::new(&mut []);
        // httparse stops at the end of the head: pipelined bytes after it
        // stay for the next request.
        let status = match request.parse_with_uninit_headers(bytes, &mut slots[..capacity]) {
            Ok(status) => status,
            // The line's own errors come first (414, 505), and a line
            // not all here waits for its end, as when the line was
            // checked before the parse: httparse refuses an unknown
            // version before the line ends, which must get 505, not 400.
            Err(err) => {
                head.spans = spans;
                if !line_checked()? {
                    return Ok(false);
                }
                return Err(if err == httparse::Error::TooManyHeaders {
                    too_many(limits)
                } else {
                    bad(&format!("malformed request head: {err}"))
                });
            }
        };
        let httparse::Status::Complete(end) = status else {
            line_checked()?;
            if partial_past_limit() {
                return Err(header_limit(limits));
            }
            head.scanned = bytes.len();
            head.spans = spans;
            return Ok(false);
        };
        head.scanned = 0;
        // The request line ends where the first field starts (or the
        // empty line, without fields).
        let field_start = |at: *const u8| at as usize - bytes.as_ptr() as usize;
        let first_line_end = request
            .headers
            .first()
            .map_or(end - 2, |f| field_start(f.name.as_ptr()));
        // A line that may be past its limit is measured exactly (its
        // ending may be a bare LF, refused below, but 414 comes first).
        if first_line_end > limits.max_request_line_size {
            line_checked()?;
        }
        if end - first_line_end > limits.max_request_headers_total_size {
            return Err(header_limit(limits));
        }
        if request.headers.len() > limits.max_request_header_count {
            return Err(too_many(limits));
        }
        // RFC 9112 §2.2: every line ends with CRLF, never a bare LF.
        // httparse ends a line at LF or CRLF and rejects any other CR, and a
        // field line ends where the next one starts; so checking the bytes
        // before each field, before the empty line and at the end covers
        // every line ending without a pass over the head. (httparse also
        // rejects the control characters RFC 9110 §5.5 forbids in values.)
        let ending_ok = crlf_before(bytes, end)
            && crlf_before(bytes, end - 2)
            && request
                .headers
                .iter()
                .all(|f| crlf_before(bytes, field_start(f.name.as_ptr())));
        if !ending_ok {
            return Err(bad("bare LF in the request head"));
        }
        request_line(&request, head)?;
        if !limits.allow_unencoded_target_characters {
            check_target_strict(&head.target)?;
        }
        for field in request.headers.iter() {
            let name = field_start(field.name.as_ptr());
            let value = field_start(field.value.as_ptr());
            spans.push(Span {
                name: (name as u32, field.name.len() as u32),
                value: (value as u32, field.value.len() as u32),
            });
        }
        (end, request.headers.len())
    };
    if skip > 0 {
        // Even an empty split makes a handle on the buffer (and drops it).
        let _ = buf.split_to(skip);
    }
    let bytes = buf.split_to(end).freeze();
    // Usually cleared already (after the request before); clearing walks
    // the whole index even when there is nothing in it.
    if !head.headers.is_empty() {
        head.headers.clear();
    }
    head.headers.reserve(count);
    for span in &spans[..count] {
        let (start, len) = (span.name.0 as usize, span.name.1 as usize);
        let name = HeaderName::from_bytes(&bytes[start..start + len])
            .map_err(|_| bad("invalid header name"))?;
        let (start, len) = (span.value.0 as usize, span.value.1 as usize);
        let value = HeaderValue::from_maybe_shared(bytes.slice(start..start + len))
            .map_err(|_| bad("invalid header value"))?;
        head.headers.append(name, value);
    }
    head.spans = spans;
    check_headers(head)?;
    Ok(true)
}

#[cold]
fn too_many(limits: &Limits) -> Error {
    Error::limit(
        format!(
            "more than {} request headers",
            limits.max_request_header_count
        ),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
    )
}

#[cold]
fn header_limit(limits: &Limits) -> Error {
    Error::limit(
        format!(
            "request headers larger than {} bytes",
            limits.max_request_headers_total_size
        ),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
    )
}

/// Checks the request line and copies it into `head` (reusing its strings).
fn request_line(request: &httparse::Request<'_, '_>, head: &mut RequestHead) -> Result<()> {
    let method_text = request.method.ok_or_else(|| bad("no method"))?;
    head.method = Method::from_bytes(method_text.as_bytes()).map_err(|_| bad("invalid method"))?;
    let target = request.path.ok_or_else(|| bad("no request target"))?;
    check_target(target)?;
    head.version = match request.version {
        Some(0) => Version::HTTP_10,
        Some(1) => Version::HTTP_11,
        _ => {
            return Err(Error::parse(
                "HTTP version not supported",
                StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            ))
        }
    };
    head.target.clear();
    head.target.push_str(target);
    target_form(head)
}

/// The header-dependent rules: Host, framing, connection options.
fn check_headers(head: &mut RequestHead) -> Result<()> {
    // One pass over the fields instead of a hashed lookup per rule: a
    // request carries a handful of fields, and standard names compare as
    // small integers.
    let mut fields = Fields::default();
    for (name, value) in head.headers.iter() {
        if name == header::HOST {
            fields.hosts += 1;
            fields.host = Some(value);
        } else if name == header::CONTENT_LENGTH {
            fields.lengths += 1;
            fields.length = Some(value);
        } else if name == header::TRANSFER_ENCODING {
            fields.transfer_encoding = true;
        } else if name == header::CONNECTION {
            for token in value.as_bytes().split(|&b| b == b',') {
                let token = token.trim_ascii();
                fields.close |= token.eq_ignore_ascii_case(b"close");
                fields.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                fields.upgrade_token |= token.eq_ignore_ascii_case(b"upgrade");
            }
        } else if name == header::EXPECT {
            fields.expects += 1;
            fields.expect = Some(value);
        } else if name == header::UPGRADE {
            fields.upgrade = true;
        }
    }
    check_host(
        &fields,
        head.version,
        head.form,
        &head.target,
        &mut head.valid_host,
    )?;
    head.framing = framing(&fields, &head.headers, head.version)?;
    head.keep_alive = match head.version {
        Version::HTTP_11 => !fields.close,
        _ => !fields.close && fields.keep_alive,
    };
    head.expect_continue = match fields.expect {
        None => false,
        Some(value)
            if fields.expects == 1 && value.as_bytes().eq_ignore_ascii_case(b"100-continue") =>
        {
            head.version == Version::HTTP_11
        }
        Some(_) => {
            return Err(Error::parse(
                "unsupported expectation",
                StatusCode::EXPECTATION_FAILED,
            ))
        }
    };
    head.upgrade = fields.upgrade_token && fields.upgrade && head.version == Version::HTTP_11;
    Ok(())
}

/// What the framing and connection rules need from the fields.
#[derive(Default)]
struct Fields<'a> {
    host: Option<&'a HeaderValue>,
    hosts: usize,
    length: Option<&'a HeaderValue>,
    lengths: usize,
    transfer_encoding: bool,
    expect: Option<&'a HeaderValue>,
    expects: usize,
    upgrade: bool,
    close: bool,
    keep_alive: bool,
    upgrade_token: bool,
}

/// Classifies the target and sets `form`, `path`, `query`.
fn target_form(head: &mut RequestHead) -> Result<()> {
    head.form = classify_target(&head.method, &head.target, &mut head.path, &mut head.query)?;
    Ok(())
}

/// Host rules (RFC 9112 §3.2): exactly one valid Host on HTTP/1.1; with an
/// absolute-form target, Host must name the same authority.
fn check_host(
    fields: &Fields<'_>,
    version: Version,
    form: TargetForm,
    target: &str,
    known_valid: &mut Vec<u8>,
) -> Result<()> {
    if fields.hosts > 1 {
        return Err(bad("more than one Host header"));
    }
    let Some(host) = fields.host else {
        if version == Version::HTTP_11 {
            return Err(bad("missing Host header"));
        }
        return Ok(());
    };
    if known_valid.is_empty() || host.as_bytes() != known_valid.as_slice() {
        // An empty Host names no host, and an http(s) URI with an empty
        // host is invalid and must be rejected (RFC 9110 §4.2.1); the empty
        // Host RFC 9112 §3.2 mentions is for targets without an authority,
        // which no http(s) request has.
        if !valid_host(host.as_bytes()) {
            return Err(bad("invalid Host header"));
        }
        known_valid.clear();
        known_valid.extend_from_slice(host.as_bytes());
    }
    if form == TargetForm::Absolute {
        let text = host.to_str().map_err(|_| bad("invalid Host header"))?;
        let authority = target_authority(form, target).unwrap_or("");
        if !same_authority(target, authority, text) {
            return Err(bad("Host does not match the absolute-form target"));
        }
    }
    Ok(())
}

/// Whether `host` names what an absolute-form target's `authority` names
/// (RFC 9110 §4.2.3): the same text but for case, or the same but for the
/// scheme's default port written on one side only (`http://h/` with
/// `Host: h:80`, as Kestrel takes it).
fn same_authority(target: &str, authority: &str, host: &str) -> bool {
    if authority.eq_ignore_ascii_case(host) {
        return true;
    }
    let https = target
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
    let default = if https { ":443" } else { ":80" };
    let strip = |text: &str| -> String {
        let text = text.to_ascii_lowercase();
        match text.strip_suffix(default) {
            Some(rest) => rest.to_owned(),
            None => text,
        }
    };
    strip(authority) == strip(host)
}

/// Body framing (RFC 9112 §6): anything ambiguous is rejected.
fn framing(fields: &Fields<'_>, headers: &HeaderMap, version: Version) -> Result<Framing> {
    let has_te = fields.transfer_encoding;
    let length = fields.length;
    if fields.lengths > 1 {
        return Err(bad("more than one Content-Length header"));
    }
    if has_te {
        if length.is_some() {
            return Err(bad("both Content-Length and Transfer-Encoding"));
        }
        if version == Version::HTTP_10 {
            return Err(bad("Transfer-Encoding on an HTTP/1.0 request"));
        }
        let mut count = 0usize;
        let mut last: &[u8] = b"";
        let mut chunked_before_last = false;
        for value in headers.get_all(header::TRANSFER_ENCODING) {
            // RFC 9110 §5.6.1.2: empty list elements (`chunked,`,
            // `, chunked`) are parsed and ignored; the header limits bound
            // how many there can be.
            for coding in value.as_bytes().split(|&b| b == b',') {
                let coding = coding.trim_ascii();
                if coding.is_empty() {
                    continue;
                }
                chunked_before_last |= count > 0 && last.eq_ignore_ascii_case(b"chunked");
                count += 1;
                last = coding;
            }
        }
        if count == 0 {
            return Err(bad("empty Transfer-Encoding"));
        }
        if !last.eq_ignore_ascii_case(b"chunked") {
            return Err(bad("the final transfer coding is not chunked"));
        }
        // RFC 9112 §6.1: chunked is applied once; twice is malformed, not an
        // unknown coding.
        if chunked_before_last {
            return Err(bad("chunked applied more than once"));
        }
        if count > 1 {
            return Err(Error::parse(
                "transfer codings other than chunked are not supported",
                StatusCode::NOT_IMPLEMENTED,
            ));
        }
        return Ok(Framing::Chunked);
    }
    match length {
        None => Ok(Framing::Empty),
        Some(value) => {
            let bytes = value.as_bytes();
            if bytes.is_empty() || bytes.len() > 19 || !bytes.iter().all(u8::is_ascii_digit) {
                return Err(bad("invalid Content-Length"));
            }
            let n: u64 = value
                .to_str()
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| bad("invalid Content-Length"))?;
            Ok(if n == 0 {
                Framing::Empty
            } else {
                Framing::Length(n)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Some(head)` when complete; the whole input must be consumed.
    fn parse(input: &str) -> Result<Option<RequestHead>> {
        let mut buf = BytesMut::from(input.as_bytes());
        let mut head = RequestHead::default();
        if parse_head(&mut buf, &Limits::default(), true, &mut head)? {
            assert!(buf.is_empty(), "consumed the whole head");
            Ok(Some(head))
        } else {
            Ok(None)
        }
    }

    fn head(input: &str) -> RequestHead {
        parse(input)
            .unwrap()
            .unwrap_or_else(|| panic!("partial: {:?}", &input[..input.len().min(80)]))
    }

    fn status(input: &str) -> StatusCode {
        match parse(input) {
            Err(err) => err.status().unwrap(),
            Ok(_) => panic!("accepted {:?}", &input[..input.len().min(80)]),
        }
    }

    #[test]
    fn origin_form_keeps_the_path_as_sent() {
        let h = head("GET /a%2Fb/../c?x=1?y HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(h.path, "/a%2Fb/../c");
        assert_eq!(h.query, "x=1?y");
        assert_eq!(h.target, "/a%2Fb/../c?x=1?y");
        assert_eq!(h.framing, Framing::Empty);
        assert!(h.keep_alive);
    }

    #[test]
    fn partial_heads_wait_for_more() {
        assert!(parse("GET / HTTP/1.1\r\nHost: h\r\n").unwrap().is_none());
        assert!(parse("GET / HTT").unwrap().is_none());
    }

    /// Feeds `input` one byte at a time, as a trickling client would; the
    /// outcome once a whole head is there (`None`: still waiting at the end).
    fn trickle(input: &str) -> Option<Result<RequestHead>> {
        let (mut buf, mut head) = (BytesMut::new(), RequestHead::default());
        for (i, byte) in input.bytes().enumerate() {
            buf.extend_from_slice(&[byte]);
            match parse_head(&mut buf, &Limits::default(), true, &mut head) {
                Ok(false) => {}
                Ok(true) => {
                    assert_eq!(i + 1, input.len(), "done before the last byte");
                    return Some(Ok(head));
                }
                Err(err) => return Some(Err(err)),
            }
        }
        None
    }

    #[test]
    fn a_trickled_head_is_parsed_when_its_last_byte_comes() {
        let h = trickle("GET /a?b HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n")
            .expect("complete")
            .unwrap();
        assert_eq!((h.path.as_str(), h.query.as_str()), ("/a", "b"));
        assert_eq!(h.headers["x-a"], "1");
        assert_eq!(h.scanned, 0, "reset for the next head");
        // Ends found across any split, and still checked once parsed.
        let bare = trickle("GET / HTTP/1.1\r\nHost: h\r\n\n").expect("complete");
        assert_eq!(bare.unwrap_err().status(), Some(StatusCode::BAD_REQUEST));
        let bare = trickle("GET / HTTP/1.1\r\nHost: h\n\n").expect("complete");
        assert_eq!(bare.unwrap_err().status(), Some(StatusCode::BAD_REQUEST));
        assert!(trickle("GET / HTTP/1.1\r\nHost: h\r\n\r").is_none());
        // The empty line a server ignores before a request line (RFC 9112
        // §2.2) may come in two pieces too.
        let h = trickle("\r\nGET /n HTTP/1.1\r\nHost: h\r\n\r\n").expect("complete");
        assert_eq!(h.unwrap().path, "/n");
        // Too long without an end: 431 while trickling too.
        let long = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(40 * 1024));
        let err = trickle(&long).expect("rejected").unwrap_err();
        assert_eq!(
            err.status(),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
    }

    #[test]
    fn head_ends_are_found_in_any_piece() {
        assert!(may_end_head(b"x\n\n"));
        assert!(may_end_head(b"\n\r\n"));
        assert!(!may_end_head(b"a\r\nb\r\n\r"));
        assert!(!may_end_head(b"\n\rx"));
        assert!(!may_end_head(b""));
    }

    #[test]
    fn other_forms() {
        let h = head("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!((h.form, h.path.as_str()), (TargetForm::Asterisk, ""));
        let h = head("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
        assert_eq!(h.form, TargetForm::Authority);
        let h = head("GET http://example.com/p?q HTTP/1.1\r\nHost: example.com\r\n\r\n");
        assert_eq!(
            (h.form, h.path.as_str(), h.query.as_str()),
            (TargetForm::Absolute, "/p", "q")
        );
        let h = head("GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
        assert_eq!(h.path, "/");
        // The target's authority follows the Host rules.
        for bad in [
            "CONNECT a:99999 HTTP/1.1\r\nHost: a:99999\r\n\r\n",
            "CONNECT a..b:443 HTTP/1.1\r\nHost: a..b:443\r\n\r\n",
            "GET http://a..b/ HTTP/1.1\r\nHost: a..b\r\n\r\n",
            "GET http://a:70000/ HTTP/1.1\r\nHost: a:70000\r\n\r\n",
        ] {
            assert_eq!(status(bad), StatusCode::BAD_REQUEST, "{bad:?}");
        }
    }

    #[test]
    fn framing_rules() {
        assert_eq!(
            head("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n").framing,
            Framing::Length(5)
        );
        assert_eq!(
            head("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n").framing,
            Framing::Chunked
        );
        assert_eq!(
            head("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: CHUNKED\r\n\r\n").framing,
            Framing::Chunked
        );
        // Empty list elements are ignored (RFC 9110 §5.6.1.2).
        for te in ["chunked,", ", chunked", " ,chunked , ,"] {
            let input = format!("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: {te}\r\n\r\n");
            assert_eq!(head(&input).framing, Framing::Chunked, "{te:?}");
        }
        let rejected = [
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, , chunked\r\n\r\n",
        ];
        for input in rejected {
            assert_eq!(status(input), StatusCode::BAD_REQUEST, "{input:?}");
        }
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            StatusCode::NOT_IMPLEMENTED
        );
    }

    #[test]
    fn line_endings_must_be_crlf() {
        assert_eq!(
            status("GET / HTTP/1.1\nHost: h\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: h\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        // A bare LF at each kind of line ending: the request line without
        // fields, a field line in the middle, the last field line, the
        // empty line, and a value's trailing whitespace before it.
        for input in [
            "GET / HTTP/1.1\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nX: 1\nY: 2\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nX: 1\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\n\n",
            "GET / HTTP/1.1\r\nHost: h \t\nX: 1\r\n\r\n",
            "GET / HTTP/1.1\nHost: h\nX: 1\n\n",
        ] {
            assert_eq!(status(input), StatusCode::BAD_REQUEST, "{input:?}");
        }
        // Trailing whitespace before a CRLF is fine.
        let head = head("GET / HTTP/1.1\r\nHost: h \t\r\nX: 1\r\n\r\n");
        assert_eq!(head.headers["host"], "h");
    }

    #[test]
    fn header_syntax_is_strict() {
        let rejected = [
            "GET / HTTP/1.1\r\nHost : h\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nX(y): 1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fb\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nX: 0123456789abcdef0123456789abcdef\x1b\r\n\r\n",
            "G@T / HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET /a\x7fb HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET a HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET * HTTP/1.1\r\nHost: h\r\n\r\n",
        ];
        for input in rejected {
            assert_eq!(status(input), StatusCode::BAD_REQUEST, "{input:?}");
        }
    }

    #[test]
    fn host_rules() {
        assert_eq!(status("GET / HTTP/1.1\r\n\r\n"), StatusCode::BAD_REQUEST);
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: \r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status("GET / HTTP/1.0\r\nHost: \r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status("GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert!(head("GET / HTTP/1.0\r\n\r\n").headers.is_empty());
        head("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n");
    }

    #[test]
    fn a_connection_checks_every_new_host_it_sees() {
        // The last valid Host is remembered per connection; anything else
        // (an empty one included) is checked again.
        let mut head = RequestHead::default();
        let hosts = [
            ("", false),
            ("a", true),
            ("a", true),
            ("", false),
            ("a..b", false),
            ("a", true),
        ];
        for (host, valid) in hosts {
            let input = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
            let mut buf = BytesMut::from(input.as_bytes());
            let parsed = parse_head(&mut buf, &Limits::default(), true, &mut head);
            assert_eq!(parsed.is_ok(), valid, "{host:?}");
        }
    }

    #[test]
    fn versions() {
        assert_eq!(
            status("GET / HTTP/2.0\r\nHost: h\r\n\r\n"),
            StatusCode::HTTP_VERSION_NOT_SUPPORTED
        );
        assert_eq!(
            status("GET / HTTP/1.2\r\nHost: h\r\n\r\n"),
            StatusCode::HTTP_VERSION_NOT_SUPPORTED
        );
        assert_eq!(
            status("GET / HTTX/1.1\r\nHost: h\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        let h = head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert!(h.keep_alive);
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(!head("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").keep_alive);
    }

    #[test]
    fn limits_at_and_past_their_bounds() {
        let limits = Limits::default();
        let fits = format!(
            "GET /{} HTTP/1.1\r\nHost: h\r\n\r\n",
            "a".repeat(limits.max_request_line_size - 14)
        );
        assert!(parse(&fits).unwrap().is_some());
        let long = format!(
            "GET /{} HTTP/1.1\r\nHost: h\r\n\r\n",
            "a".repeat(limits.max_request_line_size - 13)
        );
        assert_eq!(status(&long), StatusCode::URI_TOO_LONG);
        // Bare LF endings: past the limit by one or two, 414 still (the
        // length is measured, not assumed from a CRLF); at it, 400 for
        // the bare LF.
        for (fill, expected) in [
            (13, StatusCode::URI_TOO_LONG),
            (12, StatusCode::URI_TOO_LONG),
            (14, StatusCode::BAD_REQUEST),
        ] {
            let bare = format!(
                "GET /{} HTTP/1.1\n\n",
                "a".repeat(limits.max_request_line_size - fill)
            );
            assert_eq!(status(&bare), expected, "{fill}");
        }
        let bare = format!(
            "GET /{} HTTP/1.1\nHost: h\r\n\r\n",
            "a".repeat(limits.max_request_line_size - 13)
        );
        assert_eq!(status(&bare), StatusCode::URI_TOO_LONG);
        let many = |n: usize| {
            let mut s = String::from("GET / HTTP/1.1\r\nHost: h\r\n");
            for i in 1..n {
                s.push_str(&format!("X-{i}: v\r\n"));
            }
            s + "\r\n"
        };
        assert!(parse(&many(100)).unwrap().is_some());
        assert_eq!(
            status(&many(101)),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        let big = |size: usize| {
            // "Host: h\r\n" is 9 bytes, "X: " 3, CRLF 2, final CRLF 2.
            format!(
                "GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n",
                "v".repeat(size - 16)
            )
        };
        assert!(parse(&big(limits.max_request_headers_total_size))
            .unwrap()
            .is_some());
        assert_eq!(
            status(&big(limits.max_request_headers_total_size + 1)),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }

    #[test]
    fn expectations() {
        assert!(
            head("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")
                .expect_continue
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: h\r\nExpect: teapot\r\n\r\n"),
            StatusCode::EXPECTATION_FAILED
        );
    }

    #[test]
    fn upgrade_needs_connection_upgrade() {
        assert!(
            head("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
                .upgrade
        );
        assert!(!head("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: echo\r\n\r\n").upgrade);
    }

    #[test]
    fn one_leading_empty_line_is_ignored() {
        let h = head("\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(h.path, "/");
        // Only one, and only as CRLF (httparse itself would skip them all).
        for extra in ["\r\n\r\n", "\n", "\r\n\n", "\n\r\n"] {
            let input = format!("{extra}GET / HTTP/1.1\r\nHost: h\r\n\r\n");
            assert_eq!(status(&input), StatusCode::BAD_REQUEST, "{extra:?}");
        }
    }

    #[test]
    fn an_unknown_version_gets_505_however_the_line_arrives() {
        // httparse refuses the version before the line ends: the line
        // waits for its end, then gets 505 (400 for a malformed one).
        for (version, expected) in [
            ("HTTP/1.2", StatusCode::HTTP_VERSION_NOT_SUPPORTED),
            ("HTTP/2.0", StatusCode::HTTP_VERSION_NOT_SUPPORTED),
            ("HTTX/1.1", StatusCode::BAD_REQUEST),
        ] {
            let line = format!("GET / {version}");
            let mut buf = BytesMut::from(line.as_bytes());
            let mut head = RequestHead::default();
            assert!(
                !parse_head(&mut buf, &Limits::default(), true, &mut head).unwrap(),
                "{version}: decided before the line ended"
            );
            buf.extend_from_slice(b"\r\nHost: h\r\n\r\n");
            let err = parse_head(&mut buf, &Limits::default(), true, &mut head).unwrap_err();
            assert_eq!(err.status(), Some(expected), "{version}");
            let trickled = trickle(&format!("{line}\r\nHost: h\r\n\r\n"));
            let err = trickled.unwrap().unwrap_err();
            assert_eq!(err.status(), Some(expected), "{version}, trickled");
        }
    }
}
