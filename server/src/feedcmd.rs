//! The `feed import`, `feed list` and `match` commands: output (JSON for
//! scripts, tables for people) and exit status (the binary exits 1 when
//! any file failed to import, naming it; a match always prints a document).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use time::OffsetDateTime;
use trustwatch_common::host::HostAsset;
use trustwatch_common::report::{Asset, CollectorError};
use trustwatch_common::{Finding, ScanDocument, SCAN_SCHEMA};

use crate::admin::{table, Format};
use crate::clock::{fmt_ms, fmt_time, to_ms};
use crate::store::feeds::{self, shipped_eol};
use crate::store::{MatchContext, Store, StoreError, DB_FILE};
use crate::vuln::import::{import_path, ImportError};
use crate::vuln::matcher::{ages_evidence, match_host, FeedData, MatchedFinding};
use crate::vuln::{FeedKind, Policy, MATCH_COLLECTOR};

/// Largest inventory file `match` reads.
pub const MAX_INVENTORY_BYTES: u64 = 256 * 1024 * 1024;

/// Why a feed or match command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedCmdError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    #[error("{failed} of {total} feed files failed to import (each failed file changed nothing)")]
    ImportsFailed { failed: usize, total: usize },
    #[error("{path}: {what}")]
    Inventory { path: PathBuf, what: String },
}

/// `feed import PATH... [--kind K]`: imports each file atomically, then
/// re-matches every stored host inventory under `policy` at `now`.
pub async fn feed_import(
    store: &Store,
    paths: &[PathBuf],
    kind: Option<FeedKind>,
    now: OffsetDateTime,
    policy: Policy,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), FeedCmdError> {
    let mut failed = 0;
    let mut imported = 0;
    for p in paths {
        match import_path(store, p, kind, now).await {
            Ok(None) => writeln!(
                out,
                "skipped {}: a JSON Schema document, not feed data",
                p.display()
            )?,
            Ok(Some(r)) => {
                imported += 1;
                writeln!(
                    out,
                    "imported {} {}: {} records, {} stored, {} skipped, sha256 {}{}",
                    r.kind,
                    r.source,
                    r.records,
                    r.stored,
                    r.skipped,
                    r.sha256,
                    summary_note(&r.summary)
                )?;
            }
            Err(e) => {
                failed += 1;
                let e: ImportError = e;
                writeln!(err, "error: {e}")?;
            }
        }
    }
    if imported > 0 {
        let s = store.rematch_all(&MatchContext { now, policy }).await?;
        writeln!(
            out,
            "re-matched {} host inventor{}: {} open finding{} from feeds",
            s.hosts,
            if s.hosts == 1 { "y" } else { "ies" },
            s.findings,
            if s.findings == 1 { "" } else { "s" }
        )?;
    }
    if failed > 0 {
        return Err(FeedCmdError::ImportsFailed {
            failed,
            total: paths.len(),
        });
    }
    Ok(())
}

fn summary_note(summary: &Value) -> String {
    let n = |k: &str| summary.get(k).and_then(Value::as_u64).unwrap_or(0);
    let mut parts = Vec::new();
    if n("unparseable_versions") > 0 {
        parts.push(format!(
            "{} version strings the distribution's comparator refuses (their ranges are never matched)",
            n("unparseable_versions")
        ));
    }
    if n("withdrawn") > 0 {
        parts.push(format!("{} withdrawn (never matched)", n("withdrawn")));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("; {}", parts.join("; "))
    }
}

fn age_days(now: OffsetDateTime, ms: i64) -> i64 {
    (to_ms(now) - ms).max(0) / 86_400_000
}

/// `feed list`: every import, newest first, with its age.
pub async fn feed_list(
    store: &Store,
    format: Format,
    now: OffsetDateTime,
    out: &mut dyn Write,
) -> Result<(), FeedCmdError> {
    let imports = store.list_imports().await?;
    match format {
        Format::Json => {
            let v: Vec<Value> = imports
                .iter()
                .map(|r| {
                    json!({
                        "id": r.id, "kind": r.kind, "source": r.source, "sha256": r.sha256,
                        "records": r.records, "stored": r.stored, "skipped": r.skipped,
                        "feed_date": r.feed_date.map(fmt_ms),
                        "imported_at": fmt_ms(r.imported_at),
                        "age_days": age_days(now, r.imported_at),
                        "summary": r.summary,
                    })
                })
                .collect();
            writeln!(out, "{}", Value::Array(v))?;
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = imports
                .iter()
                .map(|r| {
                    vec![
                        r.kind.to_string(),
                        fmt_ms(r.imported_at),
                        format!("{} d", age_days(now, r.imported_at)),
                        r.records.to_string(),
                        r.stored.to_string(),
                        r.skipped.to_string(),
                        r.sha256.chars().take(12).collect(),
                        r.source.clone(),
                    ]
                })
                .collect();
            table(
                out,
                &[
                    "KIND", "IMPORTED", "AGE", "RECORDS", "STORED", "SKIPPED", "SHA256", "SOURCE",
                ],
                &rows,
            )?;
        }
    }
    Ok(())
}

