//! The importers read every real feed sample in `shared/samples/` without
//! error and with exactly the counts the files contain (counted here from
//! the files themselves).
#![forbid(unsafe_code)]

mod common;

use std::path::{Path, PathBuf};

use common::{samples, zipw::write_zip};
use serde_json::Value;
use trustwatch_server::clock::parse_rfc3339;
use trustwatch_server::store::Store;
use trustwatch_server::vuln::import::import_path;
use trustwatch_server::vuln::FeedKind;

const KEPT: [&str; 6] = [
    "Debian",
    "Ubuntu",
    "Alpine",
    "AlmaLinux",
    "Rocky Linux",
    "Red Hat",
];

async fn store() -> (tempfile::TempDir, Store) {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open_in(d.path()).await.unwrap();
    (d, s)
}

fn now() -> time::OffsetDateTime {
    parse_rfc3339("2026-09-30T00:00:00Z").unwrap()
}

fn osv_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(samples().join("osv"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    v
}

/// Affected entries with a package in a kept ecosystem and an ECOSYSTEM
/// range or a versions list.
fn kept_entries(doc: &Value) -> usize {
    doc["affected"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| {
                    let eco = e["package"]["ecosystem"].as_str().unwrap_or("");
                    let base = eco.split(':').next().unwrap_or("");
                    KEPT.contains(&base)
                        && (e["ranges"]
                            .as_array()
                            .is_some_and(|r| r.iter().any(|r| r["type"] == "ECOSYSTEM"))
                            || e["versions"].as_array().is_some_and(|v| !v.is_empty()))
                })
                .count()
        })
        .unwrap_or(0)
}

fn expected_osv() -> (usize, usize, usize) {
    let files = osv_files();
    let docs: Vec<Value> = files
        .iter()
        .map(|f| serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap())
        .collect();
    let in_scope = docs.iter().filter(|d| kept_entries(d) > 0).count();
    let entries = docs.iter().map(kept_entries).sum();
    (files.len(), in_scope, entries)
}

async fn count(s: &Store, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(s.pool())
        .await
        .unwrap()
}

async fn cves_of(s: &Store, id: &str) -> Vec<String> {
    let c: String = sqlx::query_scalar("SELECT cves FROM osv_advisories WHERE id = $1")
        .bind(id)
        .fetch_one(s.pool())
        .await
        .unwrap();
    serde_json::from_str(&c).unwrap()
}

#[tokio::test]
async fn the_osv_sample_directory_imports_every_record_and_skips_the_schema_dir() {
    let (files, in_scope, entries) = expected_osv();
    assert_eq!(files, 17, "the sample directory holds 17 records");
    let (_d, s) = store().await;
    let rec = import_path(&s, &samples().join("osv"), None, now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.kind, FeedKind::Osv);
    assert_eq!(rec.records, files as u64);
    assert_eq!(rec.stored, in_scope as u64);
    assert_eq!(rec.skipped, (files - in_scope) as u64);
    assert_eq!(count(&s, "osv_advisories").await, in_scope as i64);
    assert_eq!(count(&s, "osv_affected").await, entries as i64);
    assert_eq!(
        rec.summary["withdrawn"], 0,
        "the withdrawn sample is RubyGems"
    );
    // Every place a CVE can hide.
    assert_eq!(cves_of(&s, "DSA-3029-1").await, ["CVE-2014-3616"]);
    assert_eq!(cves_of(&s, "DLA-3008-1").await, ["CVE-2022-1292"]);
    assert!(cves_of(&s, "DLA-3051-1").await.is_empty());
    assert_eq!(cves_of(&s, "USN-6859-1").await, ["CVE-2024-6387"]);
    assert_eq!(cves_of(&s, "ALSA-2026:25239").await.len(), 15);
    assert_eq!(cves_of(&s, "RHSA-2024:4546").await, ["CVE-2023-45288"]);
    // The GIT-only entry without a package is skipped.
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM osv_affected WHERE advisory_id = 'CVE-2018-5407'")
            .fetch_one(s.pool())
            .await
            .unwrap();
    assert_eq!(n, 6);
    let (eco, raw): (String, String) = sqlx::query_as(
        "SELECT ecosystem, ecosystem_raw FROM osv_affected WHERE advisory_id = 'RHSA-2024:4546' AND seq = 0",
    )
    .fetch_one(s.pool())
    .await
    .unwrap();
    assert_eq!(
        (eco.as_str(), raw.as_str()),
        ("Red Hat:rhel_aus:8.6", "Red Hat:rhel_aus:8.6::appstream")
    );
}

