//! Certificate chain analysis: facts of each certificate as sent
//! (x509-parser), validation against the trust store (rustls-webpki), and
//! the classification webpki does not give: why a chain fails.
//!
//! Rules (DESIGN §2):
//! - The *path* is the leaf followed by the sent certificates reached by
//!   issuer → subject links; certificates the server sent that are not on it
//!   are reported but not judged.
//! - Validity, key size and signature are judged per certificate of the
//!   path: `expired` / `not_yet_valid` against the clock, `expiring_soon`
//!   when notAfter is within [`EXPIRING_SOON_DAYS`]; `weak_key` for RSA/DSA
//!   under 2048 bits or EC under 224; `weak_signature` for MD2/MD5/SHA-1,
//!   except the self-signature of a self-issued certificate (a root's own
//!   signature protects nothing).
//! - Trust is decided by one webpki validation with the legacy algorithm set
//!   ([`super::trust::lenient_algorithms`]) at a time inside every path
//!   certificate's validity window, so expiry and weakness do not hide a
//!   chain that reaches a trusted root. When it fails, at most one trust
//!   code, the most specific: `self_signed` (leaf's issuer is its subject,
//!   and it is not an anchor), else `incomplete_chain` (the path ends at the
//!   leaf itself and no anchor is its issuer: an intermediate is missing),
//!   else `untrusted` (the path ends at an unknown or untrusted CA).
//!   Without fetching AIA a leaf issued directly by an unknown root reads as
//!   incomplete: servers do not send roots, so this is the likelier cause.
//! - The name is checked by webpki (subjectAltName DNS names and IP
//!   addresses; the common name is not used, as browsers do not use it).

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
use x509_parser::public_key::PublicKey;

use super::trust::{lenient_algorithms, TrustStore};

/// `expiring_soon` window.
pub const EXPIRING_SOON_DAYS: i64 = 30;
/// RSA and DSA keys under this are weak.
pub const MIN_RSA_BITS: u32 = 2048;
/// EC keys under this are weak.
pub const MIN_EC_BITS: u32 = 224;

/// Facts of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// Subject, RFC 4514 string.
    pub subject: String,
    /// Issuer, RFC 4514 string.
    pub issuer: String,
    /// Serial number, hex.
    pub serial: String,
    /// notBefore.
    pub not_before: OffsetDateTime,
    /// notAfter.
    pub not_after: OffsetDateTime,
    /// `RSA`, `EC`, `DSA`, `Ed25519`, `Ed448` or the algorithm OID.
    pub key_type: String,
    /// Key size in bits (curve size for EC).
    pub key_bits: u32,
    /// The named curve of an EC key.
    pub curve: Option<String>,
    /// The signature algorithm's name (or OID).
    pub signature_algorithm: String,
    /// `MD2`, `MD5` or `SHA-1` when the signature uses one.
    pub weak_hash: Option<&'static str>,
    /// Subject equals issuer.
    pub self_issued: bool,
    /// basicConstraints CA.
    pub is_ca: bool,
    /// subjectAltName DNS names and IP addresses.
    pub names: Vec<String>,
    /// SHA-256 of the DER, hex.
    pub sha256: String,
    subject_raw: Vec<u8>,
    issuer_raw: Vec<u8>,
}

impl CertFacts {
    /// The key as a person reads it: `RSA 2048`, `EC 256 (secp256r1)`.
    pub fn key_label(&self) -> String {
        match &self.curve {
            Some(c) => format!("{} {} ({c})", self.key_type, self.key_bits),
            None => format!("{} {}", self.key_type, self.key_bits),
        }
    }

    /// Whether the key is under the DESIGN §2 minimum.
    pub fn weak_key(&self) -> bool {
        match self.key_type.as_str() {
            "RSA" | "DSA" => self.key_bits < MIN_RSA_BITS,
            "EC" => self.key_bits < MIN_EC_BITS,
            _ => false,
        }
    }
}

/// The most specific trust verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Chains to a trusted root.
    Trusted,
    /// The leaf is self-signed and not trusted.
    SelfSigned,
    /// An intermediate is missing.
    IncompleteChain,
    /// Chains to nothing trusted.
    Untrusted,
}

impl Trust {
    /// The label used in assets.
    pub fn as_str(self) -> &'static str {
        match self {
            Trust::Trusted => "trusted",
            Trust::SelfSigned => "self_signed",
            Trust::IncompleteChain => "incomplete_chain",
            Trust::Untrusted => "untrusted",
        }
    }
}

