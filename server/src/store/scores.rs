//! Scores in the store: the facts the model reads (aggregated in SQL, never
//! row by row), stale-agent findings, recomputation, history and the
//! change summaries reports need. The model itself is [`crate::score`].
//!
//! Tables (migration `0003_scores.sql`) and their invariants:
//! * `org_scores`: one row per organisation once computed; scores are
//!   integer tenths 0..=1000, confidence a percentage; `scored = 0` means
//!   no data (then the score columns are 0 and `grade` is NULL). `own` is
//!   the JSON [`Score`] of the organisation's own findings, `detail` the
//!   JSON [`Detail`] the API shows. A row is only ever written by
//!   [`Store::refresh_scores`], for every organisation at once, in one
//!   transaction, so roll-ups and ranks are always consistent.
//! * `score_history`: per (org, model_version, day) the last score computed
//!   that UTC day. Refreshes write today's row; [`Store::rescore_history`]
//!   recomputes past days from the findings' lifecycle columns (a finding
//!   counts on day D when `first_seen` ≤ the end of D and it was open then:
//!   `status = 'open'` or `resolved_at` after it). That reconstruction
//!   does not know about resolutions undone by a later reopening, nor
//!   severity changes: history recomputed after a model change is close to
//!   what would have been computed on the day, not identical.
//! * `score_dirty`: organisations whose findings changed since their score
//!   (ingest, re-matching and the stale-agent check mark them in the same
//!   transaction as the change); `gen` grows with each mark so that a
//!   refresh clears only what it saw.
//!
//! When scores are recomputed (documented in `docs/SCORING.md`): ingest
//! only marks an organisation dirty (one upsert); `serve` refreshes every
//! `[score] refresh` (default 60 s): the stale-agent check, then every
//! dirty organisation, or every organisation when the day (UTC) or the
//! model version changed; `trustwatch-server score` refreshes all at once.
//!
//! Stale agents: an agent that is not revoked and has not reported for more
//! than twice its interval gets an open `coverage.agent.stale` finding
//! (collector `server`, on its host asset, subject = the agent id). Its
//! interval is the median gap between its last 11 reports' `collected_at`
//! (at least [`MIN_OBSERVED_INTERVAL`]) once it has 4 reports, else the
//! configured default. The finding is resolved when the agent reports
//! again (by ingest, at the receipt time) or is revoked.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use time::{Date, OffsetDateTime};
use trustwatch_common::{Category, Severity};

use super::ingest::{upsert_finding, FindingKey, FindingRow};
use super::query::{Page, PageReq};
use super::{Store, StoreError};
use crate::clock::{fmt_ms, from_ms, to_ms};
use crate::score::model::{
    self, severity_of_rank, tenths, CodeCell, CodeSummary, Facts, Group, Kind, KEV_CODE,
};
use crate::score::{
    roll_up, CapApplied, CategoryScore, Counts, FixItem, Grade, Member, OrgNode, Rolled, Score,
    MODEL_VERSION,
};

/// The code of the server's stale-agent finding.
pub const STALE_CODE: &str = "coverage.agent.stale";
/// The collector of findings the server raises itself (not `match`).
pub const SERVER_COLLECTOR: &str = "server";
/// The shortest interval an agent's observed cadence can set.
pub const MIN_OBSERVED_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// The longest interval an agent's observed cadence can set.
pub const MAX_OBSERVED_INTERVAL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default interval of an agent whose cadence is not known yet.
pub const DEFAULT_AGENT_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Marks an organisation's score out of date (in the caller's transaction).
pub(crate) async fn mark_dirty(conn: &mut SqliteConnection, org: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO score_dirty (org, gen) VALUES ($1, 1) \
         ON CONFLICT (org) DO UPDATE SET gen = score_dirty.gen + 1",
    )
    .bind(org)
    .execute(conn)
    .await?;
    Ok(())
}

/// Which findings the facts are computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The open findings and the assets now.
    Current,
    /// The findings open, and assets known, at this instant (unix ms).
    AsOf(i64),
}

impl Scope {
    fn findings(self) -> &'static str {
        match self {
            Scope::Current => "org = $1 AND status = 'open'",
            Scope::AsOf(_) => {
                "org = $1 AND first_seen <= $2 AND (status = 'open' OR resolved_at > $2)"
            }
        }
    }

    fn assets(self) -> &'static str {
        match self {
            Scope::Current => "org = $1",
            Scope::AsOf(_) => "org = $1 AND first_seen <= $2",
        }
    }

    fn agents(self) -> &'static str {
        match self {
            Scope::Current => "org = $1 AND revoked_at IS NULL",
            Scope::AsOf(_) => {
                "org = $1 AND enrolled_at <= $2 AND (revoked_at IS NULL OR revoked_at > $2)"
            }
        }
    }
}

