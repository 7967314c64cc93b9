//! The query API over the router: authentication, organisation isolation,
//! pagination, filters, national view, health, metrics, unknown routes.
#![forbid(unsafe_code)]

mod common;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use serde_json::{json, Value};
use trustwatch_server::clock::Clock;
use trustwatch_server::store::scores::RefreshOptions;
use trustwatch_server::store::ApiKeyRole;

async fn two_orgs_with_data() -> Harness {
    let h = Harness::new().await;
    h.org("RX1").await;
    h.org("RX2").await;
    for org in ["RX1", "RX2"] {
        let a = h.agent(org).await;
        let r = report(
            a.agent_id,
            "2025-10-01T10:00:00Z",
            &["network", "tls"],
            vec![
                json!({"kind": "device", "id": "10.0.0.5"}),
                endpoint("ehr:443"),
            ],
            vec![
                finding(
                    "legacy.smb.v1",
                    "10.0.0.5",
                    "",
                    json!({"dialect": "NT LM 0.12"}),
                ),
                finding("tls.protocol.tls1_0", "ehr:443", "", json!({})),
            ],
        );
        assert_eq!(h.post_report(&a, &r).await.0, StatusCode::ACCEPTED);
    }
    h
}

#[tokio::test]
async fn query_without_or_with_an_unknown_key_is_401_json() {
    let h = two_orgs_with_data().await;
    for key in [None, Some("twk_nope")] {
        let (s, v) = h.get("/api/v1/orgs", key).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(v["error"], "unauthorized");
    }
    let (s, _) = h
        .request(
            Request::get("/api/v1/orgs")
                .header("authorization", "Basic abc")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn org_key_sees_only_its_org_and_gets_403_elsewhere() {
    let h = two_orgs_with_data().await;
    let key = h.apikey(ApiKeyRole::Org, Some("RX1")).await;
    let (s, v) = h.get("/api/v1/orgs", Some(&key)).await;
    assert_eq!(s, StatusCode::OK);
    let codes: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["RX1"]);
    for path in [
        "/api/v1/orgs/RX2",
        "/api/v1/orgs/RX2/assets",
        "/api/v1/orgs/RX2/findings",
        "/api/v1/orgs/NOPE/findings",
        "/api/v1/findings?code=legacy.smb.v1",
    ] {
        let (s, v) = h.get(path, Some(&key)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path} {v}");
        assert_eq!(v["error"], "forbidden");
    }
    for path in [
        "/api/v1/orgs/RX1",
        "/api/v1/orgs/RX1/assets",
        "/api/v1/orgs/RX1/findings",
    ] {
        assert_eq!(h.get(path, Some(&key)).await.0, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn org_item_has_the_documented_fields() {
    let h = two_orgs_with_data().await;
    let key = h.apikey(ApiKeyRole::National, None).await;
    // Before the first refresh there is no score.
    let (s, v) = h.get("/api/v1/orgs/RX1", Some(&key)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["score"], Value::Null);
    assert_eq!(v["breakdown"], Value::Null);
    h.store()
        .refresh_scores(h.clock.now(), &RefreshOptions::default())
        .await
        .unwrap();
    let (s, v) = h.get("/api/v1/orgs?limit=1", Some(&key)).await;
    assert_eq!(s, StatusCode::OK);
    // SMBv1 caps the score at 59; TLS and legacy lose a whole "high" budget.
    let item = json!({"code": "RX1", "name": "Trust RX1", "parent": null, "score": 59.0,
           "grade": "F", "model_version": "1", "confidence": 80, "tls_score": 55.0,
           "patch_score": 100.0, "legacy_score": 55.0, "coverage_score": 100.0,
           "rank": 1, "siblings": 2, "percentile": 100, "rollup": false,
           "agents": 1, "assets": 2, "open_findings": 2,
           "last_report_at": "2025-10-01T12:00:00Z", "scored_at": "2025-10-01T12:00:00Z"});
    assert_eq!(v["items"][0], item);
    let (s, v) = h.get("/api/v1/orgs/RX1", Some(&key)).await;
    assert_eq!(s, StatusCode::OK);
    for (k, x) in item.as_object().unwrap() {
        assert_eq!(&v[k], x, "{k}");
    }
    assert_eq!(v["top_to_fix"][0]["code"], "legacy.smb.v1");
    assert_eq!(v["breakdown"]["caps"][0]["cap"], "smb_v1");
    assert_eq!(v["trend"], Value::Null);
}

#[tokio::test]
async fn unknown_org_is_404_for_national_keys() {
    let h = two_orgs_with_data().await;
    let key = h.apikey(ApiKeyRole::National, None).await;
    for path in [
        "/api/v1/orgs/NOPE",
        "/api/v1/orgs/NOPE/assets",
        "/api/v1/orgs/NOPE/findings",
    ] {
        let (s, v) = h.get(path, Some(&key)).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(v["error"], "org_not_found");
    }
}

#[tokio::test]
async fn national_view_lists_orgs_with_a_code_and_their_asset_counts() {
    let h = two_orgs_with_data().await;
    h.org("RX3").await;
    let key = h.apikey(ApiKeyRole::National, None).await;
    let (s, v) = h
        .get("/api/v1/findings?code=legacy.smb.v1", Some(&key))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"items": [
            {"org": "RX1", "name": "Trust RX1", "parent": null, "open_findings": 1,
             "assets": 1, "score": null, "grade": null},
            {"org": "RX2", "name": "Trust RX2", "parent": null, "open_findings": 1,
             "assets": 1, "score": null, "grade": null}
        ], "next_cursor": null})
    );
    let admin = h.apikey(ApiKeyRole::Admin, None).await;
    let (s, v) = h
        .get("/api/v1/findings?code=legacy.telnet", Some(&admin))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["items"], json!([]));
    let (s, v) = h.get("/api/v1/findings", Some(&key)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test]
async fn finding_filters_select_by_category_severity_code_and_status() {
    let h = two_orgs_with_data().await;
    let key = h.apikey(ApiKeyRole::Org, Some("RX1")).await;
    let n = |v: &Value| v["items"].as_array().unwrap().len();
    let (_, v) = h
        .get("/api/v1/orgs/RX1/findings?category=legacy", Some(&key))
        .await;
    assert_eq!(n(&v), 1);
    assert_eq!(v["items"][0]["code"], "legacy.smb.v1");
    assert_eq!(v["items"][0]["asset_kind"], "device");
    assert_eq!(v["items"][0]["collector"], "network");
    let (_, v) = h
        .get("/api/v1/orgs/RX1/findings?severity=high", Some(&key))
        .await;
    assert_eq!(n(&v), 2);
    let (_, v) = h
        .get("/api/v1/orgs/RX1/findings?severity=low", Some(&key))
        .await;
    assert_eq!(n(&v), 0);
    let (_, v) = h
        .get(
            "/api/v1/orgs/RX1/findings?code=tls.protocol.tls1_0",
            Some(&key),
        )
        .await;
    assert_eq!(n(&v), 1);
    let (_, v) = h
        .get("/api/v1/orgs/RX1/findings?status=resolved", Some(&key))
        .await;
    assert_eq!(n(&v), 0);
    let (_, v) = h
        .get("/api/v1/orgs/RX1/findings?status=all", Some(&key))
        .await;
    assert_eq!(n(&v), 2);
    let f = &v["items"][0];
    for field in [
        "code",
        "severity",
        "category",
        "asset_kind",
        "asset",
        "subject",
        "title",
        "evidence",
        "status",
        "first_seen",
        "last_seen",
        "resolved_at",
        "agent_id",
        "collector",
    ] {
        assert!(f.get(field).is_some(), "missing {field} in {f}");
    }
}

#[tokio::test]
async fn bad_query_parameters_are_400_json() {
    let h = two_orgs_with_data().await;
    let key = h.apikey(ApiKeyRole::National, None).await;
    for path in [
        "/api/v1/orgs?limit=0",
        "/api/v1/orgs?limit=1001",
        "/api/v1/orgs?limit=ten",
        "/api/v1/orgs?sort=scores",
        "/api/v1/orgs?grade=E",
        "/api/v1/orgs?parent=no%20such",
        "/api/v1/orgs/RX1/history?from=yesterday",
        "/api/v1/orgs/RX1/history?sort=-score",
        "/api/v1/orgs/RX1/changes?from=2025-10-03&to=2025-10-01",
        "/api/v1/orgs/RX1/changes?since=2025-10-01",
        "/api/v1/orgs/RX1/findings?change=gone",
        "/api/v1/orgs/RX1/findings?from=2025-10-01",
        "/api/v1/findings?code=legacy.smb.v1&parent=no%20such",
        "/api/v1/orgs?cursor=zz",
        "/api/v1/orgs?bogus=1",
        "/api/v1/orgs/RX1/findings?status=closed",
        "/api/v1/orgs/RX1/findings?category=wifi",
        "/api/v1/orgs/RX1/findings?severity=urgent",
        "/api/v1/orgs/RX1/findings?code=NOT%20A%20CODE",
        "/api/v1/orgs/RX1/assets?kind=printer",
        "/api/v1/findings?code=x",
    ] {
        let (s, v) = h.get(path, Some(&key)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path} {v}");
        assert!(
            v["error"].is_string() && v["detail"].is_string(),
            "{path} {v}"
        );
    }
    // A cursor of one sort is refused by another.
    let (_, v) = h.get("/api/v1/orgs?limit=1", Some(&key)).await;
    let cur = v["next_cursor"].as_str().unwrap().to_owned();
    let (s, v) = h
        .get(
            &format!("/api/v1/orgs?limit=1&sort=-name&cursor={cur}"),
            Some(&key),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"], "invalid_cursor");
}

async fn walk(
    h: &Harness,
    key: &str,
    base: &str,
    limit: usize,
    id: fn(&Value) -> String,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let sep = if base.contains('?') { '&' } else { '?' };
        let mut path = format!("{base}{sep}limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (s, v) = h.get(&path, Some(key)).await;
        assert_eq!(s, StatusCode::OK, "{path} {v}");
        let items = v["items"].as_array().unwrap();
        assert!(items.len() <= limit);
        seen.extend(items.iter().map(id));
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return seen,
        }
    }
    panic!("pagination did not end");
}

#[tokio::test]
async fn pagination_cursor_walks_each_list_exactly_once() {
    let h = Harness::new().await;
    for i in 0..23 {
        h.org(&format!("T{i:02}")).await;
    }
    let a = h.agent("T00").await;
    let severities = ["critical", "high", "medium", "low", "info"];
    let mut findings = Vec::new();
    let mut assets = Vec::new();
    for i in 0..37 {
        let id = format!("10.0.{}.{}", i / 10, i % 10);
        assets.push(json!({"kind": "device", "id": id}));
        let mut f = finding("legacy.telnet", &id, "", json!({"i": i}));
        f["severity"] = json!(severities[i % 5]);
        findings.push(f);
        let mut f = finding("legacy.ftp.cleartext", &id, "21", json!({}));
        f["severity"] = json!(severities[(i + 2) % 5]);
        findings.push(f);
    }
    let r = report(
        a.agent_id,
        "2025-10-01T10:00:00Z",
        &["network"],
        assets,
        findings,
    );
    assert_eq!(h.post_report(&a, &r).await.0, StatusCode::ACCEPTED);
    let key = h.apikey(ApiKeyRole::National, None).await;

    let check = |all: Vec<String>, expected: usize| {
        let set: BTreeSet<&String> = all.iter().collect();
        assert_eq!(set.len(), all.len(), "an item came twice");
        assert_eq!(all.len(), expected, "an item was skipped");
    };
    let org_id = |v: &Value| v["code"].as_str().unwrap().to_owned();
    for sort in ["code", "-code", "name", "-name", "-open_findings"] {
        for limit in [1, 4, 23, 100] {
            let all = walk(
                &h,
                &key,
                &format!("/api/v1/orgs?sort={sort}"),
                limit,
                org_id,
            )
            .await;
            check(all, 23);
        }
    }
    let desc = walk(&h, &key, "/api/v1/orgs?sort=-code", 5, org_id).await;
    let mut sorted = desc.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(desc, sorted);

    let finding_id = |v: &Value| format!("{} {} {}", v["asset"], v["code"], v["subject"]);
    for sort in [
        "-severity",
        "severity",
        "asset",
        "code",
        "-last_seen",
        "first_seen",
    ] {
        for limit in [1, 7, 74, 1000] {
            let all = walk(
                &h,
                &key,
                &format!("/api/v1/orgs/T00/findings?sort={sort}"),
                limit,
                finding_id,
            )
            .await;
            check(all, 74);
        }
    }
    // Worst first by default.
    let (_, v) = h
        .get("/api/v1/orgs/T00/findings?limit=1000", Some(&key))
        .await;
    let ranks: Vec<usize> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| severities.iter().position(|s| f["severity"] == *s).unwrap())
        .collect();
    let mut sorted = ranks.clone();
    sorted.sort();
    assert_eq!(ranks, sorted);

    let asset_id = |v: &Value| format!("{} {}", v["kind"], v["id"]);
    for sort in ["kind", "id", "last_seen", "-last_seen", "first_seen"] {
        let all = walk(
            &h,
            &key,
            &format!("/api/v1/orgs/T00/assets?sort={sort}"),
            6,
            asset_id,
        )
        .await;
        check(all, 37);
    }
}

