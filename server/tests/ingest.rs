//! `POST /api/v1/reports` over the router: storage, idempotency, finding
//! lifecycle, and who may send.
#![forbid(unsafe_code)]

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::{json, Value};
use trustwatch_server::store::ApiKeyRole;
use trustwatch_server::tls::{ClientCert, PeerIdentity};
use uuid::Uuid;

async fn findings(h: &Harness, key: &str, org: &str, status: &str) -> Vec<Value> {
    let (s, v) = h
        .get(
            &format!("/api/v1/orgs/{org}/findings?status={status}&limit=1000"),
            Some(key),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"].as_array().unwrap().clone()
}

fn find<'a>(items: &'a [Value], code: &str) -> Option<&'a Value> {
    items.iter().find(|f| f["code"] == code)
}

#[tokio::test]
async fn report_is_stored_then_acknowledged_and_a_resend_is_a_duplicate() {
    let h = Harness::new().await;
    h.org("RX1").await;
    let a = h.agent("RX1").await;
    let r = report(
        a.agent_id,
        "2025-10-01T10:00:00Z",
        &["host"],
        vec![host("pacs01")],
        vec![finding(
            "patch.kernel.reboot_required",
            "pacs01",
            "",
            json!({"running": "6.1.0-25"}),
        )],
    );
    let (s, v) = h.post_report(&a, &r).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["status"], "stored");
    assert_eq!(v["report_id"], r["report_id"]);
    assert_eq!(h.count("reports").await, 1);
    assert_eq!(h.count("assets").await, 1);
    assert_eq!(h.count("findings").await, 1);

    // Stored blob is gzip of the JSON, with agent and org from the certificate.
    let (agent_id, org, size, blob): (String, String, i64, Vec<u8>) =
        sqlx::query_as("SELECT agent_id, org, size, body FROM reports")
            .fetch_one(h.store().pool())
            .await
            .unwrap();
    assert_eq!(agent_id, a.agent_id.to_string());
    assert_eq!(org, "RX1");
    let mut json = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut json).unwrap();
    assert_eq!(json.len() as i64, size);
    let back: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(back["report_id"], r["report_id"]);

    let before = h.snapshot().await;
    h.clock.advance(std::time::Duration::from_secs(60));
    let (s, v) = h.post_report(&a, &r).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["status"], "duplicate");
    assert_eq!(h.snapshot().await, before, "a duplicate changes nothing");
    assert_eq!(h.state.metrics.stored(), 1);
    assert_eq!(h.state.metrics.duplicate(), 1);
}

#[tokio::test]
async fn gzip_report_is_stored() {
    let h = Harness::new().await;
    h.org("RX1").await;
    let a = h.agent("RX1").await;
    let r = report(
        a.agent_id,
        "2025-10-01T10:00:00Z",
        &["host"],
        vec![host("h1")],
        vec![],
    );
    let (s, v) = h
        .post_report_with(
            Some(ClientCert::Agent(a.clone())),
            gzip(r.to_string().as_bytes()),
            Some("gzip"),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["status"], "stored");
}