/// Options of [`Store::refresh_scores`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshOptions {
    /// Recompute every organisation, not only the dirty ones.
    pub all: bool,
    /// Interval of agents whose cadence is not known yet.
    pub agent_interval: Duration,
}

impl Default for RefreshOptions {
    fn default() -> Self {
        RefreshOptions {
            all: false,
            agent_interval: DEFAULT_AGENT_INTERVAL,
        }
    }
}

/// What a refresh did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshSummary {
    /// Organisations whose own score was recomputed from findings.
    pub computed: usize,
    /// Organisations whose rows were written (all, when anything changed).
    pub written: usize,
    pub stale_raised: usize,
    pub stale_resolved: usize,
}

/// What the stale-agent check did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StaleSummary {
    pub raised: usize,
    pub resolved: usize,
}

/// The breakdown stored with a score and shown by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    /// Category scores (rolled up for parents) with the organisation's own
    /// deductions and caps.
    pub categories: Vec<CategoryScore>,
    /// Caps of the organisation's own findings.
    pub caps: Vec<CapApplied>,
    /// Counts (summed over children for parents).
    pub counts: Counts,
    /// Members of a roll-up (empty for an organisation without children).
    pub members: Vec<Member>,
}

/// The `detail` column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detail {
    pub breakdown: Breakdown,
    pub top_to_fix: Vec<FixItem>,
}

/// A stored current score.
#[derive(Debug, Clone, PartialEq)]
pub struct OrgScoreRow {
    pub org: String,
    pub model_version: String,
    pub computed_at: i64,
    pub scored: bool,
    pub score: f64,
    pub grade: Option<String>,
    pub confidence: i64,
    pub detail: Detail,
}

/// One day of an organisation's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryItem {
    pub day: String,
    pub model_version: String,
    pub score: f64,
    pub grade: String,
    pub tls_score: f64,
    pub patch_score: f64,
    pub legacy_score: f64,
    pub coverage_score: f64,
    pub confidence: i64,
    pub rollup: bool,
    pub assets: i64,
    pub open_findings: i64,
    pub critical: i64,
    pub high: i64,
    pub medium: i64,
    pub low: i64,
    pub info: i64,
    pub agents: i64,
    pub stale_agents: i64,
    /// Change of the score since the previous day with a point.
    pub delta: Option<f64>,
    pub computed_at: String,
}

/// Which history points to list.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    /// Days `YYYY-MM-DD`, inclusive.
    pub from: Option<String>,
    pub to: Option<String>,
    /// Default: the current model.
    pub model_version: Option<String>,
}

/// Finding changes of one code over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodeChanges {
    pub code: String,
    pub new: i64,
    pub fixed: i64,
    pub reopened: i64,
}

/// What changed for an organisation between two instants.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Changes {
    pub org: String,
    pub from: String,
    pub to: String,
    pub model_version: String,
    /// The score as `from`'s day began (the last daily point before it).
    pub score_from: Option<f64>,
    /// The score at `to`: the current score when `to` is now or later,
    /// else the daily point of the day of `to`'s last instant.
    pub score_to: Option<f64>,
    pub delta: Option<f64>,
    pub grade_from: Option<String>,
    pub grade_to: Option<String>,
    /// Findings first seen in the period.
    pub new: i64,
    /// Findings resolved in the period (and still resolved).
    pub fixed: i64,
    /// Findings reopened in the period.
    pub reopened: i64,
    pub by_code: Vec<CodeChanges>,
}

/// The UTC day of unix milliseconds, `YYYY-MM-DD`.
pub fn day_of(ms: i64) -> String {
    fmt_day(from_ms(ms).date())
}

pub fn fmt_day(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Parses `YYYY-MM-DD`.
pub fn parse_day(s: &str) -> Option<Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &fmt).ok()
}

/// The last millisecond of a UTC day.
pub fn end_of_day(d: Date) -> i64 {
    to_ms(d.midnight().assume_utc()) + 86_400_000 - 1
}

fn category_of(r: &SqliteRow) -> Result<Option<Category>, StoreError> {
    let c: String = r.try_get("category")?;
    Ok(c.parse().ok())
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn bind_scope<'q>(
    q: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    org: &'q str,
    scope: Scope,
) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    let q = q.bind(org);
    match scope {
        Scope::Current => q,
        Scope::AsOf(t) => q.bind(t),
    }
}

