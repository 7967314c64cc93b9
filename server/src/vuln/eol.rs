//! End-of-life dates per operating-system release, and which of them
//! counts as "end of support" under the estate's [`Policy`] (DESIGN §2).
//!
//! # trustwatch's own format (`trustwatch.eol/v1`, JSON)
//!
//! ```json
//! {"schema": "trustwatch.eol/v1", "snapshot_date": "2026-08-22",
//!  "entries": [
//!   {"os": "debian", "release": "12", "label": "Debian 12 (Bookworm)",
//!    "release_date": "2023-06-10", "standard_end": "2026-07-11",
//!    "extended_end": "2028-06-30", "extended_kind": "lts",
//!    "sources": ["https://www.debian.org/releases/", "https://wiki.debian.org/LTS"]}]}
//! ```
//! * `os` is the `os-release` `ID` (`debian`, `ubuntu`, `alpine`, `rhel`,
//!   `almalinux`, `rocky`), or `windows` / `windows-server`; `release` is
//!   the key [`super::ecosystem::release_of`] derives from `VERSION_ID`
//!   (`12`, `22.04`, `3.20`, `9`; for Windows the endoflife.date cycle, like
//!   `10-22h2` or `2022`).
//! * Dates are `YYYY-MM-DD`, each the **last day** of that support: a
//!   release is end-of-life from the day after. `standard_end` is the end of
//!   the support everyone gets (Debian security support, Ubuntu standard
//!   support, RHEL maintenance support, Windows extended support);
//!   `extended_end` the end of the extended period of kind `extended_kind`:
//!   `lts` (Debian LTS: free, always counts), `esm` (Ubuntu ESM: counts only
//!   with `ubuntu_pro`), `esu` (Windows ESU: counts only with
//!   `windows_esu`), `els` (RHEL Extended Life-cycle Support, a paid add-on:
//!   never counts). A missing date means unknown: no verdict is drawn from it.
//! * `sources` cites where the dates come from (at least one per entry).
//! * Unknown keys are refused; `(os, release)` is unique.
//!
//! # endoflife.date product files
//!
//! Markdown with a YAML front matter whose `releases:` list holds one
//! mapping per release cycle (`releaseCycle`, `releaseDate`, `eol`, `eoes`,
//! `releaseLabel`, `codename`, `link`, …). Only that subset of YAML is read:
//! top-level `key: value` lines, and under `releases:` a list of flat
//! mappings whose values are scalars (quoted or plain strings, dates,
//! booleans, `null`); comments and deeper-indented (nested) lines are
//! skipped. A YAML library would read more than this needs and add a
//! dependency for nine files of one known shape. The product is told by
//! `permalink` (`/debian`, `/ubuntu`, `/alpine-linux`, `/rhel`,
//! `/almalinux`, `/rocky-linux`, `/windows`, `/windows-server`); `eol` maps
//! to `standard_end` and `eoes` to `extended_end`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::Date;

use super::kev::parse_date;
use super::Policy;

/// The snapshot shipped in the binary (`server/data/eol.json`).
pub const SHIPPED: &str = include_str!("../../data/eol.json");
/// The schema tag of trustwatch's own format.
pub const SCHEMA: &str = "trustwatch.eol/v1";
/// A release is `eol_soon` this many days before its end of support.
pub const SOON_DAYS: i64 = 180;

/// Why an end-of-life file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EolError {
    #[error("not a trustwatch.eol/v1 document: {0}")]
    Json(String),
    #[error("entry {index} ({os} {release}): {what}")]
    Invalid {
        index: usize,
        os: String,
        release: String,
        what: String,
    },
    #[error("line {line}: {what}")]
    Yaml { line: usize, what: String },
    #[error("{0}")]
    Product(String),
}

/// The kind of an extended-support period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExtendedKind {
    Lts,
    Esm,
    Esu,
    Els,
}

