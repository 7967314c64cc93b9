//! Scores through the store and the query API: league table, grades and
//! what to fix first for three organisations; organisation isolation on
//! every new route; history over days with the manual clock; hierarchy
//! roll-ups and sibling ranks; stale agents; the facts the SQL aggregates
//! against the model's own aggregation; the route table against the router.
#![forbid(unsafe_code)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use serde_json::{json, Value};
use trustwatch_common::{Category, Severity};
use trustwatch_server::admin;
use trustwatch_server::clock::{fmt_time, parse_rfc3339, Clock};
use trustwatch_server::score::model::{Facts, FindingFact, Kind};
use trustwatch_server::store::scores::{parse_day, RefreshOptions, Scope};
use trustwatch_server::store::ApiKeyRole;
use trustwatch_server::tls::PeerIdentity;

fn sev(mut f: Value, s: &str) -> Value {
    f["severity"] = json!(s);
    f
}

fn device(id: &str) -> Value {
    json!({"kind": "device", "id": id})
}

async fn refresh(h: &Harness) {
    h.store()
        .refresh_scores(h.clock.now(), &RefreshOptions::default())
        .await
        .unwrap();
}

async fn org_with_parent(h: &Harness, code: &str, parent: Option<&str>) {
    admin::org_add(
        h.store(),
        h.clock.as_ref(),
        code,
        &format!("Org {code}"),
        parent,
        &mut Vec::new(),
    )
    .await
    .unwrap();
}

fn codes(v: &Value, field: &str) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o[field].as_str().unwrap().to_owned())
        .collect()
}

/// GOOD: one low finding. MID: vulnerable packages on 2 of 10 hosts and
/// TLS 1.0. BAD: SMBv1 and telnet on devices.
async fn three_orgs(h: &Harness) -> BTreeMap<&'static str, PeerIdentity> {
    let mut agents = BTreeMap::new();
    for org in ["GOOD", "MID", "BAD"] {
        h.org(org).await;
        agents.insert(org, h.agent(org).await);
    }
    let at = "2025-10-01T10:00:00Z";
    let hosts: Vec<Value> = (0..10).map(|i| host(&format!("h{i}"))).collect();
    let mut assets = hosts.clone();
    assets.push(endpoint("ehr:443"));
    let r = report(
        agents["GOOD"].agent_id,
        at,
        &["host", "tls"],
        assets.clone(),
        vec![sev(
            finding(
                "tls.cert.expiring_soon",
                "ehr:443",
                "",
                json!({"not_after": "2025-10-20"}),
            ),
            "low",
        )],
    );
    assert_eq!(
        h.post_report(&agents["GOOD"], &r).await.0,
        StatusCode::ACCEPTED
    );
    let r = report(
        agents["MID"].agent_id,
        at,
        &["host", "tls"],
        assets.clone(),
        vec![
            finding(
                "patch.package.vulnerable",
                "h1",
                "openssl",
                json!({"package": "openssl"}),
            ),
            finding(
                "patch.package.vulnerable",
                "h2",
                "openssl",
                json!({"package": "openssl"}),
            ),
            finding(
                "patch.package.vulnerable",
                "h2",
                "curl",
                json!({"package": "curl"}),
            ),
            sev(
                finding("tls.protocol.tls1_0", "ehr:443", "", json!({})),
                "medium",
            ),
        ],
    );
    assert_eq!(
        h.post_report(&agents["MID"], &r).await.0,
        StatusCode::ACCEPTED
    );
    let mut assets = hosts;
    assets.extend((1..=20).map(|i| device(&format!("10.0.0.{i}"))));
    let r = report(
        agents["BAD"].agent_id,
        at,
        &["host", "network"],
        assets,
        vec![
            sev(
                finding(
                    "legacy.smb.v1",
                    "10.0.0.5",
                    "",
                    json!({"dialect": "NT LM 0.12"}),
                ),
                "critical",
            ),
            sev(
                finding(
                    "legacy.smb.v1",
                    "10.0.0.6",
                    "",
                    json!({"dialect": "NT LM 0.12"}),
                ),
                "critical",
            ),
            finding(
                "legacy.telnet",
                "10.0.0.7",
                "23",
                json!({"banner": "login:"}),
            ),
        ],
    );
    assert_eq!(
        h.post_report(&agents["BAD"], &r).await.0,
        StatusCode::ACCEPTED
    );
    agents
}

