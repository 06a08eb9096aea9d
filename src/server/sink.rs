//! The built-in server's [`ResponseBody`]: encodes into the connection's
//! write buffer.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{BufMut, Bytes};
use http::HeaderMap;

use super::conn::Exchange;
use super::io::{Shared, WriteSide, WRITE_HIGH_WATER};
use crate::error::{Error, Result};
use crate::feature::{ResponseBody, ResponseHead};
use crate::http1::{self, BodyFraming};

/// Body chunks at least this large skip the write buffer.
const DIRECT_WRITE: usize = 16 * 1024;

/// Encodes the head into the (locked) write side.
fn encode_head_into(
    write: &mut WriteSide,
    head: ResponseHead<'_>,
    cx: http1::HeadContext,
) -> http1::EncodedHead {
    if write.buf.capacity() == 0 {
        write.buf = super::io::take_buffer();
    }
    write.response_started = !head.status.is_informational();
    write.buf.reserve(256);
    let encoded = http1::encode_head(&mut write.buf, head.status, head.reason, head.headers, cx);
    write.close_delimited = encoded.framing == BodyFraming::Close;
    encoded
}

/// Whether a chunk of `len` bytes goes into the write buffer (else it is
/// written past it, or after a flush).
fn fits_buffer(write: &WriteSide, len: usize) -> bool {
    len < DIRECT_WRITE && write.buf.len() + len + 32 <= WRITE_HIGH_WATER
}

/// Appends a body chunk in its framing (nothing without a body).
fn put_chunk(write: &mut WriteSide, framing: BodyFraming, data: &[u8]) {
    match framing {
        BodyFraming::None => {}
        BodyFraming::Chunked => {
            write.buf.put_slice(&http1::chunk_size_line(data.len()));
            write.buf.put_slice(data);
            write.buf.put_slice(b"\r\n");
        }
        BodyFraming::Length(_) | BodyFraming::Close => write.buf.put_slice(data),
    }
}

pub(crate) struct Http1Sink {
    pub(crate) shared: Arc<Shared>,
    pub(crate) exchange: Arc<Exchange>,
    pub(crate) framing: BodyFraming,
}

impl Http1Sink {
    fn fail(&self, err: std::io::Error) -> Error {
        self.shared.peer_gone();
        Error::io(err)
    }

    async fn flush_buffer(&self) -> Result<()> {
        self.shared.flush().await.map_err(|e| self.fail(e))
    }

    /// Writes `data` straight to the socket (after what is buffered).
    async fn write_direct(&self, data: Bytes) -> Result<()> {
        self.shared
            .write_direct(data)
            .await
            .map_err(|e| self.fail(e))
    }
}

impl Http1Sink {
    /// What the head's encoding needs from the exchange.
    fn head_context(&self, head: &ResponseHead<'_>) -> http1::HeadContext {
        let mut cx = self.exchange.head_context();
        // RFC 9110 §10.1.1: a final response while the client still waits
        // for `100 Continue` leaves the body unsent, so the connection
        // closes; say so.
        let body_never_asked = !head.status.is_informational()
            && self
                .shared
                .read()
                .body
                .as_ref()
                .is_some_and(|b| b.send_continue);
        cx.closing = cx.closing || body_never_asked;
        cx
    }

    /// Takes the framing and the closing the head's encoding decided.
    fn started(&mut self, framing: BodyFraming, closing: bool) {
        self.framing = framing;
        if closing {
            self.exchange.closing.store(true, Ordering::Relaxed);
        }
    }

    fn encode_start(&mut self, head: ResponseHead<'_>) {
        let cx = self.head_context(&head);
        let encoded = encode_head_into(&mut self.shared.write(), head, cx);
        self.started(encoded.framing, encoded.closing);
    }

    /// Appends a small chunk to the buffer when there is room; gives it back
    /// otherwise.
    fn append(&mut self, data: Bytes) -> Option<Bytes> {
        if self.framing == BodyFraming::None {
            return None;
        }
        let mut write = self.shared.write();
        if !fits_buffer(&write, data.len()) {
            return Some(data);
        }
        put_chunk(&mut write, self.framing, &data);
        None
    }

    fn encode_end(&mut self, trailers: Option<&HeaderMap>) {
        if self.framing == BodyFraming::Chunked {
            let mut write = self.shared.write();
            http1::last_chunk(&mut write.buf, trailers);
        }
    }
}

#[async_trait]
impl ResponseBody for Http1Sink {
    fn start_now(&mut self, head: ResponseHead<'_>) -> Option<Result<()>> {
        self.encode_start(head);
        Some(Ok(()))
    }

    fn write_now(&mut self, data: Bytes) -> Result<Option<Bytes>> {
        Ok(self.append(data))
    }

    /// Head, body and end under one lock of the write side, when the body
    /// fits the buffer (else declined: the body goes by `write`, which may
    /// write it past the buffer or flush first).
    fn respond_now(
        &mut self,
        head: ResponseHead<'_>,
        body: &mut Option<Bytes>,
    ) -> Option<Result<()>> {
        let cx = self.head_context(&head);
        let mut write = self.shared.write();
        if !fits_buffer(&write, body.as_ref().map_or(0, Bytes::len)) {
            return None;
        }
        let encoded = encode_head_into(&mut write, head, cx);
        if let Some(data) = body.take() {
            put_chunk(&mut write, encoded.framing, &data);
        }
        if encoded.framing == BodyFraming::Chunked {
            http1::last_chunk(&mut write.buf, None);
        }
        drop(write);
        self.started(encoded.framing, encoded.closing);
        Some(Ok(()))
    }

    fn complete_now(&mut self, trailers: &mut Option<HeaderMap>) -> Option<Result<()>> {
        self.encode_end(trailers.as_ref());
        Some(Ok(()))
    }

    async fn start(&mut self, head: ResponseHead<'_>) -> Result<()> {
        self.encode_start(head);
        Ok(())
    }

    async fn write(&mut self, data: Bytes) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        match self.framing {
            BodyFraming::None => return Ok(()),
            BodyFraming::Chunked => {
                let direct = data.len() >= DIRECT_WRITE;
                {
                    let mut write = self.shared.write();
                    write.buf.put_slice(&http1::chunk_size_line(data.len()));
                    if !direct {
                        write.buf.put_slice(&data);
                        write.buf.put_slice(b"\r\n");
                    }
                }
                if direct {
                    self.write_direct(data).await?;
                    self.shared.write().buf.put_slice(b"\r\n");
                }
            }
            BodyFraming::Length(_) | BodyFraming::Close => {
                if data.len() >= DIRECT_WRITE {
                    return self.write_direct(data).await;
                }
                self.shared.write().buf.put_slice(&data);
            }
        }
        let full = self.shared.write().buf.len() >= WRITE_HIGH_WATER;
        if full {
            self.flush_buffer().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        self.flush_buffer().await
    }

    async fn complete(&mut self, trailers: Option<HeaderMap>) -> Result<()> {
        self.encode_end(trailers.as_ref());
        Ok(())
    }

    fn abort(&mut self, _reason: &Error) {
        self.exchange.aborted.store(true, Ordering::Relaxed);
    }
}
