//! The documents agents print and ship (DESIGN §3).
//!
//! * `trustwatch.scan/v1` ([`ScanDocument`]) is what `trustwatch-agent scan …
//!   --format json` prints: assets, findings and errors of one run.
//! * `trustwatch.report/v1` ([`Report`]) is the scan document plus the
//!   identity fields the server needs: `report_id` (a UUIDv7 made once by the
//!   agent and kept across retries, the idempotency key), `collected_at`,
//!   `agent`, `spool_dropped` and the list of `collectors` that ran (a finding
//!   is resolved when the same agent's same collector reports again without it).
//!
//! Unknown fields are tolerated on input (a newer agent may send more); the
//! `schema` field is checked by [`Report::validate`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::codes::{Category, FindingCode, Severity};

pub const SCAN_SCHEMA: &str = "trustwatch.scan/v1";
pub const REPORT_SCHEMA: &str = "trustwatch.report/v1";

/// Names of the agent's collectors, as used in `collectors` and `collector`.
pub mod collector {
    pub const HOST: &str = "host";
    pub const TLS: &str = "tls";
    pub const NETWORK: &str = "network";
}

/// The kind of an asset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetKind {
    /// A machine an agent inventories; id = hostname.
    Host,
    /// A TLS service; id = the TARGET as given (`host:port`).
    TlsEndpoint,
    /// A device found on the network; id = IP address.
    Device,
}

impl AssetKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            AssetKind::Host => "host",
            AssetKind::TlsEndpoint => "tls_endpoint",
            AssetKind::Device => "device",
        }
    }
}

/// An asset: `{kind, id, ...}`; everything past `kind` and `id` is the
/// collector's own description of it (the host inventory, a grade, services).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    pub kind: AssetKind,
    pub id: String,
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

/// One finding: `{code, severity, category, asset, title, evidence}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub code: FindingCode,
    pub severity: Severity,
    pub category: Category,
    /// The id of the asset it concerns (for TLS: the TARGET as given).
    pub asset: String,
    pub title: String,
    /// A JSON object a person can check.
    pub evidence: Value,
    /// What inside the asset the finding is about (a package, a port), when an
    /// asset can have several findings of one code. Part of its identity.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subject: String,
    /// The collector that raised it (`host`, `tls`, `network`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub collector: String,
}

impl Finding {
    /// A finding with the code's default severity, category and title.
    pub fn new(code: FindingCode, asset: impl Into<String>, evidence: Value) -> Self {
        Finding {
            severity: code.default_severity(),
            category: code.category().unwrap_or(Category::Coverage),
            title: code.title().to_owned(),
            code,
            asset: asset.into(),
            evidence,
            subject: String::new(),
            collector: String::new(),
        }
    }
}

/// A target or collector that could not be assessed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectorError {
    pub collector: String,
    /// The target, when the error concerns one (`host:port`, an address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub reason: String,
}

/// `trustwatch.scan/v1`: one run's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanDocument {
    pub schema: String,
    pub agent_version: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    pub assets: Vec<Asset>,
    pub findings: Vec<Finding>,
    pub errors: Vec<CollectorError>,
}

impl ScanDocument {
    pub fn new(agent_version: &str, started_at: OffsetDateTime) -> Self {
        ScanDocument {
            schema: SCAN_SCHEMA.to_owned(),
            agent_version: agent_version.to_owned(),
            started_at,
            finished_at: started_at,
            assets: Vec::new(),
            findings: Vec::new(),
            errors: Vec::new(),
        }
    }
}

/// Who sent a report. The server trusts only its client certificate for the
/// agent id and organisation; these fields are informational.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub id: Uuid,
    pub hostname: String,
    pub version: String,
}

/// `trustwatch.report/v1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub report_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub collected_at: OffsetDateTime,
    pub agent: AgentInfo,
    pub agent_version: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    /// Collectors that ran to completion in this round.
    #[serde(default)]
    pub collectors: Vec<String>,
    pub assets: Vec<Asset>,
    pub findings: Vec<Finding>,
    pub errors: Vec<CollectorError>,
    /// Reports this agent has dropped so far because its spool was full.
    #[serde(default)]
    pub spool_dropped: u64,
}

/// Why a document is not an acceptable report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    #[error("schema is {0:?}, expected \"trustwatch.report/v1\"")]
    WrongSchema(String),
    #[error("report_id {0} is not a UUIDv7")]
    NotUuidV7(Uuid),
    #[error("finding {index} names asset {asset:?}, which is not in the report's assets")]
    DanglingAsset { index: usize, asset: String },
    #[error("finding {index} has category {got} but code {code} belongs to {want}")]
    CategoryMismatch {
        index: usize,
        code: String,
        got: Category,
        want: Category,
    },
    #[error("{what} {value:?} is too long (at most {max} bytes)")]
    TooLong {
        what: &'static str,
        value: String,
        max: usize,
    },
}

