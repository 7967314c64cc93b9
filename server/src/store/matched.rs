//! Server-side findings (collector `match`): matching a stored host
//! inventory against the feeds and keeping its findings current.
//!
//! Rules, with `t` the `collected_at` of the inventory matched (the
//! report's, or the asset's `last_seen` when `feed import` re-matches):
//! * every finding the matcher raises is upserted at `t` with the lifecycle
//!   rules of [`super::ingest`] (so a resolved one reopens);
//! * every `open` finding of collector `match` on that asset that the
//!   matcher no longer raises, and whose `last_seen <= t`, is resolved at `t`.
//!
//! Re-matching uses the inventory's own instant rather than the import's,
//! so that a report collected before an import but received after it still
//! orders correctly against the findings the import raised.

use std::collections::HashSet;

use sqlx::{Row, SqliteConnection};
use trustwatch_common::host::HostAsset;
use trustwatch_common::report::Asset;
use trustwatch_common::AssetKind;

use super::feedcache::FeedCache;
use super::feeds::load_feed_data_cached;
use super::ingest::{upsert_findings, FindingKey, FindingRow, MatchContext};
use super::{Store, StoreError};
use crate::vuln::matcher::{match_host, MatchedFinding};
use crate::vuln::MATCH_COLLECTOR;

fn row_of(f: MatchedFinding) -> FindingRow {
    FindingRow {
        key: FindingKey {
            asset_kind: AssetKind::Host.as_str().to_owned(),
            asset_id: f.asset,
            code: f.code.as_str().to_owned(),
            subject: f.subject,
        },
        severity: f.severity,
        category: f.category,
        title: f.title,
        evidence: f.evidence,
        collector: MATCH_COLLECTOR.to_owned(),
    }
}

/// Matches one host and writes its findings (in the caller's transaction).
/// Returns how many findings are open for it after.
pub async fn match_and_store(
    conn: &mut SqliteConnection,
    cache: &FeedCache,
    org: &str,
    host: &HostAsset,
    agent_id: &str,
    t: i64,
    ctx: &MatchContext,
) -> Result<usize, StoreError> {
    let data = load_feed_data_cached(conn, &[host], &ctx.policy, cache).await?;
    let outcome = match_host(host, &data, ctx.now, &ctx.policy);
    let rows: Vec<FindingRow> = outcome.findings.into_iter().map(row_of).collect();
    upsert_findings(conn, org, &rows, t, agent_id).await?;
    let present: HashSet<(&str, &str)> = rows
        .iter()
        .map(|r| (r.key.code.as_str(), r.key.subject.as_str()))
        .collect();
    let open = sqlx::query(
        "SELECT code, subject FROM findings WHERE org = $1 AND asset_kind = 'host' \
         AND asset_id = $2 AND collector = $3 AND status = 'open' AND last_seen <= $4",
    )
    .bind(org)
    .bind(&host.id)
    .bind(MATCH_COLLECTOR)
    .bind(t)
    .fetch_all(&mut *conn)
    .await?;
    for o in &open {
        let code: String = o.try_get("code")?;
        let subject: String = o.try_get("subject")?;
        if present.contains(&(code.as_str(), subject.as_str())) {
            continue;
        }
        sqlx::query(
            "UPDATE findings SET status = 'resolved', resolved_at = $1 WHERE org = $2 \
             AND asset_kind = 'host' AND asset_id = $3 AND code = $4 AND subject = $5 \
             AND status = 'open'",
        )
        .bind(t)
        .bind(org)
        .bind(&host.id)
        .bind(&code)
        .bind(&subject)
        .execute(&mut *conn)
        .await?;
    }
    Ok(rows.len())
}

/// Host keys per page when re-matching every host.
const REMATCH_PAGE: i64 = 256;

/// What re-matching every stored host did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RematchSummary {
    /// Host assets with an inventory, matched.
    pub hosts: usize,
    /// Open `match` findings on them after.
    pub findings: usize,
}

impl Store {
    /// Re-matches the latest inventory of every stored host (one
    /// transaction per host, so `serve` keeps ingesting meanwhile).
    ///
    /// Hosts are listed a page of keys at a time, and each inventory is read
    /// inside its host's transaction, after the write lock is taken: memory
    /// stays at one inventory whatever the number of hosts, and a report
    /// stored meanwhile is never re-matched with the inventory it replaced.
    pub async fn rematch_all(&self, ctx: &MatchContext) -> Result<RematchSummary, StoreError> {
        let mut summary = RematchSummary::default();
        let mut after = (String::new(), String::new());
        loop {
            let page = sqlx::query(
                "SELECT org, id FROM assets WHERE kind = 'host' \
                 AND (org > $1 OR (org = $1 AND id > $2)) ORDER BY org, id LIMIT $3",
            )
            .bind(&after.0)
            .bind(&after.1)
            .bind(REMATCH_PAGE)
            .fetch_all(self.pool())
            .await?;
            let Some(last) = page.last() else {
                break;
            };
            after = (last.try_get("org")?, last.try_get("id")?);
            for key in &page {
                let org: String = key.try_get("org")?;
                let id: String = key.try_get("id")?;
                if let Some(n) = self.rematch_one(&org, &id, ctx).await? {
                    summary.hosts += 1;
                    summary.findings += n;
                }
            }
        }
        Ok(summary)
    }

    /// Re-matches one host in its own transaction; `None` when it is gone
    /// or its inventory is unreadable.
    async fn rematch_one(
        &self,
        org: &str,
        id: &str,
        ctx: &MatchContext,
    ) -> Result<Option<usize>, StoreError> {
        let mut tx = self.pool().begin().await?;
        // Write first, so SQLite takes the write lock at once.
        sqlx::query(
            "UPDATE assets SET last_seen = last_seen WHERE org = $1 AND kind = 'host' AND id = $2",
        )
        .bind(org)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let Some(row) = sqlx::query(
            "SELECT details, last_seen, agent_id FROM assets \
             WHERE org = $1 AND kind = 'host' AND id = $2",
        )
        .bind(org)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let details: String = row.try_get("details")?;
        let last_seen: i64 = row.try_get("last_seen")?;
        let agent_id: String = row.try_get("agent_id")?;
        let Ok(serde_json::Value::Object(details)) = serde_json::from_str(&details) else {
            return Ok(None);
        };
        let asset = Asset {
            kind: AssetKind::Host,
            id: id.to_owned(),
            details,
        };
        let Some(host) = HostAsset::from_asset(&asset) else {
            return Ok(None);
        };
        let open = match_and_store(
            &mut tx,
            self.feed_cache(),
            org,
            &host,
            &agent_id,
            last_seen,
            ctx,
        )
        .await?;
        super::scores::mark_dirty(&mut tx, org).await?;
        tx.commit().await?;
        Ok(Some(open))
    }
}