#[tokio::test]
async fn league_table_orders_three_organisations_with_grades_and_fix_lists() {
    let h = Harness::new().await;
    three_orgs(&h).await;
    refresh(&h).await;
    let key = h.apikey(ApiKeyRole::National, None).await;

    let (s, v) = h.get("/api/v1/orgs?sort=-score", Some(&key)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(codes(&v, "code"), ["GOOD", "MID", "BAD"]);
    assert_eq!(codes(&v, "grade"), ["A", "B", "F"]);
    let items = v["items"].as_array().unwrap();
    assert!(items[0]["score"].as_f64().unwrap() >= 95.0, "{v}");
    assert!(
        items[2]["score"].as_f64().unwrap() <= 59.0,
        "SMBv1 caps at 59: {v}"
    );
    assert!(items[2]["legacy_score"].as_f64().unwrap() < 59.0);
    for o in items {
        assert_eq!(o["model_version"], "1");
        assert_eq!(o["siblings"], 3);
    }
    assert_eq!(
        items
            .iter()
            .map(|o| o["rank"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        items
            .iter()
            .map(|o| o["percentile"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [100, 50, 0]
    );
    let (_, v) = h.get("/api/v1/orgs?sort=score", Some(&key)).await;
    assert_eq!(codes(&v, "code"), ["BAD", "MID", "GOOD"]);
    // Worst by patch score, in one call.
    let (_, v) = h
        .get("/api/v1/orgs?sort=patch_score&limit=1", Some(&key))
        .await;
    assert_eq!(codes(&v, "code"), ["MID"]);
    assert!(v["next_cursor"].is_string());
    let (_, v) = h.get("/api/v1/orgs?grade=F,D", Some(&key)).await;
    assert_eq!(codes(&v, "code"), ["BAD"]);

    // What to fix first.
    let (_, bad) = h.get("/api/v1/orgs/BAD", Some(&key)).await;
    let fix = bad["top_to_fix"].as_array().unwrap();
    assert_eq!(fix[0]["code"], "legacy.smb.v1");
    assert_eq!(fix[0]["assets"], 2);
    assert_eq!(fix[0]["severity"], "critical");
    assert!(fix[0]["points"].as_f64().unwrap() > 10.0, "{bad}");
    assert_eq!(fix[1]["code"], "legacy.telnet");
    assert_eq!(bad["breakdown"]["caps"][0]["cap"], "smb_v1");
    // Its findings cost more than the cap: the cap is not what binds.
    assert_eq!(bad["breakdown"]["caps"][0]["binding"], false);
    let legacy = bad["breakdown"]["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == "legacy")
        .unwrap()
        .clone();
    assert_eq!(legacy["deductions"][0]["severity"], "critical");
    assert_eq!(legacy["deductions"][0]["findings"], 2);
    let (_, mid) = h.get("/api/v1/orgs/MID", Some(&key)).await;
    let fix = mid["top_to_fix"].as_array().unwrap();
    assert_eq!(fix[0]["code"], "patch.package.vulnerable");
    assert_eq!(fix[0]["findings"], 3);
    assert_eq!(fix[0]["assets"], 2);
    assert_eq!(fix[1]["code"], "tls.protocol.tls1_0");
    // Points are what re-scoring without the code wins back.
    let total: f64 = fix.iter().map(|f| f["points"].as_f64().unwrap()).sum();
    assert!(total <= 100.0 - mid["score"].as_f64().unwrap() + 0.1);

    // Which organisations have SMBv1, and on how many hosts each: one call.
    let (s, v) = h
        .get("/api/v1/findings?code=legacy.smb.v1", Some(&key))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["items"],
        json!([{"org": "BAD", "name": "Trust BAD", "parent": null, "open_findings": 2,
                "assets": 2, "score": items[2]["score"], "grade": "F"}])
    );
}

#[tokio::test]
async fn org_key_sees_only_its_own_organisation_on_every_new_route() {
    let h = Harness::new().await;
    three_orgs(&h).await;
    refresh(&h).await;
    let key = h.apikey(ApiKeyRole::Org, Some("MID")).await;
    for path in [
        "/api/v1/orgs",
        "/api/v1/orgs?sort=-score",
        "/api/v1/orgs?sort=patch_score&limit=10",
        "/api/v1/orgs?grade=B",
    ] {
        let (s, v) = h.get(path, Some(&key)).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        assert_eq!(codes(&v, "code"), ["MID"], "{path}");
    }
    let (_, v) = h.get("/api/v1/orgs?grade=F", Some(&key)).await;
    assert_eq!(v["items"], json!([]));
    for path in [
        "/api/v1/orgs/BAD",
        "/api/v1/orgs/BAD/history",
        "/api/v1/orgs/BAD/changes",
        "/api/v1/orgs/BAD/findings?change=new&from=2025-10-01",
        "/api/v1/orgs/NOPE/history",
        "/api/v1/findings?code=legacy.smb.v1",
        "/api/v1/findings?code=legacy.smb.v1&parent=GOOD",
    ] {
        let (s, v) = h.get(path, Some(&key)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path} {v}");
        assert_eq!(v["error"], "forbidden");
    }
    for path in [
        "/api/v1/orgs/MID",
        "/api/v1/orgs/MID/history",
        "/api/v1/orgs/MID/changes",
        "/api/v1/orgs/MID/findings?change=new&from=2025-10-01",
    ] {
        let (s, v) = h.get(path, Some(&key)).await;
        assert_eq!(s, StatusCode::OK, "{path} {v}");
    }
    // Rank and percentile do not leak others' scores beyond the position.
    let (_, v) = h.get("/api/v1/orgs/MID", Some(&key)).await;
    assert_eq!(
        (v["rank"].clone(), v["siblings"].clone()),
        (json!(2), json!(3))
    );
    // No key: 401 on every new route; the OpenAPI document is public.
    for path in ["/api/v1/orgs/MID/history", "/api/v1/orgs/MID/changes"] {
        assert_eq!(
            h.get(path, None).await.0,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    let (s, v) = h.get("/api/v1/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["openapi"], "3.1.0");
}

#[tokio::test]
async fn history_keeps_one_point_per_day_with_deltas_and_finding_changes() {
    let h = Harness::new().await;
    h.org("RX1").await;
    let a = h.agent("RX1").await;
    let key = h.apikey(ApiKeyRole::National, None).await;
    let assets = || vec![host("pacs01"), endpoint("ehr:443"), endpoint("pacs:443")];
    // Day 1: two problems.
    let r = report(
        a.agent_id,
        "2025-10-01T11:00:00Z",
        &["host", "tls"],
        assets(),
        vec![
            finding("tls.cert.expired", "ehr:443", "", json!({})),
            sev(
                finding("tls.protocol.tls1_1", "pacs:443", "", json!({})),
                "medium",
            ),
        ],
    );
    assert_eq!(h.post_report(&a, &r).await.0, StatusCode::ACCEPTED);
    refresh(&h).await;
    refresh(&h).await;
    // Day 2: the expired certificate is replaced, a reboot is pending.
    h.clock.advance(Duration::from_secs(86_400));
    let r = report(
        a.agent_id,
        "2025-10-02T11:00:00Z",
        &["host", "tls"],
        assets(),
        vec![
            sev(
                finding("tls.protocol.tls1_1", "pacs:443", "", json!({})),
                "medium",
            ),
            sev(
                finding("patch.kernel.reboot_required", "pacs01", "", json!({})),
                "medium",
            ),
        ],
    );
    assert_eq!(h.post_report(&a, &r).await.0, StatusCode::ACCEPTED);
    refresh(&h).await;

    let (s, v) = h.get("/api/v1/orgs/RX1/history", Some(&key)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let items = v["items"].as_array().unwrap();
    assert_eq!(codes(&v, "day"), ["2025-10-01", "2025-10-02"]);
    let (s1, s2) = (
        items[0]["score"].as_f64().unwrap(),
        items[1]["score"].as_f64().unwrap(),
    );
    assert!(
        s2 > s1,
        "fixing a high and adding a medium improves: {s1} -> {s2}"
    );
    assert_eq!(items[0]["delta"], Value::Null);
    assert_eq!(
        items[1]["delta"].as_f64().unwrap(),
        ((s2 - s1) * 10.0).round() / 10.0
    );
    assert_eq!(items[0]["high"], 1);
    assert_eq!(items[1]["high"], 0);
    assert_eq!(items[1]["model_version"], "1");
    let (_, v) = h
        .get("/api/v1/orgs/RX1/history?sort=-day&limit=1", Some(&key))
        .await;
    assert_eq!(codes(&v, "day"), ["2025-10-02"]);
    let (_, v) = h
        .get(
            "/api/v1/orgs/RX1/history?from=2025-10-02&to=2025-10-02",
            Some(&key),
        )
        .await;
    assert_eq!(codes(&v, "day"), ["2025-10-02"]);
    assert_eq!(
        v["items"][0]["delta"].as_f64().unwrap(),
        ((s2 - s1) * 10.0).round() / 10.0
    );
    let (_, v) = h
        .get("/api/v1/orgs/RX1/history?model_version=0", Some(&key))
        .await;
    assert_eq!(v["items"], json!([]));

    // The organisation page shows the trend since the previous day.
    let (_, v) = h.get("/api/v1/orgs/RX1", Some(&key)).await;
    assert_eq!(v["trend"]["previous_day"], "2025-10-01");
    assert_eq!(v["trend"]["previous_score"].as_f64().unwrap(), s1);

    // Changes since day 2 began: one new, one fixed.
    let (s, v) = h
        .get("/api/v1/orgs/RX1/changes?from=2025-10-02", Some(&key))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["new"].clone(), v["fixed"].clone(), v["reopened"].clone()),
        (json!(1), json!(1), json!(0))
    );
    assert_eq!(v["score_from"].as_f64().unwrap(), s1);
    assert_eq!(v["score_to"].as_f64().unwrap(), s2);
    let (_, v) = h
        .get(
            "/api/v1/orgs/RX1/findings?change=fixed&from=2025-10-02",
            Some(&key),
        )
        .await;
    assert_eq!(codes(&v, "code"), ["tls.cert.expired"]);
    let (_, v) = h
        .get(
            "/api/v1/orgs/RX1/findings?change=new&from=2025-10-02T00:00:00Z",
            Some(&key),
        )
        .await;
    assert_eq!(codes(&v, "code"), ["patch.kernel.reboot_required"]);

    // Day 3: the expired certificate is back.
    h.clock.advance(Duration::from_secs(86_400));
    let r = report(
        a.agent_id,
        "2025-10-03T11:00:00Z",
        &["host", "tls"],
        assets(),
        vec![
            finding("tls.cert.expired", "ehr:443", "", json!({})),
            sev(
                finding("tls.protocol.tls1_1", "pacs:443", "", json!({})),
                "medium",
            ),
            sev(
                finding("patch.kernel.reboot_required", "pacs01", "", json!({})),
                "medium",
            ),
        ],
    );
    assert_eq!(h.post_report(&a, &r).await.0, StatusCode::ACCEPTED);
    refresh(&h).await;
    let (_, v) = h
        .get(
            "/api/v1/orgs/RX1/changes?from=2025-10-03&to=2025-10-03",
            Some(&key),
        )
        .await;
    assert_eq!(v["reopened"], 1, "{v}");
    assert_eq!(
        v["by_code"],
        json!([{"code": "tls.cert.expired", "new": 0, "fixed": 0, "reopened": 1}])
    );
    // A closed period in the past reads the daily points.
    let (_, v) = h
        .get(
            "/api/v1/orgs/RX1/changes?from=2025-10-02&to=2025-10-02",
            Some(&key),
        )
        .await;
    assert_eq!(v["score_from"].as_f64().unwrap(), s1);
    assert_eq!(v["score_to"].as_f64().unwrap(), s2);
    // The certificate fixed on day 2 was reopened on day 3: a reopening
    // clears `resolved_at`, so it no longer counts as fixed on day 2.
    assert_eq!((v["new"].clone(), v["fixed"].clone()), (json!(1), json!(0)));
    let (_, v) = h
        .get(
            "/api/v1/orgs/RX1/findings?change=reopened&from=2025-10-03",
            Some(&key),
        )
        .await;
    assert_eq!(codes(&v, "code"), ["tls.cert.expired"]);
    let (_, v) = h.get("/api/v1/orgs/RX1/history", Some(&key)).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 3);
    let s3 = v["items"][2]["score"].as_f64().unwrap();
    assert!(s3 <= s1 && s3 <= s2, "{v}");
}

#[tokio::test]
async fn a_model_change_rescores_history_from_the_findings_lifecycle() {
    let h = Harness::new().await;
    h.org("RX1").await;
    let a = h.agent("RX1").await;
    let assets = || vec![endpoint("ehr:443"), endpoint("pacs:443")];
    let r = report(
        a.agent_id,
        "2025-10-01T11:00:00Z",
        &["tls"],
        assets(),
        vec![sev(
            finding("tls.protocol.sslv2", "ehr:443", "", json!({})),
            "critical",
        )],
    );
    assert_eq!(h.post_report(&a, &r).await.0, StatusCode::ACCEPTED);
    refresh(&h).await;
    h.clock.advance(Duration::from_secs(86_400));
    let r = report(
        a.agent_id,
        "2025-10-02T11:00:00Z",
        &["tls"],
        assets(),
        vec![],
    );
    assert_eq!(h.post_report(&a, &r).await.0, StatusCode::ACCEPTED);
    refresh(&h).await;
    h.clock.advance(Duration::from_secs(86_400));
    refresh(&h).await;
    let pool = h.store().pool();
    let current: Vec<(String, i64)> =
        sqlx::query_as("SELECT day, score FROM score_history ORDER BY day")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(current.len(), 3);
    assert!(current[0].1 < 800 && current[1].1 == 1000, "{current:?}");
    // Pretend the points were computed by an older model.
    sqlx::query("UPDATE score_history SET model_version = '0', score = 500")
        .execute(pool)
        .await
        .unwrap();
    let days = h.store().history_days_to_rescore().await.unwrap();
    assert_eq!(days.len(), 3);
    let n = h
        .store()
        .rescore_history(days[0], days[2], h.clock.now())
        .await
        .unwrap();
    assert_eq!(n, 2, "today is left to refreshes");
    let rescored: Vec<(String, i64)> = sqlx::query_as(
        "SELECT day, score FROM score_history WHERE model_version = '1' ORDER BY day",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(rescored, current[..2].to_vec());
    assert_eq!(parse_day("2025-10-01"), Some(days[0]));
}

#[tokio::test]
async fn parents_roll_up_children_and_siblings_get_rank_and_percentile() {
    let h = Harness::new().await;
    org_with_parent(&h, "NAT", None).await;
    org_with_parent(&h, "R1", Some("NAT")).await;
    org_with_parent(&h, "R2", Some("NAT")).await;
    let mut agents = BTreeMap::new();
    for (t, parent) in [("T1", "R1"), ("T2", "R1"), ("T3", "R1"), ("T4", "R2")] {
        org_with_parent(&h, t, Some(parent)).await;
        agents.insert(t, h.agent(t).await);
    }
    let hosts = |n: usize| (0..n).map(|i| host(&format!("h{i}"))).collect::<Vec<_>>();
    let post = |t: &'static str, assets: Vec<Value>, findings: Vec<Value>| {
        let a = agents[t].clone();
        let h = &h;
        async move {
            let r = report(
                a.agent_id,
                "2025-10-01T10:00:00Z",
                &["host", "network"],
                assets,
                findings,
            );
            assert_eq!(h.post_report(&a, &r).await.0, StatusCode::ACCEPTED);
        }
    };
    post("T1", hosts(30), vec![]).await;
    post(
        "T2",
        hosts(10),
        vec![finding(
            "patch.package.vulnerable",
            "h1",
            "openssl",
            json!({}),
        )],
    )
    .await;
    let mut a = hosts(10);
    a.push(device("10.0.0.9"));
    post(
        "T3",
        a,
        vec![sev(
            finding("legacy.smb.v1", "10.0.0.9", "", json!({})),
            "critical",
        )],
    )
    .await;
    post("T4", hosts(5), vec![]).await;
    refresh(&h).await;
    let key = h.apikey(ApiKeyRole::National, None).await;

    let (_, v) = h
        .get("/api/v1/orgs?parent=R1&sort=-score", Some(&key))
        .await;
    assert_eq!(codes(&v, "code"), ["T1", "T2", "T3"]);
    let items = v["items"].as_array().unwrap();
    let got: Vec<(i64, i64, i64)> = items
        .iter()
        .map(|o| {
            (
                o["rank"].as_i64().unwrap(),
                o["siblings"].as_i64().unwrap(),
                o["percentile"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [(1, 3, 100), (2, 3, 50), (3, 3, 0)]);
    let scores: Vec<f64> = items.iter().map(|o| o["score"].as_f64().unwrap()).collect();
    let weighted = (30.0 * scores[0] + 10.0 * scores[1] + 11.0 * scores[2]) / 51.0;
    let expect = ((weighted.min(scores[2] + 15.0)) * 10.0).round() / 10.0;

    let (_, r1) = h.get("/api/v1/orgs/R1", Some(&key)).await;
    assert_eq!(r1["rollup"], true);
    assert_eq!(r1["score"].as_f64().unwrap(), expect, "{r1}");
    assert_eq!(r1["assets"], 51);
    assert_eq!(r1["agents"], 0, "agents are counted per organisation");
    assert_eq!(r1["breakdown"]["counts"]["agents"], 3);
    assert_eq!(r1["breakdown"]["members"].as_array().unwrap().len(), 3);
    assert_eq!(r1["top_to_fix"], json!([]));
    // The weakest trust (SMBv1, 59 at most) caps the region at 15 more.
    assert!(r1["score"].as_f64().unwrap() <= scores[2] + 15.0);
    let (_, v) = h
        .get("/api/v1/orgs?parent=NAT&sort=-score", Some(&key))
        .await;
    assert_eq!(codes(&v, "code"), ["R2", "R1"]);
    assert_eq!(v["items"][0]["percentile"], 100);
    let (_, v) = h.get("/api/v1/orgs?parent=", Some(&key)).await;
    assert_eq!(codes(&v, "code"), ["NAT"]);
    assert_eq!(v["items"][0]["rank"], 1);
    assert_eq!(v["items"][0]["siblings"], 1);
    let (_, nat) = h.get("/api/v1/orgs/NAT", Some(&key)).await;
    assert_eq!(nat["assets"], 56);
    // National view limited to a region's children.
    let (_, v) = h
        .get("/api/v1/findings?code=legacy.smb.v1&parent=R1", Some(&key))
        .await;
    assert_eq!(codes(&v, "org"), ["T3"]);
    let (_, v) = h
        .get("/api/v1/findings?code=legacy.smb.v1&parent=R2", Some(&key))
        .await;
    assert_eq!(v["items"], json!([]));
}

#[tokio::test]
async fn a_stale_agent_raises_coverage_agent_stale_until_it_reports_again() {
    let h = Harness::new().await;
    h.org("RX1").await;
    let a = h.agent("RX1").await;
    let key = h.apikey(ApiKeyRole::National, None).await;
    let post = |at: String| {
        let a = a.clone();
        let h = &h;
        async move {
            let r = report(a.agent_id, &at, &["host"], vec![host("pacs01")], vec![]);
            assert_eq!(h.post_report(&a, &r).await.0, StatusCode::ACCEPTED);
        }
    };
    post(fmt_time(h.clock.now())).await;
    refresh(&h).await;
    let stale = |h: &Harness| {
        let pool = h.store().pool().clone();
        async move {
            sqlx::query_as::<_, (String, String, String, String, String)>(
                "SELECT asset_kind, asset_id, subject, status, collector FROM findings \
                 WHERE code = 'coverage.agent.stale'",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    // Default interval 24h: not stale at 47h, stale after 48h.
    h.clock.advance(Duration::from_secs(47 * 3600));
    refresh(&h).await;
    assert!(stale(&h).await.is_empty());
    h.clock.advance(Duration::from_secs(2 * 3600));
    refresh(&h).await;
    let id = a.agent_id.to_string();
    assert_eq!(
        stale(&h).await,
        [(
            "host".into(),
            "pacs01".into(),
            id.clone(),
            "open".into(),
            "server".into()
        )]
    );
    let (_, v) = h.get("/api/v1/orgs/RX1", Some(&key)).await;
    assert!(v["coverage_score"].as_f64().unwrap() < 100.0, "{v}");
    assert_eq!(v["confidence"], 0, "its only agent is stale");
    assert_eq!(v["breakdown"]["counts"]["stale_agents"], 1);
    let (_, f) = h
        .get(
            "/api/v1/orgs/RX1/findings?code=coverage.agent.stale",
            Some(&key),
        )
        .await;
    assert_eq!(f["items"][0]["evidence"]["agent_id"], id);
    assert_eq!(f["items"][0]["evidence"]["stale_after_seconds"], 172_800);

    // It reports again: resolved at once; the next refresh restores the score.
    post(fmt_time(h.clock.now())).await;
    assert_eq!(stale(&h).await[0].3, "resolved");
    refresh(&h).await;
    let (_, v) = h.get("/api/v1/orgs/RX1", Some(&key)).await;
    assert_eq!(v["coverage_score"], 100.0);
    assert_eq!(v["confidence"], 60);

    // Silent again, then revoked: raised (reopened), then resolved.
    h.clock.advance(Duration::from_secs(72 * 3600));
    refresh(&h).await;
    assert_eq!(stale(&h).await[0].3, "open");
    let reopened: i64 =
        sqlx::query_scalar("SELECT reopened FROM findings WHERE code = 'coverage.agent.stale'")
            .fetch_one(h.store().pool())
            .await
            .unwrap();
    assert_eq!(reopened, 1);
    h.store()
        .revoke_agent(&id, trustwatch_server::clock::to_ms(h.clock.now()))
        .await
        .unwrap();
    refresh(&h).await;
    assert_eq!(stale(&h).await[0].3, "resolved");
}

#[tokio::test]
async fn an_agents_observed_cadence_sets_when_it_is_stale() {
    let h = Harness::new().await;
    h.org("RX1").await;
    let a = h.agent("RX1").await;
    // Five hourly reports (collected 4h ago .. now): interval 1h, not 24h.
    for back in (0..5).rev() {
        let at = fmt_time(h.clock.now() - Duration::from_secs(back * 3600));
        let r = report(a.agent_id, &at, &["host"], vec![host("pacs01")], vec![]);
        assert_eq!(h.post_report(&a, &r).await.0, StatusCode::ACCEPTED);
    }
    h.clock.advance(Duration::from_secs(3600 + 59 * 60));
    refresh(&h).await;
    let open = |h: &Harness| {
        let pool = h.store().pool().clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT evidence FROM findings WHERE code = 'coverage.agent.stale' AND status = 'open'",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    assert!(open(&h).await.is_empty(), "1h59m is within twice 1h");
    h.clock.advance(Duration::from_secs(2 * 60));
    refresh(&h).await;
    let ev: Vec<Value> = open(&h)
        .await
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["expected_interval_seconds"], 3600);
}

#[tokio::test]
async fn an_agent_cannot_raise_or_resolve_the_servers_own_findings() {
    let h = Harness::new().await;
    h.org("RX1").await;
    let a = h.agent("RX1").await;
    let mut f = finding("legacy.telnet", "10.0.0.1", "23", json!({}));
    f["collector"] = json!("server");
    let r = report(
        a.agent_id,
        "2025-10-01T10:00:00Z",
        &["network", "server"],
        vec![device("10.0.0.1")],
        vec![f],
    );
    assert_eq!(h.post_report(&a, &r).await.0, StatusCode::ACCEPTED);
    let collector: String = sqlx::query_scalar("SELECT collector FROM findings")
        .fetch_one(h.store().pool())
        .await
        .unwrap();
    assert_eq!(collector, "network");
}

#[tokio::test]
async fn facts_aggregated_in_sql_equal_the_models_own_aggregation() {
    let h = Harness::new().await;
    h.org("RX1").await;
    let a = h.agent("RX1").await;
    let mut assets: Vec<Value> = (0..6).map(|i| host(&format!("h{i}"))).collect();
    assets.extend((0..4).map(|i| endpoint(&format!("e{i}:443"))));
    assets.extend((0..5).map(|i| device(&format!("10.0.0.{i}"))));
    let sevs = ["critical", "high", "medium", "low", "info"];
    let mut findings = Vec::new();
    let mut facts = Vec::new();
    let mut push = |code: &str, kind: Kind, asset: String, subject: &str, s: usize, kev: bool| {
        let mut ev = json!({"n": findings.len()});
        if kev {
            ev["kev"] = json!({"listed": true, "entries": []});
        }
        findings.push(sev(finding(code, &asset, subject, ev), sevs[s]));
        facts.push(FindingFact {
            kind,
            asset,
            code: code.to_owned(),
            category: code.split('.').next().unwrap().parse::<Category>().unwrap(),
            severity: sevs[s].parse::<Severity>().unwrap(),
            kev,
        });
    };
    for i in 0..6 {
        let h = format!("h{i}");
        push(
            "patch.package.vulnerable",
            Kind::Host,
            h.clone(),
            "openssl",
            i % 5,
            i == 2,
        );
        if i % 2 == 0 {
            push(
                "patch.package.vulnerable",
                Kind::Host,
                h.clone(),
                "curl",
                (i + 1) % 5,
                false,
            );
            push(
                "patch.kernel.reboot_required",
                Kind::Host,
                h.clone(),
                "",
                2,
                false,
            );
        }
    }
    for i in 0..4 {
        let e = format!("e{i}:443");
        push(
            "tls.protocol.tls1_0",
            Kind::TlsEndpoint,
            e.clone(),
            "",
            2,
            false,
        );
        if i < 2 {
            push(
                "tls.cert.expired",
                Kind::TlsEndpoint,
                e.clone(),
                "",
                1,
                false,
            );
        }
    }
    for i in 0..3 {
        push(
            "legacy.smb.v1",
            Kind::Device,
            format!("10.0.0.{i}"),
            "",
            0,
            false,
        );
        push(
            "legacy.telnet",
            Kind::Device,
            format!("10.0.0.{i}"),
            "23",
            1 + i % 2,
            false,
        );
    }
    let r = report(
        a.agent_id,
        "2025-10-01T10:00:00Z",
        &["host", "tls", "network"],
        assets,
        findings,
    );
    assert_eq!(h.post_report(&a, &r).await.0, StatusCode::ACCEPTED);
    let mut from_sql = h.store().load_facts("RX1", Scope::Current).await.unwrap();
    let counts: BTreeMap<Kind, u64> =
        [(Kind::Host, 6), (Kind::TlsEndpoint, 4), (Kind::Device, 5)].into();
    let mut expected = Facts::from_findings(counts, &facts);
    expected.agents = 1;
    for f in [&mut from_sql, &mut expected] {
        f.groups
            .sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        f.code_cells
            .sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        f.codes.sort_by(|a, b| a.code.cmp(&b.code));
    }
    assert_eq!(from_sql, expected);
    assert_eq!(from_sql.kev_findings, 1);
    // Same facts as of a later instant.
    let later = parse_rfc3339("2025-10-05T00:00:00Z").unwrap();
    let mut as_of = h
        .store()
        .load_facts("RX1", Scope::AsOf(trustwatch_server::clock::to_ms(later)))
        .await
        .unwrap();
    as_of
        .groups
        .sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    as_of
        .code_cells
        .sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    as_of.codes.sort_by(|a, b| a.code.cmp(&b.code));
    assert_eq!(as_of, expected);
}

#[tokio::test]
async fn every_route_in_the_table_is_served_by_the_router() {
    let h = Harness::new().await;
    h.org("RX1").await;
    let key = h.apikey(ApiKeyRole::Admin, None).await;
    for r in trustwatch_server::api::routes() {
        let path = r.path.replace("{code}", "RX1");
        let method = r.verb.as_str().to_uppercase();
        let req = Request::builder()
            .method(method.as_str())
            .uri(&path)
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let (s, v) = h.request(req).await;
        assert_ne!(s, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert!(
            !(s == StatusCode::NOT_FOUND && v["error"] == "not_found"),
            "{method} {path} fell through to the fallback"
        );
    }
}
