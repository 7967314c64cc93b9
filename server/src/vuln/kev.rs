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

    mod properties {
        use super::*;
        use crate::vuln::testgen::{bad_date, date, ymd};
        use proptest::prelude::*;
        use serde_json::{json, Value};
        use time::format_description::well_known::Rfc3339;
        use time::{Date, OffsetDateTime};

        /// Strings that are not CVE ids.
        fn bad_cve() -> impl Strategy<Value = String> {
            prop_oneof![
                "CVE-[0-9]{4}-[0-9]{0,3}",
                "CVE-[0-9]{4}-[0-9]{20,22}",
                "CVE-[0-9]{2,3}-[0-9]{4,6}",
                "cve-[0-9]{4}-[0-9]{4,6}",
                "X?CVE-[0-9]{4}-[0-9]{4,6}[ a]",
                "[A-Z]{2,5}-[0-9]{4}-[0-9]{4,6}",
            ]
            .prop_filter("not a CVE", |s| !is_cve(s))
        }

        /// Free text, long enough at times to be cut at 256 characters.
        fn text() -> impl Strategy<Value = Option<String>> {
            prop::option::of(prop_oneof!["\\PC{0,40}", "[a-zé€𝄞]{250,300}"])
        }

        /// A generated catalogue: the document and what it must read as.
        #[derive(Debug, Clone)]
        struct Case {
            doc: Value,
            expected: Catalogue,
        }

        fn entry() -> impl Strategy<Value = (Value, KevEntry)> {
            (
                "CVE-[0-9]{4}-[0-9]{4,19}",
                date(),
                prop::option::of(date()),
                prop::option::of(prop_oneof![
                    Just("Known".to_owned()),
                    Just("Unknown".to_owned()),
                    "\\PC{0,10}"
                ]),
                text(),
                text(),
                text(),
            )
                .prop_map(|(cve, added, due, ransom, vendor, product, name)| {
                    let mut v = json!({
                        "cveID": cve,
                        "dateAdded": ymd(added),
                        "shortDescription": "ignored",
                        "cwes": ["CWE-79"],
                    });
                    let put = |v: &mut Value, k: &str, x: &Option<String>| {
                        if let Some(x) = x {
                            v[k] = json!(x);
                        }
                    };
                    put(&mut v, "dueDate", &due.map(ymd));
                    put(&mut v, "knownRansomwareCampaignUse", &ransom);
                    put(&mut v, "vendorProject", &vendor);
                    put(&mut v, "product", &product);
                    put(&mut v, "vulnerabilityName", &name);
                    let cut = |x: Option<String>| -> String {
                        x.unwrap_or_default().chars().take(256).collect()
                    };
                    let e = KevEntry {
                        cve,
                        date_added: ymd(added),
                        due_date: due.map(ymd),
                        ransomware: cut(ransom),
                        vendor: cut(vendor),
                        product: cut(product),
                        name: cut(name),
                    };
                    (v, e)
                })
        }

        fn catalogue() -> impl Strategy<Value = Case> {
            (
                prop::collection::vec(entry(), 0..8),
                prop::option::of("[0-9]{4}\\.[0-9]{2}\\.[0-9]{2}"),
                prop::option::of((0i64..4_102_444_800, 0i64..1000)),
                any::<bool>(),
            )
                .prop_map(|(entries, version, released, with_count)| {
                    let mut doc = json!({
                        "title": "CISA Catalog of Known Exploited Vulnerabilities",
                        "vulnerabilities":
                            entries.iter().map(|(v, _)| v.clone()).collect::<Vec<_>>(),
                    });
                    if let Some(v) = &version {
                        doc["catalogVersion"] = json!(v);
                    }
                    if with_count {
                        doc["count"] = json!(entries.len());
                    }
                    let mut released_ms = None;
                    if let Some((secs, ms)) = released {
                        let t = OffsetDateTime::from_unix_timestamp_nanos(
                            i128::from(secs * 1000 + ms) * 1_000_000,
                        )
                        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
                        doc["dateReleased"] = json!(t.format(&Rfc3339).unwrap_or_default());
                        released_ms = Some(secs * 1000 + ms);
                    }
                    Case {
                        doc,
                        expected: Catalogue {
                            version: version.unwrap_or_default(),
                            released: released_ms,
                            entries: entries.into_iter().map(|(_, e)| e).collect(),
                        },
                    }
                })
        }

        fn bytes(doc: &Value, pretty: bool) -> Vec<u8> {
            if pretty {
                serde_json::to_vec_pretty(doc).unwrap_or_default()
            } else {
                serde_json::to_vec(doc).unwrap_or_default()
            }
        }

        /// The invariants the module promises of any catalogue it returns.
        fn holds_invariants(c: &Catalogue) -> Result<(), TestCaseError> {
            for e in &c.entries {
                prop_assert!(is_cve(&e.cve), "{:?}", e.cve);
                prop_assert!(parse_date(&e.date_added).is_some(), "{:?}", e.date_added);
                if let Some(d) = &e.due_date {
                    prop_assert!(parse_date(d).is_some(), "{:?}", d);
                }
                for t in [&e.ransomware, &e.vendor, &e.product, &e.name] {
                    prop_assert!(t.chars().count() <= 256);
                }
            }
            Ok(())
        }

        proptest! {
            #[test]
            fn any_bytes_give_a_catalogue_or_an_error(
                bytes in prop::collection::vec(any::<u8>(), 0..2048),
            ) {
                if let Ok(c) = parse(&bytes) {
                    holds_invariants(&c)?;
                }
            }

            /// `YYYY-MM-DD` text is a date exactly when it names a
            /// calendar day (the oracle is `time`'s calendar).
            #[test]
            fn a_date_is_accepted_exactly_when_it_is_a_calendar_day(
                y in 0u32..=9999, m in 0u32..=13, d in 0u32..=32,
            ) {
                let s = format!("{y:04}-{m:02}-{d:02}");
                let real = u8::try_from(m)
                    .ok()
                    .and_then(|m| time::Month::try_from(m).ok())
                    .and_then(|m| Date::from_calendar_date(y as i32, m, d as u8).ok());
                prop_assert_eq!(parse_date(&s), real);
            }

            #[test]
            fn any_calendar_day_round_trips_through_its_text(d in date()) {
                prop_assert_eq!(parse_date(&ymd(d)), Some(d));
            }

            #[test]
            fn a_well_formed_catalogue_reads_as_exactly_what_was_written(
                case in catalogue(), pretty in any::<bool>(),
            ) {
                let got = parse(&bytes(&case.doc, pretty));
                prop_assert_eq!(got, Ok(case.expected));
            }

            #[test]
            fn a_truncated_catalogue_is_refused(
                case in catalogue(),
                cut in any::<prop::sample::Index>(),
            ) {
                let b = bytes(&case.doc, false);
                let cut = cut.index(b.len());
                prop_assert!(parse(&b[..cut]).is_err(), "{}", String::from_utf8_lossy(&b[..cut]));
            }

            /// One flipped byte: an error, or a catalogue that still keeps
            /// every promise and lists as many entries (a flip cannot add
            /// or drop one unnoticed).
            #[test]
            fn a_flipped_byte_gives_an_error_or_a_catalogue_that_keeps_the_invariants(
                case in catalogue(),
                at in any::<prop::sample::Index>(),
                x in 1u8..=255,
            ) {
                let mut b = bytes(&case.doc, false);
                let at = at.index(b.len());
                b[at] ^= x;
                if let Ok(c) = parse(&b) {
                    holds_invariants(&c)?;
                    prop_assert_eq!(c.entries.len(), case.expected.entries.len());
                }
            }

            #[test]
            fn an_entry_with_a_date_that_is_not_a_calendar_day_is_refused_by_index(
                case in catalogue().prop_filter("has entries", |c| !c.expected.entries.is_empty()),
                which in any::<prop::sample::Index>(),
                due in any::<bool>(),
                bad in bad_date(),
            ) {
                let mut doc = case.doc;
                let i = which.index(case.expected.entries.len());
                doc["vulnerabilities"][i][if due { "dueDate" } else { "dateAdded" }] = json!(bad);
                match parse(&bytes(&doc, false)) {
                    Err(KevError::Invalid { index, what }) => {
                        prop_assert_eq!(index, i);
                        prop_assert!(what.contains(&format!("{bad:?}")), "{}", what);
                    }
                    other => prop_assert!(false, "{bad:?} gave {other:?}"),
                }
            }

            #[test]
            fn an_entry_with_a_malformed_cve_id_is_refused_by_index(
                case in catalogue().prop_filter("has entries", |c| !c.expected.entries.is_empty()),
                which in any::<prop::sample::Index>(),
                bad in bad_cve(),
            ) {
                let mut doc = case.doc;
                let i = which.index(case.expected.entries.len());
                doc["vulnerabilities"][i]["cveID"] = json!(bad);
                let got = parse(&bytes(&doc, false));
                let refused_here =
                    matches!(&got, Err(KevError::Invalid { index, .. }) if *index == i);
                prop_assert!(refused_here, "{:?} gave {:?}", bad, got);
            }

            #[test]
            fn a_count_other_than_the_list_length_is_refused(
                case in catalogue(), count in 0u64..20,
            ) {
                let listed = case.expected.entries.len();
                prop_assume!(count != listed as u64);
                let mut doc = case.doc;
                doc["count"] = json!(count);
                prop_assert_eq!(
                    parse(&bytes(&doc, false)),
                    Err(KevError::CountMismatch { count, listed })
                );
            }
        }
    }
}
