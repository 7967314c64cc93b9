//! `scan tls` against real `openssl s_server` endpoints on 127.0.0.1: the
//! exact set of finding codes of each case (DESIGN §2), its grade, and the
//! accepted suites compared with what `openssl ciphers` says the server's
//! cipher string allows.

use std::collections::BTreeSet;

use serde_json::Value;
use time::{Duration, OffsetDateTime};
use trustwatch_tests::tlsfixtures::{
    codes, endpoint, openssl_suites, s_server, scan, scanned_suites, Issuer, LeafSpec, Pki,
};

/// The modern configuration: ECDHE + AEAD only (never OpenSSL's DEFAULT,
/// which includes static RSA).
const MODERN: &str =
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305";

struct Case<'a> {
    leaf: LeafSpec,
    send_intermediate: bool,
    args: Vec<&'a str>,
    codes: &'a [&'a str],
    grade: &'a str,
    /// (`openssl ciphers` protocol flag, version as the scan names it, cipher string)
    suites: Option<(&'a str, &'a str, &'a str)>,
}

impl<'a> Case<'a> {
    fn modern(codes: &'a [&'a str], grade: &'a str) -> Case<'a> {
        Case {
            leaf: LeafSpec::localhost(),
            send_intermediate: true,
            args: vec!["-cipher", MODERN],
            codes,
            grade,
            suites: Some(("-tls1_2", "TLSv1.2", MODERN)),
        }
    }
}

fn set(codes: &[&str]) -> BTreeSet<String> {
    codes.iter().map(|s| (*s).to_owned()).collect()
}

fn check(case: Case<'_>) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let leaf = pki.leaf("leaf", &case.leaf);
    let mut args = case.args.clone();
    let dh;
    if args.contains(&"DH1024") {
        dh = pki.dh1024();
        for a in args.iter_mut() {
            if *a == "DH1024" {
                *a = dh.to_str().unwrap();
            }
        }
    }
    let server = s_server(&leaf, case.send_intermediate, &args);
    let target = server.target();
    let root = pki.root.to_str().unwrap().to_owned();
    let (doc, _) = scan(&[&target, "--ca", &root, "--timeout-ms", "5000"]);
    assert_eq!(doc["errors"], serde_json::json!([]), "{doc:#}");
    let ep = endpoint(&doc, &target);
    assert_eq!(
        codes(&doc, &target),
        set(case.codes),
        "codes of {:?}: {doc:#}",
        case.args
    );
    assert_eq!(ep["grade"], case.grade, "grade: {:#}", ep);
    if let Some((flag, version, string)) = case.suites {
        let want = openssl_suites(flag, string);
        let got: BTreeSet<String> = scanned_suites(&doc, &target, version).into_iter().collect();
        assert!(!want.is_empty(), "openssl lists nothing for {string}");
        assert_eq!(got, want, "{version} suites for {string}");
    }
    for f in doc["findings"].as_array().unwrap() {
        assert_eq!(f["collector"], "tls");
        assert!(
            f["evidence"].as_object().is_some_and(|o| !o.is_empty()),
            "{f:#}"
        );
    }
    (doc, target)
}

#[test]
fn tls_modern_endpoint_has_no_findings_grade_a_and_few_handshakes() {
    let (doc, target) = check(Case::modern(&[], "A"));
    let ep = endpoint(&doc, &target);
    assert_eq!(ep["protocols"], serde_json::json!(["TLSv1.2", "TLSv1.3"]));
    assert_eq!(ep["trust"], "trusted");
    assert_eq!(ep["name_matches"], true);
    assert_eq!(
        ep["suites"]["TLSv1.3"].as_array().unwrap().len(),
        3,
        "{ep:#}"
    );
    let hs = ep["handshakes"].as_u64().unwrap();
    assert!(hs > 5 && hs <= 60, "{hs} handshakes");
    assert_eq!(ep["certificate_chain"].as_array().unwrap().len(), 2);
    assert_eq!(ep["grade_reasons"], serde_json::json!([]));
}

#[test]
fn tls_tls1_0_only_endpoint_is_old_protocol_without_tls12_and_static_rsa() {
    let s = "DEFAULT:!aECDSA:@SECLEVEL=0";
    check(Case {
        args: vec!["-tls1", "-cipher", s],
        codes: &[
            "tls.protocol.tls1_0",
            "tls.protocol.no_tls1_2",
            "tls.cipher.no_forward_secrecy",
        ],
        grade: "C",
        suites: Some(("-tls1", "TLSv1.0", s)),
        ..Case::modern(&[], "")
    });
}

