//! [`MaxRequestBodySize`]: the per-request body limit.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};

const UNLIMITED: u64 = u64::MAX;

/// The largest request body the server accepts for this request, settable by
/// the application until the body is first read (the analogue of
/// `IHttpMaxRequestBodySizeFeature`).
///
/// Clones share one setting: the server keeps a clone inside the request body
/// (see [`RequestBody::with_limit`](crate::body::RequestBody::with_limit)) and
/// the app adjusts the one in the features. Exceeding it fails the body read
/// with [`Error::is_limit`] and, before the response starts, answers
/// `413 Payload Too Large`.
///
/// Provided by: the built-in server, TestServer, adapters whose server has no
/// limit of its own. Absent: the server applies no per-request limit.
///
/// # Example
///
/// ```
/// use serverbridge::feature::MaxRequestBodySize;
///
/// let limit = MaxRequestBodySize::new(Some(30_000_000));
/// limit.set(Some(1024)).unwrap();
/// limit.mark_read_only(); // the body was read
/// assert!(limit.set(None).is_err());
/// assert_eq!(limit.get(), Some(1024));
/// ```
#[derive(Clone, Debug)]
pub struct MaxRequestBodySize {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    limit: AtomicU64,
    read_only: AtomicBool,
}

impl MaxRequestBodySize {
    /// A limit in bytes; `None` is unlimited.
    pub fn new(limit: Option<u64>) -> Self {
        MaxRequestBodySize {
            shared: Arc::new(Shared {
                limit: AtomicU64::new(limit.unwrap_or(UNLIMITED)),
                read_only: AtomicBool::new(false),
            }),
        }
    }

    /// Resets to a fresh, writable limit for the next request on a reused
    /// feature collection; reuses the allocation when no clone is left.
    pub fn reset(&mut self, limit: Option<u64>) {
        match Arc::get_mut(&mut self.shared) {
            Some(shared) => {
                *shared.limit.get_mut() = limit.unwrap_or(UNLIMITED);
                *shared.read_only.get_mut() = false;
            }
            None => *self = MaxRequestBodySize::new(limit),
        }
    }

    /// The limit in bytes; `None` is unlimited.
    pub fn get(&self) -> Option<u64> {
        match self.shared.limit.load(Ordering::Relaxed) {
            UNLIMITED => None,
            n => Some(n),
        }
    }

    /// Changes the limit. Fails (rule `request.body-limit-after-read`) once the
    /// body has started to be read.
    pub fn set(&self, limit: Option<u64>) -> Result<()> {
        if self.is_read_only() {
            return Err(Error::contract(
                "request.body-limit-after-read",
                "the request body limit cannot change after the body was read",
            ));
        }
        self.shared
            .limit
            .store(limit.unwrap_or(UNLIMITED), Ordering::Relaxed);
        Ok(())
    }

    /// Whether the limit can no longer change.
    pub fn is_read_only(&self) -> bool {
        self.shared.read_only.load(Ordering::Relaxed)
    }

    /// Freezes the limit; servers call this when the body is first read (or
    /// when the request was upgraded).
    pub fn mark_read_only(&self) {
        self.shared.read_only.store(true, Ordering::Relaxed);
    }
}
