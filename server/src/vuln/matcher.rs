//! Matching, a pure function: a host inventory, the feed data that concerns
//! it, the clock and the policy in; findings out. No I/O.
//!
//! Rules (DESIGN §2, "never a false alarm"):
//! * The host's OS picks the ecosystems, the comparator and the package name
//!   ([`super::ecosystem`]). Only packages of that OS's package manager are
//!   matched; Debian/Ubuntu/Alpine packages are grouped by source (origin)
//!   name and compared by source version, RPM packages by binary name.
//! * An advisory entry affects an installed version `v` when `v` lies in one
//!   of its `ECOSYSTEM` ranges (OSV evaluation: events sorted by the
//!   distribution's order; `introduced ≤ v`, not `≥ fixed`, not
//!   `> last_affected`, not `≥ limit`), or `v` is in its `versions` list —
//!   unless a range holding `v` says it is fixed. A range with a version the
//!   comparator refuses is skipped and counted, never guessed.
//! * Withdrawn advisories are ignored.
//! * RPM: an installed version without an epoch compared with a bound that
//!   has a non-zero epoch is compared without the epoch, because `rpm -q`
//!   omits the epoch unless asked; comparing it as epoch 0 would flag every
//!   such package (a false alarm) whereas the reverse can only miss a
//!   package whose epoch was bumped.
//! * Findings per package (subject = the name as matched):
//!   `patch.package.vulnerable` when an advisory with a fix (or a
//!   `last_affected` bound) affects it — severity high, critical when a CVE
//!   is in KEV; `patch.package.vulnerable_unfixed` when an affected advisory
//!   has no fix — severity low, high when a CVE is in KEV.
//! * `patch.os.eol` / `patch.os.eol_soon` from the release's end of support
//!   under the policy ([`super::eol::verdict`]); subject = `<os> <release>`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use time::OffsetDateTime;
use trustwatch_common::host::HostAsset;
use trustwatch_common::version::{apk::ApkVersion, compare, DpkgVersion, RpmVersion, Scheme};
use trustwatch_common::{Category, Finding, FindingCode, Severity};

use super::ecosystem::{self, NameKey};
use super::eol::{self, EolRelease, Verdict};
use super::{Event, Policy, MATCH_COLLECTOR};

/// One stored advisory entry, as the matcher reads it. `cves`, `ranges`
/// and `versions` are shared: the loader gives entries with the same
/// content the same allocation, and [`match_host`] judges the ranges of one
/// allocation once per installed version (most entries of a package share
/// their ranges with others: the fix of one update closes many CVEs).
/// They are slices behind the `Arc` so that their length sits in the entry
/// itself: judging an entry whose `versions` list is empty (nearly all)
/// reads no other memory.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAffected {
    pub advisory_id: String,
    pub withdrawn: bool,
    pub cves: Arc<[Cve]>,
    pub ecosystem_raw: Arc<str>,
    pub ranges: Arc<[Vec<Event>]>,
    pub versions: Arc<[String]>,
}

/// A CVE an advisory names, with what KEV and EPSS say of it: joined when
/// the entries are loaded, so that matching looks nothing up.
#[derive(Debug, Clone, PartialEq)]
pub struct Cve {
    pub id: String,
    pub kev: Option<KevInfo>,
    pub epss: Option<EpssInfo>,
}

impl Cve {
    /// A CVE that neither KEV nor EPSS lists.
    pub fn plain(id: impl Into<String>) -> Self {
        Cve {
            id: id.into(),
            kev: None,
            epss: None,
        }
    }
}

/// A KEV entry, as evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KevInfo {
    pub date_added: String,
    pub ransomware: String,
}

/// An EPSS score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpssInfo {
    pub epss: f64,
    pub percentile: f64,
}

/// The age of one feed (stated once per document or report, not per finding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedAge {
    /// `shipped` for the built-in EOL snapshot, else the file imported.
    pub source: String,
    /// When it was imported (unix ms); `None` for the shipped snapshot.
    pub imported_at: Option<i64>,
    /// The date the feed states about itself (catalogue release, score
    /// date, newest record, snapshot date), unix ms.
    pub feed_date: Option<i64>,
}

/// The advisory entries of one (ecosystem key, package name), in advisory
/// order; shared between hosts (and kept between reports by the store's
/// feed cache), so handing them to a match copies nothing.
pub type EntryList = Arc<[StoredAffected]>;

/// Everything the matcher needs about the feeds, for one or more hosts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedData {
    /// Advisory entries by (ecosystem key, package name), KEV and EPSS
    /// joined into their CVEs.
    pub affected: HashMap<(String, String), EntryList>,
    /// End-of-life dates by (os, release).
    pub eol: HashMap<(String, String), EolRelease>,
    /// By feed kind (`osv`, `kev`, `epss`, `eol`); a kind never imported is absent.
    pub ages: BTreeMap<String, FeedAge>,
}

/// A finding the matcher raised, its evidence already serialised: the
/// form the store keeps (and the API serves). A host's match raises
/// hundreds of these, so the evidence is written once from typed,
/// borrowed parts ([`PackageEvidence`]) rather than built as a
/// `serde_json::Value` tree of owned strings and then serialised.
/// Serialises as a [`Finding`] does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatchedFinding {
    pub code: FindingCode,
    pub severity: Severity,
    pub category: Category,
    pub asset: String,
    pub title: String,
    /// A JSON object, as text.
    #[serde(serialize_with = "raw_json_text")]
    pub evidence: String,
    pub subject: String,
    pub collector: &'static str,
}

impl MatchedFinding {
    /// The evidence as a value (it was written by this module, so it parses).
    pub fn evidence(&self) -> Value {
        serde_json::from_str(&self.evidence).unwrap_or(Value::Null)
    }

    /// The same finding with its evidence as a value.
    pub fn into_finding(self) -> Finding {
        Finding {
            evidence: self.evidence(),
            code: self.code,
            severity: self.severity,
            category: self.category,
            asset: self.asset,
            title: self.title,
            subject: self.subject,
            collector: self.collector.to_owned(),
        }
    }
}

/// What matching one host produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MatchOutcome {
    pub findings: Vec<MatchedFinding>,
    /// Ranges skipped because a version in them does not parse.
    pub skipped_ranges: usize,
    /// Why parts of the host could not be matched (no ecosystem, unknown
    /// release, an installed version that does not parse).
    pub notes: Vec<String>,
}

/// A host's packages as its vendor's advisories key them: `(name as
/// matched, installed version, binary name)`, sorted and without
/// duplicates, so that each name is a run of rows (one allocation instead
/// of a tree).
fn package_rows<'h>(
    host: &'h HostAsset,
    manager: &str,
    key: NameKey,
) -> Vec<(&'h str, &'h str, &'h str)> {
    let mut rows = Vec::with_capacity(host.packages.len());
    for p in host.packages.iter().filter(|p| p.manager == manager) {
        let (name, version) = match key {
            NameKey::Source if !p.source_name.is_empty() => (
                p.source_name.as_str(),
                if p.source_version.is_empty() {
                    p.version.as_str()
                } else {
                    p.source_version.as_str()
                },
            ),
            _ => (p.name.as_str(), p.version.as_str()),
        };
        if name.is_empty() || version.is_empty() {
            continue;
        }
        rows.push((name, version, p.name.as_str()));
    }
    rows.sort_unstable();
    rows.dedup();
    rows
}

