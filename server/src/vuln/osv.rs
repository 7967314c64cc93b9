//! OSV records (<https://ossf.github.io/osv-schema/>): one JSON document per
//! advisory, read one at a time and reduced to an [`Advisory`].
//!
//! Format invariants this reader enforces (a violation is an [`OsvError`]
//! naming the record, and the import that met it changes nothing):
//! * a record is a JSON object of at most [`MAX_RECORD_BYTES`] with a string
//!   `id` and an RFC 3339 `modified`; `published`/`withdrawn` are RFC 3339
//!   when present;
//! * lists are bounded ([`MAX_AFFECTED`], [`MAX_EVENTS`], [`MAX_VERSIONS`],
//!   [`MAX_IDS`]) and nesting is bounded by serde_json's recursion limit, so
//!   a JSON bomb is refused instead of exhausting memory or the stack;
//! * every version string (events and `versions`) is non-empty, at most
//!   [`MAX_VERSION_LEN`] bytes, without control characters or whitespace;
//!   otherwise the record is garbage and refused;
//! * each event names exactly one of `introduced`, `fixed`,
//!   `last_affected`, `limit`.
//!
//! What is kept: `affected` entries with a `package` whose ecosystem is a
//! distribution trustwatch matches (Debian, Ubuntu incl. `Ubuntu:Pro:…`,
//! Alpine, AlmaLinux, Rocky Linux, Red Hat); of those, `ECOSYSTEM` ranges
//! and the `versions` list. An entry without `package` (e.g. a `GIT`-only
//! range) is skipped, as are other range types. A record with nothing kept
//! is out of scope ([`Parsed::OutOfScope`]). A version string the
//! distribution's own comparator refuses is kept but counted
//! ([`Parsed::Record`]'s `unparseable`); the matcher skips the range that
//! holds it, so it can never raise a false alarm.
//!
//! CVE ids come from the id itself, `aliases`, `upstream` and `related`;
//! vendor-prefixed forms (`UBUNTU-CVE-…`, `DEBIAN-CVE-…`, `ALPINE-CVE-…`)
//! are reduced to the bare `CVE-YYYY-N…`.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;

use super::ecosystem;
use super::{Advisory, AffectedPackage, Event};
use crate::clock::{parse_rfc3339, to_ms};

/// Largest record accepted, decompressed (16 MiB).
pub const MAX_RECORD_BYTES: u64 = 16 * 1024 * 1024;
/// Most `affected` entries in one record.
pub const MAX_AFFECTED: usize = 10_000;
/// Most ranges in one entry, and events in one range.
pub const MAX_EVENTS: usize = 1_000;
/// Most entries in one `versions` list.
pub const MAX_VERSIONS: usize = 100_000;
/// Most ids in `aliases`, `upstream` or `related`.
pub const MAX_IDS: usize = 10_000;
/// Longest version string.
pub const MAX_VERSION_LEN: usize = 256;
/// Longest record id.
pub const MAX_ID_LEN: usize = 256;

/// Why a record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OsvError {
    #[error("record is {size} bytes, over the {max}-byte cap")]
    TooLarge { size: u64, max: u64 },
    #[error("not an OSV record: {0}")]
    Json(String),
    #[error("record {id}: {what}")]
    Invalid { id: String, what: String },
}

/// The outcome of reading one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A record with at least one affected package trustwatch matches.
    Record {
        advisory: Advisory,
        /// Version strings its distribution's comparator refuses.
        unparseable: Vec<String>,
        /// Ranges of other types (`GIT`, `SEMVER`) or entries without a
        /// package, skipped.
        skipped_entries: usize,
    },
    /// Valid, but about no ecosystem trustwatch matches.
    OutOfScope { id: String },
}

/// A list that refuses more than `N` elements while it is being read, so a
/// huge array fails fast instead of being collected first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bounded<T, const N: usize>(pub Vec<T>);

