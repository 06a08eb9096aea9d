//! Response writing: buffering, head, body rules (see [`HttpContext`]).

use std::path::Path;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

use super::HttpContext;
use crate::body::{boxed, BoxBody};
use crate::error::{BoxError, Error, Result};
use crate::feature::{
    FilePieces, FileRange, ResponseBody, ResponseFeature, ResponseHead, ResponseTrailers, Upgrade,
    Upgraded,
};

/// Whether a response with this status may carry a body (RFC 9110 §6.4.1).
pub(crate) fn body_allowed(status: StatusCode) -> bool {
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

/// What the framing rules need from the response fields.
#[derive(Default)]
struct LengthFields<'a> {
    first_length: Option<&'a HeaderValue>,
    lengths: usize,
    transfer_encoding: bool,
}

/// One pass over a small map's fields instead of a hashed lookup per name:
/// a response carries a handful of fields, and standard names compare as
/// small integers. A large map is cheaper to look up.
fn length_fields(headers: &HeaderMap) -> LengthFields<'_> {
    let mut fields = LengthFields::default();
    if headers.len() > 16 {
        let mut values = headers.get_all(CONTENT_LENGTH).iter();
        fields.first_length = values.next();
        fields.lengths = usize::from(fields.first_length.is_some()) + values.count();
        fields.transfer_encoding = headers.contains_key(TRANSFER_ENCODING);
        return fields;
    }
    for (name, value) in headers {
        if name == CONTENT_LENGTH {
            fields.lengths += 1;
            fields.first_length.get_or_insert(value);
        } else if name == TRANSFER_ENCODING {
            fields.transfer_encoding = true;
        }
    }
    fields
}

pub(crate) fn parse_length(headers: &HeaderMap) -> Result<Option<u64>> {
    length_from(&length_fields(headers))
}

fn length_from(fields: &LengthFields<'_>) -> Result<Option<u64>> {
    let Some(first) = fields.first_length else {
        return Ok(None);
    };
    let invalid = || {
        Error::contract(
            "response.content-length-invalid",
            "the response Content-Length is not one decimal number",
        )
    };
    if fields.lengths > 1 {
        return Err(invalid());
    }
    let text = first.to_str().map_err(|_| invalid())?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    text.parse::<u64>().map(Some).map_err(|_| invalid())
}

/// The decimal text of every length under [`STATIC_LENGTHS`], four bytes a
/// number, left-aligned; checked as UTF-8 once, at compile time.
static LENGTH_TEXT: &str = match std::str::from_utf8(&length_text()) {
    Ok(text) => text,
    Err(_) => panic!("decimal digits are ASCII"),
};

/// Lengths whose `Content-Length` value is static text (no allocation, no
/// reference count to move): most small responses.
const STATIC_LENGTHS: usize = 10_000;

const fn length_text() -> [u8; 4 * STATIC_LENGTHS] {
    let mut text = [b' '; 4 * STATIC_LENGTHS];
    let mut n = 0;
    while n < STATIC_LENGTHS {
        let digits = length_digits(n);
        let mut rest = n;
        let mut i = digits;
        while i > 0 {
            i -= 1;
            text[4 * n + i] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        n += 1;
    }
    text
}

const fn length_digits(n: usize) -> usize {
    match n {
        0..=9 => 1,
        10..=99 => 2,
        100..=999 => 3,
        _ => 4,
    }
}

/// The `Content-Length` value for `n`. `HeaderValue::from(u64)` allocates:
/// a small length is static text, and a larger one tends to repeat (the same
/// page, the same API answer), so the last one per thread is kept and cloned
/// (a reference count, no copy).
fn length_value(n: u64) -> HeaderValue {
    if n < STATIC_LENGTHS as u64 {
        let start = 4 * n as usize;
        if let Some(text) = LENGTH_TEXT.get(start..start + length_digits(n as usize)) {
            return HeaderValue::from_static(text);
        }
    }
    thread_local! {
        static LAST: std::cell::RefCell<Option<(u64, HeaderValue)>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((cached, value)) if *cached == n => value.clone(),
            _ => {
                let value = HeaderValue::from(n);
                *last = Some((n, value.clone()));
                value
            }
        }
    })
}

