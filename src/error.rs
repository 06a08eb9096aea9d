//! The one error type of the crate.
//!
//! [`Error`] is opaque: callers ask it questions ([`Error::is_parse`],
//! [`Error::is_timeout`], …) instead of matching on variants, so new kinds can be
//! added without breaking anyone. `Display` prints this level only; the cause is
//! reachable through [`std::error::Error::source`].

use std::fmt;

use http::StatusCode;

/// A boxed error from any source, the currency of `tower` and `http-body`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from a server, an application, or the contract between them.
///
/// # Example
///
/// ```
/// use serverbridge::Error;
///
/// let err = Error::limit("request body larger than 1024 bytes", http::StatusCode::PAYLOAD_TOO_LARGE);
/// assert!(err.is_limit());
/// assert_eq!(err.status(), Some(http::StatusCode::PAYLOAD_TOO_LARGE));
/// assert_eq!(err.to_string(), "limit exceeded: request body larger than 1024 bytes");
/// ```
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    message: Option<Box<str>>,
    status: Option<StatusCode>,
    rule: Option<&'static str>,
    cause: Option<BoxError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Malformed input from the peer (a request head, a chunk size, …).
    Parse,
    /// A timeout or a minimum data rate expired.
    Timeout,
    /// The peer went away or the connection is closed.
    Closed,
    /// The request was aborted on purpose (by the application or the server).
    Aborted,
    /// A configured limit was exceeded.
    Limit,
    /// An I/O error from the transport.
    Io,
    /// The application failed (returned an error or panicked).
    Application,
    /// A party broke the contract (a write after completion, a body for a 204 …).
    Contract,
    /// A feature the caller needs is not provided by this server.
    Unsupported,
    /// A setting is invalid (an unknown server name, a malformed URL).
    Config,
}

