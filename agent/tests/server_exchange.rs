//! The agent against a small fake HTTPS server on 127.0.0.1 (mutual TLS,
//! rustls with ring): enrolment, shipping and the spool's reaction to each
//! kind of answer. The real server is exercised by the workspace's `tests/`.

use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use flate2::read::GzDecoder;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use trustwatch_agent::clock::SystemClock;
use trustwatch_agent::config::{self, Config, ServerUrl};
use trustwatch_agent::enroll::{enroll, EnrollError, EnrollOptions};
use trustwatch_agent::service::{once, Agent};
use trustwatch_agent::ship::DrainEnd;
use trustwatch_agent::state::StateDir;
use trustwatch_common::report::{EnrollRequest, EnrollResponse};
use trustwatch_common::Report;

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    client_cert: bool,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Responder = Box<dyn Fn(&Seen) -> (u16, String) + Send + Sync>;

struct FakeServer {
    addr: SocketAddr,
    ca_pem: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    respond: Arc<Mutex<Responder>>,
}

struct Ca {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

fn make_ca() -> Ca {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test CA");
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: rcgen::Issuer::new(params, key),
    }
}

impl FakeServer {
    async fn start(ca: &Ca) -> FakeServer {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .unwrap()
            .signed_by(&key, &ca.issuer)
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .unwrap();
        let cfg = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
            )
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(cfg));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let respond: Arc<Mutex<Responder>> =
            Arc::new(Mutex::new(Box::new(|_: &Seen| (500, String::new()))));
        let (seen2, respond2) = (seen.clone(), respond.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let (seen, respond) = (seen2.clone(), respond2.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let client_cert = tls.get_ref().1.peer_certificates().is_some();
                    let Some(mut req) = read_request(&mut tls).await else {
                        return;
                    };
                    req.client_cert = client_cert;
                    let (status, body) = (respond.lock().unwrap())(&req);
                    seen.lock().unwrap().push(req);
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(resp.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        FakeServer {
            addr,
            ca_pem: ca.pem.clone(),
            seen,
            respond,
        }
    }

    fn url(&self) -> ServerUrl {
        ServerUrl::parse(&format!("https://127.0.0.1:{}", self.addr.port())).unwrap()
    }

    fn answer(&self, f: impl Fn(&Seen) -> (u16, String) + Send + Sync + 'static) {
        *self.respond.lock().unwrap() = Box::new(f);
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn read_request<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Seen {
        method,
        path,
        headers,
        body,
        client_cert: false,
    })
}

/// Answers enrolment requests like the real server: signs the CSR.
fn enroll_answer(
    issuer: Arc<rcgen::Issuer<'static, rcgen::KeyPair>>,
    ca_pem: String,
    agent_id: uuid::Uuid,
) -> impl Fn(&Seen) -> (u16, String) + Send + Sync + 'static {
    move |req: &Seen| {
        let r: EnrollRequest = serde_json::from_slice(&req.body).unwrap();
        if r.token != "good-token" {
            return (
                401,
                r#"{"error":"unauthorized","detail":"token unknown, expired or used up"}"#.into(),
            );
        }
        let mut csr = rcgen::CertificateSigningRequestParams::from_pem(&r.csr).unwrap();
        csr.params.distinguished_name = rcgen::DistinguishedName::new();
        csr.params
            .distinguished_name
            .push(rcgen::DnType::CommonName, agent_id.to_string());
        csr.params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "RX1");
        let cert = csr.signed_by(&issuer).unwrap();
        let answer = EnrollResponse {
            agent_id,
            org: "RX1".into(),
            certificate: cert.pem(),
            ca: ca_pem.clone(),
        };
        (201, serde_json::to_string(&answer).unwrap())
    }
}

fn config_for(state: &Path, extra: &str) -> Config {
    let text = format!(
        "state_dir = {:?}\n[ship]\ntimeout = \"5s\"\n{extra}",
        state.display().to_string()
    );
    config::parse(Path::new("test.toml"), text.as_bytes())
        .unwrap()
        .validate()
        .unwrap()
}

struct Enrolled {
    server: FakeServer,
    _dir: tempfile::TempDir,
    state: std::path::PathBuf,
    agent_id: uuid::Uuid,
}