#[tokio::test]
async fn the_osv_samples_import_alike_from_a_zip_and_one_by_one() {
    let (files, in_scope, entries) = expected_osv();
    let d = tempfile::tempdir().unwrap();
    let zip = d.path().join("all.zip");
    let contents: Vec<(String, Vec<u8>)> = osv_files()
        .iter()
        .map(|f| {
            (
                f.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(f).unwrap(),
            )
        })
        .collect();
    let refs: Vec<(&str, &[u8])> = contents
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    write_zip(&zip, &refs);
    let (_d1, s) = store().await;
    let rec = import_path(&s, &zip, None, now()).await.unwrap().unwrap();
    assert_eq!(rec.kind, FeedKind::Osv);
    assert_eq!((rec.records, rec.stored), (files as u64, in_scope as u64));
    assert_eq!(count(&s, "osv_affected").await, entries as i64);

    let (_d2, s) = store().await;
    for f in osv_files() {
        let rec = import_path(&s, &f, None, now()).await.unwrap().unwrap();
        assert_eq!(rec.records, 1, "{}", f.display());
    }
    assert_eq!(count(&s, "osv_advisories").await, in_scope as i64);
    assert_eq!(count(&s, "osv_affected").await, entries as i64);
}

#[tokio::test]
async fn a_re_import_replaces_a_record_only_when_it_is_newer() {
    let (_d, s) = store().await;
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(samples().join("osv/DLA-3008-1.json")).unwrap();
    let p = dir.path().join("DLA-3008-1.json");
    std::fs::write(&p, &original).unwrap();
    import_path(&s, &p, None, now()).await.unwrap();
    let fixed = |s: &Store| {
        let pool = s.pool().clone();
        async move {
            let r: String = sqlx::query_scalar(
                "SELECT ranges FROM osv_affected WHERE advisory_id = 'DLA-3008-1'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            r
        }
    };
    assert!(fixed(&s).await.contains("1.1.0l-1~deb9u6"));
    // Older `modified`: ignored.
    let older = original
        .replace("2026-03-09T01:23:33.375630Z", "2020-01-01T00:00:00Z")
        .replace("1.1.0l-1~deb9u6", "1.1.0l-1~deb9u7");
    std::fs::write(&p, &older).unwrap();
    let rec = import_path(&s, &p, None, now()).await.unwrap().unwrap();
    assert_eq!((rec.stored, rec.skipped), (0, 1));
    assert!(fixed(&s).await.contains("1.1.0l-1~deb9u6"));
    // Newer: replaces, affected rows included.
    let newer = original
        .replace("2026-03-09T01:23:33.375630Z", "2026-04-01T00:00:00Z")
        .replace("1.1.0l-1~deb9u6", "1.1.0l-1~deb9u7");
    std::fs::write(&p, &newer).unwrap();
    let rec = import_path(&s, &p, None, now()).await.unwrap().unwrap();
    assert_eq!((rec.stored, rec.skipped), (1, 0));
    assert!(fixed(&s).await.contains("1.1.0l-1~deb9u7"));
    assert_eq!(count(&s, "osv_affected").await, 1);
}

#[tokio::test]
async fn the_kev_catalogue_imports_every_entry() {
    let path = samples().join("kev/known_exploited_vulnerabilities.json");
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let listed = doc["vulnerabilities"].as_array().unwrap().len();
    assert_eq!(doc["count"].as_u64().unwrap(), listed as u64);
    let (_d, s) = store().await;
    let rec = import_path(&s, &path, None, now()).await.unwrap().unwrap();
    assert_eq!(rec.kind, FeedKind::Kev);
    assert_eq!(rec.records, listed as u64);
    assert_eq!(count(&s, "kev").await, listed as i64);
    assert_eq!(rec.summary["catalog_version"], doc["catalogVersion"]);
    let ransom: String =
        sqlx::query_scalar("SELECT ransomware FROM kev WHERE cve = 'CVE-2025-48384'")
            .fetch_one(s.pool())
            .await
            .unwrap();
    assert_eq!(ransom, "Unknown");
    // Its schema beside it is recognised and skipped, not imported.
    let schema = samples().join("kev/known_exploited_vulnerabilities_schema.json");
    assert!(import_path(&s, &schema, None, now())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn the_epss_excerpt_imports_every_row() {
    let path = samples().join("epss/epss_scores-2026-09-29.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let rows = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("cve,") && !l.trim().is_empty())
        .count();
    let (_d, s) = store().await;
    let rec = import_path(&s, &path, None, now()).await.unwrap().unwrap();
    assert_eq!(rec.kind, FeedKind::Epss);
    assert_eq!(rec.records, rows as u64);
    assert_eq!(count(&s, "epss").await, rows as i64);
    assert_eq!(rec.summary["model_version"], "v2026.06.15");
    assert_eq!(
        rec.feed_date,
        Some(trustwatch_server::clock::to_ms(
            parse_rfc3339("2026-09-29T12:00:22Z").unwrap()
        ))
    );
    let p: f64 = sqlx::query_scalar("SELECT percentile FROM epss WHERE cve = 'CVE-1999-0300'")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert!((p - 0.65437).abs() < 1e-9);
    // The same scores gzip-compressed, as FIRST publishes them.
    let d = tempfile::tempdir().unwrap();
    let gz = d.path().join("epss.csv.gz");
    std::fs::write(&gz, common::gzip(text.as_bytes())).unwrap();
    let rec = import_path(&s, &gz, None, now()).await.unwrap().unwrap();
    assert_eq!(rec.records, rows as u64);
    assert_eq!(count(&s, "epss").await, rows as i64);
}

fn release_cycles(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| l.trim_start().starts_with("- releaseCycle:"))
        .count()
}

#[tokio::test]
async fn all_nine_end_of_life_samples_are_read() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(samples().join("eol"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 9);
    let (_d, s) = store().await;
    let mut total = 0;
    let mut schemas = 0;
    for f in &files {
        match import_path(&s, f, None, now()).await.unwrap() {
            Some(rec) => {
                assert_eq!(rec.kind, FeedKind::Eol);
                assert_eq!(rec.records as usize, release_cycles(f), "{}", f.display());
                total += rec.records;
            }
            None => {
                assert_eq!(f.file_name().unwrap(), "product-schema.json");
                schemas += 1;
            }
        }
    }
    assert_eq!(schemas, 1);
    assert_eq!(count(&s, "eol_releases").await, total as i64);
    let (std_end, ext_end, kind): (String, String, String) = sqlx::query_as(
        "SELECT standard_end, extended_end, extended_kind FROM eol_releases WHERE os = 'debian' AND release = '12'",
    )
    .fetch_one(s.pool())
    .await
    .unwrap();
    assert_eq!(
        (std_end.as_str(), ext_end.as_str(), kind.as_str()),
        ("2026-07-11", "2028-06-30", "lts")
    );
    let (std_end, kind): (String, Option<String>) = sqlx::query_as(
        "SELECT standard_end, extended_kind FROM eol_releases WHERE os = 'windows-server' AND release = '2012-r2'",
    )
    .fetch_one(s.pool())
    .await
    .unwrap();
    assert_eq!(
        (std_end.as_str(), kind.as_deref()),
        ("2023-10-10", Some("esu"))
    );
}

#[tokio::test]
async fn the_shipped_end_of_life_snapshot_imports_as_a_feed_too() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/eol.json");
    let (_d, s) = store().await;
    let rec = import_path(&s, &path, None, now()).await.unwrap().unwrap();
    assert_eq!(rec.kind, FeedKind::Eol);
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        rec.records as usize,
        doc["entries"].as_array().unwrap().len()
    );
}
