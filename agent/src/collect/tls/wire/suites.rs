//! Cipher-suite facts (from tls-parser's copy of the IANA registry) and
//! their classification under DESIGN §2, plus the suite lists a scan offers
//! for each protocol version and how they are cut into hellos.
//!
//! Classification rules (DESIGN §2):
//! - **insecure**: NULL encryption, anonymous key exchange, EXPORT grade,
//!   DES, RC4, or an effective key under 112 bits;
//! - **weak**: a 64-bit block cipher (3DES, IDEA, RC2: SWEET32) that is not
//!   already insecure. CBC mode alone is *not* weak;
//! - **no forward secrecy**: a non-ephemeral key exchange (static RSA, static
//!   DH/ECDH, plain PSK, RSA-PSK, Kerberos).
//!
//! Hello sizes: some servers fail on ClientHellos offering more than 128
//! suites (testssl.sh caps its blocks at 128 for that reason), and the F5
//! bug (RFC 7685 §1) hangs on a ClientHello record whose length is between
//! 256 and 511 bytes. So TLS hellos offer at most [`MAX_SUITES_PER_HELLO`]
//! suites and [`super::hello`] pads records in that window to 512 bytes with
//! the RFC 7685 `padding` extension. SSLv3 hellos have no extensions and so
//! cannot be padded: they offer at most [`MAX_SUITES_PER_SSL3_HELLO`] suites,
//! which keeps them under 256 bytes even with the renegotiation SCSV.

use tls_parser::{
    TlsCipherAu, TlsCipherEnc, TlsCipherEncMode, TlsCipherKx, TlsCipherMac, TlsCipherSuite, TlsPRF,
    CIPHERS,
};

use super::version::ProtocolVersion;

/// The renegotiation signalling suite value (RFC 5746).
pub const TLS_EMPTY_RENEGOTIATION_INFO_SCSV: u16 = 0x00ff;
/// The downgrade signalling suite value (RFC 7507).
pub const TLS_FALLBACK_SCSV: u16 = 0x5600;
/// The suite that must never be negotiated.
pub const TLS_NULL_WITH_NULL_NULL: u16 = 0x0000;

/// Most suites one TLS ClientHello offers (see the module docs).
pub const MAX_SUITES_PER_HELLO: usize = 128;
/// Most suites one SSLv3 ClientHello offers; with the renegotiation SCSV
/// added that is 43 + 2 × 101 = 245 bytes of record payload, under the F5
/// window (an SSLv3 hello cannot be padded).
pub const MAX_SUITES_PER_SSL3_HELLO: usize = 100;

/// How the keys are agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyExchange {
    /// RSA key transport (`TLS_RSA_*`): no forward secrecy.
    RsaStatic,
    /// Static Diffie-Hellman from the certificate (`TLS_DH_DSS/RSA_*`).
    DhStatic,
    /// Static ECDH from the certificate (`TLS_ECDH_ECDSA/RSA_*`).
    EcdhStatic,
    /// Ephemeral finite-field Diffie-Hellman.
    Dhe,
    /// Ephemeral elliptic-curve Diffie-Hellman.
    Ecdhe,
    /// Anonymous (unauthenticated) Diffie-Hellman (`TLS_DH_anon_*`).
    DhAnon,
    /// Anonymous ECDH (`TLS_ECDH_anon_*`).
    EcdhAnon,
    /// Pre-shared key alone.
    Psk,
    /// RSA key transport plus a pre-shared key.
    RsaPsk,
    /// Ephemeral DH plus a pre-shared key.
    DhePsk,
    /// Ephemeral ECDH plus a pre-shared key.
    EcdhePsk,
    /// Secure Remote Password (RFC 5054).
    Srp,
    /// Kerberos (RFC 2712).
    Krb5,
    /// ECC password-based (RFC 8492).
    EcCpwd,
    /// TLS 1.3: the key exchange is negotiated separately (always ephemeral).
    Tls13,
    /// No key exchange (`TLS_NULL_WITH_NULL_NULL`).
    Null,
}

