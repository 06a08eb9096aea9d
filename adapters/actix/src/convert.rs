//! `http` 0.2 (actix) ↔ `http` 1.x (serverbridge), at the edge only.
//!
//! Both crates model the same protocol elements, so every conversion goes
//! through the element's wire form (a method token, a status code, a header
//! name and value): nothing is reinterpreted, and anything one side accepts
//! but the other rejects is reported, never guessed.

use actix_http::header::HeaderMap as ActixHeaders;
use http::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, Method, StatusCode, Version};

use serverbridge::{Error, Result};

/// The request method, by its token.
pub(crate) fn method(method: &http02::Method) -> Result<Method> {
    // The common methods without a lookup by bytes.
    Ok(match *method {
        http02::Method::GET => Method::GET,
        http02::Method::POST => Method::POST,
        http02::Method::HEAD => Method::HEAD,
        http02::Method::PUT => Method::PUT,
        http02::Method::DELETE => Method::DELETE,
        _ => Method::from_bytes(method.as_str().as_bytes()).map_err(bad_request)?,
    })
}

/// The protocol version.
pub(crate) fn version(version: http02::Version) -> Version {
    match version {
        http02::Version::HTTP_09 => Version::HTTP_09,
        http02::Version::HTTP_10 => Version::HTTP_10,
        http02::Version::HTTP_2 => Version::HTTP_2,
        http02::Version::HTTP_3 => Version::HTTP_3,
        _ => Version::HTTP_11,
    }
}

/// Every request header value into `out` (a reused map: what it held is
/// replaced), repeated names kept in order.
///
/// A map holding exactly the request's one field, a `host` with the same
/// value (the last request on a reused collection, see
/// [`FeaturePool`](serverbridge::FeaturePool)), is kept as it is: no copy.
pub(crate) fn request_headers(headers: &ActixHeaders, out: &mut HeaderMap) -> Result<()> {
    if headers.len() == 1 && out.len() == 1 {
        if let (Some(new), Some(old)) = (
            headers.get(http02::header::HOST),
            out.get(http::header::HOST),
        ) {
            if new.as_bytes() == old.as_bytes() {
                return Ok(());
            }
        }
    }
    out.clear();
    out.reserve(headers.len());
    for (name, value) in headers.iter() {
        let name = HeaderName::from_bytes(name.as_str().as_bytes()).map_err(bad_request)?;
        let value = HeaderValue::from_bytes(value.as_bytes()).map_err(bad_request)?;
        out.append(name, value);
    }
    Ok(())
}

/// The response status, by its code.
pub(crate) fn status(status: StatusCode) -> http02::StatusCode {
    // Both accept exactly 100..=999, so this cannot fail.
    http02::StatusCode::from_u16(status.as_u16())
        .unwrap_or(http02::StatusCode::INTERNAL_SERVER_ERROR)
}

/// What a response's fields say about its framing (see [`framing`]).
#[derive(Debug, PartialEq)]
pub(crate) struct Framing {
    /// The one valid `Content-Length`, when there is exactly one and no
    /// `Transfer-Encoding`.
    pub(crate) length: Option<u64>,
    /// A `Connection: close` among the fields.
    pub(crate) close: bool,
}

/// Reads the framing from a response's fields: a pass of its own, before
/// the copy, so that the actix response is made with its final body (a
/// body set afterwards moves the whole response).
pub(crate) fn framing(headers: &HeaderMap) -> Framing {
    let (mut lengths, mut length, mut encoded, mut close) = (0, None, false, false);
    for (name, value) in headers {
        if name == CONTENT_LENGTH {
            lengths += 1;
            length = value.to_str().ok().and_then(|v| v.parse().ok());
        } else if name == TRANSFER_ENCODING {
            encoded = true;
        } else if name == CONNECTION && value.as_bytes().eq_ignore_ascii_case(b"close") {
            close = true;
        }
    }
    Framing {
        length: length.filter(|_| lengths == 1 && !encoded),
        close,
    }
}

/// Appends every response header but `Content-Length` to actix's map.
/// Actix writes `Content-Length` itself from a sized body; when the body
/// is not sized, [`content_lengths`] puts the app's fields back. A field
/// actix cannot carry is left out (and logged), the others still go.
pub(crate) fn response_headers(headers: &HeaderMap, out: &mut ActixHeaders) {
    for (name, value) in headers {
        if name != CONTENT_LENGTH {
            append(name, value, out);
        }
    }
}

