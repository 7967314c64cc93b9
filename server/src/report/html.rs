//! The HTML format of a report: one self-contained page (inline CSS,
//! inline SVG charts, no script, no external resource) of a
//! [`ReportData`]. The pieces (organisation cards, category breakdown,
//! what-to-fix-first, league table rows) are shared with the dashboard.
//! Every text goes through [`esc`].

use std::fmt::Write;

use super::{svg, ReportData, Section};
use crate::html::{esc, grade_badge, num, page, severity_badge};
use crate::score::FixItem;
use crate::store::query::OrgItem;
use crate::store::scores::{Breakdown, Changes};

/// Open findings listed in the HTML (all of them are in CSV and JSON).
pub const MAX_FINDINGS_SHOWN: usize = 500;

/// A link maker for organisation codes (the dashboard links them; a
/// report file does not).
pub type OrgLink<'a> = &'a dyn Fn(&OrgItem) -> String;

/// The summary cards of one organisation.
pub fn cards(o: &OrgItem, changes: Option<&Changes>) -> String {
    let mut s = String::from("<div class=\"cards\">");
    let card = |s: &mut String, v: String, l: &str| {
        let _ = write!(
            s,
            "<div class=\"card\"><div class=\"v\">{v}</div><div class=\"l\">{}</div></div>",
            esc(l)
        );
    };
    card(&mut s, esc(&num(o.score)), "score (0\u{2013}100)");
    card(&mut s, grade_badge(o.grade.as_deref()), "grade");
    card(
        &mut s,
        o.confidence
            .map_or("\u{2013}".to_owned(), |c| format!("{c}%")),
        "confidence",
    );
    if let (Some(r), Some(n)) = (o.rank, o.siblings) {
        card(&mut s, format!("{r}/{n}"), "rank among siblings");
    }
    card(
        &mut s,
        o.open_findings
            .map_or("\u{2013}".to_owned(), |n| n.to_string()),
        "open findings",
    );
    card(
        &mut s,
        o.assets.map_or("\u{2013}".to_owned(), |n| n.to_string()),
        "assets",
    );
    if let Some(c) = changes {
        let delta = c
            .delta
            .map_or("\u{2013}".to_owned(), |d| format!("{d:+.1}"));
        card(&mut s, esc(&delta), "change since last report");
        card(
            &mut s,
            format!("+{} / \u{2212}{} / \u{21ba}{}", c.new, c.fixed, c.reopened),
            "new / fixed / reopened",
        );
    }
    s.push_str("</div>");
    s
}

/// The category breakdown table (scores, deductions, caps).
pub fn breakdown_table(b: &Breakdown) -> String {
    let mut s = String::from(
        "<table class=\"breakdown\"><tr><th>category</th><th class=\"n\">score</th>\
         <th>grade</th><th>deductions</th><th>caps</th></tr>",
    );
    for c in &b.categories {
        let deductions: Vec<String> = c
            .deductions
            .iter()
            .map(|d| {
                format!(
                    "{} \u{2212}{:.1} ({} on {} assets)",
                    esc(d.severity.as_str()),
                    d.points,
                    d.findings,
                    d.assets
                )
            })
            .collect();
        let caps: Vec<&str> = c.caps.iter().map(|x| x.as_str()).collect();
        let _ = write!(
            s,
            "<tr data-category=\"{cat}\"><td>{cat}{obs}</td><td class=\"n\">{:.1}</td><td>{}</td>\
             <td>{}</td><td>{}</td></tr>",
            c.score,
            grade_badge(Some(c.grade.as_str())),
            if deductions.is_empty() {
                "none".to_owned()
            } else {
                deductions.join("<br>")
            },
            esc(&caps.join(", ")),
            cat = esc(c.category.as_str()),
            obs = if c.observed {
                ""
            } else {
                " <span class=\"meta\">(not observed)</span>"
            },
        );
    }
    s.push_str("</table>");
    if !b.caps.is_empty() {
        s.push_str("<p>Caps in force: ");
        let caps: Vec<String> = b
            .caps
            .iter()
            .map(|c| {
                format!(
                    "{} (at most {:.0}{})",
                    esc(c.cap.as_str()),
                    c.limit,
                    if c.binding { ", binding" } else { "" }
                )
            })
            .collect();
        s.push_str(&caps.join("; "));
        s.push_str("</p>");
    }
    s
}

/// The what-to-fix-first table.
pub fn fix_table(items: &[FixItem]) -> String {
    if items.is_empty() {
        return "<p>Nothing to fix: no open finding costs points.</p>".to_owned();
    }
    let mut s = String::from(
        "<table class=\"fix\"><tr><th>#</th><th>code</th><th>severity</th><th>category</th>\
         <th class=\"n\">findings</th><th class=\"n\">assets</th><th class=\"n\">points won back</th></tr>",
    );
    for (i, f) in items.iter().enumerate() {
        let _ = write!(
            s,
            "<tr class=\"fix-item\" data-code=\"{code}\"><td>{}</td><td>{code}</td><td>{}</td><td>{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">+{:.1}</td></tr>",
            i + 1,
            severity_badge(f.severity.as_str()),
            esc(f.category.as_str()),
            f.findings,
            f.assets,
            f.points,
            code = esc(&f.code),
        );
    }
    s.push_str("</table>");
    s
}

