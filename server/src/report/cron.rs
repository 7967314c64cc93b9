//! Cron schedules of `[[reports]]`: a small, total parser of the classic
//! five-field syntax and the slot arithmetic the scheduler needs. Always
//! UTC. Parsing never panics, whatever the text; every accepted expression
//! matches at least one minute (a day that never exists, like `30 2` of
//! February, is refused).
//!
//! The subset understood:
//! * five fields separated by blanks: minute (0-59), hour (0-23), day of
//!   month (1-31), month (1-12 or `jan`-`dec`), day of week (0-7, 0 and 7
//!   are Sunday, or `sun`-`sat`); names are case-insensitive;
//! * each field is a comma-separated list of items; an item is `*`, `N`,
//!   `N-M` (N ≤ M), each optionally followed by `/STEP` (STEP ≥ 1); `N/STEP`
//!   means `N-<field maximum>/STEP`;
//! * the shorthands `@hourly`, `@daily` (`@midnight`), `@weekly`,
//!   `@monthly`, `@yearly` (`@annually`);
//! * as in Vixie cron, when both day fields are restricted (neither starts
//!   with `*`), a day matches if *either* matches; otherwise both must.
//!
//! Not supported (refused): `L`, `W`, `#`, `?`, seconds or year fields,
//! `@reboot`, time zones. A slot is a whole minute (second 0, UTC).

use std::fmt;
use std::str::FromStr;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    text: String,
    minutes: u64,
    hours: u32,
    /// Bits 1..=31.
    days: u32,
    /// Bits 1..=12.
    months: u16,
    /// Bits 0..=6, Sunday = 0.
    weekdays: u8,
    days_star: bool,
    weekdays_star: bool,
}

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CronError {
    #[error("expected 5 fields (minute hour day-of-month month day-of-week), found {0}")]
    FieldCount(usize),
    #[error("unknown shorthand {0:?} (expected @hourly, @daily, @weekly, @monthly or @yearly)")]
    Shorthand(String),
    #[error("{field}: {reason}")]
    Field { field: &'static str, reason: String },
    #[error("the schedule never matches a day that exists")]
    Never,
}

struct Spec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: Spec = Spec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Spec = Spec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY: Spec = Spec {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Spec = Spec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const WEEKDAY: Spec = Spec {
    name: "day of week",
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

impl Spec {
    fn err(&self, reason: impl Into<String>) -> CronError {
        CronError::Field {
            field: self.name,
            reason: reason.into(),
        }
    }

    fn value(&self, s: &str) -> Result<u32, CronError> {
        if !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit()) {
            let v: u32 = s.parse().map_err(|_| self.err(format!("{s:?}")))?;
            if v < self.min || v > self.max {
                return Err(self.err(format!("{v} is outside {}-{}", self.min, self.max)));
            }
            return Ok(v);
        }
        let lower = s.to_ascii_lowercase();
        match self.names.iter().position(|n| *n == lower) {
            // Months are numbered from 1 (their minimum), weekdays from 0.
            Some(i) => Ok(i as u32 + self.min),
            None => Err(self.err(format!("{s:?} is not a value"))),
        }
    }

    /// The bit set of a field, and whether it starts with `*`.
    fn parse(&self, field: &str) -> Result<(u64, bool), CronError> {
        let mut bits = 0u64;
        for item in field.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => {
                    let step = match s.parse::<u32>() {
                        Ok(n) if n >= 1 && s.len() <= 3 => n,
                        _ => return Err(self.err(format!("bad step {s:?}"))),
                    };
                    (r, Some(step))
                }
                None => (item, None),
            };
            let (lo, hi) = if range == "*" {
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                let (a, b) = (self.value(a)?, self.value(b)?);
                if a > b {
                    return Err(self.err(format!("range {range:?} runs backwards")));
                }
                (a, b)
            } else {
                let a = self.value(range)?;
                (a, if step.is_some() { self.max } else { a })
            };
            let step = step.unwrap_or(1);
            let mut v = lo;
            while v <= hi {
                bits |= 1 << v;
                v += step;
            }
        }
        Ok((bits, field.starts_with('*')))
    }
}

fn month_number(m: Month) -> u32 {
    u32::from(u8::from(m))
}

