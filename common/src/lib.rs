//! Wire types shared by `trustwatch-agent` and `trustwatch-server`: the report
//! schema, assets, findings, severities, categories and finding codes of
//! DESIGN §2–3, and the conventions both sides rely on. No I/O, no async.
#![forbid(unsafe_code)]

pub mod codes;
pub mod host;
pub mod identity;
pub mod report;
pub mod version;

pub use codes::{Category, FindingCode, Severity};
pub use report::{
    Asset, AssetKind, CollectorError, Finding, Report, ScanDocument, REPORT_SCHEMA, SCAN_SCHEMA,
};
