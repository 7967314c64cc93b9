//! The one clock every time-dependent value of the agent reads.
//!
//! Production code uses [`SystemClock`]; `scan … --now RFC3339` and the tests
//! use [`FixedClock`] so that output and verdicts are reproducible.

use time::OffsetDateTime;

/// A source of the current wall-clock time (UTC).
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> OffsetDateTime;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that always answers the same instant.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub OffsetDateTime);

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_answers_its_instant() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(FixedClock(t).now(), t);
        assert!(SystemClock.now() > t);
    }
}
