//! Test harness: the router over a temporary SQLite store with a manual
//! clock and an in-memory CA, plus helpers to enrol agents, post reports
//! (with the client certificate extension the TLS layer would set) and
//! query the API.
#![allow(dead_code)]

pub mod zipw;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use flate2::write::GzEncoder;
use flate2::Compression;
use rcgen::{CertificateParams, KeyPair};
use serde_json::{json, Value};
use tower::ServiceExt;
use trustwatch_server::admin;
use trustwatch_server::api::{self, AppState, Limits};
use trustwatch_server::clock::{parse_rfc3339, Clock, ManualClock};
use trustwatch_server::metrics::Metrics;
use trustwatch_server::pki::Ca;
use trustwatch_server::store::{ApiKeyRole, Store};
use trustwatch_server::tls::{client_cert_from_der, ClientCert, PeerIdentity};
use uuid::Uuid;

pub const T0: &str = "2025-10-01T12:00:00Z";

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub state: AppState,
    pub router: Router,
    pub clock: Arc<ManualClock>,
}

impl Harness {
    pub async fn new() -> Self {
        Self::with_limits(Limits {
            max_body_bytes: 8 << 20,
            max_decompressed_bytes: 64 << 20,
        })
        .await
    }

    pub async fn with_limits(limits: Limits) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).await.unwrap();
        let clock = Arc::new(ManualClock::new(parse_rfc3339(T0).unwrap()));
        let ca = Ca::generate(Clock::now(clock.as_ref())).unwrap();
        let state = AppState {
            store,
            ca: Arc::new(ca),
            clock: clock.clone(),
            metrics: Arc::new(Metrics::default()),
            limits,
            policy: Default::default(),
        };
        let router = api::router(state.clone());
        Harness {
            dir,
            state,
            router,
            clock,
        }
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    pub async fn org(&self, code: &str) {
        admin::org_add(
            self.store(),
            self.clock.as_ref(),
            code,
            &format!("Trust {code}"),
            None,
            &mut Vec::new(),
        )
        .await
        .unwrap();
    }

    pub async fn token(&self, org: &str, ttl: Duration, uses: u32) -> String {
        let mut out = Vec::new();
        admin::token_create(self.store(), self.clock.as_ref(), org, ttl, uses, &mut out)
            .await
            .unwrap();
        last_line(&out)
    }

    pub async fn apikey(&self, role: ApiKeyRole, org: Option<&str>) -> String {
        let mut out = Vec::new();
        admin::apikey_create(self.store(), self.clock.as_ref(), role, org, &mut out)
            .await
            .unwrap();
        last_line(&out)
    }

    pub async fn request(&self, req: Request<Body>) -> (StatusCode, Value) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20)
            .await
            .unwrap();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, v)
    }

    pub async fn enroll_raw(&self, body: Value) -> (StatusCode, Value) {
        self.request(
            Request::post("/api/v1/enroll")
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }

    pub async fn enroll(&self, token: &str) -> (StatusCode, Value) {
        self.enroll_raw(json!({"token": token, "csr": csr(), "hostname": "pacs01"}))
            .await
    }

    /// Enrols a new agent of `org` and returns its peer identity.
    pub async fn agent(&self, org: &str) -> PeerIdentity {
        let token = self.token(org, Duration::from_secs(3600), 1).await;
        let (status, v) = self.enroll(&token).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        let pem = v["certificate"].as_str().unwrap();
        match client_cert_from_der(&pem_der(pem)) {
            ClientCert::Agent(p) => p,
            other => panic!("{other:?}"),
        }
    }

    pub async fn post_report_with(
        &self,
        cert: Option<ClientCert>,
        body: Vec<u8>,
        encoding: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut b = Request::post("/api/v1/reports").header("content-type", "application/json");
        if let Some(e) = encoding {
            b = b.header("content-encoding", e);
        }
        let mut req = b.body(Body::from(body)).unwrap();
        if let Some(c) = cert {
            req.extensions_mut().insert(c);
        }
        self.request(req).await
    }

    pub async fn post_report(&self, agent: &PeerIdentity, report: &Value) -> (StatusCode, Value) {
        self.post_report_with(
            Some(ClientCert::Agent(agent.clone())),
            report.to_string().into_bytes(),
            None,
        )
        .await
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> (StatusCode, Value) {
        let mut b = Request::get(path);
        if let Some(k) = key {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        self.request(b.body(Body::empty()).unwrap()).await
    }

    /// Everything a report could change, as text, to compare before/after.
    pub async fn snapshot(&self) -> String {
        let mut s = String::new();
        for q in [
            "SELECT report_id || ' ' || agent_id || ' ' || org || ' ' || received_at || ' ' || collected_at || ' ' || size FROM reports ORDER BY 1",
            "SELECT org || ' ' || kind || ' ' || id || ' ' || first_seen || ' ' || last_seen || ' ' || agent_id || ' ' || details FROM assets ORDER BY 1",
            "SELECT org || ' ' || asset_kind || ' ' || asset_id || ' ' || code || ' ' || subject || ' ' || status || ' ' || first_seen || ' ' || last_seen || ' ' || COALESCE(resolved_at, '-') || ' ' || reopened || ' ' || evidence FROM findings ORDER BY 1",
            "SELECT id || ' ' || COALESCE(last_seen, '-') || ' ' || COALESCE(revoked_at, '-') FROM agents ORDER BY 1",
            "SELECT token_hash || ' ' || uses_left FROM enroll_tokens ORDER BY 1",
        ] {
            let rows: Vec<String> = sqlx::query_scalar(q)
                .fetch_all(self.store().pool())
                .await
                .unwrap();
            s.push_str(&rows.join("\n"));
            s.push_str("\n--\n");
        }
        s
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(self.store().pool())
            .await
            .unwrap()
    }
}

pub fn last_line(out: &[u8]) -> String {
    String::from_utf8_lossy(out)
        .lines()
        .last()
        .unwrap()
        .to_owned()
}

/// A fresh PEM CSR (with a subject the server must ignore).
pub fn csr() -> String {
    csr_with_key().0
}

pub fn csr_with_key() -> (String, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name
        .push(rcgen::DnType::OrganizationName, "SOMEONE-ELSE");
    let pem = p.serialize_request(&key).unwrap().pem().unwrap();
    (pem, key)
}

pub fn pem_der(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A finding JSON object.
pub fn finding(code: &str, asset: &str, subject: &str, evidence: Value) -> Value {
    let category = code.split('.').next().unwrap();
    let mut f = json!({
        "code": code,
        "severity": "high",
        "category": category,
        "asset": asset,
        "title": format!("title of {code}"),
        "evidence": evidence,
    });
    if !subject.is_empty() {
        f["subject"] = json!(subject);
    }
    f
}

/// A `trustwatch.report/v1` document.
pub fn report(
    agent: Uuid,
    collected_at: &str,
    collectors: &[&str],
    assets: Vec<Value>,
    findings: Vec<Value>,
) -> Value {
    json!({
        "schema": "trustwatch.report/v1",
        "report_id": Uuid::now_v7(),
        "collected_at": collected_at,
        "agent": {"id": agent, "hostname": "pacs01", "version": "0.1.0"},
        "agent_version": "0.1.0",
        "started_at": collected_at,
        "finished_at": collected_at,
        "collectors": collectors,
        "assets": assets,
        "findings": findings,
        "errors": [],
        "spool_dropped": 0
    })
}

pub fn host(id: &str) -> Value {
    json!({"kind": "host", "id": id, "kernel": "6.1.0-26-amd64"})
}

pub fn endpoint(id: &str) -> Value {
    json!({"kind": "tls_endpoint", "id": id, "grade": "B"})
}

/// The shared feed samples: `$TRUSTWATCH_SHARED_DIR/samples`, or
/// `<repo>/../shared/samples`. A missing directory fails the test.
pub fn samples() -> std::path::PathBuf {
    let base = std::env::var_os("TRUSTWATCH_SHARED_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let dir = base.join("samples");
    assert!(
        dir.is_dir(),
        "feed samples missing at {} (set TRUSTWATCH_SHARED_DIR)",
        dir.display()
    );
    dir
}

/// Every row of the feed tables, as text, to compare before/after.
pub async fn feed_state(store: &Store) -> String {
    let mut s = String::new();
    for q in [
        "SELECT id || ' ' || kind || ' ' || source || ' ' || sha256 || ' ' || records || ' ' || stored || ' ' || skipped FROM feed_imports ORDER BY 1",
        "SELECT id || ' ' || modified || ' ' || COALESCE(withdrawn, '-') || ' ' || cves || ' ' || import_id FROM osv_advisories ORDER BY 1",
        "SELECT advisory_id || ' ' || seq || ' ' || ecosystem || ' ' || package || ' ' || ranges || ' ' || versions FROM osv_affected ORDER BY 1",
        "SELECT cve || ' ' || date_added || ' ' || ransomware FROM kev ORDER BY 1",
        "SELECT cve || ' ' || score || ' ' || percentile FROM epss ORDER BY 1",
        "SELECT os || ' ' || release || ' ' || COALESCE(standard_end, '-') || ' ' || COALESCE(extended_end, '-') FROM eol_releases ORDER BY 1",
        "SELECT org || ' ' || asset_id || ' ' || code || ' ' || subject || ' ' || status || ' ' || collector FROM findings ORDER BY 1",
    ] {
        let rows: Vec<String> = sqlx::query_scalar(q).fetch_all(store.pool()).await.unwrap();
        s.push_str(&rows.join("\n"));
        s.push_str("\n--\n");
    }
    s
}