impl<T, const N: usize> Default for Bounded<T, N> {
    fn default() -> Self {
        Bounded(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for Bounded<T, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, const N: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for V<T, N> {
            type Value = Bounded<T, N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a list of at most {N} elements")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                // `null` reads as an empty list.
                Ok(Bounded(Vec::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(x) = seq.next_element()? {
                    if out.len() >= N {
                        return Err(de::Error::custom(format!("list longer than {N} elements")));
                    }
                    out.push(x);
                }
                Ok(Bounded(out))
            }
        }
        d.deserialize_any(V::<T, N>(PhantomData))
    }
}

#[derive(Deserialize)]
struct RawRecord {
    id: String,
    modified: Option<String>,
    published: Option<String>,
    withdrawn: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    aliases: Bounded<String, MAX_IDS>,
    #[serde(default)]
    upstream: Bounded<String, MAX_IDS>,
    #[serde(default)]
    related: Bounded<String, MAX_IDS>,
    #[serde(default)]
    affected: Bounded<RawAffected, MAX_AFFECTED>,
}

#[derive(Deserialize)]
struct RawAffected {
    package: Option<RawPackage>,
    #[serde(default)]
    ranges: Bounded<RawRange, MAX_EVENTS>,
    #[serde(default)]
    versions: Bounded<String, MAX_VERSIONS>,
}

#[derive(Deserialize)]
struct RawPackage {
    #[serde(default)]
    ecosystem: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    #[allow(dead_code)]
    purl: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Bounded<RawEvent, MAX_EVENTS>,
}

#[derive(Deserialize)]
struct RawEvent {
    introduced: Option<String>,
    fixed: Option<String>,
    last_affected: Option<String>,
    limit: Option<String>,
}

/// Reads one OSV record.
pub fn parse(bytes: &[u8]) -> Result<Parsed, OsvError> {
    let size = bytes.len() as u64;
    if size > MAX_RECORD_BYTES {
        return Err(OsvError::TooLarge {
            size,
            max: MAX_RECORD_BYTES,
        });
    }
    super::check_json_depth(bytes, super::MAX_JSON_DEPTH).map_err(|at| {
        OsvError::Json(format!(
            "nested deeper than {} levels (at byte {at})",
            super::MAX_JSON_DEPTH
        ))
    })?;
    let raw: RawRecord =
        serde_json::from_slice(bytes).map_err(|e| OsvError::Json(e.to_string()))?;
    convert(raw)
}

fn convert(raw: RawRecord) -> Result<Parsed, OsvError> {
    let id = raw.id;
    let invalid = |what: String| OsvError::Invalid {
        id: id.clone(),
        what,
    };
    if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(|c| c.is_control()) {
        return Err(OsvError::Invalid {
            id: id.chars().take(64).collect(),
            what: "the id is empty, too long or has control characters".into(),
        });
    }
    let time = |field: &str, v: &Option<String>| -> Result<Option<i64>, OsvError> {
        match v {
            None => Ok(None),
            Some(s) => parse_rfc3339(s)
                .map(|t| Some(to_ms(t)))
                .map_err(|e| invalid(format!("{field} {s:?} is not an RFC 3339 time: {e}"))),
        }
    };
    let modified =
        time("modified", &raw.modified)?.ok_or_else(|| invalid("has no `modified` time".into()))?;
    let published = time("published", &raw.published)?;
    let withdrawn = time("withdrawn", &raw.withdrawn)?;

    let mut affected = Vec::new();
    let mut unparseable = Vec::new();
    let mut skipped_entries = 0usize;
    for (i, a) in raw.affected.0.into_iter().enumerate() {
        let Some(pkg) = a.package else {
            skipped_entries += 1;
            continue;
        };
        let Some((key, scheme)) = ecosystem::normalise(&pkg.ecosystem) else {
            skipped_entries += 1;
            continue;
        };
        if pkg.name.is_empty() || pkg.name.len() > MAX_ID_LEN {
            return Err(invalid(format!(
                "affected[{i}] has an empty or overlong package name"
            )));
        }
        let mut ranges = Vec::new();
        for r in a.ranges.0 {
            let mut events = Vec::with_capacity(r.events.0.len());
            for e in r.events.0 {
                let ev = match (e.introduced, e.fixed, e.last_affected, e.limit) {
                    (Some(v), None, None, None) => Event::Introduced(v),
                    (None, Some(v), None, None) => Event::Fixed(v),
                    (None, None, Some(v), None) => Event::LastAffected(v),
                    (None, None, None, Some(v)) => Event::Limit(v),
                    _ => {
                        return Err(invalid(format!(
                            "affected[{i}] ({}): an event must name exactly one of introduced, fixed, last_affected, limit",
                            pkg.name
                        )))
                    }
                };
                check_version(ev.version())
                    .map_err(|w| invalid(format!("affected[{i}] ({}): {w}", pkg.name)))?;
                events.push(ev);
            }
            if r.kind != "ECOSYSTEM" {
                skipped_entries += 1;
                continue;
            }
            for ev in &events {
                let v = ev.version();
                let zero = matches!(ev, Event::Introduced(x) if x == "0");
                if !zero && !ecosystem::version_parses(scheme, v) {
                    unparseable.push(v.to_owned());
                }
            }
            if !events.is_empty() {
                ranges.push(events);
            }
        }
        for v in &a.versions.0 {
            check_version(v).map_err(|w| invalid(format!("affected[{i}] ({}): {w}", pkg.name)))?;
            if !ecosystem::version_parses(scheme, v) {
                unparseable.push(v.clone());
            }
        }
        if ranges.is_empty() && a.versions.0.is_empty() {
            skipped_entries += 1;
            continue;
        }
        affected.push(AffectedPackage {
            ecosystem: key,
            ecosystem_raw: pkg.ecosystem,
            package: pkg.name,
            ranges,
            versions: a.versions.0,
        });
    }
    if affected.is_empty() {
        return Ok(Parsed::OutOfScope { id });
    }
    let mut cves: Vec<String> = std::iter::once(id.as_str())
        .chain(raw.aliases.0.iter().map(String::as_str))
        .chain(raw.upstream.0.iter().map(String::as_str))
        .chain(raw.related.0.iter().map(String::as_str))
        .filter_map(cve_of)
        .collect();
    cves.sort();
    cves.dedup();
    let summary: String = raw.summary.unwrap_or_default().chars().take(512).collect();
    Ok(Parsed::Record {
        advisory: Advisory {
            id,
            modified,
            published,
            withdrawn,
            summary,
            cves,
            affected,
        },
        unparseable,
        skipped_entries,
    })
}

fn check_version(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err("a version is empty".into());
    }
    if v.len() > MAX_VERSION_LEN {
        return Err(format!(
            "a version is {} bytes long (at most {MAX_VERSION_LEN})",
            v.len()
        ));
    }
    if v.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "version {:?} holds whitespace or control characters",
            v.chars().take(64).collect::<String>()
        ));
    }
    Ok(())
}