impl ExtendedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExtendedKind::Lts => "lts",
            ExtendedKind::Esm => "esm",
            ExtendedKind::Esu => "esu",
            ExtendedKind::Els => "els",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "lts" => Some(ExtendedKind::Lts),
            "esm" => Some(ExtendedKind::Esm),
            "esu" => Some(ExtendedKind::Esu),
            "els" => Some(ExtendedKind::Els),
            _ => None,
        }
    }

    /// True when this period counts as support under `policy`.
    pub fn counts(self, policy: &Policy) -> bool {
        match self {
            ExtendedKind::Lts => true,
            ExtendedKind::Esm => policy.ubuntu_pro,
            ExtendedKind::Esu => policy.windows_esu,
            ExtendedKind::Els => false,
        }
    }
}

/// One release's dates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EolRelease {
    pub os: String,
    pub release: String,
    #[serde(default)]
    pub label: String,
    #[serde(default, with = "opt_date")]
    pub release_date: Option<Date>,
    #[serde(default, with = "opt_date")]
    pub standard_end: Option<Date>,
    #[serde(default, with = "opt_date")]
    pub extended_end: Option<Date>,
    #[serde(default)]
    pub extended_kind: Option<ExtendedKind>,
    pub sources: Vec<String>,
}

/// A whole `trustwatch.eol/v1` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EolDocument {
    pub schema: String,
    /// When the dates were taken.
    #[serde(with = "opt_date", default)]
    pub snapshot_date: Option<Date>,
    pub entries: Vec<EolRelease>,
}

mod opt_date {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Date;

    pub fn serialize<S: Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::fmt_date(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => super::parse_date(&s)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not a YYYY-MM-DD date"))),
        }
    }
}

/// `YYYY-MM-DD`.
pub fn fmt_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// What ends support for a release under a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupportEnd {
    /// The last day of support.
    pub date: Date,
    /// `standard`, or the extended kind that counts (`lts`, `esm`, `esu`).
    pub basis: &'static str,
}

impl EolRelease {
    /// The last day of support that counts under `policy`, if known.
    pub fn support_end(&self, policy: &Policy) -> Option<SupportEnd> {
        let standard = self.standard_end.map(|date| SupportEnd {
            date,
            basis: "standard",
        });
        let extended = match (self.extended_kind, self.extended_end) {
            (Some(k), Some(date)) if k.counts(policy) => Some(SupportEnd {
                date,
                basis: k.as_str(),
            }),
            _ => None,
        };
        match (standard, extended) {
            (Some(s), Some(e)) => Some(if e.date > s.date { e } else { s }),
            (s, e) => s.or(e),
        }
    }

    fn validate(&self, index: usize) -> Result<(), EolError> {
        let invalid = |what: &str| EolError::Invalid {
            index,
            os: self.os.clone(),
            release: self.release.clone(),
            what: what.to_owned(),
        };
        let word = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        if !word(&self.os) || !word(&self.release) {
            return Err(invalid("os and release must be 1-64 of [A-Za-z0-9._-]"));
        }
        if self.sources.is_empty() || self.sources.iter().any(|s| s.trim().is_empty()) {
            return Err(invalid("every entry cites at least one source"));
        }
        if self.extended_end.is_some() && self.extended_kind.is_none() {
            return Err(invalid("extended_end needs an extended_kind"));
        }
        Ok(())
    }
}

/// Reads a `trustwatch.eol/v1` document.
pub fn parse_own(bytes: &[u8]) -> Result<EolDocument, EolError> {
    let doc: EolDocument =
        serde_json::from_slice(bytes).map_err(|e| EolError::Json(e.to_string()))?;
    if doc.schema != SCHEMA {
        return Err(EolError::Json(format!(
            "schema is {:?}, expected {SCHEMA:?}",
            doc.schema
        )));
    }
    let mut seen = BTreeSet::new();
    for (i, e) in doc.entries.iter().enumerate() {
        e.validate(i)?;
        if !seen.insert((e.os.clone(), e.release.clone())) {
            return Err(EolError::Invalid {
                index: i,
                os: e.os.clone(),
                release: e.release.clone(),
                what: "listed twice".into(),
            });
        }
    }
    Ok(doc)
}

/// The shipped snapshot.
pub fn shipped() -> Result<EolDocument, EolError> {
    parse_own(SHIPPED.as_bytes())
}

