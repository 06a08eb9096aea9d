//! Request targets (RFC 9112 §3.2) and hosts (RFC 9110 §7.2): the one set
//! of rules every server in the crate applies, whether it parses requests
//! itself (the built-in server, TestServer's direct mode) or gets the
//! target as text from another server (`RequestFeature::set_target`).

use std::net::Ipv6Addr;

use http::{Method, StatusCode};

use crate::error::{Error, Result};

#[cold]
fn bad(message: &str) -> Error {
    Error::parse(message.to_owned(), StatusCode::BAD_REQUEST)
}

/// The form of the request target (RFC 9112 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TargetForm {
    Origin,
    Absolute,
    Authority,
    Asterisk,
}

/// The bytes of a reg-name (RFC 3986 §3.2.2): unreserved, pct-encoded's
/// `%`, sub-delims. A table: one load per byte of every request's Host.
const REG_NAME: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        i += 1;
    }
    table
};

/// Whether `host` is a valid `uri-host [ ":" port ]` (RFC 9110 §7.2): a
/// reg-name, IPv4 or bracketed IPv6 literal, and an optional port of digits.
pub(crate) fn valid_host(host: &[u8]) -> bool {
    if host.first() == Some(&b'[') {
        let Some(close) = host.iter().position(|&b| b == b']') else {
            return false;
        };
        // An IPv6 address as RFC 4291 writes it (std parses exactly that:
        // one `::` at most, eight groups, a dotted IPv4 tail). IPvFuture
        // and zone ids (`%25eth0`) name nothing this server can reach:
        // rejected.
        let literal = std::str::from_utf8(&host[1..close]).ok();
        if literal.and_then(|l| l.parse::<Ipv6Addr>().ok()).is_none() {
            return false;
        }
        return match &host[close + 1..] {
            [] => true,
            [b':', port @ ..] => valid_port(port),
            _ => false,
        };
    }
    // One pass (this runs for every request's Host): a reg-name with no
    // empty label (`.example`, `a..b`: RFC 3986 allows them, no DNS name
    // has one, and servers' own suites reject them; one trailing dot, a
    // fully qualified name, stays valid) and a `%` only as the start of
    // a pct-encoded byte (`%` HEXDIG HEXDIG), then an optional port. A
    // `:` is no reg-name byte, so the first one starts the port.
    let mut after_dot = true;
    let mut i = 0;
    while let Some(&b) = host.get(i) {
        if b == b':' {
            return i > 0 && valid_port(&host[i + 1..]);
        }
        if !REG_NAME[usize::from(b)] || (b == b'.' && after_dot) {
            return false;
        }
        if b == b'%' {
            match host.get(i + 1..i + 3) {
                Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => i += 2,
                _ => return false,
            }
        }
        after_dot = b == b'.';
        i += 1;
    }
    !host.is_empty()
}

/// A TCP port: one to five digits, at most 65535.
fn valid_port(port: &[u8]) -> bool {
    !port.is_empty()
        && port.len() <= 5
        && port.iter().all(u8::is_ascii_digit)
        && port.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')) <= 65535
}

/// Appends `path` and `query` from `path?query` (split at the first `?`).
/// A byte scan: `split_once('?')` goes through the char searcher, which
/// costs more than the short targets it mostly sees.
#[inline]
pub(crate) fn split_path(path_and_query: &str, path: &mut String, query: &mut String) {
    match path_and_query.bytes().position(|b| b == b'?') {
        Some(i) => {
            path.push_str(&path_and_query[..i]);
            query.push_str(&path_and_query[i + 1..]);
        }
        None => path.push_str(path_and_query),
    }
}

/// Checks a request target's characters, the rules every server here
/// shares (`RequestFeature::set_target` too): visible ASCII only, no
/// fragment, and every `%` before the query starts a pct-encoded byte (`%`
/// HEXDIG HEXDIG, RFC 3986 §2.1), as nginx and Apache require. The rest of
/// RFC 3986 is [`check_target_strict`], the built-in server's default.
pub(crate) fn check_target(target: &str) -> Result<()> {
    let bytes = target.as_bytes();
    if bytes.is_empty() {
        return Err(bad("an empty request target"));
    }
    let hex = |at: usize| bytes.get(at).is_some_and(u8::is_ascii_hexdigit);
    let mut in_query = false;
    // One byte pass (`contains('#')` would be a second, through the char
    // searcher).
    for (i, &b) in bytes.iter().enumerate() {
        if !(0x21..=0x7e).contains(&b) || b == b'#' {
            return Err(bad("invalid characters in the request target"));
        }
        if b == b'?' {
            in_query = true;
        } else if b == b'%' && !in_query && !(hex(i + 1) && hex(i + 2)) {
            return Err(bad(
                "a `%` in the request target's path is not followed by two hex digits",
            ));
        }
    }
    Ok(())
}

/// The bytes RFC 3986 allows in a path or query (§3.3, §3.4): unreserved,
/// sub-delims, `:`, `@`, `/`, `?` (and `%`, checked apart).
#[cfg(feature = "server")]
const URI_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let allowed =
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/?";
    let mut i = 0;
    while i < allowed.len() {
        table[allowed[i] as usize] = true;
        i += 1;
    }
    table
};