impl KeyExchange {
    /// Whether the exchange is ephemeral, so that a stolen server key does
    /// not decrypt recorded sessions.
    pub fn forward_secret(self) -> bool {
        matches!(
            self,
            KeyExchange::Dhe
                | KeyExchange::Ecdhe
                | KeyExchange::DhAnon
                | KeyExchange::EcdhAnon
                | KeyExchange::DhePsk
                | KeyExchange::EcdhePsk
                | KeyExchange::Srp
                | KeyExchange::EcCpwd
                | KeyExchange::Tls13
        )
    }

    /// Whether the server is not authenticated at all.
    pub fn anonymous(self) -> bool {
        matches!(
            self,
            KeyExchange::DhAnon | KeyExchange::EcdhAnon | KeyExchange::Null
        )
    }

    /// Whether the ServerKeyExchange carries finite-field DH parameters.
    pub fn sends_dh_params(self) -> bool {
        matches!(
            self,
            KeyExchange::Dhe | KeyExchange::DhAnon | KeyExchange::DhePsk
        )
    }

    /// Whether the ServerKeyExchange carries ECDH parameters.
    pub fn sends_ecdh_params(self) -> bool {
        matches!(
            self,
            KeyExchange::Ecdhe | KeyExchange::EcdhAnon | KeyExchange::EcdhePsk
        )
    }

    /// Whether the ServerKeyExchange starts with a PSK identity hint.
    pub fn has_psk_hint(self) -> bool {
        matches!(
            self,
            KeyExchange::Psk | KeyExchange::RsaPsk | KeyExchange::DhePsk | KeyExchange::EcdhePsk
        )
    }

    /// A short label for evidence (`RSA`, `DHE`, `ECDHE`, …).
    pub fn label(self) -> &'static str {
        match self {
            KeyExchange::RsaStatic => "RSA",
            KeyExchange::DhStatic => "DH",
            KeyExchange::EcdhStatic => "ECDH",
            KeyExchange::Dhe => "DHE",
            KeyExchange::Ecdhe => "ECDHE",
            KeyExchange::DhAnon => "DH_anon",
            KeyExchange::EcdhAnon => "ECDH_anon",
            KeyExchange::Psk => "PSK",
            KeyExchange::RsaPsk => "RSA_PSK",
            KeyExchange::DhePsk => "DHE_PSK",
            KeyExchange::EcdhePsk => "ECDHE_PSK",
            KeyExchange::Srp => "SRP",
            KeyExchange::Krb5 => "KRB5",
            KeyExchange::EcCpwd => "ECCPWD",
            KeyExchange::Tls13 => "TLS1.3",
            KeyExchange::Null => "NULL",
        }
    }
}

/// The bulk cipher's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherMode {
    /// Authenticated encryption (GCM, CCM, ChaCha20-Poly1305, AEGIS).
    Aead,
    /// A block cipher in CBC mode with a separate MAC.
    Cbc,
    /// A stream cipher (RC4).
    Stream,
    /// No encryption at all.
    None,
}

/// What a suite is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteInfo {
    /// The 16-bit IANA code point.
    pub id: u16,
    /// The IANA name, e.g. `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`.
    pub name: &'static str,
    /// Key exchange.
    pub kx: KeyExchange,
    /// Bulk cipher, e.g. `AES`, `3DES`, `RC4`, `NULL`.
    pub cipher: &'static str,
    /// Cipher mode.
    pub mode: CipherMode,
    /// Nominal key size in bits (168 for 3DES, 40 for EXPORT RC4).
    pub bits: u16,
    /// Effective strength in bits (112 for 3DES, else `bits`).
    pub effective_bits: u16,
    /// Cipher block size in bits (0 for stream ciphers and AEADs in stream mode).
    pub block_bits: u16,
    /// MAC: `AEAD`, `SHA1`, `SHA256`, `SHA384`, `MD5`, …
    pub mac: &'static str,
    /// An EXPORT-grade suite.
    pub export: bool,
    /// Only usable in TLS 1.2 (AEAD, SHA-256/384 MAC or PRF).
    pub tls12_only: bool,
}