/// Writes through the sink's fast path when it takes the chunk at once.
async fn write_to(sink: &mut (dyn ResponseBody + 'static), data: Bytes) -> Result<()> {
    match sink.write_now(data)? {
        None => Ok(()),
        Some(data) => sink.write(data).await,
    }
}

#[cold]
fn mismatch(declared: u64, actual: u64) -> Error {
    Error::contract(
        "response.content-length-mismatch",
        format!("Content-Length is {declared} but the body has {actual} bytes"),
    )
}

#[cold]
fn no_sink() -> Error {
    Error::contract(
        "server.required-features",
        "the server did not provide a ResponseBody",
    )
}

impl HttpContext {
    fn is_head(&self) -> bool {
        self.request_facts().0
    }

    /// What the head depends on in the request, in one look: whether it
    /// is a HEAD, and its version.
    fn request_facts(&self) -> (bool, http::Version) {
        self.try_request()
            .map_or((false, http::Version::HTTP_11), |r| {
                (r.method == Method::HEAD, r.version)
            })
    }

    fn sink(&mut self) -> Result<&mut (dyn ResponseBody + 'static)> {
        self.features
            .get_dyn_mut::<dyn ResponseBody>()
            .ok_or_else(no_sink)
    }

    /// Whether the declared length binds the body (not for HEAD, where the
    /// length describes the GET body, nor for statuses without a body).
    fn length_binds(&self) -> bool {
        !self.is_head() && body_allowed(self.body_status())
    }

    /// The status the body's rules follow: the one the head went out with
    /// (a change after cannot reach the wire, and must not let a short body
    /// pass as whole), else the current one.
    fn body_status(&self) -> StatusCode {
        self.out
            .sent_status
            .unwrap_or_else(|| self.response().status)
    }

    /// Sends the head now: runs the `on_starting` callbacks (last-registered
    /// first) and hands the head to the server. Does nothing once started.
    pub async fn start(&mut self) -> Result<()> {
        self.start_with_length(None, false).await.map(drop)
    }

    /// [`start`](Self::start) with the `Content-Length` the caller just
    /// checked (`Some(declared)`), so the head does not parse it again; the
    /// header is re-read if an `on_starting` callback ran (it may change it).
    /// With `whole` (the response is complete and all of it is buffered),
    /// the sink may take the whole response at once: then `Ok(true)`.
    async fn start_with_length(
        &mut self,
        mut known: Option<Option<u64>>,
        whole: bool,
    ) -> Result<bool> {
        if self.response().has_started() {
            return Ok(false);
        }
        if self.run_on_starting()? {
            known = None;
        }
        let facts = self.request_facts();
        self.send_head(known, whole, facts).await
    }

    /// Runs the `on_starting` callbacks (they may register more: until none
    /// are left); returns whether any ran. One that fails refuses the head
    /// for good: this and every later attempt to start fail, and only the
    /// lifecycle's bare error response goes out (Kestrel's rule).
    fn run_on_starting(&mut self) -> Result<bool> {
        if self.out.refused {
            return Err(Error::app_msg(
                "an on_starting callback failed: the response head cannot be sent",
            ));
        }
        // Most responses have none: no list to take and drop.
        if !self.response().has_on_starting() {
            return Ok(false);
        }
        let mut ran = false;
        loop {
            let callbacks = self.response_mut().take_on_starting();
            if callbacks.is_empty() {
                return Ok(ran);
            }
            ran = true;
            if let Err(err) = self.run_callbacks(callbacks) {
                self.out.refused = true;
                return Err(err);
            }
            // A callback that aborted the request: nothing goes out after
            // the sink was told to drop the response.
            if self.out.aborted {
                return Err(Error::aborted(
                    "an on_starting callback aborted the request",
                ));
            }
        }
    }

    /// Hands the head to the sink without running callbacks. `known` is the
    /// response's `Content-Length` when the caller already has it. With
    /// `whole`, a response that needs nothing after the head but its one
    /// buffered chunk (no trailers, the declared length met) goes to the
    /// sink's [`respond_now`](ResponseBody::respond_now): `Ok(true)` when
    /// the sink took it all. `whole` also promises there are no trailers
    /// (the caller looked); `facts` are [`Self::request_facts`].
    async fn send_head(
        &mut self,
        known: Option<Option<u64>>,
        whole: bool,
        (is_head, version): (bool, http::Version),
    ) -> Result<bool> {
        let declared = match known {
            Some(declared) => declared,
            None => parse_length(&self.response().headers)?,
        };
        let status = self.response().status;
        // A 1xx is interim (RFC 9110 §15.2): as the head of the response
        // the client would wait for the real one, and read the next
        // response as this one's. `101` goes out through `upgrade` only.
        if status.is_informational()
            && !(self.out.upgrading && status == StatusCode::SWITCHING_PROTOCOLS)
        {
            return Err(Error::contract(
                "response.informational-status",
                format!("{status} cannot be a response's final status"),
            ));
        }
        if !body_allowed(status) && self.out.buffered > 0 {
            return Err(Error::contract(
                "response.body-not-allowed",
                format!("a {status} response cannot have a body"),
            ));
        }
        if let Some(declared) = declared {
            if !is_head && body_allowed(status) && self.out.written > declared {
                return Err(mismatch(declared, self.out.written));
            }
        }
        self.out.declared = declared;
        let whole = whole
            && self.out.buffer.is_empty()
            && declared.is_none_or(|d| d == self.out.written || is_head || !body_allowed(status));
        let (sink, response) = self.features.sink_and_response();
        let (sink, response) = match (sink, response) {
            (Some(sink), Some(response)) => (sink, response),
            (None, _) => return Err(no_sink()),
            (_, None) => {
                return Err(Error::contract(
                    "server.required-features",
                    "no local ResponseFeature",
                ))
            }
        };
        let head = ResponseHead {
            status: response.status,
            reason: response.reason_phrase(),
            headers: &response.headers,
            version,
        };
        if whole {
            if let Some(done) = sink.respond_now(head, &mut self.out.first) {
                done?;
                response.mark_started();
                self.out.first = None;
                self.out.buffered = 0;
                self.out.sent_status = Some(status);
                return Ok(true);
            }
        }
        match sink.start_now(head) {
            Some(started) => started?,
            None => sink.start(head).await?,
        }
        self.out.sent_status = Some(status);
        self.response_mut().mark_started();
        Ok(false)
    }

    async fn drain_buffer(&mut self) -> Result<()> {
        let Some(first) = self.out.first.take() else {
            return Ok(());
        };
        let rest = std::mem::take(&mut self.out.buffer);
        self.out.buffered = 0;
        let sink = self.sink()?;
        write_to(sink, first).await?;
        for chunk in rest {
            write_to(sink, chunk).await?;
        }
        Ok(())
    }

    /// Hands the trailers and the end of the body to the sink.
    async fn complete_sink(&mut self, trailers: Option<HeaderMap>) -> Result<()> {
        let sink = self.sink()?;
        let mut trailers = trailers;
        match sink.complete_now(&mut trailers) {
            Some(done) => done,
            None => sink.complete(trailers).await,
        }
    }

    /// Writes body bytes. Small responses are buffered (see the type docs);
    /// for `HEAD` the bytes are counted and dropped.
    pub async fn write(&mut self, data: impl Into<Bytes>) -> Result<()> {
        let data = data.into();
        if self.out.completed {
            return Err(Error::contract(
                "response.write-after-complete",
                "a body write after the response was completed",
            ));
        }
        if data.is_empty() {
            return Ok(());
        }
        // One look at the request and one at the response: this runs for
        // every write.
        let is_head = self.is_head();
        let (status, started, declared) = {
            let response = self.response();
            let started = response.has_started();
            let declared = if started {
                Ok(self.out.declared)
            } else {
                parse_length(&response.headers)
            };
            let status = self.out.sent_status.unwrap_or(response.status);
            (status, started, declared)
        };
        if !body_allowed(status) {
            return Err(Error::contract(
                "response.body-not-allowed",
                format!("a {status} response cannot have a body"),
            ));
        }
        let total = self.out.written + data.len() as u64;
        // The length binds unless this is a HEAD (the body is allowed here).
        if let Some(declared) = declared? {
            if total > declared && !is_head {
                return Err(mismatch(declared, total));
            }
        }
        self.out.written = total;
        if is_head {
            return Ok(());
        }
        if !started {
            if self.out.buffered + data.len() <= self.out.buffer_limit {
                self.out.buffered += data.len();
                if self.out.first.is_none() {
                    self.out.first = Some(data);
                } else {
                    self.out.buffer.push(data);
                }
                return Ok(());
            }
            // The callbacks run before the head, and may make this a
            // response without a body (a 204): checked again after them.
            // A chunk refused here was never written: it does not count
            // towards the length (an app that carries on completes with
            // what it did write).
            let started = match self.run_on_starting() {
                Ok(_) => {
                    let status = self.response().status;
                    if body_allowed(status) {
                        self.start().await
                    } else {
                        Err(Error::contract(
                            "response.body-not-allowed",
                            format!("a {status} response cannot have a body"),
                        ))
                    }
                }
                Err(err) => Err(err),
            };
            if let Err(err) = started {
                if !self.response().has_started() {
                    self.out.written -= data.len() as u64;
                }
                return Err(err);
            }
        }
        self.drain_buffer().await?;
        write_to(self.sink()?, data).await
    }

    /// Sends the head (if not yet sent) and everything written so far.
    pub async fn flush(&mut self) -> Result<()> {
        if self.out.completed {
            return Ok(());
        }
        self.start().await?;
        self.drain_buffer().await?;
        self.sink()?.flush().await
    }

    /// Completes the response: sends the head if needed (with
    /// `Content-Length` when everything was buffered), the buffered body, and
    /// the trailers from [`ResponseTrailers`]. Fails if the body does not
    /// match a declared `Content-Length`. Idempotent.
    pub async fn complete(&mut self) -> Result<()> {
        if self.out.completed {
            return Ok(());
        }
        let mut facts = self.request_facts();
        let is_head = facts.0;
        // Local: a response in the defaults layer (shared by requests)
        // cannot be this request's to write.
        let local = self.features.get_mut::<ResponseFeature>();
        let Some(started) = local.map(|r| r.has_started()) else {
            // A broken server: fail (the lifecycle aborts), do not panic.
            return Err(Error::contract(
                "server.required-features",
                "the server did not provide a local ResponseFeature",
            ));
        };
        if !started {
            // The `on_starting` callbacks first: they may change the status
            // or the fields the length depends on (a length of ours left on
            // a response they made 204 would be a field it must not have).
            if self.run_on_starting()? {
                // A callback may have changed the request too: the head
                // answers the request as it is now.
                facts = self.request_facts();
            }
            let written = self.out.written;
            // Trailers need a framing that can carry them (chunked on
            // HTTP/1.1), so a response with trailers gets no length.
            let has_trailers = self.has_trailers();
            let (set_length, parsed, binds) = {
                let response = self.response();
                let fields = length_fields(&response.headers);
                let allowed = body_allowed(response.status);
                let set = allowed
                    && !has_trailers
                    && fields.lengths == 0
                    && !fields.transfer_encoding
                    && (!is_head || written > 0);
                let parsed = if set { None } else { length_from(&fields)? };
                (set, parsed, allowed && !is_head)
            };
            // Our own length needs no parsing back (`send_head` is told it).
            let declared = if set_length {
                // No length is there (checked above): appending skips the
                // search for one that `insert` makes.
                self.response_mut()
                    .headers
                    .append(CONTENT_LENGTH, length_value(written));
                Some(written)
            } else {
                parsed
            };
            // The whole body is buffered: a mismatch is known before the
            // head goes out, so fail now and let the lifecycle answer 500
            // rather than send a head that promises what never comes.
            if let Some(declared) = declared {
                if binds && written != declared {
                    return Err(mismatch(declared, written));
                }
            }
            // The callbacks ran above and none can be left: the head goes
            // now.
            if self.send_head(Some(declared), !has_trailers, facts).await? {
                self.out.completed = true;
                return Ok(());
            }
        }
        self.drain_buffer().await?;
        if let Some(declared) = self.out.declared {
            // `on_starting` callbacks may have changed the status; a change
            // after the head went out did not reach the wire.
            let binds = !is_head && body_allowed(self.body_status());
            if binds && self.out.written != declared {
                return Err(mismatch(declared, self.out.written));
            }
        }
        let trailers = self.take_trailers();
        self.out.completed = true;
        self.complete_sink(trailers).await
    }

    /// Hands a pull body to the server as the rest of the response and
    /// completes it. Without a flush before, a body of known length goes out
    /// with `Content-Length`; a declared length is enforced as the body is
    /// pulled (a mismatch fails the body, so the client sees it incomplete).
    pub async fn send_body<B>(&mut self, body: B) -> Result<()>
    where
        B: Body + Send + 'static,
        B::Data: Buf,
        B::Error: Into<BoxError>,
    {
        let body = boxed(body);
        if self.out.completed {
            return Err(Error::contract(
                "response.write-after-complete",
                "send_body after the response was completed",
            ));
        }
        // The callbacks first, as `complete` runs them: the status and the
        // fields they leave decide the length and whether a body may go.
        if !self.response().has_started() {
            self.run_on_starting()?;
        }
        let status = self.body_status();
        let hint = body.size_hint();
        let not_allowed = || {
            Error::contract(
                "response.body-not-allowed",
                format!("a {status} response cannot have a body"),
            )
        };
        if !body_allowed(status) && hint.lower() > 0 {
            return Err(not_allowed());
        }
        // A body of unknown length for a status without one is pulled now,
        // before the head: it must be empty, not dropped unread.
        let body = if !body_allowed(status) && !self.is_head() && !body.is_end_stream() {
            let mut body = body;
            while let Some(frame) = body.frame().await {
                if frame?.data_ref().is_some_and(|data| !data.is_empty()) {
                    return Err(not_allowed());
                }
            }
            crate::body::boxed(http_body_util::Empty::<Bytes>::new())
        } else {
            body
        };
        // The app's trailers follow the body's frames (merged into the
        // body's own trailers, if it has some); like `complete`, a response
        // with trailers gets no length of ours (trailers need a framing that
        // can carry them: chunked on HTTP/1.1).
        let trailers = self.take_trailers();
        if !self.response().has_started() {
            let written = self.out.written;
            let headers = &self.response().headers;
            if body_allowed(status)
                && trailers.is_none()
                && !headers.contains_key(CONTENT_LENGTH)
                && !headers.contains_key(TRANSFER_ENCODING)
            {
                if let Some(exact) = hint.exact() {
                    self.response_mut()
                        .headers
                        .insert(CONTENT_LENGTH, length_value(written + exact));
                }
            }
            self.start().await?;
        }
        let sent = self.send_body_rest(body, trailers, status).await;
        if let Err(err) = &sent {
            self.break_response(err);
        }
        sent
    }

    /// What `send_body` does once the head is out; a failure breaks the
    /// response (the caller's part).
    async fn send_body_rest(
        &mut self,
        body: BoxBody,
        trailers: Option<HeaderMap>,
        status: StatusCode,
    ) -> Result<()> {
        self.drain_buffer().await?;
        self.out.completed = true;
        if self.is_head() || !body_allowed(status) {
            return self.sink()?.complete(None).await;
        }
        let body = match trailers {
            Some(trailers) => AppendTrailers {
                inner: body,
                trailers: Some(trailers),
            }
            .boxed_unsync(),
            None => body,
        };
        let body = match self.out.declared {
            Some(declared) => {
                let remaining = declared
                    .checked_sub(self.out.written)
                    .ok_or_else(|| mismatch(declared, self.out.written))?;
                LengthChecked {
                    inner: body,
                    declared,
                    remaining,
                }
                .boxed_unsync()
            }
            None => body,
        };
        self.sink()?.send_body(body).await
    }

    /// Sends a file, or a byte range of it, as the rest of the response and
    /// completes it; sets `Content-Length` to the range length when the head
    /// is not yet sent.
    pub async fn send_file(&mut self, path: impl AsRef<Path>, range: FileRange) -> Result<()> {
        let path = path.as_ref();
        if self.out.completed {
            return Err(Error::contract(
                "response.write-after-complete",
                "send_file after the response was completed",
            ));
        }
        let meta = tokio::fs::metadata(path).await?;
        if !meta.is_file() {
            return Err(Error::app_msg(format!("{} is not a file", path.display())));
        }
        let file_len = meta.len();
        if !self.response().has_started() {
            self.run_on_starting()?;
        }
        let (start, end) = match &range {
            Some(range) => (range.start, range.end),
            None => (0, file_len),
        };
        if start > end || end > file_len {
            return Err(Error::app_msg(format!(
                "range {start}..{end} is outside the file's {file_len} bytes"
            )));
        }
        let length = end - start;
        let status = self.body_status();
        if !body_allowed(status) && length > 0 {
            return Err(Error::contract(
                "response.body-not-allowed",
                format!("a {status} response cannot have a body"),
            ));
        }
        if self.has_trailers() && body_allowed(status) && length > 0 {
            // A sink's `send_file` ends the response without trailers: the
            // file goes through `write` and `complete`, which send them.
            return self.write_file(path, start..end).await;
        }
        if !self.response().has_started() {
            let total = self.out.written + length;
            let headers = &self.response().headers;
            if body_allowed(status)
                && !headers.contains_key(CONTENT_LENGTH)
                && !headers.contains_key(TRANSFER_ENCODING)
            {
                self.response_mut()
                    .headers
                    .insert(CONTENT_LENGTH, length_value(total));
            }
            // Known before the head goes out: fail now (a 500), not after.
            if let Some(declared) = parse_length(&self.response().headers)? {
                if self.length_binds() && total != declared {
                    return Err(mismatch(declared, total));
                }
            }
            self.start().await?;
        }
        let sent = self.send_file_rest(path, start..end).await;
        if let Err(err) = &sent {
            self.break_response(err);
        }
        sent
    }

    /// What `send_file` does once the head is out; a failure breaks the
    /// response (the caller's part).
    async fn send_file_rest(&mut self, path: &Path, range: std::ops::Range<u64>) -> Result<()> {
        self.drain_buffer().await?;
        let length = range.end - range.start;
        let total = self.out.written + length;
        if let Some(declared) = self.out.declared {
            if self.length_binds() && total != declared {
                return Err(mismatch(declared, total));
            }
        }
        self.out.written = total;
        self.out.completed = true;
        if self.is_head() || length == 0 {
            return self.sink()?.complete(None).await;
        }
        self.sink()?.send_file(path, Some(range)).await
    }

    /// Whether the app set response trailers.
    fn has_trailers(&self) -> bool {
        self.features
            .get::<ResponseTrailers>()
            .is_some_and(|t| !t.headers.is_empty())
    }

    /// The app's response trailers, taken (`None` when it set none).
    fn take_trailers(&mut self) -> Option<HeaderMap> {
        self.features
            .get_mut::<ResponseTrailers>()
            .map(|t| std::mem::take(&mut t.headers))
            .filter(|t| !t.is_empty())
    }

    /// Writes the `range` of the file, then completes.
    async fn write_file(&mut self, path: &Path, range: std::ops::Range<u64>) -> Result<()> {
        let mut pieces = FilePieces::open(path, Some(range)).await?;
        while let Some(piece) = pieces.next().await? {
            self.write(piece).await?;
        }
        self.complete().await
    }

    /// Upgrades the connection: checks the [`Upgrade`] feature, sends
    /// `101 Switching Protocols` (with the headers set so far, after the
    /// `on_starting` callbacks) and returns the raw connection.
    pub async fn upgrade(&mut self) -> Result<Upgraded> {
        let upgrade = self
            .features
            .get_dyn_mut::<dyn Upgrade>()
            .ok_or_else(|| Error::unsupported("this server offers no Upgrade feature"))?;
        if !upgrade.is_upgradable() {
            return Err(Error::contract(
                "upgrade.not-upgradable",
                "this request cannot be upgraded",
            ));
        }
        if self.response().has_started() {
            return Err(Error::contract(
                "upgrade.after-start",
                "upgrade after the response started",
            ));
        }
        // The callbacks before the claim: one that changes the status would
        // send a head that is not `101` and then hand the connection over.
        self.response_mut().status = StatusCode::SWITCHING_PROTOCOLS;
        self.run_on_starting()?;
        if self.response().status != StatusCode::SWITCHING_PROTOCOLS {
            return Err(Error::contract(
                "upgrade.status-changed",
                "an on_starting callback changed the 101 of an upgrade",
            ));
        }
        // Claim the connection only after the checks: a refused upgrade
        // leaves it to the server.
        let on_upgrade = self
            .features
            .get_dyn_mut::<dyn Upgrade>()
            .ok_or_else(|| Error::unsupported("this server offers no Upgrade feature"))?
            .on_upgrade()?;
        self.out.upgrading = true;
        self.start().await?;
        self.out.completed = true;
        let sink = self.sink()?;
        sink.flush().await?;
        sink.complete(None).await?;
        on_upgrade.await
    }

    /// Replaces an unstarted response with a bare error response:
    /// `status`, no headers but `Content-Length: 0`, no body, no callbacks.
    pub(crate) async fn send_error_response(&mut self, status: StatusCode) -> Result<()> {
        let response = self.response_mut();
        response.status = status;
        response.reason = None;
        response.headers.clear();
        response
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        self.out.first = None;
        self.out.buffer.clear();
        self.out.buffered = 0;
        self.out.written = 0;
        let facts = self.request_facts();
        self.send_head(Some(Some(0)), false, facts).await?;
        self.out.completed = true;
        self.sink()?.complete(None).await
    }
}

pin_project_lite::pin_project! {
    /// A pulled body, then the app's trailers: merged into the body's own
    /// trailers frame, or a frame of their own after its last one.
    struct AppendTrailers {
        #[pin]
        inner: BoxBody,
        trailers: Option<HeaderMap>,
    }
}

impl Body for AppendTrailers {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.project();
        match ready!(this.inner.poll_frame(cx)) {
            Some(Ok(frame)) => match frame.into_trailers() {
                Ok(mut own) => {
                    if let Some(app) = this.trailers.take() {
                        for (name, value) in &app {
                            own.append(name, value.clone());
                        }
                    }
                    Poll::Ready(Some(Ok(Frame::trailers(own))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            Some(Err(err)) => Poll::Ready(Some(Err(err))),
            None => Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.trailers.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// Fails a pulled body that does not match its declared length.
    struct LengthChecked {
        #[pin]
        inner: BoxBody,
        declared: u64,
        remaining: u64,
    }
}

impl Body for LengthChecked {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.project();
        match ready!(this.inner.poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > *this.remaining {
                        let actual = *this.declared - *this.remaining + len;
                        return Poll::Ready(Some(Err(mismatch(*this.declared, actual))));
                    }
                    *this.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(err)) => Poll::Ready(Some(Err(err))),
            None if *this.remaining > 0 => {
                let actual = *this.declared - *this.remaining;
                Poll::Ready(Some(Err(mismatch(*this.declared, actual))))
            }
            None => Poll::Ready(None),
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::length_value;

    #[test]
    fn length_values_are_the_decimal_length_static_or_not() {
        for n in (0..12_000).chain([65_536, u64::MAX]) {
            assert_eq!(length_value(n), n.to_string(), "{n}");
            // Twice: the per-thread cache answers the second time.
            assert_eq!(length_value(n), n.to_string(), "{n}");
        }
    }
}
