//! The `trustwatch-agent` binary: exit statuses, output shapes and signal
//! handling, without a server.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trustwatch-agent"))
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write_config(dir: &Path, body: &str) -> String {
    let p = dir.join("agent.toml");
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

#[test]
fn scan_host_json_is_one_scan_document_on_stdout() {
    let out = agent(&[
        "scan",
        "host",
        "--format",
        "json",
        "--now",
        "2025-01-31T12:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema"], "trustwatch.scan/v1");
    assert_eq!(v["started_at"], "2025-01-31T12:00:00Z");
    assert_eq!(v["assets"][0]["kind"], "host");
    // This machine is Debian: its dpkg database is inventoried.
    let packages = v["assets"][0]["packages"].as_array().unwrap();
    assert!(packages
        .iter()
        .any(|p| p["manager"] == "dpkg" && p["name"] == "dpkg"));
}

#[test]
fn bad_arguments_exit_2() {
    for args in [
        &["scan", "host", "--format", "xml"][..],
        &["scan", "host", "--now", "yesterday"],
        &["scan", "host", "--root", "/definitely/not/here"],
        &[
            "enroll",
            "--server",
            "http://127.0.0.1:1",
            "--token-file",
            "/x",
        ],
        &["enroll", "--server", "https://127.0.0.1:1"],
        &["frobnicate"],
    ] {
        let out = agent(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn once_without_enrolment_exits_1_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let state = dir.path().join("state").display().to_string();
    let out = agent(&["once", "--config", &cfg, "--state-dir", &state]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not enrolled"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn missing_explicit_config_or_a_bad_field_exits_1_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml").display().to_string();
    let out = agent(&["status", "--config", &missing]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("nope.toml"));
    let cfg = write_config(dir.path(), "[collect.tls]\ntargets = [\"no-port\"]\n");
    let out = agent(&["once", "--config", &cfg]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("collect.tls.targets[0]"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn status_json_works_when_not_enrolled() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let state = dir.path().join("state").display().to_string();
    let out = agent(&[
        "status",
        "--format",
        "json",
        "--config",
        &cfg,
        "--state-dir",
        &state,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["enrolled"], false);
    assert_eq!(v["server_reachable"], false);
    assert_eq!(v["spool"]["depth"], 0);
    assert_eq!(v["spool"]["dropped"], 0);
    assert!(v.get("last_shipped_at").is_some());
    let out = agent(&["status", "--config", &cfg, "--state-dir", &state]);
    assert!(text(&out.stdout).contains("not enrolled"));
}

#[test]
fn enroll_reads_the_token_from_a_file_and_reports_an_unreachable_server() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let token = dir.path().join("token");
    std::fs::write(&token, "secret\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let state = dir.path().join("state").display().to_string();
    let out = agent(&[
        "enroll",
        "--server",
        &format!("https://127.0.0.1:{port}"),
        "--token-file",
        &token.display().to_string(),
        "--config",
        &cfg,
        "--state-dir",
        &state,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("cannot reach"), "{err}");
    assert!(!err.contains("secret"));
}

/// Enrols the state dir by hand (credentials of a CA made here), so `run`
/// can start without a server.
fn fake_enrolment(state: &Path) {
    std::fs::create_dir_all(state).unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    std::fs::write(state.join("agent-key.pem"), key.serialize_pem()).unwrap();
    std::fs::write(state.join("agent.pem"), cert.pem()).unwrap();
    std::fs::write(state.join("server-ca.pem"), ca.pem()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        state.join("enrollment.json"),
        serde_json::json!({
            "agent_id": uuid::Uuid::now_v7(),
            "org": "RX1",
            "server_url": format!("https://127.0.0.1:{port}"),
            "enrolled_at": "2025-01-31T12:00:00Z",
        })
        .to_string(),
    )
    .unwrap();
}

#[test]
fn once_spools_and_exits_0_when_the_server_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    fake_enrolment(&state);
    let cfg = write_config(
        dir.path(),
        "[collect.network]\nranges = [\"127.0.0.0/30\"]\nports = \"1\"\n",
    );
    let s = state.display().to_string();
    let out = agent(&["once", "--config", &cfg, "--state-dir", &s]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("shipping failed"),
        "{}",
        text(&out.stderr)
    );
    let files: Vec<_> = std::fs::read_dir(state.join("spool"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(files.len(), 1);
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("spool").join(&files[0])).unwrap())
            .unwrap();
    assert_eq!(r["schema"], "trustwatch.report/v1");
    assert_eq!(r["collectors"], serde_json::json!(["host", "network"]));
    let out = agent(&[
        "status",
        "--format",
        "json",
        "--config",
        &cfg,
        "--state-dir",
        &s,
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["enrolled"], true);
    assert_eq!(v["spool"]["depth"], 1);
    assert_eq!(v["server_reachable"], false);
    assert!(v["last_runs"]["host"].is_string());
}

#[test]
fn run_exits_0_on_sigterm_with_its_report_spooled() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    fake_enrolment(&state);
    let cfg = write_config(
        dir.path(),
        "[collect.host]\ninterval = \"1h\"\njitter = \"0s\"\n[ship]\nbackoff_initial = \"1m\"\n",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_trustwatch-agent"))
        .args([
            "run",
            "--config",
            &cfg,
            "--state-dir",
            &state.display().to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let spooled = || {
        std::fs::read_dir(state.join("spool"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                    .count()
            })
            .unwrap_or(0)
    };
    while spooled() == 0 {
        assert!(Instant::now() < deadline, "no report spooled by run");
        std::thread::sleep(Duration::from_millis(50));
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "run did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("SIGTERM"), "{err}");
    assert_eq!(spooled(), 1);
}
