//! Facts to findings, exactly per DESIGN §2: which codes an endpoint gets,
//! and the evidence that proves each.
//!
//! - `tls.protocol.*` for each old version accepted; `no_tls1_2` only when
//!   some version is accepted and neither TLS 1.2 nor TLS 1.3 is.
//! - `tls.cipher.insecure` / `.weak` from [`suites::classify`] (and the
//!   SSLv2 cipher kinds); CBC alone is neither. `.no_forward_secrecy` when a
//!   suite with a static key exchange is accepted.
//! - `tls.kx.weak_dh` for a DHE prime under 2048 bits.
//! - Certificate codes from [`ChainReport`]: one trust code at most, and an
//!   expired / weak / wrong-host certificate that chains to a trusted root
//!   raises only its own code.

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use trustwatch_common::{Finding, FindingCode};

use super::chain::{CertFacts, ChainReport, Trust};
use super::enumerate::Enumeration;
use super::wire::suites::{self, Strength};
use super::wire::{sslv2, ProtocolVersion};

/// DHE primes under this are weak.
pub const MIN_DH_BITS: u32 = 2048;

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn names(ids: &[u16]) -> Vec<String> {
    ids.iter().map(|s| suites::display_name(*s)).collect()
}

/// SSLv2 cipher kinds: (name, strength, reason).
pub fn sslv2_kind_verdict(kind: u32) -> (String, Strength, &'static str) {
    let name = sslv2::cipher_kind_name(kind)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("0x{kind:06X}"));
    let (strength, why) = if name.contains("EXPORT") {
        (Strength::Insecure, "EXPORT-grade")
    } else if name.contains("RC4") {
        (Strength::Insecure, "RC4")
    } else if name.contains("DES_64") {
        (Strength::Insecure, "DES")
    } else if name.contains("EDE3") || name.contains("RC2") || name.contains("IDEA") {
        (Strength::Weak, "64-bit block cipher")
    } else {
        (Strength::Insecure, "unknown SSLv2 cipher")
    };
    (name, strength, why)
}

/// Cipher bits of an SSLv2 cipher kind (for the grade).
pub fn sslv2_kind_bits(kind: u32) -> u16 {
    match kind {
        sslv2::RC4_128_EXPORT40_WITH_MD5 | sslv2::RC2_128_CBC_EXPORT40_WITH_MD5 => 40,
        sslv2::DES_64_CBC_WITH_MD5 => 56,
        sslv2::DES_192_EDE3_CBC_WITH_MD5 => 168,
        _ => 128,
    }
}

/// Protocol and suite findings of `e` for asset `asset`.
pub fn protocol_findings(asset: &str, e: &Enumeration) -> Vec<Finding> {
    let mut out = Vec::new();
    for (v, code) in [
        (ProtocolVersion::Ssl2, FindingCode::TlsSslv2),
        (ProtocolVersion::Ssl3, FindingCode::TlsSslv3),
        (ProtocolVersion::Tls10, FindingCode::TlsTls10),
        (ProtocolVersion::Tls11, FindingCode::TlsTls11),
    ] {
        let Some(r) = e.version(v).filter(|r| r.accepted) else {
            continue;
        };
        let evidence = if v == ProtocolVersion::Ssl2 {
            let kinds: Vec<String> = e
                .sslv2_kinds
                .iter()
                .map(|k| sslv2_kind_verdict(*k).0)
                .collect();
            json!({"protocol": v.name(), "cipher_kinds": kinds})
        } else {
            json!({"protocol": v.name(), "suites": names(&r.suites)})
        };
        out.push(Finding::new(code, asset, evidence));
    }
    let accepted = e.accepted_versions();
    if !accepted.is_empty()
        && !accepted.contains(&ProtocolVersion::Tls12)
        && !accepted.contains(&ProtocolVersion::Tls13)
    {
        let list: Vec<&str> = accepted.iter().map(|v| v.name()).collect();
        out.push(Finding::new(
            FindingCode::TlsNoTls12,
            asset,
            json!({"accepted_protocols": list}),
        ));
    }

    let mut insecure = Vec::new();
    let mut weak = Vec::new();
    let mut static_kx = Vec::new();
    for kind in &e.sslv2_kinds {
        let (name, strength, why) = sslv2_kind_verdict(*kind);
        let item = json!({"protocol": "SSLv2", "suite": name, "reasons": [why]});
        match strength {
            Strength::Insecure => insecure.push(item),
            Strength::Weak => weak.push(item),
            Strength::Acceptable => {}
        }
    }
    for (v, s) in e.accepted_suites() {
        let Some(info) = suites::info(s) else {
            continue;
        };
        let verdict = suites::verdict(&info);
        let item = json!({"protocol": v.name(), "suite": info.name, "reasons": verdict.reasons});
        match verdict.strength {
            Strength::Insecure => insecure.push(item),
            Strength::Weak => weak.push(item),
            Strength::Acceptable => {}
        }
        if super::enumerate::lacks_forward_secrecy(s) {
            static_kx.push(
                json!({"protocol": v.name(), "suite": info.name, "key_exchange": info.kx.label()}),
            );
        }
    }
    if !insecure.is_empty() {
        out.push(Finding::new(
            FindingCode::TlsCipherInsecure,
            asset,
            json!({ "suites": insecure }),
        ));
    }
    if !weak.is_empty() {
        out.push(Finding::new(
            FindingCode::TlsCipherWeak,
            asset,
            json!({ "suites": weak }),
        ));
    }
    if !static_kx.is_empty() {
        out.push(Finding::new(
            FindingCode::TlsCipherNoForwardSecrecy,
            asset,
            json!({ "suites": static_kx }),
        ));
    }
    let weak_dh: Vec<Value> =
        e.kx.dh
            .iter()
            .filter(|d| d.prime_bits < MIN_DH_BITS)
            .map(|d| {
                json!({"dh_prime_bits": d.prime_bits, "protocol": d.version.name(),
                   "suite": suites::display_name(d.suite)})
            })
            .collect();
    if !weak_dh.is_empty() {
        out.push(Finding::new(
            FindingCode::TlsKxWeakDh,
            asset,
            json!({ "groups": weak_dh, "minimum_bits": MIN_DH_BITS }),
        ));
    }
    out
}