/// The bare CVE id inside an identifier (`CVE-2024-6387` from
/// `UBUNTU-CVE-2024-6387`), if it holds a well-formed one.
pub fn cve_of(s: &str) -> Option<String> {
    let at = s.find("CVE-")?;
    let rest = &s[at..];
    // The prefix before it must be a vendor tag, not part of another word.
    if at > 0 && !s[..at].ends_with('-') {
        return None;
    }
    let parts: Vec<&str> = rest.split('-').collect();
    if parts.len() != 3 {
        return None;
    }
    let (year, num) = (parts[1], parts[2]);
    let ok = year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && (4..=19).contains(&num.len())
        && num.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| rest.to_owned())
}

/// True when `s` is a well-formed CVE id (`CVE-YYYY-NNNN…`).
pub fn is_cve(s: &str) -> bool {
    cve_of(s).as_deref() == Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cve_ids_are_found_in_vendor_prefixed_forms_only() {
        assert_eq!(cve_of("CVE-2024-6387").as_deref(), Some("CVE-2024-6387"));
        assert_eq!(
            cve_of("UBUNTU-CVE-2024-6387").as_deref(),
            Some("CVE-2024-6387")
        );
        assert_eq!(
            cve_of("DEBIAN-CVE-2022-1292").as_deref(),
            Some("CVE-2022-1292")
        );
        assert_eq!(cve_of("GO-2024-2687"), None);
        assert_eq!(cve_of("XCVE-2024-1234"), None);
        assert_eq!(cve_of("CVE-24-1234"), None);
        assert_eq!(cve_of("CVE-2024-12a4"), None);
        assert!(is_cve("CVE-1999-0001"));
        assert!(!is_cve("UBUNTU-CVE-2024-6387"));
    }

    #[test]
    fn a_list_over_its_bound_is_refused_while_reading() {
        let r: Result<Bounded<u8, 3>, _> = serde_json::from_str("[1,2,3,4]");
        assert!(r.unwrap_err().to_string().contains("longer than 3"));
        let r: Bounded<u8, 3> = serde_json::from_str("[1,2,3]").unwrap();
        assert_eq!(r.0, vec![1, 2, 3]);
        let r: Bounded<u8, 3> = serde_json::from_str("null").unwrap();
        assert!(r.0.is_empty());
    }

    #[test]
    fn event_with_two_kinds_is_refused_naming_the_record() {
        let doc = r#"{"id":"DSA-1-1","modified":"2024-01-01T00:00:00Z","affected":[
            {"package":{"ecosystem":"Debian:12","name":"x"},
             "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0","fixed":"1"}]}]}]}"#;
        let e = parse(doc.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("DSA-1-1"), "{e}");
        assert!(e.to_string().contains("exactly one"), "{e}");
    }

    #[test]
    fn record_without_modified_is_refused() {
        let doc = r#"{"id":"X-1","affected":[]}"#;
        assert!(parse(doc.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("modified"));
    }

    #[test]
    fn versions_that_only_the_comparator_refuses_are_kept_and_counted() {
        let doc = r#"{"id":"DSA-2-1","modified":"2024-01-01T00:00:00Z","affected":[
            {"package":{"ecosystem":"Debian:12","name":"x"},
             "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"a:1.0"}]}]}]}"#;
        match parse(doc.as_bytes()).unwrap() {
            Parsed::Record { unparseable, .. } => assert_eq!(unparseable, vec!["a:1.0"]),
            other => panic!("{other:?}"),
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Version-like strings, including the characters every scheme
        /// treats specially, and some that none accepts.
        fn version() -> impl Strategy<Value = String> {
            "[0-9a-zA-Z.+~:_^-]{0,12}"
        }

        fn event() -> impl Strategy<Value = String> {
            (
                prop_oneof![
                    Just("introduced"),
                    Just("fixed"),
                    Just("last_affected"),
                    Just("limit"),
                    Just("bogus")
                ],
                version(),
            )
                .prop_map(|(k, v)| format!(r#"{{"{k}":{}}}"#, serde_json::json!(v)))
        }

        fn ecosystem() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("Debian:12".to_owned()),
                Just("Ubuntu:22.04:LTS".to_owned()),
                Just("Alpine:v3.20".to_owned()),
                Just("AlmaLinux:9".to_owned()),
                Just("Red Hat:enterprise_linux:9::baseos".to_owned()),
                Just("PyPI".to_owned()),
                "[A-Za-z:0-9. ]{0,20}",
            ]
        }

        fn record() -> impl Strategy<Value = String> {
            let affected = (
                ecosystem(),
                "[a-z0-9.+-]{0,10}",
                prop::collection::vec(event(), 0..5),
                prop::collection::vec(version(), 0..3),
                prop_oneof![Just("ECOSYSTEM"), Just("SEMVER"), Just("GIT")],
            )
                .prop_map(|(eco, name, events, versions, kind)| {
                    format!(
                        r#"{{"package":{{"ecosystem":{},"name":{}}},"ranges":[{{"type":"{kind}","events":[{}]}}],"versions":{}}}"#,
                        serde_json::json!(eco),
                        serde_json::json!(name),
                        events.join(","),
                        serde_json::json!(versions)
                    )
                });
            (
                "[A-Z]{2,6}-[0-9]{1,5}(-[0-9])?",
                prop::collection::vec(affected, 0..4),
                prop::collection::vec("(CVE|GHSA)-[0-9]{4}-[0-9]{1,6}", 0..3),
                prop::bool::ANY,
            )
                .prop_map(|(id, affected, aliases, withdrawn)| {
                    format!(
                        r#"{{"id":"{id}","modified":"2025-01-01T00:00:00Z","aliases":{}{},"affected":[{}]}}"#,
                        serde_json::json!(aliases),
                        if withdrawn {
                            r#","withdrawn":"2025-02-01T00:00:00Z""#
                        } else {
                            ""
                        },
                        affected.join(",")
                    )
                })
        }

        proptest! {
            #[test]
            fn any_bytes_give_a_record_or_an_error(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
                let _ = parse(&bytes);
            }

            #[test]
            fn any_record_shape_gives_a_record_or_an_error_and_keeps_only_matched_ecosystems(doc in record()) {
                if let Ok(Parsed::Record { advisory, .. }) = parse(doc.as_bytes()) {
                    for a in &advisory.affected {
                        prop_assert!(
                            crate::vuln::ecosystem::normalise(&a.ecosystem_raw).is_some(),
                            "{} kept from {doc}", a.ecosystem_raw
                        );
                    }
                }
            }

            #[test]
            fn a_truncated_record_is_refused_not_misread(doc in record(), cut in 0usize..400) {
                let cut = cut.min(doc.len().saturating_sub(1));
                prop_assert!(parse(&doc.as_bytes()[..cut]).is_err());
            }
        }
    }
}
