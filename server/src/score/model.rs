//! Scoring model v1: one organisation's aggregated facts in, its score,
//! breakdown and what-to-fix-first list out. Pure; the invariants are in
//! the [module doc of `score`](super) and the reasons in `docs/SCORING.md`.
//!
//! Per category `c` and severity `s` (critical, high, medium, low; info
//! costs nothing), with `N_k` the organisation's assets of kind `k`,
//! `A_k` those with an open finding of (`c`, `s`) and `F_k` the number of
//! such findings:
//!
//! ```text
//! spread  = max_k min(1, A_k / N_k)
//! density = max_k (1 - K / (F_k / N_k + K))                 K = 4
//! f       = p_s + (1 - p_s) * (1 - (1 - spread) * (1 - β * density))   β = 0.25
//! cost    = budget_s * f          (0 when there is no such finding)
//! category = min(max(0, 100 - Σ_s cost), caps of the category)
//! org      = min(Σ_c w_c * category_c, min_c category_c + 10, caps)
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use trustwatch_common::{Category, Severity};

/// The version every score carries; bump it with any change to this file
/// that changes a number.
pub const MODEL_VERSION: &str = "1";

/// `(severity, budget, presence share)`: the most a severity can cost a
/// category, and the share of it the first finding costs. Budgets add up
/// to more than 100; a category's score stops at 0.
pub const SEVERITY_RULES: [(Severity, f64, f64); 4] = [
    (Severity::Critical, 80.0, 0.60),
    (Severity::High, 45.0, 0.50),
    (Severity::Medium, 25.0, 0.40),
    (Severity::Low, 10.0, 0.30),
];
/// Weight of the density term inside the spread-driven share.
pub const DENSITY_WEIGHT: f64 = 0.25;
/// Findings per asset at which density is one half.
pub const DENSITY_HALF: f64 = 4.0;
/// The organisation is never more than this better than its worst category.
pub const WORST_CATEGORY_SLACK: f64 = 10.0;
/// How many codes the what-to-fix-first list keeps.
pub const FIX_LIST_LEN: usize = 10;

/// Weight of each category in the organisation's score (sum 1).
pub fn category_weight(c: Category) -> f64 {
    match c {
        Category::Tls => 0.25,
        Category::Patch => 0.35,
        Category::Legacy => 0.30,
        Category::Coverage => 0.10,
    }
}

/// The asset kind a category's findings are normally about (for the
/// "observed" flag of the breakdown).
fn home_kind(c: Category) -> Kind {
    match c {
        Category::Tls => Kind::TlsEndpoint,
        Category::Patch | Category::Coverage => Kind::Host,
        Category::Legacy => Kind::Device,
    }
}

/// Asset kinds, as the model counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Host,
    TlsEndpoint,
    Device,
    /// A kind this build does not know.
    Other,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Host, Kind::TlsEndpoint, Kind::Device, Kind::Other];

    pub fn parse(s: &str) -> Kind {
        match s {
            "host" => Kind::Host,
            "tls_endpoint" => Kind::TlsEndpoint,
            "device" => Kind::Device,
            _ => Kind::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Host => "host",
            Kind::TlsEndpoint => "tls_endpoint",
            Kind::Device => "device",
            Kind::Other => "other",
        }
    }
}

/// Severity from its stored rank (0 info .. 4 critical).
pub fn severity_of_rank(rank: i64) -> Option<Severity> {
    match rank {
        0 => Some(Severity::Info),
        1 => Some(Severity::Low),
        2 => Some(Severity::Medium),
        3 => Some(Severity::High),
        4 => Some(Severity::Critical),
        _ => None,
    }
}

/// Assets with open findings of one (category, severity, kind), grouped by
/// the only code they have there (`solo`), or `None` for assets with
/// several codes there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub category: Category,
    pub severity: Severity,
    pub kind: Kind,
    pub solo: Option<String>,
    pub assets: u64,
    pub findings: u64,
}

/// Open findings of one (code, category, severity, kind).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeCell {
    pub code: String,
    pub category: Category,
    pub severity: Severity,
    pub kind: Kind,
    pub findings: u64,
}

/// One code's open findings: how many, on how many assets, the worst severity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeSummary {
    pub code: String,
    pub category: Category,
    pub severity: Severity,
    pub findings: u64,
    pub assets: u64,
}

/// What the model reads about one organisation (its own assets and open
/// findings; children are combined by [`super::rollup`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// Assets per kind.
    pub assets: BTreeMap<Kind, u64>,
    pub groups: Vec<Group>,
    pub code_cells: Vec<CodeCell>,
    pub codes: Vec<CodeSummary>,
    /// Open `patch.package.vulnerable` findings whose evidence says KEV listed.
    pub kev_findings: u64,
    /// Agents not revoked.
    pub agents: u64,
    /// Of those, agents with an open `coverage.agent.stale` finding.
    pub stale_agents: u64,
}

