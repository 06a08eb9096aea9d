//! From meta-variables to the request's features (RFC 3875 §4.1).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use serverbridge::body::RequestBody;
use serverbridge::feature::{Address, ConnectionInfo, RequestFeature, RequestId, ServerAddress};
use serverbridge::{Error, Features, Result};

use crate::io::{Input, StdinBody};

/// The meta-variables of one request, by name.
///
/// # Example
///
/// ```
/// use serverbridge_cgi::Env;
///
/// let env = Env::new([("REQUEST_METHOD".to_owned(), "GET".to_owned())]);
/// assert_eq!(env.get("REQUEST_METHOD"), Some("GET"));
/// assert_eq!(env.get("PATH_INFO"), None);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    /// Collects the variables (a later duplicate replaces an earlier one).
    pub fn new(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Env {
            vars: vars.into_iter().collect(),
        }
    }

    /// A variable; an empty value counts as unset (RFC 3875 §4.1: "NULL").
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

fn parse_error(message: String) -> Error {
    Error::parse(message, StatusCode::BAD_REQUEST)
}

/// The server's own address: `SERVER_ADDR` (Apache, nginx) or an IP
/// `SERVER_NAME`, with `SERVER_PORT`; `https` when `HTTPS` is on.
pub(crate) fn server_address(env: &Env) -> Option<ServerAddress> {
    let addr = local_addr(env)?;
    Some(ServerAddress::Tcp {
        scheme: if https(env) { "https" } else { "http" }.into(),
        addr,
    })
}

fn https(env: &Env) -> bool {
    env.get("HTTPS")
        .is_some_and(|v| v.eq_ignore_ascii_case("on") || v == "1")
}

fn local_addr(env: &Env) -> Option<SocketAddr> {
    let ip: IpAddr = env
        .get("SERVER_ADDR")
        .or_else(|| env.get("SERVER_NAME"))?
        .trim_matches(['[', ']'])
        .parse()
        .ok()?;
    Some(SocketAddr::new(ip, env.get("SERVER_PORT")?.parse().ok()?))
}

fn peer_addr(env: &Env) -> Option<SocketAddr> {
    let ip: IpAddr = env.get("REMOTE_ADDR")?.parse().ok()?;
    Some(SocketAddr::new(ip, env.get("REMOTE_PORT")?.parse().ok()?))
}

/// `path_base` and `path`: `SCRIPT_NAME`, and the rest of `REQUEST_URI`'s
/// path as sent when it starts with `SCRIPT_NAME` at a segment boundary,
/// else the (decoded) `PATH_INFO`.
pub(crate) fn paths(env: &Env) -> (String, String) {
    let script = env.get("SCRIPT_NAME").unwrap_or("").trim_end_matches('/');
    let path_info = env.get("PATH_INFO").unwrap_or("");
    if let Some(uri) = env.get("REQUEST_URI") {
        let raw_path = uri.split_once('?').map_or(uri, |(p, _)| p);
        if let Some(rest) = raw_path.strip_prefix(script) {
            if rest.is_empty() || rest.starts_with('/') {
                return (script.to_owned(), rest.to_owned());
            }
        }
    }
    (script.to_owned(), path_info.to_owned())
}

fn version(env: &Env) -> Version {
    match env.get("SERVER_PROTOCOL").unwrap_or("HTTP/1.1") {
        "HTTP/1.0" => Version::HTTP_10,
        "HTTP/0.9" => Version::HTTP_09,
        "HTTP/2" | "HTTP/2.0" => Version::HTTP_2,
        "HTTP/3" | "HTTP/3.0" => Version::HTTP_3,
        _ => Version::HTTP_11,
    }
}