/// Longest a month can be (February: 29).
fn max_days(month: u32) -> u32 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Cron {
    /// Parses a schedule (see the module doc for the subset).
    pub fn parse(text: &str) -> Result<Cron, CronError> {
        let trimmed = text.trim();
        let expanded = match trimmed.strip_prefix('@') {
            Some(name) => match name.to_ascii_lowercase().as_str() {
                "hourly" => "0 * * * *",
                "daily" | "midnight" => "0 0 * * *",
                "weekly" => "0 0 * * 0",
                "monthly" => "0 0 1 * *",
                "yearly" | "annually" => "0 0 1 1 *",
                _ => return Err(CronError::Shorthand(trimmed.to_owned())),
            },
            None => trimmed,
        };
        let fields: Vec<&str> = expanded.split_ascii_whitespace().collect();
        let [mi, h, d, mo, w] = fields[..] else {
            return Err(CronError::FieldCount(fields.len()));
        };
        let (minutes, _) = MINUTE.parse(mi)?;
        let (hours, _) = HOUR.parse(h)?;
        let (days, days_star) = DAY.parse(d)?;
        let (months, _) = MONTH.parse(mo)?;
        let (mut weekdays, weekdays_star) = WEEKDAY.parse(w)?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & 0x7f;
        }
        let cron = Cron {
            text: trimmed.to_owned(),
            minutes,
            // The bit sets were built within each field's range.
            hours: (hours & 0x00ff_ffff) as u32,
            days: (days & 0xffff_fffe) as u32,
            months: (months & 0x1ffe) as u16,
            weekdays: (weekdays & 0x7f) as u8,
            days_star,
            weekdays_star,
        };
        if !cron.satisfiable() {
            return Err(CronError::Never);
        }
        Ok(cron)
    }

    /// The text as given (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether some day of some selected month can match.
    fn satisfiable(&self) -> bool {
        let day_limited = !self.days_star && self.weekdays_star;
        if !day_limited {
            // A weekday (or every day) occurs in every month.
            return true;
        }
        (1..=12u32).any(|m| {
            self.months & (1 << m) != 0 && (1..=max_days(m)).any(|d| self.days & (1 << d) != 0)
        })
    }

    fn day_matches(&self, d: Date) -> bool {
        if self.months & (1 << month_number(d.month())) == 0 {
            return false;
        }
        let dom = self.days & (1 << u32::from(d.day())) != 0;
        let dow = self.weekdays & (1 << d.weekday().number_days_from_sunday()) != 0;
        if !self.days_star && !self.weekdays_star {
            dom || dow
        } else {
            dom && dow
        }
    }

    /// True when `t` (to the minute, UTC) is a slot.
    pub fn matches(&self, t: OffsetDateTime) -> bool {
        let t = t.to_offset(UtcOffset::UTC);
        self.day_matches(t.date())
            && self.hours & (1 << t.hour()) != 0
            && self.minutes & (1 << t.minute()) != 0
    }

    /// The slots of one day, in order (minutes after midnight).
    fn times(&self) -> impl DoubleEndedIterator<Item = u32> + '_ {
        (0..24u32)
            .filter(|h| self.hours & (1 << h) != 0)
            .flat_map(move |h| {
                (0..60u32)
                    .filter(move |m| self.minutes & (1 << m) != 0)
                    .map(move |m| h * 60 + m)
            })
    }

    /// Days searched before giving up: one whole Gregorian cycle (400
    /// years), within which every date that exists falls on every day of
    /// the week. A restricted day of week narrows a date to rare years
    /// (31 January on a Sunday: gaps of up to 11 years; 29 February on a
    /// Sunday: up to 40 across 2100), so a shorter horizon would lose
    /// schedules the parser accepted.
    const HORIZON_DAYS: u32 = 146_097;

    /// The first slot strictly after `t`, if any within the horizon.
    pub fn next_after(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        let t = t.to_offset(UtcOffset::UTC);
        let mut day = t.date();
        // Minutes after midnight of `t`; a slot must be later than this
        // minute on the first day (seconds make the minute itself past).
        let after = u32::from(t.hour()) * 60 + u32::from(t.minute());
        for i in 0..Self::HORIZON_DAYS {
            if self.day_matches(day) {
                let first = self.times().find(|m| i > 0 || *m > after);
                if let Some(m) = first {
                    return at(day, m);
                }
            }
            day = day.next_day()?;
        }
        None
    }

    /// The last slot at or before `t`, if any within the horizon.
    pub fn at_or_before(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        let t = t.to_offset(UtcOffset::UTC);
        let mut day = t.date();
        let upto = u32::from(t.hour()) * 60 + u32::from(t.minute());
        for i in 0..Self::HORIZON_DAYS {
            if self.day_matches(day) {
                let last = self.times().rev().find(|m| i > 0 || *m <= upto);
                if let Some(m) = last {
                    return at(day, m);
                }
            }
            day = day.previous_day()?;
        }
        None
    }
}