#[tokio::test]
async fn org_and_agent_come_from_the_certificate_not_the_body() {
    let h = Harness::new().await;
    h.org("RX1").await;
    h.org("RX2").await;
    let a = h.agent("RX1").await;
    // The body claims another agent id; the certificate wins.
    let mut r = report(
        Uuid::now_v7(),
        "2025-10-01T10:00:00Z",
        &["host"],
        vec![host("h1")],
        vec![],
    );
    r["org"] = json!("RX2");
    let (s, _) = h.post_report(&a, &r).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let key = h.apikey(ApiKeyRole::National, None).await;
    let (_, v) = h.get("/api/v1/orgs/RX1/assets", Some(&key)).await;
    assert_eq!(v["items"][0]["agent_id"], a.agent_id.to_string());
    let (_, v) = h.get("/api/v1/orgs/RX2/assets", Some(&key)).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn first_and_last_seen_follow_collected_at() {
    let h = Harness::new().await;
    h.org("RX1").await;
    let a = h.agent("RX1").await;
    let key = h.apikey(ApiKeyRole::Org, Some("RX1")).await;
    let f = || {
        finding(
            "tls.cert.expired",
            "ehr:443",
            "",
            json!({"not_after": "2025-01-01"}),
        )
    };
    for t in ["2025-10-01T10:00:00Z", "2025-10-02T10:00:00Z"] {
        let r = report(
            a.agent_id,
            t,
            &["tls"],
            vec![endpoint("ehr:443")],
            vec![f()],
        );
        assert_eq!(h.post_report(&a, &r).await.0, StatusCode::ACCEPTED);
    }
    let items = findings(&h, &key, "RX1", "open").await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["first_seen"], "2025-10-01T10:00:00Z");
    assert_eq!(items[0]["last_seen"], "2025-10-02T10:00:00Z");
    assert_eq!(items[0]["asset_kind"], "tls_endpoint");
    assert_eq!(items[0]["collector"], "tls", "derived from the category");
    let (_, v) = h.get("/api/v1/orgs/RX1/assets", Some(&key)).await;
    assert_eq!(v["items"][0]["first_seen"], "2025-10-01T10:00:00Z");
    assert_eq!(v["items"][0]["last_seen"], "2025-10-02T10:00:00Z");
    assert_eq!(v["items"][0]["details"]["grade"], "B");

    // An older report moves first_seen back but not last_seen.
    let r = report(
        a.agent_id,
        "2025-09-30T10:00:00Z",
        &["tls"],
        vec![endpoint("ehr:443")],
        vec![f()],
    );
    assert_eq!(h.post_report(&a, &r).await.0, StatusCode::ACCEPTED);
    let items = findings(&h, &key, "RX1", "open").await;
    assert_eq!(items[0]["first_seen"], "2025-09-30T10:00:00Z");
    assert_eq!(items[0]["last_seen"], "2025-10-02T10:00:00Z");
}

async fn setup_two_findings(h: &Harness) -> (PeerIdentity, String) {
    h.org("RX1").await;
    let a = h.agent("RX1").await;
    let key = h.apikey(ApiKeyRole::National, None).await;
    let r = report(
        a.agent_id,
        "2025-10-01T10:00:00Z",
        &["tls", "host"],
        vec![endpoint("ehr:443"), host("pacs01")],
        vec![
            finding(
                "tls.protocol.tls1_0",
                "ehr:443",
                "",
                json!({"accepted": "TLSv1.0"}),
            ),
            finding("patch.os.eol", "pacs01", "", json!({"os": "debian 10"})),
        ],
    );
    assert_eq!(h.post_report(&a, &r).await.0, StatusCode::ACCEPTED);
    (a, key)
}

#[tokio::test]
async fn finding_absent_from_a_later_report_of_its_collector_is_resolved() {
    let h = Harness::new().await;
    let (a, key) = setup_two_findings(&h).await;
    // The tls collector ran again without the finding; host did not run.
    let r = report(
        a.agent_id,
        "2025-10-02T10:00:00Z",
        &["tls"],
        vec![endpoint("ehr:443")],
        vec![],
    );
    assert_eq!(h.post_report(&a, &r).await.0, StatusCode::ACCEPTED);
    let all = findings(&h, &key, "RX1", "all").await;
    let tls = find(&all, "tls.protocol.tls1_0").unwrap();
    assert_eq!(tls["status"], "resolved");
    assert_eq!(tls["resolved_at"], "2025-10-02T10:00:00Z");
    let patch = find(&all, "patch.os.eol").unwrap();
    assert_eq!(patch["status"], "open", "host collector did not run");
    assert!(patch["resolved_at"].is_null());
    assert_eq!(findings(&h, &key, "RX1", "resolved").await.len(), 1);
    assert_eq!(findings(&h, &key, "RX1", "open").await.len(), 1);
}

