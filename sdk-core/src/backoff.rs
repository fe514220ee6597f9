//! Reconnection delays.
//!
//! [`BackoffStrategy::SocketIo`] reproduces socket.io-client's `backo2` (`lib/contrib/backo2.ts`)
//! exactly, except that the randomness comes from the seeded [`Rng`] instead of `Math.random()`, and
//! that it is computed in `f64` and clamped so that no attempt number overflows, wraps or turns into
//! NaN: after enough attempts the delay simply stays at `max_ms`.

use crate::rng::Rng;

/// How long to wait before reconnection attempt `n` (see [`BackoffStrategy::delay_ms`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BackoffStrategy {
    /// socket.io-client's exponential backoff with symmetric jitter (`backo2`):
    /// `ms = min_ms * factor^attempt`, moved up or down by a random part of at most
    /// `randomization * ms`, then capped at `max_ms`.
    ///
    /// The official client's options map as `reconnectionDelay` → `min_ms`,
    /// `reconnectionDelayMax` → `max_ms`, `randomizationFactor` → `randomization` (`factor` is 2).
    SocketIo {
        /// Base delay of the first retry, in milliseconds.
        min_ms: u64,
        /// Upper bound of every delay, in milliseconds.
        max_ms: u64,
        /// Growth per attempt (socket.io uses 2).
        factor: f64,
        /// Jitter as a fraction of the delay, in `[0, 1]` (socket.io uses 0.5).
        randomization: f64,
    },
    /// AWS "full jitter" (Brooker, *Exponential Backoff And Jitter*, 2015): uniform in
    /// `[0, cap]` where `cap = min(max_ms, min_ms * factor^attempt)`.
    ///
    /// It spreads a crowd of clients reconnecting after a server restart better than
    /// [`BackoffStrategy::SocketIo`], at the price of sometimes retrying at once.
    FullJitter {
        /// Cap of the first retry, in milliseconds.
        min_ms: u64,
        /// Upper bound of every delay, in milliseconds.
        max_ms: u64,
        /// Growth of the cap per attempt.
        factor: f64,
    },
}

impl Default for BackoffStrategy {
    /// socket.io-client's defaults: 1 s, doubling, at most 5 s, ±50 % jitter.
    fn default() -> Self {
        BackoffStrategy::SocketIo { min_ms: 1000, max_ms: 5000, factor: 2.0, randomization: 0.5 }
    }
}

impl BackoffStrategy {
    /// The delay before a retry, in milliseconds. `attempt` counts from 0 for the first retry.
    ///
    /// Draws from `rng` (once per call for both strategies, none when there is no jitter), so a
    /// seeded client always waits the same delays.
    ///
    /// Out-of-range settings never panic, overflow or produce NaN: a `min_ms` above `max_ms` is
    /// lowered to `max_ms`; a `factor` below 1 (or NaN) counts as 1, so delays never shrink towards
    /// 0 as attempts grow; `randomization` is clamped to `[0, 1]` (NaN counts as 0). Use
    /// [`BackoffStrategy::validate`] to refuse such settings up front instead.
    ///
    /// Unlike JavaScript's `| 0`, the result is not wrapped to 32 bits, so a `max_ms` above
    /// 2^31 - 1 is honoured rather than turning negative.
    pub fn delay_ms(&self, attempt: u32, rng: &mut Rng) -> u64 {
        match *self {
            BackoffStrategy::SocketIo { min_ms, max_ms, factor, randomization } => {
                let max = max_ms as f64;
                // If the un-jittered delay is at least 10 * max, the result is max whatever the
                // jitter: the downward branch is only taken when floor(r * 10) is even, i.e.
                // r < 0.9, so ms - dev > ms * 0.1 >= max. Clamping there keeps the exact backo2
                // result while keeping every intermediate value finite.
                let mut ms = grown(min_ms, max_ms, factor, attempt).min(max * 10.0);
                let randomization = if randomization.is_nan() { 0.0 } else { randomization.clamp(0.0, 1.0) };
                if randomization > 0.0 {
                    let r = rng.next_f64();
                    let dev = (r * randomization * ms).floor();
                    // floor(r * 10) is 0..=9 because r is in [0, 1).
                    ms = if ((r * 10.0).floor() as i64) & 1 == 0 { ms - dev } else { ms + dev };
                }
                // `as` truncates like `| 0` and saturates (NaN would give 0, but none can occur).
                ms.min(max).max(0.0) as u64
            }
            BackoffStrategy::FullJitter { min_ms, max_ms, factor } => {
                let cap = grown(min_ms, max_ms, factor, attempt).min(max_ms as f64).max(0.0) as u64;
                rng.below(cap.saturating_add(1))
            }
        }
    }

