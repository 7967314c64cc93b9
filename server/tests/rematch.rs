//! Server-side findings: a report's host inventory is matched before the
//! 202, a feed import re-matches stored inventories without a new report,
//! and findings of collector `match` resolve when they no longer match.
#![forbid(unsafe_code)]

mod common;

use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use common::{report, Harness};
use serde_json::{json, Value};
use trustwatch_server::clock::{parse_rfc3339, Clock};
use trustwatch_server::feedcmd;
use trustwatch_server::vuln::Policy;

fn debian_host(id: &str, release: &str, openssl: &str) -> Value {
    json!({
        "kind": "host", "id": id,
        "os": {"id": "debian", "version_id": release, "codename": "x", "name": "Debian"},
        "kernel": "6.1.0-26-amd64",
        "packages": [
            {"manager": "dpkg", "name": "libssl3", "version": openssl, "source_name": "openssl",
             "source_version": openssl, "arch": "amd64"},
            {"manager": "dpkg", "name": "bash", "version": "5.2.15-2+b7", "source_name": "bash",
             "source_version": "5.2.15-2", "arch": "amd64"}
        ]
    })
}

fn osv_file(dir: &Path, name: &str, modified: &str, fixed: &str) -> PathBuf {
    let p = dir.join(name);
    let doc = json!({
        "id": "DSA-9500-1", "modified": modified, "aliases": ["CVE-2024-5535"],
        "affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]
    });
    std::fs::write(&p, doc.to_string()).unwrap();
    p
}

async fn import(h: &Harness, paths: &[PathBuf]) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    feedcmd::feed_import(
        h.store(),
        paths,
        None,
        Clock::now(h.clock.as_ref()),
        Policy::default(),
        &mut out,
        &mut err,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&err)));
}

/// (code, subject, status, collector) of a host's findings.
async fn findings(h: &Harness, host: &str) -> Vec<(String, String, String, String)> {
    sqlx::query_as(
        "SELECT code, subject, status, collector FROM findings WHERE asset_id = $1 ORDER BY code, subject",
    )
    .bind(host)
    .fetch_all(h.store().pool())
    .await
    .unwrap()
}

fn f(code: &str, subject: &str, status: &str) -> (String, String, String, String) {
    (code.into(), subject.into(), status.into(), "match".into())
}

#[tokio::test]
async fn a_feed_import_raises_and_then_resolves_findings_without_a_new_report() {
    let h = Harness::new().await;
    h.org("RX1").await;
    let agent = h.agent("RX1").await;
    let r = report(
        agent.agent_id,
        "2025-10-01T11:00:00Z",
        &["host"],
        vec![debian_host("pacs01", "12", "3.0.11-1~deb12u2")],
        vec![],
    );
    let (status, v) = h.post_report(&agent, &r).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert!(findings(&h, "pacs01").await.is_empty(), "no feeds yet");

    let d = tempfile::tempdir().unwrap();
    import(
        &h,
        &[osv_file(
            d.path(),
            "a.json",
            "2025-01-01T00:00:00Z",
            "3.0.13-1~deb12u1",
        )],
    )
    .await;
    assert_eq!(
        findings(&h, "pacs01").await,
        [f("patch.package.vulnerable", "openssl", "open")]
    );
    let evidence: String =
        sqlx::query_scalar("SELECT evidence FROM findings WHERE asset_id = 'pacs01'")
            .fetch_one(h.store().pool())
            .await
            .unwrap();
    let evidence: Value = serde_json::from_str(&evidence).unwrap();
    assert_eq!(evidence["fixed_version"], "3.0.13-1~deb12u1");
    assert_eq!(evidence["binaries"], json!(["libssl3"]));
    // Feed ages are stated once, where reports read them (their feed
    // section), not repeated in every finding's evidence.
    assert!(evidence.get("feed_age").is_none(), "{evidence}");
    let ages = h.store().feed_ages().await.unwrap();
    assert!(ages["osv"].imported_at.is_some(), "{ages:?}");

    // A KEV catalogue naming the CVE makes it critical, still without a report.
    let kev = d.path().join("kev.json");
    std::fs::write(
        &kev,
        json!({"count": 1, "vulnerabilities": [{"cveID": "CVE-2024-5535", "dateAdded": "2025-09-01",
            "knownRansomwareCampaignUse": "Unknown"}]})
        .to_string(),
    )
    .unwrap();
    import(&h, &[kev]).await;
    let sev: String = sqlx::query_scalar("SELECT severity FROM findings WHERE asset_id = 'pacs01'")
        .fetch_one(h.store().pool())
        .await
        .unwrap();
    assert_eq!(sev, "critical");

    // A newer record whose fix the host already has resolves it.
    import(
        &h,
        &[osv_file(
            d.path(),
            "b.json",
            "2025-06-01T00:00:00Z",
            "3.0.11-1~deb12u2",
        )],
    )
    .await;
    assert_eq!(
        findings(&h, "pacs01").await,
        [f("patch.package.vulnerable", "openssl", "resolved")]
    );
    // An older copy of the record changes nothing.
    import(
        &h,
        &[osv_file(
            d.path(),
            "c.json",
            "2025-01-01T00:00:00Z",
            "3.0.13-1~deb12u1",
        )],
    )
    .await;
    assert_eq!(
        findings(&h, "pacs01").await,
        [f("patch.package.vulnerable", "openssl", "resolved")]
    );
}

