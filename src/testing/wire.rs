//! [`TestServer`]'s wire mode: each request goes as bytes through the
//! built-in server's HTTP/1.1 engine over an in-memory duplex, with hyper's
//! client on the other end.

use http::{StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::DuplexStream;

use super::client::client_error;
use super::server::{ensure_host, TestBody, TestRequest, TestResponse, TestServer};
use crate::error::{Error, Result};
use crate::feature::{ConnectionInfo, TlsInfo};
use crate::features::Features;
use crate::pipe::ReasonPhrase;
use crate::server::HttpServer;

/// Room in each direction of the in-memory connection.
const DUPLEX_CAPACITY: usize = 64 * 1024;

/// Starts a server connection over a duplex and returns the client end.
pub(super) fn connect(
    server: &TestServer,
    connection: Option<ConnectionInfo>,
    tls: Option<TlsInfo>,
) -> Result<DuplexStream> {
    let app = server.app()?;
    let defaults = &server.connection_defaults;
    // Server-level features show through on every request, as on a real
    // server.
    let mut features = Features::with_defaults(server.server_features.clone());
    // Each request is a connection of its own: the server's connection info
    // with an id of its own (the request ids, `<connection id>:<n>`, would
    // all be `…:1` otherwise); one a request names is taken as it is.
    let info = connection.unwrap_or_else(|| {
        let mut info = defaults
            .get::<ConnectionInfo>()
            .cloned()
            .unwrap_or_default();
        let n = server.next_number();
        info.id = format!("{}-W{n}", info.id);
        info
    });
    features.insert(info);
    if let Some(tls) = tls.or_else(|| defaults.get::<TlsInfo>().cloned()) {
        features.insert(tls);
    }
    let (client, server_io) = tokio::io::duplex(DUPLEX_CAPACITY);
    tokio::spawn(HttpServer::serve_connection_with(
        server_io,
        features,
        app,
        server.limits.clone(),
    ));
    Ok(client)
}

impl TestServer {
    /// A raw connection to the built-in server's engine running this app:
    /// write exact bytes, read exact bytes (protocol tests). Works in either
    /// mode; connection and TLS info are the server's.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// async fn hello(ctx: &mut serverbridge::HttpContext) -> serverbridge::Result<()> {
    ///     ctx.write("hi").await
    /// }
    ///
    /// let server = serverbridge::testing::TestServer::new(hello);
    /// let mut io = server.raw().unwrap();
    /// io.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap(); // no Host
    /// let mut reply = Vec::new();
    /// io.read_to_end(&mut reply).await.unwrap();
    /// assert!(reply.starts_with(b"HTTP/1.1 400 Bad Request\r\n"));
    /// # });
    /// ```
    pub fn raw(&self) -> Result<DuplexStream> {
        connect(self, None, None)
    }
}

/// Sends one request on a fresh connection.
pub(super) async fn send(mut request: TestRequest<'_>) -> Result<TestResponse> {
    let body = request.take_faulted_body();
    let TestRequest {
        server,
        method,
        uri,
        version,
        mut headers,
        connection,
        tls,
        lifetime,
        ..
    } = request;
    let lifetime = lifetime.into_inner().unwrap_or_default();
    let parsed: Uri = uri.parse().map_err(|e| {
        Error::parse("invalid request target", StatusCode::BAD_REQUEST).with_cause(e)
    })?;
    ensure_host(
        &mut headers,
        parsed.authority().map(|a| a.as_str()),
        version,
    );
    // An `https://` target stands for a TLS connection, as in direct mode
    // (and ASP.NET Core's TestServer): the engine then says `https`.
    let https = parsed.scheme() == Some(&http::uri::Scheme::HTTPS);
    let tls = tls.map(|t| *t).or_else(|| https.then(TlsInfo::default));
    let io = connect(server, connection.map(|c| *c), tls)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(client_error)?;
    // The client half lives until the response ends, or until the test
    // aborts the request: then it drops, as a client that goes away.
    let abort = lifetime.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = conn => {}
            _ = abort.cancelled() => {}
        }
    });
    let mut outgoing = http::Request::new(body);
    *outgoing.method_mut() = method;
    *outgoing.uri_mut() = parsed;
    *outgoing.version_mut() = version;
    *outgoing.headers_mut() = headers;
    let aborted = || Error::aborted("the test aborted the request");
    let response = tokio::select! {
        biased;
        () = lifetime.cancelled() => return Err(aborted()),
        response = sender.send_request(outgoing) => match response {
            Ok(response) => response,
            // The abort dropped the connection first: still the abort.
            Err(_) if lifetime.is_cancelled() => return Err(aborted()),
            Err(err) => return Err(client_error(err)),
        },
    };
    let (mut parts, incoming) = response.into_parts();
    if let Some(reason) = parts.extensions.remove::<hyper::ext::ReasonPhrase>() {
        let text = String::from_utf8_lossy(reason.as_bytes()).into_owned();
        parts.extensions.insert(ReasonPhrase(text));
    }
    Ok(TestResponse {
        parts,
        body: TestBody::Wire(crate::body::boxed(incoming)),
        trailers: None,
    })
}
