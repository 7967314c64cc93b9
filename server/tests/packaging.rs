//! The example configuration shipped in `packaging/` is one the server accepts.

use std::path::Path;

#[test]
fn packaged_server_config_parses_with_every_documented_key() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/server.toml");
    let cfg = trustwatch_server::config::FileConfig::load(&path).expect("packaging/server.toml");
    assert_eq!(cfg.listen.as_deref(), Some("127.0.0.1:8443"));
    assert_eq!(cfg.max_body_bytes, Some(8 * 1024 * 1024));
    assert_eq!(cfg.max_decompressed_bytes, Some(64 * 1024 * 1024));
    assert_eq!(cfg.eol, trustwatch_server::config::EolConfig::default());
    // The commented-out keys are real keys: uncommented, they parse too.
    let text = std::fs::read_to_string(&path).unwrap();
    let uncommented: String = text
        .lines()
        .map(|l| {
            l.strip_prefix("# ")
                .filter(|r| r.contains(" = ") || r.starts_with('['))
                .unwrap_or(l)
        })
        .collect::<Vec<_>>()
        .join("\n");
    let all = trustwatch_server::config::FileConfig::parse(&uncommented).expect("all keys");
    assert!(all.ca_cert.is_some() && all.tls_key.is_some());
    assert_eq!(cfg.reports, Vec::new());
    assert_eq!(all.reports.len(), 1);
    assert_eq!(all.reports[0].mail_to, ["soc@example.org"]);
    assert!(all.smtp.is_some());
    // And the example is one `serve` accepts as a whole.
    let opts = trustwatch_server::config::ServeOptions::resolve(
        "d".into(),
        all,
        trustwatch_server::config::ServeFlags::default(),
    )
    .expect("the uncommented example resolves");
    assert_eq!(opts.reports[0].cron.as_str(), "0 6 * * mon");
    assert_eq!(opts.smtp.unwrap().port, 587);
}
