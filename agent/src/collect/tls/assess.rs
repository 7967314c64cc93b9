//! The assessment of one endpoint: resolve, enumerate, fetch and analyse
//! the chain, then the findings, the grade and the `tls_endpoint` asset.
//!
//! Asset format (`kind: tls_endpoint`, `id`: the TARGET as given):
//! `host`, `port`, `address`, `grade`, `grade_ignoring_trust`, `score`,
//! `scores {protocol, key_exchange, cipher}`, `grade_reasons [..]`,
//! `protocols [..]` (accepted, oldest first), `suites {version: [IANA..]}`,
//! `server_preference {version: bool}`, `key_exchange {dh_prime_bits,
//! ecdh_curves, tls13_groups, hello_retry_groups}`, `sslv2_cipher_kinds`,
//! `certificate_chain [{subject, issuer, serial, not_before, not_after, key,
//! signature_algorithm, names, sha256}]`, `chain_source`, `trust`,
//! `name_matches`, `handshakes`, `duration_ms`, `notes [..]`.
//! An endpoint that could not be assessed gets no asset and one error.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::time::Instant;
use trustwatch_common::report::{collector, CollectorError};
use trustwatch_common::{Asset, AssetKind, Finding};

use super::chain::{self, ChainReport, Trust};
use super::enumerate::{enumerate, Enumeration};
use super::findings::{
    certificate_findings, protocol_findings, sslv2_kind_bits, sslv2_kind_verdict,
};
use super::grade::{grade, Grade, GradeInput};
use super::prober::{Prober, ScanLimits};
use super::trust::TrustStore;
use super::wire::{groups, suites, ProtocolVersion};
use super::{fetch13, Target};

/// What one endpoint produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Assessed: its asset and findings.
    Assessed {
        /// The `tls_endpoint` asset.
        asset: Asset,
        /// Its findings.
        findings: Vec<Finding>,
    },
    /// Not assessed, and why.
    Failed(CollectorError),
}

