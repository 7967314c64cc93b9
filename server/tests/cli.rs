//! The `trustwatch-server` binary: admin exit codes and output, `serve`'s
//! ready line, `TRUSTWATCH_NOW`, and a clean exit on SIGTERM.
#![forbid(unsafe_code)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_trustwatch-server");

fn admin(dir: &Path, args: &[&str], now: Option<&str>) -> Output {
    let mut c = Command::new(BIN);
    c.arg("--data-dir").arg(dir).args(args);
    match now {
        Some(n) => c.env("TRUSTWATCH_NOW", n),
        None => c.env_remove("TRUSTWATCH_NOW"),
    };
    c.output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn admin_commands_exit_0_1_or_2_and_print_secrets_last() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let o = admin(dir, &["org", "add", "RX1", "--name", "Royal One"], None);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = admin(dir, &["org", "add", "RX1", "--name", "Again"], None);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    let o = admin(
        dir,
        &["org", "add", "RX2", "--name", "Two", "--parent", "RX1"],
        None,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = admin(
        dir,
        &["org", "add", "RX3", "--name", "Three", "--parent", "NOPE"],
        None,
    );
    assert_eq!(code(&o), 1);
    let o = admin(dir, &["org", "add", "bad code", "--name", "X"], None);
    assert_eq!(code(&o), 2);
    let o = admin(dir, &["org", "add", "RX4"], None);
    assert_eq!(code(&o), 2, "--name is required");

    let o = admin(dir, &["org", "list", "--format", "json"], None);
    assert_eq!(code(&o), 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[1]["parent"], "RX1");
    let o = admin(dir, &["org", "list"], None);
    assert!(stdout(&o).contains("Royal One"));

    let o = admin(dir, &["token", "create", "--org", "RX1"], None);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let token = stdout(&o).lines().last().unwrap().to_owned();
    assert!(token.starts_with("twe_") && token.len() == 68, "{token}");
    assert!(token[4..].bytes().all(|b| b.is_ascii_hexdigit()));
    let o = admin(dir, &["token", "create", "--org", "NOPE"], None);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("NOPE"));
    for bad in [
        &["token", "create", "--org", "RX1", "--ttl", "5x"][..],
        &["token", "create", "--org", "RX1", "--uses", "0"],
        &["token", "create"],
    ] {
        assert_eq!(code(&admin(dir, bad, None)), 2, "{bad:?}");
    }

    let o = admin(
        dir,
        &["apikey", "create", "--role", "org", "--org", "RX1"],
        None,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let key = stdout(&o).lines().last().unwrap().to_owned();
    assert!(key.starts_with("twk_") && key.len() == 68, "{key}");
    let o = admin(dir, &["apikey", "create", "--role", "national"], None);
    assert_eq!(code(&o), 0);
    for bad in [
        &["apikey", "create", "--role", "org"][..],
        &["apikey", "create", "--role", "national", "--org", "RX1"],
        &["apikey", "create", "--role", "king"],
    ] {
        assert_eq!(code(&admin(dir, bad, None)), 2, "{bad:?}");
    }
    let o = admin(
        dir,
        &["apikey", "create", "--role", "org", "--org", "NOPE"],
        None,
    );
    assert_eq!(code(&o), 1);

    let o = admin(dir, &["agent", "list", "--format", "json"], None);
    assert_eq!(code(&o), 0);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&o)).unwrap(),
        json!([])
    );
    assert_eq!(code(&admin(dir, &["agent", "revoke", "nope"], None)), 2);
    let o = admin(
        dir,
        &["agent", "revoke", &uuid::Uuid::now_v7().to_string()],
        None,
    );
    assert_eq!(code(&o), 1);
    assert_eq!(code(&admin(dir, &["frobnicate"], None)), 2);
}

struct Serve {
    child: Child,
    addr: String,
}

