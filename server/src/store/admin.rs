//! Organisations, enrolment tokens, API keys and agents: what the admin
//! commands write and enrolment and authentication read.

use std::fmt;
use std::str::FromStr;

use sqlx::{Row, SqliteConnection};

use super::{is_fk_violation, is_unique_violation, Store, StoreError};

/// An organisation as the admin commands list it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrgRow {
    pub code: String,
    pub name: String,
    pub parent: Option<String>,
    pub created_at: i64,
}

/// An agent as the admin commands list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRow {
    pub id: String,
    pub org: String,
    pub hostname: Option<String>,
    pub cert_serial: String,
    pub enrolled_at: i64,
    pub last_seen: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// What an API key may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKeyRole {
    /// Every organisation, and the national views.
    National,
    /// One organisation only.
    Org,
    /// Everything (administration).
    Admin,
}

impl ApiKeyRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKeyRole::National => "national",
            ApiKeyRole::Org => "org",
            ApiKeyRole::Admin => "admin",
        }
    }
}

impl fmt::Display for ApiKeyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApiKeyRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "national" => Ok(ApiKeyRole::National),
            "org" => Ok(ApiKeyRole::Org),
            "admin" => Ok(ApiKeyRole::Admin),
            other => Err(format!("unknown role {other:?}")),
        }
    }
}

/// Why an enrolment token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    Unknown,
    Expired,
    UsedUp,
}

impl fmt::Display for TokenRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenRejection::Unknown => "the enrollment token is not known",
            TokenRejection::Expired => "the enrollment token has expired",
            TokenRejection::UsedUp => "the enrollment token has no uses left",
        })
    }
}

impl Store {
    /// Adds an organisation.
    pub async fn add_org(
        &self,
        code: &str,
        name: &str,
        parent: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let r = sqlx::query(
            "INSERT INTO orgs (code, name, parent, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(code)
        .bind(name)
        .bind(parent)
        .bind(now)
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::OrgExists(code.to_owned())),
            Err(e) if is_fk_violation(&e) => Err(StoreError::OrgNotFound(
                parent.unwrap_or_default().to_owned(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Every organisation, by code.
    pub async fn list_orgs(&self) -> Result<Vec<OrgRow>, StoreError> {
        let rows = sqlx::query("SELECT code, name, parent, created_at FROM orgs ORDER BY code")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(OrgRow {
                    code: r.try_get("code")?,
                    name: r.try_get("name")?,
                    parent: r.try_get("parent")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    pub async fn org_exists(&self, code: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM orgs WHERE code = $1")
            .bind(code)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Stores an enrolment token's hash.
    pub async fn create_token(
        &self,
        token_hash: &str,
        org: &str,
        now: i64,
        expires_at: i64,
        uses: u32,
    ) -> Result<(), StoreError> {
        let r = sqlx::query(
            "INSERT INTO enroll_tokens (token_hash, org, created_at, expires_at, uses_left) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(org)
        .bind(now)
        .bind(expires_at)
        .bind(i64::from(uses))
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_fk_violation(&e) => Err(StoreError::OrgNotFound(org.to_owned())),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores an API key's hash.
    pub async fn create_api_key(
        &self,
        key_hash: &str,
        role: ApiKeyRole,
        org: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let r = sqlx::query(
            "INSERT INTO api_keys (key_hash, role, org, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(key_hash)
        .bind(role.as_str())
        .bind(org)
        .bind(now)
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_fk_violation(&e) => {
                Err(StoreError::OrgNotFound(org.unwrap_or_default().to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The role and organisation of an API key, by hash.
    pub async fn api_key(
        &self,
        key_hash: &str,
    ) -> Result<Option<(ApiKeyRole, Option<String>)>, StoreError> {
        let Some(row) = sqlx::query("SELECT role, org FROM api_keys WHERE key_hash = $1")
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let role: String = row.try_get("role")?;
        let role = role.parse().map_err(StoreError::Corrupt)?;
        Ok(Some((role, row.try_get("org")?)))
    }

    /// The agent with this id, if any.
    pub async fn agent(&self, id: &str) -> Result<Option<AgentRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, org, hostname, cert_serial, enrolled_at, last_seen, revoked_at \
             FROM agents WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(agent_row).transpose().map_err(Into::into)
    }

    /// Agents, optionally of one organisation, by organisation and id.
    pub async fn list_agents(&self, org: Option<&str>) -> Result<Vec<AgentRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, org, hostname, cert_serial, enrolled_at, last_seen, revoked_at \
             FROM agents WHERE ($1 IS NULL OR org = $1) ORDER BY org, id",
        )
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(agent_row)
            .collect::<Result<_, _>>()
            .map_err(Into::into)
    }

    /// Marks an agent revoked (idempotent; the first revocation time stays).
    pub async fn revoke_agent(&self, id: &str, now: i64) -> Result<(), StoreError> {
        let r =
            sqlx::query("UPDATE agents SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::AgentNotFound(id.to_owned()));
        }
        Ok(())
    }
}

fn agent_row(r: &sqlx::sqlite::SqliteRow) -> Result<AgentRow, sqlx::Error> {
    Ok(AgentRow {
        id: r.try_get("id")?,
        org: r.try_get("org")?,
        hostname: r.try_get("hostname")?,
        cert_serial: r.try_get("cert_serial")?,
        enrolled_at: r.try_get("enrolled_at")?,
        last_seen: r.try_get("last_seen")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

/// Takes one use of a token, inside the caller's transaction. Returns the
/// organisation it enrols into, or why it was refused (nothing changed then).
pub async fn consume_token(
    conn: &mut SqliteConnection,
    token_hash: &str,
    now: i64,
) -> Result<Result<String, TokenRejection>, StoreError> {
    let row = sqlx::query(
        "UPDATE enroll_tokens SET uses_left = uses_left - 1 \
         WHERE token_hash = $1 AND expires_at > $2 AND uses_left > 0 RETURNING org",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = row {
        return Ok(Ok(row.try_get("org")?));
    }
    let why = sqlx::query("SELECT expires_at, uses_left FROM enroll_tokens WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(Err(match why {
        None => TokenRejection::Unknown,
        Some(r) => {
            let expires_at: i64 = r.try_get("expires_at")?;
            if expires_at <= now {
                TokenRejection::Expired
            } else {
                TokenRejection::UsedUp
            }
        }
    }))
}

/// Inserts a newly enrolled agent, inside the caller's transaction.
pub async fn insert_agent(
    conn: &mut SqliteConnection,
    id: &str,
    org: &str,
    hostname: Option<&str>,
    cert_serial: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO agents (id, org, hostname, cert_serial, enrolled_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(org)
    .bind(hostname)
    .bind(cert_serial)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