/// Appends the app's `Content-Length` fields, as they are.
pub(crate) fn content_lengths(headers: &HeaderMap, out: &mut ActixHeaders) {
    for value in headers.get_all(CONTENT_LENGTH) {
        append(&CONTENT_LENGTH, value, out);
    }
}

fn append(name: &HeaderName, value: &HeaderValue, out: &mut ActixHeaders) {
    if let Some((name, value)) = CONVERTED.with(|cache| cache.borrow().find(name, value)) {
        out.append(name, value);
        return;
    }
    let converted = http02::header::HeaderName::from_bytes(name.as_str().as_bytes())
        .map_err(Error::app)
        .and_then(|name| {
            let value =
                http02::header::HeaderValue::from_bytes(value.as_bytes()).map_err(Error::app)?;
            Ok((name, value))
        });
    match converted {
        Ok((converted_name, converted_value)) => {
            CONVERTED.with(|cache| {
                cache
                    .borrow_mut()
                    .remember(name, value, &converted_name, &converted_value);
            });
            out.append(converted_name, converted_value);
        }
        Err(err) => tracing::warn!(
            error = %err,
            field = %name,
            "a response header actix cannot carry was left out"
        ),
    }
}

/// How many converted fields a worker thread remembers.
const REMEMBERED: usize = 8;

/// The longest value remembered: a long one is rarely repeated, and is
/// not worth holding.
const REMEMBERED_LEN: usize = 128;

thread_local! {
    /// The response fields this thread converted last: most responses
    /// repeat a few (`Server`, `Content-Type`), and a remembered one costs
    /// a comparison and two reference counts instead of a name lookup, an
    /// allocation, a copy and a validation.
    static CONVERTED: std::cell::RefCell<Remembered> = const {
        std::cell::RefCell::new(Remembered { fields: Vec::new(), next: 0 })
    };
}

/// A field's name as the app gave it, and the field as it was converted.
/// The value is compared with the converted one (a copy of its own): a
/// clone of the app's could hold a large buffer it is a slice of.
type Field = (
    HeaderName,
    http02::header::HeaderName,
    http02::header::HeaderValue,
);

/// The last [`REMEMBERED`] conversions, replaced in turn.
struct Remembered {
    fields: Vec<Field>,
    next: usize,
}

impl Remembered {
    /// The conversion of exactly this name and value (bytes compared).
    fn find(
        &self,
        name: &HeaderName,
        value: &HeaderValue,
    ) -> Option<(http02::header::HeaderName, http02::header::HeaderValue)> {
        self.fields
            .iter()
            .find(|field| field.0 == *name && field.2.as_bytes() == value.as_bytes())
            .map(|field| (field.1.clone(), field.2.clone()))
    }

    fn remember(
        &mut self,
        name: &HeaderName,
        value: &HeaderValue,
        converted_name: &http02::header::HeaderName,
        converted_value: &http02::header::HeaderValue,
    ) {
        if value.len() > REMEMBERED_LEN {
            return;
        }
        let field = (
            name.clone(),
            converted_name.clone(),
            converted_value.clone(),
        );
        if self.fields.len() < REMEMBERED {
            self.fields.push(field);
        } else {
            self.fields[self.next] = field;
            self.next = (self.next + 1) % REMEMBERED;
        }
    }
}

