//! Storing one report: its raw blob, its assets and findings, finding
//! lifecycle (open → resolved → reopened) and the agent's `last_seen`, all
//! in one transaction.
//!
//! Lifecycle rules, with `t` the report's `collected_at`:
//! * an unseen finding is inserted `open` with `first_seen = last_seen = t`;
//! * a known finding seen at `t >= last_seen` takes the report's severity,
//!   title, evidence, agent and collector and `last_seen = t`; at an older
//!   `t` only `first_seen` may move earlier;
//! * a `resolved` finding seen at `t >= resolved_at` is reopened
//!   (`reopened + 1`, `reopened_at = t`, `resolved_at` cleared);
//! * an `open` finding of this agent whose collector is in the report's
//!   `collectors`, that the report lacks and whose `last_seen <= t`, is
//!   resolved at `t` — an older report never resolves or regresses anything;
//! * the agent's open `coverage.agent.stale` finding (the server's) is
//!   resolved at the receipt time, and the organisation's score is marked
//!   out of date ([`super::scores`]).
//!
//! With a [`MatchContext`] ([`Store::ingest_matching`], what the API uses),
//! each host inventory of the report is also matched against the feeds in
//! the same transaction, when the report is that host's newest (see
//! [`super::matched`]). Agents cannot raise or resolve findings of the
//! server's own collectors (`match`, `server`): such a claim is filed under
//! the code's default collector, and those names are dropped from
//! `collectors`.

use std::collections::{BTreeMap, HashSet};

use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use time::OffsetDateTime;
use trustwatch_common::host::HostAsset;
use trustwatch_common::report::collector;
use trustwatch_common::{Category, Report, Severity};
use uuid::Uuid;

use super::scores::{mark_dirty, SERVER_COLLECTOR, STALE_CODE};
use super::{Store, StoreError};
use crate::clock::to_ms;
use crate::vuln::{Policy, MATCH_COLLECTOR};

/// An asset as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetRow {
    pub kind: &'static str,
    pub id: String,
    pub details: String,
}

/// The identity of a finding within an organisation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FindingKey {
    pub asset_kind: String,
    pub asset_id: String,
    pub code: String,
    pub subject: String,
}

/// A finding as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingRow {
    pub key: FindingKey,
    pub severity: Severity,
    pub category: Category,
    pub title: String,
    pub evidence: String,
    pub collector: String,
}

/// What a validated report contributes to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRows {
    pub report_id: String,
    pub collected_at: i64,
    pub collectors: Vec<String>,
    pub assets: Vec<AssetRow>,
    /// One per key (the last of duplicates in the report wins).
    pub findings: Vec<FindingRow>,
    /// The host assets that carry an inventory, for server-side matching.
    pub hosts: Vec<HostAsset>,
}

/// Rank used to sort by severity (higher is worse).
pub fn severity_rank(s: Severity) -> i64 {
    match s {
        Severity::Info => 0,
        Severity::Low => 1,
        Severity::Medium => 2,
        Severity::High => 3,
        Severity::Critical => 4,
    }
}

/// The collector a finding belongs to when it does not say.
pub fn default_collector(c: Category) -> &'static str {
    match c {
        Category::Tls => collector::TLS,
        Category::Patch => collector::HOST,
        Category::Legacy => collector::NETWORK,
        Category::Coverage => "",
    }
}