/// Reads the host assets of an inventory: a `trustwatch.scan/v1` (or
/// report) document's `host` assets, or one bare host asset.
pub fn read_inventory(path: &Path) -> Result<(Vec<Asset>, Option<String>), FeedCmdError> {
    let bad = |what: String| FeedCmdError::Inventory {
        path: path.to_owned(),
        what,
    };
    let f = std::fs::File::open(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let mut bytes = Vec::new();
    f.take(MAX_INVENTORY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_INVENTORY_BYTES {
        return Err(bad(format!("larger than {MAX_INVENTORY_BYTES} bytes")));
    }
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    let agent_version = v
        .get("agent_version")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let assets: Vec<Value> = match (v.get("assets"), v.get("kind")) {
        (Some(Value::Array(a)), _) => a.clone(),
        (None, Some(_)) => vec![v.clone()],
        _ => {
            return Err(bad(
                "expected a trustwatch.scan/v1 document (with `assets`) or a host asset".into(),
            ))
        }
    };
    let mut hosts = Vec::new();
    for a in assets {
        let asset: Asset = match serde_json::from_value(a) {
            Ok(a) => a,
            Err(e) => return Err(bad(format!("an asset does not read: {e}"))),
        };
        if asset.kind == trustwatch_common::AssetKind::Host {
            hosts.push(asset);
        }
    }
    if hosts.is_empty() {
        return Err(bad("no host asset in the inventory".into()));
    }
    Ok((hosts, agent_version))
}

/// The feed data for `hosts` from the data dir, without creating a store
/// there: a missing database means no imported feeds (end-of-life dates
/// then come from the shipped snapshot).
async fn feed_data(
    data_dir: &Path,
    hosts: &[&HostAsset],
    policy: &Policy,
) -> Result<(FeedData, bool), FeedCmdError> {
    if !data_dir.join(DB_FILE).exists() {
        let mut data = FeedData::default();
        for r in &shipped_eol()?.entries {
            data.eol
                .insert((r.os.clone(), r.release.clone()), r.clone());
        }
        data.ages = feeds::shipped_ages()?;
        return Ok((data, false));
    }
    let store = Store::open_in(data_dir).await?;
    let mut conn = store.pool().acquire().await.map_err(StoreError::from)?;
    let data = feeds::load_feed_data(&mut conn, hosts, policy).await?;
    drop(conn);
    store.close().await;
    Ok((data, true))
}

/// `match INVENTORY.json`: matches the inventory's hosts against the
/// imported feeds and prints `trustwatch.scan/v1`; stores nothing.
pub async fn match_inventory(
    data_dir: &Path,
    inventory: &Path,
    format: Format,
    now: OffsetDateTime,
    policy: Policy,
    out: &mut dyn Write,
) -> Result<(), FeedCmdError> {
    let (assets, agent_version) = read_inventory(inventory)?;
    let mut errors = Vec::new();
    let mut hosts = Vec::new();
    for a in &assets {
        match HostAsset::from_asset(a) {
            Some(h) => hosts.push(h),
            None => errors.push(CollectorError {
                collector: MATCH_COLLECTOR.into(),
                target: Some(a.id.clone()),
                reason: "the host asset carries no readable inventory (os, kernel, packages)"
                    .into(),
            }),
        }
    }
    let refs: Vec<&HostAsset> = hosts.iter().collect();
    let (data, have_store) = feed_data(data_dir, &refs, &policy).await?;
    if !have_store {
        errors.push(CollectorError {
            collector: MATCH_COLLECTOR.into(),
            target: None,
            reason: format!(
                "no feeds imported in {} (no database): packages were not matched",
                data_dir.display()
            ),
        });
    }
    let mut findings: Vec<Finding> = Vec::new();
    for h in &hosts {
        let o = match_host(h, &data, now, &policy);
        findings.extend(o.findings.into_iter().map(MatchedFinding::into_finding));
        if o.skipped_ranges > 0 {
            errors.push(CollectorError {
                collector: MATCH_COLLECTOR.into(),
                target: Some(h.id.clone()),
                reason: format!(
                    "{} advisory ranges skipped: a version in them does not parse",
                    o.skipped_ranges
                ),
            });
        }
        for n in o.notes {
            errors.push(CollectorError {
                collector: MATCH_COLLECTOR.into(),
                target: Some(h.id.clone()),
                reason: n,
            });
        }
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.asset.cmp(&b.asset))
            .then_with(|| a.code.cmp(&b.code))
            .then_with(|| a.subject.cmp(&b.subject))
    });
    let ages = ages_evidence(&data.ages, now);
    match format {
        Format::Json => {
            let doc = ScanDocument {
                schema: SCAN_SCHEMA.to_owned(),
                agent_version: agent_version
                    .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned()),
                started_at: now,
                finished_at: now,
                assets,
                findings,
                errors,
            };
            let mut v = serde_json::to_value(&doc).map_err(std::io::Error::other)?;
            if let Value::Object(m) = &mut v {
                m.insert("feeds".into(), ages);
                m.insert(
                    "policy".into(),
                    json!({"ubuntu_pro": policy.ubuntu_pro, "windows_esu": policy.windows_esu}),
                );
            }
            let text = serde_json::to_string_pretty(&v).map_err(std::io::Error::other)?;
            writeln!(out, "{text}")?;
        }
        Format::Table => print_table(out, &findings, &errors, &ages, now)?,
    }
    Ok(())
}

