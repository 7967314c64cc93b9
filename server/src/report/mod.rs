//! Reports people read: one scope (an organisation, a parent and its
//! descendants, or all) gathered from the store into a [`ReportData`] and
//! written as HTML ([`html`], self-contained with inline SVG charts from
//! [`svg`]), CSV ([`csv`], one row per open finding) or JSON (the
//! [`ReportData`] itself, schema [`SCHEMA`]). [`output`] writes files
//! atomically, [`mail`] sends them over SMTP, [`schedule`] fires the
//! `[[reports]]` of the configuration at their [`cron`] slots, and
//! [`cmd`] is the `report` command.
//!
//! Invariants: every report states the scoring `model_version` and the age
//! of every feed; a report only ever contains the organisations of its
//! scope (an `org` API key gets a scope of its own organisation only);
//! the same data renders to the same bytes.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;

use crate::clock::{fmt_ms, fmt_time, to_ms};
use crate::score::{FixItem, MODEL_VERSION};
use crate::scorecmd::league;
use crate::store::query::{find_sort, OrgItem, PageReq, HISTORY_SORTS};
use crate::store::scores::{fmt_day, Breakdown, Changes, HistoryFilter};
use crate::store::views::{CategoryCount, ReportFinding};
use crate::store::{Store, StoreError};

pub mod cmd;
pub mod cron;
pub mod csv;
pub mod html;
pub mod mail;
pub mod output;
pub mod schedule;
pub mod svg;

/// The `schema` of a JSON report.
pub const SCHEMA: &str = "trustwatch.posture-report/v1";
/// Days of score history a report charts.
pub const HISTORY_DAYS: i64 = 90;
/// Default period of "what changed" when no previous report is known.
pub const DEFAULT_CHANGES_DAYS: i64 = 7;

/// Which organisations a report covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One organisation.
    Org(String),
    /// An organisation and all its descendants.
    Parent(String),
    /// Every organisation.
    All,
}

impl Scope {
    /// Parses `all`, `org:CODE` or `parent:CODE`.
    pub fn parse(s: &str) -> Result<Scope, ReportError> {
        let bad = || {
            ReportError::Invalid(format!(
                "scope {s:?}: expected \"all\", \"org:CODE\" or \"parent:CODE\""
            ))
        };
        if s == "all" {
            return Ok(Scope::All);
        }
        let (kind, code) = s.split_once(':').ok_or_else(bad)?;
        if !trustwatch_common::identity::is_valid_org_code(code) {
            return Err(bad());
        }
        match kind {
            "org" => Ok(Scope::Org(code.to_owned())),
            "parent" => Ok(Scope::Parent(code.to_owned())),
            _ => Err(bad()),
        }
    }

    /// `all`, `org-CODE` or `parent-CODE`: the part of a file name.
    pub fn slug(&self) -> String {
        match self {
            Scope::Org(c) => format!("org-{c}"),
            Scope::Parent(c) => format!("parent-{c}"),
            Scope::All => "all".to_owned(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Scope::Org(_) => "org",
            Scope::Parent(_) => "parent",
            Scope::All => "all",
        }
    }

    fn code(&self) -> Option<&str> {
        match self {
            Scope::Org(c) | Scope::Parent(c) => Some(c),
            Scope::All => None,
        }
    }
}

/// A report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    Html,
    Csv,
    Json,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Html, Format::Csv, Format::Json];

    pub fn parse(s: &str) -> Result<Format, ReportError> {
        match s {
            "html" => Ok(Format::Html),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            _ => Err(ReportError::Invalid(format!(
                "format {s:?}: expected html, csv or json"
            ))),
        }
    }

    /// The file extension (also the name).
    pub fn ext(self) -> &'static str {
        match self {
            Format::Html => "html",
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Html => "text/html; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
        }
    }
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
    #[error("organisation {0} does not exist")]
    OrgNotFound(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("mail: {0}")]
    Mail(String),
}

