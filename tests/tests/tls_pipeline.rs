//! A TLS target in the agent's config goes through `once` to a real
//! server: the `tls_endpoint` asset and its findings arrive, from the
//! `tls` collector.

use serde_json::Value;
use time::{Duration, OffsetDateTime};
use trustwatch_tests::tlsfixtures::{s_server, LeafSpec, Pki};
use trustwatch_tests::{AgentDir, ServerProcess};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_target_in_the_config_reaches_the_server_through_once() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let pki = Pki::new(&root.join("pki"));
    let now = OffsetDateTime::now_utc();
    let leaf = pki.leaf(
        "expired",
        &LeafSpec {
            not_before: now - Duration::days(400),
            not_after: now - Duration::days(3),
            ..LeafSpec::localhost()
        },
    );
    let tls = s_server(
        &leaf,
        true,
        &[
            "-cipher",
            "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384",
        ],
    );
    let target = tls.target();
    let unreachable = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("127.0.0.1:{}", l.local_addr().unwrap().port())
    };

    let server = ServerProcess::start(&root.join("data"), &[]).await;
    let national = server.apikey("national", None).await;
    server.org_add("RTLS", "TLS trust").await;
    let token = server.token("RTLS", &[]).await;
    let extra = format!(
        "[collect.host]\nenabled = false\n[collect.tls]\ntargets = [{target:?}, {unreachable:?}]\nca = [{:?}]\ntimeout_ms = 3000\n",
        pki.root.display().to_string()
    );
    let agent = AgentDir::new(&root.join("agent"), None, &extra);
    agent
        .enroll(&server.base_url(), &server.ca_path(), &token)
        .await
        .assert_ok("enroll");
    let run = agent.once().await.assert_ok("once");
    assert!(run.stderr.contains("stored"), "{}", run.stderr);
    assert!(agent.spooled().is_empty());

    let client = server.client();
    let assets = client.get_ok("/api/v1/orgs/RTLS/assets", &national).await;
    let items = assets["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{assets:#}");
    let ep = &items[0];
    assert_eq!(ep["kind"], "tls_endpoint");
    assert_eq!(ep["id"], target.as_str());
    assert_eq!(ep["details"]["grade"], "T", "{ep:#}");
    assert_eq!(
        ep["details"]["protocols"],
        serde_json::json!(["TLSv1.2", "TLSv1.3"])
    );

    let findings = client.get_ok("/api/v1/orgs/RTLS/findings", &national).await;
    let codes: Vec<&str> = findings["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f: &Value| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["tls.cert.expired"], "{findings:#}");
    let f = &findings["items"][0];
    assert_eq!(f["asset"], target.as_str());
    server.assert_no_panic();
}
