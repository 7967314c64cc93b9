//! `POST /api/v1/enroll` over the router.
#![forbid(unsafe_code)]

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use rustls_pki_types::pem::PemObject;
use serde_json::json;
use trustwatch_server::secret;

#[tokio::test]
async fn good_token_enrols_an_agent_with_a_certificate_for_it() {
    let h = Harness::new().await;
    h.org("RX1").await;
    let token = h.token("RX1", Duration::from_secs(3600), 1).await;
    let (csr_pem, key) = csr_with_key();
    let (s, v) = h
        .enroll_raw(json!({"token": token, "csr": csr_pem, "hostname": "pacs01"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let agent_id: uuid::Uuid = v["agent_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(agent_id.get_version_num(), 7);
    assert_eq!(v["org"], "RX1");
    assert_eq!(v["ca"].as_str().unwrap(), h.state.ca.cert_pem());

    let der = pem_der(v["certificate"].as_str().unwrap());
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap();
    let o = cert
        .subject()
        .iter_organization()
        .next()
        .unwrap()
        .as_str()
        .unwrap();
    assert_eq!(cn, agent_id.to_string());
    assert_eq!(o, "RX1", "the CSR's subject is ignored");
    assert_eq!(
        cert.public_key().raw,
        rcgen::PublicKeyData::subject_public_key_info(&key)
    );
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    // Validity: one year from the clock.
    assert_eq!(
        cert.validity().not_after.timestamp(),
        trustwatch_server::clock::parse_rfc3339(T0)
            .unwrap()
            .unix_timestamp()
            + 365 * 86_400
    );
    let ca =
        rustls_pki_types::CertificateDer::from_pem_slice(h.state.ca.cert_pem().as_bytes()).unwrap();
    let (_, ca) = x509_parser::parse_x509_certificate(&ca).unwrap();
    assert!(cert.verify_signature(Some(ca.public_key())).is_ok());

    let row = h
        .store()
        .agent(&agent_id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.org, "RX1");
    assert_eq!(row.hostname.as_deref(), Some("pacs01"));
    assert_eq!(
        row.cert_serial,
        trustwatch_server::pki::serial_hex(&der).unwrap()
    );
}

#[tokio::test]
async fn wrong_token_is_401_invalid_token_and_enrols_nobody() {
    let h = Harness::new().await;
    h.org("RX1").await;
    let _real = h.token("RX1", Duration::from_secs(3600), 1).await;
    let before = h.snapshot().await;
    let fake = secret::generate(secret::TOKEN_PREFIX).unwrap();
    for t in [fake.as_str(), "", "twe_", "not even close"] {
        let (s, v) = h.enroll(t).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
        assert_eq!(v["error"], "invalid_token");
    }
    assert_eq!(h.snapshot().await, before);
}

#[tokio::test]
async fn token_expired_by_the_clock_is_401_and_enrols_nobody() {
    let h = Harness::new().await;
    h.org("RX1").await;
    let token = h.token("RX1", Duration::from_secs(3600), 5).await;
    h.clock.advance(Duration::from_secs(3600));
    let before = h.snapshot().await;
    let (s, v) = h.enroll(&token).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(v["error"], "invalid_token");
    assert!(v["detail"].as_str().unwrap().contains("expired"), "{v}");
    assert_eq!(h.snapshot().await, before);
    assert_eq!(h.count("agents").await, 0);
}

#[tokio::test]
async fn single_use_token_is_used_up_after_one_enrolment() {
    let h = Harness::new().await;
    h.org("RX1").await;
    let token = h.token("RX1", Duration::from_secs(3600), 1).await;
    assert_eq!(h.enroll(&token).await.0, StatusCode::CREATED);
    let (s, v) = h.enroll(&token).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(v["error"], "invalid_token");
    assert!(
        v["detail"].as_str().unwrap().contains("no uses left"),
        "{v}"
    );
    assert_eq!(h.count("agents").await, 1);
}

#[tokio::test]
async fn multi_use_token_enrols_exactly_n_agents_under_concurrency() {
    let h = Harness::new().await;
    h.org("RX1").await;
    let token = h.token("RX1", Duration::from_secs(3600), 3).await;
    let results = futures_join(&h, &token, 8).await;
    assert_eq!(
        results
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        3
    );
    assert_eq!(
        results
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count(),
        5
    );
    assert_eq!(h.count("agents").await, 3);
}

async fn futures_join(h: &Harness, token: &str, n: usize) -> Vec<StatusCode> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let router = h.router.clone();
        let body = json!({"token": token, "csr": csr()}).to_string();
        set.spawn(async move {
            use tower::ServiceExt;
            let req = axum::http::Request::post("/api/v1/enroll")
                .body(axum::body::Body::from(body))
                .unwrap();
            router.oneshot(req).await.unwrap().status()
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out
}

#[tokio::test]
async fn bad_csr_is_400_and_does_not_use_the_token() {
    let h = Harness::new().await;
    h.org("RX1").await;
    let token = h.token("RX1", Duration::from_secs(3600), 1).await;
    let before = h.snapshot().await;
    for csr in [
        "garbage".to_string(),
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n".into(),
        h.state.ca.cert_pem().to_owned(),
    ] {
        let (s, v) = h.enroll_raw(json!({"token": token, "csr": csr})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["error"], "invalid_csr");
    }
    let (s, v) = h.enroll_raw(json!({"token": token})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"], "invalid_request");
    assert_eq!(h.snapshot().await, before);
    assert_eq!(h.enroll(&token).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn used_up_token_is_401_even_with_a_bad_csr() {
    let h = Harness::new().await;
    h.org("RX1").await;
    let token = h.token("RX1", Duration::from_secs(3600), 1).await;
    assert_eq!(h.enroll(&token).await.0, StatusCode::CREATED);
    let (s, v) = h
        .enroll_raw(json!({"token": token, "csr": "-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n"}))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(v["error"], "invalid_token");
}
