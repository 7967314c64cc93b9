//! Named groups (RFC 8446 §4.2.7, RFC 8422, RFC 7919): their ids, names,
//! the default lists the hellos offer, and ephemeral key shares made with
//! `ring` for the groups it implements.

use ring::agreement;
use ring::rand::SystemRandom;

/// sect163k1 (obsolete binary curve, RFC 4492).
pub const SECT163K1: u16 = 1;
/// sect233r1 (obsolete binary curve).
pub const SECT233R1: u16 = 7;
/// sect283k1 (obsolete binary curve).
pub const SECT283K1: u16 = 9;
/// sect283r1 (obsolete binary curve).
pub const SECT283R1: u16 = 10;
/// sect409k1 (obsolete binary curve).
pub const SECT409K1: u16 = 11;
/// sect409r1 (obsolete binary curve).
pub const SECT409R1: u16 = 12;
/// sect571k1 (obsolete binary curve).
pub const SECT571K1: u16 = 13;
/// sect571r1 (obsolete binary curve).
pub const SECT571R1: u16 = 14;
/// secp160r1 (obsolete, 160-bit).
pub const SECP160R1: u16 = 16;
/// secp192r1 (obsolete, 192-bit).
pub const SECP192R1: u16 = 19;
/// secp224r1.
pub const SECP224R1: u16 = 21;
/// secp256k1.
pub const SECP256K1: u16 = 22;
/// secp256r1 (P-256).
pub const SECP256R1: u16 = 23;
/// secp384r1 (P-384).
pub const SECP384R1: u16 = 24;
/// secp521r1 (P-521).
pub const SECP521R1: u16 = 25;
/// brainpoolP256r1 (TLS 1.2).
pub const BRAINPOOLP256R1: u16 = 26;
/// brainpoolP384r1 (TLS 1.2).
pub const BRAINPOOLP384R1: u16 = 27;
/// brainpoolP512r1 (TLS 1.2).
pub const BRAINPOOLP512R1: u16 = 28;
/// x25519.
pub const X25519: u16 = 29;
/// x448.
pub const X448: u16 = 30;
/// ffdhe2048 (RFC 7919).
pub const FFDHE2048: u16 = 0x0100;
/// ffdhe3072.
pub const FFDHE3072: u16 = 0x0101;
/// ffdhe4096.
pub const FFDHE4096: u16 = 0x0102;
/// ffdhe6144.
pub const FFDHE6144: u16 = 0x0103;
/// ffdhe8192.
pub const FFDHE8192: u16 = 0x0104;

/// What the hellos offer in `supported_groups` unless told otherwise: the
/// modern groups first, then old curves (some old servers only speak those),
/// then the RFC 7919 finite-field groups.
pub const DEFAULT_GROUPS: &[u16] = &[
    X25519,
    SECP256R1,
    SECP384R1,
    SECP521R1,
    X448,
    BRAINPOOLP256R1,
    BRAINPOOLP384R1,
    BRAINPOOLP512R1,
    SECP256K1,
    SECP224R1,
    SECP192R1,
    SECP160R1,
    SECT571R1,
    SECT571K1,
    SECT409R1,
    SECT409K1,
    SECT283R1,
    SECT283K1,
    SECT233R1,
    SECT163K1,
    FFDHE2048,
    FFDHE3072,
    FFDHE4096,
    FFDHE6144,
    FFDHE8192,
];

/// The groups a TLS 1.3 hello sends a key share for unless told otherwise.
pub const DEFAULT_KEY_SHARES: &[u16] = &[X25519];

/// The groups [`key_share`] can make a real key for.
pub const KEY_SHARE_GROUPS: &[u16] = &[X25519, SECP256R1, SECP384R1];