/// (category, worst severity, findings, distinct assets) of a code.
type CodeTally<'a> = (Category, Severity, u64, BTreeSet<(Kind, &'a str)>);
/// (category, severity, kind, solo code) of a [`Group`].
type GroupKey = (Category, Severity, Kind, Option<String>);

/// One open finding, for [`Facts::from_findings`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingFact {
    pub kind: Kind,
    pub asset: String,
    pub code: String,
    pub category: Category,
    pub severity: Severity,
    pub kev: bool,
}

impl Facts {
    /// The facts of a list of open findings over `assets` assets per kind
    /// (what the store computes in SQL; used by tests and tools).
    pub fn from_findings(assets: BTreeMap<Kind, u64>, findings: &[FindingFact]) -> Facts {
        // (category, severity, kind, asset) -> (findings, codes)
        type AssetKey = (Category, Severity, Kind, String);
        let mut per_asset: BTreeMap<AssetKey, (u64, BTreeSet<&str>)> = BTreeMap::new();
        let mut cells: BTreeMap<(String, Category, Severity, Kind), u64> = BTreeMap::new();
        let mut codes: BTreeMap<&str, CodeTally> = BTreeMap::new();
        let mut kev = 0;
        for f in findings {
            let e = per_asset
                .entry((f.category, f.severity, f.kind, f.asset.clone()))
                .or_default();
            e.0 += 1;
            e.1.insert(&f.code);
            *cells
                .entry((f.code.clone(), f.category, f.severity, f.kind))
                .or_default() += 1;
            let c = codes
                .entry(&f.code)
                .or_insert((f.category, f.severity, 0, BTreeSet::new()));
            c.1 = c.1.max(f.severity);
            c.2 += 1;
            c.3.insert((f.kind, &f.asset));
            if f.kev && f.code == KEV_CODE {
                kev += 1;
            }
        }
        let mut groups: BTreeMap<GroupKey, (u64, u64)> = BTreeMap::new();
        for ((cat, sev, kind, _), (n, cs)) in per_asset {
            let solo = if cs.len() == 1 {
                cs.first().map(|s| (*s).to_owned())
            } else {
                None
            };
            let g = groups.entry((cat, sev, kind, solo)).or_default();
            g.0 += 1;
            g.1 += n;
        }
        Facts {
            assets,
            groups: groups
                .into_iter()
                .map(
                    |((category, severity, kind, solo), (assets, findings))| Group {
                        category,
                        severity,
                        kind,
                        solo,
                        assets,
                        findings,
                    },
                )
                .collect(),
            code_cells: cells
                .into_iter()
                .map(|((code, category, severity, kind), findings)| CodeCell {
                    code,
                    category,
                    severity,
                    kind,
                    findings,
                })
                .collect(),
            codes: codes
                .into_iter()
                .map(|(code, (category, severity, findings, a))| CodeSummary {
                    code: code.to_owned(),
                    category,
                    severity,
                    findings,
                    assets: a.len() as u64,
                })
                .collect(),
            kev_findings: kev,
            agents: 0,
            stale_agents: 0,
        }
    }

    fn total_assets(&self) -> u64 {
        self.assets.values().sum()
    }
}

/// The code whose KEV-listed findings trigger [`Cap::KnownExploited`].
pub const KEV_CODE: &str = "patch.package.vulnerable";

/// The worst exposures, which cap a score whatever else is true.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cap {
    /// A vulnerability listed in CISA KEV, with a fix available.
    KnownExploited,
    /// SMBv1 negotiated.
    SmbV1,
    /// An operating system past its end of support.
    EolOs,
}

impl Cap {
    /// The highest score allowed while the cap applies.
    pub fn limit(self) -> f64 {
        match self {
            Cap::KnownExploited => 49.0,
            Cap::SmbV1 => 59.0,
            Cap::EolOs => 69.0,
        }
    }

    /// The cap a code triggers by itself (KEV needs the evidence).
    pub fn of_code(code: &str) -> Option<Cap> {
        match code {
            "legacy.smb.v1" => Some(Cap::SmbV1),
            "patch.os.eol" | "legacy.os.eol" => Some(Cap::EolOs),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Cap::KnownExploited => "known_exploited",
            Cap::SmbV1 => "smb_v1",
            Cap::EolOs => "eol_os",
        }
    }
}

/// A letter grade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Grade {
    A,
    B,
    C,
    D,
    F,
}

impl Grade {
    /// The grade of a score: A ≥ 90, B ≥ 80, C ≥ 70, D ≥ 60, else F.
    pub fn of(score: f64) -> Grade {
        let t = tenths(score);
        if t >= 900 {
            Grade::A
        } else if t >= 800 {
            Grade::B
        } else if t >= 700 {
            Grade::C
        } else if t >= 600 {
            Grade::D
        } else {
            Grade::F
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Grade::A => "A",
            Grade::B => "B",
            Grade::C => "C",
            Grade::D => "D",
            Grade::F => "F",
        }
    }

