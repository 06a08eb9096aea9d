//! [`MinRequestBodyDataRate`] and [`MinResponseDataRate`]: per-request minimum
//! data rates.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A minimum data rate: after `grace`, bytes must keep up with
/// `bytes_per_second`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinDataRate {
    /// The rate, in bytes per second.
    pub bytes_per_second: u64,
    /// How long before the rate applies.
    pub grace: Duration,
}

impl MinDataRate {
    /// Kestrel's default: 240 bytes per second after 5 seconds.
    pub const DEFAULT: MinDataRate = MinDataRate {
        bytes_per_second: 240,
        grace: Duration::from_secs(5),
    };
}

#[derive(Clone, Debug, Default)]
struct RateCell(Arc<Mutex<Option<MinDataRate>>>);

impl RateCell {
    fn get(&self) -> Option<MinDataRate> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn set(&self, rate: Option<MinDataRate>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = rate;
    }
}

/// The minimum rate at which the request body must arrive while the app
/// waits for it (the analogue of `IHttpMinRequestBodyDataRateFeature`). Set
/// `None` for a request that legitimately trickles (long uploads from slow
/// devices). Clones share the setting; the server reads it as it enforces it.
///
/// Provided by: the built-in server (default from
/// [`Limits`](crate::server::Limits)). Absent: the server enforces no rate.
///
/// # Example
///
/// ```
/// use serverbridge::feature::{MinDataRate, MinRequestBodyDataRate};
///
/// let rate = MinRequestBodyDataRate::new(Some(MinDataRate::DEFAULT));
/// rate.set(None); // this request may trickle
/// assert_eq!(rate.get(), None);
/// ```
#[derive(Clone, Debug, Default)]
pub struct MinRequestBodyDataRate(RateCell);

impl MinRequestBodyDataRate {
    /// A setting with this rate (`None`: no minimum).
    pub fn new(rate: Option<MinDataRate>) -> Self {
        let cell = RateCell::default();
        cell.set(rate);
        MinRequestBodyDataRate(cell)
    }
    /// The current rate.
    pub fn get(&self) -> Option<MinDataRate> {
        self.0.get()
    }
    /// Changes the rate for the rest of this request.
    pub fn set(&self, rate: Option<MinDataRate>) {
        self.0.set(rate);
    }
}

/// The minimum rate at which the client must read the response (the analogue
/// of `IHttpMinResponseDataRateFeature`). Set `None` for a response a slow
/// client may take its time over (a long download to a phone). Clones share
/// the setting; the server reads it as it enforces it.
///
/// Provided by: the built-in server (default from
/// [`Limits`](crate::server::Limits)). Absent: the server enforces no rate.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use serverbridge::feature::{MinDataRate, MinResponseDataRate};
///
/// let rate = MinResponseDataRate::new(None);
/// rate.set(Some(MinDataRate { bytes_per_second: 1024, grace: Duration::from_secs(2) }));
/// assert_eq!(rate.get().unwrap().bytes_per_second, 1024);
/// ```
#[derive(Clone, Debug, Default)]
pub struct MinResponseDataRate(RateCell);

impl MinResponseDataRate {
    /// A setting with this rate (`None`: no minimum).
    pub fn new(rate: Option<MinDataRate>) -> Self {
        let cell = RateCell::default();
        cell.set(rate);
        MinResponseDataRate(cell)
    }
    /// The current rate.
    pub fn get(&self) -> Option<MinDataRate> {
        self.0.get()
    }
    /// Changes the rate for the rest of this response.
    pub fn set(&self, rate: Option<MinDataRate>) {
        self.0.set(rate);
    }
}