fn position(i: usize) -> String {
    if i == 0 {
        "leaf".to_owned()
    } else {
        format!("chain[{i}]")
    }
}

fn cert_ref(c: &CertFacts, i: usize) -> Value {
    json!({"position": position(i), "subject": c.subject, "issuer": c.issuer})
}

/// The chain as sent, for evidence: subject and issuer of each.
pub fn chain_as_sent(r: &ChainReport) -> Value {
    Value::Array(
        r.certs
            .iter()
            .enumerate()
            .map(|(i, c)| cert_ref(c, i))
            .collect(),
    )
}

/// Certificate findings of `r` for asset `asset`, scanned as `host`.
pub fn certificate_findings(
    asset: &str,
    host: &str,
    r: &ChainReport,
    now: OffsetDateTime,
    trust_sources: &[String],
) -> Vec<Finding> {
    let mut out = Vec::new();
    let pick = |idx: &[usize], f: &dyn Fn(&CertFacts, usize) -> Value| -> Vec<Value> {
        idx.iter()
            .filter_map(|i| r.certs.get(*i).map(|c| f(c, *i)))
            .collect()
    };
    let now_s = rfc3339(now);
    if !r.expired.is_empty() {
        let certs = pick(
            &r.expired,
            &|c, i| json!({"position": position(i), "subject": c.subject, "not_after": rfc3339(c.not_after)}),
        );
        out.push(Finding::new(
            FindingCode::TlsCertExpired,
            asset,
            json!({"certificates": certs, "now": now_s}),
        ));
    }
    if !r.not_yet_valid.is_empty() {
        let certs = pick(
            &r.not_yet_valid,
            &|c, i| json!({"position": position(i), "subject": c.subject, "not_before": rfc3339(c.not_before)}),
        );
        out.push(Finding::new(
            FindingCode::TlsCertNotYetValid,
            asset,
            json!({"certificates": certs, "now": now_s}),
        ));
    }
    if !r.expiring_soon.is_empty() {
        let certs = pick(&r.expiring_soon, &|c, i| {
            json!({"position": position(i), "subject": c.subject, "not_after": rfc3339(c.not_after),
                   "days_left": (c.not_after - now).whole_days()})
        });
        out.push(Finding::new(
            FindingCode::TlsCertExpiringSoon,
            asset,
            json!({"certificates": certs, "now": now_s,
                   "window_days": super::chain::EXPIRING_SOON_DAYS}),
        ));
    }
    let trust_code = match r.trust {
        Trust::Trusted => None,
        Trust::SelfSigned => Some(FindingCode::TlsCertSelfSigned),
        Trust::IncompleteChain => Some(FindingCode::TlsCertIncompleteChain),
        Trust::Untrusted => Some(FindingCode::TlsCertUntrusted),
    };
    if let Some(code) = trust_code {
        out.push(Finding::new(
            code,
            asset,
            json!({"chain_as_sent": chain_as_sent(r),
                   "validation_error": r.trust_detail,
                   "trust_store": trust_sources}),
        ));
    }
    if !r.name_matches {
        let leaf = r.certs.first();
        out.push(Finding::new(
            FindingCode::TlsCertHostnameMismatch,
            asset,
            json!({"name": host,
                   "certificate_names": leaf.map(|c| c.names.clone()).unwrap_or_default(),
                   "subject": leaf.map(|c| c.subject.clone()),
                   "detail": r.name_detail}),
        ));
    }
    if !r.weak_keys.is_empty() {
        let certs = pick(
            &r.weak_keys,
            &|c, i| json!({"position": position(i), "subject": c.subject, "key": c.key_label()}),
        );
        out.push(Finding::new(
            FindingCode::TlsCertWeakKey,
            asset,
            json!({"certificates": certs, "minimum": {"RSA": super::chain::MIN_RSA_BITS, "EC": super::chain::MIN_EC_BITS}}),
        ));
    }
    if !r.weak_signatures.is_empty() {
        let certs = pick(&r.weak_signatures, &|c, i| {
            json!({"position": position(i), "subject": c.subject, "issuer": c.issuer,
                   "signature_algorithm": c.signature_algorithm})
        });
        out.push(Finding::new(
            FindingCode::TlsCertWeakSignature,
            asset,
            json!({ "certificates": certs }),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::tls::enumerate::{DhSeen, KxFacts, VersionResult};

    fn version(v: ProtocolVersion, suites: &[u16]) -> VersionResult {
        VersionResult {
            version: v,
            accepted: !suites.is_empty(),
            suites: suites.to_vec(),
            server_preference: None,
            inconclusive: None,
        }
    }

    fn enumeration(versions: Vec<VersionResult>) -> Enumeration {
        Enumeration {
            versions,
            sslv2_kinds: Vec::new(),
            kx: KxFacts::default(),
            chain: None,
        }
    }

    fn codes(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|f| f.code.as_str()).collect()
    }

    #[test]
    fn cbc_suites_alone_raise_nothing() {
        let e = enumeration(vec![version(ProtocolVersion::Tls12, &[0xc013, 0xc014])]);
        assert!(protocol_findings("a:1", &e).is_empty());
    }

    #[test]
    fn no_tls1_2_only_when_neither_tls12_nor_tls13_is_accepted() {
        let only13 = enumeration(vec![version(ProtocolVersion::Tls13, &[0x1301])]);
        assert!(protocol_findings("a:1", &only13).is_empty());
        let old = enumeration(vec![
            version(ProtocolVersion::Tls10, &[0xc013]),
            version(ProtocolVersion::Tls11, &[0xc013]),
        ]);
        assert_eq!(
            codes(&protocol_findings("a:1", &old)),
            [
                "tls.protocol.tls1_0",
                "tls.protocol.tls1_1",
                "tls.protocol.no_tls1_2"
            ]
        );
        assert!(protocol_findings("a:1", &enumeration(vec![])).is_empty());
    }

    #[test]
    fn suite_classes_become_one_finding_each_with_the_suites_as_evidence() {
        let mut e = enumeration(vec![version(
            ProtocolVersion::Tls12,
            &[0x0005, 0x000a, 0xc012, 0x009c, 0x0033],
        )]);
        e.kx.dh.push(DhSeen {
            prime_bits: 1024,
            suite: 0x0033,
            version: ProtocolVersion::Tls12,
        });
        e.kx.dh.push(DhSeen {
            prime_bits: 2048,
            suite: 0x0033,
            version: ProtocolVersion::Tls12,
        });
        let f = protocol_findings("a:1", &e);
        assert_eq!(
            codes(&f),
            [
                "tls.cipher.insecure",
                "tls.cipher.weak",
                "tls.cipher.no_forward_secrecy",
                "tls.kx.weak_dh"
            ]
        );
        let insecure = f[0].evidence["suites"].to_string();
        assert!(insecure.contains("TLS_RSA_WITH_RC4_128_SHA"), "{insecure}");
        let weak = f[1].evidence["suites"].as_array().unwrap();
        assert_eq!(weak.len(), 2, "{weak:?}");
        let nofs = f[2].evidence["suites"].as_array().unwrap();
        assert_eq!(
            nofs.len(),
            3,
            "RC4, 3DES and AES-GCM with static RSA: {nofs:?}"
        );
        assert_eq!(f[3].evidence["groups"].as_array().unwrap().len(), 1);
        assert!(f.iter().all(|x| x.asset == "a:1"));
    }

    #[test]
    fn sslv2_cipher_kinds_are_classified() {
        assert_eq!(
            sslv2_kind_verdict(sslv2::RC4_128_WITH_MD5).1,
            Strength::Insecure
        );
        assert_eq!(
            sslv2_kind_verdict(sslv2::DES_64_CBC_WITH_MD5).1,
            Strength::Insecure
        );
        assert_eq!(
            sslv2_kind_verdict(sslv2::RC2_128_CBC_EXPORT40_WITH_MD5).1,
            Strength::Insecure
        );
        assert_eq!(
            sslv2_kind_verdict(sslv2::DES_192_EDE3_CBC_WITH_MD5).1,
            Strength::Weak
        );
        assert_eq!(sslv2_kind_bits(sslv2::RC4_128_EXPORT40_WITH_MD5), 40);
    }
}
