//! What an endpoint accepts, measured with hand-built hellos: each protocol
//! version from SSLv2 to TLS 1.3, the cipher suites of each (iterative
//! removal), whether the server imposes its own suite order, and the key
//! exchange parameters it sends.
//!
//! Method:
//! - The first handshake is a TLS 1.3 hello. Any TLS answer (a ServerHello,
//!   a HelloRetryRequest or an alert) proves the port speaks TLS; a refused
//!   connection, a timeout or bytes that are not TLS end the assessment there
//!   with that reason ([`Unreachable`]), so a dead or foreign port costs one
//!   connection.
//! - SSLv3 to TLS 1.2: every suite the registry knows for the version,
//!   cut into hello-sized bundles ([`suites::chunks`]). Each bundle is
//!   offered; the suite the server picks is recorded and dropped from the
//!   bundle, which is offered again, until the server refuses it. A
//!   `protocol_version` alert to the first bundle ends the version at once.
//!   An answer in another version means the offered one is not accepted.
//! - TLS 1.3: the same over the TLS 1.3 suites. A HelloRetryRequest is
//!   answered on its connection; later hellos carry a key share for the
//!   group the server asked for, so the retry happens once.
//! - Server preference: the first two suites picked, offered in the
//!   reverse of the order they were first offered in; a server that picks
//!   the first one again imposes its order (when they came from different
//!   bundles, both orders are offered). The suites are then listed in the
//!   server's order (re-derived with one more round of removal when they
//!   came from several bundles).
//! - SSLv2: one CLIENT-HELLO with every cipher kind.
//!
//! A probe that fails without a clean refusal (a timeout, a malformed
//! answer) after the first handshake leaves that version `inconclusive`
//! with the reason; the version is not counted as accepted.

use std::collections::BTreeSet;

use super::prober::Prober;
use super::wire::groups;
use super::wire::parse::{EcCurve, KeyExchangeParams, ServerFlight};
use super::wire::suites::{self, KeyExchange};
use super::wire::{ProbeError, ProtocolVersion, ServerAnswer, Tls13Probe};

/// The alert a server sends for a version it does not speak.
const ALERT_PROTOCOL_VERSION: u8 = 70;

/// What one protocol version showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionResult {
    /// The version.
    pub version: ProtocolVersion,
    /// At least one suite was accepted with it.
    pub accepted: bool,
    /// Accepted suites (IANA code points): in the server's order when it
    /// imposes one, else in the order they were picked.
    pub suites: Vec<u16>,
    /// Whether the server imposes its own order (`None`: fewer than two
    /// suites, or the test failed).
    pub server_preference: Option<bool>,
    /// Why the answer is open, when a probe failed without a clean refusal.
    pub inconclusive: Option<String>,
}

impl VersionResult {
    fn new(version: ProtocolVersion) -> Self {
        VersionResult {
            version,
            accepted: false,
            suites: Vec::new(),
            server_preference: None,
            inconclusive: None,
        }
    }
}

/// One finite-field DH group seen in a ServerKeyExchange.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DhSeen {
    /// Bits of the prime.
    pub prime_bits: u32,
    /// The suite it came with.
    pub suite: u16,
    /// The version it came with.
    pub version: ProtocolVersion,
}

/// Key exchange parameters the server sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KxFacts {
    /// DHE groups (one entry per distinct prime size).
    pub dh: Vec<DhSeen>,
    /// ECDHE named curves from ServerKeyExchange messages (TLS ≤ 1.2).
    pub ecdh_curves: BTreeSet<u16>,
    /// ECDHE with explicit curve parameters was seen.
    pub ecdh_explicit: bool,
    /// TLS 1.3 groups of the server's key shares.
    pub tls13_groups: BTreeSet<u16>,
    /// Groups a HelloRetryRequest asked for.
    pub hello_retry_groups: BTreeSet<u16>,
    /// Temporary RSA key sizes of EXPORT suites.
    pub rsa_export_bits: BTreeSet<u32>,
}

impl KxFacts {
    fn record(&mut self, flight: &ServerFlight, version: ProtocolVersion) {
        let suite = flight.server_hello.cipher_suite;
        let Some(kx) = &flight.key_exchange else {
            return;
        };
        match &kx.params {
            KeyExchangeParams::Dh(p) if !self.dh.iter().any(|d| d.prime_bits == p.prime_bits) => {
                self.dh.push(DhSeen {
                    prime_bits: p.prime_bits,
                    suite,
                    version,
                });
                self.dh.sort();
            }
            KeyExchangeParams::Ecdh { curve, .. } => match curve {
                EcCurve::Named(g) => {
                    self.ecdh_curves.insert(*g);
                }
                EcCurve::ExplicitPrime | EcCurve::ExplicitChar2 => self.ecdh_explicit = true,
            },
            KeyExchangeParams::RsaExport { modulus_bits } => {
                self.rsa_export_bits.insert(*modulus_bits);
            }
            _ => {}
        }
    }
}

