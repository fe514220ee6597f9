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
    /// `self + d`, saturating instead of overflowing. Not inlined in the browser build: every
    /// deadline made from a configured `Duration` goes through it.
    #[cfg_attr(target_arch = "wasm32", inline(never))]
    pub fn plus(self, d: Duration) -> Self {
        Self(self.0.saturating_add(millis(d)))
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

/// `d` in whole milliseconds, saturating at `u64::MAX`, as `u64::try_from(d.as_millis())` would
/// be. Without `as_millis`'s 128-bit product, or a checked 64-bit one: on wasm32 both are a
/// software 128-bit multiply at every call site. Not inlined in the browser build: it is
/// called wherever a configured `Duration` meets the millisecond clock.
#[cfg_attr(target_arch = "wasm32", inline(never))]
pub(crate) fn millis(d: Duration) -> u64 {
    let secs = d.as_secs();
    if secs > u64::MAX / 1000 { u64::MAX } else { (secs * 1000).saturating_add(u64::from(d.subsec_millis())) }
}

/// The earlier of two optional deadlines (`None` is "no deadline"). The client's deadlines are
/// folded with this rather than with iterator chains and `min`, each of which the browser build
/// would compile separately. Not inlined in the browser build (eight call sites).
#[cfg_attr(target_arch = "wasm32", inline(never))]
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

impl std::ops::Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        self.plus(rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_is_the_min_of_the_present_ones() {
        let (a, b) = (Some(Instant(1)), Some(Instant(2)));
        for (x, y) in [(a, b), (b, a), (a, None), (None, b), (None, None), (a, a)] {
            assert_eq!(earliest(x, y), [x, y].into_iter().flatten().min());
        }
    }

    #[test]
    fn millis_saturates_as_as_millis_does() {
        let max_secs = u64::MAX / 1000;
        for (secs, nanos) in [
            (0, 0),
            (0, 999_999),
            (1, 1_500_000),
            (max_secs, 0),
            (max_secs, 999_999_999),
            (max_secs + 1, 0),
            (u64::MAX, 999_999_999),
        ] {
            let d = Duration::new(secs, nanos);
            assert_eq!(millis(d), u64::try_from(d.as_millis()).unwrap_or(u64::MAX), "{d:?}");
        }
    }
}
