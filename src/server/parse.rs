//! Request head parsing: `httparse` for the grammar, then the strict rules of
//! RFC 9112 that decide framing, so that no two parties can read one request
//! two ways (request smuggling).
//!
//! Every rejection is an [`Error::is_parse`] (or [`Error::is_limit`]) error
//! carrying the status the connection answers with before it closes.

use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Version};

use super::limits::Limits;
use crate::error::{Error, Result};

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

/// The form of the request target (RFC 9112 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TargetForm {
    Origin,
    Absolute,
    Authority,
    Asterisk,
}

/// A parsed and validated request head.
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
}

/// The outcome of looking at the bytes received so far.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// More bytes are needed.
    Partial,
    /// A whole head, and how many bytes it took.
    Complete(Box<RequestHead>, usize),
}

fn bad(message: &str) -> Error {
    Error::parse(message.to_owned(), StatusCode::BAD_REQUEST)
}

/// Finds the end of the head (`\r\n\r\n`), enforcing CRLF: a bare CR or a bare
/// LF anywhere in the head is an error, never a line ending.
fn head_end(buf: &[u8]) -> Result<Option<usize>> {
    let mut i = 0;
    while i < buf.len() {
        match buf[i] {
            b'\r' => match buf.get(i + 1) {
                None => return Ok(None),
                Some(b'\n') => {
                    if buf.get(i + 2..i + 4) == Some(b"\r\n") {
                        return Ok(Some(i + 4));
                    }
                    i += 2;
                }
                Some(_) => return Err(bad("bare CR in the request head")),
            },
            b'\n' => return Err(bad("bare LF in the request head")),
            _ => i += 1,
        }
    }
    Ok(None)
}

/// Checks the request line alone: its length limit (414) and whether an
/// unknown version deserves 505 rather than 400.
fn check_request_line(buf: &[u8], limits: &Limits) -> Result<bool> {
    let line_end = buf.iter().position(|&b| b == b'\r' || b == b'\n');
    let line = match line_end {
        Some(end) => &buf[..end],
        None => {
            if buf.len() > limits.max_request_line_size {
                return Err(Error::limit(
                    format!(
                        "request line longer than {} bytes",
                        limits.max_request_line_size
                    ),
                    StatusCode::URI_TOO_LONG,
                ));
            }
            return Ok(false);
        }
    };
    if line.len() > limits.max_request_line_size {
        return Err(Error::limit(
            format!(
                "request line longer than {} bytes",
                limits.max_request_line_size
            ),
            StatusCode::URI_TOO_LONG,
        ));
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

/// Parses the head at the start of `buf`.
pub(crate) fn parse_head(buf: &[u8], limits: &Limits, allow_leading_crlf: bool) -> Result<Parsed> {
    // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before
    // the request line (clients that send a stray CRLF after a POST body).
    let skip = if allow_leading_crlf && buf.starts_with(b"\r\n") {
        2
    } else {
        0
    };
    let buf = &buf[skip..];
    if !check_request_line(buf, limits)? {
        return Ok(Parsed::Partial);
    }
    let end = match head_end(buf)? {
        Some(end) => end,
        None => {
            if buf.len() > limits.max_request_line_size + limits.max_request_headers_total_size {
                return Err(header_limit(limits));
            }
            return Ok(Parsed::Partial);
        }
    };
    let line_len = buf.iter().position(|&b| b == b'\r').unwrap_or(0) + 2;
    if end - line_len > limits.max_request_headers_total_size {
        return Err(header_limit(limits));
    }
    let mut slots = [httparse::EMPTY_HEADER; 128];
    let capacity = limits.max_request_header_count.min(slots.len() - 1) + 1;
    let mut request = httparse::Request::new(&mut slots[..capacity]);
    let status = request.parse(&buf[..end]).map_err(|err| match err {
        httparse::Error::TooManyHeaders => Error::limit(
            format!(
                "more than {} request headers",
                limits.max_request_header_count
            ),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        ),
        other => bad(&format!("malformed request head: {other}")),
    })?;
    if status.is_partial() {
        return Ok(Parsed::Partial);
    }
    if request.headers.len() > limits.max_request_header_count {
        return Err(Error::limit(
            format!(
                "more than {} request headers",
                limits.max_request_header_count
            ),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        ));
    }
    let head = validate(&request)?;
    Ok(Parsed::Complete(Box::new(head), skip + end))
}

fn header_limit(limits: &Limits) -> Error {
    Error::limit(
        format!(
            "request headers larger than {} bytes",
            limits.max_request_headers_total_size
        ),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
    )
}

/// `true` for bytes allowed in a field value: VCHAR, SP, HTAB, obs-text.
fn value_byte_ok(b: u8) -> bool {
    b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80
}

fn validate(request: &httparse::Request<'_, '_>) -> Result<RequestHead> {
    let method_text = request.method.ok_or_else(|| bad("no method"))?;
    let method = Method::from_bytes(method_text.as_bytes()).map_err(|_| bad("invalid method"))?;
    let target = request.path.ok_or_else(|| bad("no request target"))?;
    if target.is_empty()
        || !target.bytes().all(|b| (0x21..=0x7e).contains(&b))
        || target.contains('#')
    {
        return Err(bad("invalid characters in the request target"));
    }
    let version = match request.version {
        Some(0) => Version::HTTP_10,
        Some(1) => Version::HTTP_11,
        _ => {
            return Err(Error::parse(
                "HTTP version not supported",
                StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            ))
        }
    };

    let mut headers = HeaderMap::with_capacity(request.headers.len());
    for h in request.headers.iter() {
        if !h.value.iter().copied().all(value_byte_ok) {
            return Err(bad("control character in a header value"));
        }
        let name =
            HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| bad("invalid header name"))?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| bad("invalid header value"))?;
        headers.append(name, value);
    }

    let (form, path, query) = target_form(&method, target)?;
    check_host(&headers, version, form, target)?;
    let framing = framing(&headers, version)?;

    let connection = tokens(&headers, header::CONNECTION);
    let has = |token: &str| connection.iter().any(|t| t.eq_ignore_ascii_case(token));
    let keep_alive = match version {
        Version::HTTP_11 => !has("close"),
        _ => has("keep-alive") && !has("close"),
    };
    let expect_continue = match headers.get(header::EXPECT) {
        None => false,
        Some(value) if value.as_bytes().eq_ignore_ascii_case(b"100-continue") => {
            version == Version::HTTP_11
        }
        Some(_) => {
            return Err(Error::parse(
                "unsupported expectation",
                StatusCode::EXPECTATION_FAILED,
            ))
        }
    };
    let upgrade =
        version == Version::HTTP_11 && has("upgrade") && headers.contains_key(header::UPGRADE);

    Ok(RequestHead {
        method,
        target: target.to_owned(),
        form,
        path,
        query,
        version,
        headers,
        framing,
        keep_alive,
        expect_continue,
        upgrade,
    })
}

