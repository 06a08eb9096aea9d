//! [`Upgrade`]: hand the connection over after `101 Switching Protocols`.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::Result;

/// The raw connection after an upgrade.
pub trait UpgradedIo: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> UpgradedIo for T {}

/// The raw, bidirectional connection an upgrade hands to the application.
pub struct Upgraded {
    io: Box<dyn UpgradedIo>,
}

impl Upgraded {
    /// Wraps a transport.
    pub fn new(io: impl UpgradedIo) -> Self {
        Upgraded { io: Box::new(io) }
    }
}

impl fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgraded").finish_non_exhaustive()
    }
}

impl AsyncRead for Upgraded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.io).poll_shutdown(cx)
    }
}

/// Resolves to the raw connection once the server has sent the `101` head.
pub type OnUpgrade = BoxFuture<'static, Result<Upgraded>>;

/// Connection upgrade: a behaviour feature, stored as `dyn Upgrade` (the
/// analogue of `IHttpUpgradeFeature`).
///
/// Apps call [`HttpContext::upgrade`](crate::HttpContext::upgrade), which
/// checks [`is_upgradable`](Upgrade::is_upgradable), sets `101`, sends the
/// head and awaits the future returned by [`on_upgrade`](Upgrade::on_upgrade).
///
/// Provided by: HTTP/1.1 servers, on requests that carry `Upgrade` (and
/// `Connection: upgrade`) with no body. Absent: HTTP/2-only servers, blocking
/// servers that cannot hand over the socket.
pub trait Upgrade: Send + Sync {
    /// Whether this request can be upgraded.
    fn is_upgradable(&self) -> bool;

    /// Claims the connection. The returned future resolves once the server has
    /// sent the `101` head that the caller sends next. Fails if the request is
    /// not upgradable or was claimed already.
    fn on_upgrade(&mut self) -> Result<OnUpgrade>;
}
