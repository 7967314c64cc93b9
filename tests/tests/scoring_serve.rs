//! Scores end to end (issue 7) with the real server binary: agents enrol and
//! ship over mutual TLS, `serve` refreshes scores on its own (`[score]
//! refresh`), the league table and roll-ups answer through HTTPS, and the
//! `score` command recomputes with its own clock (a stale agent).

use std::time::Duration;

use serde_json::{json, Value};
use time::OffsetDateTime;
use trustwatch_tests::ServerProcess;
use uuid::Uuid;

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn report(agent: Uuid, at: &str, assets: Value, findings: Value) -> Value {
    json!({
        "schema": "trustwatch.report/v1",
        "report_id": Uuid::now_v7(),
        "collected_at": at,
        "agent": {"id": agent, "hostname": "pacs01", "version": "0.1.0"},
        "agent_version": "0.1.0",
        "started_at": at,
        "finished_at": at,
        "collectors": ["host", "network"],
        "assets": assets,
        "findings": findings,
        "errors": [],
        "spool_dropped": 0
    })
}

#[tokio::test]
async fn serve_refreshes_scores_by_itself_and_the_score_command_flags_a_stale_agent() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("server.toml");
    std::fs::write(&cfg, "[score]\nrefresh = \"1s\"\nagent_interval = \"1h\"\n").unwrap();
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let data = tmp.path().join("data");
    let mut server = ServerProcess::start_with_env(
        &data,
        &["--config", cfg.to_str().unwrap()],
        &[("TRUSTWATCH_NOW", &rfc3339(now))],
    )
    .await;
    server.org_add("NAT", "Nation").await;
    for (code, parent) in [("R1", "NAT"), ("GOOD", "R1"), ("BAD", "R1")] {
        server
            .admin(&["org", "add", code, "--name", code, "--parent", parent])
            .await
            .assert_ok("org add --parent");
    }
    let national = server.apikey("national", None).await;
    let at = rfc3339(now - Duration::from_secs(60));
    let hosts: Vec<Value> = (0..4)
        .map(|i| json!({"kind": "host", "id": format!("h{i}")}))
        .collect();
    for org in ["GOOD", "BAD"] {
        let (id, client) = server.enrol_via_api(org).await;
        let mut assets = hosts.clone();
        assets.push(json!({"kind": "device", "id": "10.0.0.5"}));
        let findings = if org == "BAD" {
            json!([{"code": "legacy.smb.v1", "severity": "critical", "category": "legacy",
                    "asset": "10.0.0.5", "title": "SMBv1", "evidence": {"dialect": "NT LM 0.12"}}])
        } else {
            json!([{"code": "patch.updates.stale", "severity": "low", "category": "patch",
                    "asset": "h1", "title": "stale", "evidence": {"days": 20}}])
        };
        let a = client
            .post_json("/api/v1/reports", &report(id, &at, json!(assets), findings))
            .await;
        assert_eq!(a.status, 202, "{}", a.text);
    }

    // `serve` scores them within a few refreshes, without being asked.
    let client = server.client();
    let mut league = Value::Null;
    for _ in 0..100 {
        league = client
            .get_ok("/api/v1/orgs?parent=R1&sort=-score", &national)
            .await;
        if league["items"][1]["score"].is_number() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let items = league["items"].as_array().unwrap();
    let codes: Vec<&str> = items.iter().map(|o| o["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["GOOD", "BAD"], "{league}");
    assert_eq!(items[0]["grade"], "A");
    assert_eq!(items[1]["grade"], "F");
    assert_eq!(items[1]["model_version"], "1");
    assert_eq!(
        (items[0]["rank"].clone(), items[1]["percentile"].clone()),
        (json!(1), json!(0))
    );
    let r1 = client.get_ok("/api/v1/orgs/R1", &national).await;
    assert_eq!(r1["rollup"], true, "{r1}");
    assert_eq!(r1["assets"], 10);
    let bad = client.get_ok("/api/v1/orgs/BAD", &national).await;
    assert_eq!(bad["top_to_fix"][0]["code"], "legacy.smb.v1");
    let doc = client.get("/api/v1/openapi.json", None).await;
    assert_eq!(doc.status, 200);
    assert!(doc.body["paths"]["/api/v1/orgs/{code}/history"].is_object());
    let history = client.get_ok("/api/v1/orgs/BAD/history", &national).await;
    assert_eq!(history["items"].as_array().unwrap().len(), 1, "{history}");
    assert!(server.stderr().contains("scores refreshed"));

    // Three hours later (interval 1h): both agents are stale.
    let later = rfc3339(now + Duration::from_secs(3 * 3600));
    let run = server
        .admin(&[
            "score",
            "--format",
            "json",
            "--now",
            &later,
            "--config",
            cfg.to_str().unwrap(),
        ])
        .await
        .assert_ok("score");
    assert!(
        run.stderr.contains("2 stale agents flagged"),
        "{}",
        run.stderr
    );
    let table: Value = serde_json::from_str(&run.stdout).unwrap();
    let good = table
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["code"] == "GOOD")
        .unwrap();
    assert_eq!(good["confidence"], 0, "{good}");
    assert!(good["coverage_score"].as_f64().unwrap() < 100.0, "{good}");
    server.stop().await;
    server.assert_no_panic();
}
