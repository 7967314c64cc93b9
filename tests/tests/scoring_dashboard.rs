//! Scores, reports and the dashboard end to end (issue 7) with the real
//! server binary: three organisations fed through mutual TLS with recorded
//! reports; the league table's order, grades and what-to-fix-first; an
//! `org` key sees only its own organisation in the API, the reports and
//! the dashboard; the `report` command; a `[[reports]]` schedule that
//! catches up once after a restart (TRUSTWATCH_NOW moved across three
//! slots); and the HTML report and a dashboard page opened in headless
//! Chromium: `--dump-dom` shows one chart point per history day with the
//! score the API gives, and screenshots are taken (kept in
//! `docs/screenshots/` when TRUSTWATCH_UPDATE_SCREENSHOTS is set).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use time::OffsetDateTime;
use trustwatch_tests::client::ApiClient;
use trustwatch_tests::ServerProcess;
use uuid::Uuid;

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn report(agent: Uuid, at: &str, assets: Value, findings: Value) -> Value {
    json!({
        "schema": "trustwatch.report/v1",
        "report_id": Uuid::now_v7(),
        "collected_at": at,
        "agent": {"id": agent, "hostname": "pacs01", "version": "0.1.0"},
        "agent_version": "0.1.0",
        "started_at": at,
        "finished_at": at,
        "collectors": ["host", "tls", "network"],
        "assets": assets,
        "findings": findings,
        "errors": [],
        "spool_dropped": 0
    })
}

fn f(code: &str, sev: &str, asset: &str, title: &str, evidence: Value) -> Value {
    json!({"code": code, "severity": sev, "category": code.split('.').next().unwrap(),
           "asset": asset, "title": title, "evidence": evidence})
}

/// SOUTH: one low TLS finding. WEST: TLS 1.0 and an outdated package.
/// NORTH (named `<script>…`): SMBv1, telnet and an EOL OS on devices.
async fn feed(server: &ServerProcess, at: &str) {
    for (code, name) in [
        ("NORTH", "<script>alert(1)</script>"),
        ("SOUTH", "South Trust"),
        ("WEST", "West Trust"),
    ] {
        server.org_add(code, name).await;
    }
    let mut assets: Vec<Value> = (0..6)
        .map(|i| json!({"kind": "host", "id": format!("h{i}")}))
        .collect();
    assets.push(json!({"kind": "tls_endpoint", "id": "ehr:443"}));
    assets.extend((1..=8).map(|i| json!({"kind": "device", "id": format!("10.9.0.{i}")})));
    let findings = [
        (
            "SOUTH",
            json!([f(
                "tls.cert.expiring_soon",
                "low",
                "ehr:443",
                "expires in 20 days",
                json!({"not_after": "2025-12-01"})
            )]),
        ),
        (
            "WEST",
            json!([
                f(
                    "tls.protocol.tls1_0",
                    "medium",
                    "ehr:443",
                    "TLS 1.0 accepted",
                    json!({"protocol": "TLSv1.0"})
                ),
                f(
                    "patch.package.vulnerable",
                    "high",
                    "h2",
                    "openssl vulnerable",
                    json!({"package": "openssl", "version": "3.0.11", "fixed": "3.0.15"})
                ),
            ]),
        ),
        (
            "NORTH",
            json!([
                f(
                    "legacy.smb.v1",
                    "critical",
                    "10.9.0.5",
                    "SMBv1 negotiated",
                    json!({"dialect": "NT LM 0.12"})
                ),
                f(
                    "legacy.telnet",
                    "high",
                    "10.9.0.6",
                    "telnet answering",
                    json!({"banner": "<b>login:</b>"})
                ),
                f(
                    "legacy.os.eol",
                    "high",
                    "10.9.0.7",
                    "Windows 7",
                    json!({"os": "Windows 7"})
                ),
            ]),
        ),
    ];
    for (org, fs) in findings {
        let (id, client) = server.enrol_via_api(org).await;
        let a = client
            .post_json("/api/v1/reports", &report(id, at, json!(assets), fs))
            .await;
        assert_eq!(a.status, 202, "{}", a.text);
    }
}

async fn wait_scored(client: &ApiClient, key: &str, n: usize) -> Value {
    for _ in 0..150 {
        let v = client.get_ok("/api/v1/orgs?sort=-score", key).await;
        let items = v["items"].as_array().unwrap();
        if items.len() == n && items.iter().all(|o| o["score"].is_number()) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("scores did not appear");
}

fn codes(v: &Value, field: &str) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o[field].as_str().unwrap_or("-").to_owned())
        .collect()
}

