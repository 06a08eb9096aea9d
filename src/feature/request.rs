//! [`RequestFeature`]: the request line, headers and body.

use http::uri::{Authority, Scheme};
use http::{HeaderMap, Method, Uri, Version};

use crate::body::RequestBody;
use crate::target::{check_target, classify_target};

/// The request as the server received it (the analogue of
/// `IHttpRequestFeature`). **Required**: every server provides it.
///
/// The fields are plain data, so middleware can rewrite them (`map` moves a
/// prefix from `path` to `path_base`). Invariants a server must keep (checked
/// by [`Lint`](crate::lint::Lint)):
///
/// - `path` is the path exactly as sent: percent-encoding kept, dot segments
///   kept, never normalised silently. It starts with `/`, or is empty when
///   `path_base` holds the whole path, or for the asterisk (`OPTIONS *`) and
///   authority (`CONNECT host:port`) forms.
/// - `path_base` is empty or starts with `/` and does not end with `/`.
/// - `query` is the query without the leading `?` (empty when absent).
/// - `raw_target` is the request target byte for byte as it was on the wire
///   (origin, absolute, authority or asterisk form).
///
/// # Example
///
/// ```
/// use serverbridge::feature::RequestFeature;
///
/// let req = http::Request::get("http://example.com/a%2Fb?x=1").body(()).unwrap();
/// let (parts, ()) = req.into_parts();
/// let feature = RequestFeature::from_parts(parts, Default::default());
/// assert_eq!(feature.path, "/a%2Fb");
/// assert_eq!(feature.query, "x=1");
/// assert_eq!(feature.raw_target, "http://example.com/a%2Fb?x=1");
/// assert_eq!(feature.uri().to_string(), "/a%2Fb?x=1");
/// ```
#[derive(Debug)]
pub struct RequestFeature {
    /// The method.
    pub method: Method,
    /// `http` or `https` (what the connection was, not what a proxy claims).
    pub scheme: Scheme,
    /// The part of the path already consumed by routing (`map`).
    pub path_base: String,
    /// The rest of the path, as sent.
    pub path: String,
    /// The query without `?`.
    pub query: String,
    /// The request target as it was on the wire.
    pub raw_target: String,
    /// The protocol version.
    pub version: Version,
    /// The request headers.
    pub headers: HeaderMap,
    /// The streaming body.
    pub body: RequestBody,
}

impl Default for RequestFeature {
    fn default() -> Self {
        RequestFeature {
            method: Method::GET,
            scheme: Scheme::HTTP,
            path_base: String::new(),
            path: "/".to_owned(),
            query: String::new(),
            raw_target: "/".to_owned(),
            version: Version::HTTP_11,
            headers: HeaderMap::new(),
            body: RequestBody::empty(),
        }
    }
}

impl RequestFeature {
    /// Builds the feature from `http` request parts; the URI as given becomes
    /// the raw target. Extensions in `parts` are dropped (callers that want
    /// them keep them as a feature).
    pub fn from_parts(parts: http::request::Parts, body: RequestBody) -> Self {
        RequestFeature::build(parts, body, None)
    }

    /// As [`from_parts`](Self::from_parts), with the raw target as the server
    /// read it (saves formatting the URI back into text).
    pub fn from_parts_with_target(
        parts: http::request::Parts,
        body: RequestBody,
        raw_target: String,
    ) -> Self {
        RequestFeature::build(parts, body, Some(raw_target))
    }

    /// Refills this feature for the next request, as
    /// [`from_parts_with_target`] (with `raw`) or [`from_parts`] (without)
    /// would build it, writing into its strings' existing capacity: a server
    /// that reuses a collection (see [`FeaturePool`](crate::FeaturePool))
    /// allocates nothing here.
    ///
    /// [`from_parts_with_target`]: Self::from_parts_with_target
    /// [`from_parts`]: Self::from_parts
    ///
    /// # Example
    ///
    /// ```
    /// use serverbridge::body::RequestBody;
    /// use serverbridge::feature::RequestFeature;
    ///
    /// let mut feature = RequestFeature::default();
    /// let (parts, ()) = http::Request::get("/a%20b?x=1").body(()).unwrap().into_parts();
    /// feature.refill(parts, RequestBody::empty(), Some("/a%20b?x=1"));
    /// assert_eq!((feature.path.as_str(), feature.query.as_str()), ("/a%20b", "x=1"));
    /// ```
    pub fn refill(&mut self, parts: http::request::Parts, body: RequestBody, raw: Option<&str>) {
        use std::fmt::Write;
        let uri = parts.uri;
        self.path.clear();
        self.raw_target.clear();
        // The same three cases as `build`.
        if is_asterisk(&uri) {
            self.raw_target.push('*');
        } else if parts.method == Method::CONNECT && uri.path_and_query().is_none() {
            if let Some(authority) = uri.authority() {
                self.raw_target.push_str(authority.as_str());
            }
        } else {
            self.path.push_str(uri.path());
            match raw {
                Some(raw) => self.raw_target.push_str(raw),
                // Writing into a String cannot fail.
                None => {
                    let _ = write!(self.raw_target, "{uri}");
                }
            }
        }
        self.method = parts.method;
        self.scheme = uri.scheme().cloned().unwrap_or(Scheme::HTTP);
        self.path_base.clear();
        self.query.clear();
        self.query.push_str(uri.query().unwrap_or(""));
        self.version = parts.version;
        self.headers = parts.headers;
        self.body = body;
    }

