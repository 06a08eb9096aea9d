//! [`TlsInfo`]: what the TLS handshake negotiated.

use bytes::Bytes;

/// The TLS session of the connection (the analogue of `ITlsConnectionFeature`
/// and `ITlsHandshakeFeature`). Its presence means the request arrived over
/// TLS.
///
/// Provided by: servers that terminate TLS, in the connection defaults layer;
/// TestServer lets tests set it. Absent: plain-text connections.
///
/// # Example
///
/// ```
/// let tls = serverbridge::feature::TlsInfo {
///     protocol: Some("TLSv1.3".into()),
///     alpn: Some(b"h2".to_vec()),
///     ..Default::default()
/// };
/// assert_eq!(tls.alpn.as_deref(), Some(&b"h2"[..]));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// The protocol version, as the TLS library names it (`"TLSv1.3"`).
    pub protocol: Option<String>,
    /// The negotiated cipher suite, as the TLS library names it.
    pub cipher_suite: Option<String>,
    /// The ALPN protocol selected (`b"h2"`, `b"http/1.1"`).
    pub alpn: Option<Vec<u8>>,
    /// The SNI server name the client asked for.
    pub server_name: Option<String>,
    /// The client's certificate chain (DER), leaf first; empty without client
    /// authentication.
    pub peer_certificates: Vec<Bytes>,
}