/// A certificate chain as sent, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentChain {
    /// DER certificates, leaf first, as sent.
    pub certs: Vec<Vec<u8>>,
    /// The handshake it came from, e.g. `TLSv1.2 handshake`.
    pub source: String,
}

/// Everything the hellos showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enumeration {
    /// One entry per version, SSLv2 first.
    pub versions: Vec<VersionResult>,
    /// SSLv2 cipher kinds the server listed.
    pub sslv2_kinds: Vec<u32>,
    /// Key exchange parameters seen.
    pub kx: KxFacts,
    /// The chain from the newest plaintext handshake that carried one.
    pub chain: Option<SentChain>,
}

impl Enumeration {
    /// The result for `v`.
    pub fn version(&self, v: ProtocolVersion) -> Option<&VersionResult> {
        self.versions.iter().find(|r| r.version == v)
    }

    /// Whether `v` was accepted.
    pub fn accepts(&self, v: ProtocolVersion) -> bool {
        self.version(v).is_some_and(|r| r.accepted)
    }

    /// Accepted versions, oldest first.
    pub fn accepted_versions(&self) -> Vec<ProtocolVersion> {
        self.versions
            .iter()
            .filter(|r| r.accepted)
            .map(|r| r.version)
            .collect()
    }

    /// Every accepted (version, suite) pair, SSLv3 and later.
    pub fn accepted_suites(&self) -> impl Iterator<Item = (ProtocolVersion, u16)> + '_ {
        self.versions
            .iter()
            .flat_map(|r| r.suites.iter().map(move |s| (r.version, *s)))
    }
}

/// The endpoint could not be assessed: its first handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unreachable(pub ProbeError);

/// Measures everything through `prober`.
pub async fn enumerate(prober: &Prober) -> Result<Enumeration, Unreachable> {
    let tls13_suites = suites::suites_for(ProtocolVersion::Tls13);
    let opts = prober.hello_options();
    let first = prober.hello13(&tls13_suites, &opts).await;
    if let Err(e) = &first {
        if !e.is_refusal() {
            return Err(Unreachable(e.clone()));
        }
    }
    let (t13, t12, t11, t10, s3, s2) = tokio::join!(
        tls13(prober, first),
        legacy(prober, ProtocolVersion::Tls12),
        legacy(prober, ProtocolVersion::Tls11),
        legacy(prober, ProtocolVersion::Tls10),
        legacy(prober, ProtocolVersion::Ssl3),
        sslv2(prober),
    );
    let mut kx = KxFacts::default();
    let mut chain = None;
    for part in [&t12, &t11, &t10, &s3] {
        for d in &part.kx.dh {
            if !kx.dh.iter().any(|x| x.prime_bits == d.prime_bits) {
                kx.dh.push(d.clone());
            }
        }
        kx.dh.sort();
        kx.ecdh_curves.extend(part.kx.ecdh_curves.iter().copied());
        kx.ecdh_explicit |= part.kx.ecdh_explicit;
        kx.rsa_export_bits
            .extend(part.kx.rsa_export_bits.iter().copied());
        if chain.is_none() {
            chain.clone_from(&part.chain);
        }
    }
    kx.tls13_groups = t13.groups;
    kx.hello_retry_groups = t13.hrr_groups;
    let (v2, kinds, v2_cert) = s2;
    if chain.is_none() {
        if let Some(cert) = v2_cert {
            chain = Some(SentChain {
                certs: vec![cert],
                source: "SSLv2 SERVER-HELLO".into(),
            });
        }
    }
    Ok(Enumeration {
        versions: vec![
            v2, s3.result, t10.result, t11.result, t12.result, t13.result,
        ],
        sslv2_kinds: kinds,
        kx,
        chain,
    })
}

/// What a pre-TLS 1.3 version showed.
struct Legacy {
    result: VersionResult,
    kx: KxFacts,
    chain: Option<SentChain>,
}

