//! `trustwatch-server match INVENTORY.json`: the findings of an inventory
//! against the feeds imported in the data dir, as `trustwatch.scan/v1` or a
//! table; nothing is stored.
#![forbid(unsafe_code)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{feed_state, samples};
use serde_json::{json, Value};
use trustwatch_server::store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_trustwatch-server");

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("TRUSTWATCH_NOW")
        .env("RUST_LOG", "error")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn inventory() -> Value {
    json!({
        "schema": "trustwatch.scan/v1", "agent_version": "0.1.0",
        "started_at": "2026-03-01T00:00:00Z", "finished_at": "2026-03-01T00:00:00Z",
        "findings": [], "errors": [],
        "assets": [
            {"kind": "host", "id": "pacs01",
             "os": {"id": "debian", "version_id": "9", "codename": "stretch", "name": "Debian GNU/Linux 9"},
             "kernel": "4.9.0-19-amd64",
             "packages": [
                {"manager": "dpkg", "name": "libssl1.1", "version": "1.1.0l-1~deb9u5", "source_name": "openssl", "source_version": "1.1.0l-1~deb9u5", "arch": "amd64"},
                {"manager": "dpkg", "name": "tzdata", "version": "2021a-0+deb9u4", "source_name": "tzdata", "source_version": "2021a-0+deb9u4", "arch": "all"},
                {"manager": "dpkg", "name": "dpkg", "version": "1.18.26", "source_name": "dpkg", "source_version": "1.18.26", "arch": "amd64"}
             ]},
            {"kind": "host", "id": "web01",
             "os": {"id": "alpine", "version_id": "3.20.3", "name": "Alpine Linux v3.20"},
             "kernel": "6.6.0",
             "packages": [
                {"manager": "apk", "name": "musl-utils", "version": "1.2.5-r0", "source_name": "musl", "source_version": "1.2.5-r0", "arch": "x86_64"}
             ]},
            {"kind": "tls_endpoint", "id": "web01:443", "grade": "A"}
        ]
    })
}