impl Store {
    /// The facts the model reads about one organisation's own assets and
    /// findings: a few aggregate queries over its open findings (an
    /// index-only scan of `findings_score` for [`Scope::Current`]).
    pub async fn load_facts(&self, org: &str, scope: Scope) -> Result<Facts, StoreError> {
        let pred = scope.findings();
        let mut facts = Facts::default();

        let sql = format!(
            "SELECT kind, COUNT(*) AS n FROM assets WHERE {} GROUP BY kind",
            scope.assets()
        );
        for r in bind_scope(sqlx::query(&sql), org, scope)
            .fetch_all(&self.pool)
            .await?
        {
            let kind: String = r.try_get("kind")?;
            *facts.assets.entry(Kind::parse(&kind)).or_default() += count(r.try_get("n")?);
        }

        let sql = format!(
            "SELECT category, severity_rank, asset_kind, solo, COUNT(*) AS assets, \
             SUM(n) AS findings FROM (SELECT category, severity_rank, asset_kind, asset_id, \
             COUNT(*) AS n, CASE WHEN MIN(code) = MAX(code) THEN MIN(code) END AS solo \
             FROM findings WHERE {pred} GROUP BY category, severity_rank, asset_kind, asset_id) \
             AS g GROUP BY category, severity_rank, asset_kind, solo"
        );
        for r in bind_scope(sqlx::query(&sql), org, scope)
            .fetch_all(&self.pool)
            .await?
        {
            let (Some(category), Some(severity)) = (
                category_of(&r)?,
                severity_of_rank(r.try_get("severity_rank")?),
            ) else {
                continue;
            };
            let kind: String = r.try_get("asset_kind")?;
            facts.groups.push(Group {
                category,
                severity,
                kind: Kind::parse(&kind),
                solo: r.try_get("solo")?,
                assets: count(r.try_get("assets")?),
                findings: count(r.try_get("findings")?),
            });
        }

        let sql = format!(
            "SELECT code, category, severity_rank, asset_kind, COUNT(*) AS findings \
             FROM findings WHERE {pred} GROUP BY code, category, severity_rank, asset_kind"
        );
        for r in bind_scope(sqlx::query(&sql), org, scope)
            .fetch_all(&self.pool)
            .await?
        {
            let (Some(category), Some(severity)) = (
                category_of(&r)?,
                severity_of_rank(r.try_get("severity_rank")?),
            ) else {
                continue;
            };
            let kind: String = r.try_get("asset_kind")?;
            facts.code_cells.push(CodeCell {
                code: r.try_get("code")?,
                category,
                severity,
                kind: Kind::parse(&kind),
                findings: count(r.try_get("findings")?),
            });
        }

        let sql = format!(
            "SELECT code, MIN(category) AS category, MAX(sev) AS severity_rank, \
             COUNT(*) AS assets, SUM(n) AS findings FROM (SELECT code, category, asset_kind, \
             asset_id, MAX(severity_rank) AS sev, COUNT(*) AS n FROM findings WHERE {pred} \
             GROUP BY code, category, asset_kind, asset_id) AS c GROUP BY code"
        );
        for r in bind_scope(sqlx::query(&sql), org, scope)
            .fetch_all(&self.pool)
            .await?
        {
            let (Some(category), Some(severity)) = (
                category_of(&r)?,
                severity_of_rank(r.try_get("severity_rank")?),
            ) else {
                continue;
            };
            facts.codes.push(CodeSummary {
                code: r.try_get("code")?,
                category,
                severity,
                findings: count(r.try_get("findings")?),
                assets: count(r.try_get("assets")?),
            });
        }

        let sql = format!(
            "SELECT COUNT(*) FROM findings WHERE {pred} AND code = '{KEV_CODE}' AND \
             (CASE WHEN json_valid(evidence) THEN json_extract(evidence, '$.kev.listed') END) = 1"
        );
        let kev: i64 = bind_scope(sqlx::query(&sql), org, scope)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        facts.kev_findings = count(kev);

        let sql = format!("SELECT COUNT(*) FROM agents WHERE {}", scope.agents());
        let agents: i64 = bind_scope(sqlx::query(&sql), org, scope)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        facts.agents = count(agents);
        let sql = format!(
            "SELECT COUNT(DISTINCT subject) FROM findings WHERE {pred} AND code = '{STALE_CODE}' \
             AND subject IN (SELECT id FROM agents WHERE {})",
            scope.agents()
        );
        let stale: i64 = bind_scope(sqlx::query(&sql), org, scope)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        facts.stale_agents = count(stale).min(facts.agents);
        Ok(facts)
    }

