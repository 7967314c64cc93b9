//! The "last fired" state of scheduled reports (table `report_schedules`,
//! migration `0004_reports.sql`), shared by every process on the store.
//!
//! Invariants:
//! * `last_slot` only moves forward, and only by [`Store::claim_slot`]'s
//!   compare-and-set update (`WHERE last_slot = <the value read>`): of
//!   several processes claiming the same slot, exactly one update changes
//!   the row, and only that process fires it.
//! * A schedule seen for the first time records the latest slot at or
//!   before now as its baseline without firing: a report starts with the
//!   first slot after it was configured.
//! * A process that was down across several slots claims only the latest
//!   one: it catches up once, not once per missed slot.

use sqlx::Row;

use super::{Store, StoreError};

/// What a claim decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First sight of the schedule: the slot is recorded, nothing fires.
    Baseline,
    /// The slot was already handled (here or by another process).
    NotDue,
    /// This process fires the slot.
    Fire {
        /// The slot that fired before, if any (unix ms).
        previous: Option<i64>,
        /// Identifies this firing in [`Store::finish_run`].
        claim: String,
    },
}

/// The stored state of one schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleState {
    pub name: String,
    pub schedule: String,
    pub last_slot: i64,
    pub fired_slot: Option<i64>,
    pub fired_at: Option<i64>,
    pub status: Option<String>,
    pub detail: Option<String>,
}

impl Store {
    /// Claims `slot` (unix ms) of the schedule `name` at `now`.
    pub async fn claim_slot(
        &self,
        name: &str,
        schedule: &str,
        slot: i64,
        now: i64,
    ) -> Result<Claim, StoreError> {
        let row = sqlx::query("SELECT last_slot, fired_slot FROM report_schedules WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else {
            let r = sqlx::query(
                "INSERT INTO report_schedules (name, schedule, last_slot) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(schedule)
            .bind(slot)
            .execute(self.pool())
            .await?;
            return Ok(if r.rows_affected() == 1 {
                Claim::Baseline
            } else {
                Claim::NotDue
            });
        };
        let last: i64 = row.try_get("last_slot")?;
        let previous: Option<i64> = row.try_get("fired_slot")?;
        if last >= slot {
            return Ok(Claim::NotDue);
        }
        let claim = uuid::Uuid::now_v7().to_string();
        let r = sqlx::query(
            "UPDATE report_schedules SET last_slot = $3, fired_slot = $3, fired_at = $4, \
             fired_by = $5, status = 'running', detail = NULL, schedule = $2 \
             WHERE name = $1 AND last_slot = $6",
        )
        .bind(name)
        .bind(schedule)
        .bind(slot)
        .bind(now)
        .bind(&claim)
        .bind(last)
        .execute(self.pool())
        .await?;
        Ok(if r.rows_affected() == 1 {
            Claim::Fire { previous, claim }
        } else {
            Claim::NotDue
        })
    }

    /// Records how the firing `claim` of `name` ended.
    pub async fn finish_run(
        &self,
        name: &str,
        claim: &str,
        ok: bool,
        detail: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE report_schedules SET status = $3, detail = $4 WHERE name = $1 AND fired_by = $2",
        )
        .bind(name)
        .bind(claim)
        .bind(if ok { "ok" } else { "error" })
        .bind(detail)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The state of one schedule, if ever seen.
    pub async fn schedule_state(&self, name: &str) -> Result<Option<ScheduleState>, StoreError> {
        let Some(r) = sqlx::query(
            "SELECT name, schedule, last_slot, fired_slot, fired_at, status, detail \
             FROM report_schedules WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await?
        else {
            return Ok(None);
        };
        Ok(Some(ScheduleState {
            name: r.try_get("name")?,
            schedule: r.try_get("schedule")?,
            last_slot: r.try_get("last_slot")?,
            fired_slot: r.try_get("fired_slot")?,
            fired_at: r.try_get("fired_at")?,
            status: r.try_get("status")?,
            detail: r.try_get("detail")?,
        }))
    }
}