/// What the chain shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Every certificate as sent, leaf first (unreadable ones left out).
    pub certs: Vec<CertFacts>,
    /// Indexes (into `certs`) of the path, leaf first.
    pub path: Vec<usize>,
    /// Sent certificates x509-parser could not read.
    pub unreadable: usize,
    /// The trust verdict.
    pub trust: Trust,
    /// webpki's reason when not trusted.
    pub trust_detail: Option<String>,
    /// The scanned name is in the leaf.
    pub name_matches: bool,
    /// Why not, when it is not.
    pub name_detail: Option<String>,
    /// Path certificates past notAfter.
    pub expired: Vec<usize>,
    /// Path certificates before notBefore.
    pub not_yet_valid: Vec<usize>,
    /// Path certificates expiring within the window.
    pub expiring_soon: Vec<usize>,
    /// Path certificates with weak keys.
    pub weak_keys: Vec<usize>,
    /// Path certificates with weak signatures (self-signatures exempt).
    pub weak_signatures: Vec<usize>,
}

/// The chain could not be analysed at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// Nothing was sent.
    #[error("the server sent no certificate")]
    Empty,
    /// The leaf is not a readable X.509 certificate.
    #[error("the server's certificate cannot be read: {0}")]
    UnreadableLeaf(String),
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The contents of a DER TLV (what follows its tag and length).
fn der_contents(tlv: &[u8]) -> &[u8] {
    let Some(&len0) = tlv.get(1) else {
        return tlv;
    };
    let header = if len0 & 0x80 == 0 {
        2
    } else {
        2 + usize::from(len0 & 0x7f)
    };
    tlv.get(header..).unwrap_or(tlv)
}

fn curve_name(oid: &str) -> Option<(&'static str, u32)> {
    Some(match oid {
        "1.2.840.10045.3.1.7" => ("secp256r1", 256),
        "1.3.132.0.34" => ("secp384r1", 384),
        "1.3.132.0.35" => ("secp521r1", 521),
        "1.3.132.0.33" => ("secp224r1", 224),
        "1.2.840.10045.3.1.1" => ("secp192r1", 192),
        "1.3.132.0.10" => ("secp256k1", 256),
        "1.3.36.3.3.2.8.1.1.7" => ("brainpoolP256r1", 256),
        "1.3.36.3.3.2.8.1.1.11" => ("brainpoolP384r1", 384),
        "1.3.36.3.3.2.8.1.1.13" => ("brainpoolP512r1", 512),
        _ => return None,
    })
}

fn signature_name(oid: &str) -> (String, Option<&'static str>) {
    let (name, weak) = match oid {
        "1.2.840.113549.1.1.2" => ("md2WithRSAEncryption", Some("MD2")),
        "1.2.840.113549.1.1.4" => ("md5WithRSAEncryption", Some("MD5")),
        "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" => ("sha1WithRSAEncryption", Some("SHA-1")),
        "1.2.840.10045.4.1" => ("ecdsa-with-SHA1", Some("SHA-1")),
        "1.2.840.10040.4.3" => ("dsa-with-sha1", Some("SHA-1")),
        "1.2.840.113549.1.1.11" => ("sha256WithRSAEncryption", None),
        "1.2.840.113549.1.1.12" => ("sha384WithRSAEncryption", None),
        "1.2.840.113549.1.1.13" => ("sha512WithRSAEncryption", None),
        "1.2.840.113549.1.1.14" => ("sha224WithRSAEncryption", None),
        "1.2.840.113549.1.1.10" => ("rsassa-pss", None),
        "1.2.840.10045.4.3.2" => ("ecdsa-with-SHA256", None),
        "1.2.840.10045.4.3.3" => ("ecdsa-with-SHA384", None),
        "1.2.840.10045.4.3.4" => ("ecdsa-with-SHA512", None),
        "1.3.101.112" => ("Ed25519", None),
        "1.3.101.113" => ("Ed448", None),
        other => return (other.to_owned(), None),
    };
    (name.to_owned(), weak)
}

