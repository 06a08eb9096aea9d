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

    /// `<connection>:<n>`, Kestrel's format: `n` in eight upper-case hex
    /// digits (sixteen once it passes `u32::MAX`).
    ///
    /// # Example
    ///
    /// ```
    /// use serverbridge::feature::RequestId;
    ///
    /// assert_eq!(RequestId::sequence("0HM1", 26).as_str(), "0HM1:0000001A");
    /// ```
    pub fn sequence(connection: &str, n: u64) -> Self {
        let mut id = RequestId(String::with_capacity(connection.len() + 17));
        id.set_sequence(connection, n);
        id
    }

    /// Replaces the id with [`RequestId::sequence`]'s, reusing the string's
    /// capacity: what a server that keeps one collection per connection does
    /// on every request.
    pub fn set_sequence(&mut self, connection: &str, n: u64) {
        /// Pushes the low `D` hex digits of `n`; a constant count unrolls.
        fn push_hex<const D: usize>(id: &mut String, n: u64) {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            for i in (0..D).rev() {
                id.push(char::from(HEX[((n >> (i * 4)) & 0xF) as usize]));
            }
        }
        self.0.clear();
        self.0.reserve(connection.len() + 17);
        self.0.push_str(connection);
        self.0.push(':');
        if n > u64::from(u32::MAX) {
            push_hex::<16>(&mut self.0, n);
        } else {
            push_hex::<8>(&mut self.0, n);
        }
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

#[cfg(test)]
mod tests {
    use super::RequestId;

    #[test]
    fn sequences_are_eight_uppercase_hex_digits_then_sixteen() {
        assert_eq!(RequestId::sequence("T1", 1).as_str(), "T1:00000001");
        assert_eq!(RequestId::sequence("T1", 0xABC_DEF).as_str(), "T1:00ABCDEF");
        assert_eq!(
            RequestId::sequence("T1", u64::from(u32::MAX)).as_str(),
            "T1:FFFFFFFF"
        );
        assert_eq!(
            RequestId::sequence("T1", u64::from(u32::MAX) + 1).as_str(),
            "T1:0000000100000000"
        );
        let mut id = RequestId::sequence("a-long-connection-id", 2);
        id.set_sequence("b", 3);
        assert_eq!(id.as_str(), "b:00000003");
    }

    #[test]
    fn a_reused_id_takes_the_new_connection_and_number_whatever_it_held() {
        let mut id = RequestId::sequence("c1", 1);
        id.set_sequence("c1", 2);
        assert_eq!(id.as_str(), "c1:00000002");
        // Same length, another connection.
        id.set_sequence("c2", 3);
        assert_eq!(id.as_str(), "c2:00000003");
        // Past u32::MAX and back.
        id.set_sequence("c2", u64::from(u32::MAX) + 1);
        assert_eq!(id.as_str(), "c2:0000000100000000");
        id.set_sequence("c2", 4);
        assert_eq!(id.as_str(), "c2:00000004");
        // A colon where the old id had one, but not the same connection.
        let mut id = RequestId("ab:00000001".to_owned());
        id.set_sequence("xb", 5);
        assert_eq!(id.as_str(), "xb:00000005");
        // An id an app set by hand, of the very length of a sequence id.
        let mut id = RequestId("abcdefghijk".to_owned());
        id.set_sequence("ab", 6);
        assert_eq!(id.as_str(), "ab:00000006");
    }
}
