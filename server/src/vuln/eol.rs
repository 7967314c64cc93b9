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
//! skipped. Refused, as each could give one release's lines to another,
//! drop releases unseen or read a block as a scalar: a top-level line that
//! is neither `key: value` nor a list item; a column-0 list item not right
//! under its key; a line indented under a line that has its value; a line
//! going back to an indentation no line above opened; under `releases:`, a
//! line indented less than a release's keys that is not a release, or a
//! list item at their column not under a key left open; a key given twice
//! in a release; a nested block under a key that is read; a plain release
//! value holding `: `. A YAML library would read more than this needs and
//! add a dependency for nine files of one known shape. The product is told by
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
    // A comment starts at " #" in a plain value, or at its start.
    let plain = match t.find(" #") {
        _ if t.starts_with('#') => "",
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

/// A value of a release: a scalar, where a plain one may not hold `: `
/// (YAML refuses it; it is what two lines run together look like).
fn release_value(raw: &str, line: usize) -> Result<Scalar, EolError> {
    let v = scalar(raw, line)?;
    if let Scalar::Str(s) = &v {
        let quoted = raw.trim_start().starts_with(['"', '\'']);
        if !quoted && (s.contains(": ") || s.ends_with(':')) {
            return Err(EolError::Yaml {
                line,
                what: "a plain value holds `: ` (quote it)".into(),
            });
        }
    }
    Ok(v)
}

/// What the last line at column 0 of a front matter was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Top {
    /// The start, or a key with its value on its line.
    Value,
    /// A key whose value follows below (`key:`, `key: |`): a column-0
    /// list item may follow.
    Open,
    /// The same, once an indented line followed: no column-0 item now.
    Block,
    /// A column-0 list item of the key above.
    Item,
}

/// True when a `key:` value leaves the value to the lines below: nothing
/// (or a comment), a block scalar, a flow collection, an anchor or a tag.
fn opens_block(v: &str) -> bool {
    let t = v.trim();
    t.is_empty() || t.starts_with(['|', '>', '[', '{', '#', '&', '!'])
}

/// The keys of a release that are read: each must hold one scalar.
const READ_KEYS: [&str; 7] = [
    "releaseCycle",
    "releaseDate",
    "eol",
    "eoes",
    "releaseLabel",
    "codename",
    "link",
];

/// A nested line in a release is skipped, unless it belongs to a key that
/// is read (whose value would then be a list, mapping or block, not the
/// scalar it is read as).
fn nested_under(releases: &[Mapping], line: usize) -> Result<(), EolError> {
    match releases.last().and_then(|r| r.last()) {
        Some((k, _, _)) if READ_KEYS.contains(&k.as_str()) => Err(EolError::Yaml {
            line,
            what: format!("`{k}` must be one value, not a nested block"),
        }),
        _ => Ok(()),
    }
}

