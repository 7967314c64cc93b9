//! Hierarchy: organisations with children (trust → region → nation) are
//! scored from their members, and every organisation is ranked among its
//! siblings. Pure.
//!
//! Rules:
//! * The members of a parent are its scored children (each with its own
//!   roll-up) plus the parent itself when it has assets of its own.
//! * A parent's score, and each of its category scores, is the
//!   asset-weighted mean of its members' (weight = assets, at least 1),
//!   capped at the weakest member's + [`CHILD_SLACK`]: a region is never
//!   more than 15 points better than its worst trust. Its confidence is the
//!   asset-weighted mean; its counts are the sums over all children and
//!   itself. A parent without a scored member is not scored.
//! * Siblings are organisations with the same parent (organisations without
//!   a parent are siblings of each other). Among the scored ones, rank 1 is
//!   the best score (ties share the better rank) and the percentile is
//!   `100 × (n − rank) / (n − 1)` (100 for an only child).
//! * A parent loop (impossible through `org add`, which needs an existing
//!   parent) is cut where it is found, never followed.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use trustwatch_common::Category;

use super::model::{round1, tenths, Counts, Grade, Score};

/// A roll-up is never more than this better than its weakest member.
pub const CHILD_SLACK: f64 = 15.0;
/// Deeper hierarchies are cut (they cannot be built, but stored data is
/// not trusted to be sane).
const MAX_DEPTH: usize = 32;

/// One organisation and its own score.
#[derive(Debug, Clone)]
pub struct OrgNode<'a> {
    pub code: &'a str,
    pub parent: Option<&'a str>,
    pub own: &'a Score,
}

/// A member of a roll-up and its weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub code: String,
    pub score: f64,
    pub assets: u64,
    /// Share of the weighted mean, 0..=1.
    pub weight: f64,
    /// True for the parent's own assets.
    pub own: bool,
}

/// The published score of an organisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rolled {
    pub code: String,
    pub parent: Option<String>,
    pub scored: bool,
    pub score: f64,
    pub grade: Option<Grade>,
    pub categories: BTreeMap<Category, f64>,
    pub confidence: u8,
    /// True when scored from children.
    pub rollup: bool,
    pub counts: Counts,
    pub rank: Option<u32>,
    pub siblings: Option<u32>,
    pub percentile: Option<u8>,
    pub members: Vec<Member>,
}

fn leaf(n: &OrgNode) -> Rolled {
    Rolled {
        code: n.code.to_owned(),
        parent: n.parent.map(str::to_owned),
        scored: n.own.scored,
        score: n.own.score,
        grade: n.own.scored.then_some(n.own.grade),
        categories: Category::ALL
            .iter()
            .map(|c| (*c, n.own.category(*c)))
            .collect(),
        confidence: n.own.confidence,
        rollup: false,
        counts: n.own.counts.clone(),
        rank: None,
        siblings: None,
        percentile: None,
        members: Vec::new(),
    }
}

/// A member as combined: its score, category scores, confidence, assets.
struct Input<'a> {
    code: &'a str,
    score: f64,
    categories: BTreeMap<Category, f64>,
    confidence: u8,
    assets: u64,
    own: bool,
}