/// DESIGN §2 strength class of a suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Strength {
    /// `tls.cipher.insecure`: broken or unauthenticated.
    Insecure,
    /// `tls.cipher.weak`: weak but not broken (64-bit blocks).
    Weak,
    /// Neither.
    Acceptable,
}

/// The verdict on one suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Insecure, weak or acceptable.
    pub strength: Strength,
    /// Why (empty when acceptable), e.g. `["RC4", "EXPORT-grade"]`.
    pub reasons: Vec<&'static str>,
    /// False for non-ephemeral key exchanges (`tls.cipher.no_forward_secrecy`).
    pub forward_secrecy: bool,
}

/// The facts about a suite, or `None` when the registry does not know it.
/// (The two SCSVs are in the table, with key exchange [`KeyExchange::Null`];
/// [`suites_for`] never offers them.)
pub fn info(id: u16) -> Option<SuiteInfo> {
    let s = TlsCipherSuite::from_id(id)?;
    Some(info_of(s))
}

/// The IANA name of a suite, or `None` when unknown.
pub fn name(id: u16) -> Option<&'static str> {
    TlsCipherSuite::from_id(id).map(|s| s.name)
}

/// The IANA name, or `0xXXXX` for an unknown code point (for evidence).
pub fn display_name(id: u16) -> String {
    match name(id) {
        Some(n) => n.to_owned(),
        None => format!("0x{id:04X}"),
    }
}

/// The DESIGN §2 verdict on a suite; `None` when the suite is unknown.
pub fn classify(id: u16) -> Option<Verdict> {
    info(id).map(|i| verdict(&i))
}

/// The verdict for known facts.
pub fn verdict(i: &SuiteInfo) -> Verdict {
    let mut insecure = Vec::new();
    if i.mode == CipherMode::None {
        insecure.push("NULL encryption");
    }
    if i.kx.anonymous() {
        insecure.push("anonymous key exchange");
    }
    if i.export {
        insecure.push("EXPORT-grade");
    }
    if i.cipher == "DES" {
        insecure.push("DES");
    }
    if i.cipher == "RC4" {
        insecure.push("RC4");
    }
    if i.mode != CipherMode::None && i.effective_bits < 112 {
        insecure.push("key shorter than 112 bits");
    }
    let forward_secrecy = i.kx.forward_secret();
    if !insecure.is_empty() {
        return Verdict {
            strength: Strength::Insecure,
            reasons: insecure,
            forward_secrecy,
        };
    }
    if i.block_bits == 64 {
        return Verdict {
            strength: Strength::Weak,
            reasons: vec!["64-bit block cipher (SWEET32)"],
            forward_secrecy,
        };
    }
    Verdict {
        strength: Strength::Acceptable,
        reasons: Vec::new(),
        forward_secrecy,
    }
}