/// Longest asset id, subject or title accepted.
pub const MAX_ID_LEN: usize = 1024;

impl Report {
    /// Checks what serde cannot: the schema, the id version, that findings
    /// name assets of the report and carry their code's category.
    pub fn validate(&self) -> Result<(), ReportError> {
        if self.schema != REPORT_SCHEMA {
            return Err(ReportError::WrongSchema(self.schema.clone()));
        }
        if self.report_id.get_version_num() != 7 {
            return Err(ReportError::NotUuidV7(self.report_id));
        }
        for a in &self.assets {
            check_len("asset id", &a.id)?;
        }
        for (index, f) in self.findings.iter().enumerate() {
            check_len("finding subject", &f.subject)?;
            check_len("finding title", &f.title)?;
            if !self.assets.iter().any(|a| a.id == f.asset) {
                return Err(ReportError::DanglingAsset {
                    index,
                    asset: f.asset.clone(),
                });
            }
            if let Some(want) = f.code.category() {
                if want != f.category {
                    return Err(ReportError::CategoryMismatch {
                        index,
                        code: f.code.to_string(),
                        got: f.category,
                        want,
                    });
                }
            }
        }
        Ok(())
    }

    /// The kind of the asset a finding names (the first asset with that id).
    pub fn asset_kind_of(&self, asset_id: &str) -> Option<&AssetKind> {
        self.assets
            .iter()
            .find(|a| a.id == asset_id)
            .map(|a| &a.kind)
    }
}

fn check_len(what: &'static str, value: &str) -> Result<(), ReportError> {
    if value.len() > MAX_ID_LEN {
        return Err(ReportError::TooLong {
            what,
            value: value.chars().take(64).collect(),
            max: MAX_ID_LEN,
        });
    }
    Ok(())
}

/// The server's answer to `POST /api/v1/reports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportAck {
    pub report_id: Uuid,
    /// `stored` or `duplicate`.
    pub status: String,
}

/// `POST /api/v1/enroll` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    pub token: String,
    /// PKCS#10 certificate signing request, PEM.
    pub csr: String,
    /// The agent's hostname, informational.
    #[serde(default)]
    pub hostname: Option<String>,
}

/// `POST /api/v1/enroll` answer (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    pub agent_id: Uuid,
    pub org: String,
    /// The agent's client certificate, PEM.
    pub certificate: String,
    /// The server CA certificate, PEM: the only root the agent trusts.
    pub ca: String,
}

/// Every API error body: `{error, detail}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Report {
        let t = OffsetDateTime::from_unix_timestamp(1_760_000_000).unwrap();
        let mut details = Map::new();
        details.insert("kernel".into(), json!("6.1.0-26-amd64"));
        Report {
            schema: REPORT_SCHEMA.into(),
            report_id: Uuid::now_v7(),
            collected_at: t,
            agent: AgentInfo {
                id: Uuid::now_v7(),
                hostname: "pacs01".into(),
                version: "0.1.0".into(),
            },
            agent_version: "0.1.0".into(),
            started_at: t,
            finished_at: t,
            collectors: vec![collector::HOST.into()],
            assets: vec![Asset {
                kind: AssetKind::Host,
                id: "pacs01".into(),
                details,
            }],
            findings: vec![Finding::new(
                FindingCode::PatchKernelRebootRequired,
                "pacs01",
                json!({"running": "6.1.0-25", "installed": "6.1.0-26"}),
            )],
            errors: vec![],
            spool_dropped: 0,
        }
    }

    #[test]
    fn report_round_trips_with_asset_details_flattened() {
        let r = sample();
        r.validate().unwrap();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["assets"][0]["kernel"], "6.1.0-26-amd64");
        assert_eq!(v["assets"][0]["kind"], "host");
        assert_eq!(v["findings"][0]["category"], "patch");
        assert_eq!(v["collected_at"], "2025-10-09T08:53:20Z");
        let back: Report = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn validate_refuses_what_serde_lets_through() {
        let mut r = sample();
        r.schema = "trustwatch.report/v0".into();
        assert!(matches!(r.validate(), Err(ReportError::WrongSchema(_))));

        let mut r = sample();
        r.report_id = Uuid::new_v4();
        assert!(matches!(r.validate(), Err(ReportError::NotUuidV7(_))));

        let mut r = sample();
        r.findings[0].asset = "elsewhere".into();
        assert!(matches!(
            r.validate(),
            Err(ReportError::DanglingAsset { .. })
        ));

        let mut r = sample();
        r.findings[0].category = Category::Tls;
        assert!(matches!(
            r.validate(),
            Err(ReportError::CategoryMismatch { .. })
        ));
    }
}
