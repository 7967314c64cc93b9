//! Corrupt and hostile feed files: each gives exit status 1 and a message
//! naming the file and what is wrong, leaves the store exactly as it was,
//! and never panics.
#![forbid(unsafe_code)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{feed_state, samples, zipw::write_zip};
use trustwatch_server::store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_trustwatch-server");
const NOW: &str = "2026-09-30T00:00:00Z";

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("TRUSTWATCH_NOW", NOW)
        .env("RUST_LOG", "error")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A data dir holding a baseline of every kind of feed.
fn baseline() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let s = samples();
    let osv = s.join("osv");
    let kev = s.join("kev/known_exploited_vulnerabilities.json");
    let epss = s.join("epss/epss_scores-2026-09-29.csv");
    let eol = s.join("eol/debian.md");
    let o = run(
        d.path(),
        &[
            "feed",
            "import",
            osv.to_str().unwrap(),
            kev.to_str().unwrap(),
            epss.to_str().unwrap(),
            eol.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    d
}

async fn state(dir: &Path) -> String {
    let s = Store::open_in(dir).await.unwrap();
    let st = feed_state(&s).await;
    s.close().await;
    st
}

/// Imports `file` into a baseline store and checks the refusal.
async fn refused(file: &Path, extra: &[&str], needle: &str) {
    let d = baseline();
    let before = state(d.path()).await;
    let mut args = vec!["feed", "import", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = run(d.path(), &args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&file.display().to_string()),
        "names the file: {err}"
    );
    assert!(err.contains(needle), "says {needle:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(state(d.path()).await, before, "the store changed");
}

fn record(id: &str, fixed: &str) -> String {
    format!(
        r#"{{"id":"{id}","modified":"2025-01-01T00:00:00Z","affected":[{{"package":{{"ecosystem":"Debian:12","name":"openssl"}},"ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}},{{"fixed":"{fixed}"}}]}}]}}]}}"#
    )
}

fn tmp(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    (d, p)
}

#[tokio::test]
async fn a_broken_zip_is_refused_and_stores_nothing() {
    let (_t, p) = tmp("all.zip", b"PK\x03\x04 this is not really an archive");
    refused(&p, &[], "ZIP").await;
}

#[tokio::test]
async fn a_truncated_zip_is_refused_and_stores_nothing() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("all.zip");
    let a = record("DSA-9100-1", "9.9-1");
    let b = record("DSA-9101-1", "9.9-2");
    write_zip(
        &p,
        &[
            ("DSA-9100-1.json", a.as_bytes()),
            ("DSA-9101-1.json", b.as_bytes()),
        ],
    );
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 30]).unwrap();
    refused(&p, &[], "truncated").await;
}

#[tokio::test]
async fn a_zip_whose_last_record_is_bad_stores_none_of_its_records() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("all.zip");
    let good = record("DSA-9102-1", "9.9-1");
    let bad = record("DSA-9103-1", "9.9 -1");
    write_zip(
        &p,
        &[("a.json", good.as_bytes()), ("b.json", bad.as_bytes())],
    );
    refused(&p, &[], "DSA-9103-1").await;
}

#[tokio::test]
async fn a_zip_bomb_entry_over_the_record_cap_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("all.zip");
    let mut bomb = b"{\"id\":\"X\",\"modified\":\"2025-01-01T00:00:00Z\",\"details\":\"".to_vec();
    bomb.resize(17 * 1024 * 1024, b'a');
    bomb.extend_from_slice(b"\"}");
    write_zip(&p, &[("bomb.json", &bomb)]);
    refused(&p, &[], "cap").await;
}

