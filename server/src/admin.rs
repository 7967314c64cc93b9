//! The admin commands (`org`, `token`, `apikey`, `agent`): they act on the
//! same database file as a running `serve`, which sees their effect on its
//! next request. Output goes to the writer given (stdout in the binary);
//! the create commands print the secret alone on the last line.

use std::io::Write;
use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::clock::{fmt_ms, to_ms, Clock};
use crate::secret::{self, RandomError};
use crate::store::{ApiKeyRole, Store, StoreError};

/// Output format of the list commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    Json,
    #[default]
    Table,
}

/// Why an admin command failed (the binary exits 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Random(#[from] RandomError),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    #[error("{0}")]
    Invalid(String),
}

/// `org add CODE --name NAME [--parent CODE]`.
pub async fn org_add(
    store: &Store,
    clock: &dyn Clock,
    code: &str,
    name: &str,
    parent: Option<&str>,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    if !trustwatch_common::identity::is_valid_org_code(code) {
        return Err(AdminError::Invalid(format!(
            "{code:?} is not a valid organisation code"
        )));
    }
    if name.trim().is_empty() {
        return Err(AdminError::Invalid("the name must not be empty".into()));
    }
    if let Some(p) = parent {
        if !store.org_exists(p).await? {
            return Err(StoreError::OrgNotFound(p.to_owned()).into());
        }
    }
    store
        .add_org(code, name, parent, to_ms(clock.now()))
        .await?;
    writeln!(out, "added organisation {code}")?;
    Ok(())
}

/// `org list`.
pub async fn org_list(
    store: &Store,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let orgs = store.list_orgs().await?;
    match format {
        Format::Json => {
            let v: Vec<_> = orgs
                .iter()
                .map(|o| {
                    json!({"code": o.code, "name": o.name, "parent": o.parent,
                           "created_at": fmt_ms(o.created_at)})
                })
                .collect();
            writeln!(out, "{}", serde_json::Value::Array(v))?;
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = orgs
                .iter()
                .map(|o| {
                    vec![
                        o.code.clone(),
                        o.name.clone(),
                        o.parent.clone().unwrap_or_else(|| "-".into()),
                        fmt_ms(o.created_at),
                    ]
                })
                .collect();
            table(out, &["CODE", "NAME", "PARENT", "CREATED"], &rows)?;
        }
    }
    Ok(())
}

/// `token create --org CODE [--ttl DUR] [--uses N]`.
pub async fn token_create(
    store: &Store,
    clock: &dyn Clock,
    org: &str,
    ttl: Duration,
    uses: u32,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    if uses == 0 {
        return Err(AdminError::Invalid("--uses must be at least 1".into()));
    }
    if !store.org_exists(org).await? {
        return Err(StoreError::OrgNotFound(org.to_owned()).into());
    }
    let token = secret::generate(secret::TOKEN_PREFIX)?;
    let now = to_ms(clock.now());
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let expires = now.saturating_add(ttl_ms);
    store
        .create_token(&secret::hash(&token), org, now, expires, uses)
        .await?;
    writeln!(
        out,
        "enrollment token for {org}: {uses} use{}, expires {}",
        if uses == 1 { "" } else { "s" },
        fmt_ms(expires)
    )?;
    writeln!(out, "{token}")?;
    Ok(())
}

/// `apikey create --role R [--org CODE]`.
pub async fn apikey_create(
    store: &Store,
    clock: &dyn Clock,
    role: ApiKeyRole,
    org: Option<&str>,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    match (role, org) {
        (ApiKeyRole::Org, None) => {
            return Err(AdminError::Invalid(
                "--org is required with --role org".into(),
            ))
        }
        (ApiKeyRole::National | ApiKeyRole::Admin, Some(_)) => {
            return Err(AdminError::Invalid(
                "--org is only allowed with --role org".into(),
            ))
        }
        _ => {}
    }
    if let Some(o) = org {
        if !store.org_exists(o).await? {
            return Err(StoreError::OrgNotFound(o.to_owned()).into());
        }
    }
    let key = secret::generate(secret::API_KEY_PREFIX)?;
    store
        .create_api_key(&secret::hash(&key), role, org, to_ms(clock.now()))
        .await?;
    match org {
        Some(o) => writeln!(out, "API key, role {role}, organisation {o}")?,
        None => writeln!(out, "API key, role {role}")?,
    }
    writeln!(out, "{key}")?;
    Ok(())
}

/// `agent list [--org CODE]`.
pub async fn agent_list(
    store: &Store,
    org: Option<&str>,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    if let Some(o) = org {
        if !store.org_exists(o).await? {
            return Err(StoreError::OrgNotFound(o.to_owned()).into());
        }
    }
    let agents = store.list_agents(org).await?;
    let status = |revoked: Option<i64>| {
        if revoked.is_some() {
            "revoked"
        } else {
            "active"
        }
    };
    match format {
        Format::Json => {
            let v: Vec<_> = agents
                .iter()
                .map(|a| {
                    json!({
                        "id": a.id, "org": a.org, "hostname": a.hostname,
                        "cert_serial": a.cert_serial,
                        "enrolled_at": fmt_ms(a.enrolled_at),
                        "last_seen": a.last_seen.map(fmt_ms),
                        "revoked_at": a.revoked_at.map(fmt_ms),
                        "status": status(a.revoked_at),
                    })
                })
                .collect();
            writeln!(out, "{}", serde_json::Value::Array(v))?;
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = agents
                .iter()
                .map(|a| {
                    vec![
                        a.id.clone(),
                        a.org.clone(),
                        a.hostname.clone().unwrap_or_else(|| "-".into()),
                        fmt_ms(a.enrolled_at),
                        a.last_seen.map(fmt_ms).unwrap_or_else(|| "never".into()),
                        status(a.revoked_at).into(),
                    ]
                })
                .collect();
            table(
                out,
                &["ID", "ORG", "HOSTNAME", "ENROLLED", "LAST SEEN", "STATUS"],
                &rows,
            )?;
        }
    }
    Ok(())
}

