//! The endpoint grade, after the SSL Labs *SSL Server Rating Guide*
//! (version 2009q, 31 January 2020, github.com/ssllabs/research/wiki/
//! SSL-Server-Rating-Guide), with the caps SSL Labs added to it since
//! (TLS 1.0/1.1 → B, January 2020; no AEAD suite → B) as testssl.sh's rating
//! (which cites the guide's 2009r text) applies them. Pure: facts in,
//! grade out.
//!
//! Score (guide tables 2–4), each category 0–100:
//! - protocol support: the mean of the best and the worst accepted version
//!   (SSL 2.0 = 0, SSL 3.0 = 80, TLS 1.0 = 90, TLS 1.1 = 95, TLS 1.2/1.3 = 100);
//! - key exchange: the weakest of the certificate key and every ephemeral
//!   parameter seen (RSA/DSA/DH bits: < 512 → 20, < 1024 → 40, < 2048 → 80,
//!   < 4096 → 90, else 100; EC bits: < 110 → 20, < 123 → 40, < 163 → 80,
//!   < 225 → 90, else 100; anonymous key exchange → 0);
//! - cipher strength: the mean of the strongest and the weakest accepted
//!   cipher (0 bits → 0, < 128 → 20, < 256 → 80, ≥ 256 → 100);
//!
//! combined 30 % / 30 % / 40 % (0 in any category makes the total 0), then
//! A ≥ 80, B ≥ 65, C ≥ 50, D ≥ 35, E ≥ 20, else F.
//!
//! Caps (the grade is the lowest that applies):
//! - F: SSLv2; SSLv3 as the best version; key exchange under 1024 bits;
//!   suites under 112 bits; EXPORT or anonymous suites; an MD2/MD5 signature.
//! - C: SSLv3 with CBC suites (POODLE); no TLS 1.2 nor 1.3; RC4 with
//!   TLS 1.1 or later; 64-bit block ciphers with TLS 1.1 or later (SWEET32).
//! - B: SSLv3 without CBC; TLS 1.0; TLS 1.1; RC4; key exchange under 2048
//!   bits; no forward-secret suite at all; no AEAD suite; an incomplete chain.
//! - T (trust): untrusted or self-signed chain, expired or not yet valid
//!   certificate, a SHA-1 signature in the chain. M: the name scanned is not
//!   in the certificate. T wins over M; both replace the letter, which is
//!   kept as `grade_ignoring_trust`.
//!
//! Simplifications, because nothing here simulates browsers: a cap that
//! SSL Labs applies when a *reference client negotiates* something (RC4,
//! 3DES, no forward secrecy) is applied here when the server *accepts* it
//! in that way; A+/A- (HSTS, warnings) are not given.

use super::wire::{suites, ProtocolVersion};

/// Facts the grade is computed from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GradeInput {
    /// Accepted versions.
    pub versions: Vec<ProtocolVersion>,
    /// Accepted suites (SSLv3 and later).
    pub suites: Vec<(ProtocolVersion, u16)>,
    /// Cipher bits of accepted SSLv2 cipher kinds.
    pub sslv2_cipher_bits: Vec<u16>,
    /// The leaf key: (`RSA`/`DSA`/`EC`/…, bits).
    pub cert_key: Option<(String, u32)>,
    /// DHE prime sizes seen.
    pub dh_bits: Vec<u32>,
    /// ECDHE curve sizes seen (TLS ≤ 1.2 and TLS 1.3 groups).
    pub ec_bits: Vec<u32>,
    /// EXPORT temporary RSA key sizes.
    pub export_rsa_bits: Vec<u32>,
    /// Trust problem, if any: its reason.
    pub trust_problem: Option<String>,
    /// The chain lacks an intermediate.
    pub incomplete_chain: bool,
    /// The name is not in the certificate.
    pub name_mismatch: bool,
    /// The worst hash in the chain's signatures (`MD5`, `MD2`, `SHA-1`).
    pub weak_hash: Option<String>,
}

