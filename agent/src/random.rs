//! Randomness for jitter and backoff, behind a trait so tests can fix it.

use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};

/// Picks random durations.
pub trait Random: Send + Sync {
    /// A duration uniformly distributed in `0..=max`.
    fn up_to(&self, max: Duration) -> Duration;
}

/// Randomness from the operating system (via `ring`).
#[derive(Debug)]
pub struct OsRandom {
    rng: SystemRandom,
}

impl Default for OsRandom {
    fn default() -> Self {
        OsRandom::new()
    }
}

impl OsRandom {
    pub fn new() -> Self {
        OsRandom {
            rng: SystemRandom::new(),
        }
    }
}

impl Random for OsRandom {
    fn up_to(&self, max: Duration) -> Duration {
        let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
        if max_ms == 0 {
            return Duration::ZERO;
        }
        let mut buf = [0u8; 8];
        // Jitter is not security-relevant: if the OS cannot give us random
        // bytes we fall back to no jitter rather than failing.
        if self.rng.fill(&mut buf).is_err() {
            return Duration::ZERO;
        }
        let r = u64::from_le_bytes(buf);
        let ms = match max_ms.checked_add(1) {
            Some(m) => r % m,
            None => r,
        };
        Duration::from_millis(ms)
    }
}

/// A "random" source that always picks the same fraction of the range; for tests.
#[derive(Debug, Clone, Copy)]
pub struct FixedFraction(pub f64);

impl Random for FixedFraction {
    fn up_to(&self, max: Duration) -> Duration {
        max.mul_f64(self.0.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_random_stays_within_its_bound() {
        let r = OsRandom::new();
        assert_eq!(r.up_to(Duration::ZERO), Duration::ZERO);
        for _ in 0..200 {
            assert!(r.up_to(Duration::from_secs(3)) <= Duration::from_secs(3));
        }
        // With 200 draws over 3001 values, all equal would mean no randomness.
        let draws: std::collections::BTreeSet<_> =
            (0..50).map(|_| r.up_to(Duration::from_secs(3))).collect();
        assert!(draws.len() > 1);
    }

    #[test]
    fn fixed_fraction_is_a_fraction_of_the_range() {
        assert_eq!(
            FixedFraction(0.5).up_to(Duration::from_secs(10)),
            Duration::from_secs(5)
        );
        assert_eq!(
            FixedFraction(2.0).up_to(Duration::from_secs(10)),
            Duration::from_secs(10)
        );
    }
}