/// Reads one certificate's facts.
pub fn facts(der: &[u8]) -> Result<CertFacts, String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    let spki = cert.public_key();
    let alg = spki.algorithm.algorithm.to_id_string();
    let (key_type, key_bits, curve) = match spki.parsed() {
        Ok(PublicKey::RSA(k)) => ("RSA".to_owned(), k.key_size(), None),
        Ok(PublicKey::EC(p)) => {
            let named = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .and_then(|o| curve_name(&o.to_id_string()));
            match named {
                Some((n, bits)) => ("EC".to_owned(), bits as usize, Some(n.to_owned())),
                None => ("EC".to_owned(), p.key_size(), None),
            }
        }
        Ok(PublicKey::DSA(_)) => {
            // The key size of DSA is the size of p, in the parameters.
            (
                "DSA".to_owned(),
                spki.subject_public_key.data.len() * 8,
                None,
            )
        }
        _ => match alg.as_str() {
            "1.3.101.112" => ("Ed25519".to_owned(), 256, None),
            "1.3.101.113" => ("Ed448".to_owned(), 456, None),
            other => (other.to_owned(), 0, None),
        },
    };
    let (signature_algorithm, weak_hash) =
        signature_name(&cert.signature_algorithm.algorithm.to_id_string());
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => names.push((*d).to_owned()),
                GeneralName::IPAddress(ip) => match ip.len() {
                    4 => {
                        let mut a = [0u8; 4];
                        a.copy_from_slice(ip);
                        names.push(std::net::Ipv4Addr::from(a).to_string());
                    }
                    16 => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(ip);
                        names.push(std::net::Ipv6Addr::from(a).to_string());
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    let subject_raw = der_contents(cert.subject().as_raw()).to_vec();
    let issuer_raw = der_contents(cert.issuer().as_raw()).to_vec();
    Ok(CertFacts {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: cert.raw_serial_as_string(),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        key_type,
        key_bits: u32::try_from(key_bits).unwrap_or(u32::MAX),
        curve,
        signature_algorithm,
        weak_hash,
        self_issued: subject_raw == issuer_raw,
        is_ca: cert.is_ca(),
        names,
        sha256: hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref()),
        subject_raw,
        issuer_raw,
    })
}

/// Indexes of the path: the leaf, then each issuer found among the others.
fn build_path(certs: &[CertFacts]) -> Vec<usize> {
    let mut path = vec![0usize];
    let mut current = 0usize;
    while let Some(cur) = certs.get(current) {
        if cur.self_issued {
            break;
        }
        let next = certs
            .iter()
            .enumerate()
            .find(|(i, c)| !path.contains(i) && c.subject_raw == cur.issuer_raw)
            .map(|(i, _)| i);
        match next {
            Some(i) => {
                path.push(i);
                current = i;
            }
            None => break,
        }
    }
    path
}

/// Times to validate at: inside every path certificate's validity window
/// when the windows overlap, then inside each certificate's own window
/// (so that an expired leaf under a younger intermediate still shows
/// whether it chains to a trusted root).
fn judging_times(certs: &[CertFacts], path: &[usize]) -> Vec<OffsetDateTime> {
    let on_path = || path.iter().filter_map(|i| certs.get(*i));
    let mid = |s: OffsetDateTime, e: OffsetDateTime| s + (e - s) / 2;
    let mut times = Vec::new();
    let start = on_path().map(|c| c.not_before).max();
    let end = on_path().map(|c| c.not_after).min();
    if let (Some(s), Some(e)) = (start, end) {
        if s <= e {
            times.push(mid(s, e));
        }
    }
    for c in on_path() {
        if c.not_before <= c.not_after {
            times.push(mid(c.not_before, c.not_after));
        }
    }
    if times.is_empty() {
        times.push(OffsetDateTime::now_utc());
    }
    times
}

fn unix(t: OffsetDateTime) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(t.unix_timestamp()).unwrap_or(0),
    ))
}

