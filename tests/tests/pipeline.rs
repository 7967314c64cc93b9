//! The foundation's end-to-end behaviour (issue 3): real server, real agent,
//! real HTTPS with mutual TLS, real SQLite file.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use trustwatch_common::report::{AgentInfo, Asset, AssetKind, Report, REPORT_SCHEMA};
use trustwatch_common::{Finding, FindingCode};
use trustwatch_tests::client::{gzip, ApiClient};
use trustwatch_tests::pki::TestCa;
use trustwatch_tests::{AgentDir, HoldingProxy, ServerProcess};
use uuid::Uuid;

const REPORTS: &str = "/api/v1/reports";

struct World {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
    server: ServerProcess,
    national: String,
}

async fn world(extra: &[&str]) -> World {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let server = ServerProcess::start(&root.join("data"), extra).await;
    let national = server.apikey("national", None).await;
    World {
        _tmp: tmp,
        root,
        server,
        national,
    }
}

impl World {
    /// A new org with an enrolled agent whose config points at `url`
    /// (the server itself when None).
    async fn enrolled_agent(&self, org: &str, name: &str, url: Option<&str>) -> AgentDir {
        let orgs = self
            .server
            .admin(&["org", "list", "--format", "json"])
            .await;
        if !orgs.stdout.contains(&format!("\"{org}\"")) {
            self.server.org_add(org, &format!("{org} trust")).await;
        }
        let token = self.server.token(org, &[]).await;
        let a = AgentDir::new(&self.root.join(name), url, "");
        a.enroll(&self.server.base_url(), &self.server.ca_path(), &token)
            .await
            .assert_ok("enroll");
        a
    }

    /// An HTTPS client presenting the agent's own certificate.
    fn agent_client(&self, a: &AgentDir) -> ApiClient {
        let cert = a.read("agent.pem");
        let key = a.read("agent-key.pem");
        ApiClient::new(
            &self.server.base_url(),
            &self.server.ca_pem(),
            Some((&cert, &key)),
        )
    }

    async fn assets(&self, org: &str) -> Vec<Value> {
        let v = self
            .server
            .client()
            .get_ok(&format!("/api/v1/orgs/{org}/assets"), &self.national)
            .await;
        v["items"].as_array().unwrap().clone()
    }
}

fn agent_id(a: &AgentDir) -> Uuid {
    let e: Value = serde_json::from_str(&a.read("enrollment.json")).unwrap();
    e["agent_id"].as_str().unwrap().parse().unwrap()
}

/// A valid report with one host asset called `host` and one finding.
fn report(agent: Uuid, host: &str) -> Report {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let mut details = serde_json::Map::new();
    details.insert("kernel".into(), json!("6.1.0-26-amd64"));
    Report {
        schema: REPORT_SCHEMA.into(),
        report_id: Uuid::now_v7(),
        collected_at: now,
        agent: AgentInfo {
            id: agent,
            hostname: host.into(),
            version: "test".into(),
        },
        agent_version: "test".into(),
        started_at: now,
        finished_at: now,
        collectors: vec!["host".into()],
        assets: vec![Asset {
            kind: AssetKind::Host,
            id: host.into(),
            details,
        }],
        findings: vec![Finding::new(
            FindingCode::PatchKernelRebootRequired,
            host,
            json!({"running": "6.1.0-25-amd64", "installed": "6.1.0-26-amd64"}),
        )],
        errors: vec![],
        spool_dropped: 0,
    }
}

fn json_headers() -> Vec<(&'static str, &'static str)> {
    vec![("content-type", "application/json")]
}