/// A grade with its reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grade {
    /// `A`…`F`, `T` or `M`.
    pub grade: String,
    /// The letter the configuration earns when trust is set aside.
    pub grade_ignoring_trust: String,
    /// The combined score, 0–100.
    pub score: u32,
    /// Protocol support score.
    pub protocol_score: u32,
    /// Key exchange score.
    pub key_exchange_score: u32,
    /// Cipher strength score.
    pub cipher_score: u32,
    /// Every cap that applied, e.g. `B: TLS 1.0 accepted`.
    pub reasons: Vec<String>,
}

const LETTERS: [&str; 6] = ["A", "B", "C", "D", "E", "F"];

fn letter_of(score: u32) -> usize {
    match score {
        80.. => 0,
        65.. => 1,
        50.. => 2,
        35.. => 3,
        20.. => 4,
        _ => 5,
    }
}

fn proto_points(v: ProtocolVersion) -> u32 {
    match v {
        ProtocolVersion::Ssl2 => 0,
        ProtocolVersion::Ssl3 => 80,
        ProtocolVersion::Tls10 => 90,
        ProtocolVersion::Tls11 => 95,
        ProtocolVersion::Tls12 | ProtocolVersion::Tls13 => 100,
    }
}

/// Key exchange points of an RSA/DSA/DH size.
pub fn ff_points(bits: u32) -> u32 {
    match bits {
        0..512 => 20,
        512..1024 => 40,
        1024..2048 => 80,
        2048..4096 => 90,
        _ => 100,
    }
}

/// Key exchange points of an EC size.
pub fn ec_points(bits: u32) -> u32 {
    match bits {
        0..110 => 20,
        110..123 => 40,
        123..163 => 80,
        163..225 => 90,
        _ => 100,
    }
}

fn cipher_points(bits: u16) -> u32 {
    match bits {
        0 => 0,
        1..128 => 20,
        128..256 => 80,
        _ => 100,
    }
}