/// The outcome of one offer.
enum Pick {
    /// The server picked this suite (and sent this flight).
    Suite(u16, Box<ServerFlight>),
    /// The server refused the offer (alert, close, reset, other version).
    Refused { protocol_version_alert: bool },
    /// The probe failed in a way that proves nothing.
    Failed(String),
}

async fn offer(prober: &Prober, version: ProtocolVersion, offered: &[u16]) -> Pick {
    match prober.hello(version, offered).await {
        Ok(ServerAnswer::Handshake(flight)) => {
            let sh = &flight.server_hello;
            if sh.version != version.wire() {
                return Pick::Refused {
                    protocol_version_alert: false,
                };
            }
            if !offered.contains(&sh.cipher_suite) {
                return Pick::Failed(format!(
                    "the server picked {} which was not offered",
                    suites::display_name(sh.cipher_suite)
                ));
            }
            Pick::Suite(sh.cipher_suite, Box::new(flight))
        }
        Ok(ServerAnswer::Alert(a)) => Pick::Refused {
            protocol_version_alert: a.description == ALERT_PROTOCOL_VERSION,
        },
        Ok(_) => Pick::Refused {
            protocol_version_alert: false,
        },
        Err(e) if e.is_refusal() => Pick::Refused {
            protocol_version_alert: false,
        },
        Err(e) => Pick::Failed(e.to_string()),
    }
}

async fn legacy(prober: &Prober, version: ProtocolVersion) -> Legacy {
    let mut out = Legacy {
        result: VersionResult::new(version),
        kx: KxFacts::default(),
        chain: None,
    };
    let all = suites::suites_for(version);
    let mut bundles_with_picks = 0usize;
    // The bundle each accepted suite came from.
    let mut from_bundle: Vec<usize> = Vec::new();
    'bundles: for (bundle_no, bundle) in suites::chunks(version, &all).into_iter().enumerate() {
        let mut left = bundle;
        let mut picked_here = false;
        while !left.is_empty() {
            match offer(prober, version, &left).await {
                Pick::Suite(s, flight) => {
                    out.result.suites.push(s);
                    from_bundle.push(bundle_no);
                    left.retain(|x| *x != s);
                    picked_here = true;
                    out.kx.record(&flight, version);
                    if out.chain.is_none() {
                        if let Some(certs) = flight.certificates.filter(|c| !c.is_empty()) {
                            out.chain = Some(SentChain {
                                certs,
                                source: format!("{version} handshake"),
                            });
                        }
                    }
                }
                Pick::Refused {
                    protocol_version_alert,
                } => {
                    if protocol_version_alert && out.result.suites.is_empty() {
                        break 'bundles;
                    }
                    break;
                }
                Pick::Failed(why) => {
                    if out.result.suites.is_empty() {
                        out.result.inconclusive = Some(why);
                        break 'bundles;
                    }
                    out.result.inconclusive = Some(why);
                    break;
                }
            }
        }
        if picked_here {
            bundles_with_picks += 1;
        }
    }
    out.result.accepted = !out.result.suites.is_empty();
    if out.result.suites.len() >= 2 {
        let same_bundle = from_bundle.first() == from_bundle.get(1);
        let pref = preference(prober, version, &out.result.suites, same_bundle).await;
        out.result.server_preference = pref;
        if pref == Some(true) && bundles_with_picks > 1 {
            if let Some(order) = server_order(prober, version, &out.result.suites).await {
                out.result.suites = order;
            }
        }
    }
    out
}

/// Whether the server imposes its order. `a`, the first suite picked, was
/// picked while `b`, the second, was on offer (`same_bundle`): then one
/// hello offering `[b, a]` decides (a server that follows the client takes
/// `b`; one that imposes its order takes `a` again). Otherwise both orders
/// are offered.
async fn preference(
    prober: &Prober,
    version: ProtocolVersion,
    accepted: &[u16],
    same_bundle: bool,
) -> Option<bool> {
    let (&a, &b) = (accepted.first()?, accepted.get(1)?);
    if same_bundle {
        let Pick::Suite(p, _) = offer(prober, version, &[b, a]).await else {
            return None;
        };
        return Some(p == a);
    }
    let Pick::Suite(p1, _) = offer(prober, version, &[a, b]).await else {
        return None;
    };
    let Pick::Suite(p2, _) = offer(prober, version, &[b, a]).await else {
        return None;
    };
    Some(p1 == p2)
}

