//! Token buckets: the internal emit API per API key (a token per event: a batch takes one per
//! event it holds), the demo endpoints and failed API-key attempts per client address. Over the limit, a request gets `429` with `Retry-After`.
//!
//! The client address is the TCP peer's: behind a reverse proxy every request shares the
//! proxy's address (this server does not trust `X-Forwarded-For`); rate-limit at the proxy then.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Buckets kept per limiter; past that, full (idle) buckets are dropped, and if that is not
/// enough, all of them.
const MAX_BUCKETS: usize = 10_000;

/// A rate: `per_sec` requests a second on average, up to `burst` at once. `0` is no limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_sec: f64,
    /// Bucket size.
    pub burst: f64,
}

impl Rate {
    /// No limit.
    pub const UNLIMITED: Rate = Rate { per_sec: 0.0, burst: 0.0 };

    /// `RATE` or `RATE/BURST` (requests a second; the burst defaults to twice the rate), or `0`
    /// / `off` for no limit.
    pub fn parse(s: &str) -> Result<Rate, String> {
        let bad = || format!("{s:?} is not a rate: RATE or RATE/BURST (requests a second), or off");
        let s = s.trim();
        if s == "off" {
            return Ok(Rate::UNLIMITED);
        }
        let (rate, burst) = match s.split_once('/') {
            Some((r, b)) => {
                (r.trim().parse::<f64>().map_err(|_| bad())?, Some(b.trim().parse::<f64>().map_err(|_| bad())?))
            }
            None => (s.parse::<f64>().map_err(|_| bad())?, None),
        };
        let burst = burst.unwrap_or(rate * 2.0);
        if !rate.is_finite() || !burst.is_finite() || rate < 0.0 || (rate > 0.0 && burst < 1.0) {
            return Err(bad());
        }
        Ok(if rate == 0.0 { Rate::UNLIMITED } else { Rate { per_sec: rate, burst } })
    }

    fn unlimited(&self) -> bool {
        self.per_sec <= 0.0
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One limiter: a bucket per key.
#[derive(Debug)]
pub struct Limiter {
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limiter {
    /// A limiter at `rate`.
    pub fn new(rate: Rate) -> Self {
        Limiter { rate, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes a token for `key`, or says how long until one is there.
    pub fn take(&self, key: &str) -> Result<(), Duration> {
        self.take_n(key, 1)
    }

    /// Takes `n` tokens for `key` at once (a batch of `n` events), or says how long until they
    /// are there. More than the burst goes through once the bucket is full and leaves it in debt
    /// (`n` is counted all the same), so a batch larger than the burst is slowed, never refused
    /// for ever.
    pub fn take_n(&self, key: &str, n: usize) -> Result<(), Duration> {
        if self.rate.unlimited() {
            return Ok(());
        }
        let Ok(mut buckets) = self.buckets.lock() else { return Ok(()) };
        let (now, rate) = (Instant::now(), self.rate);
        let refill = |b: &mut Bucket| {
            b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate.per_sec).min(rate.burst);
            b.at = now;
        };
        if !buckets.contains_key(key) && buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, b| {
                refill(b);
                b.tokens < rate.burst
            });
            if buckets.len() >= MAX_BUCKETS {
                tracing::warn!(buckets = buckets.len(), "too many rate-limit buckets; starting over");
                buckets.clear();
            }
        }
        let b = buckets.entry(key.to_string()).or_insert(Bucket { tokens: rate.burst, at: now });
        refill(b);
        let n = n as f64;
        let needed = n.min(rate.burst);
        if b.tokens >= needed {
            b.tokens -= n;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((needed - b.tokens) / rate.per_sec))
        }
    }
}

/// The server's limiters.
#[derive(Debug)]
pub struct Limits {
    /// `POST /internal/emit` and `/internal/v1/emit/batch`, per API key: a token per event.
    pub emit: Limiter,
    /// The demo endpoints (`/api/dev/login`, `/api/dev/tasks`) and requests with a wrong or
    /// missing API key, per client address.
    pub per_ip: Limiter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        assert_eq!(Rate::parse("10/50"), Ok(Rate { per_sec: 10.0, burst: 50.0 }));
        assert_eq!(Rate::parse("0.5"), Ok(Rate { per_sec: 0.5, burst: 1.0 }));
        assert_eq!(Rate::parse("off"), Ok(Rate::UNLIMITED));
        assert_eq!(Rate::parse("0"), Ok(Rate::UNLIMITED));
        assert!(Rate::parse("fast").is_err());
        assert!(Rate::parse("-1").is_err());
        assert!(Rate::parse("5/0").is_err());
    }

    #[tokio::test]
    async fn a_bucket_refills_at_its_rate() {
        let l = Limiter::new(Rate { per_sec: 20.0, burst: 3.0 });
        for _ in 0..3 {
            assert_eq!(l.take("a"), Ok(()));
        }
        let wait = l.take("a").unwrap_err();
        assert!(wait <= Duration::from_millis(50) && wait > Duration::from_millis(40), "{wait:?}");
        assert_eq!(l.take("b"), Ok(()), "buckets are per key");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(l.take("a"), Ok(()));
        tokio::time::sleep(Duration::from_millis(500)).await;
        for _ in 0..3 {
            assert_eq!(l.take("a"), Ok(()), "refilled up to the burst, no more");
        }
        assert!(l.take("a").is_err());
        assert_eq!(Limiter::new(Rate::UNLIMITED).take("a"), Ok(()));
    }

    #[tokio::test]
    async fn a_batch_takes_a_token_per_event_and_may_go_into_debt() {
        let l = Limiter::new(Rate { per_sec: 10.0, burst: 5.0 });
        assert_eq!(l.take_n("a", 3), Ok(()));
        let wait = l.take_n("a", 3).unwrap_err();
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100), "one token short: {wait:?}");
        assert_eq!(l.take_n("a", 2), Ok(()));
        tokio::time::sleep(Duration::from_millis(520)).await;
        // Full again: a batch above the burst goes through, and the debt is paid back in time.
        assert_eq!(l.take_n("a", 8), Ok(()));
        let wait = l.take("a").unwrap_err();
        assert!(wait > Duration::from_millis(350) && wait <= Duration::from_millis(400), "3 in debt: {wait:?}");
    }
}