fn info_of(s: &TlsCipherSuite) -> SuiteInfo {
    let kx = key_exchange(s);
    let cipher = match s.enc {
        TlsCipherEnc::Null => "NULL",
        TlsCipherEnc::Des => "DES",
        TlsCipherEnc::TripleDes => "3DES",
        TlsCipherEnc::Rc2 => "RC2",
        TlsCipherEnc::Rc4 => "RC4",
        TlsCipherEnc::Aria => "ARIA",
        TlsCipherEnc::Idea => "IDEA",
        TlsCipherEnc::Seed => "SEED",
        TlsCipherEnc::Aes => "AES",
        TlsCipherEnc::Camellia => "CAMELLIA",
        TlsCipherEnc::Chacha20_Poly1305 => "CHACHA20_POLY1305",
        TlsCipherEnc::Sm4 => "SM4",
        TlsCipherEnc::Aegis => "AEGIS",
    };
    let mode = match (s.enc, s.enc_mode, s.mac) {
        (TlsCipherEnc::Null, _, _) => CipherMode::None,
        (TlsCipherEnc::Chacha20_Poly1305 | TlsCipherEnc::Aegis, _, _) => CipherMode::Aead,
        (_, TlsCipherEncMode::Gcm | TlsCipherEncMode::Ccm, _) | (_, _, TlsCipherMac::Aead) => {
            CipherMode::Aead
        }
        (_, TlsCipherEncMode::Cbc, _) => CipherMode::Cbc,
        _ => CipherMode::Stream,
    };
    let mac = match s.mac {
        TlsCipherMac::Null => "NULL",
        TlsCipherMac::HmacMd5 => "MD5",
        TlsCipherMac::HmacSha1 => "SHA1",
        TlsCipherMac::HmacSha256 => "SHA256",
        TlsCipherMac::HmacSha384 => "SHA384",
        TlsCipherMac::HmacSha512 => "SHA512",
        TlsCipherMac::Aead => "AEAD",
    };
    let block_bits = match mode {
        CipherMode::Cbc => (s.enc_block_size() * 8) as u16,
        _ => 0,
    };
    let effective_bits = if s.enc == TlsCipherEnc::TripleDes {
        // Meet-in-the-middle: 3-key 3DES gives 112 bits of security.
        s.enc_size.min(112)
    } else {
        s.enc_size
    };
    let tls12_only = kx != KeyExchange::Tls13
        && (mode == CipherMode::Aead
            || matches!(
                s.mac,
                TlsCipherMac::HmacSha256 | TlsCipherMac::HmacSha384 | TlsCipherMac::HmacSha512
            )
            || !matches!(s.prf, TlsPRF::Default | TlsPRF::Null));
    SuiteInfo {
        id: s.id.0,
        name: s.name,
        kx,
        cipher,
        mode,
        bits: s.enc_size,
        effective_bits,
        block_bits,
        mac,
        export: s.name.contains("EXPORT"),
        tls12_only,
    }
}

fn key_exchange(s: &TlsCipherSuite) -> KeyExchange {
    match (s.kx, s.au) {
        (TlsCipherKx::Rsa, TlsCipherAu::Psk) => KeyExchange::RsaPsk,
        (TlsCipherKx::Rsa, _) => KeyExchange::RsaStatic,
        (TlsCipherKx::Dh, TlsCipherAu::Null) => KeyExchange::DhAnon,
        (TlsCipherKx::Dh, _) => KeyExchange::DhStatic,
        (TlsCipherKx::Dhe, TlsCipherAu::Psk) | (TlsCipherKx::Psk, TlsCipherAu::Dhe) => {
            KeyExchange::DhePsk
        }
        (TlsCipherKx::Dhe, _) => KeyExchange::Dhe,
        (TlsCipherKx::Ecdh, TlsCipherAu::Null) | (TlsCipherKx::Aecdh, _) => KeyExchange::EcdhAnon,
        (TlsCipherKx::Ecdh, _) => KeyExchange::EcdhStatic,
        (TlsCipherKx::Ecdhe, TlsCipherAu::Psk) => KeyExchange::EcdhePsk,
        (TlsCipherKx::Ecdhe, _) => KeyExchange::Ecdhe,
        (TlsCipherKx::Psk, _) => KeyExchange::Psk,
        (TlsCipherKx::Srp, _) => KeyExchange::Srp,
        (TlsCipherKx::Krb5, _) => KeyExchange::Krb5,
        (TlsCipherKx::Eccpwd, _) => KeyExchange::EcCpwd,
        (TlsCipherKx::Tls13, _) => KeyExchange::Tls13,
        (TlsCipherKx::Null, _) => KeyExchange::Null,
    }
}

