//! Request body decoding: `Content-Length` and strict `chunked` (RFC 9112 §7.1),
//! as a state machine over the connection's read buffer.

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};

use crate::error::{Error, Result};

/// What the decoder produced from the buffered bytes.
#[derive(Debug, PartialEq)]
pub(crate) enum Decoded {
    /// Body bytes.
    Data(Bytes),
    /// The trailers of a chunked body (the body ends after them).
    Trailers(HeaderMap),
    /// The body is complete.
    End,
    /// More bytes are needed.
    NeedMore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkDataEnd,
    Trailers,
    Done,
}

/// A body decoder.
#[derive(Debug, Clone)]
pub(crate) struct Decoder {
    state: State,
    max_chunk_line: usize,
    max_trailers: usize,
    /// How far the trailer section was scanned for its blank line, and
    /// whether that point starts a line: a section that arrives a byte at a
    /// time is scanned once, not once per byte.
    trailer_scan: (usize, bool),
}

#[cold]
fn bad(message: &str) -> Error {
    Error::parse(message.to_owned(), StatusCode::BAD_REQUEST)
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Validates `chunk-ext` (RFC 9112 §7.1.1):
/// `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`.
fn check_extensions(mut ext: &[u8]) -> Result<()> {
    let skip_ws = |s: &mut &[u8]| {
        while let [b' ' | b'\t', rest @ ..] = *s {
            *s = rest;
        }
    };
    let token = |s: &mut &[u8]| -> Result<()> {
        let n = s.iter().take_while(|&&b| is_tchar(b)).count();
        if n == 0 {
            return Err(bad("malformed chunk extension"));
        }
        *s = &s[n..];
        Ok(())
    };
    // BWS comes only before `;` or `=` and after them: whitespace that
    // ends the line (`5 \r\n`, `5;a=b \r\n`) is not in the grammar.
    while !ext.is_empty() {
        skip_ws(&mut ext);
        let [b';', rest @ ..] = ext else {
            return Err(bad("malformed chunk extension"));
        };
        ext = rest;
        skip_ws(&mut ext);
        token(&mut ext)?;
        let mut after = ext;
        skip_ws(&mut after);
        if let [b'=', rest @ ..] = after {
            ext = rest;
            skip_ws(&mut ext);
            if let [b'"', rest @ ..] = ext {
                ext = rest;
                loop {
                    match ext {
                        [b'"', rest @ ..] => {
                            ext = rest;
                            break;
                        }
                        [b'\\', c, rest @ ..] if *c == b'\t' || *c >= 0x20 && *c != 0x7f => {
                            ext = rest;
                        }
                        [c, rest @ ..]
                            if *c == b'\t' || (*c >= 0x20 && *c != 0x7f && *c != b'\\') =>
                        {
                            ext = rest;
                        }
                        _ => return Err(bad("malformed chunk extension")),
                    }
                }
            } else {
                token(&mut ext)?;
            }
        }
    }
    Ok(())
}

impl Decoder {
    /// A decoder for `length` bytes.
    pub(crate) fn length(length: u64) -> Self {
        Decoder {
            state: if length == 0 {
                State::Done
            } else {
                State::Length(length)
            },
            max_chunk_line: 0,
            max_trailers: 0,
            trailer_scan: (0, true),
        }
    }

    /// A chunked decoder.
    pub(crate) fn chunked(max_chunk_line: usize, max_trailers: usize) -> Self {
        Decoder {
            state: State::ChunkSize,
            max_chunk_line,
            max_trailers,
            trailer_scan: (0, true),
        }
    }

    /// Body bytes announced and not decoded yet: what is left of the length,
    /// or of the chunk whose size line was read.
    pub(crate) fn announced(&self) -> u64 {
        match self.state {
            State::Length(left) | State::ChunkData(left) => left,
            _ => 0,
        }
    }

    /// Decodes from the front of `buf`, consuming what it uses.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded> {
        loop {
            match self.state {
                State::Done => return Ok(Decoded::End),
                State::Length(remaining) => {
                    return Ok(self.take(buf, remaining, State::Done, State::Length));
                }
                State::ChunkSize => {
                    let Some(size) = self.chunk_size(buf)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::ChunkData(remaining) => {
                    return Ok(self.take(buf, remaining, State::ChunkDataEnd, State::ChunkData));
                }
                State::ChunkDataEnd => {
                    if buf.len() < 2 {
                        if buf.first().is_some_and(|&b| b != b'\r') {
                            return Err(bad("chunk data not followed by CRLF"));
                        }
                        return Ok(Decoded::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(bad("chunk data not followed by CRLF"));
                    }
                    let _ = buf.split_to(2);
                    self.state = State::ChunkSize;
                }
                State::Trailers => return self.trailers(buf),
            }
        }
    }

    /// Takes up to `remaining` body bytes; the state becomes `done` when they
    /// are all taken, else `more(left)`.
    fn take(
        &mut self,
        buf: &mut BytesMut,
        remaining: u64,
        done: State,
        more: fn(u64) -> State,
    ) -> Decoded {
        if buf.is_empty() {
            return Decoded::NeedMore;
        }
        let n = remaining.min(buf.len() as u64);
        let data = buf.split_to(n as usize).freeze();
        let left = remaining - n;
        self.state = if left == 0 { done } else { more(left) };
        Decoded::Data(data)
    }

    /// Parses a chunk-size line; `None` if it is not complete yet.
    fn chunk_size(&self, buf: &mut BytesMut) -> Result<Option<u64>> {
        let line_end = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => i,
            None => {
                if buf.len() > self.max_chunk_line {
                    return Err(bad("chunk-size line too long"));
                }
                if let Some(i) = buf.iter().position(|&b| b == b'\r') {
                    if i + 1 < buf.len() {
                        return Err(bad("bare CR in a chunk-size line"));
                    }
                }
                return Ok(None);
            }
        };
        if line_end > self.max_chunk_line {
            return Err(bad("chunk-size line too long"));
        }
        if line_end == 0 || buf[line_end - 1] != b'\r' {
            return Err(bad("bare LF in a chunk-size line"));
        }
        let line = &buf[..line_end - 1];
        if line.contains(&b'\r') {
            return Err(bad("bare CR in a chunk-size line"));
        }
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 {
            return Err(bad("invalid chunk size"));
        }
        if digits > 16 {
            return Err(bad("chunk size has too many digits"));
        }
        check_extensions(&line[digits..])?;
        let text = std::str::from_utf8(&line[..digits]).map_err(|_| bad("invalid chunk size"))?;
        let size = u64::from_str_radix(text, 16).map_err(|_| bad("chunk size overflows"))?;
        let _ = buf.split_to(line_end + 1);
        Ok(Some(size))
    }

    /// Parses the trailer section after the last chunk.
    fn trailers(&mut self, buf: &mut BytesMut) -> Result<Decoded> {
        if buf.starts_with(b"\r\n") {
            let _ = buf.split_to(2);
            self.state = State::Done;
            return Ok(Decoded::End);
        }
        // Find the blank line, with CRLF line endings only, from where the
        // last look stopped.
        let mut end = None;
        let (mut i, mut line_start) = self.trailer_scan;
        while i < buf.len() {
            match buf[i] {
                b'\r' => match buf.get(i + 1) {
                    None => break,
                    Some(b'\n') if line_start => {
                        end = Some(i + 2);
                        break;
                    }
                    Some(b'\n') => {
                        line_start = true;
                        i += 2;
                    }
                    Some(_) => return Err(bad("bare CR in the trailers")),
                },
                b'\n' => return Err(bad("bare LF in the trailers")),
                _ => {
                    line_start = false;
                    i += 1;
                }
            }
        }
        self.trailer_scan = (i, line_start);
        let Some(end) = end else {
            if buf.len() > self.max_trailers {
                return Err(Error::limit(
                    "request trailers too large",
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                ));
            }
            return Ok(Decoded::NeedMore);
        };
        if end > self.max_trailers {
            return Err(Error::limit(
                "request trailers too large",
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ));
        }
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let parsed = httparse::parse_headers(&buf[..end], &mut slots)
            .map_err(|e| bad(&format!("malformed trailers: {e}")))?;
        let httparse::Status::Complete((_, fields)) = parsed else {
            return Err(bad("malformed trailers"));
        };
        let mut trailers = HeaderMap::with_capacity(fields.len());
        for field in fields {
            if !field
                .value
                .iter()
                .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80)
            {
                return Err(bad("control character in a trailer"));
            }
            let name = HeaderName::from_bytes(field.name.as_bytes())
                .map_err(|_| bad("invalid trailer name"))?;
            let value =
                HeaderValue::from_bytes(field.value).map_err(|_| bad("invalid trailer value"))?;
            trailers.append(name, value);
        }
        let _ = buf.split_to(end);
        self.state = State::Done;
        Ok(Decoded::Trailers(trailers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(
        decoder: &mut Decoder,
        input: &[u8],
    ) -> Result<(Vec<u8>, Option<HeaderMap>, bool)> {
        let mut buf = BytesMut::from(input);
        let mut body = Vec::new();
        let mut trailers = None;
        loop {
            match decoder.decode(&mut buf)? {
                Decoded::Data(d) => body.extend_from_slice(&d),
                Decoded::Trailers(t) => trailers = Some(t),
                Decoded::End => return Ok((body, trailers, true)),
                Decoded::NeedMore => return Ok((body, trailers, false)),
            }
        }
    }

    fn chunked() -> Decoder {
        Decoder::chunked(4096, 32 * 1024)
    }

    #[test]
    fn trailers_arriving_a_byte_at_a_time_are_scanned_once() {
        let trailers = b"X-One: 1\r\nX-Two: 2\r\n\r\n";
        let mut d = chunked();
        let mut buf = BytesMut::from(&b"0\r\n"[..]);
        assert_eq!(d.decode(&mut buf).unwrap(), Decoded::NeedMore);
        for (n, &byte) in trailers.iter().enumerate() {
            buf.extend_from_slice(&[byte]);
            let decoded = d.decode(&mut buf).unwrap();
            if n + 1 < trailers.len() {
                assert_eq!(decoded, Decoded::NeedMore, "after {n} bytes");
                // The next look starts where this one stopped (a CR waits
                // for its LF), not at the front.
                assert!(d.trailer_scan.0 + 1 >= buf.len(), "after {n} bytes");
            } else {
                let Decoded::Trailers(map) = decoded else {
                    panic!("{decoded:?}");
                };
                assert_eq!(
                    (map["x-one"].as_bytes(), map["x-two"].as_bytes()),
                    (&b"1"[..], &b"2"[..])
                );
            }
        }
    }

    #[test]
    fn length_body_stops_at_its_length() {
        let mut d = Decoder::length(5);
        let mut buf = BytesMut::from(&b"helloGET /"[..]);
        assert_eq!(
            d.decode(&mut buf).unwrap(),
            Decoded::Data(Bytes::from_static(b"hello"))
        );
        assert_eq!(d.decode(&mut buf).unwrap(), Decoded::End);
        assert_eq!(&buf[..], b"GET /");
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let input = b"4;a = b;c=\"d\\\"e\"\r\nWiki\r\n5 ; x\r\npedia\r\n0\r\nX-Sum: 9\r\n\r\n";
        let (body, trailers, done) = decode_all(&mut chunked(), input).unwrap();
        assert!(done);
        assert_eq!(body, b"Wikipedia");
        assert_eq!(trailers.unwrap()["x-sum"], "9");
    }

    #[test]
    fn chunked_body_split_anywhere_decodes_the_same() {
        let input = b"a\r\n0123456789\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n";
        for split in 0..input.len() {
            let mut d = chunked();
            let mut buf = BytesMut::from(&input[..split]);
            let mut body = Vec::new();
            let mut end = false;
            loop {
                match d.decode(&mut buf).unwrap() {
                    Decoded::Data(x) => body.extend_from_slice(&x),
                    Decoded::Trailers(_) | Decoded::End => {
                        end = true;
                        break;
                    }
                    Decoded::NeedMore => break,
                }
            }
            if !end {
                buf.extend_from_slice(&input[split..]);
                let (rest, _, done) = {
                    let mut tail = Vec::new();
                    loop {
                        match d.decode(&mut buf).unwrap() {
                            Decoded::Data(x) => tail.extend_from_slice(&x),
                            Decoded::Trailers(_) | Decoded::End => break (tail, (), true),
                            Decoded::NeedMore => break (tail, (), false),
                        }
                    }
                };
                assert!(done, "split at {split}");
                body.extend_from_slice(&rest);
            }
            assert_eq!(body, b"0123456789abc", "split at {split}");
        }
    }

    #[test]
    fn invalid_chunked_framing_is_rejected() {
        let cases: &[&[u8]] = &[
            b"g\r\n",                  // not hex
            b"-1\r\n",                 // sign
            b"0x5\r\n",                // 0x prefix
            b"11111111111111111\r\n",  // 17 digits
            b"5\nhello\r\n",           // bare LF after the size
            b"5\r\nhelloXX",           // data not followed by CRLF
            b"5\r\nhello\n0\r\n\r\n",  // bare LF after the data
            b"5;\r\nhello\r\n",        // empty extension name
            b"5;a=\r\nhello\r\n",      // empty extension value
            b"5;a=\"x\r\nhello\r\n",   // unterminated quoted string
            b"5;a b\r\nhello\r\n",     // junk after the name
            b"5 \r\nhello\r\n",        // whitespace ending the size line
            b"5;a=b\t\r\nhello\r\n",   // whitespace ending an extension
            b"5;a \r\nhello\r\n",      // whitespace ending an extension name
            b"5\rx\r\nhello\r\n",      // bare CR in the size line
            b"0\r\nX: 1\n\r\n",        // bare LF in the trailers
            b"0\r\nX : 1\r\n\r\n",     // space before the colon
            b"0\r\nX: a\x01b\r\n\r\n", // control character in a trailer
        ];
        for case in cases {
            let err = decode_all(&mut chunked(), case).unwrap_err();
            assert!(err.is_parse(), "{:?}: {err}", String::from_utf8_lossy(case));
            assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
        }
    }

    #[test]
    fn sixteen_hex_digits_are_the_most_accepted() {
        let (_, _, done) = decode_all(&mut chunked(), b"0000000000000000\r\n\r\n").unwrap();
        assert!(done);
        let err = decode_all(&mut chunked(), b"FFFFFFFFFFFFFFFF0\r\n").unwrap_err();
        assert!(err.is_parse());
    }
}
