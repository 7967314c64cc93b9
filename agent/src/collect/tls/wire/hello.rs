//! ClientHello builders for SSLv3 (RFC 6101), TLS 1.0–1.2 (RFC 2246, 4346,
//! 5246) and TLS 1.3 (RFC 8446), each returned as one complete record.
//!
//! Format (every length big-endian):
//! ```text
//! record:    type 0x16 | version (0x0300 for SSLv3, else 0x0301) | u16 length
//! handshake: 0x01 | u24 length
//! body:      client_version (SSLv3 0x0300 … TLS 1.2 0x0303; TLS 1.3 legacy 0x0303)
//!            random[32] | session_id<0..32> (empty) | cipher_suites<2..2^16-2>
//!            compression_methods<1..2^8-1> = [null] | extensions<0..2^16-1>
//! ```
//! Extensions, in this order: `server_name` (only when the host is a name,
//! never an IP literal), `supported_groups`, `ec_point_formats`,
//! `signature_algorithms` (TLS 1.2 and 1.3 only), `supported_versions`,
//! `key_share`, `psk_key_exchange_modes`, `cookie` (TLS 1.3 only),
//! `renegotiation_info`, and last `padding` (RFC 7685) when the record would
//! otherwise be 256 to 511 bytes long (the F5 bug; see [`super::suites`]).
//! SSLv3 hellos carry no extensions; they signal renegotiation with the SCSV.
//!
//! Invariants: the output is one record of at most 2^14 bytes; a hello is
//! never 256..=511 bytes of record payload unless it is SSLv3 (which
//! [`super::suites::MAX_SUITES_PER_SSL3_HELLO`] keeps under 256).

use super::codec::{LengthOverflow, Writer};
use super::groups;
use super::parse::ServerHello;
use super::suites::TLS_EMPTY_RENEGOTIATION_INFO_SCSV;
use super::version::ProtocolVersion;

const CONTENT_HANDSHAKE: u8 = 0x16;
const HANDSHAKE_CLIENT_HELLO: u8 = 0x01;

const EXT_SERVER_NAME: u16 = 0;
const EXT_SUPPORTED_GROUPS: u16 = 10;
const EXT_EC_POINT_FORMATS: u16 = 11;
const EXT_SIGNATURE_ALGORITHMS: u16 = 13;
const EXT_PADDING: u16 = 21;
const EXT_SUPPORTED_VERSIONS: u16 = 43;
const EXT_COOKIE: u16 = 44;
const EXT_PSK_KEY_EXCHANGE_MODES: u16 = 45;
const EXT_KEY_SHARE: u16 = 51;
const EXT_RENEGOTIATION_INFO: u16 = 0xff01;

/// Largest record payload a hello may have (RFC 5246 §6.2.1).
const MAX_PLAINTEXT: usize = 1 << 14;
/// The F5 window (RFC 7685 §1): records of this length are padded to 512.
const F5_LOW: usize = 256;
const F5_PAD_TO: usize = 512;

/// Signature algorithms offered, modern first, then the SHA-224, SHA-1 and
/// MD5 pairs old servers may need to sign their ServerKeyExchange.
pub const SIGNATURE_ALGORITHMS: &[u16] = &[
    0x0403, // ecdsa_secp256r1_sha256
    0x0503, // ecdsa_secp384r1_sha384
    0x0603, // ecdsa_secp521r1_sha512
    0x0807, // ed25519
    0x0808, // ed448
    0x0804, // rsa_pss_rsae_sha256
    0x0805, // rsa_pss_rsae_sha384
    0x0806, // rsa_pss_rsae_sha512
    0x0809, // rsa_pss_pss_sha256
    0x080a, // rsa_pss_pss_sha384
    0x080b, // rsa_pss_pss_sha512
    0x0401, // rsa_pkcs1_sha256
    0x0501, // rsa_pkcs1_sha384
    0x0601, // rsa_pkcs1_sha512
    0x0402, // dsa_sha256
    0x0502, // dsa_sha384
    0x0602, // dsa_sha512
    0x0303, // ecdsa_sha224
    0x0301, // rsa_sha224
    0x0302, // dsa_sha224
    0x0203, // ecdsa_sha1
    0x0201, // rsa_pkcs1_sha1
    0x0202, // dsa_sha1
    0x0101, // rsa_md5
];