/// Every suite id the registry knows that a server could pick for `version`,
/// ascending: TLS 1.3 suites only for TLS 1.3; for SSLv3 to TLS 1.1 neither
/// TLS 1.3 nor TLS 1.2-only suites; never the SCSVs nor
/// `TLS_NULL_WITH_NULL_NULL`. Empty for SSLv2 (see [`super::sslv2`]).
pub fn suites_for(version: ProtocolVersion) -> Vec<u16> {
    let mut out: Vec<u16> = CIPHERS
        .values()
        .filter(|s| {
            let id = s.id.0;
            id != TLS_EMPTY_RENEGOTIATION_INFO_SCSV
                && id != TLS_FALLBACK_SCSV
                && id != TLS_NULL_WITH_NULL_NULL
        })
        .map(info_of)
        .filter(|i| match version {
            ProtocolVersion::Ssl2 => false,
            ProtocolVersion::Tls13 => i.kx == KeyExchange::Tls13,
            ProtocolVersion::Tls12 => i.kx != KeyExchange::Tls13,
            ProtocolVersion::Ssl3 | ProtocolVersion::Tls10 | ProtocolVersion::Tls11 => {
                i.kx != KeyExchange::Tls13 && !i.tls12_only
            }
        })
        .map(|i| i.id)
        .collect();
    out.sort_unstable();
    out
}

/// How many suites one hello for `version` may offer (see the module docs).
pub fn max_suites_per_hello(version: ProtocolVersion) -> usize {
    match version {
        ProtocolVersion::Ssl3 => MAX_SUITES_PER_SSL3_HELLO,
        _ => MAX_SUITES_PER_HELLO,
    }
}

