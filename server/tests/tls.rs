//! The real HTTPS listener (in-process, loopback, port 0): enrolment and
//! reports over mutual TLS, refused client certificates, graceful shutdown.
#![forbid(unsafe_code)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{csr_with_key, endpoint, finding, report};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use trustwatch_server::clock::{Clock, SystemClock};
use trustwatch_server::config::ServeOptions;
use trustwatch_server::pki::{Ca, Csr};
use trustwatch_server::server::{start, Running};
use trustwatch_server::store::ApiKeyRole;
use uuid::Uuid;

struct Server {
    dir: tempfile::TempDir,
    running: Option<Running>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    base: String,
    ca_pem: String,
}

impl Server {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = ServeOptions::new(dir.path());
        opts.listen = "127.0.0.1:0".into();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock::system());
        let running = start(&opts, clock, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
        let base = format!("https://localhost:{}", running.local_addr.port());
        let ca_pem = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
        Server {
            dir,
            running: Some(running),
            stop: Some(tx),
            base,
            ca_pem,
        }
    }

    fn running(&self) -> &Running {
        self.running.as_ref().unwrap()
    }

    async fn token(&self, org: &str) -> String {
        let st = &self.running().state;
        let _ = trustwatch_server::admin::org_add(
            &st.store,
            st.clock.as_ref(),
            org,
            "Trust",
            None,
            &mut Vec::new(),
        )
        .await;
        let mut out = Vec::new();
        trustwatch_server::admin::token_create(
            &st.store,
            st.clock.as_ref(),
            org,
            Duration::from_secs(600),
            1,
            &mut out,
        )
        .await
        .unwrap();
        common::last_line(&out)
    }

    /// Enrols over HTTPS; returns (agent id, cert PEM, key PEM).
    async fn enroll(&self, org: &str) -> (Uuid, String, String) {
        let token = self.token(org).await;
        let (csr, key) = csr_with_key();
        let resp = client(&self.ca_pem, None)
            .post(format!("{}/api/v1/enroll", self.base))
            .json(&json!({"token": token, "csr": csr}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["ca"].as_str().unwrap(), self.ca_pem);
        (
            v["agent_id"].as_str().unwrap().parse().unwrap(),
            v["certificate"].as_str().unwrap().to_owned(),
            key.serialize_pem(),
        )
    }

    async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(r) = self.running.take() {
            tokio::time::timeout(Duration::from_secs(15), r.wait())
                .await
                .expect("server did not stop in time")
                .unwrap();
        }
    }
}

fn tls_config(ca_pem: &str, identity: Option<(&str, &str)>) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let b = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    match identity {
        Some((cert, key)) => b
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    }
}

fn client(ca_pem: &str, identity: Option<(&str, &str)>) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls_config(ca_pem, identity))
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn sample_report(agent: Uuid) -> Value {
    report(
        agent,
        "2025-10-01T10:00:00Z",
        &["tls"],
        vec![endpoint("ehr:443")],
        vec![finding("tls.protocol.tls1_0", "ehr:443", "", json!({}))],
    )
}

#[tokio::test]
async fn enrolled_agent_posts_a_report_over_mutual_tls() {
    let s = Server::start().await;
    let (id, cert, key) = s.enroll("RX1").await;
    let c = client(&s.ca_pem, Some((&cert, &key)));
    let r = sample_report(id);
    let resp = c
        .post(format!("{}/api/v1/reports", s.base))
        .header("content-encoding", "gzip")
        .body(common::gzip(r.to_string().as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v, json!({"report_id": r["report_id"], "status": "stored"}));

    // The query API on the same listener, without a client certificate.
    let st = &s.running().state;
    let mut out = Vec::new();
    trustwatch_server::admin::apikey_create(
        &st.store,
        st.clock.as_ref(),
        ApiKeyRole::National,
        None,
        &mut out,
    )
    .await
    .unwrap();
    let key = common::last_line(&out);
    let v: Value = client(&s.ca_pem, None)
        .get(format!("{}/api/v1/orgs/RX1/findings", s.base))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["items"][0]["agent_id"], id.to_string());
    s.shutdown().await;
}

