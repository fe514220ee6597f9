//! Time as the core sees it: a monotonic millisecond count supplied by the driver.
//!
//! The core has no clock. Drivers pick any epoch (process start, `performance.now()`) and stamp
//! every input with the current [`Instant`]; deadlines come back in the same unit.

use std::time::Duration;

/// A point on the driver's monotonic clock, in milliseconds since an epoch of the driver's choosing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The instant `ms` milliseconds after the driver's epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }
    /// Milliseconds since the driver's epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }
    /// `self + d`, saturating instead of overflowing.
    pub fn plus(self, d: Duration) -> Self {
        Self(self.0.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
    }
    /// `self + ms` milliseconds, saturating.
    pub const fn plus_millis(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }
    /// Time elapsed from `earlier` to `self` (zero if `earlier` is later).
    pub const fn since(self, earlier: Instant) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl std::ops::Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        self.plus(rhs)
    }
}