async fn enrolled() -> Enrolled {
    let ca = make_ca();
    let server = FakeServer::start(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let ca_file = dir.path().join("server-ca.pem");
    std::fs::write(&ca_file, &server.ca_pem).unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "good-token\n").unwrap();
    let agent_id = uuid::Uuid::now_v7();
    server.answer(enroll_answer(
        Arc::new(ca.issuer),
        server.ca_pem.clone(),
        agent_id,
    ));
    let opts = EnrollOptions {
        server: server.url(),
        token_file,
        server_ca: Some(ca_file),
        state: StateDir::new(&state),
        hostname: "testhost".into(),
    };
    let e = enroll(&opts, &SystemClock).await.unwrap();
    assert_eq!(e.agent_id, agent_id);
    assert_eq!(e.org, "RX1");
    Enrolled {
        server,
        _dir: dir,
        state,
        agent_id,
    }
}

#[tokio::test]
async fn enrolment_writes_credentials_with_a_private_key_file() {
    let e = enrolled().await;
    let seen = e.server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/api/v1/enroll");
    assert!(!seen[0].client_cert);
    let req: EnrollRequest = serde_json::from_slice(&seen[0].body).unwrap();
    assert!(req.csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
    assert_eq!(req.hostname.as_deref(), Some("testhost"));

    let s = StateDir::new(&e.state);
    let mode = std::fs::metadata(s.key_path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert!(std::fs::read_to_string(s.key_path())
        .unwrap()
        .contains("PRIVATE KEY"));
    assert_eq!(
        std::fs::read_to_string(s.ca_path()).unwrap(),
        e.server.ca_pem
    );
    let rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.enrollment_path()).unwrap()).unwrap();
    assert_eq!(rec["agent_id"], e.agent_id.to_string());
    assert_eq!(rec["org"], "RX1");
    assert_eq!(rec["server_url"], e.server.url().to_string());
    assert!(rec["enrolled_at"].is_string());
}