/// A YAML scalar of the subset read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scalar {
    Null,
    Bool(bool),
    Str(String),
}

fn scalar(raw: &str, line: usize) -> Result<Scalar, EolError> {
    let t = raw.trim();
    let unquote = |q: char| -> Result<Scalar, EolError> {
        let inner = &t[1..];
        match inner.find(q) {
            Some(end) => {
                let rest = inner[end + 1..].trim();
                if !rest.is_empty() && !rest.starts_with('#') {
                    return Err(EolError::Yaml {
                        line,
                        what: format!("text after a quoted value: {rest:?}"),
                    });
                }
                Ok(Scalar::Str(inner[..end].to_owned()))
            }
            None => Err(EolError::Yaml {
                line,
                what: "unterminated quoted value".into(),
            }),
        }
    };
    if t.starts_with('"') {
        return unquote('"');
    }
    if t.starts_with('\'') {
        return unquote('\'');
    }
    // A comment starts at " #" in a plain value.
    let plain = match t.find(" #") {
        Some(i) => t[..i].trim_end(),
        None => t,
    };
    Ok(match plain {
        "" | "null" | "~" | "Null" | "NULL" => Scalar::Null,
        "true" | "True" | "TRUE" => Scalar::Bool(true),
        "false" | "False" | "FALSE" => Scalar::Bool(false),
        s => Scalar::Str(s.to_owned()),
    })
}

/// Splits `key: value` (the key a plain word).
fn key_value(s: &str) -> Option<(&str, &str)> {
    let (k, v) = s.split_once(':')?;
    let ok = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    (ok && (v.is_empty() || v.starts_with(' '))).then_some((k, v))
}

type Mapping = Vec<(String, Scalar, usize)>;

/// The top-level scalars and the `releases:` list of a front matter.
fn front_matter(text: &str) -> Result<(Mapping, Vec<Mapping>), EolError> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    match lines.next() {
        Some((_, l)) if l.trim_end() == "---" => {}
        _ => {
            return Err(EolError::Yaml {
                line: 1,
                what: "an endoflife.date file starts with a '---' front matter".into(),
            })
        }
    }
    let mut top: Mapping = Vec::new();
    let mut releases: Vec<Mapping> = Vec::new();
    let mut in_releases = false;
    let mut item_indent: Option<usize> = None;
    let mut closed = false;
    for (n, line) in lines {
        if line.trim_end() == "---" {
            closed = true;
            break;
        }
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if line.contains('\t') && indent > 0 && line[..indent].contains('\t') {
            return Err(EolError::Yaml {
                line: n,
                what: "tabs are not allowed for indentation".into(),
            });
        }
        if indent == 0 {
            in_releases = false;
            let Some((k, v)) = key_value(trimmed) else {
                continue; // not a mapping line we read (e.g. a list of a key we skip)
            };
            if k == "releases" {
                if !v.trim().is_empty() {
                    return Err(EolError::Yaml {
                        line: n,
                        what: "`releases:` must be followed by a list".into(),
                    });
                }
                in_releases = true;
            } else {
                top.push((k.to_owned(), scalar(v, n)?, n));
            }
            continue;
        }
        if !in_releases {
            continue; // nested value of a top-level key we do not read
        }
        if let Some(rest) = trimmed.strip_prefix("- ") {
            let ii = *item_indent.get_or_insert(indent);
            if indent != ii {
                continue; // a list nested inside a release
            }
            let (k, v) = key_value(rest).ok_or_else(|| EolError::Yaml {
                line: n,
                what: "a release must be a mapping (`- key: value`)".into(),
            })?;
            releases.push(vec![(k.to_owned(), scalar(v, n)?, n)]);
            continue;
        }
        let Some(ii) = item_indent else {
            return Err(EolError::Yaml {
                line: n,
                what: "`releases:` must be a list".into(),
            });
        };
        if indent != ii + 2 {
            continue; // deeper: a nested value we skip
        }
        let Some((k, v)) = key_value(trimmed) else {
            return Err(EolError::Yaml {
                line: n,
                what: format!("expected `key: value`, found {trimmed:?}"),
            });
        };
        if let Some(cur) = releases.last_mut() {
            cur.push((k.to_owned(), scalar(v, n)?, n));
        }
    }
    if !closed {
        return Err(EolError::Yaml {
            line: text.lines().count(),
            what: "the front matter is not closed by '---'".into(),
        });
    }
    Ok((top, releases))
}