/// The scope as the report states it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopeInfo {
    /// `org`, `parent` or `all`.
    pub kind: &'static str,
    pub code: Option<String>,
    pub name: Option<String>,
}

/// Age of one feed at the report's time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedInfo {
    /// `osv`, `kev`, `epss` or `eol`.
    pub kind: String,
    /// The file imported, or `shipped` (the built-in end-of-life snapshot).
    pub source: String,
    pub imported_at: Option<String>,
    /// The date the feed states about itself.
    pub feed_date: Option<String>,
    /// Whole days from the feed's date (else its import) to the report.
    pub age_days: Option<i64>,
}

/// One day of a score history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryPoint {
    pub day: String,
    pub score: f64,
    pub grade: String,
}

/// One organisation shown in full (the scope's own organisation, or each
/// top-level organisation of an `all` report).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Section {
    pub org: OrgItem,
    /// Null before the first score refresh.
    pub breakdown: Option<Breakdown>,
    pub top_to_fix: Vec<FixItem>,
    /// Oldest first, at most [`HISTORY_DAYS`] days.
    pub history: Vec<HistoryPoint>,
    /// Since the previous report (or the last [`DEFAULT_CHANGES_DAYS`]).
    pub changes: Changes,
}

/// Everything a report shows; the JSON format is this, serialised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportData {
    pub schema: &'static str,
    pub title: String,
    pub scope: ScopeInfo,
    pub generated_at: String,
    /// The scoring model of every score in the report.
    pub model_version: String,
    /// Start of the "what changed" period (the previous report).
    pub since: String,
    pub feeds: Vec<FeedInfo>,
    /// The organisations of the scope, best score first.
    pub orgs: Vec<OrgItem>,
    pub sections: Vec<Section>,
    /// Open findings of the scope per category and severity.
    pub findings_by_category: Vec<CategoryCount>,
    /// Open findings of the scope, worst first.
    pub findings: Vec<ReportFinding>,
}

fn age_days(at: Option<i64>, now: i64) -> Option<i64> {
    at.map(|t| (now - t).max(0) / 86_400_000)
}

/// Gathers a report of `scope` as of `now`; "what changed" runs from
/// `since` (unix ms; default [`DEFAULT_CHANGES_DAYS`] before `now`).
pub async fn build(
    store: &Store,
    scope: &Scope,
    now: OffsetDateTime,
    since: Option<i64>,
) -> Result<ReportData, ReportError> {
    let now_ms = to_ms(now);
    let since = since.unwrap_or(now_ms - DEFAULT_CHANGES_DAYS * 86_400_000);
    let codes = match scope {
        Scope::Org(c) => {
            if !store.org_exists(c).await? {
                return Err(ReportError::OrgNotFound(c.clone()));
            }
            vec![c.clone()]
        }
        Scope::Parent(c) => {
            let t = store.org_subtree(c).await?;
            if t.is_empty() {
                return Err(ReportError::OrgNotFound(c.clone()));
            }
            t
        }
        Scope::All => store.all_org_codes().await?,
    };
    let orgs: Vec<OrgItem> = league(store)
        .await?
        .into_iter()
        .filter(|o| codes.binary_search(&o.code).is_ok())
        .collect();
    let headline: Vec<&OrgItem> = match scope.code() {
        Some(c) => orgs.iter().filter(|o| o.code == c).collect(),
        None => orgs.iter().filter(|o| o.parent.is_none()).collect(),
    };
    let mut sections = Vec::with_capacity(headline.len());
    for o in headline {
        sections.push(section(store, o.clone(), now, since).await?);
    }
    let mut feeds: Vec<FeedInfo> = store
        .feed_ages()
        .await?
        .into_iter()
        .map(|(kind, a)| FeedInfo {
            kind,
            source: a.source,
            imported_at: a.imported_at.map(fmt_ms),
            feed_date: a.feed_date.map(fmt_ms),
            age_days: age_days(a.feed_date.or(a.imported_at), now_ms),
        })
        .collect();
    feeds.sort_by(|a, b| a.kind.cmp(&b.kind));
    let scope_name = match scope.code() {
        Some(c) => orgs.iter().find(|o| o.code == c).map(|o| o.name.clone()),
        None => None,
    };
    let title = match (&scope, &scope_name) {
        (Scope::All, _) => "Security posture: all organisations".to_owned(),
        (Scope::Parent(c), n) => format!(
            "Security posture: {} and its organisations",
            n.as_deref().unwrap_or(c)
        ),
        (Scope::Org(c), n) => format!("Security posture: {}", n.as_deref().unwrap_or(c)),
    };
    Ok(ReportData {
        schema: SCHEMA,
        title,
        scope: ScopeInfo {
            kind: scope.kind(),
            code: scope.code().map(str::to_owned),
            name: scope_name,
        },
        generated_at: fmt_time(now),
        model_version: MODEL_VERSION.to_owned(),
        since: fmt_ms(since),
        feeds,
        findings_by_category: store.category_counts(&codes).await?,
        findings: store.open_findings_of(&codes).await?,
        orgs,
        sections,
    })
}