/// `agent revoke AGENT_ID`.
pub async fn agent_revoke(
    store: &Store,
    clock: &dyn Clock,
    id: Uuid,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    store
        .revoke_agent(&id.to_string(), to_ms(clock.now()))
        .await?;
    writeln!(out, "revoked agent {id}")?;
    Ok(())
}

pub(crate) fn table(
    out: &mut dyn Write,
    head: &[&str],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_owned()
    };
    writeln!(out, "{}", line(head.to_vec()))?;
    for r in rows {
        writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{parse_rfc3339, ManualClock};

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_in(dir.path()).await.unwrap();
        (dir, s)
    }

    fn last_line(out: &[u8]) -> String {
        String::from_utf8_lossy(out)
            .lines()
            .last()
            .unwrap()
            .to_owned()
    }

    #[tokio::test]
    async fn duplicate_org_is_refused_and_nothing_changes() {
        let (_d, s) = store().await;
        let clock = ManualClock::new(parse_rfc3339("2025-01-01T00:00:00Z").unwrap());
        let mut out = Vec::new();
        org_add(&s, &clock, "RX1", "First", None, &mut out)
            .await
            .unwrap();
        let e = org_add(&s, &clock, "RX1", "Second", None, &mut out)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
        let orgs = s.list_orgs().await.unwrap();
        assert_eq!(orgs.len(), 1);
        assert_eq!(orgs[0].name, "First");
    }

    #[tokio::test]
    async fn org_with_missing_parent_is_refused() {
        let (_d, s) = store().await;
        let clock = ManualClock::new(parse_rfc3339("2025-01-01T00:00:00Z").unwrap());
        let e = org_add(&s, &clock, "RX2", "Child", Some("NOPE"), &mut Vec::new())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("NOPE"), "{e}");
        assert!(s.list_orgs().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn token_and_key_print_the_secret_last_and_store_only_its_hash() {
        let (_d, s) = store().await;
        let clock = ManualClock::new(parse_rfc3339("2025-01-01T00:00:00Z").unwrap());
        org_add(&s, &clock, "RX1", "One", None, &mut Vec::new())
            .await
            .unwrap();
        let mut out = Vec::new();
        token_create(&s, &clock, "RX1", Duration::from_secs(3600), 2, &mut out)
            .await
            .unwrap();
        let token = last_line(&out);
        assert!(token.starts_with("twe_") && token.len() == 68, "{token}");
        let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM enroll_tokens")
            .fetch_all(s.pool())
            .await
            .unwrap();
        assert_eq!(stored, vec![secret::hash(&token)]);

        let mut out = Vec::new();
        apikey_create(&s, &clock, ApiKeyRole::Org, Some("RX1"), &mut out)
            .await
            .unwrap();
        let key = last_line(&out);
        assert!(key.starts_with("twk_") && key.len() == 68, "{key}");
        assert_eq!(
            s.api_key(&secret::hash(&key)).await.unwrap(),
            Some((ApiKeyRole::Org, Some("RX1".into())))
        );
        assert_eq!(s.api_key(&key).await.unwrap(), None);
    }

    #[tokio::test]
    async fn token_for_a_missing_org_is_refused() {
        let (_d, s) = store().await;
        let clock = ManualClock::new(parse_rfc3339("2025-01-01T00:00:00Z").unwrap());
        let mut out = Vec::new();
        let e = token_create(&s, &clock, "NOPE", Duration::from_secs(60), 1, &mut out)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn apikey_org_flag_is_required_for_and_only_for_org_role() {
        let (_d, s) = store().await;
        let clock = ManualClock::new(parse_rfc3339("2025-01-01T00:00:00Z").unwrap());
        org_add(&s, &clock, "RX1", "One", None, &mut Vec::new())
            .await
            .unwrap();
        assert!(
            apikey_create(&s, &clock, ApiKeyRole::Org, None, &mut Vec::new())
                .await
                .is_err()
        );
        assert!(apikey_create(
            &s,
            &clock,
            ApiKeyRole::National,
            Some("RX1"),
            &mut Vec::new()
        )
        .await
        .is_err());
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys")
            .fetch_one(s.pool())
            .await
            .unwrap();
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn revoking_an_unknown_agent_fails() {
        let (_d, s) = store().await;
        let clock = ManualClock::new(parse_rfc3339("2025-01-01T00:00:00Z").unwrap());
        let e = agent_revoke(&s, &clock, Uuid::now_v7(), &mut Vec::new())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }
}