    pub fn parse(s: &str) -> Option<Grade> {
        match s {
            "A" => Some(Grade::A),
            "B" => Some(Grade::B),
            "C" => Some(Grade::C),
            "D" => Some(Grade::D),
            "F" => Some(Grade::F),
            _ => None,
        }
    }
}

/// A score in tenths of a point, clamped to 0..=1000 (the stored form).
pub fn tenths(score: f64) -> i64 {
    if score.is_nan() {
        return 0;
    }
    // In range after the clamp, so the cast is exact.
    (score.clamp(0.0, 100.0) * 10.0).round() as i64
}

/// A score rounded to tenths, as published.
pub fn round1(score: f64) -> f64 {
    tenths(score) as f64 / 10.0
}

/// What one severity costs a category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deduction {
    pub severity: Severity,
    pub findings: u64,
    /// Assets with such a finding.
    pub assets: u64,
    /// Points deducted (tenths).
    pub points: f64,
}

/// One category's score and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryScore {
    pub category: Category,
    pub score: f64,
    pub grade: Grade,
    /// The organisation has assets of the kind this category is about.
    pub observed: bool,
    pub deductions: Vec<Deduction>,
    /// Caps that apply to this category.
    pub caps: Vec<Cap>,
}

/// A cap in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapApplied {
    pub cap: Cap,
    pub limit: f64,
    pub categories: Vec<Category>,
    /// True when this cap is what holds the organisation's score down.
    pub binding: bool,
}

/// Counts shown beside a score.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub assets: u64,
    pub open_findings: u64,
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub info: u64,
    pub agents: u64,
    pub stale_agents: u64,
}

impl Counts {
    /// Adds another organisation's counts.
    pub fn add(&mut self, o: &Counts) {
        self.assets += o.assets;
        self.open_findings += o.open_findings;
        self.critical += o.critical;
        self.high += o.high;
        self.medium += o.medium;
        self.low += o.low;
        self.info += o.info;
        self.agents += o.agents;
        self.stale_agents += o.stale_agents;
    }
}

/// One entry of the what-to-fix-first list: all open findings of a code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixItem {
    pub code: String,
    pub category: Category,
    /// The worst severity among them.
    pub severity: Severity,
    pub findings: u64,
    pub assets: u64,
    /// Organisation points won back by fixing them all (re-scored without them).
    pub points: f64,
    /// Points won back in their category.
    pub category_points: f64,
}

/// The score of one organisation's own findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub model_version: String,
    /// False when there is nothing to score (no asset, no finding): the
    /// numbers are then 100 and mean nothing.
    pub scored: bool,
    pub score: f64,
    pub grade: Grade,
    /// Tls, patch, legacy, coverage.
    pub categories: Vec<CategoryScore>,
    pub caps: Vec<CapApplied>,
    /// 0..=100: fresh agents × observed asset kinds.
    pub confidence: u8,
    pub counts: Counts,
    pub top_to_fix: Vec<FixItem>,
}

impl Score {
    /// The score of one category (100 if absent).
    pub fn category(&self, c: Category) -> f64 {
        self.categories
            .iter()
            .find(|x| x.category == c)
            .map_or(100.0, |x| x.score)
    }
}

/// Per (category, severity, kind): (affected assets, findings).
type Cells = BTreeMap<(Category, Severity, Kind), (u64, u64)>;

struct Tally {
    cells: Cells,
    caps: BTreeSet<(Cap, Category)>,
}

/// The cells and caps of the facts, optionally without one code's findings.
fn tally(f: &Facts, without: Option<&str>) -> Tally {
    let mut cells: Cells = BTreeMap::new();
    for g in &f.groups {
        let e = cells.entry((g.category, g.severity, g.kind)).or_default();
        e.1 += g.findings;
        if without.is_none() || g.solo.as_deref() != without {
            e.0 += g.assets;
        }
    }
    let mut caps = BTreeSet::new();
    for c in &f.code_cells {
        if Some(c.code.as_str()) == without {
            if let Some(e) = cells.get_mut(&(c.category, c.severity, c.kind)) {
                e.1 = e.1.saturating_sub(c.findings);
            }
            continue;
        }
        if c.findings > 0 {
            if let Some(cap) = Cap::of_code(&c.code) {
                caps.insert((cap, c.category));
            }
        }
    }
    if f.kev_findings > 0 && without != Some(KEV_CODE) {
        caps.insert((Cap::KnownExploited, Category::Patch));
    }
    Tally { cells, caps }
}