/// The IANA name of a named group, when it is one of the common ones.
pub fn name(group: u16) -> Option<&'static str> {
    Some(match group {
        1 => "sect163k1",
        2 => "sect163r1",
        3 => "sect163r2",
        4 => "sect193r1",
        5 => "sect193r2",
        6 => "sect233k1",
        7 => "sect233r1",
        8 => "sect239k1",
        9 => "sect283k1",
        10 => "sect283r1",
        11 => "sect409k1",
        12 => "sect409r1",
        13 => "sect571k1",
        14 => "sect571r1",
        15 => "secp160k1",
        16 => "secp160r1",
        17 => "secp160r2",
        18 => "secp192k1",
        19 => "secp192r1",
        20 => "secp224k1",
        21 => "secp224r1",
        22 => "secp256k1",
        23 => "secp256r1",
        24 => "secp384r1",
        25 => "secp521r1",
        26 => "brainpoolP256r1",
        27 => "brainpoolP384r1",
        28 => "brainpoolP512r1",
        29 => "x25519",
        30 => "x448",
        31 => "brainpoolP256r1tls13",
        32 => "brainpoolP384r1tls13",
        33 => "brainpoolP512r1tls13",
        0x0100 => "ffdhe2048",
        0x0101 => "ffdhe3072",
        0x0102 => "ffdhe4096",
        0x0103 => "ffdhe6144",
        0x0104 => "ffdhe8192",
        0x11ec => "X25519MLKEM768",
        0x11eb => "SecP256r1MLKEM768",
        _ => return None,
    })
}

/// The security-relevant size in bits of a named group: the field size for
/// elliptic curves, the prime size for finite-field groups.
pub fn bits(group: u16) -> Option<u32> {
    Some(match group {
        1..=3 => 163,
        4 | 5 => 193,
        6 | 7 => 233,
        8 => 239,
        9 | 10 => 283,
        11 | 12 => 409,
        13 | 14 => 571,
        15..=17 => 160,
        18 | 19 => 192,
        20 | 21 => 224,
        22..=23 | 26 | 29 | 31 => 256,
        24 | 27 | 32 => 384,
        25 => 521,
        28 | 33 => 512,
        30 => 448,
        0x0100 => 2048,
        0x0101 => 3072,
        0x0102 => 4096,
        0x0103 => 6144,
        0x0104 => 8192,
        _ => return None,
    })
}

/// A fresh ephemeral public key for `group`, encoded as TLS 1.3 wants it in
/// a `KeyShareEntry` (32 bytes for X25519, an uncompressed point for P-256
/// and P-384). `None` when `ring` does not implement the group or the
/// operating system gave no randomness. The private key is dropped at once:
/// a probe never completes a handshake.
pub fn key_share(group: u16) -> Option<Vec<u8>> {
    let alg = match group {
        X25519 => &agreement::X25519,
        SECP256R1 => &agreement::ECDH_P256,
        SECP384R1 => &agreement::ECDH_P384,
        _ => return None,
    };
    let rng = SystemRandom::new();
    let private = agreement::EphemeralPrivateKey::generate(alg, &rng).ok()?;
    let public = private.compute_public_key().ok()?;
    Some(public.as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_shares_have_the_sizes_rfc8446_requires() {
        let x = key_share(X25519).unwrap();
        assert_eq!(x.len(), 32);
        let p256 = key_share(SECP256R1).unwrap();
        assert_eq!(p256.len(), 65);
        assert_eq!(p256[0], 4, "uncompressed point");
        let p384 = key_share(SECP384R1).unwrap();
        assert_eq!(p384.len(), 97);
        assert_ne!(key_share(X25519), key_share(X25519), "ephemeral");
    }

    #[test]
    fn groups_ring_cannot_do_get_no_key_share() {
        assert_eq!(key_share(SECP521R1), None);
        assert_eq!(key_share(FFDHE2048), None);
        assert_eq!(key_share(0xffff), None);
    }

    #[test]
    fn default_groups_include_what_the_brief_requires() {
        for g in [
            X25519, SECP256R1, SECP384R1, SECP521R1, FFDHE2048, FFDHE8192,
        ] {
            assert!(DEFAULT_GROUPS.contains(&g), "{g}");
            assert!(name(g).is_some());
        }
        assert_eq!(bits(FFDHE3072), Some(3072));
        assert_eq!(bits(SECP384R1), Some(384));
        assert_eq!(name(SECP384R1), Some("secp384r1"));
    }
}
