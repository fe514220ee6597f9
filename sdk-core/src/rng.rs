//! A small seeded PRNG (SplitMix64). Backoff jitter, cache-busting `t=` values and idempotency
//! keys come from here, never from the OS, so the core stays deterministic under test: the driver
//! passes a random seed once ([`crate::Config::seed`]) and everything after that is reproducible.
//!
//! SplitMix64 (Steele, Lea and Flood, 2014) passes BigCrush, has a full 2^64 period and needs one
//! word of state. It is not cryptographically secure and need not be: nothing it produces is a
//! secret.

/// A seeded pseudo-random generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

/// The 64 characters tokens are drawn from (URL-safe, no escaping needed in a query string).
const TOKEN_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

impl Rng {
    /// A generator seeded with `seed`; the same seed always yields the same sequence.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 bits of precision (every value is a multiple of 2^-53).
    pub fn next_f64(&mut self) -> f64 {
        // The top 53 bits fit the mantissa exactly, so the result can never round up to 1.0.
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n`; 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Lemire's multiply-shift without the rejection step: the bias is below n / 2^64, far
        // under anything jitter or token generation could notice. The shift leaves a value < n.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// `len` random characters from `[A-Za-z0-9_-]` (6 bits of entropy each).
    pub fn token(&mut self, len: usize) -> String {
        let mut out = String::with_capacity(len);
        let mut bits = 0u64;
        let mut left = 0u32;
        for _ in 0..len {
            // Ten 6-bit characters per 64-bit draw.
            if left == 0 {
                bits = self.next_u64();
                left = 10;
            }
            let idx = (bits & 63) as usize;
            bits >>= 6;
            left -= 1;
            // `idx` is below 64, the alphabet's length; the fallback is unreachable.
            out.push(TOKEN_ALPHABET.get(idx).map_or('_', |&c| char::from(c)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_reference_values() {
        // First outputs of SplitMix64 seeded with 0 (reference implementation by S. Vigna).
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(r.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn same_seed_same_sequence() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            assert_eq!(a.next_f64().to_bits(), b.next_f64().to_bits());
            assert_eq!(a.below(1000), b.below(1000));
        }
        assert_eq!(a.token(40), b.token(40));
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    #[test]
    fn f64_is_in_unit_interval_and_spread() {
        let mut r = Rng::new(42);
        let n = 100_000;
        let mut sum = 0.0;
        for _ in 0..n {
            let f = r.next_f64();
            assert!((0.0..1.0).contains(&f));
            sum += f;
        }
        let mean = sum / f64::from(n);
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
    }

    #[test]
    fn below_is_in_range_and_covers_it() {
        let mut r = Rng::new(3);
        assert_eq!(r.below(0), 0);
        assert_eq!(r.below(1), 0);
        let mut seen = [false; 10];
        for _ in 0..10_000 {
            let v = r.below(10);
            assert!(v < 10);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        for _ in 0..1000 {
            assert!(r.below(u64::MAX) < u64::MAX);
        }
    }

    #[test]
    fn tokens_use_the_url_safe_alphabet() {
        let mut r = Rng::new(9);
        assert_eq!(r.token(0), "");
        for len in [1, 7, 10, 11, 64] {
            let t = r.token(len);
            assert_eq!(t.len(), len);
            assert!(t.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-'), "{t}");
        }
        // All 64 characters show up eventually.
        let many = r.token(10_000);
        let mut distinct: Vec<char> = many.chars().collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 64);
        assert_ne!(r.token(16), r.token(16));
    }
}