    /// Checks the settings: `factor` must be a finite number ≥ 0, `randomization` must lie in
    /// `[0, 1]`, and `max_ms` must not be 0.
    ///
    /// [`BackoffStrategy::delay_ms`] copes with anything, so this only catches configuration
    /// mistakes early.
    pub fn validate(&self) -> Result<(), &'static str> {
        let (max_ms, factor) = match *self {
            BackoffStrategy::SocketIo { max_ms, factor, randomization, .. } => {
                if !(0.0..=1.0).contains(&randomization) {
                    return Err("backoff randomization must be between 0 and 1");
                }
                (max_ms, factor)
            }
            BackoffStrategy::FullJitter { max_ms, factor, .. } => (max_ms, factor),
        };
        if !factor.is_finite() || factor < 0.0 {
            return Err("backoff factor must be a finite number, 0 or more");
        }
        if max_ms == 0 {
            return Err("backoff max_ms must be greater than 0");
        }
        Ok(())
    }
}

/// `min(min_ms, max_ms) * max(factor, 1)^attempt` in `f64`; may be `+inf`, never NaN or negative.
fn grown(min_ms: u64, max_ms: u64, factor: f64, attempt: u32) -> f64 {
    let base = min_ms.min(max_ms) as f64;
    if base == 0.0 {
        // 0 * inf would be NaN.
        return 0.0;
    }
    // `f64::max` ignores a NaN operand, so a NaN factor counts as 1.
    let factor = factor.max(1.0);
    // powi, not powf: no libm `pow` in the browser build; exact for the integer exponents used.
    base * factor.powi(i32::try_from(attempt).unwrap_or(i32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// backo2 transcribed literally from JavaScript (no clamping), as the reference.
    fn backo2(min: f64, max: f64, factor: f64, jitter: f64, attempts: i32, r: f64) -> u64 {
        let mut ms = min * factor.powi(attempts);
        if jitter > 0.0 {
            let dev = (r * jitter * ms).floor();
            ms = if ((r * 10.0).floor() as i64 & 1) == 0 { ms - dev } else { ms + dev };
        }
        ms.min(max) as i32 as u64
    }

    fn range_over_seeds(s: BackoffStrategy, attempt: u32) -> (u64, u64) {
        let (mut lo, mut hi) = (u64::MAX, 0);
        for seed in 0..2000 {
            let d = s.delay_ms(attempt, &mut Rng::new(seed));
            lo = lo.min(d);
            hi = hi.max(d);
        }
        (lo, hi)
    }

    #[test]
    fn default_ranges_match_protocol_md() {
        let s = BackoffStrategy::default();
        // PROTOCOL.md §4 numbers attempts from 1; `delay_ms` from 0.
        let expected = [(500, 1500), (1000, 3000), (2000, 5000), (4000, 5000)];
        for (attempt, (lo, hi)) in expected.into_iter().enumerate() {
            let (min, max) = range_over_seeds(s, attempt as u32);
            assert!(min >= lo && max <= hi, "attempt {attempt}: {min}..={max}");
            // The seeds cover the range, not just a corner of it. (backo2 only jitters downwards
            // when r < 0.9, so the true minimum is ms * 0.55: 550, 1100, 2200 and 4400.)
            let floor = [550, 1100, 2200, 4400][attempt];
            assert!(min < floor + 50 && max > hi - (hi - lo) / 10, "attempt {attempt}: {min}..={max}");
        }
        for attempt in [4, 5, 10, 31, 64, 1000, u32::MAX] {
            assert_eq!(range_over_seeds(s, attempt), (5000, 5000), "attempt {attempt}");
        }
    }

    #[test]
    fn small_min_and_max_ranges() {
        let s = BackoffStrategy::SocketIo { min_ms: 100, max_ms: 500, factor: 2.0, randomization: 0.5 };
        for (attempt, (lo, hi)) in [(50, 150), (100, 300), (200, 500)].into_iter().enumerate() {
            let (min, max) = range_over_seeds(s, attempt as u32);
            assert!(min >= lo && max <= hi, "attempt {attempt}: {min}..={max}");
        }
        assert_eq!(range_over_seeds(s, 4), (500, 500));
    }

    #[test]
    fn matches_backo2_exactly() {
        for &(min, max, factor, jitter) in &[
            (1000, 5000, 2.0, 0.5),
            (100, 500, 2.0, 0.5),
            (300, 60_000, 1.5, 0.2),
            (1000, 5000, 2.0, 1.0),
            (1000, 5000, 2.0, 0.0),
        ] {
            let s = BackoffStrategy::SocketIo { min_ms: min, max_ms: max, factor, randomization: jitter };
            for seed in 0..300 {
                for attempt in 0..20u32 {
                    let mut a = Rng::new(seed);
                    let mut b = a.clone();
                    let r = if jitter > 0.0 { b.next_f64() } else { 0.0 };
                    let want = backo2(min as f64, max as f64, factor, jitter, attempt as i32, r);
                    assert_eq!(s.delay_ms(attempt, &mut a), want, "{s:?} seed {seed} attempt {attempt}");
                }
            }
        }
    }

    #[test]
    fn deterministic_for_a_seed() {
        let s = BackoffStrategy::default();
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..10).map(|a| s.delay_ms(a, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }

    #[test]
    fn no_overflow_or_expiry_for_huge_attempts() {
        let mut rng = Rng::new(1);
        let strategies = [
            BackoffStrategy::default(),
            BackoffStrategy::SocketIo { min_ms: u64::MAX, max_ms: u64::MAX, factor: f64::MAX, randomization: 1.0 },
            BackoffStrategy::SocketIo { min_ms: 1, max_ms: 5000, factor: f64::INFINITY, randomization: 0.5 },
            BackoffStrategy::FullJitter { min_ms: 1000, max_ms: 30_000, factor: 2.0 },
            BackoffStrategy::FullJitter { min_ms: 1, max_ms: u64::MAX, factor: 10.0 },
        ];
        for s in strategies {
            for attempt in [64, 1024, u32::MAX - 1, u32::MAX] {
                let d = s.delay_ms(attempt, &mut rng);
                if let BackoffStrategy::SocketIo { max_ms, .. } = s {
                    assert_eq!(d, max_ms, "{s:?} attempt {attempt}");
                }
            }
        }
        assert_eq!(BackoffStrategy::default().delay_ms(u32::MAX, &mut rng), 5000);
    }

    #[test]
    fn odd_settings_are_clamped() {
        let mut rng = Rng::new(11);
        // A factor below 1 (or NaN) never shrinks the delay.
        for factor in [0.5, 0.0, -3.0, f64::NAN] {
            let s = BackoffStrategy::SocketIo { min_ms: 1000, max_ms: 5000, factor, randomization: 0.0 };
            assert_eq!(s.delay_ms(0, &mut rng), 1000);
            assert_eq!(s.delay_ms(u32::MAX, &mut rng), 1000);
        }
        // min above max: max wins, jitter still applies below it.
        let s = BackoffStrategy::SocketIo { min_ms: 9000, max_ms: 2000, factor: 2.0, randomization: 0.5 };
        for _ in 0..100 {
            assert!((1000..=2000).contains(&s.delay_ms(0, &mut rng)));
        }
        // Randomization out of range is clamped; NaN means no jitter.
        let s = BackoffStrategy::SocketIo { min_ms: 1000, max_ms: 5000, factor: 2.0, randomization: f64::NAN };
        assert_eq!(s.delay_ms(1, &mut rng), 2000);
        let s = BackoffStrategy::SocketIo { min_ms: 1000, max_ms: 5000, factor: 2.0, randomization: 7.0 };
        for _ in 0..100 {
            assert!(s.delay_ms(0, &mut rng) <= 2000);
        }
        // min 0 or max 0 give 0, not NaN.
        let s = BackoffStrategy::SocketIo { min_ms: 0, max_ms: 5000, factor: 2.0, randomization: 0.5 };
        assert_eq!(s.delay_ms(u32::MAX, &mut rng), 0);
        let s = BackoffStrategy::SocketIo { min_ms: 1000, max_ms: 0, factor: 2.0, randomization: 0.5 };
        assert_eq!(s.delay_ms(3, &mut rng), 0);
        let s = BackoffStrategy::FullJitter { min_ms: 0, max_ms: 5000, factor: f64::NAN };
        assert_eq!(s.delay_ms(u32::MAX, &mut rng), 0);
    }

    #[test]
    fn full_jitter_stays_within_cap_and_averages_half() {
        let s = BackoffStrategy::FullJitter { min_ms: 100, max_ms: 10_000, factor: 2.0 };
        let mut rng = Rng::new(77);
        for (attempt, cap) in
            [(0u32, 100u64), (1, 200), (3, 800), (6, 6400), (7, 10_000), (40, 10_000), (u32::MAX, 10_000)]
        {
            let n = 20_000u32;
            let mut sum = 0u64;
            let mut hit_top = false;
            for _ in 0..n {
                let d = s.delay_ms(attempt, &mut rng);
                assert!(d <= cap, "attempt {attempt}: {d} > {cap}");
                hit_top |= d == cap;
                sum += d;
            }
            let mean = sum as f64 / f64::from(n);
            let half = cap as f64 / 2.0;
            assert!((mean - half).abs() < half * 0.05, "attempt {attempt}: mean {mean}, cap {cap}");
            if cap <= 1000 {
                assert!(hit_top, "attempt {attempt}: the cap itself is reachable");
            }
        }
    }

    #[test]
    fn validate_rejects_bad_settings() {
        assert_eq!(BackoffStrategy::default().validate(), Ok(()));
        assert_eq!(BackoffStrategy::FullJitter { min_ms: 0, max_ms: 1, factor: 0.5 }.validate(), Ok(()));
        let bad = [
            BackoffStrategy::SocketIo { min_ms: 1, max_ms: 5, factor: f64::NAN, randomization: 0.5 },
            BackoffStrategy::SocketIo { min_ms: 1, max_ms: 5, factor: -1.0, randomization: 0.5 },
            BackoffStrategy::SocketIo { min_ms: 1, max_ms: 5, factor: f64::INFINITY, randomization: 0.5 },
            BackoffStrategy::SocketIo { min_ms: 1, max_ms: 5, factor: 2.0, randomization: 1.5 },
            BackoffStrategy::SocketIo { min_ms: 1, max_ms: 5, factor: 2.0, randomization: -0.1 },
            BackoffStrategy::SocketIo { min_ms: 1, max_ms: 5, factor: 2.0, randomization: f64::NAN },
            BackoffStrategy::SocketIo { min_ms: 1, max_ms: 0, factor: 2.0, randomization: 0.5 },
            BackoffStrategy::FullJitter { min_ms: 1, max_ms: 0, factor: 2.0 },
            BackoffStrategy::FullJitter { min_ms: 1, max_ms: 5, factor: f64::NAN },
            BackoffStrategy::FullJitter { min_ms: 1, max_ms: 5, factor: -2.0 },
        ];
        for s in bad {
            assert!(s.validate().is_err(), "{s:?}");
        }
    }
}