/// The os id, extended kind and citation page of an endoflife.date product.
fn product(permalink: &str) -> Option<(&'static str, Option<ExtendedKind>)> {
    Some(match permalink.trim_matches('/') {
        "debian" => ("debian", Some(ExtendedKind::Lts)),
        "ubuntu" => ("ubuntu", Some(ExtendedKind::Esm)),
        "alpine-linux" | "alpine" => ("alpine", None),
        "rhel" => ("rhel", Some(ExtendedKind::Els)),
        "almalinux" => ("almalinux", None),
        "rocky-linux" => ("rocky", None),
        "windows" => ("windows", Some(ExtendedKind::Esu)),
        "windows-server" => ("windows-server", Some(ExtendedKind::Esu)),
        _ => return None,
    })
}

/// Reads an endoflife.date product file into releases.
pub fn parse_endoflife(text: &str) -> Result<Vec<EolRelease>, EolError> {
    let (top, releases) = front_matter(text)?;
    let get = |m: &Mapping, key: &str| -> Option<(Scalar, usize)> {
        m.iter()
            .rev()
            .find(|(k, _, _)| k == key)
            .map(|(_, v, n)| (v.clone(), *n))
    };
    let permalink = match get(&top, "permalink") {
        Some((Scalar::Str(p), _)) => p,
        _ => {
            return Err(EolError::Product(
                "the front matter has no `permalink` naming the product".into(),
            ))
        }
    };
    let (os, ext_kind) = product(&permalink).ok_or_else(|| {
        EolError::Product(format!(
            "endoflife.date product {permalink:?} is not an operating system trustwatch matches"
        ))
    })?;
    if releases.is_empty() {
        return Err(EolError::Product(format!("{permalink}: no releases")));
    }
    let page = format!("https://endoflife.date{permalink}");
    let mut out = Vec::with_capacity(releases.len());
    let mut seen = BTreeSet::new();
    for (index, r) in releases.iter().enumerate() {
        let cycle = match get(r, "releaseCycle") {
            Some((Scalar::Str(s), _)) => s,
            _ => {
                return Err(EolError::Yaml {
                    line: r.first().map(|x| x.2).unwrap_or(0),
                    what: "a release without a releaseCycle".into(),
                })
            }
        };
        let date = |key: &str| -> Result<Option<Date>, EolError> {
            match get(r, key) {
                None | Some((Scalar::Null | Scalar::Bool(_), _)) => Ok(None),
                Some((Scalar::Str(s), line)) => parse_date(&s).map(Some).ok_or(EolError::Yaml {
                    line,
                    what: format!("{key} {s:?} is not a YYYY-MM-DD date"),
                }),
            }
        };
        let text_of = |key: &str| match get(r, key) {
            Some((Scalar::Str(s), _)) => Some(s),
            _ => None,
        };
        let extended_end = date("eoes")?;
        let mut sources = vec![page.clone()];
        if let Some(link) = text_of("link") {
            sources.push(link);
        }
        let label = text_of("releaseLabel")
            .map(|l| {
                l.replace("__RELEASE_CYCLE__", &cycle)
                    .replace("__CODENAME__", &text_of("codename").unwrap_or_default())
            })
            .or_else(|| text_of("codename").map(|c| format!("{cycle} ({c})")))
            .unwrap_or_else(|| cycle.clone());
        let rel = EolRelease {
            os: os.to_owned(),
            release: cycle.clone(),
            label,
            release_date: date("releaseDate")?,
            standard_end: date("eol")?,
            extended_kind: extended_end.and(ext_kind),
            extended_end: if ext_kind.is_some() {
                extended_end
            } else {
                None
            },
            sources,
        };
        rel.validate(index)?;
        if !seen.insert(cycle.clone()) {
            return Err(EolError::Product(format!(
                "{permalink}: release {cycle} is listed twice"
            )));
        }
        out.push(rel);
    }
    Ok(out)
}

