//! Bad report bodies: each gets a 4xx JSON error and leaves the store as
//! it was; arbitrary bytes never produce a 5xx.
#![forbid(unsafe_code)]

mod common;

use axum::http::StatusCode;
use common::*;
use proptest::prelude::*;
use serde_json::{json, Value};
use trustwatch_server::api::Limits;
use trustwatch_server::tls::{ClientCert, PeerIdentity};

async fn setup(limits: Option<Limits>) -> (Harness, PeerIdentity) {
    let h = match limits {
        Some(l) => Harness::with_limits(l).await,
        None => Harness::new().await,
    };
    h.org("RX1").await;
    let a = h.agent("RX1").await;
    // One stored report, so "unchanged" means more than "empty".
    let r = report(
        a.agent_id,
        "2025-10-01T10:00:00Z",
        &["host"],
        vec![host("pacs01")],
        vec![finding(
            "patch.os.eol",
            "pacs01",
            "",
            json!({"os": "debian 10"}),
        )],
    );
    assert_eq!(h.post_report(&a, &r).await.0, StatusCode::ACCEPTED);
    (h, a)
}

async fn refused(
    h: &Harness,
    a: &PeerIdentity,
    body: Vec<u8>,
    encoding: Option<&str>,
) -> (StatusCode, Value) {
    let before = h.snapshot().await;
    let (s, v) = h
        .post_report_with(Some(ClientCert::Agent(a.clone())), body, encoding)
        .await;
    assert!(s.is_client_error(), "{s} {v}");
    assert!(v["error"].is_string() && v["detail"].is_string(), "{v}");
    assert_eq!(h.snapshot().await, before, "the store changed on {s} {v}");
    (s, v)
}

fn valid(a: &PeerIdentity) -> Value {
    report(
        a.agent_id,
        "2025-10-02T10:00:00Z",
        &["host"],
        vec![host("pacs01")],
        vec![],
    )
}

#[tokio::test]
async fn server_refuses_a_body_that_is_not_json_and_stores_nothing() {
    let (h, a) = setup(None).await;
    let (s, v) = refused(&h, &a, b"hello, world".to_vec(), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], "invalid_report");
}

#[tokio::test]
async fn server_refuses_json_that_is_not_a_report_and_stores_nothing() {
    let (h, a) = setup(None).await;
    for body in [
        json!({"hello": "world"}),
        json!([1, 2, 3]),
        {
            let mut r = valid(&a);
            r["schema"] = json!("trustwatch.scan/v1");
            r
        },
        {
            let mut r = valid(&a);
            r["findings"] = json!([finding("patch.os.eol", "nowhere", "", json!({}))]);
            r
        },
        {
            let mut r = valid(&a);
            r["report_id"] = json!(uuid::Uuid::new_v4());
            r
        },
    ] {
        let (s, v) = refused(&h, &a, body.to_string().into_bytes(), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(v["error"], "invalid_report");
        assert!(!v["detail"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn server_refuses_truncated_gzip_and_stores_nothing() {
    let (h, a) = setup(None).await;
    let g = gzip(valid(&a).to_string().as_bytes());
    let (s, v) = refused(&h, &a, g[..g.len() - 9].to_vec(), Some("gzip")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], "bad_encoding");
    // Plain JSON labelled gzip is corrupt gzip.
    let (s, v) = refused(&h, &a, valid(&a).to_string().into_bytes(), Some("gzip")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], "bad_encoding");
}

#[tokio::test]
async fn server_refuses_a_gzip_bomb_with_413_and_stores_nothing() {
    let (h, a) = setup(Some(Limits {
        max_body_bytes: 1 << 20,
        max_decompressed_bytes: 1 << 20,
    }))
    .await;
    // A valid report padded with 8 MiB of whitespace: tiny compressed.
    let mut text = valid(&a).to_string().into_bytes();
    text.extend(std::iter::repeat_n(b' ', 8 << 20));
    let bomb = gzip(&text);
    assert!(bomb.len() < 1 << 20);
    let (s, v) = refused(&h, &a, bomb, Some("gzip")).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(v["error"], "payload_too_large");
}

#[tokio::test]
async fn server_refuses_an_oversized_body_with_413_and_stores_nothing() {
    let (h, a) = setup(Some(Limits {
        max_body_bytes: 4096,
        max_decompressed_bytes: 1 << 20,
    }))
    .await;
    let mut r = valid(&a);
    r["assets"][0]["padding"] = json!("x".repeat(8192));
    let (s, v) = refused(&h, &a, r.to_string().into_bytes(), None).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(v["error"], "payload_too_large");
    let text = h.get("/metrics", None).await.1.as_str().unwrap().to_owned();
    assert!(
        text.contains("trustwatch_reports_rejected_total{reason=\"payload_too_large\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn server_refuses_an_unknown_content_encoding_and_stores_nothing() {
    let (h, a) = setup(None).await;
    let (s, v) = refused(&h, &a, valid(&a).to_string().into_bytes(), Some("br")).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(v["error"], "unsupported_encoding");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_give_a_5xx_or_change_the_store(
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        gz in any::<bool>(),
        wrap in any::<bool>(),
    ) {
        let rt = runtime();
        rt.block_on(async {
            let (h, a) = setup(None).await;
            // Sometimes wrap the noise in a gzip stream, so the decoder passes
            // and the JSON layer sees it.
            let body = if gz && wrap { gzip(&body) } else { body };
            let encoding = if gz { Some("gzip") } else { None };
            let before = h.snapshot().await;
            let (s, v) = h
                .post_report_with(Some(ClientCert::Agent(a.clone())), body, encoding)
                .await;
            prop_assert!(s.is_client_error(), "{} {}", s, v);
            prop_assert!(v["error"].is_string());
            prop_assert_eq!(h.snapshot().await, before);
            Ok(())
        })?;
    }

    #[test]
    fn mutated_reports_never_give_a_5xx(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let rt = runtime();
        rt.block_on(async {
            let (h, a) = setup(None).await;
            let mut body = valid(&a).to_string().into_bytes();
            for (i, b) in &flips {
                let i = i.index(body.len());
                body[i] = *b;
            }
            let (s, v) = h
                .post_report_with(Some(ClientCert::Agent(a.clone())), body, None)
                .await;
            prop_assert!(!s.is_server_error(), "{} {}", s, v);
            prop_assert!(s == StatusCode::ACCEPTED || v["error"].is_string());
            Ok(())
        })?;
    }
}