/// The comma-separated tokens of every field named `name`, trimmed.
fn tokens(headers: &HeaderMap, name: HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim_matches([' ', '\t']).to_owned())
        .collect()
}

fn split_path(path_and_query: &str) -> (String, String) {
    match path_and_query.split_once('?') {
        Some((path, query)) => (path.to_owned(), query.to_owned()),
        None => (path_and_query.to_owned(), String::new()),
    }
}

fn target_form(method: &Method, target: &str) -> Result<(TargetForm, String, String)> {
    if *method == Method::CONNECT {
        // Authority form only: host:port, nothing else.
        let authority: http::uri::Authority = target
            .parse()
            .map_err(|_| bad("CONNECT needs an authority-form target"))?;
        if authority.port().is_none() || authority.as_str().contains('@') {
            return Err(bad("CONNECT needs host:port"));
        }
        return Ok((TargetForm::Authority, String::new(), String::new()));
    }
    if target == "*" {
        if *method != Method::OPTIONS {
            return Err(bad("the asterisk form is only for OPTIONS"));
        }
        return Ok((TargetForm::Asterisk, String::new(), String::new()));
    }
    if target.starts_with('/') {
        let (path, query) = split_path(target);
        return Ok((TargetForm::Origin, path, query));
    }
    let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        let uri: http::Uri = target
            .parse()
            .map_err(|_| bad("invalid absolute-form target"))?;
        if uri
            .authority()
            .is_none_or(|a| a.host().is_empty() || a.as_str().contains('@'))
        {
            return Err(bad("absolute-form target without a valid authority"));
        }
        let after_authority = &target[target.find("//").map_or(0, |i| i + 2)..];
        let path_and_query = after_authority
            .find(['/', '?'])
            .map_or("", |i| &after_authority[i..]);
        let (path, query) = split_path(path_and_query);
        let path = if path.is_empty() {
            "/".to_owned()
        } else {
            path
        };
        return Ok((TargetForm::Absolute, path, query));
    }
    Err(bad("invalid request target"))
}