/// The (ecosystem, package) keys whose advisories a host needs.
pub fn lookups(host: &HostAsset, policy: &Policy) -> Vec<(String, String)> {
    let mut out = Vec::new();
    add_lookups(host, policy, |eco, name| {
        out.push((eco.to_owned(), name.to_owned()));
    });
    out
}

/// Calls `add(ecosystem, package)` for each key of [`lookups`], without
/// building them.
pub fn add_lookups(host: &HostAsset, policy: &Policy, mut add: impl FnMut(&str, &str)) {
    let Some(t) = ecosystem::target(&host.os, policy) else {
        return;
    };
    let rows = package_rows(host, t.manager, t.name_key);
    for eco in &t.ecosystems {
        let mut last = None;
        for r in &rows {
            if last != Some(r.0) {
                add(eco, r.0);
                last = Some(r.0);
            }
        }
    }
}

/// A version parsed once under its distribution's scheme, so that a range
/// is judged without parsing the same strings again for every comparison.
#[derive(Debug, Clone, Copy)]
enum Ver<'a> {
    Dpkg(DpkgVersion<'a>),
    Rpm(RpmVersion<'a>),
    Apk(ApkVersion<'a>),
}

impl<'a> Ver<'a> {
    /// `None` when the distribution's comparator refuses `s`.
    fn parse(scheme: Scheme, s: &'a str) -> Option<Ver<'a>> {
        match scheme {
            Scheme::Dpkg => DpkgVersion::parse(s).ok().map(Ver::Dpkg),
            Scheme::Rpm => RpmVersion::parse(s).ok().map(Ver::Rpm),
            Scheme::Apk => ApkVersion::parse(s).ok().map(Ver::Apk),
        }
    }

    /// The distribution's order. Both sides come from one scheme (the
    /// host's); two schemes never meet, and would compare equal.
    fn order(&self, other: &Ver<'_>) -> Ordering {
        match (self, other) {
            (Ver::Dpkg(a), Ver::Dpkg(b)) => a.cmp(b),
            (Ver::Rpm(a), Ver::Rpm(b)) => a.cmp(b),
            (Ver::Apk(a), Ver::Apk(b)) => a.cmp(b),
            _ => Ordering::Equal,
        }
    }

    /// `self` (the installed version) against an advisory bound, with the
    /// RPM epoch rule of the module documentation.
    fn against(&self, bound: &Ver<'_>) -> Option<Ordering> {
        if let (Ver::Rpm(i), Ver::Rpm(b)) = (self, bound) {
            if i.epoch().is_none() {
                if let Some(e) = b.epoch() {
                    if e.bytes().any(|c| c != b'0') {
                        let raw = b.as_str();
                        let stripped = &raw[raw.find(':').map_or(0, |p| p + 1)..];
                        return RpmVersion::parse(stripped).ok().map(|s| i.cmp(&s));
                    }
                }
            }
        }
        Some(self.order(bound))
    }
}

/// How one range judges a version; the bounds borrow from the range.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RangeVerdict<'e> {
    /// In the range; the smallest fix above it, or the last affected bound.
    Affected {
        fixed: Option<&'e str>,
        last_affected: Option<&'e str>,
    },
    /// Not in the range; `fixed` when a fix at or below it covers it.
    NotAffected { fixed: bool },
    /// A version in the range does not parse.
    Skipped,
}

/// An event with its parsed version; `None` for `introduced: "0"`, which
/// precedes every version.
type Parsed<'e> = (&'e Event, Option<Ver<'e>>);

/// Events per range judged without a heap allocation (real ranges have
/// two: `introduced` and `fixed`).
const INLINE_EVENTS: usize = 4;

fn eval_range<'e>(scheme: Scheme, v: &Ver<'_>, events: &'e [Event]) -> RangeVerdict<'e> {
    let mut inline: [Option<Parsed<'_>>; INLINE_EVENTS] = [None; INLINE_EVENTS];
    let mut heap: Vec<Option<Parsed<'_>>> = Vec::new();
    let items: &mut [Option<Parsed<'_>>] = if events.len() <= INLINE_EVENTS {
        &mut inline[..events.len()]
    } else {
        heap.resize(events.len(), None);
        &mut heap[..]
    };
    for (slot, e) in items.iter_mut().zip(events) {
        let parsed = match e {
            Event::Introduced(x) if x == "0" => None,
            _ => match Ver::parse(scheme, e.version()) {
                Some(p) => Some(p),
                None => return RangeVerdict::Skipped,
            },
        };
        *slot = Some((e, parsed));
    }
    // Stable: equal versions keep record order; `introduced: "0"` first.
    items.sort_by(|a, b| match (a, b) {
        (Some((_, a)), Some((_, b))) => match (a, b) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(a), Some(b)) => a.order(b),
        },
        _ => Ordering::Equal,
    });
    let sorted = || items.iter().flatten();
    let mut affected = false;
    let mut fixed_cover = false;
    for (e, p) in sorted() {
        let c = match p {
            None => Ordering::Greater,
            Some(p) => match v.against(p) {
                Some(c) => c,
                None => return RangeVerdict::Skipped,
            },
        };
        match e {
            Event::Introduced(_) if c != Ordering::Less => {
                affected = true;
                fixed_cover = false;
            }
            Event::Fixed(_) if c != Ordering::Less => {
                affected = false;
                fixed_cover = true;
            }
            Event::LastAffected(_) if c == Ordering::Greater => {
                affected = false;
                fixed_cover = true;
            }
            Event::Limit(_) if c != Ordering::Less => affected = false,
            _ => {}
        }
    }
    if !affected {
        return RangeVerdict::NotAffected { fixed: fixed_cover };
    }
    let above = |want: fn(&Event) -> bool, strict: bool| {
        sorted()
            .filter(|(e, _)| want(e))
            .find(|(_, p)| {
                let c = p.as_ref().and_then(|p| v.against(p));
                matches!(c, Some(Ordering::Less)) || (!strict && matches!(c, Some(Ordering::Equal)))
            })
            .map(|(e, _)| e.version())
    };
    RangeVerdict::Affected {
        fixed: above(|e| matches!(e, Event::Fixed(_)), true),
        last_affected: above(|e| matches!(e, Event::LastAffected(_)), false),
    }
}

/// How one advisory entry judges an installed version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryVerdict {
    NotAffected,
    /// Affected, with a fix (or a last-affected bound).
    Fixed {
        fixed: Option<String>,
        last_affected: Option<String>,
    },
    /// Affected, no fix published.
    Unfixed,
}

/// Judges one entry; also returns how many of its ranges were skipped. An
/// installed version the comparator refuses is judged by nothing: every
/// range is skipped ([`match_host`] notes such versions instead).
pub fn eval_entry(scheme: Scheme, v: &str, entry: &StoredAffected) -> (EntryVerdict, usize) {
    match Ver::parse(scheme, v) {
        Some(v) => eval_parsed(scheme, &v, entry),
        None => (EntryVerdict::NotAffected, entry.ranges.len()),
    }
}

