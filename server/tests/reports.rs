//! Reports, their schedule and the dashboard, in process: a scheduled
//! report fires exactly once per slot with the manual clock (also with two
//! "replicas" ticking at once) and catches up once after a "restart"; the
//! report API and the dashboard keep an `org` key to its own organisation;
//! login sets a strict cookie and logout ends the session; hostile names
//! and evidence come out escaped everywhere; the SMTP path delivers the
//! attachments to a real local receiver (Python's aiosmtpd), in plain SMTP
//! and with STARTTLS.
#![forbid(unsafe_code)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tower::ServiceExt;
use trustwatch_server::admin;
use trustwatch_server::clock::{parse_rfc3339, to_ms, Clock};
use trustwatch_server::report::cron::Cron;
use trustwatch_server::report::mail::{Security, SmtpSettings};
use trustwatch_server::report::schedule::{ReportSpec, Scheduler};
use trustwatch_server::report::{Format, Scope};
use trustwatch_server::store::scores::RefreshOptions;
use trustwatch_server::store::ApiKeyRole;

const NASTY: &str = "<script>alert(1)</script>";

async fn org_named(h: &Harness, code: &str, name: &str) {
    admin::org_add(
        h.store(),
        h.clock.as_ref(),
        code,
        name,
        None,
        &mut Vec::new(),
    )
    .await
    .unwrap();
}

