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

use serde_json::{json, Value};
use time::OffsetDateTime;
use trustwatch_common::host::HostAsset;
use trustwatch_common::version::{compare, RpmVersion, Scheme};
use trustwatch_common::{Finding, FindingCode, Severity};

use super::ecosystem::{self, NameKey};
use super::eol::{self, EolRelease, Verdict};
use super::{Event, Policy, MATCH_COLLECTOR};

/// One stored advisory entry, as the matcher reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAffected {
    pub advisory_id: String,
    pub withdrawn: bool,
    pub cves: Arc<Vec<String>>,
    pub ecosystem_raw: String,
    pub ranges: Vec<Vec<Event>>,
    pub versions: Vec<String>,
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

/// The age of one feed, for evidence.
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

/// Everything the matcher needs about the feeds, for one or more hosts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedData {
    /// Advisory entries by (ecosystem key, package name).
    pub affected: HashMap<(String, String), Vec<StoredAffected>>,
    pub kev: HashMap<String, KevInfo>,
    pub epss: HashMap<String, EpssInfo>,
    /// End-of-life dates by (os, release).
    pub eol: HashMap<(String, String), EolRelease>,
    /// By feed kind (`osv`, `kev`, `epss`, `eol`); a kind never imported is absent.
    pub ages: BTreeMap<String, FeedAge>,
}

/// What matching one host produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MatchOutcome {
    pub findings: Vec<Finding>,
    /// Ranges skipped because a version in them does not parse.
    pub skipped_ranges: usize,
    /// Why parts of the host could not be matched (no ecosystem, unknown
    /// release, an installed version that does not parse).
    pub notes: Vec<String>,
}

/// The installed packages of a host grouped as the vendor keys them:
/// (name as matched) → (installed versions → binary package names).
pub type Groups = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// Groups a host's packages by the name its vendor's advisories use.
pub fn group_packages(host: &HostAsset, manager: &str, key: NameKey) -> Groups {
    let mut groups: Groups = BTreeMap::new();
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
        groups
            .entry(name.to_owned())
            .or_default()
            .entry(version.to_owned())
            .or_default()
            .insert(p.name.clone());
    }
    groups
}

/// The (ecosystem, package) keys whose advisories a host needs.
pub fn lookups(host: &HostAsset, policy: &Policy) -> Vec<(String, String)> {
    let Some(t) = ecosystem::target(&host.os, policy) else {
        return Vec::new();
    };
    let groups = group_packages(host, t.manager, t.name_key);
    t.ecosystems
        .iter()
        .flat_map(|e| groups.keys().map(move |n| (e.clone(), n.clone())))
        .collect()
}

fn parses(scheme: Scheme, v: &str) -> bool {
    ecosystem::version_parses(scheme, v)
}

/// `installed` against an advisory bound, with the RPM epoch rule.
fn cmp(scheme: Scheme, installed: &str, bound: &str) -> Option<Ordering> {
    if scheme == Scheme::Rpm {
        let i = RpmVersion::parse(installed).ok()?;
        let b = RpmVersion::parse(bound).ok()?;
        if i.epoch().is_none() {
            if let Some(e) = b.epoch() {
                if e.bytes().any(|c| c != b'0') {
                    let stripped = &bound[bound.find(':').map_or(0, |p| p + 1)..];
                    return compare(scheme, installed, stripped).ok();
                }
            }
        }
        return Some(i.cmp(&b));
    }
    compare(scheme, installed, bound).ok()
}

/// How one range judges a version.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RangeVerdict {
    /// In the range; the smallest fix above it, or the last affected bound.
    Affected {
        fixed: Option<String>,
        last_affected: Option<String>,
    },
    /// Not in the range; `fixed` when a fix at or below it covers it.
    NotAffected { fixed: bool },
    /// A version in the range does not parse.
    Skipped,
}