fn fail(target: &Target, reason: String) -> Outcome {
    Outcome::Failed(CollectorError {
        collector: collector::TLS.to_owned(),
        target: Some(target.given.clone()),
        reason,
    })
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// Assesses `target`.
pub async fn assess(
    target: &Target,
    limits: ScanLimits,
    store: &TrustStore,
    now: OffsetDateTime,
) -> Outcome {
    let started = Instant::now();
    let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
    let addr = match tokio::time::timeout(limits.timeout, lookup).await {
        Err(_) => return fail(target, format!("resolving {} timed out", target.host)),
        Ok(Err(e)) => return fail(target, format!("cannot resolve {}: {e}", target.host)),
        Ok(Ok(mut addrs)) => match addrs.next() {
            Some(a) => a,
            None => return fail(target, format!("{} has no address", target.host)),
        },
    };
    let prober = Prober::new(addr, &target.host, limits);
    // The prober refuses new connections once the budget is spent; this
    // outer bound only guards against a bug in that logic.
    let safety = limits.endpoint_budget + limits.timeout * 2;
    match tokio::time::timeout(safety, assess_with(target, &prober, store, now, started)).await {
        Ok(o) => o,
        Err(_) => fail(
            target,
            format!(
                "the assessment did not finish within {} s",
                safety.as_secs()
            ),
        ),
    }
}

async fn assess_with(
    target: &Target,
    prober: &Arc<Prober>,
    store: &TrustStore,
    now: OffsetDateTime,
    started: Instant,
) -> Outcome {
    let e = match enumerate(prober).await {
        Ok(e) => e,
        Err(u) => return fail(target, format!("{} ({})", u.0, prober.addr())),
    };
    let mut notes: Vec<String> = e
        .versions
        .iter()
        .filter_map(|r| {
            r.inconclusive
                .as_ref()
                .map(|why| format!("{}: inconclusive: {why}", r.version))
        })
        .collect();
    if e.accepted_versions().is_empty() {
        let detail = if notes.is_empty() {
            "every hello was refused".to_owned()
        } else {
            notes.join("; ")
        };
        return fail(
            target,
            format!("no SSL/TLS version was accepted ({detail})"),
        );
    }

    // The chain: from a plaintext handshake, else through rustls (TLS 1.3).
    let mut chain_source = None;
    let mut ders = None;
    if let Some(c) = &e.chain {
        chain_source = Some(c.source.clone());
        ders = Some(c.certs.clone());
    } else if e.accepts(ProtocolVersion::Tls13) {
        match fetch13::fetch_chain(prober).await {
            Ok(c) => {
                chain_source = Some("TLSv1.3 handshake (rustls)".to_owned());
                ders = Some(c);
            }
            Err(err) => notes.push(format!("certificate chain not obtained: {err}")),
        }
    }
    let report = match &ders {
        Some(d) => match chain::analyse(d, &target.host, store, now) {
            Ok(r) => Some(r),
            Err(err) => {
                notes.push(err.to_string());
                None
            }
        },
        None => None,
    };

    let asset_id = target.given.as_str();
    let mut findings = protocol_findings(asset_id, &e);
    if let Some(r) = &report {
        findings.extend(certificate_findings(
            asset_id,
            &target.host,
            r,
            now,
            &store.sources,
        ));
    }
    for f in &mut findings {
        f.collector = collector::TLS.to_owned();
    }
    let g = grade(&grade_input(&e, report.as_ref()));
    let asset = asset(
        target,
        prober,
        &e,
        report.as_ref(),
        chain_source,
        &g,
        notes,
        started,
    );
    Outcome::Assessed { asset, findings }
}

fn grade_input(e: &Enumeration, r: Option<&ChainReport>) -> GradeInput {
    let mut ec_bits: Vec<u32> =
        e.kx.ecdh_curves
            .iter()
            .chain(&e.kx.tls13_groups)
            .filter_map(|g| groups::bits(*g))
            .collect();
    ec_bits.sort_unstable();
    ec_bits.dedup();
    let mut input = GradeInput {
        versions: e.accepted_versions(),
        suites: e.accepted_suites().collect(),
        sslv2_cipher_bits: e.sslv2_kinds.iter().map(|k| sslv2_kind_bits(*k)).collect(),
        dh_bits: e.kx.dh.iter().map(|d| d.prime_bits).collect(),
        ec_bits,
        export_rsa_bits: e.kx.rsa_export_bits.iter().copied().collect(),
        ..GradeInput::default()
    };
    if let Some(r) = r {
        input.cert_key = r.certs.first().map(|c| (c.key_type.clone(), c.key_bits));
        input.trust_problem = match r.trust {
            Trust::SelfSigned => Some("self-signed certificate".to_owned()),
            Trust::Untrusted => Some("the chain does not reach a trusted root".to_owned()),
            Trust::Trusted | Trust::IncompleteChain => None,
        };
        if !r.expired.is_empty() {
            input.trust_problem = Some("expired certificate".to_owned());
        } else if !r.not_yet_valid.is_empty() {
            input.trust_problem = Some("certificate not yet valid".to_owned());
        }
        input.incomplete_chain = r.trust == Trust::IncompleteChain;
        input.name_mismatch = !r.name_matches;
        let hashes: Vec<&str> = r
            .weak_signatures
            .iter()
            .filter_map(|i| r.certs.get(*i).and_then(|c| c.weak_hash))
            .collect();
        input.weak_hash = ["MD2", "MD5", "SHA-1"]
            .into_iter()
            .find(|h| hashes.contains(h))
            .map(str::to_owned);
    }
    input
}

#[allow(clippy::too_many_arguments)]
fn asset(
    target: &Target,
    prober: &Prober,
    e: &Enumeration,
    r: Option<&ChainReport>,
    chain_source: Option<String>,
    g: &Grade,
    notes: Vec<String>,
    started: Instant,
) -> Asset {
    let mut d = Map::new();
    d.insert("host".into(), json!(target.host));
    d.insert("port".into(), json!(target.port));
    d.insert("address".into(), json!(prober.addr().to_string()));
    d.insert("grade".into(), json!(g.grade));
    d.insert("grade_ignoring_trust".into(), json!(g.grade_ignoring_trust));
    d.insert("score".into(), json!(g.score));
    d.insert(
        "scores".into(),
        json!({"protocol": g.protocol_score, "key_exchange": g.key_exchange_score,
               "cipher": g.cipher_score}),
    );
    d.insert("grade_reasons".into(), json!(g.reasons));
    let accepted = e.accepted_versions();
    d.insert(
        "protocols".into(),
        json!(accepted.iter().map(|v| v.name()).collect::<Vec<_>>()),
    );
    let mut suites_by: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut pref: BTreeMap<&str, bool> = BTreeMap::new();
    for v in e.versions.iter().filter(|v| v.accepted) {
        if v.version == ProtocolVersion::Ssl2 {
            continue;
        }
        suites_by.insert(
            v.version.name(),
            v.suites.iter().map(|s| suites::display_name(*s)).collect(),
        );
        if let Some(p) = v.server_preference {
            pref.insert(v.version.name(), p);
        }
    }
    d.insert("suites".into(), json!(suites_by));
    d.insert("server_preference".into(), json!(pref));
    let group_names = |set: &std::collections::BTreeSet<u16>| -> Vec<String> {
        set.iter()
            .map(|g| {
                groups::name(*g)
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("0x{g:04x}"))
            })
            .collect()
    };
    d.insert(
        "key_exchange".into(),
        json!({
            "dh_prime_bits": e.kx.dh.iter().map(|x| x.prime_bits).collect::<Vec<_>>(),
            "ecdh_curves": group_names(&e.kx.ecdh_curves),
            "tls13_groups": group_names(&e.kx.tls13_groups),
            "hello_retry_groups": group_names(&e.kx.hello_retry_groups),
        }),
    );
    if !e.sslv2_kinds.is_empty() {
        d.insert(
            "sslv2_cipher_kinds".into(),
            json!(e
                .sslv2_kinds
                .iter()
                .map(|k| sslv2_kind_verdict(*k).0)
                .collect::<Vec<_>>()),
        );
    }
    if let Some(r) = r {
        let chain: Vec<Value> = r
            .certs
            .iter()
            .map(|c| {
                json!({"subject": c.subject, "issuer": c.issuer, "serial": c.serial,
                       "not_before": rfc3339(c.not_before), "not_after": rfc3339(c.not_after),
                       "key": c.key_label(), "signature_algorithm": c.signature_algorithm,
                       "names": c.names, "sha256": c.sha256})
            })
            .collect();
        d.insert("certificate_chain".into(), Value::Array(chain));
        d.insert("trust".into(), json!(r.trust.as_str()));
        d.insert("name_matches".into(), json!(r.name_matches));
    }
    if let Some(s) = chain_source {
        d.insert("chain_source".into(), json!(s));
    }
    d.insert("handshakes".into(), json!(prober.handshakes()));
    d.insert(
        "duration_ms".into(),
        json!(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)),
    );
    d.insert("notes".into(), json!(notes));
    Asset {
        kind: AssetKind::TlsEndpoint,
        id: target.given.clone(),
        details: d,
    }
}
