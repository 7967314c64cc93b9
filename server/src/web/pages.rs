//! The dashboard's pages as HTML strings: the shell (top bar with who is
//! logged in), the login form, the league table, an organisation's page
//! and a finding's detail. Pure functions of their data; every text goes
//! through [`esc`] (and [`url`] inside links).

use std::fmt::Write;

use crate::api::auth::ApiCaller;
use crate::html::{esc, page, severity_badge, url};
use crate::report::html::{breakdown_table, cards, fix_table, league_row, LEAGUE_COLUMNS};
use crate::report::{svg, HistoryPoint};
use crate::score::FixItem;
use crate::store::query::{FindingItem, OrgItem};
use crate::store::scores::Breakdown;

/// The page shell with the top bar.
pub fn shell(title: &str, who: Option<&ApiCaller>, body: &str) -> String {
    let mut s = String::from(
        "<header class=\"top\"><a class=\"brand\" href=\"/\">trustwatch</a><a href=\"/\">league table</a>",
    );
    if let Some(c) = who {
        let _ = write!(
            s,
            "<span class=\"meta\" style=\"color:#cfe\">{} key{}</span>\
             <form method=\"post\" action=\"/logout\"><button type=\"submit\">log out</button></form>",
            esc(c.role.as_str()),
            c.org
                .as_deref()
                .map(|o| format!(" for {}", esc(o)))
                .unwrap_or_default()
        );
    }
    let _ = write!(s, "</header><main>{body}</main>");
    page(&format!("{title} \u{2013} trustwatch"), &s)
}

/// The login form, with an optional message.
pub fn login(message: Option<&str>) -> String {
    let msg = message
        .map(|m| format!("<p class=\"err\">{}</p>", esc(m)))
        .unwrap_or_default();
    shell(
        "Log in",
        None,
        &format!(
            "<h1>Log in</h1>{msg}<form class=\"login\" method=\"post\" action=\"/login\">\
             <label for=\"key\">API key</label><input id=\"key\" name=\"key\" type=\"password\" \
             autocomplete=\"off\" required><button type=\"submit\">log in</button>\
             <p class=\"meta\">The same key as the query API (national, admin or organisation). \
             The session lasts 12 hours; log out ends it.</p></form>"
        ),
    )
}

/// An error page.
pub fn error(status: u16, title: &str, detail: &str, who: Option<&ApiCaller>) -> String {
    shell(
        title,
        who,
        &format!(
            "<h1>{} {}</h1><p>{}</p><p><a href=\"/\">Back to the league table</a></p>",
            status,
            esc(title),
            esc(detail)
        ),
    )
}

/// A sortable column of the league table: (header, ascending sort,
/// descending sort).
const SORTABLE: [(&str, &str, &str); 9] = [
    ("code", "code", "-code"),
    ("name", "name", "-name"),
    ("score", "score", "-score"),
    ("tls", "tls_score", "-tls_score"),
    ("patch", "patch_score", "-patch_score"),
    ("legacy", "legacy_score", "-legacy_score"),
    ("coverage", "coverage_score", "-coverage_score"),
    ("confidence", "confidence", "-confidence"),
    ("open findings", "-open_findings", "-open_findings"),
];

/// The league table page.
pub fn league(
    who: &ApiCaller,
    orgs: &[OrgItem],
    sort: &str,
    next_cursor: Option<&str>,
    model_version: &str,
) -> String {
    let mut s = format!(
        "<h1>League table</h1><p class=\"meta\">{} organisation(s) \u{b7} sorted by <b class=\"sort\">{}</b> \
         \u{b7} scoring model v{}</p><table class=\"league\"><tr>",
        orgs.len(),
        esc(sort),
        esc(model_version)
    );
    for col in LEAGUE_COLUMNS {
        match SORTABLE.iter().find(|(h, _, _)| *h == col) {
            Some((_, asc, desc)) => {
                // Scores start best first; names and codes A to Z.
                let first = if col == "code" || col == "name" {
                    asc
                } else {
                    desc
                };
                let other = if first == asc { desc } else { asc };
                let target = if sort == *first { other } else { first };
                let mark = if sort == *asc {
                    " \u{25b2}"
                } else if sort == *desc {
                    " \u{25bc}"
                } else {
                    ""
                };
                let _ = write!(
                    s,
                    "<th><a href=\"/?sort={}\">{}</a>{mark}</th>",
                    esc(&url(target)),
                    esc(col)
                );
            }
            None => {
                let _ = write!(s, "<th>{}</th>", esc(col));
            }
        }
    }
    s.push_str("</tr>");
    let link = |o: &OrgItem| {
        format!(
            "<a href=\"/orgs/{}\">{}</a>",
            esc(&url(&o.code)),
            esc(&o.code)
        )
    };
    for o in orgs {
        s.push_str(&league_row(o, &link));
    }
    s.push_str("</table>");
    if let Some(c) = next_cursor {
        let _ = write!(
            s,
            "<p><a rel=\"next\" href=\"/?sort={}&amp;cursor={}\">next page</a></p>",
            esc(&url(sort)),
            esc(&url(c))
        );
    }
    shell("League table", Some(who), &s)
}