/// Analyses `chain` (DER, leaf first, as sent) for the name `host` at `now`.
pub fn analyse(
    chain: &[Vec<u8>],
    host: &str,
    store: &TrustStore,
    now: OffsetDateTime,
) -> Result<ChainReport, ChainError> {
    let leaf_der = chain.first().ok_or(ChainError::Empty)?;
    let leaf = facts(leaf_der).map_err(ChainError::UnreadableLeaf)?;
    let mut certs = vec![leaf];
    let mut unreadable = 0usize;
    let mut ders: Vec<&Vec<u8>> = vec![leaf_der];
    for der in chain.iter().skip(1) {
        match facts(der) {
            Ok(f) => {
                certs.push(f);
                ders.push(der);
            }
            Err(_) => unreadable += 1,
        }
    }
    let path = build_path(&certs);

    // Trust, with the legacy algorithms, at a time inside the windows.
    let leaf_cert = CertificateDer::from(leaf_der.as_slice());
    let intermediates: Vec<CertificateDer<'_>> = ders
        .iter()
        .skip(1)
        .map(|d| CertificateDer::from(d.as_slice()))
        .collect();
    let algs = lenient_algorithms();
    let (verified, detail, ee) = match webpki::EndEntityCert::try_from(&leaf_cert) {
        Ok(ee) => {
            let mut first_error = None;
            let mut ok = false;
            for at in judging_times(&certs, &path) {
                let r = ee.verify_for_usage(
                    &algs,
                    store.anchors(),
                    &intermediates,
                    unix(at),
                    webpki::KeyUsage::server_auth(),
                    None,
                    None,
                );
                match r {
                    Ok(_) => {
                        ok = true;
                        break;
                    }
                    Err(e) => {
                        if first_error.is_none() {
                            first_error = Some(format!("{e:?}"));
                        }
                    }
                }
            }
            (ok, first_error, Some(ee))
        }
        Err(e) => (false, Some(format!("{e:?}")), None),
    };
    let trust = if verified {
        Trust::Trusted
    } else {
        classify_failure(&certs, &path, store)
    };

    // The name.
    let unbracketed = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let (name_matches, name_detail) = match (ServerName::try_from(unbracketed), &ee) {
        (Ok(name), Some(ee)) => match ee.verify_is_valid_for_subject_name(&name) {
            Ok(()) => (true, None),
            Err(e) => (false, Some(format!("{e:?}"))),
        },
        (Err(e), _) => (
            false,
            Some(format!("{host:?} is not a DNS name or IP address: {e}")),
        ),
        (_, None) => (
            false,
            Some("the certificate's names cannot be read".to_owned()),
        ),
    };

    let mut r = ChainReport {
        path: path.clone(),
        unreadable,
        trust,
        trust_detail: if verified { None } else { detail },
        name_matches,
        name_detail,
        expired: Vec::new(),
        not_yet_valid: Vec::new(),
        expiring_soon: Vec::new(),
        weak_keys: Vec::new(),
        weak_signatures: Vec::new(),
        certs: Vec::new(),
    };
    let soon = now + time::Duration::days(EXPIRING_SOON_DAYS);
    for &i in &path {
        let Some(c) = certs.get(i) else { continue };
        // A self-issued CA on the path is a root the server sent along:
        // the trust store's copy is what counts, not this one.
        let sent_root = i != 0 && c.self_issued;
        if !sent_root {
            if c.not_after < now {
                r.expired.push(i);
            } else if c.not_before > now {
                r.not_yet_valid.push(i);
            } else if c.not_after <= soon {
                r.expiring_soon.push(i);
            }
            if c.weak_key() {
                r.weak_keys.push(i);
            }
        }
        if c.weak_hash.is_some() && !c.self_issued {
            r.weak_signatures.push(i);
        }
    }
    r.certs = certs;
    Ok(r)
}

fn classify_failure(certs: &[CertFacts], path: &[usize], store: &TrustStore) -> Trust {
    let Some(leaf) = certs.first() else {
        return Trust::Untrusted;
    };
    if leaf.self_issued {
        return Trust::SelfSigned;
    }
    let last = path.last().and_then(|i| certs.get(*i)).unwrap_or(leaf);
    if last.self_issued {
        // A complete chain to a root nobody trusts.
        return Trust::Untrusted;
    }
    if store.has_subject(&last.issuer_raw) {
        // The issuer is trusted, yet validation failed: not a gap.
        return Trust::Untrusted;
    }
    if path.len() == 1 {
        Trust::IncompleteChain
    } else {
        Trust::Untrusted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_contents_skips_short_and_long_headers() {
        assert_eq!(der_contents(&[0x30, 0x02, 0xaa, 0xbb]), &[0xaa, 0xbb]);
        let mut long = vec![0x30, 0x81, 0x80];
        long.extend(std::iter::repeat_n(7u8, 0x80));
        assert_eq!(der_contents(&long).len(), 0x80);
        assert_eq!(der_contents(&[0x30]), &[0x30]);
    }

    #[test]
    fn weak_hashes_are_named_and_modern_ones_are_not() {
        assert_eq!(signature_name("1.2.840.113549.1.1.5").1, Some("SHA-1"));
        assert_eq!(signature_name("1.2.840.113549.1.1.4").1, Some("MD5"));
        assert_eq!(signature_name("1.2.840.10045.4.1").1, Some("SHA-1"));
        assert_eq!(signature_name("1.2.840.113549.1.1.11").1, None);
        assert_eq!(signature_name("1.2.840.10045.4.3.2").1, None);
    }

    #[test]
    fn unreadable_leaf_is_an_error_not_a_panic() {
        let store = TrustStore::load(&[], false).unwrap();
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(analyse(&[], "a", &store, now), Err(ChainError::Empty));
        assert!(matches!(
            analyse(&[vec![0x30, 0x03, 1, 2, 3]], "a", &store, now),
            Err(ChainError::UnreadableLeaf(_))
        ));
    }
}