impl ReportRows {
    /// The rows of a report that passed [`Report::validate`]. Findings that
    /// name no asset of the report (impossible after validation) are skipped.
    pub fn from_report(r: &Report) -> Self {
        let assets = r
            .assets
            .iter()
            .map(|a| AssetRow {
                kind: a.kind.as_str(),
                id: a.id.clone(),
                details: serde_json::Value::Object(a.details.clone()).to_string(),
            })
            .collect();
        let mut findings: BTreeMap<FindingKey, FindingRow> = BTreeMap::new();
        for f in &r.findings {
            let Some(kind) = r.asset_kind_of(&f.asset) else {
                continue;
            };
            let key = FindingKey {
                asset_kind: kind.as_str().to_owned(),
                asset_id: f.asset.clone(),
                code: f.code.as_str().to_owned(),
                subject: f.subject.clone(),
            };
            // `match` and `server` are the server's own collectors: an agent
            // cannot claim them.
            let collector = if f.collector.is_empty()
                || f.collector == MATCH_COLLECTOR
                || f.collector == SERVER_COLLECTOR
            {
                default_collector(f.category).to_owned()
            } else {
                f.collector.clone()
            };
            findings.insert(
                key.clone(),
                FindingRow {
                    key,
                    severity: f.severity,
                    category: f.category,
                    title: f.title.clone(),
                    evidence: f.evidence.to_string(),
                    collector,
                },
            );
        }
        ReportRows {
            report_id: r.report_id.to_string(),
            collected_at: to_ms(r.collected_at),
            collectors: r
                .collectors
                .iter()
                .filter(|c| c.as_str() != MATCH_COLLECTOR && c.as_str() != SERVER_COLLECTOR)
                .cloned()
                .collect(),
            assets,
            findings: findings.into_values().collect(),
            hosts: r.assets.iter().filter_map(HostAsset::from_asset).collect(),
        }
    }
}

/// Where a report came from and what was received.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// From the client certificate.
    pub agent_id: Uuid,
    /// From the client certificate.
    pub org: &'a str,
    /// The clock at receipt.
    pub received_at: i64,
    /// Length of the decompressed JSON.
    pub size: i64,
    /// The report JSON, gzip-compressed.
    pub blob: &'a [u8],
}

/// What happened to a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    Stored,
    Duplicate,
}

impl IngestOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            IngestOutcome::Stored => "stored",
            IngestOutcome::Duplicate => "duplicate",
        }
    }
}

/// What server-side matching during ingest needs.
#[derive(Debug, Clone, Copy)]
pub struct MatchContext {
    /// The clock's now (end-of-life verdicts, feed ages).
    pub now: OffsetDateTime,
    pub policy: Policy,
}

impl Store {
    /// Stores a report unless its id is already stored; commits before
    /// returning [`IngestOutcome::Stored`]. No server-side matching.
    pub async fn ingest(
        &self,
        rows: &ReportRows,
        rec: Received<'_>,
    ) -> Result<IngestOutcome, StoreError> {
        self.ingest_matching(rows, rec, None).await
    }

    /// [`Store::ingest`], and with `matching`, the report's host inventories
    /// are matched against the feeds in the same transaction (findings of
    /// collector `match`; see [`super::matched`]). A host is matched only
    /// when this report is its newest.
    pub async fn ingest_matching(
        &self,
        rows: &ReportRows,
        rec: Received<'_>,
        matching: Option<&MatchContext>,
    ) -> Result<IngestOutcome, StoreError> {
        let agent_id = rec.agent_id.to_string();
        let t = rows.collected_at;
        let mut tx = self.pool.begin().await?;
        // The first statement writes, so SQLite takes the write lock at once
        // (waiting on the busy timeout) rather than failing on upgrade.
        let inserted = sqlx::query(
            "INSERT INTO reports (report_id, agent_id, org, received_at, collected_at, size, body) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (report_id) DO NOTHING",
        )
        .bind(&rows.report_id)
        .bind(&agent_id)
        .bind(rec.org)
        .bind(rec.received_at)
        .bind(t)
        .bind(rec.size)
        .bind(rec.blob)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(IngestOutcome::Duplicate);
        }