#[tokio::test]
async fn a_deeply_nested_json_bomb_is_refused() {
    // Deep in a field the reader otherwise ignores, in a file and in a zip.
    let mut doc = String::from(r#"{"id":"X","modified":"2025-01-01T00:00:00Z","details":"#);
    doc.push_str(&"[".repeat(100_000));
    doc.push_str(&"]".repeat(100_000));
    doc.push('}');
    let (_t, p) = tmp("bomb.json", doc.as_bytes());
    refused(&p, &[], "nested deeper").await;
    let t = tempfile::tempdir().unwrap();
    let z = t.path().join("all.zip");
    write_zip(&z, &[("bomb.json", doc.as_bytes())]);
    refused(&z, &[], "nested deeper").await;
    let kev = format!(
        r#"{{"vulnerabilities": [], "notes": {}{}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let (_t, p) = tmp("kev.json", kev.as_bytes());
    refused(&p, &[], "nested deeper").await;
}

#[tokio::test]
async fn a_huge_array_is_refused_while_it_is_read() {
    let versions = vec!["\"1.0-1\""; 150_000].join(",");
    let doc = format!(
        r#"{{"id":"DSA-9104-1","modified":"2025-01-01T00:00:00Z","affected":[{{"package":{{"ecosystem":"Debian:12","name":"x"}},"versions":[{versions}]}}]}}"#
    );
    let (_t, p) = tmp("huge.json", doc.as_bytes());
    refused(&p, &[], "longer than").await;
}

#[tokio::test]
async fn a_record_over_the_cap_is_refused() {
    let mut doc = b"{\"id\":\"X\",\"modified\":\"2025-01-01T00:00:00Z\",\"details\":\"".to_vec();
    doc.resize(17 * 1024 * 1024, b'a');
    doc.extend_from_slice(b"\"}");
    let (_t, p) = tmp("big.json", &doc);
    refused(&p, &[], "cap").await;
}

#[tokio::test]
async fn an_osv_file_with_garbage_versions_is_refused() {
    for (name, doc, needle) in [
        (
            "num.json",
            record("DSA-9105-1", "x").replace("\"x\"", "42"),
            "invalid type",
        ),
        ("space.json", record("DSA-9106-1", "1.0 beta"), "whitespace"),
        ("nul.json", record("DSA-9107-1", "1.0\\u0000"), "control"),
        ("empty.json", record("DSA-9108-1", ""), "empty"),
        (
            "twokinds.json",
            record("DSA-9109-1", "1").replace(r#"{"fixed":"1"}"#, r#"{"fixed":"1","limit":"2"}"#),
            "exactly one",
        ),
    ] {
        let (_t, p) = tmp(name, doc.as_bytes());
        refused(&p, &[], needle).await;
    }
}

#[tokio::test]
async fn a_directory_with_one_garbage_record_imports_none_of_it() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("a.json"), record("DSA-9110-1", "9.9-1")).unwrap();
    std::fs::write(
        t.path().join("b.json"),
        "{\"id\": \"DSA-9111-1\", \"modified\": 7}",
    )
    .unwrap();
    refused(t.path(), &[], "b.json").await;
}

#[tokio::test]
async fn an_epss_csv_with_a_bad_row_is_refused_naming_the_line() {
    let text = "#model_version:v1,score_date:2026-01-01T00:00:00Z\ncve,epss,percentile\nCVE-2024-0001,0.1,0.2\nCVE-2024-0002,0.1\n";
    let (_t, p) = tmp("epss.csv", text.as_bytes());
    refused(&p, &[], "line 4").await;
    let text = "cve,epss,percentile\nCVE-2024-0001,0.1,0.2\nCVE-2024-0002,2.5,0.2\n";
    let (_t, p) = tmp("epss2.csv", text.as_bytes());
    refused(&p, &[], "between 0 and 1").await;
}

#[tokio::test]
async fn a_kev_catalogue_with_a_bad_entry_is_refused() {
    let doc = r#"{"count": 1, "vulnerabilities": [{"cveID": "CVE-2024-0001", "dateAdded": "2024-13-45"}]}"#;
    let (_t, p) = tmp("kev.json", doc.as_bytes());
    refused(&p, &[], "dateAdded").await;
}

#[tokio::test]
async fn an_end_of_life_file_with_a_bad_date_is_refused() {
    let text =
        "---\npermalink: /debian\nreleases:\n  - releaseCycle: \"12\"\n    eol: 2026-02-30\n---\n";
    let (_t, p) = tmp("debian.md", text.as_bytes());
    refused(&p, &[], "line 5").await;
}

#[tokio::test]
async fn a_file_of_no_known_kind_is_refused_and_kind_can_be_forced() {
    let (_t, p) = tmp("notes.txt", b"hello");
    refused(&p, &[], "cannot tell").await;
    // Forcing a kind that does not fit is a clear error too.
    let epss = samples().join("epss/epss_scores-2026-09-29.csv");
    refused(&epss, &["--kind", "kev"], "not a KEV catalogue").await;
}

#[tokio::test]
async fn one_bad_file_among_good_ones_fails_alone() {
    let d = tempfile::tempdir().unwrap();
    let (_t, bad) = tmp("bad.csv", b"cve,epss,percentile\nnope\n");
    let kev = samples().join("kev/known_exploited_vulnerabilities.json");
    let o = run(
        d.path(),
        &[
            "feed",
            "import",
            bad.to_str().unwrap(),
            kev.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("bad.csv") && err.contains("1 of 2"), "{err}");
    let s = Store::open_in(d.path()).await.unwrap();
    let counts = s.feed_counts().await.unwrap();
    assert_eq!(counts["kev"], 1404);
    assert_eq!(counts["epss"], 0);
    assert_eq!(counts["feed_imports"], 1);
}