/// How a hello is dressed (everything but the version and the suites).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloOptions {
    /// The name for `server_name` (SNI). `None`, an empty name or an IP
    /// literal (also in brackets) means no SNI. A trailing dot is dropped.
    pub server_name: Option<String>,
    /// `supported_groups`, in preference order (empty: the extension is
    /// left out).
    pub groups: Vec<u16>,
    /// TLS 1.3: the groups to send a key share for; each must be one of
    /// [`groups::KEY_SHARE_GROUPS`]. May be empty (the server then answers
    /// with a HelloRetryRequest naming its group).
    pub key_shares: Vec<u16>,
    /// TLS 1.3: lower versions also listed in `supported_versions`, newest
    /// first (the hello then also carries `ec_point_formats` and
    /// `renegotiation_info`, which TLS 1.2 needs). Empty: 1.3 only.
    pub also_offer: Vec<ProtocolVersion>,
    /// Signal secure renegotiation: an empty `renegotiation_info` in TLS
    /// hellos, `TLS_EMPTY_RENEGOTIATION_INFO_SCSV` in SSLv3 hellos.
    pub renegotiation_signal: bool,
    /// Pad records of 256..=511 bytes to 512 (RFC 7685). Leave on.
    pub f5_padding: bool,
    /// The client random; `None` draws a fresh one from the OS. Set it to
    /// keep the random of a first hello in its HelloRetryRequest retry.
    pub random: Option<[u8; 32]>,
}

impl Default for HelloOptions {
    fn default() -> Self {
        HelloOptions {
            server_name: None,
            groups: groups::DEFAULT_GROUPS.to_vec(),
            key_shares: groups::DEFAULT_KEY_SHARES.to_vec(),
            also_offer: Vec::new(),
            renegotiation_signal: true,
            f5_padding: true,
            random: None,
        }
    }
}

impl HelloOptions {
    /// Defaults with SNI for `host` (nothing is sent when it is an IP literal).
    pub fn for_host(host: &str) -> Self {
        HelloOptions {
            server_name: Some(host.to_owned()),
            ..HelloOptions::default()
        }
    }
}

/// Why a hello could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HelloError {
    /// No suite to offer.
    #[error("no cipher suite to offer")]
    NoSuites,
    /// SSLv2 hellos are built by `sslv2::client_hello`.
    #[error("{0} hellos are not built by this function")]
    WrongBuilder(ProtocolVersion),
    /// The host name cannot go into SNI.
    #[error("host name {0:?} cannot be sent as SNI (not an ASCII DNS name)")]
    InvalidServerName(String),
    /// A key share was asked for a group `ring` cannot make keys for.
    #[error("cannot make a key share for group {0:#06x} ({name})", name = groups::name(*.0).unwrap_or("unknown"))]
    UnsupportedKeyShare(u16),
    /// The operating system gave no randomness.
    #[error("the operating system's random generator failed")]
    Random,
    /// The hello would not fit in one record.
    #[error("the ClientHello would exceed one record (too many suites or extensions)")]
    TooLarge,
    /// The HelloRetryRequest cannot be answered.
    #[error("cannot answer the HelloRetryRequest: {0}")]
    InvalidRetry(&'static str),
}

impl From<LengthOverflow> for HelloError {
    fn from(_: LengthOverflow) -> Self {
        HelloError::TooLarge
    }
}

/// 32 fresh random bytes from the OS, for [`HelloOptions::random`].
pub fn fresh_random() -> Result<[u8; 32], HelloError> {
    use ring::rand::SecureRandom;
    let mut r = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut r)
        .map_err(|_| HelloError::Random)?;
    Ok(r)
}

/// A complete ClientHello record for `version` (SSLv3 to TLS 1.3) offering
/// `suites` in the order given. See the module docs for the layout.
pub fn client_hello(
    version: ProtocolVersion,
    suites: &[u16],
    opts: &HelloOptions,
) -> Result<Vec<u8>, HelloError> {
    if version == ProtocolVersion::Ssl2 {
        return Err(HelloError::WrongBuilder(version));
    }
    build(version, suites, opts, None)
}