/// `HTTP_X_FOO` → `x-foo`; `CONTENT_TYPE` and `CONTENT_LENGTH` → their
/// headers.
fn headers(env: &Env) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut names: Vec<&String> = env.vars.keys().collect();
    // HashMap order is random; sorted names give a stable header order.
    names.sort();
    for key in names {
        let name = match key.strip_prefix("HTTP_") {
            Some(rest) => rest.to_ascii_lowercase().replace('_', "-"),
            None if key == "CONTENT_TYPE" || key == "CONTENT_LENGTH" => {
                key.to_ascii_lowercase().replace('_', "-")
            }
            None => continue,
        };
        let value = &env.vars[key];
        if key.starts_with("CONTENT_") && value.is_empty() {
            continue;
        }
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => tracing::debug!(variable = %key, "not a valid header; skipped"),
        }
    }
    headers
}

/// The request's features (request, connection, request id) over the
/// server-level defaults; the caller adds the response ones.
pub(crate) fn features(env: &Env, stdin: Input, server: Arc<Features>) -> Result<Features> {
    let method = env
        .get("REQUEST_METHOD")
        .ok_or_else(|| parse_error("REQUEST_METHOD is not set: not a CGI request".into()))?;
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| parse_error(format!("REQUEST_METHOD {method:?} is not a method")))?;
    let length = match env.get("CONTENT_LENGTH") {
        Some(text) => Some(
            text.parse::<u64>()
                .map_err(|_| parse_error(format!("CONTENT_LENGTH {text:?} is not a length")))?,
        ),
        // A body the server passes without a length (Apache does for a
        // chunked request) runs to the end of stdin.
        None if env.get("HTTP_TRANSFER_ENCODING").is_some() => None,
        None => Some(0),
    };
    let body = match length {
        Some(0) => RequestBody::empty(),
        length => RequestBody::new(StdinBody::new(stdin, length)),
    };
    let (path_base, path) = paths(env);
    let query = env.get("QUERY_STRING").unwrap_or("").to_owned();
    let raw_target = match env.get("REQUEST_URI") {
        Some(uri) => uri.to_owned(),
        None if query.is_empty() => format!("{path_base}{path}"),
        None => format!("{path_base}{path}?{query}"),
    };
    let mut features = Features::with_capacity(6, Some(server));
    let peer = peer_addr(env);
    let connection_id = match (env.get("REMOTE_ADDR"), env.get("REMOTE_PORT")) {
        (Some(ip), Some(port)) => format!("{ip}:{port}"),
        (Some(ip), None) => ip.to_owned(),
        _ => String::new(),
    };
    let request_id = env
        .get("UNIQUE_ID")
        .map_or_else(|| connection_id.clone(), str::to_owned);
    if env.get("REMOTE_ADDR").is_some() {
        features.insert(ConnectionInfo {
            id: connection_id,
            local: local_addr(env).map(Address::Tcp),
            peer: peer.map(Address::Tcp),
        });
    }
    features.insert(RequestId::new(request_id));
    features.insert(RequestFeature {
        method,
        scheme: if https(env) {
            http::uri::Scheme::HTTPS
        } else {
            http::uri::Scheme::HTTP
        },
        path_base,
        path,
        query,
        raw_target,
        version: version(env),
        headers: headers(env),
        body,
    });
    Ok(features)
}

#[cfg(test)]
mod tests {
    use super::{paths, Env};

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::new(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    #[test]
    fn the_raw_path_comes_from_request_uri_when_it_matches_script_name() {
        let e = env(&[
            ("SCRIPT_NAME", "/cgi-bin/app"),
            ("PATH_INFO", "/a b/c"),
            ("REQUEST_URI", "/cgi-bin/app/a%20b/./c?x"),
        ]);
        assert_eq!(paths(&e), ("/cgi-bin/app".into(), "/a%20b/./c".into()));
        // Another script whose name merely starts the same: PATH_INFO.
        let e = env(&[
            ("SCRIPT_NAME", "/cgi-bin/app"),
            ("PATH_INFO", "/x"),
            ("REQUEST_URI", "/cgi-bin/app2/x"),
        ]);
        assert_eq!(paths(&e), ("/cgi-bin/app".into(), "/x".into()));
        let e = env(&[("SCRIPT_NAME", "/s"), ("PATH_INFO", "/p q")]);
        assert_eq!(paths(&e), ("/s".into(), "/p q".into()));
    }
}