fn eval_range(scheme: Scheme, v: &str, events: &[Event]) -> RangeVerdict {
    let is_zero = |e: &Event| matches!(e, Event::Introduced(x) if x == "0");
    if events
        .iter()
        .any(|e| !is_zero(e) && !parses(scheme, e.version()))
    {
        return RangeVerdict::Skipped;
    }
    let mut sorted: Vec<&Event> = events.iter().collect();
    // Stable: equal versions keep record order. All versions parse here.
    sorted.sort_by(|a, b| match (is_zero(a), is_zero(b)) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => compare(scheme, a.version(), b.version()).unwrap_or(Ordering::Equal),
    });
    let mut affected = false;
    let mut fixed_cover = false;
    for e in &sorted {
        let c = if is_zero(e) {
            Some(Ordering::Greater)
        } else {
            cmp(scheme, v, e.version())
        };
        let Some(c) = c else {
            return RangeVerdict::Skipped;
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
        sorted
            .iter()
            .filter(|e| want(e))
            .find(|e| {
                matches!(cmp(scheme, v, e.version()), Some(Ordering::Less))
                    || (!strict && matches!(cmp(scheme, v, e.version()), Some(Ordering::Equal)))
            })
            .map(|e| e.version().to_owned())
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

/// Judges one entry; also returns how many of its ranges were skipped.
pub fn eval_entry(scheme: Scheme, v: &str, entry: &StoredAffected) -> (EntryVerdict, usize) {
    let mut skipped = 0;
    let mut fix: Option<String> = None;
    let mut last: Option<String> = None;
    let mut in_range_unfixed = false;
    let mut covered_by_fix = false;
    for r in &entry.ranges {
        match eval_range(scheme, v, r) {
            RangeVerdict::Skipped => skipped += 1,
            RangeVerdict::NotAffected { fixed } => covered_by_fix |= fixed,
            RangeVerdict::Affected {
                fixed,
                last_affected,
            } => match (fixed, last_affected) {
                (None, None) => in_range_unfixed = true,
                (f, l) => {
                    if let Some(f) = f {
                        let lower = match &fix {
                            Some(cur) => {
                                matches!(compare(scheme, &f, cur), Ok(Ordering::Less))
                            }
                            None => true,
                        };
                        if lower {
                            fix = Some(f);
                        }
                    }
                    if last.is_none() {
                        last = l;
                    }
                }
            },
        }
    }
    if fix.is_some() || last.is_some() {
        return (
            EntryVerdict::Fixed {
                fixed: fix,
                last_affected: last,
            },
            skipped,
        );
    }
    if in_range_unfixed {
        return (EntryVerdict::Unfixed, skipped);
    }
    let listed = !covered_by_fix
        && entry
            .versions
            .iter()
            .any(|x| parses(scheme, x) && cmp(scheme, v, x) == Some(Ordering::Equal));
    if listed {
        return (EntryVerdict::Unfixed, skipped);
    }
    (EntryVerdict::NotAffected, skipped)
}

#[derive(Default)]
struct Hits {
    advisories: BTreeSet<String>,
    cves: BTreeSet<String>,
    ecosystems: BTreeSet<String>,
    fixed: Option<String>,
    last_affected: Option<String>,
    installed: BTreeSet<String>,
}

/// Matches one host.
pub fn match_host(
    host: &HostAsset,
    data: &FeedData,
    now: OffsetDateTime,
    policy: &Policy,
) -> MatchOutcome {
    let mut out = MatchOutcome::default();
    let ages = ages_evidence(&data.ages, now);
    match ecosystem::target(&host.os, policy) {
        None => out.notes.push(format!(
            "no advisory ecosystem for OS {:?} version {:?}: packages not matched",
            host.os.id, host.os.version_id
        )),
        Some(t) => {
            let groups = group_packages(host, t.manager, t.name_key);
            for (name, versions) in &groups {
                let mut fixed = Hits::default();
                let mut unfixed = Hits::default();
                for (version, _) in versions.iter() {
                    if !parses(t.scheme, version) {
                        out.notes.push(format!(
                            "{name}: installed version {version:?} does not parse as {}",
                            t.scheme
                        ));
                        continue;
                    }
                    for eco in &t.ecosystems {
                        let Some(entries) = data.affected.get(&(eco.clone(), name.clone())) else {
                            continue;
                        };
                        for entry in entries.iter().filter(|e| !e.withdrawn) {
                            let (verdict, skipped) = eval_entry(t.scheme, version, entry);
                            out.skipped_ranges += skipped;
                            let hits = match &verdict {
                                EntryVerdict::NotAffected => continue,
                                EntryVerdict::Fixed { .. } => &mut fixed,
                                EntryVerdict::Unfixed => &mut unfixed,
                            };
                            hits.advisories.insert(entry.advisory_id.clone());
                            hits.cves.extend(entry.cves.iter().cloned());
                            hits.ecosystems.insert(entry.ecosystem_raw.clone());
                            hits.installed.insert(version.clone());
                            if let EntryVerdict::Fixed {
                                fixed: f,
                                last_affected: l,
                            } = verdict
                            {
                                if let Some(f) = f {
                                    let higher = match &hits.fixed {
                                        Some(cur) => matches!(
                                            compare(t.scheme, &f, cur),
                                            Ok(Ordering::Greater)
                                        ),
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
                }
                let binaries: BTreeSet<&String> = versions.values().flatten().collect();
                for (hits, code) in [
                    (fixed, FindingCode::PatchPackageVulnerable),
                    (unfixed, FindingCode::PatchPackageVulnerableUnfixed),
                ] {
                    if hits.advisories.is_empty() {
                        continue;
                    }
                    out.findings.push(package_finding(
                        host, name, t.manager, &binaries, hits, code, data, &ages,
                    ));
                }
            }
        }
    }
    if let Some(f) = eol_finding(host, data, now, policy, &ages, &mut out.notes) {
        out.findings.push(f);
    }
    out.findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.code.cmp(&b.code))
            .then_with(|| a.subject.cmp(&b.subject))
    });
    out
}

#[allow(clippy::too_many_arguments)]
fn package_finding(
    host: &HostAsset,
    name: &str,
    manager: &str,
    binaries: &BTreeSet<&String>,
    hits: Hits,
    code: FindingCode,
    data: &FeedData,
    ages: &Value,
) -> Finding {
    let kev: Vec<Value> = hits
        .cves
        .iter()
        .filter_map(|c| {
            data.kev
                .get(c)
                .map(|k| json!({"cve": c, "date_added": k.date_added, "ransomware": k.ransomware}))
        })
        .collect();
    let epss = hits
        .cves
        .iter()
        .filter_map(|c| data.epss.get(c).map(|e| (c, e)))
        .max_by(|a, b| a.1.epss.partial_cmp(&b.1.epss).unwrap_or(Ordering::Equal))
        .map(|(c, e)| json!({"cve": c, "score": e.epss, "percentile": e.percentile}));
    let in_kev = !kev.is_empty();
    let severity = match (&code, in_kev) {
        (FindingCode::PatchPackageVulnerable, true) => Severity::Critical,
        (FindingCode::PatchPackageVulnerable, false) => Severity::High,
        (_, true) => Severity::High,
        (_, false) => Severity::Low,
    };
    let installed: Vec<&String> = hits.installed.iter().collect();
    let mut evidence = json!({
        "package": name,
        "manager": manager,
        "installed_version": installed.first(),
        "advisories": hits.advisories,
        "cves": hits.cves,
        "ecosystems": hits.ecosystems,
        "kev": {"listed": in_kev, "entries": kev},
        "epss": epss,
        "feed_age": ages,
    });
    if installed.len() > 1 {
        evidence["installed_versions"] = json!(installed);
    }
    if binaries.len() > 1 || binaries.iter().any(|b| b.as_str() != name) {
        evidence["binaries"] = json!(binaries);
    }
    if code == FindingCode::PatchPackageVulnerable {
        evidence["fixed_version"] = json!(hits.fixed);
        if hits.last_affected.is_some() {
            evidence["last_affected"] = json!(hits.last_affected);
        }
    }
    let mut f = Finding::new(code, host.id.clone(), evidence);
    f.severity = severity;
    f.title = match (&f.code, &hits.fixed) {
        (FindingCode::PatchPackageVulnerable, Some(fix)) => {
            format!(
                "{name} {} is vulnerable; fixed in {fix}",
                installed.first().map_or("", |s| s.as_str())
            )
        }
        (FindingCode::PatchPackageVulnerable, None) => {
            format!(
                "{name} {} is vulnerable; a fix exists",
                installed.first().map_or("", |s| s.as_str())
            )
        }
        _ => format!(
            "{name} {} is vulnerable; no fix published",
            installed.first().map_or("", |s| s.as_str())
        ),
    };
    f.subject = name.to_owned();
    f.collector = MATCH_COLLECTOR.to_owned();
    f
}

fn eol_finding(
    host: &HostAsset,
    data: &FeedData,
    now: OffsetDateTime,
    policy: &Policy,
    ages: &Value,
    notes: &mut Vec<String>,
) -> Option<Finding> {
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
        "feed_age": ages,
    });
    let mut f = Finding::new(code, host.id.clone(), evidence);
    f.title = if f.code == FindingCode::PatchOsEol {
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
    f.subject = format!("{} {}", r.os, r.release);
    f.collector = MATCH_COLLECTOR.to_owned();
    Some(f)
}

/// `{kind: {source, imported_at, feed_date, age_days}}` for evidence.
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

    fn add_record(data: &mut FeedData, json: &str) {
        let Parsed::Record { advisory, .. } = osv::parse(json.as_bytes()).unwrap() else {
            panic!("out of scope: {json}");
        };
        let cves = Arc::new(advisory.cves.clone());
        for a in advisory.affected {
            data.affected
                .entry((a.ecosystem.clone(), a.package.clone()))
                .or_default()
                .push(StoredAffected {
                    advisory_id: advisory.id.clone(),
                    withdrawn: advisory.withdrawn.is_some(),
                    cves: cves.clone(),
                    ecosystem_raw: a.ecosystem_raw,
                    ranges: a.ranges,
                    versions: a.versions,
                });
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
        assert_eq!(f.evidence["fixed_version"], "3.0.15-1~deb12u1");
        assert_eq!(f.evidence["installed_version"], "3.0.11-1~deb12u2");
        assert_eq!(f.evidence["binaries"], json!(["libssl3", "openssl"]));
        assert_eq!(f.evidence["advisories"], json!(["DSA-9000-1"]));
        assert_eq!(f.evidence["cves"], json!(["CVE-2025-0001"]));
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
        assert!(o.findings[0].evidence.get("fixed_version").is_none());
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
        assert_eq!(hit.findings[0].evidence["last_affected"], "1.2-1");
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
        d.kev.insert(
            "CVE-2025-0001".into(),
            KevInfo {
                date_added: "2025-03-01".into(),
                ransomware: "Known".into(),
            },
        );
        d.epss.insert(
            "CVE-2025-0001".into(),
            EpssInfo {
                epss: 0.5,
                percentile: 0.97,
            },
        );
        let h = host(
            "debian",
            "12",
            vec![pkg("dpkg", "libssl3", "3.0.0-1", "openssl")],
        );
        let f = &run(&h, &d).findings[0];
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.evidence["kev"]["listed"], true);
        assert_eq!(f.evidence["kev"]["entries"][0]["date_added"], "2025-03-01");
        assert_eq!(f.evidence["epss"]["percentile"], 0.97);
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
                    f.evidence["basis"].as_str().unwrap_or("").to_owned(),
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
        assert_eq!(o.findings[0].evidence["cves"], json!(["CVE-2025-38094"]));
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
        assert_eq!(hit.findings[0].evidence["fixed_version"], "1.2.5-r1");
        assert_eq!(hit.findings[0].evidence["cves"], json!(["CVE-2025-26519"]));
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
            o.findings[0].evidence["advisories"],
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
}