#[tokio::test]
async fn healthz_and_metrics_answer_without_auth() {
    let h = two_orgs_with_data().await;
    let (s, v) = h.get("/healthz", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"status": "ok"}));
    h.get("/api/v1/orgs/RX1", None).await;
    let (s, v) = h.get("/metrics", None).await;
    assert_eq!(s, StatusCode::OK);
    let text = v.as_str().unwrap();
    assert!(text.contains("trustwatch_reports_stored_total 2"), "{text}");
    assert!(
        text.contains("trustwatch_reports_duplicate_total 0"),
        "{text}"
    );
    assert!(
        text.contains("trustwatch_http_requests_total{route=\"/api/v1/reports\",status=\"202\"} 2"),
        "{text}"
    );
    assert!(
        text.contains(
            "trustwatch_http_requests_total{route=\"/api/v1/orgs/{code}\",status=\"401\"} 1"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn healthz_is_503_json_when_the_database_is_closed() {
    let h = Harness::new().await;
    h.store().close().await;
    let (s, v) = h.get("/healthz", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(v["error"], "unavailable");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json() {
    let h = Harness::new().await;
    let (s, v) = h.get("/api/v1/nothing", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"], "not_found");
    let (s, v) = h
        .request(Request::delete("/api/v1/orgs").body(Body::empty()).unwrap())
        .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(v["error"], "method_not_allowed");
    let (s, v) = h.get("/api/v1/reports", None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{v}");
    let (_, v) = h.get("/metrics", None).await;
    assert!(
        v.as_str()
            .unwrap()
            .contains("trustwatch_http_requests_total{route=\"unmatched\",status=\"404\"} 1"),
        "{v}"
    );
}

#[tokio::test]
async fn stored_reports_are_listed_newest_first_and_paginate() {
    let h = Harness::new().await;
    h.org("RX1").await;
    h.org("RX2").await;
    let a = h.agent("RX1").await;
    let b = h.agent("RX2").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        h.clock.advance(std::time::Duration::from_secs(60));
        let r = report(
            a.agent_id,
            &format!("2025-10-0{}T10:00:00Z", i + 1),
            &[],
            vec![],
            vec![],
        );
        assert_eq!(h.post_report(&a, &r).await.0, StatusCode::ACCEPTED);
        ids.push(r["report_id"].as_str().unwrap().to_owned());
    }
    let other = report(b.agent_id, "2025-10-01T10:00:00Z", &[], vec![], vec![]);
    assert_eq!(h.post_report(&b, &other).await.0, StatusCode::ACCEPTED);
    let key = h.apikey(ApiKeyRole::Org, Some("RX1")).await;
    let got = walk(&h, &key, "/api/v1/orgs/RX1/reports", 2, |v| {
        v["report_id"].as_str().unwrap().to_owned()
    })
    .await;
    ids.reverse();
    assert_eq!(got, ids, "newest first, each once, only this org's");
    let (_, v) = h.get("/api/v1/orgs/RX1/reports?limit=1", Some(&key)).await;
    let item = &v["items"][0];
    assert_eq!(item["agent_id"], a.agent_id.to_string());
    assert_eq!(item["collected_at"], "2025-10-05T10:00:00Z");
    assert!(item["size"].as_i64().unwrap() > 100);
    assert_eq!(
        h.get("/api/v1/orgs/RX2/reports", Some(&key)).await.0,
        StatusCode::FORBIDDEN
    );
}