    fn build(parts: http::request::Parts, body: RequestBody, raw: Option<String>) -> Self {
        let uri = parts.uri;
        let (path, raw_target) = if is_asterisk(&uri) {
            (String::new(), "*".to_owned())
        } else if parts.method == Method::CONNECT && uri.path_and_query().is_none() {
            (
                String::new(),
                uri.authority().map_or_else(String::new, |a| a.to_string()),
            )
        } else {
            (
                uri.path().to_owned(),
                raw.unwrap_or_else(|| uri.to_string()),
            )
        };
        RequestFeature {
            method: parts.method,
            scheme: uri.scheme().cloned().unwrap_or(Scheme::HTTP),
            path_base: String::new(),
            path,
            query: uri.query().unwrap_or("").to_owned(),
            raw_target,
            version: parts.version,
            headers: parts.headers,
            body,
        }
    }

    /// Sets `path`, `query` and `raw_target` from a request target as it
    /// was sent, in place (their capacity kept), for a server that receives
    /// the target as text (tiny_http, actix-web). The target must have the
    /// form `method` allows, by the built-in server's rules (RFC 9112
    /// §3.2), so set `method` first: the origin form (`/p?q`, split at the
    /// first `?`); the asterisk form (`*`, empty path) for `OPTIONS` only;
    /// the absolute form (`http://host/p?q` or `https://`, a valid host,
    /// path `/` when it has none); the authority form (`host:port`, empty
    /// path) for `CONNECT`, which takes no other. Its characters are
    /// checked by the same rules: visible ASCII only, no fragment, and
    /// every `%` in the path followed by two hex digits. Returns `false`,
    /// with the three fields cleared, for any other target; a server
    /// answers `400`.
    ///
    /// The target is split as it is, not decoded. `scheme` and `path_base`
    /// are left alone.
    ///
    /// # Example
    ///
    /// ```
    /// use http::Method;
    /// use serverbridge::feature::RequestFeature;
    ///
    /// let mut request = RequestFeature::default(); // GET
    /// assert!(request.set_target("/a%20b?x=1?y"));
    /// assert_eq!((&*request.path, &*request.query), ("/a%20b", "x=1?y"));
    /// assert!(request.set_target("http://example.com?q"));
    /// assert_eq!((&*request.path, &*request.query), ("/", "q"));
    /// assert_eq!(request.raw_target, "http://example.com?q");
    /// assert!(!request.set_target("example.com:443"));
    /// assert!(!request.set_target("*"));
    /// request.method = Method::CONNECT;
    /// assert!(request.set_target("example.com:443"));
    /// assert_eq!((&*request.path, &*request.raw_target), ("", "example.com:443"));
    /// assert!(!request.set_target("a b"));
    /// ```
    pub fn set_target(&mut self, target: &str) -> bool {
        self.raw_target.clear();
        if check_target(target).is_err()
            || classify_target(&self.method, target, &mut self.path, &mut self.query).is_err()
        {
            self.path.clear();
            self.query.clear();
            return false;
        }
        self.raw_target.push_str(target);
        true
    }

    /// The origin-form URI an inner router should see: `path?query`, without
    /// `path_base` (so a `tower` service mounted under `map` sees the rest of
    /// the path). The asterisk form gives `*`, the authority form the authority.
    pub fn uri(&self) -> Uri {
        if self.raw_target == "*" && self.path.is_empty() {
            return Uri::from_static("*");
        }
        if self.path.is_empty() && self.path_base.is_empty() {
            if let Ok(authority) = self.raw_target.parse::<Authority>() {
                return Uri::from(authority);
            }
        }
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        let text = if self.query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{}", self.query)
        };
        text.parse()
            .unwrap_or_else(|_| encoded_uri(path, &self.query))
    }

    /// The full path: `path_base` followed by `path`.
    pub fn full_path(&self) -> String {
        let mut full = String::with_capacity(self.path_base.len() + self.path.len());
        full.push_str(&self.path_base);
        full.push_str(&self.path);
        full
    }

    /// The `Host` header, if present and valid text.
    pub fn host(&self) -> Option<&str> {
        self.headers.get(http::header::HOST)?.to_str().ok()
    }
}

