//! Response encoding: the head, and chunked framing for the body.

use bytes::{BufMut, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::{HeaderMap, StatusCode};

use super::date;

/// How the response body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    /// No body bytes go out (HEAD, 1xx, 204, 304).
    None,
    /// `Content-Length` bytes.
    Length(u64),
    /// Chunked (HTTP/1.1).
    Chunked,
    /// Until the connection closes (HTTP/1.0 without a length).
    Close,
}

/// What the encoder needs to know about the exchange.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadContext {
    pub(crate) head_request: bool,
    pub(crate) http10: bool,
    /// The connection will close after this response.
    pub(crate) closing: bool,
    /// HTTP/1.0 client that asked for keep-alive.
    pub(crate) keep_alive_10: bool,
    /// The request was a CONNECT.
    pub(crate) connect_request: bool,
}

fn status_bytes(status: StatusCode) -> [u8; 3] {
    let code = status.as_u16();
    [
        b'0' + (code / 100) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
    ]
}

/// Writes the head into `out` and returns the body framing. The server owns
/// framing: an app's `Transfer-Encoding` and `Connection` headers are
/// replaced by the server's; `Connection: close` from the app closes.
pub(crate) fn encode_head(
    out: &mut BytesMut,
    status: StatusCode,
    reason: &str,
    headers: &HeaderMap,
    cx: HeadContext,
) -> (BodyFraming, bool) {
    let no_body = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    // RFC 9110 §9.3.6, RFC 9112 §6.3: a 2xx to CONNECT has no body and
    // no framing headers; the connection is a tunnel right after the head.
    // This server does not tunnel, so it closes instead.
    let tunnel = cx.connect_request && status.is_success();

    out.reserve(256);
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(&status_bytes(status));
    out.put_u8(b' ');
    out.put_slice(reason.as_bytes());
    out.put_slice(b"\r\n");
    // One pass: write the fields and note what framing needs.
    let (mut app_close, mut length, mut has_date) = (false, None, false);
    for (name, value) in headers {
        if name == CONNECTION {
            app_close |= value
                .as_bytes()
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
            continue;
        }
        if name == TRANSFER_ENCODING {
            continue;
        }
        if name == CONTENT_LENGTH {
            if length.is_none() {
                length = value.to_str().ok().and_then(|v| v.parse::<u64>().ok());
            }
            if tunnel {
                continue;
            }
        }
        has_date |= name == DATE;
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
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
        out.put_slice(b"date: ");
        out.put_slice(date::now().as_bytes());
        out.put_slice(b"\r\n");
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
    (framing, closing)
}

/// Writes a chunk header for `len` bytes.
pub(crate) fn chunk_header(out: &mut BytesMut, len: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut n = len;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = HEX[n & 0xF];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[i..]);
    out.put_slice(b"\r\n");
}

/// Writes the last chunk and the trailers.
pub(crate) fn last_chunk(out: &mut BytesMut, trailers: Option<&HeaderMap>) {
    out.put_slice(b"0\r\n");
    if let Some(trailers) = trailers {
        for (name, value) in trailers {
            out.put_slice(name.as_str().as_bytes());
            out.put_slice(b": ");
            out.put_slice(value.as_bytes());
            out.put_slice(b"\r\n");
        }
    }
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> HeadContext {
        HeadContext {
            head_request: false,
            http10: false,
            closing: false,
            keep_alive_10: false,
            connect_request: false,
        }
    }

    #[test]
    fn head_with_length_and_app_framing_headers_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert("content-length", "5".parse().unwrap());
        headers.insert("transfer-encoding", "gzip".parse().unwrap());
        headers.insert("date", "x".parse().unwrap());
        let mut out = BytesMut::new();
        let (framing, closing) = encode_head(&mut out, StatusCode::OK, "OK", &headers, cx());
        assert_eq!(framing, BodyFraming::Length(5));
        assert!(!closing);
        assert_eq!(
            &out[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ndate: x\r\n\r\n"
        );
    }

    #[test]
    fn framing_choices() {
        let empty = HeaderMap::new();
        let mut out = BytesMut::new();
        assert_eq!(
            encode_head(&mut out, StatusCode::OK, "OK", &empty, cx()).0,
            BodyFraming::Chunked
        );
        let http10 = HeadContext {
            http10: true,
            ..cx()
        };
        assert_eq!(
            encode_head(&mut out, StatusCode::OK, "OK", &empty, http10),
            (BodyFraming::Close, true)
        );
        let head = HeadContext {
            head_request: true,
            ..cx()
        };
        assert_eq!(
            encode_head(&mut out, StatusCode::OK, "OK", &empty, head).0,
            BodyFraming::None
        );
        assert_eq!(
            encode_head(&mut out, StatusCode::NO_CONTENT, "No Content", &empty, cx()).0,
            BodyFraming::None
        );
    }

    #[test]
    fn chunks() {
        let mut out = BytesMut::new();
        chunk_header(&mut out, 0x1a2);
        chunk_header(&mut out, 1);
        let mut trailers = HeaderMap::new();
        trailers.insert("x-sum", "9".parse().unwrap());
        last_chunk(&mut out, Some(&trailers));
        assert_eq!(&out[..], b"1a2\r\n1\r\n0\r\nx-sum: 9\r\n\r\n");
    }
}