fn imported_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let s = samples();
    let o = run(
        d.path(),
        &[
            "feed",
            "import",
            s.join("osv").to_str().unwrap(),
            s.join("kev/known_exploited_vulnerabilities.json")
                .to_str()
                .unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    d
}

fn found(v: &Value) -> Vec<(String, String, String, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap().to_owned(),
                f["code"].as_str().unwrap().to_owned(),
                f["asset"].as_str().unwrap().to_owned(),
                f["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn row(sev: &str, code: &str, asset: &str, subject: &str) -> (String, String, String, String) {
    (sev.into(), code.into(), asset.into(), subject.into())
}

#[tokio::test]
async fn an_inventory_is_matched_against_the_imported_feeds_and_nothing_is_stored() {
    let d = imported_dir();
    let t = tempfile::tempdir().unwrap();
    let inv = t.path().join("inv.json");
    std::fs::write(&inv, inventory().to_string()).unwrap();
    let store = Store::open_in(d.path()).await.unwrap();
    let before = feed_state(&store).await;
    store.close().await;

    let o = run(
        d.path(),
        &[
            "match",
            inv.to_str().unwrap(),
            "--now",
            "2026-03-01T00:00:00Z",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["schema"], "trustwatch.scan/v1");
    assert_eq!(v["started_at"], "2026-03-01T00:00:00Z");
    assert_eq!(
        found(&v),
        [
            row("critical", "patch.os.eol", "pacs01", "debian 9"),
            row("high", "patch.package.vulnerable", "pacs01", "openssl"),
            row("high", "patch.package.vulnerable", "web01", "musl"),
            // Alpine 3.20 support ends 2026-04-01.
            row("medium", "patch.os.eol_soon", "web01", "alpine 3.20"),
        ]
    );
    let openssl = &v["findings"][1];
    assert_eq!(openssl["evidence"]["fixed_version"], "1.1.0l-1~deb9u6");
    assert_eq!(openssl["evidence"]["advisories"], json!(["DLA-3008-1"]));
    assert_eq!(openssl["collector"], "match");
    assert_eq!(v["findings"][0]["evidence"]["basis"], "lts");
    assert!(v["feeds"]["osv"]["imported_at"].is_string());
    assert!(v["feeds"]["kev"]["feed_date"].is_string());
    assert_eq!(v["feeds"]["eol"]["source"], "shipped");
    // Feed ages are stated once per document (`feeds`), not per finding.
    assert!(v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["evidence"].get("feed_age").is_none()));
    assert_eq!(v["assets"].as_array().unwrap().len(), 2, "the host assets");

    let o = run(
        d.path(),
        &[
            "match",
            inv.to_str().unwrap(),
            "--now",
            "2026-03-01T00:00:00Z",
            "--format",
            "table",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[1].starts_with("feeds: "), "{out}");
    assert!(lines[2].starts_with("SEVERITY"), "{out}");
    assert!(
        lines[3].starts_with("critical  patch.os.eol"),
        "worst first: {out}"
    );
    assert!(
        out.contains("installed 1.1.0l-1~deb9u5, fixed 1.1.0l-1~deb9u6"),
        "{out}"
    );

    let store = Store::open_in(d.path()).await.unwrap();
    assert_eq!(feed_state(&store).await, before, "match stored something");
}

#[tokio::test]
async fn ubuntu_pro_policy_comes_from_the_config_file() {
    let d = imported_dir();
    let t = tempfile::tempdir().unwrap();
    let inv = t.path().join("host.json");
    // A bare host asset is an inventory too.
    std::fs::write(
        &inv,
        json!({"kind": "host", "id": "old", "kernel": "3.13.0",
               "os": {"id": "ubuntu", "version_id": "14.04"},
               "packages": [{"manager": "dpkg", "name": "linux-image-generic", "version": "3.13.0-206.257",
                             "source_name": "linux", "source_version": "3.13.0-206.257", "arch": "amd64"}]})
        .to_string(),
    )
    .unwrap();
    let cfg = t.path().join("server.toml");
    std::fs::write(&cfg, "[eol]\nubuntu_pro = true\n").unwrap();
    let at = "2025-10-01T00:00:00Z";
    let o = run(d.path(), &["match", inv.to_str().unwrap(), "--now", at]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        found(&v),
        [row("critical", "patch.os.eol", "old", "ubuntu 14.04")]
    );
    let o = run(
        d.path(),
        &[
            "match",
            inv.to_str().unwrap(),
            "--now",
            at,
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    // ESM (to 2024-04-02) has ended too, but the Pro advisory now applies.
    assert_eq!(
        found(&v),
        [
            row("critical", "patch.os.eol", "old", "ubuntu 14.04"),
            row("low", "patch.package.vulnerable_unfixed", "old", "linux"),
        ]
    );
    assert_eq!(v["findings"][0]["evidence"]["basis"], "esm");
}

#[test]
fn without_imported_feeds_match_still_judges_end_of_life_and_creates_nothing() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("no-such-data-dir");
    let inv = t.path().join("inv.json");
    std::fs::write(&inv, inventory().to_string()).unwrap();
    let o = run(
        &data,
        &[
            "match",
            inv.to_str().unwrap(),
            "--now",
            "2026-03-01T00:00:00Z",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        found(&v),
        [
            row("critical", "patch.os.eol", "pacs01", "debian 9"),
            row("medium", "patch.os.eol_soon", "web01", "alpine 3.20"),
        ]
    );
    let reasons: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("no feeds imported")),
        "{reasons:?}"
    );
    assert!(!data.exists(), "match created the data dir");
}

#[test]
fn an_unreadable_inventory_fails_with_a_message_naming_it() {
    let t = tempfile::tempdir().unwrap();
    for (name, body) in [
        ("garbage.json", "not json"),
        (
            "nohost.json",
            r#"{"assets": [{"kind": "device", "id": "10.0.0.1"}]}"#,
        ),
        ("other.json", r#"{"hello": 1}"#),
    ] {
        let p = t.path().join(name);
        std::fs::write(&p, body).unwrap();
        let o = run(t.path(), &["match", p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{name}");
        assert!(text(&o.stderr).contains(name), "{}", text(&o.stderr));
    }
    let o = run(t.path(), &["match", "x.json", "--now", "yesterday"]);
    assert_eq!(o.status.code(), Some(2));
}