fn eval_parsed(scheme: Scheme, v: &Ver<'_>, entry: &StoredAffected) -> (EntryVerdict, usize) {
    let (verdict, skipped) = conclude(
        scheme,
        v,
        &eval_ranges(scheme, v, &entry.ranges),
        &entry.versions,
    );
    let verdict = match verdict {
        Judged::NotAffected => EntryVerdict::NotAffected,
        Judged::Fixed {
            fixed,
            last_affected,
        } => EntryVerdict::Fixed {
            fixed: fixed.map(str::to_owned),
            last_affected: last_affected.map(str::to_owned),
        },
        Judged::Unfixed => EntryVerdict::Unfixed,
    };
    (verdict, skipped)
}

/// [`EntryVerdict`] borrowing its bounds from the entry's ranges (what
/// [`match_host`] uses, so that judging copies no strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Judged<'e> {
    NotAffected,
    Fixed {
        fixed: Option<&'e str>,
        last_affected: Option<&'e str>,
    },
    Unfixed,
}

/// What the ranges of an entry say about one installed version: all of
/// the entry's verdict but its `versions` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RangesVerdict<'e> {
    skipped: usize,
    fix: Option<&'e str>,
    last: Option<&'e str>,
    in_range_unfixed: bool,
    covered_by_fix: bool,
}

fn eval_ranges<'e>(scheme: Scheme, v: &Ver<'_>, ranges: &'e [Vec<Event>]) -> RangesVerdict<'e> {
    let mut r = RangesVerdict::default();
    for range in ranges {
        match eval_range(scheme, v, range) {
            RangeVerdict::Skipped => r.skipped += 1,
            RangeVerdict::NotAffected { fixed } => r.covered_by_fix |= fixed,
            RangeVerdict::Affected {
                fixed,
                last_affected,
            } => match (fixed, last_affected) {
                (None, None) => r.in_range_unfixed = true,
                (f, l) => {
                    if let Some(f) = f {
                        let lower = match &r.fix {
                            Some(cur) => {
                                matches!(compare(scheme, f, cur), Ok(Ordering::Less))
                            }
                            None => true,
                        };
                        if lower {
                            r.fix = Some(f);
                        }
                    }
                    if r.last.is_none() {
                        r.last = l;
                    }
                }
            },
        }
    }
    r
}

/// An entry's verdict from its ranges' verdict and its `versions` list
/// (which counts only when no range holds or covers the version).
fn conclude<'e>(
    scheme: Scheme,
    v: &Ver<'_>,
    r: &RangesVerdict<'e>,
    versions: &[String],
) -> (Judged<'e>, usize) {
    if r.fix.is_some() || r.last.is_some() {
        return (
            Judged::Fixed {
                fixed: r.fix,
                last_affected: r.last,
            },
            r.skipped,
        );
    }
    if r.in_range_unfixed {
        return (Judged::Unfixed, r.skipped);
    }
    let listed = !r.covered_by_fix
        && versions
            .iter()
            .any(|x| Ver::parse(scheme, x).and_then(|x| v.against(&x)) == Some(Ordering::Equal));
    if listed {
        return (Judged::Unfixed, r.skipped);
    }
    (Judged::NotAffected, r.skipped)
}

/// A hasher for pointer-sized keys (the memo of [`match_host`]): one
/// multiply, instead of SipHash, which protects against chosen keys that a
/// process-local address cannot be.
#[derive(Default)]
struct AddrHasher(u64);

impl std::hash::Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(26);
    }
}

/// Ranges verdicts by the address of the ranges' shared allocation.
type Memo<'e> = HashMap<usize, RangesVerdict<'e>, std::hash::BuildHasherDefault<AddrHasher>>;

/// What the advisories affecting one package say; borrows from the feed
/// data and the host, so collecting it copies no strings. `advisories` and
/// `cves` are sorted and deduplicated by [`Hits::finish`].
/// One `Hits` serves every package of a host in turn ([`Hits::clear`]),
/// so its lists grow once per match instead of once per package.
#[derive(Default)]
struct Hits<'d> {
    advisories: Vec<&'d str>,
    cves: Vec<&'d Cve>,
    ecosystems: BTreeSet<&'d str>,
    fixed: Option<&'d str>,
    last_affected: Option<&'d str>,
    installed: BTreeSet<&'d str>,
}

impl<'d> Hits<'d> {
    /// Records an affecting entry for the installed `version`.
    fn add(&mut self, entry: &'d StoredAffected, version: &'d str) {
        self.advisories.push(&entry.advisory_id);
        self.cves.extend(entry.cves.iter());
        // Consecutive entries mostly share these: skip the set lookups then.
        if self.ecosystems.last() != Some(&&*entry.ecosystem_raw) {
            self.ecosystems.insert(&entry.ecosystem_raw);
        }
        if self.installed.last() != Some(&version) {
            self.installed.insert(version);
        }
    }

    fn finish(&mut self) {
        self.advisories.sort_unstable();
        self.advisories.dedup();
        self.cves.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        self.cves.dedup_by(|a, b| a.id == b.id);
    }

    fn clear(&mut self) {
        self.advisories.clear();
        self.cves.clear();
        self.ecosystems.clear();
        self.fixed = None;
        self.last_affected = None;
        self.installed.clear();
    }
}

/// Matches one host.
pub fn match_host(
    host: &HostAsset,
    data: &FeedData,
    now: OffsetDateTime,
    policy: &Policy,
) -> MatchOutcome {
    let mut out = MatchOutcome::default();
    match ecosystem::target(&host.os, policy) {
        None => out.notes.push(format!(
            "no advisory ecosystem for OS {:?} version {:?}: packages not matched",
            host.os.id, host.os.version_id
        )),
        Some(t) => {
            let rows = package_rows(host, t.manager, t.name_key);
            let mut key = (String::new(), String::new());
            let mut memo = Memo::default();
            let mut fixed = Hits::default();
            let mut unfixed = Hits::default();
            let mut lists: Vec<&[StoredAffected]> = Vec::new();
            let mut binaries: Vec<&str> = Vec::new();
            // At most two findings per name, mostly none: room for one per name
            // spares the regrowth (and copies) of a long vector.
            out.findings
                .reserve(rows.chunk_by(|a, b| a.0 == b.0).count());
            for group in rows.chunk_by(|a, b| a.0 == b.0) {
                let name = group[0].0;
                // The entries of this name in each of the host's ecosystems.
                lists.clear();
                for eco in &t.ecosystems {
                    key.0.clear();
                    key.0.push_str(eco);
                    key.1.clear();
                    key.1.push_str(name);
                    if let Some(entries) = data.affected.get(&key) {
                        lists.push(entries);
                    }
                }
                fixed.clear();
                unfixed.clear();
                for run in group.chunk_by(|a, b| a.1 == b.1) {
                    let version = run[0].1;
                    let Some(v) = Ver::parse(t.scheme, version) else {
                        out.notes.push(format!(
                            "{name}: installed version {version:?} does not parse as {}",
                            t.scheme
                        ));
                        continue;
                    };
                    memo.clear();
                    for entry in lists.iter().copied().flatten().filter(|e| !e.withdrawn) {
                        let ranges = memo
                            .entry(Arc::as_ptr(&entry.ranges).cast::<u8>() as usize)
                            .or_insert_with(|| eval_ranges(t.scheme, &v, &entry.ranges));
                        let (verdict, skipped) = conclude(t.scheme, &v, ranges, &entry.versions);
                        out.skipped_ranges += skipped;
                        let hits = match &verdict {
                            Judged::NotAffected => continue,
                            Judged::Fixed { .. } => &mut fixed,
                            Judged::Unfixed => &mut unfixed,
                        };
                        hits.add(entry, version);
                        if let Judged::Fixed {
                            fixed: f,
                            last_affected: l,
                        } = verdict
                        {
                            if let Some(f) = f {
                                let higher = match &hits.fixed {
                                    Some(cur) => {
                                        matches!(compare(t.scheme, f, cur), Ok(Ordering::Greater))
                                    }
                                    None => true,
                                };
                                if higher {
                                    hits.fixed = Some(f);
                                }
                            }
                            if hits.last_affected.is_none() {
                                hits.last_affected = l;
                            }
                        }
                    }
                }
                if fixed.advisories.is_empty() && unfixed.advisories.is_empty() {
                    continue;
                }
                binaries.clear();
                binaries.extend(group.iter().map(|r| r.2));
                binaries.sort_unstable();
                binaries.dedup();
                for (hits, code) in [
                    (&mut fixed, FindingCode::PatchPackageVulnerable),
                    (&mut unfixed, FindingCode::PatchPackageVulnerableUnfixed),
                ] {
                    if hits.advisories.is_empty() {
                        continue;
                    }
                    hits.finish();
                    out.findings.push(package_finding(
                        host, name, t.manager, &binaries, hits, code,
                    ));
                }
            }
        }
    }
    if let Some(f) = eol_finding(host, data, now, policy, &mut out.notes) {
        out.findings.push(f);
    }
    // (code, subject) is unique per host, so an unstable sort is exact.
    out.findings.sort_unstable_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.code.cmp(&b.code))
            .then_with(|| a.subject.cmp(&b.subject))
    });
    out
}

