//! `trustwatch-agent scan network`: arguments, exit statuses and output
//! shapes, on loopback only (the namespace lab is in
//! `tests/tests/netns_legacy.rs`).

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn agent(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trustwatch-agent"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .expect("run the agent")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn config(dir: &Path, body: &str) -> std::path::PathBuf {
    let p = dir.join("agent.toml");
    std::fs::write(&p, body).expect("config");
    p
}

#[test]
fn ranges_over_65536_addresses_and_bad_lists_exit_2_before_any_packet() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), "");
    for args in [
        &["scan", "network", "10.0.0.0/15"][..],
        &["scan", "network", "fd00::/64"],
        &["scan", "network", "10.0.0.1/24"],
        &["scan", "network", "127.0.0.1", "--ports", "0"],
        &["scan", "network", "127.0.0.1", "--ports", "22,,80"],
        &["scan", "network", "127.0.0.1", "--exclude", "nonsense"],
        &["scan", "network", "127.0.0.1", "--rate", "0"],
        &["scan", "network"],
    ] {
        let out = agent(&cfg, args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(
            !text(&out.stderr).contains("audit:"),
            "{args:?} sent something"
        );
    }
    let out = agent(&cfg, &["scan", "network", "10.0.0.0/15"]);
    assert!(text(&out.stderr).contains("65536"), "{}", text(&out.stderr));
}

#[test]
fn an_excluded_address_is_never_sent_a_packet_and_the_document_is_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The config's exclude applies to `scan network` as well.
    let cfg = config(
        dir.path(),
        "[collect.network]\nexclude = [\"127.0.0.1/32\"]\n",
    );
    let out = agent(
        &cfg,
        &[
            "scan",
            "network",
            "127.0.0.1",
            "--format",
            "json",
            "--now",
            "2026-11-26T12:00:00Z",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["schema"], "trustwatch.scan/v1");
    assert_eq!(doc["started_at"], "2026-11-26T12:00:00Z");
    assert_eq!(doc["assets"], serde_json::json!([]));
    assert_eq!(doc["findings"], serde_json::json!([]));
    assert_eq!(doc["errors"], serde_json::json!([]));
    let log = text(&out.stderr);
    assert!(log.contains("network sweep of 0 address(es)"), "{log}");
    assert!(!log.contains("audit: sweep"), "{log}");
}

#[test]
fn table_format_says_when_nothing_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), "");
    // A loopback port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let out = agent(
        &cfg,
        &["scan", "network", "127.0.0.1", "--ports", &port.to_string()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "No device with an open port.\n");
    assert!(
        text(&out.stderr).contains("audit: sweep: 1 time(s) to 1 host(s)"),
        "{}",
        text(&out.stderr)
    );
}