struct Eval {
    org: f64,
    categories: Vec<(Category, f64, Vec<Deduction>)>,
}

fn evaluate(t: &Tally, assets: &BTreeMap<Kind, u64>) -> Eval {
    let n = |k: Kind| assets.get(&k).copied().unwrap_or(0).max(1) as f64;
    let mut categories = Vec::with_capacity(4);
    for c in Category::ALL {
        let mut cost = 0.0;
        let mut lines = Vec::new();
        for (sev, budget, presence) in SEVERITY_RULES {
            let mut spread: f64 = 0.0;
            let mut density: f64 = 0.0;
            let mut findings = 0;
            let mut affected = 0;
            for k in Kind::ALL {
                let Some(&(a, fnd)) = t.cells.get(&(c, sev, k)) else {
                    continue;
                };
                findings += fnd;
                affected += a;
                spread = spread.max((a as f64 / n(k)).min(1.0));
                let per_asset = fnd as f64 / n(k);
                density = density.max(1.0 - DENSITY_HALF / (per_asset + DENSITY_HALF));
            }
            if findings == 0 {
                continue;
            }
            let share = presence
                + (1.0 - presence) * (1.0 - (1.0 - spread) * (1.0 - DENSITY_WEIGHT * density));
            let d = budget * share;
            cost += d;
            lines.push(Deduction {
                severity: sev,
                findings,
                assets: affected,
                points: round1(d),
            });
        }
        let mut s = (100.0 - cost).max(0.0);
        for (cap, cat) in &t.caps {
            if *cat == c {
                s = s.min(cap.limit());
            }
        }
        categories.push((c, s, lines));
    }
    let weighted: f64 = categories
        .iter()
        .map(|(c, s, _)| category_weight(*c) * s)
        .sum();
    let worst = categories
        .iter()
        .map(|(_, s, _)| *s)
        .fold(100.0_f64, f64::min);
    let mut org = weighted.min(worst + WORST_CATEGORY_SLACK);
    for (cap, _) in &t.caps {
        org = org.min(cap.limit());
    }
    Eval {
        org: org.clamp(0.0, 100.0),
        categories,
    }
}

/// Confidence 0..=100: the share of agents that are fresh, times 0.4 + 0.2
/// per asset kind observed (host, TLS endpoint, device).
pub fn confidence(f: &Facts) -> u8 {
    if f.agents == 0 {
        return 0;
    }
    let fresh = f.agents.saturating_sub(f.stale_agents) as f64 / f.agents as f64;
    let kinds = [Kind::Host, Kind::TlsEndpoint, Kind::Device]
        .iter()
        .filter(|k| f.assets.get(k).copied().unwrap_or(0) > 0)
        .count() as f64;
    let c = (100.0 * fresh * (0.4 + 0.2 * kinds)).round();
    // 0..=100 after the clamp.
    c.clamp(0.0, 100.0) as u8
}