/// The second ClientHello of RFC 8446 §4.1.2, answering `hrr` on the same
/// connection: the same suites and options as the first hello, `random`
/// being the first hello's random, the key share replaced by one for the
/// group the server selected, and the server's cookie echoed.
pub fn retry_client_hello(
    suites: &[u16],
    opts: &HelloOptions,
    random: [u8; 32],
    hrr: &ServerHello,
) -> Result<Vec<u8>, HelloError> {
    if !hrr.is_hrr {
        return Err(HelloError::InvalidRetry(
            "the answer is not a HelloRetryRequest",
        ));
    }
    let mut retry = opts.clone();
    retry.random = Some(random);
    if let Some(group) = hrr.selected_group {
        if opts.key_shares.contains(&group) {
            return Err(HelloError::InvalidRetry(
                "the server asked for a group the first hello already had a key share for",
            ));
        }
        if !opts.groups.contains(&group) {
            return Err(HelloError::InvalidRetry(
                "the server asked for a group the hello did not offer",
            ));
        }
        retry.key_shares = vec![group];
    }
    build(
        ProtocolVersion::Tls13,
        suites,
        &retry,
        hrr.cookie.as_deref(),
    )
}

/// The SNI name to send, if any.
fn sni_name(opts: &HelloOptions) -> Result<Option<String>, HelloError> {
    let Some(raw) = opts.server_name.as_deref() else {
        return Ok(None);
    };
    let trimmed = raw.trim_end_matches('.');
    let unbracketed = trimmed
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(trimmed);
    if unbracketed.is_empty() || unbracketed.parse::<std::net::IpAddr>().is_ok() {
        return Ok(None);
    }
    let valid = trimmed.len() <= 253
        && trimmed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if !valid {
        return Err(HelloError::InvalidServerName(raw.to_owned()));
    }
    Ok(Some(trimmed.to_ascii_lowercase()))
}

fn build(
    version: ProtocolVersion,
    suites: &[u16],
    opts: &HelloOptions,
    cookie: Option<&[u8]>,
) -> Result<Vec<u8>, HelloError> {
    if suites.is_empty() {
        return Err(HelloError::NoSuites);
    }
    let random = match opts.random {
        Some(r) => r,
        None => fresh_random()?,
    };
    let sni = sni_name(opts)?;
    let tls13 = version == ProtocolVersion::Tls13;
    let ssl3 = version == ProtocolVersion::Ssl3;

    // The extension block, built first so the padding can be sized.
    let extensions = if ssl3 {
        None
    } else {
        Some(extensions(version, opts, sni.as_deref(), cookie)?)
    };

    let mut body = Writer::new();
    body.u16(if tls13 {
        ProtocolVersion::Tls12.wire()
    } else {
        version.wire()
    });
    body.bytes(&random);
    body.u8(0); // empty legacy session id
    let m = body.begin(2);
    for s in suites {
        body.u16(*s);
    }
    if ssl3 && opts.renegotiation_signal && !suites.contains(&TLS_EMPTY_RENEGOTIATION_INFO_SCSV) {
        body.u16(TLS_EMPTY_RENEGOTIATION_INFO_SCSV);
    }
    body.end(m)?;
    body.u8(1); // one compression method:
    body.u8(0); // null

    if let Some(mut ext) = extensions {
        // Record payload = 4-byte handshake header + body + 2-byte extension length + extensions.
        let payload = 4 + body.len() + 2 + ext.len();
        if opts.f5_padding && (F5_LOW..F5_PAD_TO).contains(&payload) {
            // Pad to 512 exactly; a padding extension needs 4 bytes of header
            // and, as BoringSSL does, at least one byte of data.
            let data = (F5_PAD_TO - payload).saturating_sub(4).max(1);
            ext.u16(EXT_PADDING);
            ext.u16(u16::try_from(data).map_err(|_| HelloError::TooLarge)?);
            ext.bytes(&vec![0u8; data]);
        }
        let m = body.begin(2);
        body.bytes(&ext.into_vec());
        body.end(m)?;
    }

    let mut hs = Writer::new();
    hs.u8(HANDSHAKE_CLIENT_HELLO);
    let m = hs.begin(3);
    hs.bytes(&body.into_vec());
    hs.end(m)?;
    if hs.len() > MAX_PLAINTEXT {
        return Err(HelloError::TooLarge);
    }

    let mut rec = Writer::new();
    rec.u8(CONTENT_HANDSHAKE);
    rec.u16(if ssl3 {
        ProtocolVersion::Ssl3.wire()
    } else {
        ProtocolVersion::Tls10.wire()
    });
    let m = rec.begin(2);
    rec.bytes(&hs.into_vec());
    rec.end(m)?;
    Ok(rec.into_vec())
}