#[tokio::test]
async fn resolved_finding_seen_again_is_reopened() {
    let h = Harness::new().await;
    let (a, key) = setup_two_findings(&h).await;
    let r = report(
        a.agent_id,
        "2025-10-02T10:00:00Z",
        &["tls"],
        vec![endpoint("ehr:443")],
        vec![],
    );
    assert_eq!(h.post_report(&a, &r).await.0, StatusCode::ACCEPTED);
    let r = report(
        a.agent_id,
        "2025-10-03T10:00:00Z",
        &["tls"],
        vec![endpoint("ehr:443")],
        vec![finding(
            "tls.protocol.tls1_0",
            "ehr:443",
            "",
            json!({"accepted": "TLSv1.0", "again": true}),
        )],
    );
    assert_eq!(h.post_report(&a, &r).await.0, StatusCode::ACCEPTED);
    let all = findings(&h, &key, "RX1", "all").await;
    let tls = find(&all, "tls.protocol.tls1_0").unwrap();
    assert_eq!(tls["status"], "open");
    assert!(tls["resolved_at"].is_null());
    assert_eq!(tls["reopened"], 1);
    assert_eq!(tls["first_seen"], "2025-10-01T10:00:00Z");
    assert_eq!(tls["last_seen"], "2025-10-03T10:00:00Z");
    assert_eq!(tls["evidence"]["again"], true);
}

#[tokio::test]
async fn older_report_does_not_resolve_or_regress_a_finding() {
    let h = Harness::new().await;
    let (a, key) = setup_two_findings(&h).await;
    let newer = report(
        a.agent_id,
        "2025-10-05T10:00:00Z",
        &["tls"],
        vec![endpoint("ehr:443")],
        vec![finding(
            "tls.protocol.tls1_0",
            "ehr:443",
            "",
            json!({"v": "new"}),
        )],
    );
    assert_eq!(h.post_report(&a, &newer).await.0, StatusCode::ACCEPTED);
    // A late, older report without the finding (spooled while offline).
    let older = report(
        a.agent_id,
        "2025-10-03T10:00:00Z",
        &["tls"],
        vec![endpoint("ehr:443")],
        vec![],
    );
    assert_eq!(h.post_report(&a, &older).await.0, StatusCode::ACCEPTED);
    // And an older one with different evidence.
    let older2 = report(
        a.agent_id,
        "2025-10-04T10:00:00Z",
        &["tls"],
        vec![endpoint("ehr:443")],
        vec![finding(
            "tls.protocol.tls1_0",
            "ehr:443",
            "",
            json!({"v": "old"}),
        )],
    );
    assert_eq!(h.post_report(&a, &older2).await.0, StatusCode::ACCEPTED);
    let all = findings(&h, &key, "RX1", "all").await;
    let tls = find(&all, "tls.protocol.tls1_0").unwrap();
    assert_eq!(tls["status"], "open");
    assert_eq!(tls["last_seen"], "2025-10-05T10:00:00Z");
    assert_eq!(tls["evidence"]["v"], "new");
}

#[tokio::test]
async fn findings_differing_only_by_subject_are_distinct() {
    let h = Harness::new().await;
    h.org("RX1").await;
    let a = h.agent("RX1").await;
    let key = h.apikey(ApiKeyRole::Org, Some("RX1")).await;
    let r = report(
        a.agent_id,
        "2025-10-01T10:00:00Z",
        &["host"],
        vec![host("pacs01")],
        vec![
            finding("patch.package.vulnerable", "pacs01", "openssl", json!({})),
            finding("patch.package.vulnerable", "pacs01", "zlib", json!({})),
        ],
    );
    assert_eq!(h.post_report(&a, &r).await.0, StatusCode::ACCEPTED);
    let r = report(
        a.agent_id,
        "2025-10-02T10:00:00Z",
        &["host"],
        vec![host("pacs01")],
        vec![finding(
            "patch.package.vulnerable",
            "pacs01",
            "zlib",
            json!({}),
        )],
    );
    assert_eq!(h.post_report(&a, &r).await.0, StatusCode::ACCEPTED);
    let all = findings(&h, &key, "RX1", "all").await;
    assert_eq!(all.len(), 2);
    let status = |s: &str| {
        all.iter()
            .find(|f| f["subject"] == s)
            .map(|f| f["status"].as_str().unwrap().to_owned())
    };
    assert_eq!(status("openssl").as_deref(), Some("resolved"));
    assert_eq!(status("zlib").as_deref(), Some("open"));
}