fn at(day: Date, minutes: u32) -> Option<OffsetDateTime> {
    let time = Time::from_hms((minutes / 60) as u8, (minutes % 60) as u8, 0).ok()?;
    Some(PrimitiveDateTime::new(day, time).assume_utc())
}

impl FromStr for Cron {
    type Err = CronError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cron::parse(s)
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::parse_rfc3339;
    use proptest::prelude::*;

    fn t(s: &str) -> OffsetDateTime {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn weekly_monday_six_fires_on_mondays_at_six() {
        let c = Cron::parse("0 6 * * mon").unwrap();
        // 2025-10-01 is a Wednesday.
        assert_eq!(
            c.next_after(t("2025-10-01T12:00:00Z")),
            Some(t("2025-10-06T06:00:00Z"))
        );
        assert_eq!(
            c.next_after(t("2025-10-06T06:00:00Z")),
            Some(t("2025-10-13T06:00:00Z"))
        );
        assert_eq!(
            c.at_or_before(t("2025-10-06T06:00:59Z")),
            Some(t("2025-10-06T06:00:00Z"))
        );
        assert_eq!(
            c.at_or_before(t("2025-10-06T05:59:59Z")),
            Some(t("2025-09-29T06:00:00Z"))
        );
    }

    #[test]
    fn lists_ranges_steps_and_names_are_understood() {
        let c = Cron::parse("*/15 8-17/3 1,15 JAN-mar,dec *").unwrap();
        assert!(c.matches(t("2025-01-15T11:45:00Z")));
        assert!(c.matches(t("2025-12-01T08:00:00Z")));
        assert!(!c.matches(t("2025-01-15T12:00:00Z")));
        assert!(!c.matches(t("2025-04-01T08:00:00Z")));
        assert!(!c.matches(t("2025-01-02T08:00:00Z")));
        let c = Cron::parse("5/20 * * * *").unwrap();
        assert!(c.matches(t("2025-01-01T00:45:00Z")));
        assert!(!c.matches(t("2025-01-01T00:40:00Z")));
        // 7 is Sunday too.
        let c = Cron::parse("0 0 * * 7").unwrap();
        assert!(c.matches(t("2025-10-05T00:00:00Z")));
    }

    #[test]
    fn both_day_fields_restricted_means_either() {
        // The 13th, or any Friday.
        let c = Cron::parse("0 0 13 * fri").unwrap();
        assert!(c.matches(t("2025-10-13T00:00:00Z"))); // a Monday
        assert!(c.matches(t("2025-10-03T00:00:00Z"))); // a Friday
        assert!(!c.matches(t("2025-10-04T00:00:00Z")));
        // A starred day-of-month leaves the weekday alone in charge.
        let c = Cron::parse("0 0 */1 * fri").unwrap();
        assert!(!c.matches(t("2025-10-13T00:00:00Z")));
    }

    #[test]
    fn leap_day_schedule_finds_the_next_leap_year() {
        let c = Cron::parse("0 0 29 2 *").unwrap();
        assert_eq!(
            c.next_after(t("2025-03-01T00:00:00Z")),
            Some(t("2028-02-29T00:00:00Z"))
        );
        assert_eq!(
            c.next_after(t("2097-03-01T00:00:00Z")),
            Some(t("2104-02-29T00:00:00Z"))
        );
    }

    #[test]
    fn shorthands_expand() {
        let c = Cron::parse("@daily").unwrap();
        assert!(c.matches(t("2025-10-01T00:00:00Z")));
        assert!(Cron::parse("@weekly")
            .unwrap()
            .matches(t("2025-10-05T00:00:00Z")));
        assert!(Cron::parse("@reboot").is_err());
    }

    #[test]
    fn malformed_schedules_are_refused_with_the_field_named() {
        for (bad, field) in [
            ("60 * * * *", "minute"),
            ("* 24 * * *", "hour"),
            ("* * 0 * *", "day of month"),
            ("* * * 13 *", "month"),
            ("* * * * 8", "day of week"),
            ("*/0 * * * *", "minute"),
            ("5-1 * * * *", "minute"),
            ("a * * * *", "minute"),
            ("* * * foo *", "month"),
            ("1,,2 * * * *", "minute"),
            ("L * * * *", "minute"),
        ] {
            match Cron::parse(bad) {
                Err(CronError::Field { field: f, .. }) => assert_eq!(f, field, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert_eq!(Cron::parse("* * * *"), Err(CronError::FieldCount(4)));
        assert_eq!(Cron::parse(""), Err(CronError::FieldCount(0)));
        assert_eq!(Cron::parse("0 0 30 2 *"), Err(CronError::Never));
        // Found by the property test: 31 January on a Sunday comes only
        // every few years (2027, then 2038).
        let rare = Cron::parse("* * 31/1 */5 */7").unwrap();
        let from = time::macros::datetime!(2000-01-01 0:00 UTC);
        assert_eq!(
            rare.next_after(from),
            Some(time::macros::datetime!(2010-01-31 0:00 UTC))
        );
        assert_eq!(Cron::parse("0 0 31 4,6 *"), Err(CronError::Never));
    }

    fn field(max: u32, min: u32) -> impl Strategy<Value = String> {
        let item = prop_oneof![
            Just("*".to_owned()),
            (min..=max).prop_map(|v| v.to_string()),
            (min..=max, min..=max).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
            (1u32..=12).prop_map(|s| format!("*/{s}")),
            (min..=max, 1u32..=7).prop_map(|(a, s)| format!("{a}/{s}")),
        ];
        proptest::collection::vec(item, 1..4).prop_map(|v| v.join(","))
    }

    fn expr() -> impl Strategy<Value = String> {
        (
            field(59, 0),
            field(23, 0),
            field(31, 1),
            field(12, 1),
            field(7, 0),
        )
            .prop_map(|(a, b, c, d, e)| format!("{a} {b} {c} {d} {e}"))
    }

    fn instant() -> impl Strategy<Value = OffsetDateTime> {
        // 2000-01-01 .. 2100-01-01, any second.
        (946_684_800i64..4_102_444_800i64)
            .prop_map(|s| OffsetDateTime::from_unix_timestamp(s).unwrap())
    }

    /// The minute-by-minute answer within `limit` minutes after `t`.
    fn brute_next(c: &Cron, t: OffsetDateTime, limit: i64) -> Option<OffsetDateTime> {
        let start = t.replace_second(0).unwrap().replace_nanosecond(0).unwrap();
        (1..=limit)
            .map(|i| start + time::Duration::minutes(i))
            .find(|x| c.matches(*x))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn parsing_any_text_never_panics(s in "\\PC{0,40}") {
            let _ = Cron::parse(&s);
        }

        #[test]
        fn parsing_cron_like_text_never_panics(s in "[0-9*/,a-zA-Z@ -]{0,30}") {
            let _ = Cron::parse(&s);
        }

        #[test]
        fn next_slot_is_later_matches_and_nothing_matches_in_between(e in expr(), t in instant()) {
            let Ok(c) = Cron::parse(&e) else { return Ok(()) };
            let next = c.next_after(t);
            // Every accepted schedule fires within the horizon.
            prop_assert!(next.is_some(), "{e} from {t}");
            let next = next.unwrap();
            prop_assert!(next > t);
            prop_assert!(c.matches(next));
            prop_assert_eq!(next.second(), 0);
            // Nothing earlier matches (checked minute by minute up to 3 days).
            let limit = 3 * 24 * 60;
            match brute_next(&c, t, limit) {
                Some(b) => prop_assert_eq!(b, next, "{}", e),
                None => prop_assert!(next - t > time::Duration::minutes(limit - 1), "{}", e),
            }
        }

        #[test]
        fn previous_and_next_slots_bracket_any_instant(e in expr(), t in instant()) {
            let Ok(c) = Cron::parse(&e) else { return Ok(()) };
            let prev = c.at_or_before(t).unwrap();
            let next = c.next_after(t).unwrap();
            prop_assert!(prev <= t && t < next);
            prop_assert!(c.matches(prev));
            prop_assert_eq!(c.next_after(prev), Some(next));
            prop_assert_eq!(c.at_or_before(next), Some(next));
        }

        #[test]
        fn accepted_text_parses_again_to_the_same_schedule(e in expr()) {
            if let Ok(c) = Cron::parse(&e) {
                prop_assert_eq!(Cron::parse(&c.to_string()), Ok(c));
            }
        }
    }
}