/// Combines the scored children and the parent's own score.
fn combine(n: &OrgNode, kids: &[&Rolled]) -> Rolled {
    let mut counts = n.own.counts.clone();
    for k in kids {
        counts.add(&k.counts);
    }
    let mut members: Vec<Input> = kids
        .iter()
        .filter(|k| k.scored)
        .map(|k| Input {
            code: &k.code,
            score: k.score,
            categories: k.categories.clone(),
            confidence: k.confidence,
            assets: k.counts.assets,
            own: false,
        })
        .collect();
    if n.own.scored {
        members.push(Input {
            code: n.code,
            score: n.own.score,
            categories: Category::ALL
                .iter()
                .map(|c| (*c, n.own.category(*c)))
                .collect(),
            confidence: n.own.confidence,
            assets: n.own.counts.assets,
            own: true,
        });
    }
    let mut r = Rolled {
        code: n.code.to_owned(),
        parent: n.parent.map(str::to_owned),
        scored: !members.is_empty(),
        score: 100.0,
        grade: None,
        categories: Category::ALL.iter().map(|c| (*c, 100.0)).collect(),
        confidence: 0,
        rollup: true,
        counts,
        rank: None,
        siblings: None,
        percentile: None,
        members: Vec::new(),
    };
    if members.is_empty() {
        return r;
    }
    let w = |m: &Input| m.assets.max(1) as f64;
    let total: f64 = members.iter().map(w).sum();
    let mix = |value: &dyn Fn(&Input) -> f64| {
        let mean = members.iter().map(|m| w(m) * value(m)).sum::<f64>() / total;
        let worst = members.iter().map(value).fold(100.0_f64, f64::min);
        round1(mean.min(worst + CHILD_SLACK))
    };
    r.score = mix(&|m| m.score);
    r.grade = Some(Grade::of(r.score));
    for c in Category::ALL {
        r.categories
            .insert(c, mix(&|m| m.categories.get(&c).copied().unwrap_or(100.0)));
    }
    let conf = members
        .iter()
        .map(|m| w(m) * f64::from(m.confidence))
        .sum::<f64>()
        / total;
    // A mean of 0..=100 values.
    r.confidence = conf.round().clamp(0.0, 100.0) as u8;
    r.members = members
        .iter()
        .map(|m| Member {
            code: m.code.to_owned(),
            score: m.score,
            assets: m.assets,
            weight: (w(m) / total * 1000.0).round() / 1000.0,
            own: m.own,
        })
        .collect();
    r
}

/// Rolls up and ranks; the answer is in the order of `nodes`.
pub fn roll_up(nodes: &[OrgNode]) -> Vec<Rolled> {
    let index: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (n.code, i)).collect();
    let mut kids: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        if let Some(p) = n.parent.and_then(|p| index.get(p)) {
            if *p != i {
                kids[*p].push(i);
            }
        }
    }
    let mut done: Vec<Option<Rolled>> = vec![None; nodes.len()];
    for i in 0..nodes.len() {
        let mut path = Vec::new();
        visit(i, nodes, &kids, &mut done, &mut path);
    }
    let mut out: Vec<Rolled> = done
        .into_iter()
        .zip(nodes)
        .map(|(r, n)| r.unwrap_or_else(|| leaf(n)))
        .collect();
    rank(&mut out);
    out
}

fn visit(
    i: usize,
    nodes: &[OrgNode],
    kids: &[Vec<usize>],
    done: &mut Vec<Option<Rolled>>,
    path: &mut Vec<usize>,
) {
    if done[i].is_some() {
        return;
    }
    if path.contains(&i) || path.len() >= MAX_DEPTH {
        return;
    }
    path.push(i);
    for &k in &kids[i] {
        visit(k, nodes, kids, done, path);
    }
    path.pop();
    let n = &nodes[i];
    let r = if kids[i].is_empty() {
        leaf(n)
    } else {
        // Children cut by a loop or the depth limit are left out.
        let ks: Vec<&Rolled> = kids[i].iter().filter_map(|&k| done[k].as_ref()).collect();
        combine(n, &ks)
    };
    done[i] = Some(r);
}

