//! The one clock every time-dependent decision of the server reads: token
//! expiry, certificate validity (issued and verified), `received_at`, an
//! agent's `last_seen`.
//!
//! The real clock is the system time, unless `TRUSTWATCH_NOW` holds an
//! RFC 3339 instant: then the clock is frozen at that instant for the whole
//! process (tests and reproductions). Stored timestamps are unix milliseconds
//! (UTC); the API prints them as RFC 3339.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::UnixTime;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The environment variable that freezes the real clock.
pub const NOW_ENV: &str = "TRUSTWATCH_NOW";

/// A source of "now".
pub trait Clock: Debug + Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// Why the clock could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClockError {
    #[error("{NOW_ENV}={value:?} is not an RFC 3339 instant: {source}")]
    BadNow {
        value: String,
        source: time::error::Parse,
    },
}

/// The real clock: system time, or the instant in `TRUSTWATCH_NOW`.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    fixed: Option<OffsetDateTime>,
}

impl SystemClock {
    /// Reads `TRUSTWATCH_NOW` once; unset or empty means system time.
    pub fn from_env() -> Result<Self, ClockError> {
        match std::env::var(NOW_ENV) {
            Ok(v) if !v.trim().is_empty() => Ok(SystemClock {
                fixed: Some(
                    parse_rfc3339(v.trim()).map_err(|source| ClockError::BadNow {
                        value: v.clone(),
                        source,
                    })?,
                ),
            }),
            _ => Ok(SystemClock { fixed: None }),
        }
    }

    /// Plain system time, whatever the environment says.
    pub fn system() -> Self {
        SystemClock { fixed: None }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        self.fixed.unwrap_or_else(OffsetDateTime::now_utc)
    }
}

/// A clock tests move by hand.
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    pub fn new(at: OffsetDateTime) -> Self {
        ManualClock(Mutex::new(at))
    }

    pub fn set(&self, at: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Lets rustls verify client certificates against [`Clock`] rather than
/// the system time, so an agent certificate issued "now" by a frozen clock
/// is also valid "now" at the handshake.
#[derive(Debug)]
pub struct ClockTimeProvider(pub Arc<dyn Clock>);

impl rustls::time_provider::TimeProvider for ClockTimeProvider {
    fn current_time(&self) -> Option<UnixTime> {
        let secs = self.0.now().unix_timestamp();
        u64::try_from(secs)
            .ok()
            .map(|s| UnixTime::since_unix_epoch(Duration::from_secs(s)))
    }
}

/// Parses an RFC 3339 instant and normalises it to UTC.
pub fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, time::error::Parse> {
    OffsetDateTime::parse(s, &Rfc3339).map(|t| t.to_offset(time::UtcOffset::UTC))
}

/// Unix milliseconds, the stored form of every timestamp.
pub fn to_ms(t: OffsetDateTime) -> i64 {
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

/// The instant of stored unix milliseconds (clamped into `time`'s range).
pub fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// RFC 3339 text of stored unix milliseconds, in UTC (`…Z`).
pub fn fmt_ms(ms: i64) -> String {
    fmt_time(from_ms(ms))
}

/// RFC 3339 text of an instant, in UTC.
pub fn fmt_time(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_round_trip_through_rfc3339() {
        let t = parse_rfc3339("2025-10-09T08:53:20.123+02:00").unwrap();
        let ms = to_ms(t);
        assert_eq!(ms, 1_760_000_000_123 - 2 * 3600 * 1000);
        assert_eq!(fmt_ms(ms), "2025-10-09T06:53:20.123Z");
        assert_eq!(from_ms(ms), t);
    }

    #[test]
    fn manual_clock_moves_and_time_provider_follows_it() {
        use rustls::time_provider::TimeProvider;
        let t0 = parse_rfc3339("2030-01-01T00:00:00Z").unwrap();
        let clock = Arc::new(ManualClock::new(t0));
        let tp = ClockTimeProvider(clock.clone());
        assert_eq!(tp.current_time().unwrap().as_secs(), 1_893_456_000);
        clock.advance(Duration::from_secs(60));
        assert_eq!(tp.current_time().unwrap().as_secs(), 1_893_456_060);
    }

    #[test]
    fn time_provider_refuses_instants_before_the_epoch() {
        use rustls::time_provider::TimeProvider;
        let clock = Arc::new(ManualClock::new(
            parse_rfc3339("1960-01-01T00:00:00Z").unwrap(),
        ));
        assert!(ClockTimeProvider(clock).current_time().is_none());
    }
}