impl Error {
    fn new(kind: Kind) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                message: None,
                status: None,
                rule: None,
                cause: None,
            }),
        }
    }

    fn with_message(mut self, message: impl Into<Box<str>>) -> Self {
        self.inner.message = Some(message.into());
        self
    }

    /// Malformed input from the peer; `status` is the response it deserves
    /// (usually `400 Bad Request`).
    #[cold]
    pub fn parse(message: impl Into<Box<str>>, status: StatusCode) -> Self {
        let mut err = Error::new(Kind::Parse).with_message(message);
        err.inner.status = Some(status);
        err
    }

    /// A timeout expired. It carries no status: one that deserves a
    /// response adds it (`.with_status(StatusCode::REQUEST_TIMEOUT)` for a
    /// slow request body, say).
    #[cold]
    pub fn timeout(message: impl Into<Box<str>>) -> Self {
        Error::new(Kind::Timeout).with_message(message)
    }

    /// The peer went away, or the connection was closed under the caller.
    #[cold]
    pub fn closed(message: impl Into<Box<str>>) -> Self {
        Error::new(Kind::Closed).with_message(message)
    }

    /// A request body that ended before its end: the client closed or reset
    /// the connection or stream mid-body. [`Error::is_closed`], with `400`
    /// for the answer should the app let it end the request unanswered (the
    /// request is incomplete; Kestrel's rule). Every server reports a body
    /// cut short with it.
    ///
    /// # Example
    ///
    /// ```
    /// let err = serverbridge::Error::body_cut_short("the client left");
    /// assert!(err.is_closed());
    /// assert_eq!(err.status(), Some(http::StatusCode::BAD_REQUEST));
    /// ```
    #[cold]
    pub fn body_cut_short(message: impl Into<Box<str>>) -> Self {
        Error::closed(message).with_status(StatusCode::BAD_REQUEST)
    }

    /// A failed read of a request body, from the I/O error a decoder gave:
    /// `InvalidData` or `InvalidInput` (a malformed chunk line, say) is the
    /// client's malformed body, a parse error with `400`; any other kind
    /// means the body was cut short ([`Error::body_cut_short`]).
    ///
    /// # Example
    ///
    /// ```
    /// use std::io::{Error as IoError, ErrorKind};
    ///
    /// let bad = serverbridge::Error::body_read(&IoError::new(ErrorKind::InvalidData, "zz"));
    /// assert!(bad.is_parse());
    /// let gone = serverbridge::Error::body_read(&IoError::from(ErrorKind::ConnectionReset));
    /// assert!(gone.is_closed());
    /// ```
    #[cold]
    pub fn body_read(err: &std::io::Error) -> Self {
        match err.kind() {
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput => Error::parse(
                format!("malformed request body: {err}"),
                StatusCode::BAD_REQUEST,
            ),
            _ => Error::body_cut_short(format!("the request body ended early: {err}")),
        }
    }

    /// The request was aborted on purpose.
    #[cold]
    pub fn aborted(message: impl Into<Box<str>>) -> Self {
        Error::new(Kind::Aborted).with_message(message)
    }

    /// A configured limit was exceeded; `status` is the response it deserves
    /// (`413`, `414`, `431` …).
    #[cold]
    pub fn limit(message: impl Into<Box<str>>, status: StatusCode) -> Self {
        let mut err = Error::new(Kind::Limit).with_message(message);
        err.inner.status = Some(status);
        err
    }

    /// An I/O error from the transport. A closed-connection kind of I/O error
    /// (`BrokenPipe`, `ConnectionReset`, `ConnectionAborted`, `UnexpectedEof`)
    /// also answers `true` to [`Error::is_closed`].
    #[cold]
    pub fn io(cause: std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        let kind = match cause.kind() {
            BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof => Kind::Closed,
            TimedOut => Kind::Timeout,
            _ => Kind::Io,
        };
        let mut err = Error::new(kind);
        err.inner.cause = Some(Box::new(cause));
        err
    }

    /// An application error: what an app returns when it fails.
    #[cold]
    pub fn app(cause: impl Into<BoxError>) -> Self {
        let mut err = Error::new(Kind::Application);
        err.inner.cause = Some(cause.into());
        err
    }

    /// An application error from a message.
    #[cold]
    pub fn app_msg(message: impl Into<Box<str>>) -> Self {
        Error::new(Kind::Application).with_message(message)
    }

    /// A broken contract rule; `rule` is the stable id listed in SPEC.md
    /// (for example `response.body-not-allowed`).
    #[cold]
    pub fn contract(rule: &'static str, message: impl Into<Box<str>>) -> Self {
        let mut err = Error::new(Kind::Contract).with_message(message);
        err.inner.rule = Some(rule);
        err
    }

    /// The server does not provide something the caller needs.
    #[cold]
    pub fn unsupported(message: impl Into<Box<str>>) -> Self {
        Error::new(Kind::Unsupported).with_message(message)
    }

    /// An invalid setting, found at startup (an unknown server name, a
    /// malformed URL); the message names the valid choices or forms.
    #[cold]
    pub fn config(message: impl Into<Box<str>>) -> Self {
        Error::new(Kind::Config).with_message(message)
    }

    /// Attaches a cause, reachable through `source()`.
    pub fn with_cause(mut self, cause: impl Into<BoxError>) -> Self {
        self.inner.cause = Some(cause.into());
        self
    }

    /// Malformed input from the peer.
    pub fn is_parse(&self) -> bool {
        self.inner.kind == Kind::Parse
    }

    /// A timeout or minimum data rate expired.
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == Kind::Timeout
    }

    /// The peer went away or the connection was closed.
    pub fn is_closed(&self) -> bool {
        self.inner.kind == Kind::Closed
    }

    /// The request was aborted on purpose by the application or the server.
    pub fn is_aborted(&self) -> bool {
        self.inner.kind == Kind::Aborted
    }

    /// A configured limit was exceeded.
    pub fn is_limit(&self) -> bool {
        self.inner.kind == Kind::Limit
    }

    /// A transport I/O error that is neither a close nor a timeout.
    pub fn is_io(&self) -> bool {
        self.inner.kind == Kind::Io
    }

    /// The application failed.
    pub fn is_app(&self) -> bool {
        self.inner.kind == Kind::Application
    }

    /// A contract rule was broken; [`Error::rule`] names it.
    pub fn is_contract(&self) -> bool {
        self.inner.kind == Kind::Contract
    }

    /// The server does not support what was asked.
    pub fn is_unsupported(&self) -> bool {
        self.inner.kind == Kind::Unsupported
    }

    /// A setting is invalid (see [`Error::config`]).
    pub fn is_config(&self) -> bool {
        self.inner.kind == Kind::Config
    }

    /// The stable id of the broken contract rule, if this is a contract error.
    pub fn rule(&self) -> Option<&'static str> {
        self.inner.rule
    }

    /// The status code this error deserves when the response has not started
    /// (set for parse and limit errors).
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// Sets the status code this error deserves.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.inner.status = Some(status);
        self
    }

    fn description(&self) -> &'static str {
        match self.inner.kind {
            Kind::Parse => "malformed input",
            Kind::Timeout => "timed out",
            Kind::Closed => "connection closed",
            Kind::Aborted => "request aborted",
            Kind::Limit => "limit exceeded",
            Kind::Io => "i/o error",
            Kind::Application => "application error",
            Kind::Contract => "contract violation",
            Kind::Unsupported => "not supported by this server",
            Kind::Config => "invalid configuration",
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("serverbridge::Error");
        d.field("kind", &self.inner.kind);
        if let Some(message) = &self.inner.message {
            d.field("message", message);
        }
        if let Some(rule) = self.inner.rule {
            d.field("rule", &rule);
        }
        if let Some(status) = self.inner.status {
            d.field("status", &status);
        }
        if let Some(cause) = &self.inner.cause {
            d.field("cause", cause);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())?;
        if let Some(rule) = self.inner.rule {
            write!(f, " [{rule}]")?;
        }
        if let Some(message) = &self.inner.message {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .cause
            .as_ref()
            .map(|cause| &**cause as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::io(err)
    }
}

impl From<http::Error> for Error {
    fn from(err: http::Error) -> Self {
        Error::app(err)
    }
}

impl From<BoxError> for Error {
    /// Unwraps a boxed [`Error`] back into itself; anything else becomes an
    /// application error.
    fn from(err: BoxError) -> Self {
        match err.downcast::<Error>() {
            Ok(err) => *err,
            Err(other) => Error::app(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_answer_for_their_kind_only() {
        let err = Error::timeout("request headers");
        assert!(err.is_timeout());
        assert!(!err.is_parse() && !err.is_closed() && !err.is_limit());
        assert_eq!(err.to_string(), "timed out: request headers");
    }

    #[test]
    fn io_errors_that_mean_closed_are_closed() {
        let err = Error::io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(err.is_closed());
        let err = Error::io(std::io::Error::other("disk"));
        assert!(err.is_io());
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn boxed_error_round_trips() {
        let boxed: BoxError = Box::new(Error::contract("response.body-not-allowed", "204"));
        let err = Error::from(boxed);
        assert_eq!(err.rule(), Some("response.body-not-allowed"));
        assert_eq!(
            err.to_string(),
            "contract violation [response.body-not-allowed]: 204"
        );
    }
}