#[tokio::test]
async fn another_agents_report_does_not_resolve_my_findings() {
    let h = Harness::new().await;
    let (_a, key) = setup_two_findings(&h).await;
    let b = h.agent("RX1").await;
    let r = report(
        b.agent_id,
        "2025-10-09T10:00:00Z",
        &["tls", "host"],
        vec![host("other")],
        vec![],
    );
    assert_eq!(h.post_report(&b, &r).await.0, StatusCode::ACCEPTED);
    assert_eq!(findings(&h, &key, "RX1", "open").await.len(), 2);
}

#[tokio::test]
async fn report_without_client_certificate_is_401_and_stores_nothing() {
    let h = Harness::new().await;
    h.org("RX1").await;
    let r = report(Uuid::now_v7(), "2025-10-01T10:00:00Z", &[], vec![], vec![]);
    for cert in [None, Some(ClientCert::None)] {
        let (s, v) = h
            .post_report_with(cert, r.to_string().into_bytes(), None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(v["error"], "client_certificate_required");
    }
    assert_eq!(h.count("reports").await, 0);
}

#[tokio::test]
async fn unknown_revoked_or_misfiled_agent_is_403_and_stores_nothing() {
    let h = Harness::new().await;
    h.org("RX1").await;
    h.org("RX2").await;
    let a = h.agent("RX1").await;
    let r = report(a.agent_id, "2025-10-01T10:00:00Z", &[], vec![], vec![]);

    let unknown = PeerIdentity {
        agent_id: Uuid::now_v7(),
        org: "RX1".into(),
        serial: "01".into(),
    };
    let (s, v) = h.post_report(&unknown, &r).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"], "unknown_agent");

    let misfiled = PeerIdentity {
        org: "RX2".into(),
        ..a.clone()
    };
    let (s, v) = h.post_report(&misfiled, &r).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"], "org_mismatch");

    let (s, v) = h
        .post_report_with(
            Some(ClientCert::Unusable("no CN".into())),
            r.to_string().into_bytes(),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");

    trustwatch_server::admin::agent_revoke(
        h.store(),
        h.clock.as_ref(),
        a.agent_id,
        &mut Vec::new(),
    )
    .await
    .unwrap();
    let (s, v) = h.post_report(&a, &r).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"], "agent_revoked");
    assert_eq!(h.count("reports").await, 0);
}

#[tokio::test]
async fn agent_last_seen_is_the_clock_at_receipt() {
    let h = Harness::new().await;
    h.org("RX1").await;
    let a = h.agent("RX1").await;
    h.clock
        .set(trustwatch_server::clock::parse_rfc3339("2025-11-11T11:11:11Z").unwrap());
    let r = report(a.agent_id, "2025-10-01T10:00:00Z", &[], vec![], vec![]);
    assert_eq!(h.post_report(&a, &r).await.0, StatusCode::ACCEPTED);
    let row = h
        .store()
        .agent(&a.agent_id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.last_seen
            .map(trustwatch_server::clock::fmt_ms)
            .as_deref(),
        Some("2025-11-11T11:11:11Z")
    );
    let key = h.apikey(ApiKeyRole::National, None).await;
    let (_, v) = h.get("/api/v1/orgs/RX1", Some(&key)).await;
    assert_eq!(v["last_report_at"], "2025-11-11T11:11:11Z");
    assert_eq!(v["agents"], 1);
}