/// Scores one organisation's facts.
pub fn score(f: &Facts) -> Score {
    let t = tally(f, None);
    let e = evaluate(&t, &f.assets);
    let mut counts = Counts {
        assets: f.total_assets(),
        agents: f.agents,
        stale_agents: f.stale_agents,
        ..Counts::default()
    };
    for c in &f.code_cells {
        counts.open_findings += c.findings;
        match c.severity {
            Severity::Critical => counts.critical += c.findings,
            Severity::High => counts.high += c.findings,
            Severity::Medium => counts.medium += c.findings,
            Severity::Low => counts.low += c.findings,
            Severity::Info => counts.info += c.findings,
        }
    }
    let org_t = tenths(e.org);
    let cat_score = |ev: &Eval, c: Category| {
        ev.categories
            .iter()
            .find(|x| x.0 == c)
            .map_or(100.0, |x| x.1)
    };
    let mut fix: Vec<FixItem> = f
        .codes
        .iter()
        .map(|cs| {
            let w = evaluate(&tally(f, Some(&cs.code)), &f.assets);
            FixItem {
                code: cs.code.clone(),
                category: cs.category,
                severity: cs.severity,
                findings: cs.findings,
                assets: cs.assets,
                points: (tenths(w.org) - org_t) as f64 / 10.0,
                category_points: (tenths(cat_score(&w, cs.category))
                    - tenths(cat_score(&e, cs.category))) as f64
                    / 10.0,
            }
        })
        .collect();
    fix.sort_by(|a, b| {
        b.points
            .total_cmp(&a.points)
            .then(b.category_points.total_cmp(&a.category_points))
            .then(b.severity.cmp(&a.severity))
            .then(b.findings.cmp(&a.findings))
            .then(a.code.cmp(&b.code))
    });
    fix.truncate(FIX_LIST_LEN);
    let mut caps: BTreeMap<Cap, Vec<Category>> = BTreeMap::new();
    for (cap, cat) in &t.caps {
        caps.entry(*cap).or_default().push(*cat);
    }
    let caps = caps
        .into_iter()
        .map(|(cap, categories)| CapApplied {
            cap,
            limit: cap.limit(),
            categories,
            binding: tenths(cap.limit()) == org_t,
        })
        .collect();
    let categories = e
        .categories
        .into_iter()
        .map(|(c, s, deductions)| CategoryScore {
            category: c,
            score: round1(s),
            grade: Grade::of(s),
            observed: f.assets.get(&home_kind(c)).copied().unwrap_or(0) > 0,
            deductions,
            caps: t
                .caps
                .iter()
                .filter(|(_, cat)| *cat == c)
                .map(|(cap, _)| *cap)
                .collect(),
        })
        .collect();
    Score {
        model_version: MODEL_VERSION.to_owned(),
        scored: counts.assets > 0 || counts.open_findings > 0,
        score: round1(e.org),
        grade: Grade::of(e.org),
        categories,
        caps,
        confidence: confidence(f),
        counts,
        top_to_fix: fix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn assets(host: u64, tls: u64, device: u64) -> BTreeMap<Kind, u64> {
        [
            (Kind::Host, host),
            (Kind::TlsEndpoint, tls),
            (Kind::Device, device),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
    }

    fn f(kind: Kind, asset: u64, code: &str, severity: Severity) -> FindingFact {
        let category = code
            .split('.')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(Category::Coverage);
        FindingFact {
            kind,
            asset: format!("a{asset}"),
            code: code.to_owned(),
            category,
            severity,
            kev: false,
        }
    }

    fn score_of(a: &BTreeMap<Kind, u64>, fs: &[FindingFact]) -> Score {
        score(&Facts::from_findings(a.clone(), fs))
    }

    #[test]
    fn nothing_found_scores_100_and_nothing_at_all_is_not_scored() {
        let s = score_of(&assets(10, 5, 20), &[]);
        assert!(s.scored);
        assert_eq!(s.score, 100.0);
        assert_eq!(s.grade, Grade::A);
        assert!(s.top_to_fix.is_empty());
        assert!(!score_of(&BTreeMap::new(), &[]).scored);
    }

    #[test]
    fn severity_dominance_holds_by_construction() {
        let rule = |s: Severity| SEVERITY_RULES.iter().find(|r| r.0 == s).copied().unwrap();
        let first = |s: Severity| rule(s).1 * rule(s).2;
        let all = |s: Severity| rule(s).1;
        // The first finding of a severity costs more than every lower one can.
        assert!(first(Severity::Critical) > all(Severity::Medium) + all(Severity::Low));
        assert!(first(Severity::High) > all(Severity::Low));
        assert!(first(Severity::Medium) > first(Severity::Low));
        // Lows alone keep every category, hence the organisation, at A (≥ 90);
        // one high keeps it below A; one critical at D or worse.
        assert_eq!(all(Severity::Low), 10.0);
        assert!(100.0 - first(Severity::High) + WORST_CATEGORY_SLACK < 90.0);
        assert!(100.0 - first(Severity::Critical) + WORST_CATEGORY_SLACK < 70.0);
        let w: f64 = Category::ALL.iter().map(|c| category_weight(*c)).sum();
        assert!((w - 1.0).abs() < 1e-12);
    }

    #[test]
    fn one_critical_scores_below_a_thousand_lows() {
        let a = assets(50, 1000, 50);
        let lows: Vec<FindingFact> = (0..1000)
            .map(|i| {
                f(
                    Kind::TlsEndpoint,
                    i,
                    "tls.cert.expiring_soon",
                    Severity::Low,
                )
            })
            .collect();
        let crit = [f(
            Kind::TlsEndpoint,
            7,
            "tls.protocol.sslv2",
            Severity::Critical,
        )];
        let lows_s = score_of(&a, &lows);
        let crit_s = score_of(&a, &crit);
        assert!(lows_s.score >= 90.0, "{}", lows_s.score);
        assert!(crit_s.score <= 62.0, "{}", crit_s.score);
        assert!(crit_s.score < lows_s.score);
        assert_eq!(lows_s.grade, Grade::A);
        // Lows on every asset of every kind, several codes each: still ≥ 95.
        let mut many = Vec::new();
        for (k, n) in [
            (Kind::Host, 50),
            (Kind::TlsEndpoint, 1000),
            (Kind::Device, 50),
        ] {
            for i in 0..n {
                for code in [
                    "tls.cert.expiring_soon",
                    "patch.package.vulnerable_unfixed",
                    "legacy.ssh.outdated",
                    "coverage.agent.stale",
                ] {
                    many.push(f(k, i, code, Severity::Low));
                }
            }
        }
        assert!(score_of(&a, &many).score >= 90.0);
    }

    #[test]
    fn the_same_findings_cost_less_in_a_bigger_estate_and_proportions_score_the_same() {
        let small = assets(50, 0, 0);
        let big = assets(5000, 0, 0);
        let fs: Vec<FindingFact> = (0..10)
            .map(|i| {
                f(
                    Kind::Host,
                    i,
                    "patch.kernel.reboot_required",
                    Severity::Medium,
                )
            })
            .collect();
        let s_small = score_of(&small, &fs);
        let s_big = score_of(&big, &fs);
        assert!(
            s_big.score > s_small.score,
            "{} vs {}",
            s_big.score,
            s_small.score
        );
        // 20% of hosts with one high finding each, at either size.
        let prop = |n: u64| -> Vec<FindingFact> {
            (0..n / 5)
                .map(|i| f(Kind::Host, i, "patch.package.vulnerable", Severity::High))
                .collect()
        };
        assert_eq!(
            score_of(&small, &prop(50)).score,
            score_of(&big, &prop(5000)).score
        );
        // Weakest link: one critical host among 5,000 still costs most of the budget.
        let one = [f(Kind::Host, 1, "patch.updates.stale", Severity::Critical)];
        let s = score_of(&big, &one);
        assert!(
            s.category(Category::Patch) <= 52.0,
            "{}",
            s.category(Category::Patch)
        );
    }

    #[test]
    fn smb_v1_caps_the_score_at_59_whatever_the_size() {
        let a = assets(100, 100, 5000);
        let mut fs = vec![f(Kind::Device, 1, "legacy.smb.v1", Severity::Low)];
        let s = score_of(&a, &fs);
        assert_eq!(s.score, 59.0);
        assert_eq!(s.grade, Grade::F);
        assert_eq!(s.category(Category::Legacy), 59.0);
        assert_eq!(s.caps.len(), 1);
        assert_eq!(s.caps[0].cap, Cap::SmbV1);
        assert!(s.caps[0].binding);
        assert_eq!(s.top_to_fix[0].code, "legacy.smb.v1");
        assert_eq!(s.top_to_fix[0].points, 41.0);
        // An end-of-life OS caps at 69, a KEV vulnerability at 49; the lowest wins.
        fs.push(f(Kind::Host, 2, "patch.os.eol", Severity::Info));
        assert_eq!(score_of(&a, &fs).score, 59.0);
        let eol = [f(Kind::Host, 2, "legacy.os.eol", Severity::Info)];
        assert_eq!(score_of(&a, &eol).score, 69.0);
        let mut kev = f(Kind::Host, 3, KEV_CODE, Severity::Info);
        kev.kev = true;
        fs.push(kev);
        let s = score_of(&a, &fs);
        assert_eq!(s.score, 49.0);
        assert_eq!(s.top_to_fix[0].code, KEV_CODE);
        assert_eq!(s.top_to_fix[0].points, 10.0);
    }

    #[test]
    fn top_to_fix_is_ordered_by_points_won_back() {
        let a = assets(20, 10, 0);
        let fs = vec![
            f(Kind::Host, 1, "patch.package.vulnerable", Severity::High),
            f(Kind::Host, 2, "patch.package.vulnerable", Severity::High),
            f(
                Kind::TlsEndpoint,
                1,
                "tls.cert.expiring_soon",
                Severity::Low,
            ),
            f(
                Kind::TlsEndpoint,
                2,
                "tls.protocol.tls1_0",
                Severity::Medium,
            ),
        ];
        let s = score_of(&a, &fs);
        let codes: Vec<&str> = s.top_to_fix.iter().map(|x| x.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "patch.package.vulnerable",
                "tls.protocol.tls1_0",
                "tls.cert.expiring_soon"
            ]
        );
        assert!(s.top_to_fix.windows(2).all(|w| w[0].points >= w[1].points));
        assert_eq!(s.top_to_fix[0].findings, 2);
        assert_eq!(s.top_to_fix[0].assets, 2);
        // Points are the difference of re-scoring without the code.
        let without: Vec<FindingFact> = fs[2..].to_vec();
        let gain = tenths(score_of(&a, &without).score) - tenths(s.score);
        assert_eq!(s.top_to_fix[0].points, gain as f64 / 10.0);
    }

    #[test]
    fn what_if_of_a_code_sharing_assets_matches_rescoring() {
        let a = assets(10, 0, 0);
        let fs = vec![
            f(Kind::Host, 1, "patch.package.vulnerable", Severity::High),
            f(
                Kind::Host,
                1,
                "patch.kernel.reboot_required",
                Severity::High,
            ),
            f(
                Kind::Host,
                2,
                "patch.kernel.reboot_required",
                Severity::High,
            ),
        ];
        let s = score_of(&a, &fs);
        for code in ["patch.package.vulnerable", "patch.kernel.reboot_required"] {
            let rest: Vec<FindingFact> = fs.iter().filter(|x| x.code != code).cloned().collect();
            let item = s.top_to_fix.iter().find(|x| x.code == code).unwrap();
            let gain = tenths(score_of(&a, &rest).score) - tenths(s.score);
            assert_eq!(item.points, gain as f64 / 10.0, "{code}");
        }
    }

    #[test]
    fn worked_examples_of_scoring_md_hold() {
        let a = assets(200, 40, 300);
        let many = |kind: Kind, n: u64, per: u64, code: &str, s: Severity| -> Vec<FindingFact> {
            (0..n)
                .flat_map(|i| {
                    (0..per).map(move |j| {
                        let mut x = f(kind, i, code, s);
                        x.asset = format!("a{i}");
                        x.code = if j == 0 {
                            code.to_owned()
                        } else {
                            format!("{code}.x{j}")
                        };
                        x
                    })
                })
                .collect()
        };
        let check = |fs: Vec<FindingFact>, cat: Category, c: f64, o: f64, g: Grade| {
            let s = score_of(&a, &fs);
            assert_eq!((s.category(cat), s.score, s.grade), (c, o, g), "{fs:?}");
        };
        let mut lows = many(
            Kind::TlsEndpoint,
            40,
            1,
            "tls.cert.expiring_soon",
            Severity::Low,
        );
        lows.extend(many(
            Kind::Host,
            200,
            4,
            "patch.package.vulnerable_unfixed",
            Severity::Low,
        ));
        check(lows, Category::Patch, 90.0, 94.0, Grade::A);
        check(
            many(
                Kind::TlsEndpoint,
                1,
                1,
                "tls.protocol.sslv2",
                Severity::Critical,
            ),
            Category::Tls,
            51.2,
            61.2,
            Grade::D,
        );
        check(
            many(Kind::TlsEndpoint, 2, 1, "tls.cert.expired", Severity::High),
            Category::Tls,
            76.3,
            86.3,
            Grade::B,
        );
        check(
            many(
                Kind::Host,
                30,
                1,
                "patch.kernel.reboot_required",
                Severity::Medium,
            ),
            Category::Patch,
            87.6,
            95.7,
            Grade::A,
        );
        check(
            many(Kind::Device, 1, 1, "legacy.smb.v1", Severity::Critical),
            Category::Legacy,
            51.9,
            59.0,
            Grade::F,
        );
        let mut vuln = many(
            Kind::Host,
            10,
            3,
            "patch.package.vulnerable",
            Severity::High,
        );
        vuln.extend(
            many(
                Kind::Host,
                20,
                1,
                "patch.package.vulnerable",
                Severity::High,
            )
            .into_iter()
            .skip(10),
        );
        assert_eq!(vuln.len(), 40);
        let mut more = many(
            Kind::Host,
            10,
            1,
            "patch.package.vulnerable",
            Severity::High,
        );
        for x in &mut more {
            x.code = "patch.package.vulnerable.y".into();
        }
        vuln.extend(more);
        assert_eq!(vuln.len(), 50);
        check(vuln, Category::Patch, 75.0, 85.0, Grade::B);
        for (n, c, o) in [(50, 86.9, 95.4), (5000, 90.0, 96.5)] {
            let s = score_of(
                &assets(n, 0, 0),
                &many(
                    Kind::Host,
                    10,
                    1,
                    "patch.kernel.reboot_required",
                    Severity::Medium,
                ),
            );
            assert_eq!((s.category(Category::Patch), s.score), (c, o), "{n}");
        }
    }

    #[test]
    fn confidence_falls_with_stale_agents_and_unobserved_kinds() {
        let mut facts = Facts::from_findings(assets(10, 5, 5), &[]);
        assert_eq!(confidence(&facts), 0);
        facts.agents = 4;
        assert_eq!(confidence(&facts), 100);
        facts.stale_agents = 1;
        assert_eq!(confidence(&facts), 75);
        facts.assets = assets(10, 0, 0);
        facts.stale_agents = 0;
        assert_eq!(confidence(&facts), 60);
        // Confidence never changes the score.
        assert_eq!(score(&facts).score, 100.0);
    }

    #[test]
    fn grades_follow_the_bands() {
        for (s, g) in [
            (100.0, Grade::A),
            (90.0, Grade::A),
            (89.96, Grade::A),
            (89.94, Grade::B),
            (80.0, Grade::B),
            (79.9, Grade::C),
            (70.0, Grade::C),
            (60.0, Grade::D),
            (59.9, Grade::F),
            (0.0, Grade::F),
        ] {
            assert_eq!(Grade::of(s), g, "{s}");
        }
    }

    const CODES: &[(&str, Kind)] = &[
        ("tls.protocol.sslv2", Kind::TlsEndpoint),
        ("tls.cert.expired", Kind::TlsEndpoint),
        ("tls.cert.expiring_soon", Kind::TlsEndpoint),
        ("patch.package.vulnerable", Kind::Host),
        ("patch.os.eol", Kind::Host),
        ("patch.kernel.reboot_required", Kind::Host),
        ("legacy.smb.v1", Kind::Device),
        ("legacy.telnet", Kind::Device),
        ("legacy.os.eol", Kind::Device),
        ("coverage.agent.stale", Kind::Host),
    ];

    fn any_finding(n_assets: u64) -> impl Strategy<Value = FindingFact> {
        (
            0..CODES.len(),
            0..n_assets,
            0..5usize,
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(c, asset, sev, kev, other_kind)| {
                let (code, kind) = CODES[c];
                let kind = if other_kind { Kind::Host } else { kind };
                let mut x = f(kind, asset, code, Severity::ALL[sev]);
                x.kev = kev;
                x
            })
    }

    fn estate() -> impl Strategy<Value = BTreeMap<Kind, u64>> {
        (0..40u64, 0..40u64, 0..40u64).prop_map(|(h, t, d)| assets(h, t, d))
    }

    /// Findings deduplicated as the store keys them (asset, code, subject:
    /// here one per asset and code).
    fn dedup(mut fs: Vec<FindingFact>) -> Vec<FindingFact> {
        let mut seen = BTreeSet::new();
        fs.retain(|x| seen.insert((x.kind, x.asset.clone(), x.code.clone())));
        fs
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn scores_stay_in_range(a in estate(), fs in prop::collection::vec(any_finding(40), 0..60)) {
            let s = score_of(&a, &dedup(fs));
            prop_assert!((0.0..=100.0).contains(&s.score));
            prop_assert!(s.confidence <= 100);
            for c in &s.categories {
                prop_assert!((0.0..=100.0).contains(&c.score));
                prop_assert!(s.score <= c.score + WORST_CATEGORY_SLACK + 0.1);
            }
            for x in &s.top_to_fix {
                prop_assert!(x.points >= 0.0 && x.category_points >= 0.0);
            }
        }

        #[test]
        fn adding_a_finding_never_raises_a_score(
            a in estate(),
            fs in prop::collection::vec(any_finding(40), 0..60),
            extra in any_finding(40),
        ) {
            let before = dedup(fs);
            let mut after = before.clone();
            after.push(extra);
            let after = dedup(after);
            let s0 = score_of(&a, &before);
            let s1 = score_of(&a, &after);
            prop_assert!(s1.score <= s0.score, "{} -> {}", s0.score, s1.score);
            for c in Category::ALL {
                prop_assert!(s1.category(c) <= s0.category(c));
            }
        }

        #[test]
        fn removing_a_finding_never_lowers_a_score(
            a in estate(),
            fs in prop::collection::vec(any_finding(40), 1..60),
            pick in any::<prop::sample::Index>(),
        ) {
            let before = dedup(fs);
            let mut after = before.clone();
            after.remove(pick.index(before.len()));
            let s0 = score_of(&a, &before);
            let s1 = score_of(&a, &after);
            prop_assert!(s1.score >= s0.score, "{} -> {}", s0.score, s1.score);
            for c in Category::ALL {
                prop_assert!(s1.category(c) >= s0.category(c));
            }
        }

        #[test]
        fn any_number_of_lows_outscores_one_critical(
            a in estate(),
            lows in prop::collection::vec(any_finding(40), 0..200),
            crit in any_finding(40),
        ) {
            let lows: Vec<FindingFact> = lows
                .into_iter()
                .filter(|x| Cap::of_code(&x.code).is_none() && !(x.kev && x.code == KEV_CODE))
                .map(|mut x| { x.severity = Severity::Low; x })
                .collect();
            let mut crit = crit;
            crit.severity = Severity::Critical;
            let lo = score_of(&a, &dedup(lows));
            let hi = score_of(&a, &[crit]);
            prop_assert!(lo.score >= 90.0);
            prop_assert!(hi.score <= 62.0);
        }

        #[test]
        fn what_to_fix_points_equal_rescoring_without_the_code(
            a in estate(),
            fs in prop::collection::vec(any_finding(40), 1..40),
        ) {
            let fs = dedup(fs);
            let s = score_of(&a, &fs);
            for item in &s.top_to_fix {
                let rest: Vec<FindingFact> = fs.iter().filter(|x| x.code != item.code).cloned().collect();
                let r = score_of(&a, &rest);
                prop_assert_eq!(item.points, (tenths(r.score) - tenths(s.score)) as f64 / 10.0);
                prop_assert_eq!(
                    item.category_points,
                    (tenths(r.category(item.category)) - tenths(s.category(item.category))) as f64 / 10.0
                );
            }
        }
    }
}
