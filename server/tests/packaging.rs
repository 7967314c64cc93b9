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
                .filter(|r| r.contains(" = "))
                .unwrap_or(l)
        })
        .collect::<Vec<_>>()
        .join("\n");
    let all = trustwatch_server::config::FileConfig::parse(&uncommented).expect("all keys");
    assert!(all.ca_cert.is_some() && all.tls_key.is_some());
}