fn detail(f: &Finding) -> String {
    let e = &f.evidence;
    let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let mut parts = Vec::new();
    if let Some(v) = e.get("installed_version").and_then(Value::as_str) {
        let mut p = format!("installed {v}");
        if let Some(fix) = e.get("fixed_version").and_then(Value::as_str) {
            p.push_str(&format!(", fixed {fix}"));
        }
        parts.push(p);
        let cves: Vec<&str> = e
            .get("cves")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let advisories: Vec<&str> = e
            .get("advisories")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        parts.push(advisories.join(" "));
        if !cves.is_empty() {
            let shown: Vec<&str> = cves.iter().take(4).copied().collect();
            let more = if cves.len() > 4 {
                format!(" +{}", cves.len() - 4)
            } else {
                String::new()
            };
            parts.push(format!("{}{more}", shown.join(" ")));
        }
        if e.pointer("/kev/listed").and_then(Value::as_bool) == Some(true) {
            parts.push("KEV".into());
        }
        if let Some(score) = e.pointer("/epss/score").and_then(Value::as_f64) {
            parts.push(format!("EPSS {score:.3}"));
        }
    } else if !s("support_end").is_empty() {
        parts.push(format!(
            "support ends {} ({})",
            s("support_end"),
            s("basis")
        ));
    }
    parts.retain(|p| !p.is_empty());
    parts.join("; ")
}

fn print_table(
    out: &mut dyn Write,
    findings: &[Finding],
    errors: &[CollectorError],
    ages: &Value,
    now: OffsetDateTime,
) -> std::io::Result<()> {
    let mut feeds: BTreeMap<String, String> = BTreeMap::new();
    if let Value::Object(m) = ages {
        for (k, v) in m {
            let age = v
                .get("age_days")
                .and_then(Value::as_i64)
                .map_or("?".to_owned(), |d| format!("{d} d"));
            let src = v.get("source").and_then(Value::as_str).unwrap_or("");
            feeds.insert(k.clone(), format!("{k} {age} old ({src})"));
        }
    }
    writeln!(out, "matched at {}", fmt_time(now))?;
    if feeds.is_empty() {
        writeln!(out, "feeds: none imported")?;
    } else {
        writeln!(
            out,
            "feeds: {}",
            feeds.into_values().collect::<Vec<_>>().join(", ")
        )?;
    }
    if findings.is_empty() {
        writeln!(out, "no findings")?;
    } else {
        let rows: Vec<Vec<String>> = findings
            .iter()
            .map(|f| {
                vec![
                    f.severity.to_string(),
                    f.code.to_string(),
                    f.asset.clone(),
                    f.subject.clone(),
                    detail(f),
                ]
            })
            .collect();
        table(
            out,
            &["SEVERITY", "CODE", "ASSET", "SUBJECT", "DETAIL"],
            &rows,
        )?;
    }
    for e in errors {
        match &e.target {
            Some(t) => writeln!(out, "note: {t}: {}", e.reason)?,
            None => writeln!(out, "note: {}", e.reason)?,
        }
    }
    Ok(())
}
