//! 3DES and RC4, which OpenSSL 3 no longer serves: `gnutls-serv` with the
//! priority strings of FIXTURES.md. gnutls-serv binds every interface, so
//! it runs in a network namespace of its own (only `lo`), and the agent is
//! run inside the same namespace against 127.0.0.1.

use std::process::Stdio;
use std::time::Duration;

use trustwatch_tests::bin_path;
use trustwatch_tests::netns::{Host, Lab};
use trustwatch_tests::tlsfixtures::{codes, endpoint, scan_with, LeafSpec, Pki};

/// A gnutls-cli handshake inside `host` that must use `cipher`; true when
/// it completed with it.
fn handshake_uses(host: &Host, port: u16, priority: &str, cipher: &str) -> bool {
    let out = host
        .command("gnutls-cli")
        .args([
            "--insecure",
            "--priority",
            priority,
            "-p",
            &port.to_string(),
            "127.0.0.1",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("gnutls-cli (package gnutls-bin)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.contains("Handshake was completed") && text.contains(cipher)
}

fn case(
    subnet: u8,
    server_priority: &str,
    client_priority: &str,
    cipher: &str,
) -> (serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let leaf = pki.leaf("leaf", &LeafSpec::localhost());
    let mut lab = Lab::new(subnet);
    let host = lab.isolated("tls");
    let port = 5556u16;
    let mut server = host
        .command("gnutls-serv")
        .args([
            "--port",
            &port.to_string(),
            "--priority",
            server_priority,
            "--x509certfile",
        ])
        .arg(&leaf.full_chain)
        .arg("--x509keyfile")
        .arg(&leaf.key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gnutls-serv (package gnutls-bin)");
    // gnutls-serv takes a bad priority string at start-up and fails only
    // when a client comes: one real handshake with the cipher proves it.
    let mut ready = false;
    for _ in 0..50 {
        if handshake_uses(&host, port, client_priority, cipher) {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ready, "gnutls-serv never completed a {cipher} handshake");
    let target = format!("localhost:{port}");
    let mut agent = host.command(bin_path("trustwatch-agent").to_str().unwrap());
    agent.env("RUST_LOG", "warn");
    let (doc, _) = scan_with(agent, &[&target, "--ca", pki.root.to_str().unwrap()]);
    let _ = server.kill();
    let _ = server.wait();
    drop(lab);
    assert_eq!(doc["errors"], serde_json::json!([]), "{doc:#}");
    (doc, target)
}

fn set(codes: &[&str]) -> std::collections::BTreeSet<String> {
    codes.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn tls_netns_gnutls_3des_endpoint_is_weak() {
    let (doc, target) = case(
        41,
        "NORMAL:-VERS-ALL:+VERS-TLS1.2:+3DES-CBC:+RSA",
        "NORMAL:-CIPHER-ALL:+3DES-CBC:+RSA",
        "3DES-CBC",
    );
    assert_eq!(
        codes(&doc, &target),
        set(&["tls.cipher.weak", "tls.cipher.no_forward_secrecy"]),
        "{doc:#}"
    );
    let ep = endpoint(&doc, &target);
    assert_eq!(ep["grade"], "C");
    let tls12 = ep["suites"]["TLSv1.2"].to_string();
    assert!(tls12.contains("TLS_RSA_WITH_3DES_EDE_CBC_SHA"), "{tls12}");
    assert!(
        tls12.contains("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"),
        "{tls12}"
    );
    let weak = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "tls.cipher.weak")
        .unwrap();
    assert!(
        weak["evidence"]["suites"].to_string().contains("3DES"),
        "{weak:#}"
    );
}

#[test]
fn tls_netns_gnutls_rc4_endpoint_is_insecure() {
    let (doc, target) = case(
        42,
        "NORMAL:-VERS-ALL:+VERS-TLS1.2:+ARCFOUR-128:+RSA",
        "NORMAL:-CIPHER-ALL:+ARCFOUR-128:+RSA",
        "ARCFOUR-128",
    );
    assert_eq!(
        codes(&doc, &target),
        set(&["tls.cipher.insecure", "tls.cipher.no_forward_secrecy"]),
        "{doc:#}"
    );
    let ep = endpoint(&doc, &target);
    assert_eq!(ep["grade"], "C");
    let tls12 = ep["suites"]["TLSv1.2"].to_string();
    assert!(tls12.contains("TLS_ECDHE_RSA_WITH_RC4_128_SHA"), "{tls12}");
}
