//! SSLv3 and SSLv2 detection: a real SSLv3 server (tlslite-ng, installed by
//! scripts/test) and an SSLv2 SERVER-HELLO replayed by a small listener.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use trustwatch_tests::tlsfixtures::{codes, endpoint, scan, tlslite_server, Issuer, LeafSpec, Pki};

fn set(codes: &[&str]) -> std::collections::BTreeSet<String> {
    codes.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn tls_sslv3_only_tlslite_server_is_detected_with_its_suites() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let leaf = pki.leaf("leaf", &LeafSpec::localhost());
    let server = tlslite_server(&leaf, &["--ssl3", "--max-ver", "ssl3"]);
    let target = server.target();
    let root = pki.root.to_str().unwrap().to_owned();
    let (doc, _) = scan(&[&target, "--ca", &root]);
    assert_eq!(doc["errors"], serde_json::json!([]), "{doc:#}");
    let ep = endpoint(&doc, &target);
    assert_eq!(ep["protocols"], serde_json::json!(["SSLv3"]), "{ep:#}");
    assert_eq!(
        codes(&doc, &target),
        set(&[
            "tls.protocol.sslv3",
            "tls.protocol.no_tls1_2",
            "tls.cipher.weak",
            "tls.cipher.no_forward_secrecy"
        ])
    );
    assert_eq!(ep["grade"], "F");
    let suites: Vec<&str> = ep["suites"]["SSLv3"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        suites.contains(&"TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
        "{suites:?}"
    );
    assert!(
        suites.contains(&"TLS_RSA_WITH_AES_128_CBC_SHA"),
        "{suites:?}"
    );
    assert_eq!(ep["trust"], "trusted");
}

/// An SSL 2.0 SERVER-HELLO (draft-hickman-netscape-ssl-00 §2.6) as an
/// SSLv2 server sends it: the certificate and two cipher kinds,
/// RC4_128_WITH_MD5 and DES_192_EDE3_CBC_WITH_MD5.
fn sslv2_server_hello(cert_der: &[u8]) -> Vec<u8> {
    let specs: [[u8; 3]; 2] = [[0x01, 0x00, 0x80], [0x07, 0x00, 0xc0]];
    let conn_id = [0x5a_u8; 16];
    let mut body = vec![0x04, 0x00, 0x01, 0x00, 0x02];
    body.extend((cert_der.len() as u16).to_be_bytes());
    body.extend(((specs.len() * 3) as u16).to_be_bytes());
    body.extend((conn_id.len() as u16).to_be_bytes());
    body.extend(cert_der);
    for s in specs {
        body.extend(s);
    }
    body.extend(conn_id);
    let mut rec = vec![0x80 | (body.len() >> 8) as u8, (body.len() & 0xff) as u8];
    rec.extend(body);
    rec
}

#[test]
fn tls_sslv2_server_replayed_from_recorded_bytes_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let leaf = pki.leaf(
        "v2",
        &LeafSpec {
            issuer: Issuer::SelfSigned,
            ..LeafSpec::localhost()
        },
    );
    let der = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&leaf.cert)
        .output()
        .unwrap()
        .stdout;
    let reply = sslv2_server_hello(&der);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            let reply = reply.clone();
            std::thread::spawn(move || {
                let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                let mut first = [0u8; 1];
                if c.read_exact(&mut first).is_err() {
                    return;
                }
                // An SSL 2.0 server answers SSLv2 CLIENT-HELLOs only and
                // hangs up on anything else.
                if first[0] & 0x80 != 0 {
                    let mut rest = [0u8; 512];
                    let _ = c.read(&mut rest);
                    let _ = c.write_all(&reply);
                }
            });
        }
    });
    let target = format!("localhost:{port}");
    let (doc, _) = scan(&[&target, "--timeout-ms", "2000"]);
    assert_eq!(doc["errors"], serde_json::json!([]), "{doc:#}");
    let ep = endpoint(&doc, &target);
    assert_eq!(ep["protocols"], serde_json::json!(["SSLv2"]), "{ep:#}");
    assert_eq!(
        ep["sslv2_cipher_kinds"],
        serde_json::json!([
            "SSL_CK_RC4_128_WITH_MD5",
            "SSL_CK_DES_192_EDE3_CBC_WITH_MD5"
        ])
    );
    assert_eq!(
        codes(&doc, &target),
        set(&[
            "tls.protocol.sslv2",
            "tls.protocol.no_tls1_2",
            "tls.cipher.insecure",
            "tls.cipher.weak",
            "tls.cert.self_signed"
        ])
    );
    assert_eq!(ep["grade"], "T");
    assert_eq!(ep["grade_ignoring_trust"], "F");
    assert_eq!(ep["chain_source"], "SSLv2 SERVER-HELLO");
}