fn assert_json_error(a: &trustwatch_tests::client::Answer, status: u16) {
    assert_eq!(a.status, status, "{}", a.text);
    assert!(
        a.body["error"].is_string() && a.body["detail"].is_string(),
        "error body must be JSON {{error, detail}}: {}",
        a.text
    );
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_then_once_makes_the_host_visible_through_the_query_api() {
    let w = world(&[]).await;
    let a = w.enrolled_agent("RX1", "a1", None).await;

    // The key never left the agent and nobody else can read it.
    let mode = std::fs::metadata(a.state.join("agent-key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "agent key mode {mode:o}");
    let e: Value = serde_json::from_str(&a.read("enrollment.json")).unwrap();
    assert_eq!(e["org"], "RX1");

    let run = a.once().await.assert_ok("once");
    assert!(run.stderr.contains("stored"), "{}", run.stderr);
    assert!(a.spooled().is_empty(), "spool must be empty after a 202");

    let assets = w.assets("RX1").await;
    assert_eq!(assets.len(), 1, "{assets:?}");
    let host = &assets[0];
    assert_eq!(host["kind"], "host");
    assert_eq!(host["id"], hostname().as_str());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(host["details"]["kernel"], kernel.trim());
    assert_eq!(host["agent_id"], agent_id(&a).to_string());

    let orgs = w.server.client().get_ok("/api/v1/orgs", &w.national).await;
    let codes: Vec<&str> = orgs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["RX1"]);
    assert!(orgs["next_cursor"].is_null());

    let st = a
        .run(&["status", "--format", "json"])
        .await
        .assert_ok("status");
    let st: Value = serde_json::from_str(&st.stdout).unwrap();
    assert_eq!(st["spool"]["depth"], 0);
    assert_eq!(st["spool"]["dropped"], 0);
    assert_eq!(st["server_reachable"], true);
    assert!(st["last_shipped_at"].is_string(), "{st}");

    let stored = w
        .server
        .client()
        .metric("trustwatch_reports_stored_total")
        .await;
    assert_eq!(stored, 1);
    w.server.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_report_sent_twice_is_stored_once() {
    let w = world(&[]).await;
    let a = w.enrolled_agent("RX1", "a1", None).await;
    let c = w.agent_client(&a);
    let r = report(agent_id(&a), "dup-host");
    let body = serde_json::to_vec(&r).unwrap();

    let first = c
        .post_raw(REPORTS, body.clone(), &json_headers())
        .await
        .unwrap();
    assert_eq!(first.status, 202, "{}", first.text);
    assert_eq!(first.body["status"], "stored");
    assert_eq!(first.body["report_id"], r.report_id.to_string());

    let second = c
        .post_raw(REPORTS, body.clone(), &json_headers())
        .await
        .unwrap();
    assert_eq!(second.status, 202, "{}", second.text);
    assert_eq!(second.body["status"], "duplicate");

    let mut h = json_headers();
    h.push(("content-encoding", "gzip"));
    let third = c.post_raw(REPORTS, gzip(&body), &h).await.unwrap();
    assert_eq!(third.body["status"], "duplicate", "{}", third.text);

    let s = w.server.client();
    assert_eq!(s.metric("trustwatch_reports_stored_total").await, 1);
    assert_eq!(s.metric("trustwatch_reports_duplicate_total").await, 2);
    let assets = w.assets("RX1").await;
    assert_eq!(assets.len(), 1);
    let f = s.get_ok("/api/v1/orgs/RX1/findings", &w.national).await;
    assert_eq!(f["items"].as_array().unwrap().len(), 1, "{f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_of_one_organisation_cannot_post_or_read_for_another() {
    let w = world(&[]).await;
    let a = w.enrolled_agent("ORGA", "a", None).await;
    let b = w.enrolled_agent("ORGB", "b", None).await;

    // The body claims to be B's agent: the certificate says A, and A it is.
    let mut r = report(agent_id(&b), "spoofed-host");
    r.agent.hostname = "b-host".into();
    let ans = w
        .agent_client(&a)
        .post_raw(REPORTS, serde_json::to_vec(&r).unwrap(), &json_headers())
        .await
        .unwrap();
    assert_eq!(ans.status, 202, "{}", ans.text);
    let a_assets = w.assets("ORGA").await;
    assert_eq!(a_assets.len(), 1);
    assert_eq!(a_assets[0]["id"], "spoofed-host");
    assert_eq!(a_assets[0]["agent_id"], agent_id(&a).to_string());
    assert!(w.assets("ORGB").await.is_empty());

    // An agent certificate is no query credential.
    let ac = w.agent_client(&a);
    let got = ac.get("/api/v1/orgs/ORGB/assets", None).await;
    assert_json_error(&got, 401);

    // An org key sees its own organisation only.
    let key_a = w.server.apikey("org", Some("ORGA")).await;
    let s = w.server.client();
    for p in [
        "/api/v1/orgs/ORGB",
        "/api/v1/orgs/ORGB/assets",
        "/api/v1/orgs/ORGB/findings",
        "/api/v1/findings?code=patch.kernel.reboot_required",
    ] {
        assert_json_error(&s.get(p, Some(&key_a)).await, 403);
    }
    let own = s.get_ok("/api/v1/orgs", &key_a).await;
    let codes: Vec<&str> = own["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["ORGA"]);
    s.get_ok("/api/v1/orgs/ORGA/assets", &key_a).await;

    // A national key answers the national question.
    let nat = s
        .get_ok(
            "/api/v1/findings?code=patch.kernel.reboot_required",
            &w.national,
        )
        .await;
    let items = nat["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{nat}");
    assert_eq!(items[0]["org"], "ORGA");

    // No key, or a made-up one: 401.
    assert_json_error(&s.get("/api/v1/orgs", None).await, 401);
    assert_json_error(&s.get("/api/v1/orgs", Some("twk_nothing")).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_expired_or_used_up_enrollment_tokens_are_refused() {
    let w = world(&[]).await;
    w.server.org_add("RX1", "Trust one").await;
    let url = w.server.base_url();
    let ca = w.server.ca_path();

    let wrong = AgentDir::new(&w.root.join("wrong"), None, "");
    let run = wrong
        .enroll(&url, &ca, &format!("twe_{}", "0".repeat(64)))
        .await;
    assert_eq!(run.code(), 1, "{}", run.stderr);
    assert!(!wrong.state.join("agent.pem").exists());

    let single = w.server.token("RX1", &[]).await;
    let first = AgentDir::new(&w.root.join("first"), None, "");
    first.enroll(&url, &ca, &single).await.assert_ok("enroll");
    let again = AgentDir::new(&w.root.join("again"), None, "");
    let run = again.enroll(&url, &ca, &single).await;
    assert_eq!(
        run.code(),
        1,
        "a single-use token used twice: {}",
        run.stderr
    );
    assert!(!again.state.join("agent.pem").exists());

    let two = w.server.token("RX1", &["--uses", "2"]).await;
    for n in ["u1", "u2"] {
        AgentDir::new(&w.root.join(n), None, "")
            .enroll(&url, &ca, &two)
            .await
            .assert_ok("enroll within --uses");
    }
    let u3 = AgentDir::new(&w.root.join("u3"), None, "");
    assert_eq!(u3.enroll(&url, &ca, &two).await.code(), 1);

    let short = w.server.token("RX1", &["--ttl", "1s"]).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let late = AgentDir::new(&w.root.join("late"), None, "");
    assert_eq!(late.enroll(&url, &ca, &short).await.code(), 1);

    // The API itself answers 401 JSON.
    let ans = w
        .server
        .client()
        .post_json(
            "/api/v1/enroll",
            &json!({"token": single, "csr": "-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n"}),
        )
        .await;
    assert_json_error(&ans, 401);

    let agents = w
        .server
        .admin(&["agent", "list", "--format", "json"])
        .await
        .assert_ok("agent list");
    let agents: Value = serde_json::from_str(&agents.stdout).unwrap();
    assert_eq!(agents.as_array().unwrap().len(), 3, "{agents}");
    w.server.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_a_4xx_json_error_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("server.toml");
    std::fs::write(
        &cfg,
        "max_body_bytes = 65536\nmax_decompressed_bytes = 1048576\n",
    )
    .unwrap();
    let w = world(&["--config", cfg.to_str().unwrap()]).await;
    let a = w.enrolled_agent("RX1", "a1", None).await;
    let c = w.agent_client(&a);
    let good = serde_json::to_vec(&report(agent_id(&a), "h1")).unwrap();
    let gz = |mut h: Vec<(&'static str, &'static str)>| {
        h.push(("content-encoding", "gzip"));
        h
    };

    let mut wrong_schema: Value = serde_json::from_slice(&good).unwrap();
    wrong_schema["schema"] = json!("trustwatch.report/v0");
    let mut not_v7: Value = serde_json::from_slice(&good).unwrap();
    not_v7["report_id"] = json!(Uuid::new_v4().to_string());
    let full = gzip(&good);
    let truncated = full[..full.len() / 2].to_vec();
    // Valid JSON padded to 2 MiB: compresses to a few KiB, inflates past the cap.
    let mut padded = good.clone();
    padded.extend(std::iter::repeat_n(b' ', 2 * 1024 * 1024));
    let bomb = gzip(&padded);
    assert!(bomb.len() < 65536);
    let oversized = {
        let mut v: Value = serde_json::from_slice(&good).unwrap();
        v["assets"][0]["blob"] = json!("x".repeat(100_000));
        serde_json::to_vec(&v).unwrap()
    };

    type Headers = Vec<(&'static str, &'static str)>;
    let cases: Vec<(&str, Vec<u8>, Headers, u16)> = vec![
        ("not json", b"hello, server".to_vec(), json_headers(), 400),
        (
            "json, not a report",
            br#"{"hello": 1}"#.to_vec(),
            json_headers(),
            400,
        ),
        (
            "wrong schema",
            serde_json::to_vec(&wrong_schema).unwrap(),
            json_headers(),
            400,
        ),
        (
            "report_id not a UUIDv7",
            serde_json::to_vec(&not_v7).unwrap(),
            json_headers(),
            400,
        ),
        ("truncated gzip", truncated, gz(json_headers()), 400),
        (
            "gzip header on plain bytes",
            good.clone(),
            gz(json_headers()),
            400,
        ),
        ("gzip bomb", bomb, gz(json_headers()), 413),
        ("oversized", oversized, json_headers(), 413),
        ("empty", Vec::new(), json_headers(), 400),
    ];
    for (what, body, headers, want) in cases {
        let ans = c.post_raw(REPORTS, body, &headers).await.unwrap();
        assert_eq!(ans.status, want, "{what}: {}", ans.text);
        assert_json_error(&ans, want);
    }
    let s = w.server.client();
    assert_eq!(s.metric("trustwatch_reports_stored_total").await, 0);
    assert!(w.assets("RX1").await.is_empty());

    // And the good one still goes in afterwards.
    let ans = c.post_raw(REPORTS, good, &json_headers()).await.unwrap();
    assert_eq!(ans.status, 202, "{}", ans.text);
    w.server.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_report_is_lost_when_the_agent_dies_between_commit_and_acknowledgement() {
    let mut w = world(&[]).await;
    let proxy = HoldingProxy::start(w.server.addr).await;
    let a = w.enrolled_agent("RX1", "a1", Some(&proxy.url())).await;

    // Server down: two rounds spool, and `once` still exits 0.
    let st = w.server.stop().await;
    assert!(st.success(), "server exit on SIGTERM: {st}");
    for _ in 0..2 {
        let r = a.once().await;
        assert_eq!(r.code(), 0, "once with the server down: {}", r.stderr);
    }
    let spooled = a.spooled();
    assert_eq!(spooled.len(), 2, "{spooled:?}");

    // Server back; the proxy holds the 202 of the first report it commits.
    w.server.restart().await;
    proxy.set_upstream(w.server.addr);
    proxy.arm(w.server.client()).await;
    let mut child = a.command(&["once"]).spawn().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !proxy.holding() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent never got a report committed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().await.unwrap(); // SIGKILL
    let st = child.wait().await.unwrap();
    assert!(!st.success());
    proxy.disarm();

    let s = w.server.client();
    assert_eq!(s.metric("trustwatch_reports_stored_total").await, 1);
    let after_kill = a.spooled();
    assert_eq!(
        after_kill.len(),
        3,
        "the committed report must still be spooled: {after_kill:?}"
    );
    assert_eq!(&after_kill[..2], &spooled[..]);

    // Both come back: everything arrives once, the first as a duplicate.
    w.server.restart().await;
    proxy.set_upstream(w.server.addr);
    let r = a.once().await.assert_ok("once after restart");
    assert!(r.stderr.contains("duplicate"), "{}", r.stderr);
    assert!(a.spooled().is_empty(), "{:?}", a.spooled());
    let s = w.server.client();
    assert_eq!(s.metric("trustwatch_reports_stored_total").await, 3);
    assert_eq!(s.metric("trustwatch_reports_duplicate_total").await, 1);
    let reports = s
        .get_ok("/api/v1/orgs/RX1/reports?limit=100", &w.national)
        .await;
    let mut ids: Vec<String> = reports["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["report_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut want: Vec<String> = after_kill.clone();
    want.extend(
        r.stderr
            .lines()
            .filter(|l| l.contains("shipped report") && l.contains("stored"))
            .filter_map(|l| l.split("shipped report ").nth(1))
            .filter_map(|l| l.split(':').next())
            .map(|s| s.trim().to_owned())
            .filter(|id| !after_kill.contains(id)),
    );
    want.sort();
    assert_eq!(ids.len(), 4, "{reports}");
    assert_eq!(ids, want);
    w.server.assert_no_panic();
}

/// Connects with a client certificate and sends a report request; returns
/// the TLS error if the handshake or the first read fails.
async fn tls_attempt(
    w: &World,
    resolver: Arc<dyn rustls::client::ResolvesClientCert>,
) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in trustwatch_tests::client::certs(&w.server.ca_pem()) {
        roots.add(c).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_cert_resolver(resolver);
    let conn = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(w.server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = conn.connect(name, tcp).await.map_err(|e| e.to_string())?;
    let req = "POST /api/v1/reports HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    tls.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    tls.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[derive(Debug)]
struct FixedCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for FixedCert {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

fn certified(cert_der: Vec<u8>, key_pem: &str) -> Arc<dyn rustls::client::ResolvesClientCert> {
    let key = trustwatch_tests::client::private_key(key_pem);
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).unwrap();
    Arc::new(FixedCert(Arc::new(rustls::sign::CertifiedKey::new(
        vec![rustls::pki_types::CertificateDer::from(cert_der)],
        signer,
    ))))
}

fn pem_cert(cert_pem: &str, key_pem: &str) -> Arc<dyn rustls::client::ResolvesClientCert> {
    let der = trustwatch_tests::client::certs(cert_pem)[0].to_vec();
    certified(der, key_pem)
}

fn assert_alert(what: &str, r: Result<String, String>) {
    match r {
        Err(e) => assert!(
            e.to_lowercase().contains("alert"),
            "{what}: the handshake must end with a TLS alert, got: {e}"
        ),
        Ok(body) => panic!("{what}: the server answered instead of refusing: {body}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_that_fail_verification_end_the_handshake_with_an_alert() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new("trustwatch test CA");
    let (cp, kp) = (tmp.path().join("ca.pem"), tmp.path().join("ca-key.pem"));
    std::fs::write(&cp, &ca.cert_pem).unwrap();
    std::fs::write(&kp, &ca.key_pem).unwrap();
    let w = world(&[
        "--ca-cert",
        cp.to_str().unwrap(),
        "--ca-key",
        kp.to_str().unwrap(),
    ])
    .await;
    assert_eq!(
        w.server.ca_pem().trim(),
        ca.cert_pem.trim(),
        "server must use the CA it was given"
    );
    let a = w.enrolled_agent("RX1", "a1", None).await;
    let id = agent_id(&a).to_string();
    let now = OffsetDateTime::now_utc();

    let other = TestCa::new("somebody else's CA");
    let (c, k) = other.valid_client_cert(&id, "RX1");
    assert_alert("another CA", tls_attempt(&w, pem_cert(&c, &k)).await);

    let (c, k) = ca.client_cert(
        &id,
        "RX1",
        now - time::Duration::days(30),
        now - time::Duration::days(1),
    );
    assert_alert("expired", tls_attempt(&w, pem_cert(&c, &k)).await);

    let (c, k) = ca.client_cert(
        &id,
        "RX1",
        now + time::Duration::days(1),
        now + time::Duration::days(30),
    );
    assert_alert("not yet valid", tls_attempt(&w, pem_cert(&c, &k)).await);

    let (_, k) = ca.valid_client_cert(&id, "RX1");
    assert_alert(
        "malformed",
        tls_attempt(&w, certified(b"\x30\x03\x02\x01\x00garbage".to_vec(), &k)).await,
    );

    // Verified but not acceptable: JSON 401/403, not a TLS failure.
    let s = w.server.client();
    let body = serde_json::to_vec(&report(agent_id(&a), "h")).unwrap();
    let none = s
        .post_raw(REPORTS, body.clone(), &json_headers())
        .await
        .unwrap();
    assert_json_error(&none, 401);

    let (c, k) = ca.valid_client_cert(&Uuid::now_v7().to_string(), "RX1");
    let unknown = ApiClient::new(&w.server.base_url(), &w.server.ca_pem(), Some((&c, &k)));
    let ans = unknown
        .post_raw(REPORTS, body.clone(), &json_headers())
        .await
        .unwrap();
    assert_json_error(&ans, 403);

    // A certificate naming the right agent but another organisation.
    w.server.org_add("RX2", "Trust two").await;
    let (c, k) = ca.valid_client_cert(&id, "RX2");
    let wrong_org = ApiClient::new(&w.server.base_url(), &w.server.ca_pem(), Some((&c, &k)));
    let ans = wrong_org
        .post_raw(REPORTS, body.clone(), &json_headers())
        .await
        .unwrap();
    assert_json_error(&ans, 403);

    // The real agent works until it is revoked.
    let ok = w
        .agent_client(&a)
        .post_raw(REPORTS, body.clone(), &json_headers())
        .await
        .unwrap();
    assert_eq!(ok.status, 202, "{}", ok.text);
    let body = serde_json::to_vec(&report(agent_id(&a), "h")).unwrap();
    w.server
        .admin(&["agent", "revoke", &id])
        .await
        .assert_ok("agent revoke");
    let ans = w
        .agent_client(&a)
        .post_raw(REPORTS, body, &json_headers())
        .await
        .unwrap();
    assert_json_error(&ans, 403);
    assert_eq!(s.metric("trustwatch_reports_stored_total").await, 1);
    w.server.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_service_ships_its_first_round_and_stops_cleanly_on_sigterm() {
    let w = world(&[]).await;
    let a = w.enrolled_agent("RX1", "svc", None).await;
    std::fs::write(
        &a.config,
        format!(
            "state_dir = {:?}\n[collect.host]\ninterval = \"1h\"\njitter = \"1s\"\n",
            a.state.display().to_string()
        ),
    )
    .unwrap();
    let mut child = a.command(&["run"]).spawn().unwrap();
    let s = w.server.client();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while s.metric("trustwatch_reports_stored_total").await < 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "`run` shipped nothing within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    trustwatch_tests::process::sigterm(child.id().unwrap()).await;
    let st = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("agent stops within 15 s of SIGTERM")
        .unwrap();
    assert!(st.success(), "agent exit on SIGTERM: {st}");
    assert!(a.spooled().is_empty());
    assert_eq!(w.assets("RX1").await.len(), 1);
}