    /// The interval an agent reports at: the median gap of its last 11
    /// reports once it has 4, else `default`.
    async fn agent_interval(&self, agent: &str, default: Duration) -> Result<i64, StoreError> {
        let times: Vec<i64> = sqlx::query_scalar(
            "SELECT collected_at FROM reports WHERE agent_id = $1 \
             ORDER BY collected_at DESC LIMIT 11",
        )
        .bind(agent)
        .fetch_all(&self.pool)
        .await?;
        let default_ms = i64::try_from(default.as_millis()).unwrap_or(i64::MAX);
        if times.len() < 4 {
            return Ok(default_ms);
        }
        let mut gaps: Vec<i64> = times.windows(2).map(|w| w[0] - w[1]).collect();
        gaps.sort_unstable();
        let Some(&median) = gaps.get(gaps.len() / 2) else {
            return Ok(default_ms);
        };
        let lo = i64::try_from(MIN_OBSERVED_INTERVAL.as_millis()).unwrap_or(0);
        let hi = i64::try_from(MAX_OBSERVED_INTERVAL.as_millis()).unwrap_or(i64::MAX);
        Ok(median.clamp(lo, hi))
    }

    /// Raises `coverage.agent.stale` for agents silent for more than twice
    /// their interval, and resolves it for agents that are not (any more)
    /// or were revoked. Marks the organisations concerned dirty.
    pub async fn check_stale_agents(
        &self,
        now: i64,
        default_interval: Duration,
    ) -> Result<StaleSummary, StoreError> {
        let agents = sqlx::query(
            "SELECT id, org, hostname, enrolled_at, last_seen, revoked_at FROM agents ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let open: HashMap<String, (String, String, String)> = sqlx::query(
            "SELECT org, asset_kind, asset_id, subject FROM findings \
             WHERE code = $1 AND status = 'open'",
        )
        .bind(STALE_CODE)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get("subject")?,
                (
                    r.try_get("org")?,
                    r.try_get("asset_kind")?,
                    r.try_get("asset_id")?,
                ),
            ))
        })
        .collect::<Result<_, sqlx::Error>>()?;
        let mut summary = StaleSummary::default();
        for a in &agents {
            let id: String = a.try_get("id")?;
            let org: String = a.try_get("org")?;
            let revoked: Option<i64> = a.try_get("revoked_at")?;
            let last_seen: Option<i64> = a.try_get("last_seen")?;
            let enrolled: i64 = a.try_get("enrolled_at")?;
            let existing = open.get(&id);
            let interval = if revoked.is_some() {
                None
            } else {
                Some(self.agent_interval(&id, default_interval).await?)
            };
            let stale =
                interval.is_some_and(|i| now - last_seen.unwrap_or(enrolled) > i.saturating_mul(2));
            match (stale, existing) {
                (true, None) => {
                    let interval = interval.unwrap_or_default();
                    let hostname: Option<String> = a.try_get("hostname")?;
                    let host: Option<String> = sqlx::query_scalar(
                        "SELECT id FROM assets WHERE org = $1 AND kind = 'host' AND agent_id = $2 \
                         ORDER BY last_seen DESC LIMIT 1",
                    )
                    .bind(&org)
                    .bind(&id)
                    .fetch_optional(&self.pool)
                    .await?;
                    let asset = host
                        .or(hostname.clone().filter(|h| !h.is_empty()))
                        .unwrap_or_else(|| id.clone());
                    let row = FindingRow {
                        key: FindingKey {
                            asset_kind: "host".into(),
                            asset_id: asset,
                            code: STALE_CODE.into(),
                            subject: id.clone(),
                        },
                        severity: Severity::Medium,
                        category: Category::Coverage,
                        title: "Agent has not reported recently".into(),
                        evidence: json!({
                            "agent_id": id,
                            "hostname": hostname,
                            "last_report_at": last_seen.map(fmt_ms),
                            "enrolled_at": fmt_ms(enrolled),
                            "expected_interval_seconds": interval / 1000,
                            "stale_after_seconds": interval.saturating_mul(2) / 1000,
                            "checked_at": fmt_ms(now),
                        })
                        .to_string(),
                        collector: SERVER_COLLECTOR.into(),
                    };
                    let mut tx = self.pool.begin().await?;
                    mark_dirty(&mut tx, &org).await?;
                    upsert_finding(&mut tx, &org, &row, now, &id).await?;
                    tx.commit().await?;
                    summary.raised += 1;
                }
                (false, Some((forg, kind, asset))) => {
                    let mut tx = self.pool.begin().await?;
                    mark_dirty(&mut tx, forg).await?;
                    sqlx::query(
                        "UPDATE findings SET status = 'resolved', resolved_at = $1 \
                         WHERE org = $2 AND asset_kind = $3 AND asset_id = $4 AND code = $5 \
                         AND subject = $6 AND status = 'open'",
                    )
                    .bind(now)
                    .bind(forg)
                    .bind(kind)
                    .bind(asset)
                    .bind(STALE_CODE)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    summary.resolved += 1;
                }
                _ => {}
            }
        }
        Ok(summary)
    }

    /// Recomputes scores: the stale-agent check, then the own score of every
    /// dirty organisation (every one with `opts.all`, on a new day, or
    /// after a model change), then roll-ups and ranks, written with today's
    /// history point in one transaction.
    pub async fn refresh_scores(
        &self,
        now: OffsetDateTime,
        opts: &RefreshOptions,
    ) -> Result<RefreshSummary, StoreError> {
        let now_ms = to_ms(now);
        let today = day_of(now_ms);
        let stale = self.check_stale_agents(now_ms, opts.agent_interval).await?;
        let orgs: Vec<(String, Option<String>)> =
            sqlx::query("SELECT code, parent FROM orgs ORDER BY code")
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("code")?, r.try_get("parent")?)))
                .collect::<Result<_, sqlx::Error>>()?;
        let mut stored: HashMap<String, (String, i64, String)> = HashMap::new();
        for r in sqlx::query("SELECT org, model_version, computed_at, own FROM org_scores")
            .fetch_all(&self.pool)
            .await?
        {
            stored.insert(
                r.try_get("org")?,
                (
                    r.try_get("model_version")?,
                    r.try_get("computed_at")?,
                    r.try_get("own")?,
                ),
            );
        }
        let dirty: Vec<(String, i64)> = sqlx::query("SELECT org, gen FROM score_dirty")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("org")?, r.try_get("gen")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let dirty_set: HashSet<&str> = dirty.iter().map(|(o, _)| o.as_str()).collect();
        let mut summary = RefreshSummary {
            stale_raised: stale.raised,
            stale_resolved: stale.resolved,
            ..RefreshSummary::default()
        };
        let mut owns: Vec<Score> = Vec::with_capacity(orgs.len());
        for (code, _) in &orgs {
            let kept = match stored.get(code) {
                Some((version, at, own))
                    if !opts.all
                        && version == MODEL_VERSION
                        && day_of(*at) == today
                        && !dirty_set.contains(code.as_str()) =>
                {
                    serde_json::from_str::<Score>(own).ok()
                }
                _ => None,
            };
            let own = match kept {
                Some(s) => s,
                None => {
                    summary.computed += 1;
                    model::score(&self.load_facts(code, Scope::Current).await?)
                }
            };
            owns.push(own);
        }
        if summary.computed == 0 && dirty.is_empty() {
            return Ok(summary);
        }
        let nodes: Vec<OrgNode> = orgs
            .iter()
            .zip(&owns)
            .map(|((code, parent), own)| OrgNode {
                code,
                parent: parent.as_deref(),
                own,
            })
            .collect();
        let rolled = roll_up(&nodes);
        let mut tx = self.pool.begin().await?;
        for (r, own) in rolled.iter().zip(&owns) {
            write_score(&mut tx, r, own, now_ms).await?;
            if r.scored {
                write_history(&mut tx, r, &today, now_ms).await?;
            }
            summary.written += 1;
        }
        for (org, gen) in &dirty {
            sqlx::query("DELETE FROM score_dirty WHERE org = $1 AND gen = $2")
                .bind(org)
                .bind(gen)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(summary)
    }

    /// Recomputes the history of the current model for the UTC days
    /// `from..=to` (days from today on are left to refreshes) from the
    /// findings' lifecycle columns. Returns the number of points written.
    pub async fn rescore_history(
        &self,
        from: Date,
        to: Date,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let now_ms = to_ms(now);
        let today = now.date();
        let orgs: Vec<(String, Option<String>)> =
            sqlx::query("SELECT code, parent FROM orgs ORDER BY code")
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("code")?, r.try_get("parent")?)))
                .collect::<Result<_, sqlx::Error>>()?;
        let mut written = 0;
        let mut day = from;
        while day <= to && day < today {
            let t = end_of_day(day);
            let mut owns = Vec::with_capacity(orgs.len());
            for (code, _) in &orgs {
                owns.push(model::score(&self.load_facts(code, Scope::AsOf(t)).await?));
            }
            let nodes: Vec<OrgNode> = orgs
                .iter()
                .zip(&owns)
                .map(|((code, parent), own)| OrgNode {
                    code,
                    parent: parent.as_deref(),
                    own,
                })
                .collect();
            let rolled = roll_up(&nodes);
            let mut tx = self.pool.begin().await?;
            for r in &rolled {
                if r.scored {
                    write_history(&mut tx, r, &fmt_day(day), now_ms).await?;
                    written += 1;
                }
            }
            tx.commit().await?;
            let Some(next) = day.next_day() else {
                break;
            };
            day = next;
        }
        Ok(written)
    }

    /// Days that have history under another model version but not under
    /// the current one (what a model change leaves to re-score).
    pub async fn history_days_to_rescore(&self) -> Result<Vec<Date>, StoreError> {
        let days: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT day FROM score_history WHERE model_version <> $1 \
             AND day NOT IN (SELECT day FROM score_history WHERE model_version = $1) ORDER BY day",
        )
        .bind(MODEL_VERSION)
        .fetch_all(&self.pool)
        .await?;
        Ok(days.iter().filter_map(|d| parse_day(d)).collect())
    }

    /// The stored current score of an organisation, if computed.
    pub async fn org_score(&self, org: &str) -> Result<Option<OrgScoreRow>, StoreError> {
        let Some(r) = sqlx::query(
            "SELECT org, model_version, computed_at, scored, score, grade, confidence, detail \
             FROM org_scores WHERE org = $1",
        )
        .bind(org)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let detail: String = r.try_get("detail")?;
        let detail: Detail = serde_json::from_str(&detail)
            .map_err(|e| StoreError::Corrupt(format!("org_scores.detail: {e}")))?;
        let scored: i64 = r.try_get("scored")?;
        let score: i64 = r.try_get("score")?;
        Ok(Some(OrgScoreRow {
            org: r.try_get("org")?,
            model_version: r.try_get("model_version")?,
            computed_at: r.try_get("computed_at")?,
            scored: scored == 1,
            score: score as f64 / 10.0,
            grade: r.try_get("grade")?,
            confidence: r.try_get("confidence")?,
            detail,
        }))
    }

    /// The last history point of the current model before `day`.
    pub async fn previous_point(
        &self,
        org: &str,
        day: &str,
    ) -> Result<Option<(String, f64, String)>, StoreError> {
        let r = sqlx::query(
            "SELECT day, score, grade FROM score_history WHERE org = $1 AND model_version = $2 \
             AND day < $3 ORDER BY day DESC LIMIT 1",
        )
        .bind(org)
        .bind(MODEL_VERSION)
        .bind(day)
        .fetch_optional(&self.pool)
        .await?;
        r.map(|r| {
            let score: i64 = r.try_get("score")?;
            Ok((r.try_get("day")?, score as f64 / 10.0, r.try_get("grade")?))
        })
        .transpose()
    }

    /// An organisation's daily scores.
    pub async fn history_page(
        &self,
        org: &str,
        filter: &HistoryFilter,
        page: &PageReq,
    ) -> Result<Page<HistoryItem>, StoreError> {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT * FROM (SELECT * FROM (SELECT day, model_version, computed_at, score, grade, \
             tls_score, patch_score, legacy_score, coverage_score, confidence, rollup, assets, \
             open_findings, critical, high, medium, low, info, agents, stale_agents, \
             score - LAG(score) OVER (ORDER BY day) AS delta FROM score_history WHERE org = ",
        );
        qb.push_bind(org.to_owned());
        qb.push(" AND model_version = ").push_bind(
            filter
                .model_version
                .clone()
                .unwrap_or_else(|| MODEL_VERSION.to_owned()),
        );
        qb.push(") AS h WHERE 1 = 1");
        if let Some(f) = &filter.from {
            qb.push(" AND day >= ").push_bind(f.clone());
        }
        if let Some(t) = &filter.to {
            qb.push(" AND day <= ").push_bind(t.clone());
        }
        self.page(qb, page, history_item).await
    }

    /// The score change and the new, fixed and reopened findings of an
    /// organisation in `[from, to)` (unix ms).
    pub async fn changes(
        &self,
        org: &str,
        from: i64,
        to: i64,
        now: i64,
    ) -> Result<Changes, StoreError> {
        // The last daily point of a day before `before`.
        let at_day = |before: String| async move {
            let r = sqlx::query(
                "SELECT score, grade FROM score_history WHERE org = $1 AND model_version = $2 \
                 AND day < $3 ORDER BY day DESC LIMIT 1",
            )
            .bind(org)
            .bind(MODEL_VERSION)
            .bind(before)
            .fetch_optional(&self.pool)
            .await?;
            r.map(|r| {
                let s: i64 = r.try_get("score")?;
                Ok::<_, StoreError>((s as f64 / 10.0, r.try_get::<String, _>("grade")?))
            })
            .transpose()
        };
        let start = at_day(day_of(from)).await?;
        let end = if to >= now {
            self.org_score(org)
                .await?
                .filter(|s| s.scored)
                .and_then(|s| s.grade.map(|g| (s.score, g)))
        } else {
            // `to` is exclusive: the end of the day holding its last instant.
            let last = from_ms(to.saturating_sub(1)).date();
            match last.next_day() {
                Some(d) => at_day(fmt_day(d)).await?,
                None => None,
            }
        };
        let rows = sqlx::query(
            "SELECT code, \
               SUM(CASE WHEN first_seen >= $2 AND first_seen < $3 THEN 1 ELSE 0 END) AS new, \
               SUM(CASE WHEN status = 'resolved' AND resolved_at >= $2 AND resolved_at < $3 \
                   THEN 1 ELSE 0 END) AS fixed, \
               SUM(CASE WHEN reopened_at >= $2 AND reopened_at < $3 THEN 1 ELSE 0 END) AS reopened \
             FROM findings WHERE org = $1 AND (first_seen >= $2 OR resolved_at >= $2 \
               OR reopened_at >= $2) GROUP BY code ORDER BY code",
        )
        .bind(org)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let mut by_code = Vec::new();
        let (mut new, mut fixed, mut reopened) = (0, 0, 0);
        for r in &rows {
            let c = CodeChanges {
                code: r.try_get("code")?,
                new: r.try_get("new")?,
                fixed: r.try_get("fixed")?,
                reopened: r.try_get("reopened")?,
            };
            if c.new + c.fixed + c.reopened == 0 {
                continue;
            }
            new += c.new;
            fixed += c.fixed;
            reopened += c.reopened;
            by_code.push(c);
        }
        let delta = match (&start, &end) {
            (Some(a), Some(b)) => Some((tenths(b.0) - tenths(a.0)) as f64 / 10.0),
            _ => None,
        };
        Ok(Changes {
            org: org.to_owned(),
            from: fmt_ms(from),
            to: fmt_ms(to),
            model_version: MODEL_VERSION.to_owned(),
            score_from: start.as_ref().map(|s| s.0),
            score_to: end.as_ref().map(|s| s.0),
            delta,
            grade_from: start.map(|s| s.1),
            grade_to: end.map(|s| s.1),
            new,
            fixed,
            reopened,
            by_code,
        })
    }
}