/// Today's verdict for a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Supported,
    /// Support ends within [`SOON_DAYS`]; `days_left` counts today.
    EndingSoon {
        end: SupportEnd,
        days_left: i64,
    },
    Ended {
        end: SupportEnd,
        days_since: i64,
    },
}

/// The verdict on `today` (a release is supported through its end date).
pub fn verdict(r: &EolRelease, policy: &Policy, today: Date) -> Option<Verdict> {
    let end = r.support_end(policy)?;
    let days = (end.date - today).whole_days();
    Some(if days < 0 {
        Verdict::Ended {
            end,
            days_since: -days,
        }
    } else if days <= SOON_DAYS {
        Verdict::EndingSoon {
            end,
            days_left: days,
        }
    } else {
        Verdict::Supported
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        parse_date(s).unwrap()
    }

    #[test]
    fn the_shipped_snapshot_parses_and_covers_every_promised_system() {
        let doc = shipped().unwrap();
        for os in [
            "debian",
            "ubuntu",
            "rhel",
            "almalinux",
            "rocky",
            "alpine",
            "windows",
            "windows-server",
        ] {
            assert!(doc.entries.iter().any(|e| e.os == os), "{os}");
        }
        let deb12 = doc
            .entries
            .iter()
            .find(|e| e.os == "debian" && e.release == "12")
            .unwrap();
        assert_eq!(deb12.extended_kind, Some(ExtendedKind::Lts));
    }

    #[test]
    fn which_end_counts_follows_the_policy() {
        let r = EolRelease {
            os: "ubuntu".into(),
            release: "20.04".into(),
            label: String::new(),
            release_date: None,
            standard_end: Some(d("2025-05-31")),
            extended_end: Some(d("2030-04-02")),
            extended_kind: Some(ExtendedKind::Esm),
            sources: vec!["x".into()],
        };
        let none = Policy::default();
        let pro = Policy {
            ubuntu_pro: true,
            ..Default::default()
        };
        assert_eq!(r.support_end(&none).unwrap().date, d("2025-05-31"));
        assert_eq!(r.support_end(&pro).unwrap().basis, "esm");
        assert!(matches!(
            verdict(&r, &none, d("2025-06-01")),
            Some(Verdict::Ended { days_since: 1, .. })
        ));
        assert!(matches!(
            verdict(&r, &none, d("2025-05-31")),
            Some(Verdict::EndingSoon { days_left: 0, .. })
        ));
        assert_eq!(verdict(&r, &pro, d("2025-06-01")), Some(Verdict::Supported));
    }

    #[test]
    fn yaml_subset_reads_quotes_comments_and_skips_nesting() {
        let text = "---\ntitle: X\npermalink: /debian\nauto:\n  methods:\n    - a: b\nreleases:\n  # c\n  - releaseCycle: \"13\" # trailing\n    codename: 'Trixie'\n    eol: 2028-08-09\n    eoes: 2030-06-30\n    nested:\n      - x: y\n    link: null\n\n---\nbody: not read\n";
        let r = parse_endoflife(text).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].release, "13");
        assert_eq!(r[0].label, "13 (Trixie)");
        assert_eq!(r[0].standard_end, Some(d("2028-08-09")));
        assert_eq!(r[0].extended_end, Some(d("2030-06-30")));
        assert_eq!(r[0].sources, ["https://endoflife.date/debian"]);
    }

    #[test]
    fn malformed_front_matter_is_refused_with_a_line() {
        for (text, needle) in [
            ("no front matter", "front matter"),
            ("---\npermalink: /debian\nreleases:\n  - releaseCycle: \"1\"\n", "not closed"),
            ("---\npermalink: /debian\nreleases:\n  - releaseCycle: \"1\"\n    eol: 2020-13-01\n---\n", "eol"),
            ("---\npermalink: /nodejs\nreleases:\n  - releaseCycle: \"1\"\n---\n", "not an operating system"),
            ("---\npermalink: /debian\nreleases:\n  - releaseCycle: \"1\n---\n", "unterminated"),
        ] {
            let e = parse_endoflife(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }
}