/// Computes the grade.
pub fn grade(input: &GradeInput) -> Grade {
    let mut caps: Vec<(usize, String)> = Vec::new();
    let mut cap = |letter: usize, why: String| caps.push((letter, why));
    let has = |v| input.versions.contains(&v);

    // Protocol support.
    let best = input.versions.iter().max().copied();
    let worst = input.versions.iter().min().copied();
    let protocol_score = match (best, worst) {
        (Some(b), Some(w)) => (proto_points(b) + proto_points(w)) / 2,
        _ => 0,
    };
    if has(ProtocolVersion::Ssl2) {
        cap(5, "SSLv2 accepted".into());
    }
    if best == Some(ProtocolVersion::Ssl3) {
        cap(5, "SSLv3 is the best version accepted".into());
    }
    if has(ProtocolVersion::Ssl3) {
        let cbc = input.suites.iter().any(|(v, s)| {
            *v == ProtocolVersion::Ssl3
                && suites::info(*s).is_some_and(|i| i.mode == suites::CipherMode::Cbc)
        });
        if cbc {
            cap(2, "SSLv3 with CBC suites accepted (POODLE)".into());
        } else {
            cap(1, "SSLv3 accepted".into());
        }
    }
    if has(ProtocolVersion::Tls10) {
        cap(1, "TLS 1.0 accepted".into());
    }
    if has(ProtocolVersion::Tls11) {
        cap(1, "TLS 1.1 accepted".into());
    }
    if !input.versions.is_empty() && !has(ProtocolVersion::Tls12) && !has(ProtocolVersion::Tls13) {
        cap(2, "neither TLS 1.2 nor TLS 1.3 accepted".into());
    }

    // Key exchange.
    let mut kx = 100u32;
    let mut kx_why = Vec::new();
    if let Some((kind, bits)) = &input.cert_key {
        let p = match kind.as_str() {
            "RSA" | "DSA" => ff_points(*bits),
            "EC" => ec_points(*bits),
            _ => 100,
        };
        if p < kx {
            kx = p;
        }
        if p <= 80 {
            kx_why.push(format!("certificate key {kind} {bits}"));
        }
    }
    for b in input.dh_bits.iter().chain(&input.export_rsa_bits) {
        let p = ff_points(*b);
        kx = kx.min(p);
        if p <= 80 {
            kx_why.push(format!("ephemeral {b}-bit key exchange"));
        }
    }
    for b in &input.ec_bits {
        let p = ec_points(*b);
        kx = kx.min(p);
        if p <= 80 {
            kx_why.push(format!("ephemeral {b}-bit curve"));
        }
    }
    let infos: Vec<(ProtocolVersion, suites::SuiteInfo)> = input
        .suites
        .iter()
        .filter_map(|(v, s)| suites::info(*s).map(|i| (*v, i)))
        .collect();
    if infos.iter().any(|(_, i)| i.kx.anonymous()) {
        kx = 0;
        cap(5, "anonymous key exchange accepted".into());
    }
    if kx <= 40 && kx > 0 {
        cap(
            5,
            format!("key exchange under 1024 bits ({})", kx_why.join(", ")),
        );
    } else if kx <= 80 && kx > 0 {
        cap(
            1,
            format!("key exchange under 2048 bits ({})", kx_why.join(", ")),
        );
    }

    // Cipher strength.
    let mut bits: Vec<u16> = infos.iter().map(|(_, i)| i.bits).collect();
    bits.extend(&input.sslv2_cipher_bits);
    let cipher_score = match (bits.iter().max(), bits.iter().min()) {
        (Some(b), Some(w)) => (cipher_points(*b) + cipher_points(*w)) / 2,
        _ => 0,
    };
    let under_112: Vec<&str> = infos
        .iter()
        .filter(|(_, i)| i.effective_bits < 112)
        .map(|(_, i)| i.name)
        .collect();
    if !under_112.is_empty() || input.sslv2_cipher_bits.iter().any(|b| *b < 112) {
        cap(5, "cipher suites under 112 bits accepted".into());
    }
    if infos.iter().any(|(_, i)| i.export) {
        cap(5, "EXPORT suites accepted".into());
    }
    let rc4 = |i: &suites::SuiteInfo| i.cipher.contains("RC4");
    if infos
        .iter()
        .any(|(v, i)| rc4(i) && *v >= ProtocolVersion::Tls11)
    {
        cap(2, "RC4 accepted with TLS 1.1 or later".into());
    } else if infos.iter().any(|(_, i)| rc4(i)) {
        cap(1, "RC4 accepted".into());
    }
    if infos
        .iter()
        .any(|(v, i)| i.block_bits == 64 && *v >= ProtocolVersion::Tls11)
    {
        cap(
            2,
            "64-bit block ciphers accepted with TLS 1.1 or later (SWEET32)".into(),
        );
    }
    if !infos.is_empty() && !infos.iter().any(|(_, i)| i.kx.forward_secret()) {
        cap(1, "no forward-secret suite accepted".into());
    }
    if !infos.is_empty()
        && !infos
            .iter()
            .any(|(_, i)| i.mode == suites::CipherMode::Aead)
    {
        cap(1, "no AEAD suite accepted".into());
    }

    // Certificate.
    if let Some(h) = &input.weak_hash {
        if h == "MD5" || h == "MD2" {
            cap(5, format!("{h} signature in the chain"));
        }
    }
    if input.incomplete_chain {
        cap(1, "incomplete certificate chain".into());
    }

    let score = if protocol_score == 0 || kx == 0 || cipher_score == 0 {
        0
    } else {
        protocol_score * 30 / 100 + kx * 30 / 100 + cipher_score * 40 / 100
    };
    let mut letter = letter_of(score);
    for (l, _) in &caps {
        letter = letter.max(*l);
    }
    let plain = LETTERS.get(letter).copied().unwrap_or("F").to_owned();
    let mut reasons: Vec<String> = caps
        .iter()
        .map(|(l, why)| format!("{}: {why}", LETTERS.get(*l).copied().unwrap_or("F")))
        .collect();
    let mut special = None;
    if let Some(h) = &input.weak_hash {
        if h == "SHA-1" {
            reasons.push("T: SHA-1 signature in the chain".into());
            special = Some("T");
        }
    }
    if let Some(why) = &input.trust_problem {
        reasons.push(format!("T: {why}"));
        special = Some("T");
    }
    if input.name_mismatch {
        reasons.push("M: the certificate does not name the host".into());
        if special.is_none() {
            special = Some("M");
        }
    }
    Grade {
        grade: special.map(str::to_owned).unwrap_or_else(|| plain.clone()),
        grade_ignoring_trust: plain,
        score,
        protocol_score,
        key_exchange_score: kx,
        cipher_score,
        reasons,
    }
}