#[tokio::test]
async fn enrolment_with_a_wrong_token_fails_with_the_detail_and_writes_nothing() {
    let ca = make_ca();
    let server = FakeServer::start(&ca).await;
    server.answer(enroll_answer(
        Arc::new(ca.issuer),
        server.ca_pem.clone(),
        uuid::Uuid::now_v7(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &server.ca_pem).unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "bad-token").unwrap();
    let state = dir.path().join("state");
    let opts = EnrollOptions {
        server: server.url(),
        token_file,
        server_ca: Some(ca_file),
        state: StateDir::new(&state),
        hostname: "h".into(),
    };
    let err = enroll(&opts, &SystemClock).await.unwrap_err();
    match &err {
        EnrollError::Refused { status, detail } => {
            assert_eq!(*status, 401);
            assert!(detail.contains("token unknown"), "{detail}");
        }
        other => panic!("unexpected {other}"),
    }
    assert!(!state.join("agent-key.pem").exists());
    assert!(!state.join("enrollment.json").exists());
}

#[tokio::test]
async fn enrolment_refuses_a_server_not_signed_by_the_given_ca() {
    let ca = make_ca();
    let server = FakeServer::start(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    let other_ca = dir.path().join("other.pem");
    std::fs::write(&other_ca, make_ca().pem).unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "good-token").unwrap();
    let opts = EnrollOptions {
        server: server.url(),
        token_file,
        server_ca: Some(other_ca),
        state: StateDir::new(dir.path().join("state")),
        hostname: "h".into(),
    };
    let err = enroll(&opts, &SystemClock).await.unwrap_err();
    assert!(matches!(err, EnrollError::Request { .. }), "{err}");
    assert!(server.seen().is_empty());
}

fn ack(req: &Seen, status: &str) -> (u16, String) {
    let mut json = Vec::new();
    GzDecoder::new(&req.body[..])
        .read_to_end(&mut json)
        .unwrap();
    let r: Report = serde_json::from_slice(&json).unwrap();
    (
        202,
        serde_json::json!({"report_id": r.report_id, "status": status}).to_string(),
    )
}

fn shipped_reports(server: &FakeServer) -> Vec<Report> {
    server
        .seen()
        .into_iter()
        .filter(|s| s.path == "/api/v1/reports")
        .map(|s| {
            let mut json = Vec::new();
            GzDecoder::new(&s.body[..]).read_to_end(&mut json).unwrap();
            serde_json::from_slice(&json).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn once_ships_a_gzip_report_over_mutual_tls_and_empties_the_spool() {
    let e = enrolled().await;
    e.server.answer(|req| ack(req, "stored"));
    let cfg = config_for(&e.state, "[collect.tls]\ntargets = [\"127.0.0.1:1\"]\n");
    let agent = Agent::load(&cfg).unwrap();
    let out = once(&agent).await.unwrap();
    assert!(
        matches!(out.drain.end, DrainEnd::Empty),
        "{:?}",
        out.drain.end
    );
    assert_eq!(out.drain.shipped, 1);

    let seen: Vec<Seen> = e.server.seen().into_iter().skip(1).collect();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.method, "POST");
    assert!(req.client_cert, "no client certificate presented");
    assert_eq!(req.header("content-encoding"), Some("gzip"));
    assert_eq!(req.header("content-type"), Some("application/json"));
    let reports = shipped_reports(&e.server);
    let r = &reports[0];
    assert_eq!(r.report_id, out.report_id);
    assert_eq!(r.report_id.get_version_num(), 7);
    assert_eq!(r.schema, "trustwatch.report/v1");
    assert_eq!(r.agent.id, e.agent_id);
    // The TLS target refuses connections: the TLS collector ran, and says
    // so in `errors` rather than reporting nothing.
    assert_eq!(r.collectors, vec!["host", "tls"]);
    assert_eq!(r.assets[0].kind.as_str(), "host");
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert_eq!(r.errors[0].collector, "tls");
    assert_eq!(r.errors[0].target.as_deref(), Some("127.0.0.1:1"));
    assert!(
        r.errors[0].reason.contains("refused"),
        "{}",
        r.errors[0].reason
    );
    assert_eq!(r.spool_dropped, 0);
    r.validate().unwrap();

    assert_eq!(agent.spool.stats().unwrap().depth, 0);
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(e.state.join("status.json")).unwrap()).unwrap();
    assert!(status["last_shipped_at"].is_string());
    assert!(status["last_runs"]["host"].is_string());
}

#[tokio::test]
async fn server_errors_keep_reports_spooled_and_the_same_id_is_retried() {
    let e = enrolled().await;
    e.server.answer(|_| {
        (
            503,
            r#"{"error":"unavailable","detail":"database down"}"#.into(),
        )
    });
    let cfg = config_for(&e.state, "");
    let agent = Agent::load(&cfg).unwrap();
    let first = once(&agent).await.unwrap();
    match &first.drain.end {
        DrainEnd::Retry { reason, .. } => assert!(reason.contains("database down"), "{reason}"),
        other => panic!("expected a retry, got {other:?}"),
    }
    assert_eq!(agent.spool.stats().unwrap().depth, 1);

    // Next time the server works: both reports go, oldest first, the first
    // with the id it had before.
    e.server.answer(|req| ack(req, "stored"));
    let second = once(&agent).await.unwrap();
    assert_eq!(second.drain.shipped, 2);
    let ids: Vec<_> = shipped_reports(&e.server)
        .iter()
        .map(|r| r.report_id)
        .collect();
    assert_eq!(
        ids,
        vec![first.report_id, first.report_id, second.report_id]
    );
    assert_eq!(agent.spool.stats().unwrap().depth, 0);
}

#[tokio::test]
async fn a_report_the_server_refuses_for_good_is_quarantined_and_the_next_ships() {
    let e = enrolled().await;
    let cfg = config_for(&e.state, "");
    let agent = Agent::load(&cfg).unwrap();
    e.server.answer(|_| (503, String::new()));
    let first = once(&agent).await.unwrap();
    let bad = first.report_id;
    e.server.answer(move |req| {
        let mut json = Vec::new();
        GzDecoder::new(&req.body[..])
            .read_to_end(&mut json)
            .unwrap();
        let r: Report = serde_json::from_slice(&json).unwrap();
        if r.report_id == bad {
            (422, r#"{"error":"invalid","detail":"schema"}"#.into())
        } else {
            ack(req, "duplicate")
        }
    });
    let second = once(&agent).await.unwrap();
    assert!(matches!(second.drain.end, DrainEnd::Empty));
    assert_eq!((second.drain.shipped, second.drain.quarantined), (1, 1));
    let st = agent.spool.stats().unwrap();
    assert_eq!((st.depth, st.quarantined), (0, 1));
    assert!(e
        .state
        .join("spool/quarantine")
        .join(format!("{bad}.json"))
        .exists());
}

#[tokio::test]
async fn unauthorized_stops_shipping_and_keeps_everything() {
    let e = enrolled().await;
    let cfg = config_for(&e.state, "");
    let agent = Agent::load(&cfg).unwrap();
    e.server.answer(|_| {
        (
            403,
            r#"{"error":"forbidden","detail":"agent revoked"}"#.into(),
        )
    });
    once(&agent).await.unwrap();
    let out = once(&agent).await.unwrap();
    match &out.drain.end {
        DrainEnd::Unauthorized { status, detail } => {
            assert_eq!(*status, 403);
            assert!(detail.contains("revoked"));
        }
        other => panic!("expected unauthorized, got {other:?}"),
    }
    // Shipping stopped at the first refusal each time: one request per once.
    assert_eq!(shipped_reports(&e.server).len(), 2);
    assert_eq!(agent.spool.stats().unwrap().depth, 2);
    assert!(out.drain.end.problem().unwrap().contains("enrol it again"));
}

#[tokio::test]
async fn unreachable_server_still_spools_the_report() {
    let e = enrolled().await;
    // Nothing listens on this port (bound then closed).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cfg = config_for(&e.state, "");
    cfg.server_url = Some(ServerUrl::parse(&format!("https://127.0.0.1:{port}")).unwrap());
    let agent = Agent::load(&cfg).unwrap();
    let out = once(&agent).await.unwrap();
    assert!(matches!(out.drain.end, DrainEnd::Retry { .. }));
    assert_eq!(agent.spool.stats().unwrap().depth, 1);
}

#[tokio::test]
async fn status_reports_reachability_through_the_pinned_ca() {
    let e = enrolled().await;
    e.server.answer(|req| {
        if req.path == "/healthz" {
            (200, "{}".into())
        } else {
            (500, String::new())
        }
    });
    let cfg = config_for(&e.state, "");
    let s = trustwatch_agent::status::gather(&cfg).await;
    assert!(s.enrolled);
    assert!(s.server_reachable, "{:?}", s.problems);
    assert_eq!(s.agent_id, Some(e.agent_id));
    assert_eq!(s.org.as_deref(), Some("RX1"));
    e.server.answer(|_| (503, String::new()));
    let s = trustwatch_agent::status::gather(&cfg).await;
    assert!(!s.server_reachable);
}

#[tokio::test]
async fn run_collects_soon_retries_with_backoff_and_stops_on_shutdown() {
    let e = enrolled().await;
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c2 = calls.clone();
    e.server.answer(move |req| {
        if c2.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            (502, String::new())
        } else {
            ack(req, "stored")
        }
    });
    let cfg = config_for(
        &e.state,
        "backoff_initial = \"1s\"\nbackoff_max = \"1s\"\n[collect.host]\ninterval = \"1h\"\njitter = \"0s\"\n",
    );
    let agent = Arc::new(Agent::load(&cfg).unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let service = tokio::spawn(trustwatch_agent::service::run(agent.clone(), async {
        let _ = rx.await;
    }));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while shipped_reports(&e.server).len() < 2 {
        assert!(std::time::Instant::now() < deadline, "no retry within 15s");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Give the shipper a moment to delete the acknowledged file.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while agent.spool.stats().unwrap().depth != 0 {
        assert!(std::time::Instant::now() < deadline, "spool not emptied");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tx.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), service)
        .await
        .expect("run did not stop on shutdown")
        .unwrap();
    let ids: Vec<_> = shipped_reports(&e.server)
        .iter()
        .map(|r| r.report_id)
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1], "a retry must keep the report id");
}