fn extensions(
    version: ProtocolVersion,
    opts: &HelloOptions,
    sni: Option<&str>,
    cookie: Option<&[u8]>,
) -> Result<Writer, HelloError> {
    let tls13 = version == ProtocolVersion::Tls13;
    let offers_pre13 = !tls13 || !opts.also_offer.is_empty();
    let mut w = Writer::new();

    if let Some(name) = sni {
        w.u16(EXT_SERVER_NAME);
        let ext = w.begin(2);
        let list = w.begin(2);
        w.u8(0); // host_name
        let n = w.begin(2);
        w.bytes(name.as_bytes());
        w.end(n)?;
        w.end(list)?;
        w.end(ext)?;
    }

    if !opts.groups.is_empty() {
        w.u16(EXT_SUPPORTED_GROUPS);
        let ext = w.begin(2);
        let list = w.begin(2);
        for g in &opts.groups {
            w.u16(*g);
        }
        w.end(list)?;
        w.end(ext)?;
    }

    if offers_pre13 {
        w.u16(EXT_EC_POINT_FORMATS);
        let ext = w.begin(2);
        let list = w.begin(1);
        w.bytes(&[0, 1, 2]); // uncompressed, ansiX962_compressed_prime, _char2
        w.end(list)?;
        w.end(ext)?;
    }

    if version >= ProtocolVersion::Tls12 {
        w.u16(EXT_SIGNATURE_ALGORITHMS);
        let ext = w.begin(2);
        let list = w.begin(2);
        for a in SIGNATURE_ALGORITHMS {
            w.u16(*a);
        }
        w.end(list)?;
        w.end(ext)?;
    }

    if tls13 {
        w.u16(EXT_SUPPORTED_VERSIONS);
        let ext = w.begin(2);
        let list = w.begin(1);
        w.u16(ProtocolVersion::Tls13.wire());
        let mut lower: Vec<ProtocolVersion> = opts
            .also_offer
            .iter()
            .copied()
            .filter(|v| *v >= ProtocolVersion::Ssl3 && *v < ProtocolVersion::Tls13)
            .collect();
        lower.sort_unstable_by(|a, b| b.cmp(a));
        lower.dedup();
        for v in lower {
            w.u16(v.wire());
        }
        w.end(list)?;
        w.end(ext)?;

        w.u16(EXT_KEY_SHARE);
        let ext = w.begin(2);
        let list = w.begin(2);
        for g in &opts.key_shares {
            let key = groups::key_share(*g).ok_or(HelloError::UnsupportedKeyShare(*g))?;
            w.u16(*g);
            let k = w.begin(2);
            w.bytes(&key);
            w.end(k)?;
        }
        w.end(list)?;
        w.end(ext)?;

        w.u16(EXT_PSK_KEY_EXCHANGE_MODES);
        let ext = w.begin(2);
        let list = w.begin(1);
        w.u8(1); // psk_dhe_ke
        w.end(list)?;
        w.end(ext)?;

        if let Some(c) = cookie {
            // `c` is the cookie extension's body as the server sent it
            // (its own length prefix included): echoed verbatim.
            w.u16(EXT_COOKIE);
            let ext = w.begin(2);
            w.bytes(c);
            w.end(ext)?;
        }
    }

    if opts.renegotiation_signal && offers_pre13 {
        w.u16(EXT_RENEGOTIATION_INFO);
        let ext = w.begin(2);
        w.u8(0); // empty renegotiated_connection
        w.end(ext)?;
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::super::groups::{FFDHE2048, SECP256R1, SECP384R1, X25519};
    use super::*;
    use tls_parser::{
        parse_tls_client_hello_extensions, parse_tls_plaintext, TlsExtension, TlsMessage,
        TlsMessageHandshake,
    };

    fn opts_fixed() -> HelloOptions {
        HelloOptions {
            random: Some([0x11; 32]),
            ..HelloOptions::for_host("example.test")
        }
    }

    /// Parses a hello with tls-parser: (record version, client version, suites, extensions).
    fn dissect(rec: &[u8]) -> (u16, u16, Vec<u16>, Vec<TlsExtension<'_>>) {
        let (rest, plain) = parse_tls_plaintext(rec).expect("tls-parser reads the record");
        assert!(rest.is_empty(), "one record exactly");
        assert_eq!(plain.msg.len(), 1);
        let TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)) = &plain.msg[0] else {
            panic!("not a ClientHello: {:?}", plain.msg[0]);
        };
        assert_eq!(ch.comp.len(), 1);
        assert_eq!(ch.comp[0].0, 0);
        assert!(ch.session_id.is_none());
        assert_eq!(ch.random, &[0x11; 32]);
        let exts = match ch.ext {
            Some(e) => {
                let (rest, exts) = parse_tls_client_hello_extensions(e).unwrap();
                assert!(rest.is_empty(), "every extension parses");
                exts
            }
            None => Vec::new(),
        };
        (
            plain.hdr.version.0,
            ch.version.0,
            ch.ciphers.iter().map(|c| c.0).collect(),
            exts,
        )
    }

    #[test]
    fn sslv3_hello_is_byte_exact() {
        let opts = HelloOptions {
            random: Some([0x11; 32]),
            ..HelloOptions::default()
        };
        let h = client_hello(ProtocolVersion::Ssl3, &[0x000a, 0x002f], &opts).unwrap();
        let mut want = vec![
            0x16, 0x03, 0x00, 0x00, 0x31, // record: handshake, SSL 3.0, 49 bytes
            0x01, 0x00, 0x00, 0x2d, // ClientHello, 45 bytes
            0x03, 0x00, // client_version
        ];
        want.extend_from_slice(&[0x11; 32]);
        want.extend_from_slice(&[
            0x00, // session id
            0x00, 0x06, 0x00, 0x0a, 0x00, 0x2f, 0x00, 0xff, // 3 suites, SCSV last
            0x01, 0x00, // null compression, no extensions
        ]);
        assert_eq!(h, want);
        let (rv, cv, suites, exts) = dissect(&h);
        assert_eq!((rv, cv), (0x0300, 0x0300));
        assert_eq!(suites, vec![0x000a, 0x002f, 0x00ff]);
        assert!(exts.is_empty());
    }

    #[test]
    fn minimal_tls12_hello_is_byte_exact() {
        let opts = HelloOptions {
            groups: vec![X25519],
            random: Some([0x11; 32]),
            ..HelloOptions::default()
        };
        let h = client_hello(ProtocolVersion::Tls12, &[0xc02f], &opts).unwrap();
        let mut want = vec![
            0x16, 0x03, 0x01, 0x00, 0x7a, // record: 122 bytes
            0x01, 0x00, 0x00, 0x76, // ClientHello: 118 bytes
            0x03, 0x03, // TLS 1.2
        ];
        want.extend_from_slice(&[0x11; 32]);
        want.extend_from_slice(&[
            0x00, // session id
            0x00, 0x02, 0xc0, 0x2f, // one suite
            0x01, 0x00, // null compression
            0x00, 0x4b, // 75 bytes of extensions:
            0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x1d, // supported_groups [x25519]
            0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, // ec_point_formats
            0x00, 0x0d, 0x00, 0x32, 0x00, 0x30, // signature_algorithms: 24 pairs
        ]);
        for a in SIGNATURE_ALGORITHMS {
            want.extend_from_slice(&a.to_be_bytes());
        }
        want.extend_from_slice(&[0xff, 0x01, 0x00, 0x01, 0x00]); // renegotiation_info
        assert_eq!(SIGNATURE_ALGORITHMS.len(), 24);
        assert_eq!(h, want);
    }

    #[test]
    fn tls12_hello_has_sni_groups_sigalgs_and_renegotiation_info() {
        let h = client_hello(ProtocolVersion::Tls12, &[0xc02f, 0x009c], &opts_fixed()).unwrap();
        let (rv, cv, suites, exts) = dissect(&h);
        assert_eq!((rv, cv), (0x0301, 0x0303));
        assert_eq!(suites, vec![0xc02f, 0x009c]);
        let mut seen_sni = false;
        let mut seen_groups = false;
        let mut seen_sig = false;
        let mut seen_reneg = false;
        for e in &exts {
            match e {
                TlsExtension::SNI(names) => {
                    assert_eq!(names.len(), 1);
                    assert_eq!(names[0].1, b"example.test");
                    seen_sni = true;
                }
                TlsExtension::EllipticCurves(g) => {
                    let ids: Vec<u16> = g.iter().map(|n| n.0).collect();
                    assert_eq!(ids, groups::DEFAULT_GROUPS);
                    assert!(ids.contains(&X25519) && ids.contains(&FFDHE2048));
                    seen_groups = true;
                }
                TlsExtension::SignatureAlgorithms(a) => {
                    assert!(a.contains(&0x0201), "rsa_pkcs1_sha1");
                    assert!(a.contains(&0x0101), "rsa_md5");
                    assert!(a.contains(&0x0804), "rsa_pss_rsae_sha256");
                    seen_sig = true;
                }
                TlsExtension::RenegotiationInfo(r) => {
                    assert!(r.is_empty());
                    seen_reneg = true;
                }
                TlsExtension::EcPointFormats(f) => assert_eq!(*f, &[0, 1, 2]),
                TlsExtension::Padding(_) => {}
                other => panic!("unexpected extension {other:?}"),
            }
        }
        assert!(seen_sni && seen_groups && seen_sig && seen_reneg);
        // Lengths agree: record = 5 + handshake, handshake = 4 + body.
        let rec_len = usize::from(u16::from_be_bytes([h[3], h[4]]));
        assert_eq!(rec_len + 5, h.len());
        let hs_len = (usize::from(h[6]) << 16) | (usize::from(h[7]) << 8) | usize::from(h[8]);
        assert_eq!(hs_len + 4, rec_len);
    }

    #[test]
    fn tls10_and_tls11_hellos_omit_signature_algorithms() {
        for v in [ProtocolVersion::Tls10, ProtocolVersion::Tls11] {
            let h = client_hello(v, &[0x002f], &opts_fixed()).unwrap();
            let (rv, cv, _, exts) = dissect(&h);
            assert_eq!((rv, cv), (0x0301, v.wire()));
            assert!(!exts
                .iter()
                .any(|e| matches!(e, TlsExtension::SignatureAlgorithms(_))));
        }
    }

    #[test]
    fn ip_literals_get_no_sni_and_bad_names_are_refused() {
        for host in ["127.0.0.1", "::1", "[::1]", "", "10.0.0.1."] {
            let h = client_hello(
                ProtocolVersion::Tls12,
                &[0xc02f],
                &HelloOptions {
                    random: Some([0x11; 32]),
                    ..HelloOptions::for_host(host)
                },
            )
            .unwrap();
            let (_, _, _, exts) = dissect(&h);
            assert!(
                !exts.iter().any(|e| matches!(e, TlsExtension::SNI(_))),
                "no SNI for {host:?}"
            );
        }
        let err = client_hello(
            ProtocolVersion::Tls12,
            &[0xc02f],
            &HelloOptions::for_host("bad name\u{e9}"),
        )
        .unwrap_err();
        assert!(matches!(err, HelloError::InvalidServerName(_)));
        // A trailing dot is dropped, case folded.
        let h = client_hello(
            ProtocolVersion::Tls12,
            &[0xc02f],
            &HelloOptions {
                random: Some([0x11; 32]),
                ..HelloOptions::for_host("Host.Example.")
            },
        )
        .unwrap();
        let (_, _, _, exts) = dissect(&h);
        assert!(exts
            .iter()
            .any(|e| matches!(e, TlsExtension::SNI(n) if n[0].1 == b"host.example")));
    }

    #[test]
    fn no_tls_hello_lands_in_the_f5_window() {
        for n in 1..=128usize {
            let suites: Vec<u16> = (0..n as u16).map(|i| 0xc000 + i).collect();
            for v in [
                ProtocolVersion::Tls10,
                ProtocolVersion::Tls12,
                ProtocolVersion::Tls13,
            ] {
                let h = client_hello(v, &suites, &opts_fixed()).unwrap();
                let payload = h.len() - 5;
                assert!(
                    !(256..512).contains(&payload),
                    "{v} with {n} suites: {payload} bytes"
                );
                dissect(&h);
            }
        }
        // SSLv3 cannot pad: the cap keeps it below 256.
        let suites: Vec<u16> =
            (0..super::super::suites::MAX_SUITES_PER_SSL3_HELLO as u16).collect();
        let h = client_hello(ProtocolVersion::Ssl3, &suites, &opts_fixed()).unwrap();
        assert!(h.len() - 5 < 256, "{}", h.len() - 5);
    }

    #[test]
    fn padding_brings_a_hello_to_exactly_512_bytes_when_it_can() {
        // Find a suite count whose unpadded hello is in the window and check the size.
        let unpadded = HelloOptions {
            f5_padding: false,
            ..opts_fixed()
        };
        let mut checked = 0;
        for n in 1..=128usize {
            let suites: Vec<u16> = (0..n as u16).map(|i| 0xc000 + i).collect();
            let raw = client_hello(ProtocolVersion::Tls12, &suites, &unpadded).unwrap();
            let raw_len = raw.len() - 5;
            if !(256..512).contains(&raw_len) {
                continue;
            }
            let padded = client_hello(ProtocolVersion::Tls12, &suites, &opts_fixed()).unwrap();
            let len = padded.len() - 5;
            if raw_len <= 507 {
                assert_eq!(len, 512, "{n} suites");
            } else {
                assert!(len > 512 && len <= 517, "{n} suites: {len}");
            }
            checked += 1;
        }
        assert!(checked > 10);
    }

    #[test]
    fn tls13_hello_carries_versions_key_share_and_psk_modes() {
        let opts = HelloOptions {
            key_shares: vec![X25519, SECP256R1],
            ..opts_fixed()
        };
        let h = client_hello(ProtocolVersion::Tls13, &[0x1301, 0x1302], &opts).unwrap();
        let (rv, cv, suites, exts) = dissect(&h);
        assert_eq!((rv, cv), (0x0301, 0x0303), "legacy_version is TLS 1.2");
        assert_eq!(suites, vec![0x1301, 0x1302]);
        let mut versions = None;
        let mut shares = None;
        let mut modes = None;
        for e in &exts {
            match e {
                TlsExtension::SupportedVersions(v) => {
                    versions = Some(v.iter().map(|v| v.0).collect::<Vec<_>>())
                }
                TlsExtension::KeyShare(k) => shares = Some(k.to_vec()),
                TlsExtension::PskExchangeModes(m) => modes = Some(m.clone()),
                TlsExtension::EcPointFormats(_) | TlsExtension::RenegotiationInfo(_) => {
                    panic!("1.3-only hellos carry no TLS 1.2 extensions")
                }
                _ => {}
            }
        }
        assert_eq!(versions, Some(vec![0x0304]));
        assert_eq!(modes, Some(vec![1]));
        // key_share: client_shares<..> = [x25519: 32 bytes][secp256r1: 65 bytes]
        let k = shares.unwrap();
        assert_eq!(usize::from(u16::from_be_bytes([k[0], k[1]])), k.len() - 2);
        assert_eq!(&k[2..6], &[0x00, 0x1d, 0x00, 0x20]);
        assert_eq!(&k[38..42], &[0x00, 0x17, 0x00, 0x41]);
        assert_eq!(k[42], 4);
        assert_eq!(k.len(), 2 + 4 + 32 + 4 + 65);
    }

    #[test]
    fn tls13_hello_can_also_offer_lower_versions() {
        let opts = HelloOptions {
            also_offer: vec![ProtocolVersion::Tls11, ProtocolVersion::Tls12],
            ..opts_fixed()
        };
        let h = client_hello(ProtocolVersion::Tls13, &[0x1301, 0xc02f], &opts).unwrap();
        let (_, _, _, exts) = dissect(&h);
        let v = exts.iter().find_map(|e| match e {
            TlsExtension::SupportedVersions(v) => Some(v.iter().map(|v| v.0).collect::<Vec<_>>()),
            _ => None,
        });
        assert_eq!(v, Some(vec![0x0304, 0x0303, 0x0302]));
        assert!(exts
            .iter()
            .any(|e| matches!(e, TlsExtension::RenegotiationInfo(_))));
    }

    #[test]
    fn key_shares_ring_cannot_make_are_refused() {
        let opts = HelloOptions {
            key_shares: vec![groups::SECP521R1],
            ..opts_fixed()
        };
        assert_eq!(
            client_hello(ProtocolVersion::Tls13, &[0x1301], &opts),
            Err(HelloError::UnsupportedKeyShare(groups::SECP521R1))
        );
        assert_eq!(
            client_hello(ProtocolVersion::Tls12, &[], &opts),
            Err(HelloError::NoSuites)
        );
        assert_eq!(
            client_hello(ProtocolVersion::Ssl2, &[1], &opts),
            Err(HelloError::WrongBuilder(ProtocolVersion::Ssl2))
        );
    }

    fn hrr(group: Option<u16>, cookie: Option<Vec<u8>>) -> ServerHello {
        ServerHello {
            legacy_version: 0x0303,
            version: 0x0304,
            random: super::super::parse::HRR_RANDOM,
            session_id: Vec::new(),
            cipher_suite: 0x1301,
            compression: 0,
            extensions: vec![43, 51],
            selected_version: Some(0x0304),
            selected_group: group,
            key_share_len: None,
            cookie,
            is_hrr: true,
            secure_renegotiation: false,
            extended_master_secret: false,
            downgrade_sentinel: None,
        }
    }

    #[test]
    fn retry_hello_keeps_the_random_and_sends_the_selected_share_and_cookie() {
        let opts = HelloOptions {
            groups: vec![X25519, SECP384R1],
            key_shares: vec![X25519],
            ..opts_fixed()
        };
        let cookie = vec![0x00, 0x03, 0xaa, 0xbb, 0xcc];
        let h = retry_client_hello(
            &[0x1301],
            &opts,
            [0x11; 32],
            &hrr(Some(SECP384R1), Some(cookie.clone())),
        )
        .unwrap();
        let (_, _, _, exts) = dissect(&h); // asserts the random is unchanged
        let share = exts
            .iter()
            .find_map(|e| match e {
                TlsExtension::KeyShare(k) => Some(k.to_vec()),
                _ => None,
            })
            .unwrap();
        assert_eq!(&share[..6], &[0x00, 0x65, 0x00, 0x18, 0x00, 0x61]);
        assert_eq!(share.len(), 2 + 4 + 97);
        let echoed = exts.iter().find_map(|e| match e {
            TlsExtension::Cookie(c) => Some(c.to_vec()),
            _ => None,
        });
        assert_eq!(echoed, Some(cookie));
    }

    #[test]
    fn retry_hello_refuses_a_group_already_shared_or_never_offered() {
        let opts = HelloOptions {
            groups: vec![X25519, SECP384R1],
            key_shares: vec![X25519],
            ..opts_fixed()
        };
        assert!(matches!(
            retry_client_hello(&[0x1301], &opts, [0; 32], &hrr(Some(X25519), None)),
            Err(HelloError::InvalidRetry(_))
        ));
        assert!(matches!(
            retry_client_hello(&[0x1301], &opts, [0; 32], &hrr(Some(SECP256R1), None)),
            Err(HelloError::InvalidRetry(_))
        ));
        let mut not_hrr = hrr(Some(SECP384R1), None);
        not_hrr.is_hrr = false;
        assert!(matches!(
            retry_client_hello(&[0x1301], &opts, [0; 32], &not_hrr),
            Err(HelloError::InvalidRetry(_))
        ));
    }
}