/// One league-table row; `link` gives the cell of the code.
pub fn league_row(o: &OrgItem, link: OrgLink<'_>) -> String {
    format!(
        "<tr class=\"org\" data-code=\"{}\"><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td>\
         <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
         <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
        esc(&o.code),
        link(o),
        esc(&o.name),
        esc(&num(o.score)),
        grade_badge(o.grade.as_deref()),
        esc(&num(o.tls_score)),
        esc(&num(o.patch_score)),
        esc(&num(o.legacy_score)),
        esc(&num(o.coverage_score)),
        o.confidence
            .map_or("\u{2013}".to_owned(), |c| format!("{c}%")),
        match (o.rank, o.siblings) {
            (Some(r), Some(n)) => format!("{r}/{n}"),
            _ => "\u{2013}".to_owned(),
        },
        o.open_findings
            .map_or("\u{2013}".to_owned(), |n| n.to_string()),
    )
}

/// The league-table header cells (plain text).
pub const LEAGUE_COLUMNS: [&str; 11] = [
    "code",
    "name",
    "score",
    "grade",
    "tls",
    "patch",
    "legacy",
    "coverage",
    "confidence",
    "rank",
    "open findings",
];

fn section_html(s: &mut String, sec: &Section) {
    let o = &sec.org;
    let _ = write!(
        s,
        "<section class=\"org-section\" data-code=\"{}\"><h2>{} <span class=\"meta\">({})</span></h2>",
        esc(&o.code),
        esc(&o.name),
        esc(&o.code)
    );
    s.push_str(&cards(o, Some(&sec.changes)));
    s.push_str("<h3>Score history</h3>");
    s.push_str(&svg::history_chart(&sec.history));
    if let Some(b) = &sec.breakdown {
        s.push_str("<h3>Category breakdown</h3>");
        s.push_str(&breakdown_table(b));
    }
    s.push_str("<h3>What to fix first</h3>");
    s.push_str(&fix_table(&sec.top_to_fix));
    if !sec.changes.by_code.is_empty() {
        s.push_str(
            "<h3>Changes since the last report</h3><table><tr><th>code</th><th class=\"n\">new</th>\
             <th class=\"n\">fixed</th><th class=\"n\">reopened</th></tr>",
        );
        for c in &sec.changes.by_code {
            let _ = write!(
                s,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&c.code),
                c.new,
                c.fixed,
                c.reopened
            );
        }
        s.push_str("</table>");
    }
    s.push_str("</section>");
}

/// The report page.
pub fn render(d: &ReportData) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<header class=\"top\"><span class=\"brand\">trustwatch</span><span>posture report \u{b7} scope {}</span></header><main>\
         <h1>{}</h1><p class=\"meta\">Generated {} \u{b7} scoring model <b class=\"model-version\">v{}</b> \
         \u{b7} changes since {}</p>",
        esc(&match &d.scope.code {
            Some(c) => format!("{} {c}", d.scope.kind),
            None => d.scope.kind.to_owned(),
        }),
        esc(&d.title),
        esc(&d.generated_at),
        esc(&d.model_version),
        esc(&d.since)
    );
    s.push_str(
        "<h2>Feeds</h2><table class=\"feeds\"><tr><th>feed</th><th>source</th><th>feed date</th>\
         <th>imported</th><th class=\"n\">age (days)</th></tr>",
    );
    for f in &d.feeds {
        let _ = write!(
            s,
            "<tr data-feed=\"{kind}\"><td>{kind}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            esc(&f.source),
            esc(f.feed_date.as_deref().unwrap_or("\u{2013}")),
            esc(f.imported_at.as_deref().unwrap_or("\u{2013}")),
            f.age_days.map_or("\u{2013}".to_owned(), |a| a.to_string()),
            kind = esc(&f.kind),
        );
    }
    if d.feeds.is_empty() {
        s.push_str("<tr><td colspan=\"5\">no feed imported</td></tr>");
    }
    s.push_str("</table>");
    for sec in &d.sections {
        section_html(&mut s, sec);
    }
    if d.orgs.len() > 1 || d.sections.is_empty() {
        s.push_str("<h2>Organisations</h2><table class=\"league\"><tr>");
        for c in LEAGUE_COLUMNS {
            let _ = write!(s, "<th>{}</th>", esc(c));
        }
        s.push_str("</tr>");
        let plain = |o: &OrgItem| esc(&o.code);
        for o in &d.orgs {
            s.push_str(&league_row(o, &plain));
        }
        s.push_str("</table>");
    }
    s.push_str("<h2>Open findings by category</h2>");
    s.push_str(&svg::category_chart(&d.findings_by_category));
    let _ = write!(
        s,
        "<h2>Open findings</h2><p class=\"meta\">{} open finding(s){}</p>",
        d.findings.len(),
        if d.findings.len() > MAX_FINDINGS_SHOWN {
            format!(
                "; the worst {MAX_FINDINGS_SHOWN} are listed, every one is in the CSV and JSON formats"
            )
        } else {
            String::new()
        }
    );
    if !d.findings.is_empty() {
        s.push_str(
            "<table class=\"findings\"><tr><th>org</th><th>severity</th><th>code</th><th>asset</th>\
             <th>title</th><th>first seen</th><th>evidence</th></tr>",
        );
        for f in d.findings.iter().take(MAX_FINDINGS_SHOWN) {
            let _ = write!(
                s,
                "<tr class=\"finding\"><td>{}</td><td>{}</td><td>{}</td><td>{} <span class=\"meta\">{}</span></td>\
                 <td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                esc(&f.org),
                severity_badge(&f.severity),
                esc(&f.code),
                esc(&f.asset),
                esc(&f.asset_kind),
                esc(&f.title),
                esc(&f.first_seen),
                esc(&f.evidence.to_string())
            );
        }
        s.push_str("</table>");
    }
    s.push_str("</main>");
    page(&d.title, &s)
}