/// A line under `releases:` that is neither a release nor a key of one.
fn misplaced(line: usize) -> EolError {
    EolError::Yaml {
        line,
        what: "neither a release (`- key: value`) nor a key of one at this indentation".into(),
    }
}

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
    // What the last line at column 0 was, which says whether a column-0
    // list item may follow.
    let mut last = Top::Value;
    // The open indentation levels, innermost last, and whether the line
    // above opens a block (so the next may go deeper).
    let mut levels: Vec<usize> = vec![0];
    let mut opens = false;
    let mut item_indent: Option<usize> = None;
    // Inside a list written at a release's keys' indentation (`key:` then
    // `- x` at the same column).
    let mut compact = false;
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
        // YAML's rules: a line goes deeper only under a line that opens a
        // block, and back only to a level that is open.
        let deeper = levels.last().is_some_and(|&l| indent > l);
        let prev_opens = opens;
        if deeper && !prev_opens {
            return Err(EolError::Yaml {
                line: n,
                what: "indented under a line that has its value".into(),
            });
        }
        while levels.last().is_some_and(|&l| l > indent) {
            levels.pop();
        }
        if levels.last() != Some(&indent) {
            if !deeper {
                return Err(EolError::Yaml {
                    line: n,
                    what: "indented to a level that no line above opened".into(),
                });
            }
            levels.push(indent);
        }
        let item = trimmed.strip_prefix("- ");
        if item.is_some() {
            levels.push(indent + 2); // the keys of a list item
        }
        opens = trimmed == "-"
            || key_value(item.unwrap_or(trimmed)).is_some_and(|(_, v)| opens_block(v));
        if indent == 0 {
            in_releases = false;
            let Some((k, v)) = key_value(trimmed) else {
                if (trimmed == "-" || trimmed.starts_with("- "))
                    && matches!(last, Top::Open | Top::Item)
                {
                    last = Top::Item;
                    continue; // a list of a key we skip
                }
                return Err(EolError::Yaml {
                    line: n,
                    what: "expected `key: value`, or a list item right under a key".into(),
                });
            };
            last = if opens_block(v) {
                Top::Open
            } else {
                Top::Value
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
        if last == Top::Open {
            last = Top::Block;
        }
        if !in_releases {
            continue; // nested value of a top-level key we do not read
        }
        if let Some(rest) = trimmed.strip_prefix("- ") {
            let ii = *item_indent.get_or_insert(indent);
            if indent > ii + 2 || (indent == ii + 2 && (prev_opens || compact)) {
                compact |= indent == ii + 2;
                nested_under(&releases, n)?;
                continue; // a list nested inside a release
            }
            if indent != ii {
                return Err(misplaced(n));
            }
            compact = false;
            let (k, v) = key_value(rest).ok_or_else(|| EolError::Yaml {
                line: n,
                what: "a release must be a mapping (`- key: value`)".into(),
            })?;
            releases.push(vec![(k.to_owned(), release_value(v, n)?, n)]);
            continue;
        }
        let Some(ii) = item_indent else {
            return Err(EolError::Yaml {
                line: n,
                what: "`releases:` must be a list".into(),
            });
        };
        if indent > ii + 2 {
            nested_under(&releases, n)?;
            continue; // deeper: a nested value we skip
        }
        if indent < ii + 2 {
            return Err(misplaced(n));
        }
        compact = false;
        let Some((k, v)) = key_value(trimmed) else {
            return Err(EolError::Yaml {
                line: n,
                what: format!("expected `key: value`, found {trimmed:?}"),
            });
        };
        if let Some(cur) = releases.last_mut() {
            if cur.iter().any(|(key, _, _)| key == k) {
                return Err(EolError::Yaml {
                    line: n,
                    what: format!("`{k}` given twice in one release"),
                });
            }
            cur.push((k.to_owned(), release_value(v, n)?, n));
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

    #[test]
    fn a_value_that_is_only_a_comment_reads_as_null() {
        let text = "---\npermalink: /debian\nreleases:\n  - releaseCycle: \"13\"\n    eoes:  # none yet\n    eol: # none\n---\n";
        let r = parse_endoflife(text).unwrap();
        assert_eq!((r[0].standard_end, r[0].extended_end), (None, None));
    }

    /// Each of these is YAML a parser refuses; read by the subset, each
    /// would give one release's lines to another or drop releases.
    #[test]
    fn yaml_that_would_mix_up_releases_is_refused_naming_its_line() {
        let head =
            "---\npermalink: /debian\nreleases:\n  - releaseCycle: \"12\"\n    eol: 2026-06-10\n";
        for (tail, line, needle) in [
            // `- ` lost: the next release's keys would join release 12.
            (
                "    releaseCycle: \"13\"\n    eol: 2028-08-09\n",
                6,
                "twice",
            ),
            (
                "  -!releaseCycle: \"13\"\n    eoes: 2030-06-30\n",
                6,
                "neither a release",
            ),
            // Indented as far as the keys, under a key that has its value.
            ("    - releaseCycle: \"13\"\n", 6, "neither a release"),
            // ... or under a key that is read (its value would be a list).
            ("    eoes:\n    - releaseCycle: \"13\"\n", 7, "one value"),
            ("    releaseLabel: |\n      Debian 12\n", 7, "one value"),
            // Two lines run together.
            (
                "    link: https://x.example/  - releaseCycle: 13\n",
                6,
                "`: `",
            ),
            // A stray top-level key or item would end the list early.
            (
                "seCycle: \"99\"\n  - releaseCycle: \"13\"\n",
                7,
                "has its value",
            ),
            ("- releaseCycle: \"13\"\n", 6, "right under a key"),
            // A dedent to a level nothing opened.
            (
                "    nested:\n        - x: y\n      - releaseCycle: \"13\"\n",
                8,
                "no line above",
            ),
            ("  x: 1\n", 6, "neither a release"),
        ] {
            let text = format!("{head}{tail}---\n");
            match parse_endoflife(&text) {
                Err(EolError::Yaml { line: l, what }) => {
                    assert_eq!(l, line, "{text}: {what}");
                    assert!(what.contains(needle), "{text}: {what}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    mod properties {
        use super::*;
        use crate::vuln::testgen::{bad_date, date, ymd};
        use proptest::prelude::*;
        use serde_json::{json, Value};

        fn kind() -> impl Strategy<Value = ExtendedKind> {
            prop_oneof![
                Just(ExtendedKind::Lts),
                Just(ExtendedKind::Esm),
                Just(ExtendedKind::Esu),
                Just(ExtendedKind::Els),
            ]
        }

        fn kind_text(k: ExtendedKind) -> &'static str {
            match k {
                ExtendedKind::Lts => "lts",
                ExtendedKind::Esm => "esm",
                ExtendedKind::Esu => "esu",
                ExtendedKind::Els => "els",
            }
        }

        /// Sets `key` to `v`, or (when `v` is `None`) leaves it out or
        /// writes `null`, which mean the same.
        fn put(o: &mut Value, key: &str, v: Option<Value>, null: bool) {
            match v {
                Some(v) => o[key] = v,
                None if null => o[key] = Value::Null,
                None => {}
            }
        }

        // ---- trustwatch.eol/v1 ------------------------------------------

        fn own_release() -> impl Strategy<Value = (Value, EolRelease)> {
            (
                (
                    prop_oneof![
                        Just("debian".to_owned()),
                        Just("windows-server".to_owned()),
                        "[A-Za-z0-9._-]{1,64}"
                    ],
                    "[A-Za-z0-9._-]{1,12}",
                    "\\PC{0,20}",
                ),
                (
                    prop::option::of(date()),
                    prop::option::of(date()),
                    prop::option::of(date()),
                    prop::option::of(kind()),
                ),
                prop::collection::vec("https://[a-z]{1,10}\\.example/[a-z]{0,6}", 1..3),
                any::<bool>(),
            )
                .prop_map(|((os, release, label), (rd, se, ee, k), sources, null)| {
                    let ee = if k.is_some() { ee } else { None };
                    let mut o = json!({"os": os, "release": release, "sources": sources});
                    put(
                        &mut o,
                        "label",
                        (!label.is_empty() || null).then(|| json!(label)),
                        false,
                    );
                    put(&mut o, "release_date", rd.map(|d| json!(ymd(d))), null);
                    put(&mut o, "standard_end", se.map(|d| json!(ymd(d))), null);
                    put(&mut o, "extended_end", ee.map(|d| json!(ymd(d))), null);
                    put(
                        &mut o,
                        "extended_kind",
                        k.map(|k| json!(kind_text(k))),
                        null,
                    );
                    let r = EolRelease {
                        os,
                        release,
                        label,
                        release_date: rd,
                        standard_end: se,
                        extended_end: ee,
                        extended_kind: k,
                        sources,
                    };
                    (o, r)
                })
        }

        /// A document and what it must read as; entries unique by
        /// `(os, release)`.
        fn own_doc() -> impl Strategy<Value = (Value, EolDocument)> {
            (
                prop::collection::vec(own_release(), 0..6),
                prop::option::of(date()),
                any::<bool>(),
            )
                .prop_map(|(entries, snap, null)| {
                    let mut seen = BTreeSet::new();
                    let entries: Vec<_> = entries
                        .into_iter()
                        .filter(|(_, r)| seen.insert((r.os.clone(), r.release.clone())))
                        .collect();
                    let mut doc = json!({
                        "schema": "trustwatch.eol/v1",
                        "entries": entries.iter().map(|(v, _)| v.clone()).collect::<Vec<_>>(),
                    });
                    put(&mut doc, "snapshot_date", snap.map(|d| json!(ymd(d))), null);
                    let expected = EolDocument {
                        schema: "trustwatch.eol/v1".into(),
                        snapshot_date: snap,
                        entries: entries.into_iter().map(|(_, r)| r).collect(),
                    };
                    (doc, expected)
                })
        }

        fn own_invariants(d: &EolDocument) -> Result<(), TestCaseError> {
            prop_assert_eq!(d.schema.as_str(), SCHEMA);
            let mut seen = BTreeSet::new();
            for (i, e) in d.entries.iter().enumerate() {
                prop_assert_eq!(e.validate(i), Ok(()));
                prop_assert!(seen.insert((&e.os, &e.release)));
            }
            Ok(())
        }

        fn bytes(v: &Value) -> Vec<u8> {
            serde_json::to_vec(v).unwrap_or_default()
        }

        // ---- endoflife.date ---------------------------------------------

        /// How a scalar is written.
        #[derive(Debug, Clone, Copy)]
        enum Style {
            Plain,
            Double,
            Single,
        }

        fn style() -> impl Strategy<Value = Style> {
            prop_oneof![Just(Style::Plain), Just(Style::Double), Just(Style::Single)]
        }

        fn quoted(s: &str, st: Style) -> String {
            match st {
                Style::Plain => s.to_owned(),
                Style::Double => format!("\"{s}\""),
                Style::Single if s.contains('\'') => format!("\"{s}\""),
                Style::Single => format!("'{s}'"),
            }
        }

        /// A date field: absent, null, a boolean, or a day.
        #[derive(Debug, Clone)]
        enum DateVal {
            Absent,
            Null(&'static str),
            Bool(&'static str),
            Day(Date, Style),
        }

        impl DateVal {
            fn day(&self) -> Option<Date> {
                match self {
                    DateVal::Day(d, _) => Some(*d),
                    _ => None,
                }
            }
            fn text(&self) -> Option<String> {
                match self {
                    DateVal::Absent => None,
                    DateVal::Null(t) | DateVal::Bool(t) => Some((*t).to_owned()),
                    DateVal::Day(d, st) => Some(quoted(&ymd(*d), *st)),
                }
            }
        }

        fn date_val() -> impl Strategy<Value = DateVal> {
            prop_oneof![
                Just(DateVal::Absent),
                prop_oneof![Just(""), Just("null"), Just("~")].prop_map(DateVal::Null),
                prop_oneof![Just("true"), Just("false"), Just("False")].prop_map(DateVal::Bool),
                (date(), style()).prop_map(|(d, s)| DateVal::Day(d, s)),
                (date(), style()).prop_map(|(d, s)| DateVal::Day(d, s)),
            ]
        }

        #[derive(Debug, Clone)]
        struct Rel {
            cycle: String,
            cycle_style: Style,
            release_date: DateVal,
            eol: DateVal,
            eoes: DateVal,
            codename: Option<(String, Style)>,
            label: Option<(String, Style)>,
            link: Option<Option<String>>,
            /// Keys trustwatch does not read, and a nested block.
            noise: bool,
            /// A trailing comment on every value line.
            comments: bool,
            /// The order of the lines after `releaseCycle`.
            order: Vec<usize>,
        }

        fn rel() -> impl Strategy<Value = Rel> {
            (
                (
                    prop_oneof![
                        "[0-9]{1,2}",
                        "[0-9]{1,2}\\.[0-9]{2}",
                        "[0-9]{2}-[0-9]{2}h[12]"
                    ],
                    style(),
                    date_val(),
                    date_val(),
                    date_val(),
                ),
                (
                    prop::option::of(("[A-Z][a-z]{2,8}( [A-Z][a-z]{2,8})?", style())),
                    prop::option::of((
                        "[A-Za-z]{0,6} ?(__RELEASE_CYCLE__)?( '__CODENAME__'| \\(__CODENAME__\\))?",
                        style(),
                    )),
                    prop::option::of(prop::option::of(
                        "https://[a-z]{1,8}\\.example/[a-z0-9]{0,8}",
                    )),
                    any::<bool>(),
                    any::<bool>(),
                    Just((0..7).collect::<Vec<usize>>()).prop_shuffle(),
                ),
            )
                .prop_map(
                    |(
                        (cycle, cycle_style, release_date, eol, eoes),
                        (codename, label, link, noise, comments, order),
                    )| Rel {
                        cycle,
                        cycle_style,
                        release_date,
                        eol,
                        eoes,
                        codename,
                        // A plain value is read trimmed.
                        label: label.map(|(l, s)| (l.trim().to_owned(), s)),
                        link,
                        noise,
                        comments,
                        order,
                    },
                )
                .prop_filter(
                    "a plain label is not a keyword, empty or quoted",
                    |r| match &r.label {
                        Some((l, Style::Plain)) => {
                            !l.is_empty()
                                && !l.starts_with(['\'', '"'])
                                && !["null", "true", "false"].contains(&l.as_str())
                        }
                        _ => true,
                    },
                )
        }

        const PRODUCTS: [(&str, &str, Option<ExtendedKind>); 9] = [
            ("/debian", "debian", Some(ExtendedKind::Lts)),
            ("/ubuntu", "ubuntu", Some(ExtendedKind::Esm)),
            ("/alpine-linux", "alpine", None),
            ("/alpine", "alpine", None),
            ("/rhel", "rhel", Some(ExtendedKind::Els)),
            ("/almalinux", "almalinux", None),
            ("/rocky-linux", "rocky", None),
            ("/windows", "windows", Some(ExtendedKind::Esu)),
            ("/windows-server", "windows-server", Some(ExtendedKind::Esu)),
        ];

        /// A product file: its text, what it must read as, where each
        /// release's date keys sit, and where the closing `---` starts.
        #[derive(Debug, Clone)]
        struct Product {
            /// The index in [`PRODUCTS`].
            product: usize,
            text: String,
            expected: Vec<EolRelease>,
            rels: Vec<Rel>,
            /// `(release, key, line)` of every date line.
            date_lines: Vec<(usize, &'static str, usize)>,
            close_at: usize,
        }

        fn render(product: usize, rels: &[Rel], indent: usize, noise: bool) -> Product {
            let (permalink, os, ext) = PRODUCTS[product];
            let mut lines: Vec<String> = vec!["---".into(), "title: Some OS".into()];
            if noise {
                lines.extend(
                    [
                        "category: os",
                        "# a comment",
                        "identifiers:",
                        "  - cpe: cpe:2.3:o:x:y",
                        "auto:",
                        "  methods:",
                        "    - git: https://example.invalid/x.git",
                        "      regex: '^v(?P<v>.*)$'",
                        "",
                    ]
                    .map(str::to_owned),
                );
            }
            lines.push(format!("permalink: {permalink}"));
            lines.push("releases:".into());
            let pad = " ".repeat(indent);
            let mut date_lines = Vec::new();
            let mut expected = Vec::new();
            for (i, r) in rels.iter().enumerate() {
                let c = if r.comments { " # note" } else { "" };
                lines.push(format!(
                    "{pad}- releaseCycle: {}{c}",
                    quoted(&r.cycle, r.cycle_style)
                ));
                let mut body: Vec<(Option<&'static str>, String)> = Vec::new();
                for (key, v) in [
                    ("releaseDate", &r.release_date),
                    ("eol", &r.eol),
                    ("eoes", &r.eoes),
                ] {
                    if let Some(t) = v.text() {
                        body.push((Some(key), format!("{key}: {t}")));
                    }
                }
                if let Some((n, st)) = &r.codename {
                    body.push((None, format!("codename: {}", quoted(n, *st))));
                }
                if let Some((l, st)) = &r.label {
                    body.push((None, format!("releaseLabel: {}", quoted(l, *st))));
                }
                match &r.link {
                    Some(Some(u)) => body.push((None, format!("link: {u}"))),
                    Some(None) => body.push((None, "link: null".into())),
                    None => {}
                }
                if r.noise {
                    body.push((None, "lts: true".into()));
                    body.push((None, format!("latest: \"{}.1\"", r.cycle)));
                }
                // Lines beyond the ones generated keep their place.
                let mut ordered: Vec<(Option<&'static str>, String)> = Vec::new();
                for &k in &r.order {
                    if let Some(x) = body.get(k) {
                        ordered.push(x.clone());
                    }
                }
                ordered.extend(body.iter().skip(r.order.len()).cloned());
                for (key, l) in ordered {
                    lines.push(format!("{pad}  {l}{c}"));
                    if let Some(key) = key {
                        date_lines.push((i, key, lines.len()));
                    }
                }
                if r.noise {
                    // A list at the keys' column, under a key left open.
                    lines.push(format!("{pad}  compact:"));
                    lines.push(format!("{pad}  - a: 1"));
                    lines.push(format!("{pad}    b: 2"));
                    lines.push(format!("{pad}  - c"));
                    lines.push(format!("{pad}  nested:"));
                    lines.push(format!("{pad}    - releaseCycle: \"99\""));
                    lines.push(format!("{pad}      eol: not-a-date"));
                    lines.push(String::new());
                    lines.push(format!("{pad}# between releases"));
                }
                let codename = r.codename.as_ref().map(|(n, _)| n.clone());
                let label = match (&r.label, &codename) {
                    (Some((l, _)), _) => l
                        .replace("__RELEASE_CYCLE__", &r.cycle)
                        .replace("__CODENAME__", codename.as_deref().unwrap_or("")),
                    (None, Some(n)) => format!("{} ({n})", r.cycle),
                    (None, None) => r.cycle.clone(),
                };
                let mut sources = vec![format!("https://endoflife.date{permalink}")];
                if let Some(Some(u)) = &r.link {
                    sources.push(u.clone());
                }
                expected.push(EolRelease {
                    os: os.into(),
                    release: r.cycle.clone(),
                    label,
                    release_date: r.release_date.day(),
                    standard_end: r.eol.day(),
                    extended_end: ext.and(r.eoes.day()),
                    extended_kind: r.eoes.day().and(ext),
                    sources,
                });
            }
            let mut text = lines.join("\n");
            text.push('\n');
            let close_at = text.len();
            text.push_str("---\n\n> Body text, not read.\n---\n");
            Product {
                product,
                text,
                expected,
                rels: rels.to_vec(),
                date_lines,
                close_at,
            }
        }

        fn product() -> impl Strategy<Value = Product> {
            (
                0..PRODUCTS.len(),
                prop::collection::vec(rel(), 1..5),
                prop_oneof![Just(2usize), Just(4)],
                any::<bool>(),
            )
                .prop_map(|(p, rels, indent, noise)| {
                    let mut seen = BTreeSet::new();
                    let rels: Vec<Rel> = rels
                        .into_iter()
                        .filter(|r| seen.insert(r.cycle.clone()))
                        .collect();
                    render(p, &rels, indent, noise)
                })
        }

        fn product_invariants(p: &Product, got: &[EolRelease]) -> Result<(), TestCaseError> {
            let mut seen = BTreeSet::new();
            for (i, r) in got.iter().enumerate() {
                prop_assert_eq!(&r.os, &p.expected[0].os);
                prop_assert_eq!(r.validate(i), Ok(()));
                prop_assert!(seen.insert(&r.release));
            }
            Ok(())
        }

        proptest! {
            #[test]
            fn any_bytes_give_a_document_or_an_error(
                bytes in prop::collection::vec(any::<u8>(), 0..2048),
            ) {
                if let Ok(d) = parse_own(&bytes) {
                    own_invariants(&d)?;
                }
            }

            #[test]
            fn any_text_gives_releases_or_an_error(
                bytes in prop::collection::vec(any::<u8>(), 0..2048),
                yamlish in concat!(
                    "---\n(permalink: /debian\n)?(releases:\n)?",
                    "([ -]{0,6}[a-zA-Z]{0,4}:? ?[\"'a-z0-9#-]{0,8}\n){0,30}(---\n)?"
                ),
            ) {
                let _ = parse_endoflife(&String::from_utf8_lossy(&bytes));
                if let Ok(rs) = parse_endoflife(&yamlish) {
                    let mut seen = BTreeSet::new();
                    for (i, r) in rs.iter().enumerate() {
                        prop_assert_eq!(r.os.as_str(), "debian");
                        prop_assert_eq!(r.validate(i), Ok(()));
                        prop_assert!(seen.insert(&r.release));
                    }
                }
            }

            #[test]
            fn a_well_formed_own_document_reads_as_exactly_what_was_written(
                (doc, expected) in own_doc(),
            ) {
                prop_assert_eq!(parse_own(&bytes(&doc)), Ok(expected.clone()));
                // And what the module writes, it reads back.
                let written = serde_json::to_vec(&expected).unwrap_or_default();
                prop_assert_eq!(parse_own(&written), Ok(expected));
            }

            #[test]
            fn a_truncated_own_document_is_refused(
                (doc, _) in own_doc(), cut in any::<prop::sample::Index>(),
            ) {
                let b = bytes(&doc);
                let cut = cut.index(b.len());
                prop_assert!(parse_own(&b[..cut]).is_err());
            }

            #[test]
            fn a_flipped_byte_in_an_own_document_is_refused_or_keeps_the_invariants(
                (doc, expected) in own_doc(),
                at in any::<prop::sample::Index>(),
                x in 1u8..=255,
            ) {
                let mut b = bytes(&doc);
                let at = at.index(b.len());
                b[at] ^= x;
                if let Ok(d) = parse_own(&b) {
                    own_invariants(&d)?;
                    prop_assert_eq!(d.entries.len(), expected.entries.len());
                }
            }

            #[test]
            fn an_own_document_with_a_date_that_is_not_a_calendar_day_is_refused(
                (doc, expected) in own_doc(),
                which in any::<prop::sample::Index>(),
                field in prop_oneof![
                    Just("release_date"),
                    Just("standard_end"),
                    Just("extended_end"),
                    Just("snapshot_date"),
                ],
                bad in bad_date(),
            ) {
                let mut doc = doc;
                if field == "snapshot_date" || expected.entries.is_empty() {
                    doc["snapshot_date"] = json!(bad);
                } else {
                    let i = which.index(expected.entries.len());
                    doc["entries"][i][field] = json!(bad);
                    doc["entries"][i]["extended_kind"] = json!("lts");
                }
                match parse_own(&bytes(&doc)) {
                    Err(EolError::Json(m)) => {
                        prop_assert!(m.contains(&format!("{bad:?}")), "{}", m)
                    }
                    other => prop_assert!(false, "{:?} gave {:?}", bad, other),
                }
            }

            /// Each rule of an entry, broken in one entry, is refused
            /// naming that entry.
            #[test]
            fn an_own_entry_breaking_a_rule_is_refused_by_index(
                (doc, expected) in own_doc()
                    .prop_filter("has entries", |(_, d)| !d.entries.is_empty()),
                which in any::<prop::sample::Index>(),
                rule in 0usize..6,
            ) {
                let mut doc = doc;
                let n = expected.entries.len();
                let i = which.index(n);
                let mut at = i;
                match rule {
                    0 => doc["entries"][i]["sources"] = json!([]),
                    1 => doc["entries"][i]["sources"] = json!(["https://x.example/", "  "]),
                    2 => {
                        doc["entries"][i]["extended_end"] = json!("2030-01-01");
                        doc["entries"][i]["extended_kind"] = Value::Null;
                    }
                    3 => doc["entries"][i]["os"] = json!("debian linux"),
                    4 => doc["entries"][i]["release"] = json!("1".repeat(65)),
                    _ => {
                        let mut again = doc["entries"][i].clone();
                        again["label"] = json!("the same release again");
                        if let Some(list) = doc["entries"].as_array_mut() {
                            list.push(again);
                        }
                        at = n;
                    }
                }
                let got = parse_own(&bytes(&doc));
                let refused_here =
                    matches!(&got, Err(EolError::Invalid { index, .. }) if *index == at);
                prop_assert!(refused_here, "rule {} gave {:?}", rule, got);
            }

            #[test]
            fn an_unknown_key_or_another_schema_is_refused(
                (doc, expected) in own_doc(),
                which in any::<prop::sample::Index>(),
                where_ in 0usize..3,
            ) {
                let mut doc = doc;
                match where_ {
                    0 => doc["schema"] = json!("trustwatch.eol/v2"),
                    1 => doc["snapshot"] = json!("2025-01-01"),
                    _ if expected.entries.is_empty() => doc["extra"] = json!(1),
                    _ => {
                        let i = which.index(expected.entries.len());
                        doc["entries"][i]["eol"] = json!("2025-01-01");
                    }
                }
                let got = parse_own(&bytes(&doc));
                prop_assert!(matches!(got, Err(EolError::Json(_))), "{:?}", got);
            }

            #[test]
            fn a_well_formed_product_file_reads_as_exactly_what_was_written(p in product()) {
                prop_assert_eq!(parse_endoflife(&p.text), Ok(p.expected), "{}", p.text);
            }

            /// Cut anywhere before the closing `---` is complete: refused;
            /// after it (in the body): read exactly as the whole file.
            #[test]
            fn a_truncated_product_file_is_refused_unless_only_its_body_is_cut(
                p in product(), cut in any::<prop::sample::Index>(),
            ) {
                let cut = cut.index(p.text.len());
                let got = parse_endoflife(&p.text[..cut]);
                if cut < p.close_at + 3 {
                    prop_assert!(got.is_err(), "cut at {}: {:?}", cut, got);
                } else {
                    prop_assert_eq!(got, Ok(p.expected));
                }
            }

            /// One flipped byte: refused, or releases that keep the
            /// promises; as many as were written unless the flip made a
            /// `#` or removed a line end, which can hide a line inside a
            /// comment (valid YAML of another meaning, which no reader can
            /// tell). Every other way of losing, adding or merging a
            /// release is YAML the subset refuses.
            #[test]
            fn a_flipped_byte_in_a_product_file_is_refused_or_keeps_the_invariants(
                p in product(),
                at in any::<prop::sample::Index>(),
                x in 1u8..=127,
            ) {
                let mut b = p.text.clone().into_bytes();
                let at = at.index(p.close_at);
                let was = b[at];
                b[at] ^= x;
                let text = String::from_utf8_lossy(&b);
                if let Ok(got) = parse_endoflife(&text) {
                    product_invariants(&p, &got)?;
                    if b[at] != b'#' && was != b'\n' {
                        prop_assert_eq!(got.len(), p.expected.len(), "{}", text);
                    }
                }
            }

            #[test]
            fn a_product_date_that_is_not_a_calendar_day_is_refused_naming_its_line(
                p in product().prop_filter("has dates", |p| !p.date_lines.is_empty()),
                which in any::<prop::sample::Index>(),
                bad in bad_date(),
                quote in any::<bool>(),
            ) {
                let (_, key, line) = p.date_lines[which.index(p.date_lines.len())];
                let mut lines: Vec<String> = p.text.lines().map(str::to_owned).collect();
                let l = &lines[line - 1];
                let indent = l.len() - l.trim_start().len();
                let v = if quote || bad.is_empty() { format!("\"{bad}\"") } else { bad.clone() };
                lines[line - 1] = format!("{}{key}: {v}", " ".repeat(indent));
                let text = lines.join("\n");
                match parse_endoflife(&text) {
                    Err(EolError::Yaml { line: l, what }) => {
                        prop_assert_eq!(l, line);
                        prop_assert!(what.starts_with(key), "{}", what);
                    }
                    other => prop_assert!(false, "{}: {:?}", text, other),
                }
            }

            /// A list written at column 0 under `releases:` (valid YAML,
            /// not the subset read) is refused, never read as no list or
            /// as another release's lines.
            #[test]
            fn a_release_list_at_column_zero_is_refused(p in product()) {
                let q = render(p.product, &p.rels, 0, false);
                prop_assert!(parse_endoflife(&q.text).is_err(), "{}", q.text);
            }

            /// A release whose `- ` is lost (or replaced) would lend its
            /// lines to the release above; it is refused instead.
            #[test]
            fn a_release_that_lost_its_dash_is_refused(
                p in product().prop_filter("two releases", |p| p.expected.len() >= 2),
                which in any::<prop::sample::Index>(),
                with in prop_oneof![Just("  "), Just("x "), Just("-x"), Just("  - ")],
            ) {
                let items: Vec<usize> = p
                    .text
                    .match_indices("- releaseCycle")
                    .map(|(i, _)| i)
                    .filter(|&i| p.text[..i].ends_with("\n  ") || p.text[..i].ends_with("\n    "))
                    .filter(|&i| p.text[..i].rsplit('\n').next().is_some_and(|pad| pad.len() <= 4))
                    .collect();
                prop_assume!(items.len() == p.expected.len());
                let at = items[1 + which.index(items.len() - 1)];
                let text = format!("{}{with}{}", &p.text[..at], &p.text[at + 2..]);
                prop_assert!(parse_endoflife(&text).is_err(), "{}", text);
            }

            #[test]
            fn a_release_listed_twice_is_refused(
                p in product(),
                which in any::<prop::sample::Index>(),
            ) {
                let mut rels = p.rels.clone();
                let again = rels[which.index(rels.len())].clone();
                rels.push(again);
                let q = render(p.product, &rels, 2, false);
                let got = parse_endoflife(&q.text);
                let refused = matches!(&got, Err(EolError::Product(m)) if m.contains("twice"));
                prop_assert!(refused, "{:?}", got);
            }
        }
    }
}
