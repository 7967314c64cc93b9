//! The CISA Known Exploited Vulnerabilities catalogue (JSON).
//!
//! Format: an object with `catalogVersion`, `dateReleased`, `count` and
//! `vulnerabilities`, a list of objects of which trustwatch keeps `cveID`,
//! `dateAdded`, `dueDate`, `knownRansomwareCampaignUse`, `vendorProject`,
//! `product` and `vulnerabilityName`. Invariants enforced: every `cveID` is
//! a well-formed CVE id, every `dateAdded`/`dueDate` a `YYYY-MM-DD` date,
//! `count` (when present) equals the list's length, at most
//! [`MAX_ENTRIES`] entries. A catalogue is a full snapshot: importing one
//! replaces the previous.

use serde::Deserialize;

use super::osv::{is_cve, Bounded};

/// Most entries accepted (the catalogue holds about 1,400 in 2025).
pub const MAX_ENTRIES: usize = 1_000_000;

/// Why a catalogue was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KevError {
    #[error("not a KEV catalogue: {0}")]
    Json(String),
    #[error("KEV entry {index}: {what}")]
    Invalid { index: usize, what: String },
    #[error("KEV count says {count} but the catalogue lists {listed}")]
    CountMismatch { count: u64, listed: usize },
}

/// One catalogue entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KevEntry {
    pub cve: String,
    /// `YYYY-MM-DD`.
    pub date_added: String,
    pub due_date: Option<String>,
    /// `Known` or `Unknown`.
    pub ransomware: String,
    pub vendor: String,
    pub product: String,
    pub name: String,
}

/// A whole catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    pub version: String,
    /// `dateReleased`, unix milliseconds, when it parses.
    pub released: Option<i64>,
    pub entries: Vec<KevEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    catalog_version: Option<String>,
    #[serde(default)]
    date_released: Option<String>,
    #[serde(default)]
    count: Option<u64>,
    vulnerabilities: Bounded<RawEntry, MAX_ENTRIES>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEntry {
    #[serde(rename = "cveID")]
    cve_id: String,
    date_added: String,
    #[serde(default)]
    due_date: Option<String>,
    #[serde(default)]
    known_ransomware_campaign_use: Option<String>,
    #[serde(default)]
    vendor_project: Option<String>,
    #[serde(default)]
    product: Option<String>,
    #[serde(default)]
    vulnerability_name: Option<String>,
}

/// True for a `YYYY-MM-DD` calendar date.
pub fn is_date(s: &str) -> bool {
    parse_date(s).is_some()
}

/// A `YYYY-MM-DD` calendar date.
pub fn parse_date(s: &str) -> Option<time::Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let y = i32::try_from(num(0..4)?).ok()?;
    let m = time::Month::try_from(u8::try_from(num(5..7)?).ok()?).ok()?;
    let d = u8::try_from(num(8..10)?).ok()?;
    time::Date::from_calendar_date(y, m, d).ok()
}

/// Reads a catalogue.
pub fn parse(bytes: &[u8]) -> Result<Catalogue, KevError> {
    let raw: Raw = serde_json::from_slice(bytes).map_err(|e| KevError::Json(e.to_string()))?;
    let listed = raw.vulnerabilities.0.len();
    if let Some(count) = raw.count {
        if count != listed as u64 {
            return Err(KevError::CountMismatch { count, listed });
        }
    }
    let mut entries = Vec::with_capacity(listed);
    for (index, e) in raw.vulnerabilities.0.into_iter().enumerate() {
        let invalid = |what: String| KevError::Invalid { index, what };
        if !is_cve(&e.cve_id) {
            return Err(invalid(format!("cveID {:?} is not a CVE id", e.cve_id)));
        }
        if !is_date(&e.date_added) {
            return Err(invalid(format!(
                "{}: dateAdded {:?} is not a YYYY-MM-DD date",
                e.cve_id, e.date_added
            )));
        }
        if let Some(d) = &e.due_date {
            if !is_date(d) {
                return Err(invalid(format!(
                    "{}: dueDate {d:?} is not a YYYY-MM-DD date",
                    e.cve_id
                )));
            }
        }
        let short = |s: Option<String>| s.unwrap_or_default().chars().take(256).collect();
        entries.push(KevEntry {
            cve: e.cve_id,
            date_added: e.date_added,
            due_date: e.due_date,
            ransomware: short(e.known_ransomware_campaign_use),
            vendor: short(e.vendor_project),
            product: short(e.product),
            name: short(e.vulnerability_name),
        });
    }
    Ok(Catalogue {
        version: raw.catalog_version.unwrap_or_default(),
        released: raw
            .date_released
            .as_deref()
            .and_then(|s| crate::clock::parse_rfc3339(s).ok())
            .map(crate::clock::to_ms),
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_checked_as_calendar_dates() {
        assert!(is_date("2025-08-25"));
        assert!(!is_date("2025-02-30"));
        assert!(!is_date("2025-8-25"));
        assert!(!is_date("+025-08-25"));
    }

    #[test]
    fn a_count_that_disagrees_with_the_list_is_refused() {
        let doc = r#"{"count": 2, "vulnerabilities": [
            {"cveID": "CVE-2024-1234", "dateAdded": "2024-01-02"}]}"#;
        assert!(matches!(
            parse(doc.as_bytes()),
            Err(KevError::CountMismatch {
                count: 2,
                listed: 1
            })
        ));
    }

    #[test]
    fn an_entry_with_a_bad_cve_id_is_refused() {
        let doc = r#"{"vulnerabilities": [{"cveID": "CVE-X", "dateAdded": "2024-01-02"}]}"#;
        assert!(parse(doc.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("CVE-X"));
    }
}
