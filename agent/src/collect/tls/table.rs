//! `scan tls --format table`: one block per endpoint, worst grade first,
//! then the targets that could not be assessed.

use std::fmt::Write as _;

use serde_json::Value;
use trustwatch_common::{AssetKind, ScanDocument};

use super::grade::rank;

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| match x {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The document as text a person reads.
pub fn render_table(doc: &ScanDocument) -> String {
    let mut out = String::new();
    let mut assets: Vec<_> = doc
        .assets
        .iter()
        .filter(|a| a.kind == AssetKind::TlsEndpoint)
        .collect();
    let grade_of = |a: &&trustwatch_common::Asset| {
        a.details
            .get("grade")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned()
    };
    assets.sort_by_key(|a| rank(&grade_of(a)));
    for a in assets {
        let d = &a.details;
        let get = |k: &str| d.get(k).cloned().unwrap_or(Value::Null);
        let _ = writeln!(
            out,
            "{}  grade {}  (score {}, {} handshakes, {} ms)",
            a.id,
            grade_of(&a),
            get("score"),
            get("handshakes"),
            get("duration_ms")
        );
        let reasons = strs(&get("grade_reasons"));
        for r in &reasons {
            let _ = writeln!(out, "  why        {r}");
        }
        let _ = writeln!(out, "  protocols  {}", strs(&get("protocols")).join(", "));
        if let Some(Value::Object(by)) = d.get("suites") {
            for (v, list) in by.iter().rev() {
                let pref = d
                    .get("server_preference")
                    .and_then(|p| p.get(v))
                    .and_then(Value::as_bool);
                let order = match pref {
                    Some(true) => " (server order)",
                    Some(false) => " (client order)",
                    None => "",
                };
                let _ = writeln!(out, "  {v:<9}  {}{order}", strs(list).join(", "));
            }
        }
        let kx = get("key_exchange");
        let mut k = Vec::new();
        let dh = strs(&kx["dh_prime_bits"]);
        if !dh.is_empty() {
            k.push(format!("DHE {} bits", dh.join("/")));
        }
        let ec = strs(&kx["ecdh_curves"]);
        if !ec.is_empty() {
            k.push(format!("ECDHE {}", ec.join("/")));
        }
        let g13 = strs(&kx["tls13_groups"]);
        if !g13.is_empty() {
            k.push(format!("TLS 1.3 {}", g13.join("/")));
        }
        let hrr = strs(&kx["hello_retry_groups"]);
        if !hrr.is_empty() {
            k.push(format!("HelloRetryRequest for {}", hrr.join("/")));
        }
        if !k.is_empty() {
            let _ = writeln!(out, "  key exch.  {}", k.join("; "));
        }
        if let Some(Value::Array(chain)) = d.get("certificate_chain") {
            let trust = d.get("trust").and_then(Value::as_str).unwrap_or("?");
            let _ = writeln!(out, "  chain      {trust}");
            for c in chain {
                let _ = writeln!(
                    out,
                    "    {}  [{}, {}, until {}]",
                    c["subject"].as_str().unwrap_or("?"),
                    c["key"].as_str().unwrap_or("?"),
                    c["signature_algorithm"].as_str().unwrap_or("?"),
                    c["not_after"].as_str().unwrap_or("?")
                );
            }
        }
        let mine: Vec<_> = doc.findings.iter().filter(|f| f.asset == a.id).collect();
        if mine.is_empty() {
            let _ = writeln!(out, "  findings   none");
        } else {
            let _ = writeln!(out, "  findings");
            let mut sorted = mine;
            sorted.sort_by(|x, y| {
                y.severity
                    .cmp(&x.severity)
                    .then(x.code.as_str().cmp(y.code.as_str()))
            });
            for f in sorted {
                let _ = writeln!(out, "    [{}] {}: {}", f.severity, f.code, f.title);
            }
        }
        for n in strs(&get("notes")) {
            let _ = writeln!(out, "  note       {n}");
        }
        let _ = writeln!(out);
    }
    for e in &doc.errors {
        let _ = writeln!(
            out,
            "{}  NOT ASSESSED: {}",
            e.target.as_deref().unwrap_or(&e.collector),
            e.reason
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::OffsetDateTime;
    use trustwatch_common::report::CollectorError;
    use trustwatch_common::{Asset, Finding, FindingCode};

    fn endpoint(id: &str, grade: &str) -> Asset {
        let d = json!({"grade": grade, "score": 90, "handshakes": 20, "duration_ms": 150,
                       "grade_reasons": [], "protocols": ["TLSv1.2"],
                       "suites": {"TLSv1.2": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]},
                       "server_preference": {"TLSv1.2": true},
                       "key_exchange": {"dh_prime_bits": [], "ecdh_curves": ["x25519"],
                                        "tls13_groups": [], "hello_retry_groups": []},
                       "notes": []});
        Asset {
            kind: AssetKind::TlsEndpoint,
            id: id.into(),
            details: d.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn table_lists_worst_grade_first_then_targets_not_assessed() {
        let mut doc = ScanDocument::new("0", OffsetDateTime::UNIX_EPOCH);
        doc.assets = vec![
            endpoint("good:443", "A"),
            endpoint("bad:443", "F"),
            endpoint("odd:443", "T"),
        ];
        doc.findings = vec![Finding::new(
            FindingCode::TlsSslv2,
            "bad:443",
            json!({"protocol": "SSLv2"}),
        )];
        doc.errors = vec![CollectorError {
            collector: "tls".into(),
            target: Some("gone:443".into()),
            reason: "connection refused (127.0.0.1:443)".into(),
        }];
        let t = render_table(&doc);
        let pos = |s: &str| t.find(s).unwrap_or_else(|| panic!("{s} missing from\n{t}"));
        assert!(pos("bad:443  grade F") < pos("odd:443  grade T"));
        assert!(pos("odd:443  grade T") < pos("good:443  grade A"));
        assert!(
            pos("good:443  grade A")
                < pos("gone:443  NOT ASSESSED: connection refused (127.0.0.1:443)")
        );
        assert!(
            t.contains("[critical] tls.protocol.sslv2: SSLv2 accepted"),
            "{t}"
        );
        assert!(
            t.contains("TLSv1.2    TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (server order)"),
            "{t}"
        );
    }
}