/// What an organisation's page shows.
pub struct OrgPage<'a> {
    pub org: &'a OrgItem,
    pub breakdown: Option<&'a Breakdown>,
    pub top_to_fix: &'a [FixItem],
    pub history: &'a [HistoryPoint],
    pub findings: &'a [FindingItem],
    pub next_cursor: Option<&'a str>,
    /// Members of a roll-up the caller may open.
    pub can_open_members: bool,
}

/// The link to a finding's detail page.
pub fn finding_href(org: &str, f: &FindingItem) -> String {
    format!(
        "/orgs/{}/finding?kind={}&asset={}&code={}&subject={}",
        url(org),
        url(&f.asset_kind),
        url(&f.asset),
        url(&f.code),
        url(&f.subject)
    )
}

/// An organisation's page.
pub fn org(who: &ApiCaller, p: &OrgPage<'_>) -> String {
    let o = p.org;
    let mut s = format!(
        "<h1>{} <span class=\"meta\">{}</span></h1><p class=\"meta\">{}scoring model v{} \u{b7} scored {}</p>",
        esc(&o.name),
        esc(&o.code),
        o.parent
            .as_deref()
            .map(|x| format!("part of {} \u{b7} ", esc(x)))
            .unwrap_or_default(),
        esc(o.model_version.as_deref().unwrap_or("\u{2013}")),
        esc(o.scored_at.as_deref().unwrap_or("never"))
    );
    s.push_str(&cards(o, None));
    s.push_str("<h2>Score trend</h2>");
    s.push_str(&svg::history_chart(p.history));
    s.push_str("<h2>Category breakdown</h2>");
    match p.breakdown {
        Some(b) => {
            s.push_str(&breakdown_table(b));
            if !b.members.is_empty() {
                s.push_str(
                    "<h3>Members of the roll-up</h3><table><tr><th>organisation</th>\
                     <th class=\"n\">score</th><th class=\"n\">assets</th><th class=\"n\">weight</th></tr>",
                );
                for m in &b.members {
                    let name = if m.own {
                        format!("{} (own assets)", esc(&m.code))
                    } else if p.can_open_members {
                        format!(
                            "<a href=\"/orgs/{}\">{}</a>",
                            esc(&url(&m.code)),
                            esc(&m.code)
                        )
                    } else {
                        esc(&m.code)
                    };
                    let _ = write!(
                        s,
                        "<tr><td>{name}</td><td class=\"n\">{:.1}</td><td class=\"n\">{}</td>\
                         <td class=\"n\">{:.0}%</td></tr>",
                        m.score,
                        m.assets,
                        m.weight * 100.0
                    );
                }
                s.push_str("</table>");
            }
        }
        None => s.push_str("<p>Not scored yet.</p>"),
    }
    s.push_str("<h2>What to fix first</h2>");
    s.push_str(&fix_table(p.top_to_fix));
    s.push_str("<h2>Open findings</h2>");
    if p.findings.is_empty() {
        s.push_str("<p>No open finding.</p>");
    } else {
        s.push_str(
            "<table class=\"findings\"><tr><th>severity</th><th>code</th><th>asset</th><th>title</th>\
             <th>first seen</th><th>last seen</th></tr>",
        );
        for f in p.findings {
            let _ = write!(
                s,
                "<tr class=\"finding\"><td>{}</td><td><a href=\"{}\">{}</a></td><td>{} \
                 <span class=\"meta\">{}</span></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                severity_badge(&f.severity),
                esc(&finding_href(&o.code, f)),
                esc(&f.code),
                esc(&f.asset),
                esc(&f.asset_kind),
                esc(&f.title),
                esc(&f.first_seen),
                esc(&f.last_seen)
            );
        }
        s.push_str("</table>");
    }
    if let Some(c) = p.next_cursor {
        let _ = write!(
            s,
            "<p><a rel=\"next\" href=\"/orgs/{}?cursor={}\">more findings</a></p>",
            esc(&url(&o.code)),
            esc(&url(c))
        );
    }
    shell(&o.name, Some(who), &s)
}

/// A finding's detail page.
pub fn finding(who: &ApiCaller, org: &OrgItem, f: &FindingItem) -> String {
    let evidence =
        serde_json::to_string_pretty(&f.evidence).unwrap_or_else(|_| f.evidence.to_string());
    let mut s = format!(
        "<p><a href=\"/orgs/{}\">\u{2190} {}</a></p><h1>{} {}</h1><table class=\"finding-detail\">",
        esc(&url(&org.code)),
        esc(&org.name),
        severity_badge(&f.severity),
        esc(&f.title)
    );
    let rows: [(&str, String); 12] = [
        ("code", f.code.clone()),
        ("category", f.category.clone()),
        ("asset", format!("{} ({})", f.asset, f.asset_kind)),
        ("subject", f.subject.clone()),
        ("status", f.status.clone()),
        ("first seen", f.first_seen.clone()),
        ("last seen", f.last_seen.clone()),
        (
            "resolved at",
            f.resolved_at.clone().unwrap_or_else(|| "\u{2013}".into()),
        ),
        ("times reopened", f.reopened.to_string()),
        ("agent", f.agent_id.clone()),
        ("collector", f.collector.clone()),
        ("organisation", org.code.clone()),
    ];
    for (k, v) in rows {
        let _ = write!(s, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v));
    }
    let _ = write!(
        s,
        "</table><h2>Evidence</h2><pre class=\"evidence\">{}</pre>",
        esc(&evidence)
    );
    shell(&f.title, Some(who), &s)
}