/// The server's order of `accepted` (one round of removal over them all).
async fn server_order(
    prober: &Prober,
    version: ProtocolVersion,
    accepted: &[u16],
) -> Option<Vec<u16>> {
    let mut left = accepted.to_vec();
    let mut order = Vec::new();
    while left.len() > 1 {
        let Pick::Suite(s, _) = offer(prober, version, &left).await else {
            return None;
        };
        order.push(s);
        left.retain(|x| *x != s);
    }
    order.extend(left);
    Some(order)
}

/// What TLS 1.3 showed.
struct Tls13 {
    result: VersionResult,
    groups: BTreeSet<u16>,
    hrr_groups: BTreeSet<u16>,
}

/// The suite a TLS 1.3 probe shows accepted, if any.
fn tls13_pick(p: &Tls13Probe, groups_seen: &mut BTreeSet<u16>) -> Option<u16> {
    match &p.answer {
        ServerAnswer::Handshake(f) if f.server_hello.protocol() == Some(ProtocolVersion::Tls13) => {
            if let Some(g) = f.server_hello.selected_group {
                groups_seen.insert(g);
            }
            Some(f.server_hello.cipher_suite)
        }
        // A HelloRetryRequest for a group no share can be made for: it
        // still names the suite the server chose.
        ServerAnswer::HelloRetryRequest(h) => Some(h.cipher_suite),
        _ => None,
    }
}

async fn tls13(prober: &Prober, first: Result<Tls13Probe, ProbeError>) -> Tls13 {
    let mut out = Tls13 {
        result: VersionResult::new(ProtocolVersion::Tls13),
        groups: BTreeSet::new(),
        hrr_groups: BTreeSet::new(),
    };
    let mut opts = prober.hello_options();
    let mut left = suites::suites_for(ProtocolVersion::Tls13);
    let mut next = Some(first);
    while let Some(res) = next.take() {
        let p = match res {
            Ok(p) => p,
            Err(e) if e.is_refusal() => break,
            Err(e) => {
                out.result.inconclusive = Some(e.to_string());
                break;
            }
        };
        if let Some(g) = p.hello_retry.as_ref().and_then(|h| h.selected_group) {
            out.hrr_groups.insert(g);
            if groups::KEY_SHARE_GROUPS.contains(&g) {
                opts.key_shares = vec![g];
            }
        }
        let Some(s) = tls13_pick(&p, &mut out.groups) else {
            break;
        };
        if !left.contains(&s) {
            out.result.inconclusive = Some(format!(
                "the server picked {} which was not offered",
                suites::display_name(s)
            ));
            break;
        }
        out.result.suites.push(s);
        left.retain(|x| *x != s);
        if !left.is_empty() {
            next = Some(prober.hello13(&left, &opts).await);
        }
    }
    out.result.accepted = !out.result.suites.is_empty();
    // Every TLS 1.3 suite was on offer at the first pick: one hello with
    // the first two picks reversed decides (see `preference`).
    if let (Some(&a), Some(&b)) = (out.result.suites.first(), out.result.suites.get(1)) {
        let mut seen = BTreeSet::new();
        if let Ok(p) = prober.hello13(&[b, a], &opts).await {
            out.result.server_preference = tls13_pick(&p, &mut seen).map(|x| x == a);
        }
    }
    out
}

/// SSLv2: (result, cipher kinds, certificate).
async fn sslv2(prober: &Prober) -> (VersionResult, Vec<u32>, Option<Vec<u8>>) {
    let mut r = VersionResult::new(ProtocolVersion::Ssl2);
    match prober.sslv2().await {
        Ok(ServerAnswer::Sslv2(sh)) if !sh.cipher_specs.is_empty() => {
            r.accepted = true;
            let cert = (!sh.certificate.is_empty()).then(|| sh.certificate.clone());
            (r, sh.cipher_specs, cert)
        }
        Ok(_) => (r, Vec::new(), None),
        Err(e) if e.is_refusal() => (r, Vec::new(), None),
        // Many servers ignore a hello they cannot read, or close after a
        // few bytes of alert: SSLv2 is not accepted by them.
        Err(ProbeError::ReadTimeout { .. } | ProbeError::Truncated { .. })
        | Err(ProbeError::NotTls { .. } | ProbeError::Malformed { .. }) => (r, Vec::new(), None),
        Err(e) => {
            r.inconclusive = Some(e.to_string());
            (r, Vec::new(), None)
        }
    }
}

/// Whether a suite lacks forward secrecy (static key exchange).
pub fn lacks_forward_secrecy(suite: u16) -> bool {
    suites::info(suite).is_some_and(|i| {
        !i.kx.forward_secret() && i.kx != KeyExchange::Null && i.kx != KeyExchange::Tls13
    })
}