/// Host rules (RFC 9112 §3.2): exactly one valid Host on HTTP/1.1; with an
/// absolute-form target, Host must name the same authority.
fn check_host(headers: &HeaderMap, version: Version, form: TargetForm, target: &str) -> Result<()> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(bad("more than one Host header"));
    }
    let Some(host) = host else {
        if version == Version::HTTP_11 {
            return Err(bad("missing Host header"));
        }
        return Ok(());
    };
    let text = host.to_str().map_err(|_| bad("invalid Host header"))?;
    if !text.is_empty() {
        let authority: http::uri::Authority =
            text.parse().map_err(|_| bad("invalid Host header"))?;
        if authority.as_str().contains('@') || authority.host().is_empty() {
            return Err(bad("invalid Host header"));
        }
        if authority.as_str().ends_with(':') {
            return Err(bad("invalid Host header port"));
        }
    }
    if form == TargetForm::Absolute {
        let uri: http::Uri = target
            .parse()
            .map_err(|_| bad("invalid absolute-form target"))?;
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
        if !authority.eq_ignore_ascii_case(text) {
            return Err(bad("Host does not match the absolute-form target"));
        }
    }
    Ok(())
}

/// Body framing (RFC 9112 §6): anything ambiguous is rejected.
fn framing(headers: &HeaderMap, version: Version) -> Result<Framing> {
    let has_te = headers.contains_key(header::TRANSFER_ENCODING);
    let mut lengths = headers.get_all(header::CONTENT_LENGTH).iter();
    let length = lengths.next();
    if length.is_some() && lengths.next().is_some() {
        return Err(bad("more than one Content-Length header"));
    }
    if has_te {
        if length.is_some() {
            return Err(bad("both Content-Length and Transfer-Encoding"));
        }
        if version == Version::HTTP_10 {
            return Err(bad("Transfer-Encoding on an HTTP/1.0 request"));
        }
        let codings = tokens(headers, header::TRANSFER_ENCODING);
        let Some(last) = codings.last() else {
            return Err(bad("empty Transfer-Encoding"));
        };
        if !last.eq_ignore_ascii_case("chunked") {
            return Err(bad("the final transfer coding is not chunked"));
        }
        // RFC 9112 §6.1: chunked is applied once; twice is malformed, not an
        // unknown coding.
        let before = &codings[..codings.len() - 1];
        if before.iter().any(|c| c.eq_ignore_ascii_case("chunked")) {
            return Err(bad("chunked applied more than once"));
        }
        if codings.len() > 1 {
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

    fn parse(input: &str) -> Result<Parsed> {
        parse_head(input.as_bytes(), &Limits::default(), true)
    }

    fn head(input: &str) -> RequestHead {
        match parse(input).unwrap() {
            Parsed::Complete(head, used) => {
                assert_eq!(used, input.len(), "consumed the whole head");
                *head
            }
            Parsed::Partial => panic!("partial: {input:?}"),
        }
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
        assert!(matches!(
            parse("GET / HTTP/1.1\r\nHost: h\r\n").unwrap(),
            Parsed::Partial
        ));
        assert!(matches!(parse("GET / HTT").unwrap(), Parsed::Partial));
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
    }

    #[test]
    fn header_syntax_is_strict() {
        let rejected = [
            "GET / HTTP/1.1\r\nHost : h\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nX(y): 1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n",
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
            status("GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert!(head("GET / HTTP/1.0\r\n\r\n").headers.is_empty());
        head("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n");
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
        assert!(matches!(parse(&fits).unwrap(), Parsed::Complete(..)));
        let long = format!(
            "GET /{} HTTP/1.1\r\nHost: h\r\n\r\n",
            "a".repeat(limits.max_request_line_size - 13)
        );
        assert_eq!(status(&long), StatusCode::URI_TOO_LONG);
        let many = |n: usize| {
            let mut s = String::from("GET / HTTP/1.1\r\nHost: h\r\n");
            for i in 1..n {
                s.push_str(&format!("X-{i}: v\r\n"));
            }
            s + "\r\n"
        };
        assert!(matches!(parse(&many(100)).unwrap(), Parsed::Complete(..)));
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
        assert!(matches!(
            parse(&big(limits.max_request_headers_total_size)).unwrap(),
            Parsed::Complete(..)
        ));
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
    }
}