async fn section(
    store: &Store,
    org: OrgItem,
    now: OffsetDateTime,
    since: i64,
) -> Result<Section, ReportError> {
    let now_ms = to_ms(now);
    let first = now.date() - time::Duration::days(HISTORY_DAYS - 1);
    let sort = find_sort(HISTORY_SORTS, Some("day")).map_err(ReportError::Invalid)?;
    let page = store
        .history_page(
            &org.code,
            &HistoryFilter {
                from: Some(fmt_day(first)),
                to: Some(fmt_day(now.date())),
                model_version: None,
            },
            &PageReq {
                sort,
                after: None,
                limit: 1000,
            },
        )
        .await?;
    let history = page
        .items
        .into_iter()
        .map(|h| HistoryPoint {
            day: h.day,
            score: h.score,
            grade: h.grade,
        })
        .collect();
    let score = store.org_score(&org.code).await?;
    let (breakdown, top_to_fix) = match score {
        Some(s) if s.scored => (Some(s.detail.breakdown), s.detail.top_to_fix),
        Some(s) => (Some(s.detail.breakdown), Vec::new()),
        None => (None, Vec::new()),
    };
    let changes = store.changes(&org.code, since, now_ms, now_ms).await?;
    Ok(Section {
        org,
        breakdown,
        top_to_fix,
        history,
        changes,
    })
}

/// Renders a report in one format.
pub fn render(data: &ReportData, format: Format) -> Vec<u8> {
    match format {
        Format::Html => html::render(data).into_bytes(),
        Format::Csv => csv::render(&data.findings, &org_names(data)).into_bytes(),
        Format::Json => {
            let mut v = serde_json::to_vec_pretty(data).unwrap_or_else(|e| {
                // Plain data (strings, numbers, maps with string keys): the
                // encoder cannot fail; say so rather than panic.
                format!("{{\"error\": \"cannot encode the report: {e}\"}}").into_bytes()
            });
            v.push(b'\n');
            v
        }
    }
}

fn org_names(data: &ReportData) -> BTreeMap<String, String> {
    data.orgs
        .iter()
        .map(|o| (o.code.clone(), o.name.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_make_file_name_parts() {
        assert_eq!(Scope::parse("all").unwrap(), Scope::All);
        assert_eq!(Scope::parse("org:RX1").unwrap(), Scope::Org("RX1".into()));
        assert_eq!(Scope::parse("parent:NAT").unwrap().slug(), "parent-NAT");
        for bad in ["", "org:", "org:../x", "region:R1", "ALL", "org:a b"] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_parse_and_name_their_content_type() {
        for f in Format::ALL {
            assert_eq!(Format::parse(f.ext()).unwrap(), f);
        }
        assert!(Format::parse("pdf").is_err());
        assert_eq!(Format::Csv.content_type(), "text/csv; charset=utf-8");
    }
}