/// The built-in server's strict default on top of [`check_target`]: the
/// path and query of an origin- or absolute-form target hold only what RFC
/// 3986 allows there (`URI_BYTES`, and `%` only before two hex digits), so
/// `"`, `<`, `>`, `\`, `^`, `` ` ``, `{`, `|`, `}`, `[`, `]` and a stray
/// `%` in the query are refused (RFC 9112 §3: an invalid request line
/// SHOULD get 400). `Limits::allow_unencoded_target_characters` turns it
/// off for clients that send some of them raw (browsers, in queries).
#[cfg(feature = "server")]
pub(crate) fn check_target_strict(target: &str) -> Result<()> {
    let rest = if target.starts_with('/') {
        target
    } else if let Some(i) = target.find("://") {
        let after = &target[i + 3..];
        after.find(['/', '?']).map_or("", |j| &after[j..])
    } else {
        // The asterisk and authority forms: classification checks them.
        return Ok(());
    };
    let bytes = rest.as_bytes();
    let hex = |at: usize| bytes.get(at).is_some_and(u8::is_ascii_hexdigit);
    for (i, &b) in bytes.iter().enumerate() {
        let ok = URI_BYTES[usize::from(b)] || (b == b'%' && hex(i + 1) && hex(i + 2));
        if !ok {
            return Err(bad(
                "a character RFC 3986 does not allow in the request target's path or query",
            ));
        }
    }
    Ok(())
}

/// Classifies `target` (RFC 9112 §3.2; its characters already passed
/// [`check_target`]) and sets `path` and `query` (cleared first, capacity
/// kept) for the origin and absolute forms. The built-in server and
/// TestServer's direct mode share it, so both take and refuse the same
/// targets.
pub(crate) fn classify_target(
    method: &Method,
    target: &str,
    path: &mut String,
    query: &mut String,
) -> Result<TargetForm> {
    path.clear();
    query.clear();
    if method == Method::CONNECT {
        // Authority form only: host:port, nothing else.
        let authority: http::uri::Authority = target
            .parse()
            .map_err(|_| bad("CONNECT needs an authority-form target"))?;
        if authority.port().is_none() || !valid_host(target.as_bytes()) {
            return Err(bad("CONNECT needs host:port"));
        }
        return Ok(TargetForm::Authority);
    }
    if target == "*" {
        if method != Method::OPTIONS {
            return Err(bad("the asterisk form is only for OPTIONS"));
        }
        return Ok(TargetForm::Asterisk);
    }
    if target.starts_with('/') {
        split_path(target, path, query);
        return Ok(TargetForm::Origin);
    }
    let scheme_end = target.find("://").map_or(0, |i| i + 3);
    let scheme = &target[..scheme_end];
    if scheme.eq_ignore_ascii_case("http://") || scheme.eq_ignore_ascii_case("https://") {
        let uri: http::Uri = target
            .parse()
            .map_err(|_| bad("invalid absolute-form target"))?;
        if uri
            .authority()
            .is_none_or(|a| !valid_host(a.as_str().as_bytes()))
        {
            return Err(bad("absolute-form target without a valid authority"));
        }
        let after_authority = &target[scheme_end..];
        let path_and_query = after_authority
            .find(['/', '?'])
            .map_or("", |i| &after_authority[i..]);
        if !path_and_query.starts_with('/') {
            path.push('/');
        }
        split_path(path_and_query, path, query);
        return Ok(TargetForm::Absolute);
    }
    Err(bad("invalid request target"))
}

/// The authority a target names: all of an authority-form target, the
/// part after the scheme of an absolute-form one, else none.
#[cfg(feature = "server")]
pub(crate) fn target_authority(form: TargetForm, target: &str) -> Option<&str> {
    match form {
        TargetForm::Authority => Some(target),
        TargetForm::Absolute => {
            let rest = &target[target.find("://").map_or(0, |i| i + 3)..];
            Some(rest.find(['/', '?']).map_or(rest, |i| &rest[..i]))
        }
        TargetForm::Origin | TargetForm::Asterisk => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_syntax() {
        for ok in [
            "h",
            "example.com",
            "example.com:8080",
            "127.0.0.1:1",
            "[::1]",
            "[::1]:443",
            "a-b.c_d~",
            "example.com.",
            "h:65535",
            "h:0",
            "a%20b",
            "x%4A",
            "[2001:db8::7]",
            "[::ffff:192.0.2.1]:80",
            "[1:2:3:4:5:6:7:8]",
        ] {
            assert!(valid_host(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "a b",
            "u@h",
            "h:",
            "h:80x",
            "h:123456",
            "[::1",
            "[::1]x",
            "[]",
            ":80",
            "h/x",
            "h?x",
            "",
            "h:65536",
            "h:99999",
            ".test",
            "local..host",
            ".",
            "x%",
            "x%4",
            "x%zz",
            "x%g0",
            "[1.2.3.4]",
            "[::1::2]",
            "[1]",
            "[:]",
            "[...]",
            "[12345::]",
            "[::1.2.3]",
            "[1:2:3:4:5:6:7:8:9]",
            "[fe80::1%25eth0]",
            "[v1.x]",
        ] {
            assert!(!valid_host(bad.as_bytes()), "{bad}");
        }
    }
}