fn rank(out: &mut [Rolled]) {
    let mut by_parent: BTreeMap<Option<String>, Vec<usize>> = BTreeMap::new();
    for (i, r) in out.iter().enumerate() {
        if r.scored {
            by_parent.entry(r.parent.clone()).or_default().push(i);
        }
    }
    for sibs in by_parent.values() {
        let n = sibs.len() as u32;
        for &i in sibs {
            let mine = tenths(out[i].score);
            let better = sibs
                .iter()
                .filter(|&&j| tenths(out[j].score) > mine)
                .count() as u32;
            let rank = better + 1;
            out[i].rank = Some(rank);
            out[i].siblings = Some(n);
            out[i].percentile = Some(if n <= 1 {
                100
            } else {
                // 0..=100 by construction.
                (100.0 * f64::from(n - rank) / f64::from(n - 1)).round() as u8
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::model::{score, Facts, FindingFact, Kind};
    use trustwatch_common::Severity;

    fn own(hosts: u64, highs: u64, smb: bool) -> Score {
        let mut fs: Vec<FindingFact> = (0..highs)
            .map(|i| FindingFact {
                kind: Kind::Host,
                asset: format!("h{i}"),
                code: "patch.package.vulnerable".into(),
                category: Category::Patch,
                severity: Severity::High,
                kev: false,
            })
            .collect();
        if smb {
            fs.push(FindingFact {
                kind: Kind::Device,
                asset: "d1".into(),
                code: "legacy.smb.v1".into(),
                category: Category::Legacy,
                severity: Severity::Critical,
                kev: false,
            });
        }
        let mut a = BTreeMap::new();
        if hosts > 0 {
            a.insert(Kind::Host, hosts);
        }
        let mut f = Facts::from_findings(a, &fs);
        f.agents = 1;
        score(&f)
    }

    #[test]
    fn parent_is_the_asset_weighted_mean_of_its_children() {
        let empty = own(0, 0, false);
        let good = own(300, 0, false);
        let meh = own(100, 30, false);
        let nodes = [
            OrgNode {
                code: "NAT",
                parent: None,
                own: &empty,
            },
            OrgNode {
                code: "R1",
                parent: Some("NAT"),
                own: &empty,
            },
            OrgNode {
                code: "T1",
                parent: Some("R1"),
                own: &good,
            },
            OrgNode {
                code: "T2",
                parent: Some("R1"),
                own: &meh,
            },
        ];
        let r = roll_up(&nodes);
        assert!(!r[2].rollup && r[1].rollup && r[0].rollup);
        let expect = round1((300.0 * good.score + 100.0 * meh.score) / 400.0);
        assert_eq!(r[1].score, expect);
        assert_eq!(r[0].score, expect);
        assert_eq!(r[1].counts.assets, 400);
        assert_eq!(r[1].members.len(), 2);
        assert_eq!(r[1].members[0].weight, 0.75);
        // One agent, hosts only: 60%.
        assert_eq!(r[1].confidence, 60);
    }

    #[test]
    fn weakest_child_caps_the_parent() {
        let empty = own(0, 0, false);
        let big_good = own(10_000, 0, false);
        let small_bad = own(10, 0, true);
        let nodes = [
            OrgNode {
                code: "R",
                parent: None,
                own: &empty,
            },
            OrgNode {
                code: "A",
                parent: Some("R"),
                own: &big_good,
            },
            OrgNode {
                code: "B",
                parent: Some("R"),
                own: &small_bad,
            },
        ];
        let r = roll_up(&nodes);
        assert!(small_bad.score <= 59.0, "{}", small_bad.score);
        // The weighted mean would be ~99.9; the weakest child holds it down.
        assert_eq!(r[0].score, round1(small_bad.score + CHILD_SLACK));
        assert_eq!(r[0].grade, Some(Grade::of(small_bad.score + CHILD_SLACK)));
        assert!(r[0].score < 80.0);
    }

    #[test]
    fn siblings_are_ranked_with_percentiles() {
        let a = own(10, 0, false);
        let b = own(10, 2, false);
        let c = own(10, 0, true);
        let empty = own(0, 0, false);
        let nodes = [
            OrgNode {
                code: "R",
                parent: None,
                own: &empty,
            },
            OrgNode {
                code: "A",
                parent: Some("R"),
                own: &a,
            },
            OrgNode {
                code: "B",
                parent: Some("R"),
                own: &b,
            },
            OrgNode {
                code: "C",
                parent: Some("R"),
                own: &c,
            },
            OrgNode {
                code: "D",
                parent: Some("R"),
                own: &empty,
            },
            OrgNode {
                code: "X",
                parent: None,
                own: &a,
            },
        ];
        let r = roll_up(&nodes);
        let got: Vec<_> = r[1..4]
            .iter()
            .map(|x| (x.rank, x.siblings, x.percentile))
            .collect();
        assert_eq!(
            got,
            [
                (Some(1), Some(3), Some(100)),
                (Some(2), Some(3), Some(50)),
                (Some(3), Some(3), Some(0))
            ]
        );
        assert_eq!((r[4].scored, r[4].rank), (false, None));
        // Top-level organisations are siblings of each other.
        assert_eq!(r[0].siblings, Some(2));
        assert_eq!(r[5].siblings, Some(2));
    }

    #[test]
    fn a_parent_loop_is_cut_not_followed() {
        let a = own(10, 1, false);
        let nodes = [
            OrgNode {
                code: "A",
                parent: Some("B"),
                own: &a,
            },
            OrgNode {
                code: "B",
                parent: Some("A"),
                own: &a,
            },
            OrgNode {
                code: "C",
                parent: Some("C"),
                own: &a,
            },
        ];
        let r = roll_up(&nodes);
        assert_eq!(r.len(), 3);
        assert!(r.iter().all(|x| x.scored));
    }
}
