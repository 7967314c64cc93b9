//! Vulnerability and end-of-life feeds, and matching host inventories
//! against them (DESIGN §2 `patch.*`, §3 `feed import` / `match`).
//!
//! Every feed arrives as a file (the server has no internet):
//! * [`osv`] reads OSV records (one JSON document each) and keeps the
//!   distribution ecosystems that matter; [`zipread`] streams a vendor
//!   `all.zip` one entry at a time;
//! * [`kev`] reads the CISA Known Exploited Vulnerabilities catalogue;
//! * [`epss`] reads FIRST's EPSS scores (CSV, optionally gzip-compressed);
//! * [`eol`] reads end-of-life dates: trustwatch's own JSON format (a
//!   snapshot ships in `server/data/eol.json`) and endoflife.date product
//!   files;
//! * [`import`] detects a file's kind, writes it to the store atomically and
//!   records the import;
//! * [`ecosystem`] maps an OS identity to advisory ecosystems, a version
//!   scheme and the package name vendors key on;
//! * [`matcher`] is pure: inventory + feed data + clock + policy → findings.

use serde::{Deserialize, Serialize};

pub mod ecosystem;
pub mod eol;
pub mod epss;
pub mod import;
pub mod kev;
pub mod matcher;
pub mod osv;
pub mod zipread;

/// The collector name of server-side findings (`Finding::collector`).
pub const MATCH_COLLECTOR: &str = "match";

/// The kinds of feed `feed import` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedKind {
    Osv,
    Kev,
    Epss,
    Eol,
}

impl FeedKind {
    pub const ALL: [FeedKind; 4] = [FeedKind::Osv, FeedKind::Kev, FeedKind::Epss, FeedKind::Eol];

    pub fn as_str(self) -> &'static str {
        match self {
            FeedKind::Osv => "osv",
            FeedKind::Kev => "kev",
            FeedKind::Epss => "epss",
            FeedKind::Eol => "eol",
        }
    }

    pub fn parse(s: &str) -> Option<FeedKind> {
        FeedKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for FeedKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event of an OSV `ECOSYSTEM` range, stored as OSV writes it
/// (`{"introduced": "0"}`, `{"fixed": "1.2-3"}`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

impl Event {
    pub fn version(&self) -> &str {
        match self {
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v,
        }
    }
}

/// One `affected` entry of an advisory, reduced to what matching needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedPackage {
    /// The normalised ecosystem key looked up at match time (see
    /// [`ecosystem::normalise`]), e.g. `Debian:12`, `Red Hat:9`.
    pub ecosystem: String,
    /// The ecosystem as the record wrote it.
    pub ecosystem_raw: String,
    /// The package name as the vendor keys it (source name for Debian,
    /// Ubuntu and Alpine; binary RPM name for the EL family).
    pub package: String,
    /// `ECOSYSTEM` ranges, each a list of events in record order.
    pub ranges: Vec<Vec<Event>>,
    /// Explicitly listed affected versions.
    pub versions: Vec<String>,
}

/// One advisory as stored: identity, dates, CVEs and the affected packages
/// in the ecosystems trustwatch keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advisory {
    pub id: String,
    /// `modified`, unix milliseconds: a re-import replaces a stored record
    /// only when this is newer.
    pub modified: i64,
    pub published: Option<i64>,
    /// Set when the record is withdrawn: it is stored but never matched.
    pub withdrawn: Option<i64>,
    pub summary: String,
    /// CVE ids from the id, `aliases`, `upstream` and `related`, normalised
    /// (`UBUNTU-CVE-2024-6387` → `CVE-2024-6387`), sorted, unique.
    pub cves: Vec<String>,
    pub affected: Vec<AffectedPackage>,
}

/// What the estate pays for, deciding which end-of-support date counts and
/// which advisory streams apply (the server config's `[eol]` section).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Ubuntu Pro: ESM counts as support and `Ubuntu:Pro:…` advisories apply.
    pub ubuntu_pro: bool,
    /// Windows Extended Security Updates count as support.
    pub windows_esu: bool,
}

/// Deepest JSON nesting accepted in a feed document (real OSV records nest
/// under ten levels).
pub const MAX_JSON_DEPTH: usize = 64;

/// Checks, in one pass over the bytes and without recursion, that JSON
/// arrays and objects nest at most `max` deep; `Err(offset)` where the
/// limit is first passed. Strings (with escapes) are skipped, so brackets
/// inside them do not count. Refusing a nesting bomb here keeps every later
/// parse, including of fields that are otherwise ignored, shallow.
pub fn check_json_depth(bytes: &[u8], max: usize) -> Result<(), usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_measured_outside_strings_only() {
        assert!(check_json_depth(br#"{"a":[[1]]}"#, 3).is_ok());
        assert_eq!(check_json_depth(br#"{"a":[[1]]}"#, 2), Err(6));
        assert!(check_json_depth(br#"{"a":"[[[[\"[[["}"#, 1).is_ok());
        let bomb = "[".repeat(100_000);
        assert_eq!(check_json_depth(bomb.as_bytes(), MAX_JSON_DEPTH), Err(64));
    }
}

/// Generators the feed decoders' property tests share.
#[cfg(test)]
pub(crate) mod testgen {
    use proptest::prelude::*;
    use time::Date;

    /// Any calendar day of a four-digit year.
    pub fn date() -> impl Strategy<Value = Date> {
        let lo = Date::MIN.to_julian_day().max(1_721_060); // 0000-01-01
        let hi = Date::MAX.to_julian_day().min(5_373_484); // 9999-12-31
        (lo..=hi).prop_map(|j| Date::from_julian_day(j).unwrap_or(Date::MIN))
    }

    pub fn ymd(d: Date) -> String {
        format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
    }

    /// `YYYY-MM-DD` shapes that are not calendar days (or not the shape).
    pub fn bad_date() -> impl Strategy<Value = String> {
        prop_oneof![
            (1900i32..2100, 0u8..=15, 0u8..=40)
                .prop_filter("not a calendar day", |(y, m, d)| {
                    time::Month::try_from(*m)
                        .ok()
                        .and_then(|m| Date::from_calendar_date(*y, m, *d).ok())
                        .is_none()
                })
                .prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
            Just("2025-02-30".to_owned()),
            Just("2023-02-29".to_owned()),
            Just("2025-8-25".to_owned()),
            Just("2025/08/25".to_owned()),
            Just("+025-08-25".to_owned()),
            Just("2025-08-25T00:00:00Z".to_owned()),
            Just("２０２５-08-25".to_owned()),
            Just(String::new()),
        ]
    }
}