/// `suites` cut into hello-sized bundles for `version`, order kept.
pub fn chunks(version: ProtocolVersion, suites: &[u16]) -> Vec<Vec<u16>> {
    suites
        .chunks(max_suites_per_hello(version).max(1))
        .map(<[u16]>::to_vec)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strength(id: u16) -> Strength {
        classify(id).unwrap().strength
    }

    #[test]
    fn classification_follows_design_section_2() {
        // RC4, DES, EXPORT, NULL, anon: insecure.
        assert_eq!(strength(0x0005), Strength::Insecure); // RSA_WITH_RC4_128_SHA
        assert_eq!(strength(0x0009), Strength::Insecure); // RSA_WITH_DES_CBC_SHA
        assert_eq!(strength(0x0003), Strength::Insecure); // RSA_EXPORT_WITH_RC4_40_MD5
        assert_eq!(strength(0x0002), Strength::Insecure); // RSA_WITH_NULL_SHA
        assert_eq!(strength(0x0034), Strength::Insecure); // DH_anon_WITH_AES_128_CBC_SHA
        assert_eq!(strength(0xc018), Strength::Insecure); // ECDH_anon_WITH_AES_128_CBC_SHA
        assert_eq!(strength(0xc0b4), Strength::Insecure); // TLS_SHA256_SHA256 (integrity only)
        let rc4 = classify(0x0004).unwrap();
        assert!(rc4.reasons.contains(&"RC4"), "{rc4:?}");
        // 3DES and IDEA: weak, not insecure.
        assert_eq!(strength(0x000a), Strength::Weak); // RSA_WITH_3DES_EDE_CBC_SHA
        assert_eq!(strength(0xc012), Strength::Weak); // ECDHE_RSA_WITH_3DES_EDE_CBC_SHA
        assert_eq!(strength(0x0007), Strength::Weak); // RSA_WITH_IDEA_CBC_SHA
                                                      // CBC alone is not weak.
        assert_eq!(strength(0x002f), Strength::Acceptable); // RSA_WITH_AES_128_CBC_SHA
        assert_eq!(strength(0xc013), Strength::Acceptable); // ECDHE_RSA_WITH_AES_128_CBC_SHA
        assert_eq!(strength(0xc02f), Strength::Acceptable);
        assert_eq!(strength(0x1301), Strength::Acceptable);
        assert_eq!(strength(0xcca8), Strength::Acceptable); // ECDHE_RSA_WITH_CHACHA20_POLY1305
    }

    #[test]
    fn static_key_exchanges_lack_forward_secrecy() {
        assert!(!classify(0x002f).unwrap().forward_secrecy); // RSA
        assert!(!classify(0x009c).unwrap().forward_secrecy); // RSA AES-GCM
        assert!(!classify(0xc004).unwrap().forward_secrecy); // ECDH_ECDSA (static)
        assert!(!classify(0x0030).unwrap().forward_secrecy); // DH_DSS (static)
        assert!(classify(0x0033).unwrap().forward_secrecy); // DHE_RSA
        assert!(classify(0xc02f).unwrap().forward_secrecy); // ECDHE_RSA
        assert!(classify(0x1302).unwrap().forward_secrecy); // TLS 1.3
    }

    #[test]
    fn facts_are_read_from_the_iana_table() {
        let i = info(0xc02f).unwrap();
        assert_eq!(i.name, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
        assert_eq!(i.kx, KeyExchange::Ecdhe);
        assert_eq!(i.cipher, "AES");
        assert_eq!(i.mode, CipherMode::Aead);
        assert_eq!(i.bits, 128);
        assert!(i.tls12_only);
        let d = info(0x000a).unwrap();
        assert_eq!((d.bits, d.effective_bits, d.block_bits), (168, 112, 64));
        assert_eq!(d.mode, CipherMode::Cbc);
        assert!(!d.tls12_only);
        assert_eq!(info(0x0005).unwrap().mode, CipherMode::Stream);
        assert_eq!(info(0x0033).unwrap().kx, KeyExchange::Dhe);
        assert_eq!(info(0x00aa).unwrap().kx, KeyExchange::DhePsk);
        assert_eq!(
            info(TLS_EMPTY_RENEGOTIATION_INFO_SCSV).map(|i| i.kx),
            Some(KeyExchange::Null)
        );
        assert_eq!(info(0xfefe), None);
        assert_eq!(display_name(0xfefe), "0xFEFE");
        assert_eq!(display_name(0x1301), "TLS_AES_128_GCM_SHA256");
    }

    #[test]
    fn lists_per_version_keep_each_version_to_its_own_suites() {
        let v13 = suites_for(ProtocolVersion::Tls13);
        assert!(v13.contains(&0x1301) && v13.contains(&0x1302) && v13.contains(&0x1303));
        assert!(!v13.contains(&0xc02f));
        let v12 = suites_for(ProtocolVersion::Tls12);
        assert!(v12.contains(&0xc02f) && v12.contains(&0x002f) && v12.contains(&0x0005));
        assert!(!v12.contains(&0x1301));
        let v10 = suites_for(ProtocolVersion::Tls10);
        assert!(v10.contains(&0x002f) && v10.contains(&0xc013) && v10.contains(&0x000a));
        assert!(!v10.contains(&0xc02f), "GCM is TLS 1.2 only");
        assert!(!v10.contains(&0x003c), "SHA-256 MAC is TLS 1.2 only");
        assert_eq!(suites_for(ProtocolVersion::Ssl3), v10);
        assert!(suites_for(ProtocolVersion::Ssl2).is_empty());
        for list in [&v13, &v12, &v10] {
            for scsv in [TLS_EMPTY_RENEGOTIATION_INFO_SCSV, TLS_FALLBACK_SCSV, 0] {
                assert!(!list.contains(&scsv));
            }
            assert!(
                list.windows(2).all(|w| w[0] < w[1]),
                "ascending, no duplicates"
            );
        }
        assert!(v12.len() > 300, "the whole registry: {}", v12.len());
    }

    #[test]
    fn chunks_respect_the_per_hello_caps() {
        let v12 = suites_for(ProtocolVersion::Tls12);
        let c = chunks(ProtocolVersion::Tls12, &v12);
        assert!(c.iter().all(|b| b.len() <= MAX_SUITES_PER_HELLO));
        assert_eq!(c.concat(), v12);
        let v3 = suites_for(ProtocolVersion::Ssl3);
        let c3 = chunks(ProtocolVersion::Ssl3, &v3);
        assert!(c3.iter().all(|b| b.len() <= MAX_SUITES_PER_SSL3_HELLO));
        assert_eq!(c3.concat(), v3);
    }
}