/// Sort rank of a grade, worst first: F, T, M, E, D, C, B, A.
pub fn rank(grade: &str) -> u8 {
    match grade {
        "F" => 0,
        "T" => 1,
        "M" => 2,
        "E" => 3,
        "D" => 4,
        "C" => 5,
        "B" => 6,
        "A" => 7,
        _ => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProtocolVersion::*;

    fn modern() -> GradeInput {
        GradeInput {
            versions: vec![Tls12, Tls13],
            suites: vec![
                (Tls13, 0x1301),
                (Tls13, 0x1302),
                (Tls12, 0xc02f),
                (Tls12, 0xc030),
            ],
            cert_key: Some(("RSA".into(), 2048)),
            ec_bits: vec![256],
            ..GradeInput::default()
        }
    }

    #[test]
    fn a_modern_endpoint_gets_an_a_with_no_reasons() {
        let g = grade(&modern());
        assert_eq!(g.grade, "A", "{g:?}");
        assert_eq!(
            (g.protocol_score, g.key_exchange_score, g.cipher_score),
            (100, 90, 90)
        );
        assert_eq!(g.score, 30 + 27 + 36);
        assert!(g.reasons.is_empty());
    }

    #[test]
    fn old_protocols_and_weak_suites_cap_the_grade() {
        let mut i = modern();
        i.versions.push(Tls10);
        i.suites.push((Tls10, 0xc013));
        assert_eq!(grade(&i).grade, "B");
        let mut i = modern();
        i.versions = vec![Tls10];
        i.suites = vec![(Tls10, 0xc013)];
        let g = grade(&i);
        assert_eq!(g.grade, "C", "{g:?}");
        let mut i = modern();
        i.suites.push((Tls12, 0x000a)); // 3DES with TLS 1.2
        assert_eq!(grade(&i).grade, "C");
        let mut i = modern();
        i.suites.push((Tls12, 0x0005)); // RC4 with TLS 1.2
        assert_eq!(grade(&i).grade, "C");
        let mut i = modern();
        i.dh_bits.push(1024);
        assert_eq!(grade(&i).grade, "B");
        let mut i = modern();
        i.suites = vec![(Tls12, 0x009c), (Tls12, 0x002f)]; // static RSA only
        i.versions = vec![Tls12];
        let g = grade(&i);
        assert_eq!(g.grade, "B");
        assert!(g.reasons.iter().any(|r| r.contains("forward")), "{g:?}");
        let mut i = modern();
        i.versions = vec![Tls12, Ssl2];
        assert_eq!(grade(&i).grade, "F");
    }

    #[test]
    fn trust_and_name_problems_replace_the_letter_but_keep_it() {
        let mut i = modern();
        i.trust_problem = Some("self-signed certificate".into());
        i.name_mismatch = true;
        let g = grade(&i);
        assert_eq!(
            (g.grade.as_str(), g.grade_ignoring_trust.as_str()),
            ("T", "A")
        );
        let mut i = modern();
        i.name_mismatch = true;
        assert_eq!(grade(&i).grade, "M");
        let mut i = modern();
        i.weak_hash = Some("SHA-1".into());
        assert_eq!(grade(&i).grade, "T");
        let mut i = modern();
        i.incomplete_chain = true;
        assert_eq!(grade(&i).grade, "B");
        let mut i = modern();
        i.cert_key = Some(("RSA".into(), 1024));
        assert_eq!(grade(&i).grade, "B");
    }

    #[test]
    fn grades_sort_worst_first() {
        let mut g = vec!["A", "T", "C", "F", "M", "B"];
        g.sort_by_key(|x| rank(x));
        assert_eq!(g, vec!["F", "T", "M", "C", "B", "A"]);
    }
}