fn history_item(r: &SqliteRow) -> Result<HistoryItem, StoreError> {
    let t = |c: &str| -> Result<f64, StoreError> { Ok(r.try_get::<i64, _>(c)? as f64 / 10.0) };
    let delta: Option<i64> = r.try_get("delta")?;
    let rollup: i64 = r.try_get("rollup")?;
    Ok(HistoryItem {
        day: r.try_get("day")?,
        model_version: r.try_get("model_version")?,
        score: t("score")?,
        grade: r.try_get("grade")?,
        tls_score: t("tls_score")?,
        patch_score: t("patch_score")?,
        legacy_score: t("legacy_score")?,
        coverage_score: t("coverage_score")?,
        confidence: r.try_get("confidence")?,
        rollup: rollup == 1,
        assets: r.try_get("assets")?,
        open_findings: r.try_get("open_findings")?,
        critical: r.try_get("critical")?,
        high: r.try_get("high")?,
        medium: r.try_get("medium")?,
        low: r.try_get("low")?,
        info: r.try_get("info")?,
        agents: r.try_get("agents")?,
        stale_agents: r.try_get("stale_agents")?,
        delta: delta.map(|d| d as f64 / 10.0),
        computed_at: fmt_ms(r.try_get("computed_at")?),
    })
}