/// The evidence of a `patch.package.*` finding (DESIGN §2). Every list is
/// sorted and without duplicates.
#[derive(Serialize)]
struct PackageEvidence<'a> {
    /// The name as matched (the source package on Debian, Ubuntu, Alpine).
    package: &'a str,
    manager: &'a str,
    /// The lowest affected installed version (of the source, when matched
    /// by source).
    installed_version: Option<&'a str>,
    /// Every affected installed version, when there are several.
    #[serde(skip_serializing_if = "Option::is_none")]
    installed_versions: Option<&'a BTreeSet<&'a str>>,
    /// The installed binary packages built from it, unless it is one
    /// package of the same name.
    #[serde(skip_serializing_if = "Option::is_none")]
    binaries: Option<&'a [&'a str]>,
    advisories: &'a [&'a str],
    #[serde(serialize_with = "cve_ids")]
    cves: &'a [&'a Cve],
    ecosystems: &'a BTreeSet<&'a str>,
    kev: KevEvidence<'a>,
    /// The highest EPSS score among the CVEs, if any is scored.
    epss: Option<EpssEvidence<'a>>,
    /// `patch.package.vulnerable` only: the version that fixes every
    /// affecting advisory (`null` when only `last_affected` bounds exist).
    #[serde(skip_serializing_if = "Option::is_none")]
    fixed_version: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_affected: Option<&'a str>,
}

fn cve_ids<S: serde::Serializer>(cves: &&[&Cve], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(cves.iter().map(|c| c.id.as_str()))
}

#[derive(Serialize)]
struct KevEvidence<'a> {
    listed: bool,
    #[serde(serialize_with = "kev_entries")]
    entries: &'a [&'a Cve],
}

/// The KEV-listed CVEs of `cves`, as `{cve, date_added, ransomware}`.
fn kev_entries<S: serde::Serializer>(cves: &&[&Cve], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Entry<'a> {
        cve: &'a str,
        date_added: &'a str,
        ransomware: &'a str,
    }
    s.collect_seq(cves.iter().filter_map(|c| {
        c.kev.as_ref().map(|k| Entry {
            cve: &c.id,
            date_added: &k.date_added,
            ransomware: &k.ransomware,
        })
    }))
}

#[derive(Serialize)]
struct EpssEvidence<'a> {
    cve: &'a str,
    score: f64,
    percentile: f64,
}

/// A package finding.
fn package_finding(
    host: &HostAsset,
    name: &str,
    manager: &str,
    binaries: &[&str],
    hits: &Hits<'_>,
    code: FindingCode,
) -> MatchedFinding {
    let in_kev = hits.cves.iter().any(|c| c.kev.is_some());
    let epss = hits
        .cves
        .iter()
        .filter_map(|c| c.epss.as_ref().map(|e| (c, e)))
        .max_by(|a, b| a.1.epss.partial_cmp(&b.1.epss).unwrap_or(Ordering::Equal))
        .map(|(c, e)| EpssEvidence {
            cve: &c.id,
            score: e.epss,
            percentile: e.percentile,
        });
    let severity = match (&code, in_kev) {
        (FindingCode::PatchPackageVulnerable, true) => Severity::Critical,
        (FindingCode::PatchPackageVulnerable, false) => Severity::High,
        (_, true) => Severity::High,
        (_, false) => Severity::Low,
    };
    let first_installed = hits.installed.first().copied();
    let vulnerable = code == FindingCode::PatchPackageVulnerable;
    let evidence = PackageEvidence {
        package: name,
        manager,
        installed_version: first_installed,
        installed_versions: (hits.installed.len() > 1).then_some(&hits.installed),
        binaries: (binaries.len() > 1 || binaries.iter().any(|b| *b != name)).then_some(binaries),
        advisories: &hits.advisories,
        cves: &hits.cves,
        ecosystems: &hits.ecosystems,
        kev: KevEvidence {
            listed: in_kev,
            entries: &hits.cves,
        },
        epss,
        fixed_version: vulnerable.then_some(hits.fixed),
        last_affected: hits.last_affected.filter(|_| vulnerable),
    };
    let installed = first_installed.unwrap_or("");
    let title = match (&code, &hits.fixed) {
        (FindingCode::PatchPackageVulnerable, Some(fix)) => {
            format!("{name} {installed} is vulnerable; fixed in {fix}")
        }
        (FindingCode::PatchPackageVulnerable, None) => {
            format!("{name} {installed} is vulnerable; a fix exists")
        }
        _ => format!("{name} {installed} is vulnerable; no fix published"),
    };
    MatchedFinding {
        // As `Finding::new` does (every `patch.*` code has its category).
        category: code.category().unwrap_or(Category::Coverage),
        code,
        severity,
        asset: host.id.clone(),
        title,
        // About 22 bytes an id, plus the fixed part and the binaries.
        evidence: json_text(
            &evidence,
            320 + 22 * (hits.advisories.len() + hits.cves.len() + binaries.len()),
        ),
        subject: name.to_owned(),
        collector: MATCH_COLLECTOR,
    }
}

