//! [`RequestId`]: an id for logs and traces.

use std::fmt;

/// A server-assigned id for this request (the analogue of
/// `IHttpRequestIdentifierFeature` and OWIN's `owin.RequestId`). The built-in
/// server uses `<connection id>:<n>`, Kestrel's format.
///
/// Provided by: every server in this workspace; an app may replace it (a
/// correlation id from a proxy header, say).
///
/// # Example
///
/// ```
/// let id = serverbridge::feature::RequestId::new("0HM1:00000001");
/// assert_eq!(id.to_string(), "0HM1:00000001");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RequestId(pub String);

impl RequestId {
    /// An id from a string.
    pub fn new(id: impl Into<String>) -> Self {
        RequestId(id.into())
    }

    /// Replaces the id, reusing the string's capacity.
    pub fn set(&mut self, id: &str) {
        self.0.clear();
        self.0.push_str(id);
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
