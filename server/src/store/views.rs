//! Read queries of the reports and the dashboard that the query API does
//! not need: the organisations of a scope (one, a parent's subtree, all),
//! their open findings and per-category counts, one finding by its key,
//! and the age of each feed. Every query is filtered on the organisation
//! codes it is given; nothing here writes.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::query::FindingItem;
use super::{Store, StoreError};
use crate::clock::fmt_ms;
use crate::vuln::matcher::FeedAge;

/// An open finding of a report (one CSV row).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportFinding {
    pub org: String,
    pub code: String,
    pub severity: String,
    pub category: String,
    pub asset_kind: String,
    pub asset: String,
    pub subject: String,
    pub title: String,
    pub status: String,
    pub first_seen: String,
    pub last_seen: String,
    pub evidence: Value,
}

/// Open findings of one category by severity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CategoryCount {
    pub category: String,
    pub critical: i64,
    pub high: i64,
    pub medium: i64,
    pub low: i64,
    pub info: i64,
}

impl CategoryCount {
    pub fn total(&self) -> i64 {
        self.critical + self.high + self.medium + self.low + self.info
    }

    /// (severity, count), worst first.
    pub fn by_severity(&self) -> [(&'static str, i64); 5] {
        [
            ("critical", self.critical),
            ("high", self.high),
            ("medium", self.medium),
            ("low", self.low),
            ("info", self.info),
        ]
    }
}

fn push_orgs(qb: &mut QueryBuilder<'_, Sqlite>, col: &str, orgs: &[String]) {
    qb.push(format!(" AND {col} IN ("));
    if orgs.is_empty() {
        // `IN ()` is not portable SQL; an impossible code matches nothing.
        qb.push("''");
    } else {
        let mut sep = qb.separated(", ");
        for o in orgs {
            sep.push_bind(o.clone());
        }
    }
    qb.push(")");
}

fn json_col(r: &SqliteRow, col: &str) -> Result<Value, StoreError> {
    let text: String = r.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

impl Store {
    /// Every organisation code, sorted.
    pub async fn all_org_codes(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT code FROM orgs ORDER BY code")
            .fetch_all(self.pool())
            .await?)
    }

    /// `code` and all its descendants, sorted; empty when `code` does not
    /// exist.
    pub async fn org_subtree(&self, code: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "WITH RECURSIVE t(code) AS (SELECT code FROM orgs WHERE code = $1 \
             UNION SELECT o.code FROM orgs o JOIN t ON o.parent = t.code) \
             SELECT code FROM t ORDER BY code",
        )
        .bind(code)
        .fetch_all(self.pool())
        .await?)
    }

    /// Open findings of these organisations, worst first (then by
    /// organisation, asset, code and subject).
    pub async fn open_findings_of(
        &self,
        orgs: &[String],
    ) -> Result<Vec<ReportFinding>, StoreError> {
        let mut qb = QueryBuilder::new(
            "SELECT org, code, severity, category, asset_kind, asset_id, subject, title, status, \
             first_seen, last_seen, evidence FROM findings WHERE status = 'open'",
        );
        push_orgs(&mut qb, "org", orgs);
        qb.push(
            " ORDER BY severity_rank DESC, org ASC, asset_kind ASC, asset_id ASC, code ASC, \
             subject ASC",
        );
        let rows = qb.build().fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(ReportFinding {
                    org: r.try_get("org")?,
                    code: r.try_get("code")?,
                    severity: r.try_get("severity")?,
                    category: r.try_get("category")?,
                    asset_kind: r.try_get("asset_kind")?,
                    asset: r.try_get("asset_id")?,
                    subject: r.try_get("subject")?,
                    title: r.try_get("title")?,
                    status: r.try_get("status")?,
                    first_seen: fmt_ms(r.try_get("first_seen")?),
                    last_seen: fmt_ms(r.try_get("last_seen")?),
                    evidence: json_col(r, "evidence")?,
                })
            })
            .collect()
    }

    /// Open findings of these organisations per category and severity,
    /// one entry per category (tls, patch, legacy, coverage, then any other).
    pub async fn category_counts(&self, orgs: &[String]) -> Result<Vec<CategoryCount>, StoreError> {
        let mut qb = QueryBuilder::new(
            "SELECT category, severity, COUNT(*) AS n FROM findings WHERE status = 'open'",
        );
        push_orgs(&mut qb, "org", orgs);
        qb.push(" GROUP BY category, severity");
        let rows = qb.build().fetch_all(self.pool()).await?;
        let mut by: BTreeMap<String, CategoryCount> = BTreeMap::new();
        for c in trustwatch_common::Category::ALL {
            by.insert(
                c.as_str().to_owned(),
                CategoryCount {
                    category: c.as_str().to_owned(),
                    ..Default::default()
                },
            );
        }
        for r in &rows {
            let cat: String = r.try_get("category")?;
            let sev: String = r.try_get("severity")?;
            let n: i64 = r.try_get("n")?;
            let e = by.entry(cat.clone()).or_insert_with(|| CategoryCount {
                category: cat,
                ..Default::default()
            });
            match sev.as_str() {
                "critical" => e.critical += n,
                "high" => e.high += n,
                "medium" => e.medium += n,
                "low" => e.low += n,
                _ => e.info += n,
            }
        }
        let order = |c: &str| {
            trustwatch_common::Category::ALL
                .iter()
                .position(|x| x.as_str() == c)
                .unwrap_or(usize::MAX)
        };
        let mut out: Vec<CategoryCount> = by.into_values().collect();
        out.sort_by(|a, b| {
            order(&a.category)
                .cmp(&order(&b.category))
                .then_with(|| a.category.cmp(&b.category))
        });
        Ok(out)
    }

    /// One finding of an organisation by its key, whatever its status.
    pub async fn finding(
        &self,
        org: &str,
        asset_kind: &str,
        asset_id: &str,
        code: &str,
        subject: &str,
    ) -> Result<Option<FindingItem>, StoreError> {
        let Some(r) = sqlx::query(
            "SELECT asset_kind, asset_id, code, subject, severity, category, title, evidence, \
             status, first_seen, last_seen, resolved_at, reopened, agent_id, collector \
             FROM findings WHERE org = $1 AND asset_kind = $2 AND asset_id = $3 AND code = $4 \
             AND subject = $5",
        )
        .bind(org)
        .bind(asset_kind)
        .bind(asset_id)
        .bind(code)
        .bind(subject)
        .fetch_optional(self.pool())
        .await?
        else {
            return Ok(None);
        };
        let resolved: Option<i64> = r.try_get("resolved_at")?;
        Ok(Some(FindingItem {
            code: r.try_get("code")?,
            severity: r.try_get("severity")?,
            category: r.try_get("category")?,
            asset_kind: r.try_get("asset_kind")?,
            asset: r.try_get("asset_id")?,
            subject: r.try_get("subject")?,
            title: r.try_get("title")?,
            evidence: json_col(&r, "evidence")?,
            status: r.try_get("status")?,
            first_seen: fmt_ms(r.try_get("first_seen")?),
            last_seen: fmt_ms(r.try_get("last_seen")?),
            resolved_at: resolved.map(fmt_ms),
            reopened: r.try_get("reopened")?,
            agent_id: r.try_get("agent_id")?,
            collector: r.try_get("collector")?,
        }))
    }

    /// The latest import of each feed kind (the shipped end-of-life
    /// snapshot when none was imported).
    pub async fn feed_ages(&self) -> Result<BTreeMap<String, FeedAge>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        super::feeds::feed_ages(&mut conn).await
    }
}