/// Headless Chromium with the flags the project uses (no network chatter,
/// a fresh profile); returns stdout.
async fn chromium(args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("chromium finishes within 2 minutes")
    .expect("chromium (Debian package `chromium`; scripts/test installs it)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn screenshot(page: &Path, png: &Path, height: u32) {
    chromium(&[
        &format!("--screenshot={}", png.display()),
        &format!("--window-size=1240,{height}"),
        &format!("file://{}", page.display()),
    ])
    .await;
    let bytes = std::fs::read(png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(bytes.len() > 10_000, "an empty-looking screenshot");
    if std::env::var_os("TRUSTWATCH_UPDATE_SCREENSHOTS").is_some() {
        let keep = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../docs/screenshots")
            .join(png.file_name().unwrap());
        std::fs::create_dir_all(keep.parent().unwrap()).unwrap();
        std::fs::copy(png, keep).unwrap();
    }
}

/// `(day, score)` of every chart point in a DOM.
fn chart_points(dom: &str) -> Vec<(String, String)> {
    dom.match_indices("<circle class=\"point\"")
        .map(|(i, _)| {
            let tag = &dom[i..i + dom[i..].find('>').unwrap()];
            let attr = |name: &str| {
                let k = format!("{name}=\"");
                let s = tag.find(&k).unwrap() + k.len();
                tag[s..].split('"').next().unwrap().to_owned()
            };
            (attr("data-day"), attr("data-score"))
        })
        .collect()
}

async fn wait_for_files(dir: &Path, n: usize) -> Vec<PathBuf> {
    for _ in 0..150 {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|r| {
                r.map(|e| e.unwrap().path())
                    .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        if v.len() >= n {
            v.sort();
            return v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no report files in {}", dir.display());
}

#[tokio::test]
async fn three_organisations_rank_report_and_show_on_the_dashboard_and_an_org_key_sees_only_its_own(
) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let reports = tmp.path().join("reports");
    let cfg = tmp.path().join("server.toml");
    std::fs::write(
        &cfg,
        format!(
            "[score]\nrefresh = \"1s\"\n\n[[reports]]\nname = \"daily\"\nschedule = \"0 6 * * *\"\n\
             scope = \"all\"\nout_dir = \"{}\"\n",
            reports.display()
        ),
    )
    .unwrap();
    let day0 = OffsetDateTime::now_utc().date();
    let t0 = day0.with_hms(12, 0, 0).unwrap().assume_utc();
    let mut server = ServerProcess::start_with_env(
        &data,
        &["--config", cfg.to_str().unwrap()],
        &[("TRUSTWATCH_NOW", &rfc3339(t0))],
    )
    .await;
    feed(&server, &rfc3339(t0 - Duration::from_secs(600))).await;
    let national = server.apikey("national", None).await;
    let west_key = server.apikey("org", Some("WEST")).await;
    let client = server.client();

    // League table: order, grades, what to fix first.
    let league = wait_scored(&client, &national, 3).await;
    assert_eq!(
        codes(&league, "code"),
        ["SOUTH", "WEST", "NORTH"],
        "{league}"
    );
    let grades = codes(&league, "grade");
    assert_eq!(grades[0], "A", "{league}");
    assert_eq!(grades[2], "F", "{league}");
    assert!(grades[1] != "A" && grades[1] != "F", "{league}");
    let north = client.get_ok("/api/v1/orgs/NORTH", &national).await;
    assert_eq!(north["top_to_fix"][0]["code"], "legacy.smb.v1", "{north}");
    assert!(north["score"].as_f64().unwrap() <= 59.0);
    let west = client.get_ok("/api/v1/orgs/WEST", &national).await;
    assert_eq!(
        west["top_to_fix"][0]["code"], "patch.package.vulnerable",
        "{west}"
    );
    assert_eq!(
        west["top_to_fix"][1]["code"], "tls.protocol.tls1_0",
        "{west}"
    );

    // The `org` key: its own organisation only, everywhere.
    let own = client.get_ok("/api/v1/orgs", &west_key).await;
    assert_eq!(codes(&own, "code"), ["WEST"]);
    for path in [
        "/api/v1/orgs/NORTH",
        "/api/v1/orgs/SOUTH/findings",
        "/api/v1/findings?code=legacy.smb.v1",
        "/api/v1/orgs/NORTH/report?format=html",
        "/api/v1/orgs/WEST/report?scope=tree",
        "/orgs/NORTH",
    ] {
        assert_eq!(
            client.get(path, Some(&west_key)).await.status,
            403,
            "{path}"
        );
    }
    let r = client
        .get("/api/v1/orgs/WEST/report?format=json", Some(&west_key))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["orgs"].as_array().unwrap().len(), 1);
    assert!(!r.text.contains("NORTH") && !r.text.contains("South Trust"));
    let dash = client.get("/", Some(&west_key)).await;
    assert_eq!(dash.status, 200);
    assert!(dash.text.contains("data-code=\"WEST\""));
    assert!(!dash.text.contains("data-code=\"NORTH\"") && !dash.text.contains("South Trust"));
    let dash = client.get("/", Some(&national)).await;
    for c in ["NORTH", "SOUTH", "WEST"] {
        assert!(dash.text.contains(&format!("data-code=\"{c}\"")), "{c}");
    }
    assert!(!dash.text.contains("<script>alert(1)</script>"));
    assert!(dash.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));

    // First start: the schedule is recorded, nothing fires yet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!reports.exists() || std::fs::read_dir(&reports).unwrap().count() == 0);

    // Three days later at 07:00: three 06:00 slots passed; one catch-up.
    server.stop().await;
    let t1 = (day0 + time::Duration::days(3))
        .with_hms(7, 0, 0)
        .unwrap()
        .assume_utc();
    let mut server = ServerProcess::start_with_env(
        &data,
        &["--config", cfg.to_str().unwrap()],
        &[("TRUSTWATCH_NOW", &rfc3339(t1))],
    )
    .await;
    let files = wait_for_files(&reports, 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let slot = format!("{}T0600Z", day0 + time::Duration::days(3));
    let names: Vec<String> = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    for ext in ["html", "csv", "json"] {
        assert!(
            names.contains(&format!("daily_all_{slot}.{ext}")),
            "{names:?}"
        );
    }
    assert!(server.stderr().contains("report written"));

    // The HTML in Chromium: one point per history day, with the API's score.
    let client = server.client();
    let history = client.get_ok("/api/v1/orgs/NORTH/history", &national).await;
    let want: Vec<(String, String)> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["day"].as_str().unwrap().to_owned(),
                format!("{:.1}", h["score"].as_f64().unwrap()),
            )
        })
        .collect();
    assert_eq!(want.len(), 2, "{history}");
    let html = files
        .iter()
        .find(|p| p.extension().unwrap() == "html")
        .unwrap();
    let dom = chromium(&["--dump-dom", &format!("file://{}", html.display())]).await;
    let section = &dom[dom.find("data-code=\"NORTH\"").expect("NORTH section")..];
    let section = &section[..section.find("</section>").unwrap()];
    assert_eq!(chart_points(section), want, "the trend chart of NORTH");
    assert!(dom.contains("class=\"chart category-chart\""));
    assert!(dom.contains("data-category=\"legacy\" data-severity=\"critical\" data-count=\"1\""));
    assert!(dom.contains("data-category=\"tls\" data-severity=\"medium\" data-count=\"1\""));
    assert!(!dom.contains("<script>alert(1)</script>"));
    screenshot(html, &tmp.path().join("report.png"), 2200).await;

    // A dashboard page, saved as the browser gets it, in Chromium too.
    let page = client.get("/orgs/NORTH", Some(&national)).await;
    assert_eq!(page.status, 200);
    let saved = tmp.path().join("dashboard.html");
    std::fs::write(&saved, &page.text).unwrap();
    let dom = chromium(&["--dump-dom", &format!("file://{}", saved.display())]).await;
    assert_eq!(chart_points(&dom), want);
    screenshot(&saved, &tmp.path().join("dashboard.png"), 1500).await;

    // The `report` command, on demand.
    let out = tmp.path().join("west.csv");
    server
        .admin(&[
            "report",
            "--org",
            "WEST",
            "--format",
            "csv",
            "--out",
            out.to_str().unwrap(),
            "--now",
            &rfc3339(t1),
        ])
        .await
        .assert_ok("report --org");
    let csv = std::fs::read_to_string(&out).unwrap();
    // Two findings of its own, and the server's stale-agent finding (no
    // report for three days).
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.contains(",coverage.agent.stale,medium,"), "{csv}");
    assert!(csv
        .lines()
        .skip(1)
        .all(|l| l.starts_with("WEST,West Trust,")));
    let run = server
        .admin(&["report", "--all", "--format", "json", "--out", "-"])
        .await
        .assert_ok("report --all");
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["model_version"], "1");
    assert_eq!(doc["orgs"].as_array().unwrap().len(), 3);
    let run = server
        .admin(&["report", "--org", "NOPE", "--format", "json", "--out", "-"])
        .await;
    assert_eq!(run.code(), 1, "{}", run.stderr);
    let run = server
        .admin(&["report", "--format", "json", "--out", "-"])
        .await;
    assert_eq!(run.code(), 2, "a scope is required");
    server.stop().await;
    server.assert_no_panic();
}