/// `value` as JSON text, written into a buffer of `capacity` (an estimate
/// of its length: growing the buffer was a tenth of a match's time).
/// Serialising these types (strings, numbers, lists and maps with string
/// keys) cannot fail; an empty object stands in if it ever did.
fn json_text<T: Serialize>(value: &T, capacity: usize) -> String {
    let mut buf = Vec::with_capacity(capacity);
    match serde_json::to_writer(&mut buf, value) {
        // serde_json writes UTF-8 only.
        Ok(()) => String::from_utf8(buf).unwrap_or_else(|_| "{}".to_owned()),
        Err(_) => "{}".to_owned(),
    }
}

/// Writes evidence text as the JSON it is (a [`MatchedFinding`] serialises
/// as a [`Finding`]).
fn raw_json_text<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    let raw: &RawValue = serde_json::from_str(text).map_err(serde::ser::Error::custom)?;
    raw.serialize(s)
}

fn eol_finding(
    host: &HostAsset,
    data: &FeedData,
    now: OffsetDateTime,
    policy: &Policy,
    notes: &mut Vec<String>,
) -> Option<MatchedFinding> {
    let release = ecosystem::release_of(&host.os)?;
    let Some(r) = data.eol.get(&(host.os.id.clone(), release.clone())) else {
        notes.push(format!("no end-of-life dates for {} {release}", host.os.id));
        return None;
    };
    let today = now.date();
    let (code, end, days) = match eol::verdict(r, policy, today)? {
        Verdict::Supported => return None,
        Verdict::EndingSoon { end, days_left } => (FindingCode::PatchOsEolSoon, end, days_left),
        Verdict::Ended { end, days_since } => (FindingCode::PatchOsEol, end, -days_since),
    };
    let label = if r.label.is_empty() {
        format!("{} {}", r.os, r.release)
    } else {
        r.label.clone()
    };
    let evidence = json!({
        "os": r.os,
        "release": r.release,
        "label": label,
        "support_end": eol::fmt_date(end.date),
        "basis": end.basis,
        "days_left": days,
        "standard_end": r.standard_end.map(eol::fmt_date),
        "extended_end": r.extended_end.map(eol::fmt_date),
        "extended_kind": r.extended_kind.map(|k| k.as_str()),
        "policy": {"ubuntu_pro": policy.ubuntu_pro, "windows_esu": policy.windows_esu},
        "sources": r.sources,
    });
    let title = if code == FindingCode::PatchOsEol {
        format!(
            "{label} reached end of support on {}",
            eol::fmt_date(end.date)
        )
    } else {
        format!(
            "{label} reaches end of support on {}",
            eol::fmt_date(end.date)
        )
    };
    Some(MatchedFinding {
        severity: code.default_severity(),
        category: code.category().unwrap_or(Category::Coverage),
        code,
        asset: host.id.clone(),
        title,
        evidence: json_text(&evidence, 1024),
        subject: format!("{} {}", r.os, r.release),
        collector: MATCH_COLLECTOR,
    })
}