/// `path?query` with every byte `http::Uri` refuses percent-encoded, for a
/// target the server accepted (the built-in server takes any visible ASCII,
/// `` ` ``, `<`, `"` …) that `Uri` does not. A router then sees the same
/// path a browser would have sent, never another one: `/a<b>` is
/// `/a%3Cb%3E`, not `/`.
fn encoded_uri(path: &str, query: &str) -> Uri {
    use std::fmt::Write;
    fn push(out: &mut String, text: &str, in_query: bool) {
        for &byte in text.as_bytes() {
            let keep = byte.is_ascii_alphanumeric()
                || b"-._~!$&'()*+,;=:@/%".contains(&byte)
                || (in_query && byte == b'?');
            if keep {
                out.push(char::from(byte));
            } else {
                // Writing into a String cannot fail.
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    let mut text = String::with_capacity(path.len() + query.len() + 16);
    push(&mut text, path, false);
    if !query.is_empty() {
        text.push('?');
        push(&mut text, query, true);
    }
    // Only the kept bytes remain, each of which `Uri` takes.
    text.parse().unwrap_or_else(|_| Uri::from_static("/"))
}

/// Whether `uri` is the asterisk form (`OPTIONS *`). Cheaper than
/// `uri == "*"`, which compares the URI's parts one by one with the text.
pub(crate) fn is_asterisk(uri: &http::Uri) -> bool {
    // Also with a scheme and authority around it: HTTP/2 sends `OPTIONS *`
    // as `:path: *` beside them (RFC 9113 §8.3.1); no HTTP/1 absolute form
    // has `*` for its path.
    uri.path() == "*" && uri.query().is_none()
}

#[cfg(test)]
mod tests {
    use http::Method;

    use super::RequestFeature;

    fn split(method: Method, target: &str) -> Option<(String, String, String)> {
        // A used feature: the target replaces what its fields held.
        let mut request = RequestFeature {
            method,
            path: "/old".into(),
            query: "old".into(),
            raw_target: "/old?old".into(),
            ..RequestFeature::default()
        };
        let ok = request.set_target(target);
        let fields = (request.path, request.query, request.raw_target);
        if ok {
            return Some(fields);
        }
        assert_eq!(
            fields,
            Default::default(),
            "a refused target leaves nothing"
        );
        None
    }

    #[test]
    fn a_target_uri_refuses_is_encoded_for_routers_never_replaced() {
        for (target, uri) in [
            ("/admin`x", "/admin%60x"),
            ("/a<b>", "/a%3Cb%3E"),
            ("/search?q=\"rust\"", "/search?q=%22rust%22"),
            ("/x?a=b?c<d>", "/x?a=b?c%3Cd%3E"),
            // What `Uri` takes stays as it was.
            ("/x?a={b}", "/x?a={b}"),
            ("/ok/%41?x=1", "/ok/%41?x=1"),
        ] {
            let (path, query, _) = split(Method::GET, target).expect("the server takes it");
            let request = RequestFeature {
                path,
                query,
                ..RequestFeature::default()
            };
            assert_eq!(request.uri(), uri, "{target}");
        }
    }

    #[test]
    fn targets_split_as_sent_without_decoding() {
        let owned = |p: &str, q: &str, raw: &str| Some((p.into(), q.into(), raw.into()));
        let get = |target| split(Method::GET, target);
        let target = "/a%2Fb/../c?x=1&x=2";
        assert_eq!(get(target), owned("/a%2Fb/../c", "x=1&x=2", target));
        assert_eq!(get("/"), owned("/", "", "/"));
        assert_eq!(get("/?"), owned("/", "", "/?"));
        assert_eq!(get("http://h/p?q"), owned("/p", "q", "http://h/p?q"));
        assert_eq!(get("HTTPS://h"), owned("/", "", "HTTPS://h"));
        assert_eq!(split(Method::OPTIONS, "*"), owned("", "", "*"));
        assert_eq!(split(Method::CONNECT, "h:80"), owned("", "", "h:80"));
        assert_eq!(get("not a target"), None);
    }

    /// The forms RFC 9112 §3.2 allows each method, as the built-in server
    /// has them: a server that gets the target as text refuses the rest.
    #[test]
    fn targets_with_characters_the_built_in_server_refuses_are_refused() {
        for target in [
            "/a\u{1}b",
            "/a\tb",
            "/a b",
            "/a\u{7f}",
            "/a?x=1#frag",
            "/a%zz",
            "/a%4",
        ] {
            assert_eq!(split(Method::GET, target), None, "GET {target:?}");
        }
        // The query keeps a stray `%` (form decoders take it).
        assert!(split(Method::GET, "/a?q=%zz").is_some());
    }

    #[test]
    fn targets_in_a_form_their_method_does_not_take_are_refused() {
        for target in ["*", "**", "*a", "a", ".", "..", "h:80", "http:x", "http:"] {
            assert_eq!(split(Method::GET, target), None, "GET {target}");
        }
        assert_eq!(split(Method::POST, "*"), None);
        assert_eq!(split(Method::OPTIONS, "**"), None);
        for target in ["/", "*", "h", "u@h:443", "http://h:443/", "h:99999"] {
            assert_eq!(split(Method::CONNECT, target), None, "CONNECT {target}");
        }
        // An absolute form needs an http(s) scheme and a valid host.
        for target in [
            "ftp://h/",
            "http://:80/",
            "http://[::g]/",
            "http://[::1]x/",
            "http://u@h/",
        ] {
            assert_eq!(split(Method::GET, target), None, "GET {target}");
        }
    }
}