        for a in &rows.assets {
            sqlx::query(
                "INSERT INTO assets (org, kind, id, first_seen, last_seen, agent_id, details) \
                 VALUES ($1, $2, $3, $4, $4, $5, $6) \
                 ON CONFLICT (org, kind, id) DO UPDATE SET \
                   first_seen = CASE WHEN excluded.first_seen < assets.first_seen \
                                THEN excluded.first_seen ELSE assets.first_seen END, \
                   agent_id = CASE WHEN excluded.last_seen >= assets.last_seen \
                              THEN excluded.agent_id ELSE assets.agent_id END, \
                   details = CASE WHEN excluded.last_seen >= assets.last_seen \
                             THEN excluded.details ELSE assets.details END, \
                   last_seen = CASE WHEN excluded.last_seen > assets.last_seen \
                               THEN excluded.last_seen ELSE assets.last_seen END",
            )
            .bind(rec.org)
            .bind(a.kind)
            .bind(&a.id)
            .bind(t)
            .bind(&agent_id)
            .bind(&a.details)
            .execute(&mut *tx)
            .await?;
        }

        upsert_findings(&mut tx, rec.org, &rows.findings, t, &agent_id).await?;

        // Resolution: open findings of this agent, from a collector that ran,
        // absent from this report and not newer than it.
        let present: HashSet<&FindingKey> = rows.findings.iter().map(|f| &f.key).collect();
        let candidates = sqlx::query(
            "SELECT asset_kind, asset_id, code, subject, collector FROM findings \
             WHERE org = $1 AND agent_id = $2 AND status = 'open' AND last_seen <= $3",
        )
        .bind(rec.org)
        .bind(&agent_id)
        .bind(t)
        .fetch_all(&mut *tx)
        .await?;
        for c in &candidates {
            let collector: String = c.try_get("collector")?;
            if !rows.collectors.contains(&collector) {
                continue;
            }
            let key = FindingKey {
                asset_kind: c.try_get("asset_kind")?,
                asset_id: c.try_get("asset_id")?,
                code: c.try_get("code")?,
                subject: c.try_get("subject")?,
            };
            if present.contains(&key) {
                continue;
            }
            sqlx::query(
                "UPDATE findings SET status = 'resolved', resolved_at = $1 \
                 WHERE org = $2 AND asset_kind = $3 AND asset_id = $4 AND code = $5 \
                   AND subject = $6 AND status = 'open'",
            )
            .bind(t)
            .bind(rec.org)
            .bind(&key.asset_kind)
            .bind(&key.asset_id)
            .bind(&key.code)
            .bind(&key.subject)
            .execute(&mut *tx)
            .await?;
        }

        if let Some(ctx) = matching {
            for host in &rows.hosts {
                let last_seen: Option<i64> = sqlx::query_scalar(
                    "SELECT last_seen FROM assets WHERE org = $1 AND kind = 'host' AND id = $2",
                )
                .bind(rec.org)
                .bind(&host.id)
                .fetch_optional(&mut *tx)
                .await?;
                if last_seen.is_some_and(|s| s > t) {
                    continue;
                }
                super::matched::match_and_store(
                    &mut tx,
                    self.feed_cache(),
                    rec.org,
                    host,
                    &agent_id,
                    t,
                    ctx,
                )
                .await?;
            }
        }

        // The agent reported: it is no longer stale.
        sqlx::query(
            "UPDATE findings SET status = 'resolved', resolved_at = $1 \
             WHERE code = $2 AND status = 'open' AND org = $3 AND subject = $4",
        )
        .bind(rec.received_at)
        .bind(STALE_CODE)
        .bind(rec.org)
        .bind(&agent_id)
        .execute(&mut *tx)
        .await?;
        mark_dirty(&mut tx, rec.org).await?;

        sqlx::query(
            "UPDATE agents SET last_seen = CASE WHEN last_seen IS NULL OR last_seen < $1 \
             THEN $1 ELSE last_seen END WHERE id = $2",
        )
        .bind(rec.received_at)
        .bind(&agent_id)
        .execute(&mut *tx)
        .await?;

        tx.commit().await?;
        Ok(IngestOutcome::Stored)
    }
}