/// `{kind: {source, imported_at, feed_date, age_days}}`: the `feeds` of a
/// `match` document (once per document; findings do not repeat it).
pub fn ages_evidence(ages: &BTreeMap<String, FeedAge>, now: OffsetDateTime) -> Value {
    let now_ms = crate::clock::to_ms(now);
    let mut m = serde_json::Map::new();
    for (k, a) in ages {
        let reference = a.feed_date.or(a.imported_at);
        m.insert(
            k.clone(),
            json!({
                "source": a.source,
                "imported_at": a.imported_at.map(crate::clock::fmt_ms),
                "feed_date": a.feed_date.map(crate::clock::fmt_ms),
                "age_days": reference.map(|r| (now_ms - r).max(0) / 86_400_000),
            }),
        );
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::parse_rfc3339;
    use crate::vuln::osv::{self, Parsed};
    use trustwatch_common::host::{OsIdentity, Package};

    /// The shared samples directory: `$TRUSTWATCH_SHARED_DIR/samples` or
    /// `<repo>/../shared/samples`. Missing is a failure, not a skip.
    fn samples() -> std::path::PathBuf {
        let base = std::env::var_os("TRUSTWATCH_SHARED_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
            });
        let dir = base.join("samples");
        assert!(dir.is_dir(), "feed samples missing at {}", dir.display());
        dir
    }

    /// Appends `entry` to the list of `(eco, package)`.
    fn push_entry(data: &mut FeedData, eco: &str, package: &str, entry: StoredAffected) {
        let list = data
            .affected
            .entry((eco.to_owned(), package.to_owned()))
            .or_insert_with(|| Arc::from(Vec::new()));
        let mut v = list.to_vec();
        v.push(entry);
        *list = v.into();
    }

    fn add_record(data: &mut FeedData, json: &str) {
        let Parsed::Record { advisory, .. } = osv::parse(json.as_bytes()).unwrap() else {
            panic!("out of scope: {json}");
        };
        let cves: Arc<[Cve]> = advisory.cves.iter().map(Cve::plain).collect();
        for a in advisory.affected {
            push_entry(
                data,
                &a.ecosystem,
                &a.package,
                StoredAffected {
                    advisory_id: advisory.id.clone(),
                    withdrawn: advisory.withdrawn.is_some(),
                    cves: cves.clone(),
                    ecosystem_raw: a.ecosystem_raw.into(),
                    ranges: a.ranges.into(),
                    versions: a.versions.into(),
                },
            );
        }
    }

    /// Joins KEV and EPSS into every CVE `id` of `data`, as the loader does.
    fn enrich(data: &mut FeedData, id: &str, kev: Option<KevInfo>, epss: Option<EpssInfo>) {
        for list in data.affected.values_mut() {
            let mut v = list.to_vec();
            for e in &mut v {
                let mut cves = e.cves.to_vec();
                for c in cves.iter_mut().filter(|c| c.id == id) {
                    c.kev = kev.clone();
                    c.epss = epss;
                }
                e.cves = cves.into();
            }
            *list = v.into();
        }
    }

    fn add_sample(data: &mut FeedData, file: &str) {
        let text = std::fs::read_to_string(samples().join("osv").join(file)).unwrap();
        add_record(data, &text);
    }

    fn record(id: &str, eco: &str, pkg: &str, events: &str, extra: &str) -> String {
        format!(
            r#"{{"id":"{id}","modified":"2025-01-01T00:00:00Z","aliases":["CVE-2025-0001"]{extra},
               "affected":[{{"package":{{"ecosystem":"{eco}","name":"{pkg}"}},
               "ranges":[{{"type":"ECOSYSTEM","events":{events}}}]}}]}}"#
        )
    }

    fn pkg(manager: &str, name: &str, version: &str, source: &str) -> Package {
        Package {
            manager: manager.into(),
            name: name.into(),
            version: version.into(),
            source_name: source.into(),
            source_version: version.into(),
            arch: "amd64".into(),
        }
    }

    fn host(os: &str, v: &str, packages: Vec<Package>) -> HostAsset {
        HostAsset {
            id: "h1".into(),
            os: OsIdentity {
                id: os.into(),
                version_id: v.into(),
                ..Default::default()
            },
            kernel: "6.1".into(),
            packages,
            ..Default::default()
        }
    }

    fn now(s: &str) -> OffsetDateTime {
        parse_rfc3339(s).unwrap()
    }

    fn run(h: &HostAsset, data: &FeedData) -> MatchOutcome {
        match_host(h, data, now("2025-10-01T00:00:00Z"), &Policy::default())
    }

    fn codes(o: &MatchOutcome) -> Vec<(String, String)> {
        o.findings
            .iter()
            .filter(|f| f.code.as_str().starts_with("patch.package"))
            .map(|f| (f.code.to_string(), f.subject.clone()))
            .collect()
    }

    fn debian_openssl(fixed: &str) -> FeedData {
        let mut d = FeedData::default();
        add_record(
            &mut d,
            &record(
                "DSA-9000-1",
                "Debian:12",
                "openssl",
                &format!(r#"[{{"introduced":"0"}},{{"fixed":"{fixed}"}}]"#),
                "",
            ),
        );
        d
    }

    #[test]
    fn a_binary_package_is_matched_by_its_source_name() {
        let d = debian_openssl("3.0.15-1~deb12u1");
        let h = host(
            "debian",
            "12",
            vec![
                pkg("dpkg", "libssl3", "3.0.11-1~deb12u2", "openssl"),
                pkg("dpkg", "openssl", "3.0.11-1~deb12u2", "openssl"),
            ],
        );
        let o = run(&h, &d);
        assert_eq!(
            codes(&o),
            [("patch.package.vulnerable".into(), "openssl".into())]
        );
        let f = &o.findings[0];
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.collector, "match");
        assert_eq!(f.evidence()["fixed_version"], "3.0.15-1~deb12u1");
        assert_eq!(f.evidence()["installed_version"], "3.0.11-1~deb12u2");
        assert_eq!(f.evidence()["binaries"], json!(["libssl3", "openssl"]));
        assert_eq!(f.evidence()["advisories"], json!(["DSA-9000-1"]));
        assert_eq!(f.evidence()["cves"], json!(["CVE-2025-0001"]));
        assert_eq!(f.evidence()["kev"], json!({"listed": false, "entries": []}));
        assert_eq!(f.evidence()["epss"], Value::Null);
        // Complete, and without the feeds' ages (stated once per document).
        let evidence = f.evidence();
        let keys: Vec<&str> = evidence
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "advisories",
                "binaries",
                "cves",
                "ecosystems",
                "epss",
                "fixed_version",
                "installed_version",
                "kev",
                "manager",
                "package"
            ]
        );
        // An advisory keyed on the binary name does not match a source-keyed distro.
        let mut d = FeedData::default();
        add_record(
            &mut d,
            &record(
                "DSA-9001-1",
                "Debian:12",
                "libssl3",
                r#"[{"introduced":"0"},{"fixed":"9"}]"#,
                "",
            ),
        );
        assert!(codes(&run(&h, &d)).is_empty());
    }

    #[test]
    fn a_fixed_or_newer_version_raises_nothing() {
        let d = debian_openssl("3.0.15-1~deb12u1");
        for v in ["3.0.15-1~deb12u1", "3.0.15-1", "3.0.16-1~deb12u1"] {
            let h = host("debian", "12", vec![pkg("dpkg", "libssl3", v, "openssl")]);
            assert!(codes(&run(&h, &d)).is_empty(), "{v}");
        }
        // The same package on another release is not matched by Debian:12.
        let h = host(
            "debian",
            "11",
            vec![pkg("dpkg", "libssl3", "1.0", "openssl")],
        );
        assert!(codes(&run(&h, &d)).is_empty());
    }

    #[test]
    fn tilde_versions_sort_before_the_release() {
        // `~deb12u1` is below the plain release: vulnerable against 3.0.15-1.
        let d = debian_openssl("3.0.15-1");
        let h = host(
            "debian",
            "12",
            vec![pkg("dpkg", "libssl3", "3.0.15-1~deb12u1", "openssl")],
        );
        assert_eq!(codes(&run(&h, &d)).len(), 1);
        // And `~deb12u1` < `~deb12u2`, whatever string order says of u10.
        let d = debian_openssl("3.0.15-1~deb12u10");
        let h = host(
            "debian",
            "12",
            vec![pkg("dpkg", "libssl3", "3.0.15-1~deb12u9", "openssl")],
        );
        assert_eq!(codes(&run(&h, &d)).len(), 1);
    }

    #[test]
    fn dpkg_epochs_decide_before_the_upstream_version() {
        let mut d = FeedData::default();
        add_sample(&mut d, "USN-6859-1.json");
        let o = |v: &str| {
            let h = host(
                "ubuntu",
                "22.04",
                vec![pkg("dpkg", "openssh-server", v, "openssh")],
            );
            codes(&run(&h, &d))
        };
        assert_eq!(o("1:8.9p1-3ubuntu0.7").len(), 1);
        assert!(o("1:8.9p1-3ubuntu0.10").is_empty());
        // No epoch is epoch 0 under dpkg: below `1:…`, whatever follows.
        assert_eq!(o("9.9p1-1").len(), 1);
    }

    #[test]
    fn an_advisory_without_a_fix_raises_the_unfixed_code() {
        let mut d = FeedData::default();
        add_record(
            &mut d,
            &record(
                "DEBIAN-CVE-2025-1",
                "Debian:12",
                "linux",
                r#"[{"introduced":"0"}]"#,
                "",
            ),
        );
        let h = host(
            "debian",
            "12",
            vec![pkg("dpkg", "linux-image-amd64", "6.1.1-1", "linux")],
        );
        let o = run(&h, &d);
        assert_eq!(
            codes(&o),
            [("patch.package.vulnerable_unfixed".into(), "linux".into())]
        );
        assert_eq!(o.findings[0].severity, Severity::Low);
        assert!(o.findings[0].evidence().get("fixed_version").is_none());
    }

    #[test]
    fn last_affected_bounds_the_range_inclusively() {
        let mut d = FeedData::default();
        add_record(
            &mut d,
            &record(
                "X-1",
                "Debian:12",
                "zlib",
                r#"[{"introduced":"1.0-1"},{"last_affected":"1.2-1"}]"#,
                "",
            ),
        );
        let o = |v: &str| {
            let h = host("debian", "12", vec![pkg("dpkg", "zlib1g", v, "zlib")]);
            run(&h, &d)
        };
        let hit = o("1.2-1");
        assert_eq!(
            codes(&hit),
            [("patch.package.vulnerable".into(), "zlib".into())]
        );
        assert_eq!(hit.findings[0].evidence()["last_affected"], "1.2-1");
        assert!(codes(&o("1.2-2")).is_empty());
        assert!(codes(&o("0.9-1")).is_empty(), "below introduced");
    }

    #[test]
    fn a_listed_version_is_affected_and_an_unlisted_one_is_not() {
        let mut d = FeedData::default();
        add_record(
            &mut d,
            r#"{"id":"X-2","modified":"2025-01-01T00:00:00Z","affected":[
                {"package":{"ecosystem":"Debian:12","name":"curl"},"versions":["7.88.1-10","7.88.1-10+deb12u1"]}]}"#,
        );
        let o = |v: &str| {
            let h = host("debian", "12", vec![pkg("dpkg", "curl", v, "curl")]);
            codes(&run(&h, &d))
        };
        assert_eq!(
            o("7.88.1-10+deb12u1"),
            [("patch.package.vulnerable_unfixed".into(), "curl".into())]
        );
        assert!(o("7.88.1-10+deb12u2").is_empty());
    }

    #[test]
    fn entries_sharing_ranges_are_still_judged_by_their_own_versions_list() {
        // One shared ranges allocation (as the loader interns them) that
        // neither holds nor covers 1.5-1; only the entry listing 1.5-1 in
        // its own `versions` affects it, whichever entry is judged first.
        let ranges: Arc<[Vec<Event>]> = Arc::from(vec![vec![
            Event::Introduced("2.0-1".into()),
            Event::Fixed("3.0-1".into()),
        ]]);
        let entry = |id: &str, listed: &str| StoredAffected {
            advisory_id: id.into(),
            withdrawn: false,
            cves: Arc::from(Vec::new()),
            ecosystem_raw: "Debian:12".into(),
            ranges: ranges.clone(),
            versions: Arc::from(vec![listed.to_owned()]),
        };
        let h = host("debian", "12", vec![pkg("dpkg", "zlib1g", "1.5-1", "zlib")]);
        for order in [["B", "A"], ["A", "B"]] {
            let mut d = FeedData::default();
            for id in order {
                let e = entry(id, if id == "A" { "1.5-1" } else { "1.4-1" });
                push_entry(&mut d, "Debian:12", "zlib", e);
            }
            let o = run(&h, &d);
            assert_eq!(
                codes(&o),
                [("patch.package.vulnerable_unfixed".into(), "zlib".into())],
                "{order:?}"
            );
            assert_eq!(
                o.findings[0].evidence()["advisories"],
                json!(["A"]),
                "{order:?}"
            );
        }
    }

    #[test]
    fn an_installed_version_that_does_not_parse_is_judged_by_no_range() {
        let d = debian_openssl("3.0.15-1~deb12u1");
        let entry = &d.affected[&("Debian:12".to_owned(), "openssl".to_owned())][0];
        assert_eq!(
            eval_entry(Scheme::Dpkg, "3.0 11", entry),
            (EntryVerdict::NotAffected, 1)
        );
        assert!(matches!(
            eval_entry(Scheme::Dpkg, "3.0.11-1", entry),
            (EntryVerdict::Fixed { .. }, 0)
        ));
    }

    #[test]
    fn withdrawn_advisories_are_ignored() {
        let mut d = FeedData::default();
        add_record(
            &mut d,
            &record(
                "DSA-9002-1",
                "Debian:12",
                "openssl",
                r#"[{"introduced":"0"},{"fixed":"9.0-1"}]"#,
                r#","withdrawn":"2025-02-01T00:00:00Z""#,
            ),
        );
        let h = host(
            "debian",
            "12",
            vec![pkg("dpkg", "libssl3", "3.0.0-1", "openssl")],
        );
        assert!(codes(&run(&h, &d)).is_empty());
    }

    #[test]
    fn a_fix_that_does_not_parse_skips_its_range_and_is_counted() {
        let mut d = FeedData::default();
        add_record(
            &mut d,
            &record(
                "X-3",
                "Debian:12",
                "openssl",
                r#"[{"introduced":"0"},{"fixed":"x:1.0"}]"#,
                "",
            ),
        );
        let h = host(
            "debian",
            "12",
            vec![pkg("dpkg", "libssl3", "3.0.0-1", "openssl")],
        );
        let o = run(&h, &d);
        assert!(codes(&o).is_empty());
        assert_eq!(o.skipped_ranges, 1);
    }

    #[test]
    fn kev_listing_makes_it_critical_and_epss_is_evidence() {
        let mut d = debian_openssl("3.0.15-1~deb12u1");
        enrich(
            &mut d,
            "CVE-2025-0001",
            Some(KevInfo {
                date_added: "2025-03-01".into(),
                ransomware: "Known".into(),
            }),
            Some(EpssInfo {
                epss: 0.5,
                percentile: 0.97,
            }),
        );
        let h = host(
            "debian",
            "12",
            vec![pkg("dpkg", "libssl3", "3.0.0-1", "openssl")],
        );
        let f = &run(&h, &d).findings[0];
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.evidence()["kev"]["listed"], true);
        assert_eq!(
            f.evidence()["kev"]["entries"][0]["date_added"],
            "2025-03-01"
        );
        assert_eq!(f.evidence()["epss"]["percentile"], 0.97);
    }

    fn with_shipped_eol() -> FeedData {
        let mut d = FeedData::default();
        for r in eol::shipped().unwrap().entries {
            d.eol.insert((r.os.clone(), r.release.clone()), r);
        }
        d
    }

    fn eol_codes(h: &HostAsset, at: &str, p: &Policy) -> Vec<(String, String, String)> {
        match_host(h, &with_shipped_eol(), now(at), p)
            .findings
            .iter()
            .filter(|f| f.code.as_str().starts_with("patch.os"))
            .map(|f| {
                (
                    f.code.to_string(),
                    f.subject.clone(),
                    f.evidence()["basis"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn end_of_life_counts_debian_lts() {
        let p = Policy::default();
        let d9 = host("debian", "9", vec![]);
        assert_eq!(
            eol_codes(&d9, "2026-03-01T00:00:00Z", &p),
            [("patch.os.eol".into(), "debian 9".into(), "lts".into())]
        );
        // Debian 12: security support ends 2026-07-11, LTS 2028-06-30.
        let d12 = host("debian", "12", vec![]);
        assert!(eol_codes(&d12, "2026-08-01T00:00:00Z", &p).is_empty());
        assert_eq!(
            eol_codes(&d12, "2028-03-01T00:00:00Z", &p),
            [("patch.os.eol_soon".into(), "debian 12".into(), "lts".into())]
        );
    }

    #[test]
    fn ubuntu_esm_counts_only_with_ubuntu_pro() {
        let h = host("ubuntu", "20.04", vec![]);
        let none = Policy::default();
        let pro = Policy {
            ubuntu_pro: true,
            ..Default::default()
        };
        assert_eq!(
            eol_codes(&h, "2025-03-01T00:00:00Z", &none),
            [(
                "patch.os.eol_soon".into(),
                "ubuntu 20.04".into(),
                "standard".into()
            )]
        );
        assert_eq!(
            eol_codes(&h, "2025-06-01T00:00:00Z", &none),
            [(
                "patch.os.eol".into(),
                "ubuntu 20.04".into(),
                "standard".into()
            )]
        );
        assert!(eol_codes(&h, "2025-06-01T00:00:00Z", &pro).is_empty());
    }

    #[test]
    fn windows_esu_counts_only_when_configured() {
        let h = host("windows", "10-22h2", vec![]);
        let esu = Policy {
            windows_esu: true,
            ..Default::default()
        };
        assert_eq!(
            eol_codes(&h, "2026-01-01T00:00:00Z", &Policy::default())[0].0,
            "patch.os.eol"
        );
        assert!(eol_codes(&h, "2026-01-01T00:00:00Z", &esu).is_empty());
    }

    #[test]
    fn ubuntu_pro_advisories_apply_only_under_the_pro_policy() {
        let mut d = FeedData::default();
        add_sample(&mut d, "UBUNTU-CVE-2025-38094.json");
        let h = host(
            "ubuntu",
            "14.04",
            vec![pkg(
                "dpkg",
                "linux-image-generic",
                "3.13.0-206.257",
                "linux",
            )],
        );
        let o = match_host(&h, &d, now("2025-10-01T00:00:00Z"), &Policy::default());
        assert!(codes(&o).is_empty());
        let pro = Policy {
            ubuntu_pro: true,
            ..Default::default()
        };
        let o = match_host(&h, &d, now("2025-10-01T00:00:00Z"), &pro);
        assert_eq!(
            codes(&o),
            [("patch.package.vulnerable_unfixed".into(), "linux".into())]
        );
        assert_eq!(o.findings[0].evidence()["cves"], json!(["CVE-2025-38094"]));
    }

    #[test]
    fn alpine_sample_matches_by_origin_within_its_release() {
        let mut d = FeedData::default();
        add_sample(&mut d, "ALPINE-CVE-2025-26519.json");
        let o = |v: &str| {
            let h = host(
                "alpine",
                "3.20.3",
                vec![pkg("apk", "musl-utils", v, "musl")],
            );
            run(&h, &d)
        };
        let hit = o("1.2.5-r0");
        assert_eq!(
            codes(&hit),
            [("patch.package.vulnerable".into(), "musl".into())]
        );
        assert_eq!(hit.findings[0].evidence()["fixed_version"], "1.2.5-r1");
        assert_eq!(
            hit.findings[0].evidence()["cves"],
            json!(["CVE-2025-26519"])
        );
        assert!(codes(&o("1.2.5-r1")).is_empty());
        assert!(codes(&o("0.9.12-r0")).is_empty(), "below introduced 0.9.13");
    }

    #[test]
    fn almalinux_sample_matches_binary_rpms_and_tolerates_a_missing_epoch() {
        let mut d = FeedData::default();
        add_sample(&mut d, "ALSA-2025_23919.json");
        let h = host(
            "almalinux",
            "9.6",
            vec![
                pkg("rpm", "httpd", "2.4.62-7.el9_7.2", "httpd"),
                pkg("rpm", "httpd-core", "2.4.62-7.el9_7.3", "httpd"),
                // The advisory's fix is `1:2.4.62-7.el9_7.3`; rpm -q omits epochs.
                pkg("rpm", "mod_ssl", "2.4.62-7.el9_7.3", "httpd"),
                // An explicit epoch above the advisory's (none = 0) is newer.
                pkg("rpm", "mod_session", "1:2.4.62-7.el9_7.2", "httpd"),
            ],
        );
        let o = run(&h, &d);
        assert_eq!(
            codes(&o),
            [("patch.package.vulnerable".into(), "httpd".into())]
        );
        assert_eq!(
            o.findings[0].evidence()["advisories"],
            json!(["ALSA-2025:23919"])
        );
        let h = host(
            "almalinux",
            "9.6",
            vec![pkg("rpm", "mod_ssl", "1:2.4.62-7.el9_7.2", "httpd")],
        );
        assert_eq!(
            codes(&run(&h, &d)).len(),
            1,
            "an explicit older epoch-1 build"
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Valid dpkg versions: epoch, upstream with tildes, revision.
        fn dpkg_version() -> impl Strategy<Value = String> {
            "([1-3]:)?[0-9]{1,2}(\\.[0-9]{1,2}){0,2}(~[a-z0-9]{1,3})?(-[0-9]{1,2}(\\+deb12u[0-9])?)?"
        }

        /// Anything a feed might hold: valid or not under any scheme.
        fn any_version() -> impl Strategy<Value = String> {
            prop_oneof![dpkg_version(), "[0-9a-zA-Z.+~:_^-]{0,10}"]
        }

        fn any_event() -> impl Strategy<Value = Event> {
            (0u8..4, any_version()).prop_map(|(k, v)| match k {
                0 => Event::Introduced(v),
                1 => Event::Fixed(v),
                2 => Event::LastAffected(v),
                _ => Event::Limit(v),
            })
        }

        fn openssl_host(version: &str) -> HostAsset {
            host(
                "debian",
                "12",
                vec![pkg("dpkg", "libssl3", version, "openssl")],
            )
        }

        fn entry(id: &str, ranges: Vec<Vec<Event>>, versions: Vec<String>) -> StoredAffected {
            StoredAffected {
                advisory_id: id.into(),
                withdrawn: false,
                cves: Arc::from(vec![Cve::plain("CVE-2025-0001")]),
                ecosystem_raw: "Debian:12".into(),
                ranges: ranges.into(),
                versions: versions.into(),
            }
        }

        proptest! {
            /// The comparator is the oracle: `introduced 0, fixed F`
            /// affects exactly the versions it orders below F.
            #[test]
            fn one_fixed_range_affects_exactly_the_versions_below_its_fix(
                (installed, fixed) in prop_oneof![
                    (dpkg_version(), dpkg_version()),
                    // The fix itself, and the same version spelt with a 0 epoch.
                    dpkg_version().prop_map(|v| (v.clone(), v)),
                    dpkg_version()
                        .prop_filter("no epoch", |v| !v.contains(':'))
                        .prop_map(|v| (format!("0:{v}"), v)),
                ],
            ) {
                let mut d = FeedData::default();
                push_entry(&mut d, "Debian:12", "openssl", entry(
                    "DSA-1",
                    vec![vec![Event::Introduced("0".into()), Event::Fixed(fixed.clone())]],
                    vec![],
                ));
                let o = run(&openssl_host(&installed), &d);
                let below = compare(Scheme::Dpkg, &installed, &fixed).unwrap() == Ordering::Less;
                if below {
                    prop_assert_eq!(
                        codes(&o),
                        [("patch.package.vulnerable".to_owned(), "openssl".to_owned())]
                    );
                    prop_assert_eq!(&o.findings[0].evidence()["fixed_version"], &json!(fixed));
                } else {
                    prop_assert!(codes(&o).is_empty(), "{installed} >= {fixed}: {:?}", codes(&o));
                }
                prop_assert_eq!(o.skipped_ranges, 0);
            }

            /// Any events, lists and installed versions: no panic, every
            /// finding's evidence is a JSON object naming the package, and
            /// a range is skipped only when one of its versions does not
            /// parse.
            #[test]
            fn any_ranges_are_judged_without_panic_and_with_well_formed_evidence(
                ranges in prop::collection::vec(prop::collection::vec(any_event(), 0..5), 0..3),
                versions in prop::collection::vec(any_version(), 0..3),
                installed in any_version(),
            ) {
                let all_parse = ranges.iter().flatten().all(|e| {
                    matches!(e, Event::Introduced(v) if v == "0")
                        || DpkgVersion::parse(e.version()).is_ok()
                });
                let mut d = FeedData::default();
                push_entry(&mut d, "Debian:12", "openssl", entry("DSA-2", ranges, versions));
                let o = run(&openssl_host(&installed), &d);
                for f in &o.findings {
                    let ev = f.evidence();
                    prop_assert!(ev.is_object(), "{}", f.evidence);
                    if f.code.as_str().starts_with("patch.package") {
                        prop_assert_eq!(&ev["package"], "openssl");
                        prop_assert_eq!(&ev["advisories"], &json!(["DSA-2"]));
                    }
                }
                if all_parse && DpkgVersion::parse(&installed).is_ok() {
                    prop_assert_eq!(o.skipped_ranges, 0);
                }
            }
        }
    }
}
