//! Jittered exponential backoff for retrying uploads.
//!
//! The n-th consecutive failure waits `base/2 + random(0..=base/2)` where
//! `base = min(max, initial · 2ⁿ)`: doubling, never above `max`, and spread
//! so that many agents do not retry in step.

use std::sync::Arc;
use std::time::Duration;

use crate::random::Random;

/// Retry delays.
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
    random: Arc<dyn Random>,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration, random: Arc<dyn Random>) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            failures: 0,
            random,
        }
    }

    /// The delay before the next retry; each call counts one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        let base = self
            .initial
            .checked_mul(factor)
            .unwrap_or(self.max)
            .min(self.max);
        self.failures = self.failures.saturating_add(1);
        base / 2 + self.random.up_to(base / 2)
    }

    /// Forgets past failures (after a success).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The longest delay.
    pub fn max(&self) -> Duration {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::FixedFraction;

    #[test]
    fn delays_double_up_to_the_cap_and_reset_after_success() {
        let mut b = Backoff::new(
            Duration::from_secs(1),
            Duration::from_secs(10),
            Arc::new(FixedFraction(1.0)),
        );
        let d: Vec<u64> = (0..7).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(d, vec![1, 2, 4, 8, 10, 10, 10]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_secs(1));
    }

    #[test]
    fn jitter_keeps_delays_between_half_and_full_base() {
        let mut lo = Backoff::new(
            Duration::from_secs(4),
            Duration::from_secs(60),
            Arc::new(FixedFraction(0.0)),
        );
        assert_eq!(lo.next_delay(), Duration::from_secs(2));
        for _ in 0..100 {
            assert!(lo.next_delay() <= Duration::from_secs(60));
        }
        assert_eq!(lo.next_delay(), Duration::from_secs(30));
    }
}