#[test]
fn tls_tls1_1_only_endpoint_is_old_protocol_without_tls12_and_static_rsa() {
    let s = "DEFAULT:!aECDSA:@SECLEVEL=0";
    check(Case {
        args: vec!["-tls1_1", "-cipher", s],
        codes: &[
            "tls.protocol.tls1_1",
            "tls.protocol.no_tls1_2",
            "tls.cipher.no_forward_secrecy",
        ],
        grade: "C",
        suites: Some(("-tls1_1", "TLSv1.1", s)),
        ..Case::modern(&[], "")
    });
}

#[test]
fn tls_static_rsa_only_endpoint_lacks_forward_secrecy() {
    let s = "AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA";
    check(Case {
        args: vec!["-no_tls1_3", "-cipher", s],
        codes: &["tls.cipher.no_forward_secrecy"],
        grade: "B",
        suites: Some(("-tls1_2", "TLSv1.2", s)),
        ..Case::modern(&[], "")
    });
}

#[test]
fn tls_cbc_only_endpoint_is_not_weak() {
    let s =
        "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA";
    let (doc, target) = check(Case {
        args: vec!["-no_tls1_3", "-cipher", s],
        codes: &[],
        grade: "B",
        suites: Some(("-tls1_2", "TLSv1.2", s)),
        ..Case::modern(&[], "")
    });
    let reasons = endpoint(&doc, &target)["grade_reasons"].to_string();
    assert!(reasons.contains("no AEAD"), "{reasons}");
}

#[test]
fn tls_dhe_1024_endpoint_has_weak_dh() {
    let s = "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:@SECLEVEL=0";
    let (doc, target) = check(Case {
        args: vec!["-no_tls1_3", "-cipher", s, "-dhparam", "DH1024"],
        codes: &["tls.kx.weak_dh"],
        grade: "B",
        suites: Some(("-tls1_2", "TLSv1.2", s)),
        ..Case::modern(&[], "")
    });
    let f = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "tls.kx.weak_dh")
        .unwrap();
    assert_eq!(f["evidence"]["groups"][0]["dh_prime_bits"], 1024, "{f:#}");
    assert_eq!(
        endpoint(&doc, &target)["key_exchange"]["dh_prime_bits"],
        serde_json::json!([1024])
    );
}

#[test]
fn tls_expired_certificate_raises_only_expired() {
    let now = OffsetDateTime::now_utc();
    let (doc, target) = check(Case {
        leaf: LeafSpec {
            not_before: now - Duration::days(400),
            not_after: now - Duration::days(35),
            ..LeafSpec::localhost()
        },
        ..Case::modern(&["tls.cert.expired"], "T")
    });
    let f = &doc["findings"][0];
    assert!(
        f["evidence"]["certificates"][0]["not_after"].is_string(),
        "{f:#}"
    );
    assert_eq!(endpoint(&doc, &target)["grade_ignoring_trust"], "A");
}

#[test]
fn tls_not_yet_valid_certificate_raises_only_not_yet_valid() {
    let now = OffsetDateTime::now_utc();
    check(Case {
        leaf: LeafSpec {
            not_before: now + Duration::days(30),
            not_after: now + Duration::days(400),
            ..LeafSpec::localhost()
        },
        ..Case::modern(&["tls.cert.not_yet_valid"], "T")
    });
}

#[test]
fn tls_certificate_expiring_in_ten_days_is_expiring_soon() {
    let now = OffsetDateTime::now_utc();
    let (doc, _) = check(Case {
        leaf: LeafSpec {
            not_before: now - Duration::days(80),
            not_after: now + Duration::days(10),
            ..LeafSpec::localhost()
        },
        ..Case::modern(&["tls.cert.expiring_soon"], "A")
    });
    let days = doc["findings"][0]["evidence"]["certificates"][0]["days_left"]
        .as_i64()
        .unwrap();
    assert!((9..=10).contains(&days), "{days}");
}

#[test]
fn tls_self_signed_certificate_raises_only_self_signed() {
    check(Case {
        leaf: LeafSpec {
            issuer: Issuer::SelfSigned,
            ..LeafSpec::localhost()
        },
        ..Case::modern(&["tls.cert.self_signed"], "T")
    });
}

#[test]
fn tls_wrong_host_certificate_raises_only_hostname_mismatch() {
    let (doc, _) = check(Case {
        leaf: LeafSpec {
            cn: "www.example.org".into(),
            sans: vec!["DNS:www.example.org".into()],
            ..LeafSpec::localhost()
        },
        ..Case::modern(&["tls.cert.hostname_mismatch"], "M")
    });
    let ev = &doc["findings"][0]["evidence"];
    assert_eq!(ev["name"], "localhost");
    assert_eq!(
        ev["certificate_names"],
        serde_json::json!(["www.example.org"])
    );
}

