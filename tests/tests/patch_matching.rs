//! Issue 5 acceptance: an image root inventoried by the real agent
//! (`scan host --root`) and matched by the real server against a small OSV
//! feed written for the test, offline (`match`) and through the pipeline
//! (ingest, then re-matching when a new feed arrives).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use trustwatch_tests::bins::bin_path;
use trustwatch_tests::process::{admin, AgentDir, Run};
use trustwatch_tests::ServerProcess;

const NOW: &str = "2026-05-01T00:00:00Z";

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// Debian 11 (bullseye): its LTS ends 2026-08-31, within 180 days of NOW.
fn debian_root(dir: &Path) -> PathBuf {
    let root = dir.join("debian-root");
    write(
        &root,
        "etc/os-release",
        "PRETTY_NAME=\"Debian GNU/Linux 11 (bullseye)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"11\"\nVERSION=\"11 (bullseye)\"\nVERSION_CODENAME=bullseye\nID=debian\n",
    );
    write(
        &root,
        "var/lib/dpkg/status",
        "Package: libfoo1\nStatus: install ok installed\nArchitecture: amd64\nSource: foo\nVersion: 1.0-1\nDescription: vulnerable through its source package foo\n\n\
Package: bar\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.0-3\nDescription: has exactly the fixed version\n\n\
Package: baz\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:0.9-1\nDescription: epoch 1 beats a fix without epoch\n\n\
Package: qux\nStatus: install ok installed\nArchitecture: amd64\nVersion: 0.9-1\nDescription: a fix with an epoch is newer\n\n\
Package: libssl-test\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl (3.0.15-1~deb11u1)\nVersion: 3.0.15-1~deb11u1\nDescription: tilde sorts before the release\n\n\
Package: zed\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.2-1\nDescription: no fix published\n\n\
Package: oldpkg\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 0.1-1\nDescription: only its config files are left\n",
    );
    root
}

/// Alpine 3.22: supported until 2027-05-01.
fn alpine_root(dir: &Path) -> PathBuf {
    let root = dir.join("alpine-root");
    write(
        &root,
        "etc/os-release",
        "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.22.1\nPRETTY_NAME=\"Alpine Linux v3.22\"\n",
    );
    write(
        &root,
        "lib/apk/db/installed",
        "C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nP:musl\nV:1.2.5-r0\nA:x86_64\no:musl\nT:the musl c library\n\n\
C:Q1BBBBBBBBBBBBBBBBBBBBBBBBBBBB=\nP:busybox\nV:1.37.0-r18\nA:x86_64\no:busybox\nT:size optimized toolbox\n\n",
    );
    root
}

fn advisory(id: &str, cve: &str, eco: &str, pkg: &str, events: Value) -> Value {
    json!({
        "schema_version": "1.6.0",
        "id": id,
        "modified": "2026-01-01T00:00:00Z",
        "published": "2026-01-01T00:00:00Z",
        "aliases": [cve],
        "summary": format!("test advisory for {pkg}"),
        "affected": [{
            "package": {"ecosystem": eco, "name": pkg},
            "ranges": [{"type": "ECOSYSTEM", "events": events}]
        }]
    })
}

/// The feed of the test: one file per record in a directory.
fn osv_feed(dir: &Path) -> PathBuf {
    let d = dir.join("osv");
    std::fs::create_dir_all(&d).unwrap();
    let records = [
        advisory(
            "TEST-FOO",
            "CVE-2026-1001",
            "Debian:11",
            "foo",
            json!([{"introduced": "0"}, {"fixed": "1.0-2"}]),
        ),
        advisory(
            "TEST-BAR",
            "CVE-2026-1002",
            "Debian:11",
            "bar",
            json!([{"introduced": "0"}, {"fixed": "2.0-3"}]),
        ),
        advisory(
            "TEST-BAZ",
            "CVE-2026-1003",
            "Debian:11",
            "baz",
            json!([{"introduced": "0"}, {"fixed": "2.0-1"}]),
        ),
        advisory(
            "TEST-QUX",
            "CVE-2026-1004",
            "Debian:11",
            "qux",
            json!([{"introduced": "0"}, {"fixed": "1:0.1-1"}]),
        ),
        advisory(
            "TEST-OPENSSL",
            "CVE-2026-1005",
            "Debian:11",
            "openssl",
            json!([{"introduced": "0"}, {"fixed": "3.0.15-1"}]),
        ),
        advisory(
            "TEST-ZED",
            "CVE-2026-1006",
            "Debian:11",
            "zed",
            json!([{"introduced": "0"}]),
        ),
        advisory(
            "TEST-OLD",
            "CVE-2026-1007",
            "Debian:11",
            "oldpkg",
            json!([{"introduced": "0"}, {"fixed": "0.2-1"}]),
        ),
        advisory(
            "TEST-OTHER-RELEASE",
            "CVE-2026-1008",
            "Debian:12",
            "bar",
            json!([{"introduced": "0"}, {"fixed": "9.0-1"}]),
        ),
        advisory(
            "TEST-MUSL",
            "CVE-2026-1009",
            "Alpine:v3.22",
            "musl",
            json!([{"introduced": "0"}, {"fixed": "1.2.5-r1"}]),
        ),
    ];
    for r in records {
        let name = format!("{}.json", r["id"].as_str().unwrap());
        std::fs::write(d.join(name), serde_json::to_vec_pretty(&r).unwrap()).unwrap();
    }
    d
}

