//! `status`: what the agent knows about itself, as JSON or a table.
//!
//! JSON shape: `{"enrolled", "agent_id", "org", "server_url", "spool":
//! {"depth", "bytes", "dropped", "quarantined"}, "last_shipped_at",
//! "last_runs": {collector: time}, "last_ship_error", "server_reachable",
//! "problems": [...]}`. Reading status changes nothing in the state
//! directory. Reachability is `GET /healthz` within [`HEALTHZ_TIMEOUT`],
//! trusting only the pinned CA.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::config::{Config, ServerUrl};
use crate::ship::Shipper;
use crate::spool::{Spool, SpoolStats};
use crate::state::{read_record, StateDir, Timestamp};
use crate::tlsconf;

/// Time limit of the reachability check.
pub const HEALTHZ_TIMEOUT: Duration = Duration::from_secs(3);

/// The status document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub enrolled: bool,
    pub agent_id: Option<Uuid>,
    pub org: Option<String>,
    pub server_url: Option<String>,
    pub spool: SpoolStats,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_shipped_at: Option<OffsetDateTime>,
    pub last_runs: BTreeMap<String, Timestamp>,
    pub last_ship_error: Option<String>,
    pub server_reachable: bool,
    /// Anything that stops the agent from working, in words.
    pub problems: Vec<String>,
}

/// Gathers the status (never fails: problems are listed in it).
pub async fn gather(cfg: &Config) -> Status {
    let state = StateDir::new(&cfg.state_dir);
    let mut problems = Vec::new();
    let enrollment = match state.load_enrollment() {
        Ok(e) => e,
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    if enrollment.is_none() && problems.is_empty() {
        problems.push("not enrolled: run `trustwatch-agent enroll`".to_owned());
    }
    let server = cfg.server_url.clone().or_else(|| {
        enrollment
            .as_ref()
            .and_then(|e| ServerUrl::parse(&e.server_url).ok())
    });
    let spool = Spool::read_stats(&state.spool_dir()).unwrap_or_else(|e| {
        problems.push(e.to_string());
        SpoolStats::default()
    });
    let record = read_record(&state.status_path());

    let mut server_reachable = false;
    if let (Some(_), Some(url)) = (&enrollment, &server) {
        match tlsconf::agent_client_config(&state) {
            Err(e) => problems.push(format!("credentials unusable: {e}")),
            Ok(tls) => match Shipper::new(tls, url, HEALTHZ_TIMEOUT) {
                Err(e) => problems.push(e.to_string()),
                Ok(s) => match s.healthz(HEALTHZ_TIMEOUT).await {
                    Ok(()) => server_reachable = true,
                    Err(e) => problems.push(format!("server not reachable: {e}")),
                },
            },
        }
    }
    Status {
        enrolled: enrollment.is_some(),
        agent_id: enrollment.as_ref().map(|e| e.agent_id),
        org: enrollment.as_ref().map(|e| e.org.clone()),
        server_url: server.map(|s| s.to_string()),
        spool,
        last_shipped_at: record.last_shipped_at,
        last_runs: record.last_runs,
        last_ship_error: record.last_ship_error,
        server_reachable,
        problems,
    }
}

fn time_text(t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_else(|| "never".to_owned())
}

/// A table a person can read.
pub fn render_table(s: &Status) -> String {
    let mut out = String::new();
    let none = || "-".to_owned();
    let _ = writeln!(
        out,
        "Enrolled          {}",
        if s.enrolled { "yes" } else { "no" }
    );
    let _ = writeln!(
        out,
        "Agent             {}",
        s.agent_id.map(|i| i.to_string()).unwrap_or_else(none)
    );
    let _ = writeln!(
        out,
        "Organisation      {}",
        s.org.clone().unwrap_or_else(none)
    );
    let _ = writeln!(
        out,
        "Server            {}",
        s.server_url.clone().unwrap_or_else(none)
    );
    let _ = writeln!(
        out,
        "Server reachable  {}",
        if s.server_reachable { "yes" } else { "no" }
    );
    let _ = writeln!(
        out,
        "Spool             {} report(s), {} bytes; {} dropped, {} quarantined",
        s.spool.depth, s.spool.bytes, s.spool.dropped, s.spool.quarantined
    );
    let _ = writeln!(out, "Last shipped      {}", time_text(s.last_shipped_at));
    if let Some(e) = &s.last_ship_error {
        let _ = writeln!(out, "Last ship error   {e}");
    }
    if s.last_runs.is_empty() {
        let _ = writeln!(out, "Last runs         none");
    } else {
        let _ = writeln!(out, "Last runs");
        for (name, t) in &s.last_runs {
            let _ = writeln!(out, "  {name:<16}{}", time_text(Some(t.0)));
        }
    }
    for p in &s.problems {
        let _ = writeln!(out, "Problem           {p}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, RawConfig};
    use std::path::Path;

    #[tokio::test]
    async fn status_of_a_fresh_state_dir_says_not_enrolled_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let raw: RawConfig = parse(Path::new("t"), b"").unwrap();
        let mut cfg = raw.validate().unwrap();
        cfg.state_dir = dir.path().join("state");
        let s = gather(&cfg).await;
        assert!(!s.enrolled);
        assert!(!s.server_reachable);
        assert_eq!(s.spool, SpoolStats::default());
        assert!(s.problems[0].contains("not enrolled"));
        assert!(!dir.path().join("state").exists());
        let v = serde_json::to_value(&s).unwrap();
        for key in [
            "agent_id",
            "org",
            "server_url",
            "spool",
            "last_shipped_at",
            "last_runs",
            "server_reachable",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert_eq!(v["spool"]["depth"], 0);
        assert_eq!(v["last_shipped_at"], serde_json::Value::Null);
        assert!(render_table(&s).contains("Enrolled          no"));
    }
}
