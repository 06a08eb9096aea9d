//! Keeping rarely taken paths out of the per-request code.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pin_project_lite::pin_project! {
    /// A rarely taken future polled out of line.
    ///
    /// An `async fn` inlines the futures it awaits into its own state
    /// machine, cold branches (rejections, drains, shutdowns, failures)
    /// among the hot ones. Polled through this wrapper, a cold future's code
    /// sits apart, so the per-request path spans fewer instruction-cache
    /// lines (`valgrind --tool=callgrind --cache-sim=yes` counts the misses).
    pub(crate) struct OutOfLine<F> {
        #[pin]
        inner: F,
    }
}

impl<F: Future> OutOfLine<F> {
    pub(crate) fn new(inner: F) -> Self {
        OutOfLine { inner }
    }
}

impl<F: Future> Future for OutOfLine<F> {
    type Output = F::Output;

    #[cold]
    #[inline(never)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}