fn cat_tenths(r: &Rolled, c: Category) -> i64 {
    if r.scored {
        tenths(r.categories.get(&c).copied().unwrap_or(100.0))
    } else {
        0
    }
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn detail_of(r: &Rolled, own: &Score) -> Detail {
    let categories = own
        .categories
        .iter()
        .map(|c| {
            let score = r.categories.get(&c.category).copied().unwrap_or(c.score);
            CategoryScore {
                score,
                grade: Grade::of(score),
                ..c.clone()
            }
        })
        .collect();
    Detail {
        breakdown: Breakdown {
            categories,
            caps: own.caps.clone(),
            counts: r.counts.clone(),
            members: r.members.clone(),
        },
        top_to_fix: own.top_to_fix.clone(),
    }
}

async fn write_score(
    conn: &mut SqliteConnection,
    r: &Rolled,
    own: &Score,
    now: i64,
) -> Result<(), StoreError> {
    let own_json = serde_json::to_string(own)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode a score: {e}")))?;
    let detail = serde_json::to_string(&detail_of(r, own))
        .map_err(|e| StoreError::Corrupt(format!("cannot encode a breakdown: {e}")))?;
    let c = &r.counts;
    sqlx::query(
        "INSERT INTO org_scores (org, model_version, computed_at, scored, score, grade, \
           tls_score, patch_score, legacy_score, coverage_score, confidence, rollup, assets, \
           open_findings, critical, high, medium, low, info, agents, stale_agents, \
           sibling_rank, siblings, percentile, own, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
           $18, $19, $20, $21, $22, $23, $24, $25, $26) \
         ON CONFLICT (org) DO UPDATE SET model_version = excluded.model_version, \
           computed_at = excluded.computed_at, scored = excluded.scored, score = excluded.score, \
           grade = excluded.grade, tls_score = excluded.tls_score, \
           patch_score = excluded.patch_score, legacy_score = excluded.legacy_score, \
           coverage_score = excluded.coverage_score, confidence = excluded.confidence, \
           rollup = excluded.rollup, assets = excluded.assets, \
           open_findings = excluded.open_findings, critical = excluded.critical, \
           high = excluded.high, medium = excluded.medium, low = excluded.low, \
           info = excluded.info, agents = excluded.agents, \
           stale_agents = excluded.stale_agents, sibling_rank = excluded.sibling_rank, \
           siblings = excluded.siblings, percentile = excluded.percentile, own = excluded.own, \
           detail = excluded.detail",
    )
    .bind(&r.code)
    .bind(MODEL_VERSION)
    .bind(now)
    .bind(i64::from(r.scored))
    .bind(if r.scored { tenths(r.score) } else { 0 })
    .bind(r.grade.filter(|_| r.scored).map(Grade::as_str))
    .bind(cat_tenths(r, Category::Tls))
    .bind(cat_tenths(r, Category::Patch))
    .bind(cat_tenths(r, Category::Legacy))
    .bind(cat_tenths(r, Category::Coverage))
    .bind(i64::from(r.confidence))
    .bind(i64::from(r.rollup))
    .bind(as_i64(c.assets))
    .bind(as_i64(c.open_findings))
    .bind(as_i64(c.critical))
    .bind(as_i64(c.high))
    .bind(as_i64(c.medium))
    .bind(as_i64(c.low))
    .bind(as_i64(c.info))
    .bind(as_i64(c.agents))
    .bind(as_i64(c.stale_agents))
    .bind(r.rank.map(i64::from))
    .bind(r.siblings.map(i64::from))
    .bind(r.percentile.map(i64::from))
    .bind(own_json)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}