impl Serve {
    fn start(dir: &Path, now: Option<&str>) -> Self {
        let mut c = Command::new(BIN);
        c.arg("--data-dir")
            .arg(dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match now {
            Some(n) => c.env("TRUSTWATCH_NOW", n),
            None => c.env_remove("TRUSTWATCH_NOW"),
        };
        let mut child = c.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = line.find("listening on https://") {
                    let rest = &line[i + "listening on https://".len()..];
                    let addr = rest.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("no 'listening on' line");
        Serve { child, addr }
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client(dir: &Path, identity: Option<(&str, &str)>) -> reqwest::Client {
    let ca = std::fs::read(dir.join("ca.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(&ca).unwrap())
        .unwrap();
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let cfg = match identity {
        Some((c, k)) => b
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(c.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(k.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    reqwest::Client::builder()
        .use_preconfigured_tls(cfg)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

#[tokio::test]
async fn serve_logs_its_address_serves_and_exits_0_on_sigterm() {
    let d = tempfile::tempdir().unwrap();
    let s = Serve::start(d.path(), None);
    assert!(s.addr.starts_with("127.0.0.1:"), "{}", s.addr);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(d.path().join("ca-key.pem"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // An admin command while serve runs takes effect at once.
    let o = admin(d.path(), &["apikey", "create", "--role", "admin"], None);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let key = stdout(&o).lines().last().unwrap().to_owned();
    let c = client(d.path(), None);
    let resp = c
        .get(format!("https://{}/api/v1/orgs", s.addr))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = c
        .get(format!("https://{}/healthz", s.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let status = s.terminate();
    assert_eq!(status.code(), Some(0), "{status:?}");

    // A restart reuses the CA.
    let ca_before = std::fs::read(d.path().join("ca.pem")).unwrap();
    let s = Serve::start(d.path(), None);
    assert_eq!(std::fs::read(d.path().join("ca.pem")).unwrap(), ca_before);
    assert_eq!(s.terminate().code(), Some(0));
}

#[tokio::test]
async fn trustwatch_now_drives_token_expiry_and_certificate_validity() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let t = "2031-03-01T00:00:00Z";
    assert_eq!(
        code(&admin(
            dir,
            &["org", "add", "RX1", "--name", "One"],
            Some(t)
        )),
        0
    );
    let o = admin(
        dir,
        &["token", "create", "--org", "RX1", "--ttl", "1h"],
        Some(t),
    );
    let fresh = stdout(&o).lines().last().unwrap().to_owned();
    let o = admin(
        dir,
        &["token", "create", "--org", "RX1", "--ttl", "1h"],
        Some("2031-02-01T00:00:00Z"),
    );
    let stale = stdout(&o).lines().last().unwrap().to_owned();

    let s = Serve::start(dir, Some(t));
    let c = client(dir, None);
    let enroll = |token: String| {
        let c = c.clone();
        let url = format!("https://{}/api/v1/enroll", s.addr);
        let (csr, key) = common::csr_with_key();
        async move {
            let r = c
                .post(url)
                .json(&json!({"token": token, "csr": csr}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap(), key)
        }
    };
    let (status, v, _) = enroll(stale).await;
    assert_eq!(status, 401, "{v}");
    assert_eq!(v["error"], "invalid_token");
    let (status, v, key) = enroll(fresh).await;
    assert_eq!(status, 201, "{v}");

    // The certificate is valid from 2031 by the server's clock, so the
    // handshake accepts it although the system time is earlier.
    let cert = v["certificate"].as_str().unwrap().to_owned();
    let der = common::pem_der(&cert);
    let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert!(parsed.validity().not_before.timestamp() > 1_900_000_000);
    let agent: uuid::Uuid = v["agent_id"].as_str().unwrap().parse().unwrap();
    let mtls = client(dir, Some((&cert, &key.serialize_pem())));
    let r = common::report(
        agent,
        "2031-02-28T00:00:00Z",
        &["host"],
        vec![common::host("h")],
        vec![],
    );
    let resp = mtls
        .post(format!("https://{}/api/v1/reports", s.addr))
        .json(&r)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let o = admin(dir, &["agent", "list", "--format", "json"], None);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v[0]["last_seen"], "2031-03-01T00:00:00Z");
    assert_eq!(s.terminate().code(), Some(0));
}

#[tokio::test]
async fn revoking_an_agent_takes_effect_on_a_running_server() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    assert_eq!(
        code(&admin(dir, &["org", "add", "RX1", "--name", "One"], None)),
        0
    );
    let o = admin(dir, &["token", "create", "--org", "RX1"], None);
    let token = stdout(&o).lines().last().unwrap().to_owned();
    let s = Serve::start(dir, None);
    let (csr, key) = common::csr_with_key();
    let v: Value = client(dir, None)
        .post(format!("https://{}/api/v1/enroll", s.addr))
        .json(&json!({"token": token, "csr": csr}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let agent = v["agent_id"].as_str().unwrap().to_owned();
    let cert = v["certificate"].as_str().unwrap().to_owned();
    let mtls = client(dir, Some((&cert, &key.serialize_pem())));
    let post = |r: Value| {
        let mtls = mtls.clone();
        let url = format!("https://{}/api/v1/reports", s.addr);
        async move {
            mtls.post(url)
                .json(&r)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let id: uuid::Uuid = agent.parse().unwrap();
    let r1 = common::report(id, "2025-10-01T00:00:00Z", &[], vec![], vec![]);
    assert_eq!(post(r1).await, 202);
    assert_eq!(code(&admin(dir, &["agent", "revoke", &agent], None)), 0);
    let r2 = common::report(id, "2025-10-02T00:00:00Z", &[], vec![], vec![]);
    assert_eq!(post(r2).await, 403);
    let o = admin(dir, &["agent", "list", "--org", "RX1"], None);
    assert!(stdout(&o).contains("revoked"), "{}", stdout(&o));
    assert_eq!(s.terminate().code(), Some(0));
}