#[test]
fn tls_rsa_1024_certificate_raises_only_weak_key() {
    let s = "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:@SECLEVEL=0";
    let (doc, _) = check(Case {
        leaf: LeafSpec {
            rsa_bits: 1024,
            ..LeafSpec::localhost()
        },
        args: vec!["-cipher", s],
        suites: Some(("-tls1_2", "TLSv1.2", s)),
        ..Case::modern(&["tls.cert.weak_key"], "B")
    });
    assert_eq!(
        doc["findings"][0]["evidence"]["certificates"][0]["key"],
        "RSA 1024"
    );
}

#[test]
fn tls_sha1_signed_certificate_raises_only_weak_signature() {
    let s = "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:@SECLEVEL=0";
    let (doc, _) = check(Case {
        leaf: LeafSpec {
            digest: "sha1".into(),
            ..LeafSpec::localhost()
        },
        args: vec!["-cipher", s],
        suites: Some(("-tls1_2", "TLSv1.2", s)),
        ..Case::modern(&["tls.cert.weak_signature"], "T")
    });
    assert_eq!(
        doc["findings"][0]["evidence"]["certificates"][0]["signature_algorithm"],
        "sha1WithRSAEncryption"
    );
}

#[test]
fn tls_leaf_without_intermediate_raises_only_incomplete_chain() {
    let (doc, _) = check(Case {
        send_intermediate: false,
        ..Case::modern(&["tls.cert.incomplete_chain"], "B")
    });
    let chain = &doc["findings"][0]["evidence"]["chain_as_sent"];
    assert_eq!(chain.as_array().unwrap().len(), 1, "{chain:#}");
    assert_eq!(chain[0]["issuer"], "CN=trustwatch test intermediate");
}

#[test]
fn tls_p384_only_endpoint_is_reached_through_a_hello_retry_request() {
    let (doc, target) = check(Case {
        args: vec!["-cipher", MODERN, "-groups", "P-384"],
        ..Case::modern(&[], "A")
    });
    let ep = endpoint(&doc, &target);
    assert_eq!(
        ep["key_exchange"]["hello_retry_groups"],
        serde_json::json!(["secp384r1"])
    );
    assert_eq!(
        ep["key_exchange"]["tls13_groups"],
        serde_json::json!(["secp384r1"])
    );
    assert_eq!(ep["suites"]["TLSv1.3"].as_array().unwrap().len(), 3);
}

#[test]
fn tls_tls13_only_endpoint_with_expired_certificate_is_read_through_rustls() {
    let now = OffsetDateTime::now_utc();
    let (doc, target) = check(Case {
        leaf: LeafSpec {
            not_before: now - Duration::days(400),
            not_after: now - Duration::days(2),
            ..LeafSpec::localhost()
        },
        args: vec!["-tls1_3"],
        suites: None,
        ..Case::modern(&["tls.cert.expired"], "T")
    });
    let ep = endpoint(&doc, &target);
    assert_eq!(ep["protocols"], serde_json::json!(["TLSv1.3"]));
    assert_eq!(ep["chain_source"], "TLSv1.3 handshake (rustls)");
    assert_eq!(ep["certificate_chain"].as_array().unwrap().len(), 2);
}

#[test]
fn tls_server_enforcing_its_order_is_detected_and_listed_in_that_order() {
    let order =
        "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256";
    let (doc, target) = check(Case {
        args: vec![
            "-serverpref",
            "-cipher",
            order,
            "-ciphersuites",
            "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384",
        ],
        suites: Some(("-tls1_2", "TLSv1.2", order)),
        ..Case::modern(&[], "A")
    });
    let ep = endpoint(&doc, &target);
    assert_eq!(ep["server_preference"]["TLSv1.2"], true);
    assert_eq!(ep["server_preference"]["TLSv1.3"], true);
    assert_eq!(
        scanned_suites(&doc, &target, "TLSv1.2"),
        vec![
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        ]
    );
    assert_eq!(
        scanned_suites(&doc, &target, "TLSv1.3"),
        vec![
            "TLS_AES_128_GCM_SHA256",
            "TLS_CHACHA20_POLY1305_SHA256",
            "TLS_AES_256_GCM_SHA384"
        ]
    );
}

#[test]
fn tls_client_order_server_is_not_reported_as_enforcing_an_order() {
    let (doc, target) = check(Case::modern(&[], "A"));
    let ep = endpoint(&doc, &target);
    assert_eq!(ep["server_preference"]["TLSv1.2"], false);
}