async fn write_history(
    conn: &mut SqliteConnection,
    r: &Rolled,
    day: &str,
    now: i64,
) -> Result<(), StoreError> {
    let c = &r.counts;
    sqlx::query(
        "INSERT INTO score_history (org, model_version, day, computed_at, score, grade, \
           tls_score, patch_score, legacy_score, coverage_score, confidence, rollup, assets, \
           open_findings, critical, high, medium, low, info, agents, stale_agents) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
           $18, $19, $20, $21) \
         ON CONFLICT (org, model_version, day) DO UPDATE SET computed_at = excluded.computed_at, \
           score = excluded.score, grade = excluded.grade, tls_score = excluded.tls_score, \
           patch_score = excluded.patch_score, legacy_score = excluded.legacy_score, \
           coverage_score = excluded.coverage_score, confidence = excluded.confidence, \
           rollup = excluded.rollup, assets = excluded.assets, \
           open_findings = excluded.open_findings, critical = excluded.critical, \
           high = excluded.high, medium = excluded.medium, low = excluded.low, \
           info = excluded.info, agents = excluded.agents, stale_agents = excluded.stale_agents",
    )
    .bind(&r.code)
    .bind(MODEL_VERSION)
    .bind(day)
    .bind(now)
    .bind(tenths(r.score))
    .bind(r.grade.unwrap_or(Grade::of(r.score)).as_str())
    .bind(cat_tenths(r, Category::Tls))
    .bind(cat_tenths(r, Category::Patch))
    .bind(cat_tenths(r, Category::Legacy))
    .bind(cat_tenths(r, Category::Coverage))
    .bind(i64::from(r.confidence))
    .bind(i64::from(r.rollup))
    .bind(as_i64(c.assets))
    .bind(as_i64(c.open_findings))
    .bind(as_i64(c.critical))
    .bind(as_i64(c.high))
    .bind(as_i64(c.medium))
    .bind(as_i64(c.low))
    .bind(as_i64(c.info))
    .bind(as_i64(c.agents))
    .bind(as_i64(c.stale_agents))
    .execute(conn)
    .await?;
    Ok(())
}