#[tokio::test]
async fn ingest_matches_before_answering_and_a_newer_report_resolves() {
    let h = Harness::new().await;
    h.org("RX1").await;
    let agent = h.agent("RX1").await;
    let d = tempfile::tempdir().unwrap();
    import(
        &h,
        &[osv_file(
            d.path(),
            "a.json",
            "2025-01-01T00:00:00Z",
            "3.0.13-1~deb12u1",
        )],
    )
    .await;

    let post = |at: &str, version: &str| {
        report(
            agent.agent_id,
            at,
            &["host"],
            vec![
                debian_host("pacs01", "12", version),
                debian_host("old01", "9", "1.1.0l-1~deb9u5"),
            ],
            vec![],
        )
    };
    let (status, _) = h
        .post_report(&agent, &post("2025-10-01T10:00:00Z", "3.0.11-1~deb12u2"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        findings(&h, "pacs01").await,
        [f("patch.package.vulnerable", "openssl", "open")]
    );
    // Debian 9 (LTS ended 2022-07-01) is end-of-life at the harness clock.
    assert_eq!(
        findings(&h, "old01").await,
        [f("patch.os.eol", "debian 9", "open")]
    );

    // Upgraded: the next report resolves it.
    let (status, _) = h
        .post_report(&agent, &post("2025-10-01T11:00:00Z", "3.0.13-1~deb12u1"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        findings(&h, "pacs01").await,
        [f("patch.package.vulnerable", "openssl", "resolved")]
    );
    // A late report collected before that one does not reopen it.
    let (status, _) = h
        .post_report(&agent, &post("2025-10-01T09:00:00Z", "3.0.11-1~deb12u2"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        findings(&h, "pacs01").await,
        [f("patch.package.vulnerable", "openssl", "resolved")]
    );
    // Still at the harness time: the EOL finding stays open.
    assert_eq!(
        findings(&h, "old01").await,
        [f("patch.os.eol", "debian 9", "open")]
    );
}

#[tokio::test]
async fn an_agent_cannot_raise_or_resolve_match_findings() {
    let h = Harness::new().await;
    h.org("RX1").await;
    let agent = h.agent("RX1").await;
    h.clock.set(parse_rfc3339("2025-10-01T12:00:00Z").unwrap());
    let mut claimed = common::finding("patch.package.vulnerable", "old01", "openssl", json!({}));
    claimed["collector"] = json!("match");
    let r = report(
        agent.agent_id,
        "2025-10-01T10:00:00Z",
        &["host", "match"],
        vec![debian_host("old01", "9", "1.1.0l-1~deb9u5")],
        vec![claimed],
    );
    let (status, v) = h.post_report(&agent, &r).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let rows = findings(&h, "old01").await;
    assert_eq!(
        rows,
        [
            f("patch.os.eol", "debian 9", "open"),
            (
                "patch.package.vulnerable".into(),
                "openssl".into(),
                "open".into(),
                "host".into()
            ),
        ]
    );
}

#[tokio::test]
async fn an_import_rematches_every_host_of_every_organisation_page_by_page() {
    // More hosts than one page of keys (256), split over two organisations
    // so that a page boundary falls inside one and between them.
    let h = Harness::new().await;
    for (org, n) in [("RX1", 300), ("RX2", 230)] {
        h.org(org).await;
        let agent = h.agent(org).await;
        let hosts: Vec<Value> = (0..n)
            .map(|i| debian_host(&format!("h{i:04}"), "12", "3.0.11-1~deb12u2"))
            .collect();
        let r = report(
            agent.agent_id,
            "2025-10-01T11:00:00Z",
            &["host"],
            hosts,
            vec![],
        );
        let (status, v) = h.post_report(&agent, &r).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    }
    let d = tempfile::tempdir().unwrap();
    import(
        &h,
        &[osv_file(
            d.path(),
            "a.json",
            "2025-01-01T00:00:00Z",
            "3.0.13-1~deb12u1",
        )],
    )
    .await;
    let per_org: Vec<(String, i64)> = sqlx::query_as(
        "SELECT org, COUNT(DISTINCT asset_id) FROM findings \
         WHERE code = 'patch.package.vulnerable' AND status = 'open' GROUP BY org ORDER BY org",
    )
    .fetch_all(h.store().pool())
    .await
    .unwrap();
    assert_eq!(per_org, [("RX1".into(), 300), ("RX2".into(), 230)]);
}