/// Rows per multi-row upsert: 13 parameters a row, far under SQLite's
/// limit; one statement instead of one per finding (a 3,000-package host
/// has hundreds of `match` findings).
const UPSERT_BATCH: usize = 64;

/// Inserts or updates one finding seen at `t` (the lifecycle rules above).
pub(crate) async fn upsert_finding(
    conn: &mut SqliteConnection,
    org: &str,
    f: &FindingRow,
    t: i64,
    agent_id: &str,
) -> Result<(), sqlx::Error> {
    upsert_findings(conn, org, std::slice::from_ref(f), t, agent_id).await
}

/// [`upsert_finding`] for each of `rows`, in order, in multi-row
/// statements. A statement never holds one key twice (PostgreSQL refuses
/// that, and SQLite would apply them in order anyway), so the outcome is
/// that of upserting the rows one by one.
pub(crate) async fn upsert_findings(
    conn: &mut SqliteConnection,
    org: &str,
    rows: &[FindingRow],
    t: i64,
    agent_id: &str,
) -> Result<(), sqlx::Error> {
    let mut start = 0;
    while start < rows.len() {
        let mut keys: HashSet<&FindingKey> = HashSet::new();
        let mut end = start;
        while end < rows.len() && end - start < UPSERT_BATCH && keys.insert(&rows[end].key) {
            end += 1;
        }
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO findings (org, asset_kind, asset_id, code, subject, severity, \
               severity_rank, category, title, evidence, status, first_seen, last_seen, \
               resolved_at, reopened, agent_id, collector) ",
        );
        q.push_values(&rows[start..end], |mut b, f| {
            b.push_bind(org)
                .push_bind(&f.key.asset_kind)
                .push_bind(&f.key.asset_id)
                .push_bind(&f.key.code)
                .push_bind(&f.key.subject)
                .push_bind(f.severity.as_str())
                .push_bind(severity_rank(f.severity))
                .push_bind(f.category.as_str())
                .push_bind(&f.title)
                .push_bind(&f.evidence)
                .push("'open'")
                .push_bind(t)
                .push_bind(t)
                .push("NULL")
                .push("0")
                .push_bind(agent_id)
                .push_bind(&f.collector);
        });
        q.push(
            " ON CONFLICT (org, asset_kind, asset_id, code, subject) DO UPDATE SET \
               first_seen = CASE WHEN excluded.first_seen < findings.first_seen \
                            THEN excluded.first_seen ELSE findings.first_seen END, \
               reopened = CASE WHEN findings.status = 'resolved' \
                            AND excluded.last_seen >= findings.resolved_at \
                          THEN findings.reopened + 1 ELSE findings.reopened END, \
               reopened_at = CASE WHEN findings.status = 'resolved' \
                            AND excluded.last_seen >= findings.resolved_at \
                          THEN excluded.last_seen ELSE findings.reopened_at END, \
               status = CASE WHEN findings.status = 'resolved' \
                          AND excluded.last_seen >= findings.resolved_at \
                        THEN 'open' ELSE findings.status END, \
               resolved_at = CASE WHEN findings.status = 'resolved' \
                               AND excluded.last_seen >= findings.resolved_at \
                             THEN NULL ELSE findings.resolved_at END, \
               severity = CASE WHEN excluded.last_seen >= findings.last_seen \
                          THEN excluded.severity ELSE findings.severity END, \
               severity_rank = CASE WHEN excluded.last_seen >= findings.last_seen \
                               THEN excluded.severity_rank ELSE findings.severity_rank END, \
               category = CASE WHEN excluded.last_seen >= findings.last_seen \
                          THEN excluded.category ELSE findings.category END, \
               title = CASE WHEN excluded.last_seen >= findings.last_seen \
                       THEN excluded.title ELSE findings.title END, \
               evidence = CASE WHEN excluded.last_seen >= findings.last_seen \
                          THEN excluded.evidence ELSE findings.evidence END, \
               agent_id = CASE WHEN excluded.last_seen >= findings.last_seen \
                          THEN excluded.agent_id ELSE findings.agent_id END, \
               collector = CASE WHEN excluded.last_seen >= findings.last_seen \
                           THEN excluded.collector ELSE findings.collector END, \
               last_seen = CASE WHEN excluded.last_seen > findings.last_seen \
                           THEN excluded.last_seen ELSE findings.last_seen END",
        );
        q.build().execute(&mut *conn).await?;
        start = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(subject: &str, title: &str, severity: Severity) -> FindingRow {
        FindingRow {
            key: FindingKey {
                asset_kind: "host".into(),
                asset_id: "h1".into(),
                code: "patch.package.vulnerable".into(),
                subject: subject.into(),
            },
            severity,
            category: Category::Patch,
            title: title.into(),
            evidence: format!(r#"{{"package":"{subject}"}}"#),
            collector: MATCH_COLLECTOR.into(),
        }
    }

    /// Every column but `org`, in key order.
    async fn table(conn: &mut SqliteConnection, org: &str) -> Vec<String> {
        sqlx::query(
            "SELECT asset_kind, asset_id, code, subject, severity, severity_rank, category, \
             title, evidence, status, first_seen, last_seen, resolved_at, reopened, \
             reopened_at, agent_id, collector FROM findings WHERE org = $1 \
             ORDER BY asset_kind, asset_id, code, subject",
        )
        .bind(org)
        .fetch_all(conn)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let text = |i: usize| r.try_get::<Option<String>, _>(i).unwrap();
            let num = |i: usize| r.try_get::<Option<i64>, _>(i).unwrap();
            format!(
                "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
                text(0), text(1), text(2), text(3), text(4), num(5), text(6), text(7),
                text(8), text(9), num(10), num(11), num(12), num(13), num(14), text(15),
                text(16)
            )
        })
        .collect()
    }

    #[tokio::test]
    async fn batched_upserts_store_exactly_what_one_by_one_upserts_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let mut conn = store.pool().acquire().await.unwrap();
        for org in ["ONE", "MANY"] {
            sqlx::query("INSERT INTO orgs (code, name, created_at) VALUES ($1, $1, 0)")
                .bind(org)
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        // More rows than one statement holds, with a key repeated inside
        // what would be one batch (the later row wins, as one by one), over
        // three rounds: insert, update at a later instant, and an older
        // report that must not overwrite newer evidence.
        let rounds: Vec<(i64, Vec<FindingRow>)> = vec![
            (
                1_000,
                (0..UPSERT_BATCH * 2 + 5)
                    .map(|i| row(&format!("p{i:03}"), "first", Severity::Low))
                    .chain([row("p003", "repeated", Severity::High)])
                    .collect(),
            ),
            (
                2_000,
                (0..UPSERT_BATCH + 1)
                    .map(|i| row(&format!("p{i:03}"), "second", Severity::Critical))
                    .collect(),
            ),
            (
                1_500,
                vec![
                    row("p000", "stale", Severity::Info),
                    row("q", "new", Severity::Low),
                ],
            ),
        ];
        for (t, rows) in &rounds {
            for r in rows {
                upsert_finding(&mut conn, "ONE", r, *t, "a1").await.unwrap();
            }
            upsert_findings(&mut conn, "MANY", rows, *t, "a1")
                .await
                .unwrap();
        }
        let one = table(&mut conn, "ONE").await;
        let many = table(&mut conn, "MANY").await;
        assert_eq!(one.len(), UPSERT_BATCH * 2 + 6);
        assert_eq!(one, many);
        assert!(one[0].contains("\"second\""), "{}", one[0]);
        assert!(one[3].contains("\"second\""), "{}", one[3]);
        assert!(
            one[UPSERT_BATCH + 2].contains("\"first\""),
            "{}",
            one[UPSERT_BATCH + 2]
        );
    }
}
