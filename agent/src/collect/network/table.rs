//! `scan network --format table`: the document as people read it, one
//! block per device (its services, then its findings), then the TLS
//! endpoints and the errors.

use std::fmt::Write as _;

use serde_json::Value;
use trustwatch_common::{AssetKind, ScanDocument};

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Renders the scan document.
pub fn render_table(doc: &ScanDocument) -> String {
    let mut out = String::new();
    let devices: Vec<_> = doc
        .assets
        .iter()
        .filter(|a| a.kind == AssetKind::Device)
        .collect();
    if devices.is_empty() {
        let _ = writeln!(out, "No device with an open port.");
    }
    for a in devices {
        let names: Vec<String> = a
            .details
            .get("names")
            .and_then(Value::as_array)
            .map(|n| {
                n.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if names.is_empty() {
            let _ = writeln!(out, "Device {}", a.id);
        } else {
            let _ = writeln!(out, "Device {} ({})", a.id, names.join(", "));
        }
        if let Some(ids) = a.details.get("identified_as").and_then(Value::as_array) {
            for v in ids {
                if let Some(i) = text(v, "identifies") {
                    let _ = writeln!(out, "  is        {i}");
                }
            }
        }
        for s in a
            .details
            .get("services")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let port = format!(
                "{}/{}",
                text(s, "port").unwrap_or_default(),
                text(s, "transport").unwrap_or_default()
            );
            let mut line = format!("  {port:<9} {}", text(s, "protocol").unwrap_or_default());
            let product: Vec<String> = ["product", "version"]
                .iter()
                .filter_map(|k| text(s, k))
                .collect();
            if !product.is_empty() {
                line.push_str(&format!("  {}", product.join(" ")));
            }
            if let Some(b) = text(s, "banner") {
                let b: String = b.replace('\n', " | ").chars().take(70).collect();
                line.push_str(&format!("  \"{b}\""));
            }
            if let Some(e) = text(s, "error") {
                line.push_str(&format!("  (error: {e})"));
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        for f in doc.findings.iter().filter(|f| f.asset == a.id) {
            let subject = if f.subject.is_empty() {
                String::new()
            } else {
                format!(" ({})", f.subject)
            };
            let _ = writeln!(out, "  [{}] {}{subject}: {}", f.severity, f.code, f.title);
        }
    }
    for a in doc
        .assets
        .iter()
        .filter(|a| a.kind == AssetKind::TlsEndpoint)
    {
        let grade = a
            .details
            .get("grade")
            .and_then(Value::as_str)
            .unwrap_or("-");
        let _ = writeln!(out, "TLS endpoint {} grade {grade}", a.id);
        for f in doc.findings.iter().filter(|f| f.asset == a.id) {
            let _ = writeln!(out, "  [{}] {}: {}", f.severity, f.code, f.title);
        }
    }
    for e in &doc.errors {
        let target = e
            .target
            .as_deref()
            .map(|t| format!(" {t}"))
            .unwrap_or_default();
        let _ = writeln!(out, "Error {}{target}: {}", e.collector, e.reason);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use trustwatch_common::{Asset, Finding, FindingCode};

    #[test]
    fn a_device_block_lists_services_and_findings() {
        let mut doc = ScanDocument::new("0.1.0", time::OffsetDateTime::UNIX_EPOCH);
        let details = json!({
            "address": "198.18.7.21",
            "names": ["LAB-W7"],
            "identified_as": [{"identifies": "Windows 7 SP1 / Server 2008 R2 SP1"}],
            "services": [
                {"port": 22, "transport": "tcp", "protocol": "ssh", "product": "OpenSSH", "version": "3.9p1", "banner": "SSH-1.99-OpenSSH_3.9p1"},
                {"port": 23, "transport": "tcp", "protocol": "telnet", "error": "reset"}
            ]
        });
        doc.assets.push(Asset {
            kind: AssetKind::Device,
            id: "198.18.7.21".into(),
            details: details.as_object().cloned().unwrap_or_default(),
        });
        let mut f = Finding::new(FindingCode::LegacySshOutdated, "198.18.7.21", json!({}));
        f.subject = "22/tcp".into();
        doc.findings.push(f);
        let t = render_table(&doc);
        for want in [
            "Device 198.18.7.21 (LAB-W7)",
            "  is        Windows 7 SP1 / Server 2008 R2 SP1",
            "  22/tcp    ssh  OpenSSH 3.9p1  \"SSH-1.99-OpenSSH_3.9p1\"",
            "  23/tcp    telnet  (error: reset)",
            "[medium] legacy.ssh.outdated (22/tcp): Outdated SSH protocol or server",
        ] {
            assert!(t.contains(want), "{want:?} not in\n{t}");
        }
        let empty = ScanDocument::new("0.1.0", time::OffsetDateTime::UNIX_EPOCH);
        assert!(render_table(&empty).contains("No device with an open port."));
    }
}
