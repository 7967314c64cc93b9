//! Dashboard sessions (table `dashboard_sessions`, migration
//! `0004_reports.sql`). Invariants: only the SHA-256 of a session secret is
//! stored, beside the hash of the API key that opened it (never the key);
//! a session answers only before its `expires_at` and while its key
//! exists; logging out deletes the row; opening a session deletes the
//! expired ones.

use sqlx::Row;

use super::{ApiKeyRole, Store, StoreError};

impl Store {
    /// Records a session (`id_hash` of its secret) for the key `key_hash`.
    pub async fn open_session(
        &self,
        id_hash: &str,
        key_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO dashboard_sessions (id_hash, key_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(id_hash)
        .bind(key_hash)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The role and organisation of a live session.
    pub async fn session(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<(ApiKeyRole, Option<String>)>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT k.role AS role, k.org AS org FROM dashboard_sessions s \
             JOIN api_keys k ON k.key_hash = s.key_hash WHERE s.id_hash = $1 AND s.expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?
        else {
            return Ok(None);
        };
        let role: String = row.try_get("role")?;
        let role = role.parse().map_err(StoreError::Corrupt)?;
        Ok(Some((role, row.try_get("org")?)))
    }

    /// Ends a session (no error when it does not exist).
    pub async fn close_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM dashboard_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