#[tokio::test]
async fn report_without_a_client_certificate_is_401_json() {
    let s = Server::start().await;
    let resp = client(&s.ca_pem, None)
        .post(format!("{}/api/v1/reports", s.base))
        .body(sample_report(Uuid::now_v7()).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"], "client_certificate_required");
    // Health over the real listener on 127.0.0.1 as well.
    let addr = s.running().local_addr;
    let resp = client(&s.ca_pem, None)
        .get(format!("https://127.0.0.1:{}/healthz", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    s.shutdown().await;
}

#[tokio::test]
async fn client_certificate_from_another_ca_is_refused_at_the_handshake() {
    let s = Server::start().await;
    let (id, _cert, _key) = s.enroll("RX1").await;
    // Same agent id and org, signed by a stranger's CA.
    let other = Ca::generate(SystemClock::system().now()).unwrap();
    let (csr, key) = csr_with_key();
    let forged = other
        .sign_agent(
            &Csr::from_pem(&csr).unwrap(),
            id,
            "RX1",
            SystemClock::system().now(),
        )
        .unwrap();
    let r = client(&s.ca_pem, Some((&forged.pem, &key.serialize_pem())))
        .post(format!("{}/api/v1/reports", s.base))
        .body(sample_report(id).to_string())
        .send()
        .await;
    let e = r.expect_err("expected a TLS failure");
    assert!(format!("{e:?}").contains("AlertReceived"), "{e:?}");
    assert_eq!(count_reports(&s).await, 0);
    s.shutdown().await;
}

#[tokio::test]
async fn expired_client_certificate_from_the_right_ca_is_refused_at_the_handshake() {
    let s = Server::start().await;
    let (id, _cert, _key) = s.enroll("RX1").await;
    let ca = Ca::load(
        &s.dir.path().join("ca.pem"),
        &s.dir.path().join("ca-key.pem"),
    )
    .unwrap();
    let (csr, key) = csr_with_key();
    let two_years_ago = SystemClock::system().now() - Duration::from_secs(2 * 365 * 86_400);
    let expired = ca
        .sign_agent(&Csr::from_pem(&csr).unwrap(), id, "RX1", two_years_ago)
        .unwrap();
    let r = client(&s.ca_pem, Some((&expired.pem, &key.serialize_pem())))
        .post(format!("{}/api/v1/reports", s.base))
        .body(sample_report(id).to_string())
        .send()
        .await;
    let e = r.expect_err("expected a TLS failure");
    assert!(format!("{e:?}").contains("AlertReceived"), "{e:?}");
    assert_eq!(count_reports(&s).await, 0);
    s.shutdown().await;
}

async fn count_reports(s: &Server) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM reports")
        .fetch_one(s.running().state.store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn silent_client_costs_nothing_and_others_are_served() {
    let s = Server::start().await;
    let addr = s.running().local_addr;
    // Connect and say nothing; the server must keep serving others.
    let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let resp = client(&s.ca_pem, None)
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    s.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_accepting_and_finishes_the_request_in_flight() {
    let mut s = Server::start().await;
    let (id, cert, key) = s.enroll("RX1").await;
    let addr = s.running().local_addr;
    let connector =
        tokio_rustls::TlsConnector::from(Arc::new(tls_config(&s.ca_pem, Some((&cert, &key)))));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let body = sample_report(id).to_string().into_bytes();
    let head = format!(
        "POST /api/v1/reports HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&body[..body.len() / 2]).await.unwrap();
    tls.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Signal shutdown while the request is half sent.
    let _ = s.stop.take().unwrap().send(());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener should be closed"
    );

    tls.write_all(&body[body.len() / 2..]).await.unwrap();
    tls.flush().await.unwrap();
    let mut resp = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut resp)).await;
    let text = String::from_utf8_lossy(&resp);
    assert!(text.starts_with("HTTP/1.1 202"), "{text}");
    assert!(text.contains("\"stored\""), "{text}");
    let running = s.running.take().unwrap();
    tokio::time::timeout(Duration::from_secs(15), running.wait())
        .await
        .expect("server did not stop")
        .unwrap();
    // Committed before the answer: visible in the file after shutdown.
    let store = trustwatch_server::store::Store::open_in(s.dir.path())
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reports")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn own_ca_and_own_server_certificate_are_used_when_given() {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let files = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(DnType::CommonName, "Hospital Root");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = p.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(p, ca_key);
    let srv_key = KeyPair::generate().unwrap();
    let srv = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&srv_key, &issuer)
        .unwrap();
    let w = |name: &str, text: String| {
        let path = files.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let ca_path = w("ca.pem", ca_cert.pem());
    let ca_key_path = w("ca-key.pem", issuer.key().serialize_pem());
    let srv_path = w("srv.pem", srv.pem());
    let srv_key_path = w("srv-key.pem", srv_key.serialize_pem());

    let data = tempfile::tempdir().unwrap();
    let mut opts = ServeOptions::new(data.path());
    opts.listen = "127.0.0.1:0".into();
    opts.ca = Some((ca_path, ca_key_path));
    opts.tls = Some((srv_path, srv_key_path));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let running = start(&opts, Arc::new(SystemClock::system()), async {
        let _ = rx.await;
    })
    .await
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(data.path().join("ca.pem"))
            .unwrap()
            .trim(),
        ca_cert.pem().trim(),
        "ca.pem holds the CA in use"
    );
    assert!(!data.path().join("ca-key.pem").exists(), "no CA generated");
    assert!(
        !data.path().join("server.pem").exists(),
        "no server cert generated"
    );
    let st = &running.state;
    trustwatch_server::admin::org_add(
        &st.store,
        st.clock.as_ref(),
        "RX1",
        "One",
        None,
        &mut Vec::new(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    trustwatch_server::admin::token_create(
        &st.store,
        st.clock.as_ref(),
        "RX1",
        Duration::from_secs(60),
        1,
        &mut out,
    )
    .await
    .unwrap();
    let token = common::last_line(&out);
    let (csr, key) = csr_with_key();
    let base = format!("https://localhost:{}", running.local_addr.port());
    let v: Value = client(&ca_cert.pem(), None)
        .post(format!("{base}/api/v1/enroll"))
        .json(&json!({"token": token, "csr": csr}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cert = v["certificate"].as_str().unwrap().to_owned();
    let id: Uuid = v["agent_id"].as_str().unwrap().parse().unwrap();
    let resp = client(&ca_cert.pem(), Some((&cert, &key.serialize_pem())))
        .post(format!("{base}/api/v1/reports"))
        .json(&sample_report(id))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let _ = tx.send(());
    running.wait().await.unwrap();
}