fn kev_feed(dir: &Path) -> PathBuf {
    let p = dir.join("kev.json");
    let v = json!({
        "title": "CISA Catalog of Known Exploited Vulnerabilities",
        "catalogVersion": "2026.04.30",
        "dateReleased": "2026-04-30T12:00:00.000Z",
        "count": 1,
        "vulnerabilities": [{
            "cveID": "CVE-2026-1001", "vendorProject": "Test", "product": "foo",
            "vulnerabilityName": "foo test flaw", "dateAdded": "2026-04-01",
            "shortDescription": "test", "requiredAction": "update", "dueDate": "2026-04-22",
            "knownRansomwareCampaignUse": "Unknown", "notes": "", "cwes": []
        }]
    });
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    p
}

async fn scan_host(root: &Path, out: &Path) {
    let o = tokio::process::Command::new(bin_path("trustwatch-agent"))
        .args(["scan", "host", "--format", "json", "--now", NOW, "--root"])
        .arg(root)
        .output()
        .await
        .unwrap();
    assert!(
        o.status.success(),
        "scan host: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::write(out, &o.stdout).unwrap();
}

async fn server(data: &Path, args: &[&str]) -> Run {
    admin(data, args).await
}

/// (code, subject) of every finding in a scan document.
fn codes(doc: &Value) -> BTreeSet<(String, String)> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_owned(),
                f["subject"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn finding<'a>(doc: &'a Value, code: &str, subject: &str) -> &'a Value {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code && f["subject"] == subject)
        .unwrap_or_else(|| panic!("no {code} for {subject} in {doc}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_finds_exactly_the_vulnerable_and_end_of_life_packages_of_an_image() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let osv = osv_feed(dir);
    let kev = kev_feed(dir);
    server(
        &data,
        &[
            "feed",
            "import",
            osv.to_str().unwrap(),
            kev.to_str().unwrap(),
        ],
    )
    .await
    .assert_ok("feed import");

    // Debian 11 image.
    let inv = dir.join("debian.json");
    scan_host(&debian_root(dir), &inv).await;
    let run = server(
        &data,
        &[
            "match",
            inv.to_str().unwrap(),
            "--format",
            "json",
            "--now",
            NOW,
        ],
    )
    .await
    .assert_ok("match");
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["schema"], "trustwatch.scan/v1");
    let got = codes(&doc);
    let os = finding(&doc, "patch.os.eol_soon", "debian 11").clone();
    let want = set(&[
        ("patch.package.vulnerable", "foo"),
        ("patch.package.vulnerable", "qux"),
        ("patch.package.vulnerable", "openssl"),
        ("patch.package.vulnerable_unfixed", "zed"),
        ("patch.os.eol_soon", "debian 11"),
    ]);
    assert_eq!(got, want, "{}", serde_json::to_string_pretty(&doc).unwrap());

    // Evidence a person can check, and KEV raising the severity.
    let foo = finding(&doc, "patch.package.vulnerable", "foo");
    assert_eq!(foo["severity"], "critical", "{foo}");
    let ev = foo["evidence"].to_string();
    for needle in ["libfoo1", "1.0-1", "1.0-2", "TEST-FOO", "CVE-2026-1001"] {
        assert!(ev.contains(needle), "evidence lacks {needle}: {ev}");
    }
    let openssl = finding(&doc, "patch.package.vulnerable", "openssl");
    assert_eq!(openssl["severity"], "high");
    assert!(openssl["evidence"].to_string().contains("3.0.15-1~deb11u1"));
    assert!(os["evidence"].to_string().contains("2026-08-31"), "{os}");

    // Alpine image: the musl fix is newer than what is installed; the
    // release is supported.
    let inv = dir.join("alpine.json");
    scan_host(&alpine_root(dir), &inv).await;
    let run = server(
        &data,
        &[
            "match",
            inv.to_str().unwrap(),
            "--format",
            "json",
            "--now",
            NOW,
        ],
    )
    .await
    .assert_ok("match alpine");
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        codes(&doc),
        set(&[("patch.package.vulnerable", "musl")]),
        "{doc}"
    );

    // The same Debian image a year later: its release is past end of support.
    let inv = dir.join("debian.json");
    let run = server(
        &data,
        &[
            "match",
            inv.to_str().unwrap(),
            "--format",
            "json",
            "--now",
            "2027-05-01T00:00:00Z",
        ],
    )
    .await
    .assert_ok("match later");
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let got: BTreeSet<String> = codes(&doc).into_iter().map(|(c, _)| c).collect();
    assert!(
        got.contains("patch.os.eol") && !got.contains("patch.os.eol_soon"),
        "{got:?}"
    );

    // `match` stores nothing.
    let listed = server(&data, &["org", "list", "--format", "json"])
        .await
        .assert_ok("org list");
    assert_eq!(listed.stdout.trim(), "[]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_matched_at_ingest_and_rematched_when_a_feed_arrives() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let root = debian_root(dir);
    let srv = ServerProcess::start_with_env(&data, &[], &[("TRUSTWATCH_NOW", NOW)]).await;
    let osv = osv_feed(dir);
    srv.admin(&["feed", "import", osv.to_str().unwrap()])
        .await
        .assert_ok("feed import");
    srv.org_add("RX1", "Trust one").await;
    let token = srv.token("RX1", &[]).await;
    let agent = AgentDir::new(
        &dir.join("agent"),
        None,
        &format!("[collect.host]\nroot = {:?}\n", root.display().to_string()),
    );
    agent
        .enroll(&srv.base_url(), &srv.ca_path(), &token)
        .await
        .assert_ok("enroll");
    agent.once().await.assert_ok("once");

    let key = srv.apikey("national", None).await;
    let c = srv.client();
    let open = |v: &Value| -> BTreeSet<(String, String)> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["category"] == "patch")
            .map(|f| {
                (
                    f["code"].as_str().unwrap().to_owned(),
                    f["subject"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let v = c.get_ok("/api/v1/orgs/RX1/findings?limit=1000", &key).await;
    let got = open(&v);
    for want in [
        ("patch.package.vulnerable", "foo"),
        ("patch.package.vulnerable", "qux"),
        ("patch.package.vulnerable", "openssl"),
        ("patch.package.vulnerable_unfixed", "zed"),
    ] {
        assert!(
            got.contains(&(want.0.into(), want.1.into())),
            "{want:?} missing: {got:?}"
        );
    }
    assert!(
        !got.iter()
            .any(|(_, s)| s == "bar" || s == "baz" || s == "oldpkg"),
        "{got:?}"
    );
    assert!(got.iter().any(|(c, _)| c == "patch.os.eol_soon"), "{got:?}");

    // A new advisory for bar arrives: the stored inventory is matched again,
    // no new report needed.
    let more = dir.join("more");
    std::fs::create_dir_all(&more).unwrap();
    std::fs::write(
        more.join("TEST-BAR-2.json"),
        serde_json::to_vec(&advisory(
            "TEST-BAR-2",
            "CVE-2026-2002",
            "Debian:11",
            "bar",
            json!([{"introduced": "0"}, {"fixed": "2.0-4"}]),
        ))
        .unwrap(),
    )
    .unwrap();
    srv.admin(&["feed", "import", more.to_str().unwrap()])
        .await
        .assert_ok("second import");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let v = c.get_ok("/api/v1/orgs/RX1/findings?limit=1000", &key).await;
        if open(&v).contains(&("patch.package.vulnerable".into(), "bar".into())) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bar not re-matched after the feed import: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let reports = c.get_ok("/api/v1/orgs/RX1/reports", &key).await;
    assert_eq!(
        reports["items"].as_array().unwrap().len(),
        1,
        "no new report was sent"
    );

    // The server keeps advisory lists in memory between reports (the first
    // report cached bar's, then empty): the import, made by another process,
    // must retire them, or this report of the same inventory would resolve
    // the finding the re-match raised.
    agent.once().await.assert_ok("second once");
    let reports = c.get_ok("/api/v1/orgs/RX1/reports", &key).await;
    assert_eq!(reports["items"].as_array().unwrap().len(), 2);
    let v = c.get_ok("/api/v1/orgs/RX1/findings?limit=1000", &key).await;
    let after = open(&v);
    assert!(
        after.contains(&("patch.package.vulnerable".into(), "bar".into())),
        "the second report lost bar: {after:?}"
    );
    assert_eq!(after.len(), got.len() + 1, "{after:?} against {got:?}");
    // The first report filled the cache, the import retired it (read anew
    // by the second report), and a third report is served from memory.
    assert_eq!(c.metric("trustwatch_feed_cache_resets_total").await, 2);
    assert_eq!(c.metric("trustwatch_feed_cache_hits_total").await, 0);
    let misses = c.metric("trustwatch_feed_cache_misses_total").await;
    assert!(misses > 0);
    agent.once().await.assert_ok("third once");
    let v = c.get_ok("/api/v1/orgs/RX1/findings?limit=1000", &key).await;
    assert_eq!(open(&v), after);
    assert_eq!(
        c.metric("trustwatch_feed_cache_hits_total").await,
        misses / 2
    );
    assert_eq!(c.metric("trustwatch_feed_cache_misses_total").await, misses);
    assert_eq!(c.metric("trustwatch_feed_cache_resets_total").await, 2);
    srv.assert_no_panic();
}
