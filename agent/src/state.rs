//! The agent's state directory and the small records kept in it.
//!
//! Layout of `<state>/` (directory mode 0700, every file written with
//! [`crate::fsio::write_atomic`]):
//!
//! | file | content |
//! |---|---|
//! | `agent-key.pem` | the agent's ECDSA P-256 private key, PKCS#8 PEM, mode 0600 |
//! | `agent.pem` | the agent's client certificate, PEM |
//! | `server-ca.pem` | the server CA, PEM: the only root the agent trusts for the server |
//! | `enrollment.json` | [`Enrollment`]: `{agent_id, org, server_url, enrolled_at}` |
//! | `status.json` | [`RunRecord`]: last collector runs and last shipment |
//! | `spool/` | see [`crate::spool`] |
//!
//! `enrollment.json` is written last at enrolment, so its presence means the
//! credentials beside it are complete. `status.json` is informational: a
//! missing or unreadable one is treated as empty, never as an error.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::fsio::{self, AtomicWriter, DurableWriter};

const MAX_RECORD_BYTES: u64 = 1 << 20;

/// Problems with the state directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    #[error("cannot access {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is damaged: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("this agent is not enrolled (no {path}); run `trustwatch-agent enroll` first")]
    NotEnrolled { path: PathBuf },
}

/// Paths inside the state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> StateDir {
        StateDir { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn key_path(&self) -> PathBuf {
        self.root.join("agent-key.pem")
    }
    pub fn cert_path(&self) -> PathBuf {
        self.root.join("agent.pem")
    }
    pub fn ca_path(&self) -> PathBuf {
        self.root.join("server-ca.pem")
    }
    pub fn enrollment_path(&self) -> PathBuf {
        self.root.join("enrollment.json")
    }
    pub fn status_path(&self) -> PathBuf {
        self.root.join("status.json")
    }
    pub fn spool_dir(&self) -> PathBuf {
        self.root.join("spool")
    }

    /// Creates the directory (mode 0700) if needed.
    pub fn ensure(&self) -> Result<(), StateError> {
        fsio::create_private_dir(&self.root).map_err(|source| StateError::Io {
            path: self.root.clone(),
            source,
        })
    }

    /// The enrolment record; `None` when the agent was never enrolled.
    pub fn load_enrollment(&self) -> Result<Option<Enrollment>, StateError> {
        let path = self.enrollment_path();
        let bytes = match fsio::read_bounded(&path, MAX_RECORD_BYTES) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateError::Io { path, source }),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StateError::Corrupt {
                path,
                reason: e.to_string(),
            })
    }

    /// The enrolment record, or [`StateError::NotEnrolled`].
    pub fn require_enrollment(&self) -> Result<Enrollment, StateError> {
        self.load_enrollment()?
            .ok_or_else(|| StateError::NotEnrolled {
                path: self.enrollment_path(),
            })
    }
}

/// `enrollment.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrollment {
    /// The id the server gave this agent (also its certificate's CN).
    pub agent_id: Uuid,
    /// The organisation code (also its certificate's O).
    pub org: String,
    /// The server URL used at enrolment.
    pub server_url: String,
    /// When enrolment completed.
    #[serde(with = "time::serde::rfc3339")]
    pub enrolled_at: OffsetDateTime,
}

/// `status.json`: what `status` shows about past activity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// When a report was last acknowledged by the server.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_shipped_at: Option<OffsetDateTime>,
    /// Per collector name, when it last ran to completion.
    #[serde(default)]
    pub last_runs: BTreeMap<String, Timestamp>,
    /// Why shipping last stopped, cleared by the next success.
    #[serde(default)]
    pub last_ship_error: Option<String>,
}

/// An RFC 3339 timestamp in a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(#[serde(with = "time::serde::rfc3339")] pub OffsetDateTime);

/// Reads and updates `status.json`, serialising updates within a process.
pub struct RunLog {
    path: PathBuf,
    writer: Box<dyn AtomicWriter>,
    lock: Mutex<()>,
}

impl RunLog {
    pub fn new(state: &StateDir) -> RunLog {
        RunLog {
            path: state.status_path(),
            writer: Box::new(DurableWriter),
            lock: Mutex::new(()),
        }
    }

    /// The current record (empty when missing or unreadable).
    pub fn load(&self) -> RunRecord {
        read_record(&self.path)
    }

    fn update(&self, f: impl FnOnce(&mut RunRecord)) -> Result<(), StateError> {
        // A poisoned lock only means another update panicked; the file is
        // still whole (atomic writes), so carry on.
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut rec = read_record(&self.path);
        f(&mut rec);
        let bytes = serde_json::to_vec_pretty(&rec).map_err(|e| StateError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        self.writer
            .write_atomic(&self.path, &bytes, 0o600)
            .map_err(|source| StateError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// Records that these collectors completed at `at`.
    pub fn record_runs(&self, names: &[String], at: OffsetDateTime) -> Result<(), StateError> {
        self.update(|r| {
            for n in names {
                r.last_runs.insert(n.clone(), Timestamp(at));
            }
        })
    }

    /// Records a successful shipment.
    pub fn record_shipped(&self, at: OffsetDateTime) -> Result<(), StateError> {
        self.update(|r| {
            r.last_shipped_at = Some(at);
            r.last_ship_error = None;
        })
    }

    /// Records why shipping stopped.
    pub fn record_ship_error(&self, why: &str) -> Result<(), StateError> {
        self.update(|r| r.last_ship_error = Some(why.to_owned()))
    }
}

/// Reads `status.json` without failing: problems give an empty record.
pub fn read_record(path: &Path) -> RunRecord {
    match fsio::read_bounded(path, MAX_RECORD_BYTES) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!("ignoring unreadable {}: {e}", path.display());
            RunRecord::default()
        }),
        Err(e) => {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!("ignoring unreadable {}: {e}", path.display());
            }
            RunRecord::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_enrollment_is_none_and_require_says_not_enrolled() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path());
        assert_eq!(s.load_enrollment().unwrap(), None);
        let e = s.require_enrollment().unwrap_err();
        assert!(e.to_string().contains("not enrolled"), "{e}");
    }

    #[test]
    fn damaged_enrollment_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path());
        std::fs::write(s.enrollment_path(), b"{\"agent_id\": 3").unwrap();
        assert!(matches!(
            s.load_enrollment().unwrap_err(),
            StateError::Corrupt { .. }
        ));
    }

    #[test]
    fn run_log_keeps_runs_and_shipments_across_updates() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path());
        let log = RunLog::new(&s);
        assert_eq!(log.load(), RunRecord::default());
        let t = OffsetDateTime::from_unix_timestamp(1_760_000_000).unwrap();
        log.record_runs(&["host".into()], t).unwrap();
        log.record_ship_error("server unreachable").unwrap();
        log.record_shipped(t).unwrap();
        let r = log.load();
        assert_eq!(r.last_runs["host"], Timestamp(t));
        assert_eq!(r.last_shipped_at, Some(t));
        assert_eq!(r.last_ship_error, None);
        std::fs::write(s.status_path(), b"garbage").unwrap();
        assert_eq!(log.load(), RunRecord::default());
    }
}
