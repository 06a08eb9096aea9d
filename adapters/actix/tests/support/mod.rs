//! What the adapter's tests share: starting a server on 127.0.0.1 and a
//! small HTTP/1.1 client (hyper's) over a socket with the buffer sizes a
//! test asks for.

#![allow(dead_code, reason = "each test file uses a part")]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serverbridge::feature::{ServerAddress, ServerAddresses};
use serverbridge::Server;
use tokio::net::TcpSocket;

/// How long any wait in these tests may take before the test fails.
pub(crate) const BOUND: Duration = Duration::from_secs(20);

/// The client's request body type.
pub(crate) type ClientBody = BoxBody<Bytes, std::io::Error>;

/// An empty request body.
pub(crate) fn empty() -> ClientBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// The one TCP address a started server lists.
pub(crate) fn address(server: &dyn Server) -> SocketAddr {
    let listed = server
        .features()
        .get::<ServerAddresses>()
        .expect("ServerAddresses")
        .get();
    match listed.as_slice() {
        [ServerAddress::Tcp { addr, .. }] => *addr,
        other => panic!("expected one TCP address, got {other:?}"),
    }
}

/// A listener on 127.0.0.1:0 whose accepted sockets inherit `buffer`-byte
/// send and receive buffers (`None`: the system's autotuned ones).
pub(crate) fn listener(buffer: Option<u32>) -> std::net::TcpListener {
    let socket = TcpSocket::new_v4().expect("socket");
    if let Some(size) = buffer {
        socket.set_send_buffer_size(size).expect("SO_SNDBUF");
        socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
    }
    socket.bind("127.0.0.1:0".parse().unwrap()).expect("bind");
    let listener = socket.listen(128).expect("listen");
    listener.into_std().expect("std listener")
}

/// A client connection with `buffer`-byte socket buffers, if given.
pub(crate) async fn connect(addr: SocketAddr, buffer: Option<u32>) -> SendRequest<ClientBody> {
    try_connect(addr, buffer).await.expect("connect")
}

/// [`connect`], failing with the error instead of panicking.
pub(crate) async fn try_connect(
    addr: SocketAddr,
    buffer: Option<u32>,
) -> std::io::Result<SendRequest<ClientBody>> {
    let socket = TcpSocket::new_v4()?;
    if let Some(size) = buffer {
        socket.set_send_buffer_size(size)?;
        socket.set_recv_buffer_size(size)?;
    }
    let stream = socket.connect(addr).await?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}