/// A request the core cannot represent: `400`.
pub(crate) fn bad_request(err: impl std::fmt::Display) -> Error {
    Error::parse(
        format!("unrepresentable request: {err}"),
        StatusCode::BAD_REQUEST,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_methods_survive() {
        let m = http02::Method::from_bytes(b"PROPFIND").unwrap();
        assert_eq!(method(&m).unwrap().as_str(), "PROPFIND");
    }

    #[test]
    fn repeated_headers_keep_their_order() {
        let mut headers = ActixHeaders::new();
        for v in ["a", "", "b c"] {
            headers.append(
                http02::header::HeaderName::from_static("x-r"),
                http02::header::HeaderValue::from_str(v).unwrap(),
            );
        }
        let mut out = HeaderMap::new();
        request_headers(&headers, &mut out).unwrap();
        let values: Vec<_> = out
            .get_all("x-r")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(values, ["a", "", "b c"]);
        let mut back = ActixHeaders::new();
        response_headers(&out, &mut back);
        assert_eq!(back.get_all("x-r").count(), 3);
    }

    #[test]
    fn remembered_response_fields_convert_exactly() {
        // More names and values than the thread remembers, each converted
        // several times in turn: a hit must be this very name and value
        // (same name, other value; other name, same value), and a value
        // too long to remember still converts.
        let long = "v".repeat(REMEMBERED_LEN + 1);
        let mut fields: Vec<(String, String)> = Vec::new();
        for i in 0..REMEMBERED + 3 {
            fields.push(("x-a".into(), format!("{i}")));
            fields.push((format!("x-{i}"), "same".into()));
        }
        fields.push(("x-long".into(), long.clone()));
        for _ in 0..3 {
            for (name, value) in &fields {
                let mut headers = HeaderMap::new();
                headers.insert(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                );
                let mut out = ActixHeaders::new();
                response_headers(&headers, &mut out);
                assert_eq!(out.len(), 1, "{name}");
                assert_eq!(out.get(name.as_str()).unwrap().as_bytes(), value.as_bytes());
            }
        }
        CONVERTED.with(|cache| {
            let cache = cache.borrow();
            assert_eq!(cache.fields.len(), REMEMBERED);
            assert!(cache.fields.iter().all(|field| field.2 != long.as_str()));
        });
    }

    #[test]
    fn a_reused_map_keeps_a_repeated_lone_host_and_drops_the_rest() {
        let actix = |fields: &[(&'static str, &'static str)]| {
            let mut headers = ActixHeaders::new();
            for (name, value) in fields {
                headers.append(
                    http02::header::HeaderName::from_static(name),
                    http02::header::HeaderValue::from_static(value),
                );
            }
            headers
        };
        let mut out = HeaderMap::new();
        request_headers(&actix(&[("host", "a:1")]), &mut out).unwrap();
        let kept = out["host"].as_bytes().as_ptr();
        // The same lone Host: the value is not copied again.
        request_headers(&actix(&[("host", "a:1")]), &mut out).unwrap();
        assert_eq!(out["host"].as_bytes().as_ptr(), kept);
        // Another Host, or more fields: the map is refilled.
        request_headers(&actix(&[("host", "b:2")]), &mut out).unwrap();
        assert_eq!(out["host"], "b:2");
        request_headers(&actix(&[("host", "b:2"), ("x-a", "1")]), &mut out).unwrap();
        assert_eq!((out.len(), out["x-a"].as_bytes()), (2, &b"1"[..]));
        request_headers(&actix(&[("x-b", "2")]), &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert!(!out.contains_key("host") && out["x-b"] == "2");
    }

    #[test]
    fn response_framing_is_read_and_the_fields_copied_but_the_length() {
        let read = |fields: &[(&'static str, &'static str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in fields {
                headers.append(*name, HeaderValue::from_static(value));
            }
            let mut out = ActixHeaders::new();
            response_headers(&headers, &mut out);
            assert!(!out.contains_key("content-length"));
            assert_eq!(
                out.len(),
                fields.iter().filter(|f| f.0 != "content-length").count()
            );
            framing(&headers)
        };
        let sized = |length, close| Framing { length, close };
        assert_eq!(
            read(&[("content-length", "13"), ("x-a", "1")]),
            sized(Some(13), false)
        );
        assert_eq!(read(&[("connection", "Close")]), sized(None, true));
        assert_eq!(read(&[("connection", "keep-alive")]), sized(None, false));
        // Two lengths, a length with Transfer-Encoding, or an invalid one:
        // not a sized body.
        let two = [("content-length", "1"), ("content-length", "1")];
        assert_eq!(read(&two), sized(None, false));
        let encoded = [("transfer-encoding", "chunked"), ("content-length", "1")];
        assert_eq!(read(&encoded), sized(None, false));
        assert_eq!(read(&[("content-length", "x")]), sized(None, false));
        let mut headers = HeaderMap::new();
        headers.append("content-length", HeaderValue::from_static("1"));
        headers.append("content-length", HeaderValue::from_static("2"));
        let mut out = ActixHeaders::new();
        content_lengths(&headers, &mut out);
        assert_eq!(out.get_all("content-length").count(), 2);
    }

    #[test]
    fn statuses_map_by_code() {
        assert_eq!(status(StatusCode::from_u16(299).unwrap()).as_u16(), 299);
        assert_eq!(version(http02::Version::HTTP_10), Version::HTTP_10);
    }
}