/// Three organisations: GOOD (a low TLS finding), MID (a high patch
/// finding), EVIL (named `<script>…`, SMBv1 with hostile evidence).
async fn seed(h: &Harness) {
    org_named(h, "GOOD", "Good Trust").await;
    org_named(h, "MID", "Middling Trust").await;
    org_named(h, "EVIL", NASTY).await;
    let at = "2025-10-01T10:00:00Z";
    let hosts: Vec<Value> = (0..4).map(|i| host(&format!("h{i}"))).collect();
    for (org, f) in [
        (
            "GOOD",
            json!({"code": "tls.cert.expiring_soon", "severity": "low", "category": "tls",
                   "asset": "ehr:443", "title": "expires soon", "evidence": {"not_after": "2025-10-20"}}),
        ),
        (
            "MID",
            finding(
                "patch.package.vulnerable",
                "h1",
                "openssl",
                json!({"package": "openssl", "fixed": "3.0.15"}),
            ),
        ),
        (
            "EVIL",
            json!({"code": "legacy.smb.v1", "severity": "critical", "category": "legacy",
                   "asset": "10.0.0.5", "title": "SMBv1 <b>on</b> a device",
                   "evidence": {"banner": "<img src=x onerror=alert(2)>", "cell": "=HYPERLINK(\"x\")"}}),
        ),
    ] {
        let agent = h.agent(org).await;
        let mut assets = hosts.clone();
        assets.push(endpoint("ehr:443"));
        assets.push(json!({"kind": "device", "id": "10.0.0.5"}));
        let r = report(
            agent.agent_id,
            at,
            &["host", "tls", "network"],
            assets,
            vec![f],
        );
        assert_eq!(h.post_report(&agent, &r).await.0, StatusCode::ACCEPTED);
    }
    h.store()
        .refresh_scores(h.clock.now(), &RefreshOptions::default())
        .await
        .unwrap();
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn send(h: &Harness, req: Request<Body>) -> Answer {
    let resp = h.router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn get(h: &Harness, path: &str, auth: Option<(&str, &str)>) -> Answer {
    let mut b = Request::get(path);
    if let Some((k, v)) = auth {
        b = b.header(k, v);
    }
    send(h, b.body(Body::empty()).unwrap()).await
}

fn bearer(key: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {key}"))
}

fn spec(name: &str, schedule: &str, scope: Scope, dir: &Path) -> ReportSpec {
    ReportSpec {
        name: name.into(),
        cron: Cron::parse(schedule).unwrap(),
        scope,
        formats: Format::ALL.to_vec(),
        out_dir: dir.to_owned(),
        mail_to: Vec::new(),
    }
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn scheduled_report_fires_once_per_slot_and_catches_up_once_after_a_restart() {
    let h = Harness::new().await;
    seed(&h).await;
    let out = tempfile::tempdir().unwrap();
    let specs = vec![spec(
        "daily",
        "0 6 * * *",
        Scope::Org("MID".into()),
        out.path(),
    )];
    let day = Duration::from_secs(24 * 3600);
    let sched = Scheduler::new(h.store().clone(), specs.clone(), None, day);

    // First sight (12:00): a baseline, nothing fires.
    assert!(sched.tick(h.clock.now()).await.is_empty());
    h.clock.advance(Duration::from_secs(3600));
    assert!(sched.tick(h.clock.now()).await.is_empty());
    assert!(files(out.path()).is_empty());

    // Across the 06:00 slot: fires exactly once.
    h.clock.set(parse_rfc3339("2025-10-02T06:00:30Z").unwrap());
    let fired = sched.tick(h.clock.now()).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].error, None);
    assert_eq!(
        files(out.path()),
        [
            "daily_org-MID_2025-10-02T0600Z.csv",
            "daily_org-MID_2025-10-02T0600Z.html",
            "daily_org-MID_2025-10-02T0600Z.json"
        ]
    );
    h.clock.advance(Duration::from_secs(120));
    assert!(sched.tick(h.clock.now()).await.is_empty());
    // Another process on the same store does not fire it again.
    let replica = Scheduler::new(h.store().clone(), specs.clone(), None, day);
    assert!(replica.tick(h.clock.now()).await.is_empty());

    // Two replicas ticking at once across the next slot: one fires.
    let t = parse_rfc3339("2025-10-03T06:01:00Z").unwrap();
    let (a, b) = tokio::join!(sched.tick(t), replica.tick(t));
    assert_eq!(a.len() + b.len(), 1, "{a:?} {b:?}");
    assert_eq!(files(out.path()).len(), 6);

    // "Restart" after three missed slots: one catch-up, for the latest.
    drop((sched, replica));
    let restarted = Scheduler::new(h.store().clone(), specs, None, day);
    h.clock.set(parse_rfc3339("2025-10-06T07:00:00Z").unwrap());
    let fired = restarted.tick(h.clock.now()).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(
        fired[0].slot,
        parse_rfc3339("2025-10-06T06:00:00Z").unwrap()
    );
    assert!(restarted.tick(h.clock.now()).await.is_empty());
    let names = files(out.path());
    assert_eq!(names.len(), 9, "{names:?}");
    assert!(!names
        .iter()
        .any(|n| n.contains("2025-10-04") || n.contains("2025-10-05")));

    let state = h.store().schedule_state("daily").await.unwrap().unwrap();
    assert_eq!(state.status.as_deref(), Some("ok"));
    assert_eq!(
        state.fired_slot,
        Some(to_ms(parse_rfc3339("2025-10-06T06:00:00Z").unwrap()))
    );
    // The catch-up report covers changes since the previous fired slot,
    // and states the model version and the feeds' age.
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("daily_org-MID_2025-10-06T0600Z.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["schema"], "trustwatch.posture-report/v1");
    assert_eq!(json["model_version"], "1");
    assert_eq!(json["since"], "2025-10-03T06:00:00Z");
    assert_eq!(json["scope"]["code"], "MID");
    assert!(json["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["kind"] == "eol" && f["source"] == "shipped"));
    assert_eq!(json["orgs"].as_array().unwrap().len(), 1);
    assert!(json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["org"] == "MID"));
    let html =
        std::fs::read_to_string(out.path().join("daily_org-MID_2025-10-06T0600Z.html")).unwrap();
    assert!(html.contains("class=\"model-version\">v1<"));
    assert!(html.contains("<svg class=\"chart trend-chart\""));
}

#[tokio::test]
async fn a_failed_report_run_is_recorded_and_the_slot_is_not_fired_again() {
    let h = Harness::new().await;
    seed(&h).await;
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let specs = vec![spec("r", "*/5 * * * *", Scope::All, &blocker)];
    let sched = Scheduler::new(h.store().clone(), specs, None, Duration::from_secs(86400));
    assert!(sched.tick(h.clock.now()).await.is_empty());
    h.clock.advance(Duration::from_secs(300));
    let fired = sched.tick(h.clock.now()).await;
    assert_eq!(fired.len(), 1);
    assert!(fired[0].error.is_some());
    let st = h.store().schedule_state("r").await.unwrap().unwrap();
    assert_eq!(st.status.as_deref(), Some("error"));
    assert!(sched.tick(h.clock.now()).await.is_empty());
}

#[tokio::test]
async fn report_api_answers_each_format_and_keeps_an_org_key_to_its_own_org() {
    let h = Harness::new().await;
    seed(&h).await;
    let national = h.apikey(ApiKeyRole::National, None).await;
    let mid = h.apikey(ApiKeyRole::Org, Some("MID")).await;
    let (k, v) = bearer(&national);

    let a = get(&h, "/api/v1/orgs/MID/report?format=csv", Some((k, &v))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.headers["content-type"], "text/csv; charset=utf-8");
    assert!(a.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("report_org-MID_"));
    let lines: Vec<&str> = a.body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2, "{}", a.body);
    assert!(lines[1].starts_with("MID,Middling Trust,patch.package.vulnerable,high,"));

    let a = get(&h, "/api/v1/orgs/EVIL/report?format=html", Some((k, &v))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(a.headers.contains_key("content-security-policy"));

    let a = get(
        &h,
        "/api/v1/orgs/GOOD/report?format=json&scope=tree",
        Some((k, &v)),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    for (path, status) in [
        ("/api/v1/orgs/GOOD/report?format=pdf", 400),
        ("/api/v1/orgs/GOOD/report?scope=world", 400),
        ("/api/v1/orgs/NOPE/report", 404),
    ] {
        assert_eq!(
            get(&h, path, Some((k, &v))).await.status.as_u16(),
            status,
            "{path}"
        );
    }

    let (k, v) = bearer(&mid);
    let a = get(&h, "/api/v1/orgs/MID/report?format=json", Some((k, &v))).await;
    assert_eq!(a.status, StatusCode::OK);
    let doc: Value = serde_json::from_str(&a.body).unwrap();
    let orgs: Vec<&str> = doc["orgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["code"].as_str().unwrap())
        .collect();
    assert_eq!(orgs, ["MID"]);
    assert!(!a.body.contains("GOOD") && !a.body.contains("EVIL"));
    for path in [
        "/api/v1/orgs/GOOD/report?format=html",
        "/api/v1/orgs/MID/report?scope=tree",
        "/api/v1/orgs/NOPE/report",
    ] {
        assert_eq!(
            get(&h, path, Some((k, &v))).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    assert_eq!(
        get(&h, "/api/v1/orgs/MID/report", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

fn cookie_of(a: &Answer) -> String {
    let c = a.headers["set-cookie"].to_str().unwrap().to_owned();
    c.split(';').next().unwrap().to_owned()
}

async fn post_form(h: &Harness, path: &str, body: &str, cookie: Option<&str>) -> Answer {
    let mut b = Request::post(path).header("content-type", "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    send(h, b.body(Body::from(body.to_owned())).unwrap()).await
}

#[tokio::test]
async fn dashboard_login_sets_a_strict_cookie_and_logout_ends_the_session() {
    let h = Harness::new().await;
    seed(&h).await;
    let key = h.apikey(ApiKeyRole::National, None).await;

    let a = get(&h, "/", None).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.headers["location"], "/login");
    let a = get(&h, "/login", None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a
        .body
        .contains("<form class=\"login\" method=\"post\" action=\"/login\">"));
    assert!(a.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));

    let a = post_form(&h, "/login", "key=twk_nope", None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(!a.headers.contains_key("set-cookie"));

    let a = post_form(&h, "/login", &format!("key={key}"), None).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.headers["location"], "/");
    let set = a.headers["set-cookie"].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    let cookie = cookie_of(&a);
    assert!(cookie.starts_with("__Host-tw_session=tws_"));
    // Only hashes are stored: neither the session secret nor the key.
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT id_hash || key_hash FROM dashboard_sessions")
            .fetch_all(h.store().pool())
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    let secret = cookie.split_once('=').unwrap().1;
    assert!(!rows[0].contains(secret) && !rows[0].contains(&key));

    let a = get(&h, "/", Some(("cookie", &cookie))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("<h1>League table</h1>"));

    let a = post_form(&h, "/logout", "", Some(&cookie)).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.headers["location"], "/login");
    assert!(a.headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(h.count("dashboard_sessions").await, 0);
    let a = get(&h, "/", Some(("cookie", &cookie))).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);

    // A session ends by itself after 12 hours.
    let a = post_form(&h, "/login", &format!("key={key}"), None).await;
    let cookie = cookie_of(&a);
    h.clock.advance(Duration::from_secs(12 * 3600 + 1));
    assert_eq!(
        get(&h, "/", Some(("cookie", &cookie))).await.status,
        StatusCode::SEE_OTHER
    );
    // A bearer key that is not known is refused, not redirected.
    assert_eq!(
        get(&h, "/", Some(("authorization", "Bearer twk_nope")))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

fn league_codes(body: &str) -> Vec<String> {
    body.match_indices("<tr class=\"org\" data-code=\"")
        .map(|(i, m)| body[i + m.len()..].split('"').next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn dashboard_league_sorts_by_column_and_an_org_key_sees_only_its_own_organisation() {
    let h = Harness::new().await;
    seed(&h).await;
    let national = h.apikey(ApiKeyRole::National, None).await;
    let (k, v) = bearer(&national);
    let a = get(&h, "/", Some((k, &v))).await;
    assert_eq!(league_codes(&a.body), ["GOOD", "MID", "EVIL"]);
    // Headers link the other direction of the current sort.
    assert!(
        a.body.contains("<a href=\"/?sort=score\">score</a>"),
        "{}",
        a.body
    );
    let a = get(&h, "/?sort=code", Some((k, &v))).await;
    assert_eq!(league_codes(&a.body), ["EVIL", "GOOD", "MID"]);
    let a = get(&h, "/?sort=-code", Some((k, &v))).await;
    assert_eq!(league_codes(&a.body), ["MID", "GOOD", "EVIL"]);
    assert_eq!(
        get(&h, "/?sort=colour", Some((k, &v))).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&h, "/?page=2", Some((k, &v))).await.status,
        StatusCode::BAD_REQUEST
    );

    let a = get(&h, "/orgs/EVIL", Some((k, &v))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("<svg class=\"chart trend-chart\""));
    assert!(
        a.body.contains("data-code=\"legacy.smb.v1\""),
        "what to fix first"
    );
    assert!(a.body.contains("<table class=\"breakdown\">"));
    let href =
        "/orgs/EVIL/finding?kind=device&amp;asset=10.0.0.5&amp;code=legacy.smb.v1&amp;subject=";
    assert!(a.body.contains(href), "{}", a.body);
    let a = get(&h, &href.replace("&amp;", "&"), Some((k, &v))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("<pre class=\"evidence\">"));
    assert!(a.body.contains("&lt;img src=x onerror=alert(2)&gt;"));
    assert_eq!(
        get(
            &h,
            "/orgs/EVIL/finding?kind=device&asset=nope&code=x",
            Some((k, &v))
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&h, "/orgs/NOPE", Some((k, &v))).await.status,
        StatusCode::NOT_FOUND
    );

    let mid = h.apikey(ApiKeyRole::Org, Some("MID")).await;
    let (k, v) = bearer(&mid);
    let a = get(&h, "/", Some((k, &v))).await;
    assert_eq!(league_codes(&a.body), ["MID"]);
    assert!(!a.body.contains("Good Trust"));
    assert_eq!(
        get(&h, "/orgs/MID", Some((k, &v))).await.status,
        StatusCode::OK
    );
    for path in [
        "/orgs/GOOD",
        "/orgs/EVIL/finding?kind=device&asset=10.0.0.5&code=legacy.smb.v1",
        "/orgs/NOPE",
    ] {
        let a = get(&h, path, Some((k, &v))).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}");
        assert!(!a.body.contains("10.0.0.5"));
    }
}

#[tokio::test]
async fn an_organisation_named_script_appears_escaped_everywhere() {
    let h = Harness::new().await;
    seed(&h).await;
    let national = h.apikey(ApiKeyRole::National, None).await;
    let (k, v) = bearer(&national);
    let mut pages = Vec::new();
    for path in [
        "/",
        "/orgs/EVIL",
        "/orgs/EVIL/finding?kind=device&asset=10.0.0.5&code=legacy.smb.v1",
        "/api/v1/orgs/EVIL/report?format=html",
    ] {
        let a = get(&h, path, Some((k, &v))).await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
        pages.push((path, a.body));
    }
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("all.html");
    trustwatch_server::report::cmd::report_command(
        h.store(),
        &Scope::All,
        Format::Html,
        &file,
        h.clock.now(),
        Duration::from_secs(86400),
        &mut Vec::new(),
    )
    .await
    .unwrap();
    pages.push(("report --all", std::fs::read_to_string(&file).unwrap()));
    for (what, body) in &pages {
        assert!(!body.contains(NASTY), "{what} has the raw name");
        assert!(!body.contains("<img src=x"), "{what} has raw evidence");
        assert!(!body.contains("<script"), "{what} has a script tag");
        assert!(!body.contains("<b>on</b>"), "{what} has a raw title");
    }
    for (what, body) in &pages[..2] {
        assert!(
            body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{what}"
        );
    }
    // CSV neutralises a formula in the evidence cell's text.
    let csv = String::from_utf8(trustwatch_server::report::render(
        &trustwatch_server::report::build(
            h.store(),
            &Scope::Org("EVIL".into()),
            h.clock.now(),
            None,
        )
        .await
        .unwrap(),
        Format::Csv,
    ))
    .unwrap();
    assert!(
        csv.contains(&format!("EVIL,{NASTY},legacy.smb.v1")),
        "{csv}"
    );
}

/// A local SMTP receiver: Python's aiosmtpd on 127.0.0.1, writing each
/// message to a directory.
struct Receiver {
    child: tokio::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

const RECEIVER: &str = r#"
import os, ssl, sys, time
from aiosmtpd.controller import Controller
out, port = sys.argv[1], int(sys.argv[2])
class Handler:
    async def handle_DATA(self, server, session, envelope):
        name = os.path.join(out, "msg%d.eml" % time.time_ns())
        with open(name + ".part", "wb") as f:
            f.write(("X-Rcpt-To: %s\r\n" % ",".join(envelope.rcpt_tos)).encode())
            f.write(("X-Tls: %s\r\n" % (session.ssl is not None)).encode())
            f.write(envelope.original_content or envelope.content)
        os.rename(name + ".part", name)
        return "250 OK"
kw = {}
if len(sys.argv) > 3:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    kw = dict(tls_context=ctx, require_starttls=True)
c = Controller(Handler(), hostname="127.0.0.1", port=port, **kw)
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"#;

impl Receiver {
    async fn start(tls: Option<(&Path, &Path)>) -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = tokio::process::Command::new("python3");
        cmd.arg("-c")
            .arg(RECEIVER)
            .arg(dir.path())
            .arg(port.to_string());
        if let Some((c, k)) = tls {
            cmd.arg(c).arg(k);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 (aiosmtpd: scripts/test installs it)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("aiosmtpd did not start in time")
            .unwrap();
        assert_eq!(
            line.as_deref(),
            Some("ready"),
            "aiosmtpd is missing? (pip install aiosmtpd)"
        );
        Receiver { child, port, dir }
    }

    async fn messages(&self, n: usize) -> Vec<String> {
        for _ in 0..100 {
            let names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "eml"))
                .collect();
            if names.len() >= n {
                return names
                    .iter()
                    .map(|p| std::fs::read_to_string(p).unwrap())
                    .collect();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no message arrived");
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn smtp(port: u16, security: Security, ca: Option<PathBuf>) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        security,
        from: "trustwatch <trustwatch@example.org>".into(),
        username: None,
        password_file: None,
        ca,
        hello_name: "localhost".into(),
        timeout: Duration::from_secs(20),
    }
}

async fn mailed_report(security: Security, tls: Option<(&Path, &Path, PathBuf)>) -> String {
    let h = Harness::new().await;
    seed(&h).await;
    let rx = Receiver::start(tls.as_ref().map(|(c, k, _)| (*c, *k))).await;
    let out = tempfile::tempdir().unwrap();
    let mut s = spec(
        "mailed",
        "*/10 * * * *",
        Scope::Org("EVIL".into()),
        out.path(),
    );
    s.formats = vec![Format::Html, Format::Csv];
    s.mail_to = vec!["soc@example.org".into(), "ciso@example.org".into()];
    let sched = Scheduler::new(
        h.store().clone(),
        vec![s],
        Some(smtp(rx.port, security, tls.map(|t| t.2))),
        Duration::from_secs(86400),
    );
    assert!(sched.tick(h.clock.now()).await.is_empty());
    h.clock.advance(Duration::from_secs(600));
    let fired = sched.tick(h.clock.now()).await;
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].error, None, "{fired:?}");
    assert!(fired[0].mailed);
    let msgs = rx.messages(1).await;
    assert_eq!(msgs.len(), 1, "one message for both recipients");
    msgs.into_iter().next().unwrap()
}

fn assert_attachments(m: &str) {
    assert!(
        m.contains("X-Rcpt-To: soc@example.org,ciso@example.org"),
        "{m}"
    );
    // (The long names come as RFC 2231 `filename*0="…"`.)
    for ext in ["html", "csv"] {
        let name = format!("=\"mailed_org-EVIL_2025-10-01T1210Z.{ext}\"");
        assert_eq!(m.matches(&name).count(), 1, "{name} in {m}");
    }
    assert!(m.contains("Content-Type: text/csv"));
    assert!(m.contains("Subject: trustwatch: Security posture:"));
    assert!(m.contains("scoring model v1"));
}

#[tokio::test]
async fn scheduled_report_is_mailed_with_its_attachments_to_a_local_smtp_receiver() {
    let m = mailed_report(Security::None, None).await;
    assert_attachments(&m);
    assert!(m.contains("X-Tls: False"));
}

#[tokio::test]
async fn scheduled_report_is_mailed_over_starttls_verified_against_the_configured_ca() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "smtp test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    leaf.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let (c, k, capath) = (
        dir.path().join("smtp.pem"),
        dir.path().join("smtp-key.pem"),
        dir.path().join("ca.pem"),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    std::fs::write(&capath, ca_cert.pem()).unwrap();
    let m = mailed_report(Security::StartTls, Some((&c, &k, capath))).await;
    assert_attachments(&m);
    assert!(m.contains("X-Tls: True"), "{m}");
}

#[tokio::test]
async fn starttls_to_a_relay_with_an_untrusted_certificate_sends_nothing() {
    // The receiver requires STARTTLS with a certificate no configured root
    // vouches for: the run fails and nothing arrives.
    use rcgen::{CertificateParams, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (c, k) = (dir.path().join("s.pem"), dir.path().join("k.pem"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    let h = Harness::new().await;
    seed(&h).await;
    let rx = Receiver::start(Some((&c, &k))).await;
    let out = tempfile::tempdir().unwrap();
    let mut s = spec("m", "*/10 * * * *", Scope::All, out.path());
    s.mail_to = vec!["soc@example.org".into()];
    let sched = Scheduler::new(
        h.store().clone(),
        vec![s],
        Some(smtp(rx.port, Security::StartTls, None)),
        Duration::from_secs(86400),
    );
    sched.tick(h.clock.now()).await;
    h.clock.advance(Duration::from_secs(600));
    let fired = sched.tick(h.clock.now()).await;
    assert!(
        fired[0].error.as_deref().unwrap_or("").contains("mail"),
        "{fired:?}"
    );
    assert!(!fired[0].mailed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(std::fs::read_dir(rx.dir.path()).unwrap().count(), 0);
}
