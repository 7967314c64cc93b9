//! Does an unknown port speak TLS? One TLS 1.2 ClientHello, and the first
//! bytes of the answer.
//!
//! The hello (RFC 5246 §7.4.1.2) offers common ECDHE and RSA AES-GCM/CBC
//! suites with `signature_algorithms`, `supported_groups` and
//! `ec_point_formats`, no SNI (the target is an address). A TLS server
//! answers with a record whose header is `16 03 0x` (handshake) or
//! `15 03 0x` (alert, e.g. when it likes none of the suites): either is
//! TLS. Anything else (a banner, silence, a close) is not. The full
//! assessment is the TLS collector's.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Conn, ParseError, ProbeError, ProbeLimits};

const SUITES: [u16; 8] = [
    0xc02f, 0xc030, 0xc02b, 0xc02c, 0x009c, 0x009d, 0x002f, 0x0035,
];
const SIGNATURE_ALGORITHMS: [u16; 9] = [
    0x0401, 0x0501, 0x0601, 0x0403, 0x0503, 0x0804, 0x0805, 0x0806, 0x0201,
];
const GROUPS: [u16; 3] = [0x001d, 0x0017, 0x0018];

/// The longest a silent service is waited for after the hello.
pub const ANSWER_WAIT: Duration = Duration::from_secs(2);

fn push16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn len16(n: usize) -> [u8; 2] {
    // Every length here is a small constant-sized structure (< 200 bytes).
    u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes()
}

/// The ClientHello record, with `random` as the client random.
pub fn client_hello(random: [u8; 32]) -> Vec<u8> {
    let mut ext = Vec::new();
    // signature_algorithms
    let mut sa = Vec::new();
    for a in SIGNATURE_ALGORITHMS {
        push16(&mut sa, a);
    }
    push16(&mut ext, 0x000d);
    ext.extend_from_slice(&len16(sa.len() + 2));
    ext.extend_from_slice(&len16(sa.len()));
    ext.extend_from_slice(&sa);
    // supported_groups
    let mut g = Vec::new();
    for x in GROUPS {
        push16(&mut g, x);
    }
    push16(&mut ext, 0x000a);
    ext.extend_from_slice(&len16(g.len() + 2));
    ext.extend_from_slice(&len16(g.len()));
    ext.extend_from_slice(&g);
    // ec_point_formats: uncompressed
    ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);

    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&random);
    body.push(0); // session id
    body.extend_from_slice(&len16(SUITES.len() * 2));
    for s in SUITES {
        push16(&mut body, s);
    }
    body.extend_from_slice(&[0x01, 0x00]); // compression: null
    body.extend_from_slice(&len16(ext.len()));
    body.extend_from_slice(&ext);

    let mut hs = vec![0x01];
    let n = u32::try_from(body.len()).unwrap_or(0).to_be_bytes();
    hs.extend_from_slice(&n[1..]);
    hs.extend_from_slice(&body);

    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&len16(hs.len()));
    rec.extend_from_slice(&hs);
    rec
}

/// Whether the first bytes of an answer are a TLS record header
/// (handshake or alert, SSL 3.0 to TLS 1.3 record versions).
pub fn looks_like_tls(b: &[u8]) -> Result<bool, ParseError> {
    match b {
        [] | [_] | [_, _] => Err(ParseError::truncated("record header")),
        [t, 0x03, v, ..] => Ok(matches!(t, 0x15 | 0x16) && *v <= 0x04),
        _ => Ok(false),
    }
}

fn random() -> [u8; 32] {
    use ring::rand::SecureRandom;
    let mut r = [0u8; 32];
    // Without OS randomness a fixed random still tells TLS from not-TLS.
    let _ = ring::rand::SystemRandom::new().fill(&mut r);
    r
}

/// Sends one ClientHello to `addr` and tells whether the answer is TLS.
/// A close, a reset or silence (within [`ANSWER_WAIT`]) is "not TLS".
pub async fn speaks_tls(addr: SocketAddr, limits: &ProbeLimits) -> Result<bool, ProbeError> {
    let limits = ProbeLimits {
        read_timeout: limits.read_timeout.min(ANSWER_WAIT),
        ..*limits
    };
    let deadline = limits.deadline_from_now();
    let mut conn = Conn::connect(addr, &limits, deadline).await?;
    let result = async {
        conn.send(&client_hello(random())).await?;
        conn.read_parsed(|b| looks_like_tls(b).map(|v| (v, 3)))
            .await
    }
    .await;
    conn.close().await;
    match result {
        Ok(v) => Ok(v),
        Err(
            ProbeError::Closed { .. }
            | ProbeError::ReadTimeout
            | ProbeError::Io(_)
            | ProbeError::Deadline,
        ) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{quick_limits, serve, Script};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hello_lengths_are_consistent() {
        let h = client_hello([7; 32]);
        assert_eq!(&h[..3], &[0x16, 0x03, 0x01]);
        let rec_len = usize::from(u16::from_be_bytes([h[3], h[4]]));
        assert_eq!(rec_len, h.len() - 5);
        assert_eq!(h[5], 0x01, "ClientHello");
        let hs_len = (usize::from(h[6]) << 16) | (usize::from(h[7]) << 8) | usize::from(h[8]);
        assert_eq!(hs_len, h.len() - 9);
        assert_eq!(&h[9..11], &[0x03, 0x03]);
        assert_eq!(&h[11..43], &[7; 32]);
        assert_eq!(h[43], 0, "no session id");
        assert_eq!(u16::from_be_bytes([h[44], h[45]]), 16, "8 suites");
        // compression, then the extensions block runs to the end.
        let at = 46 + 16;
        assert_eq!(&h[at..at + 2], &[0x01, 0x00]);
        let ext_len = usize::from(u16::from_be_bytes([h[at + 2], h[at + 3]]));
        assert_eq!(ext_len, h.len() - (at + 4));
    }

    #[test]
    fn handshake_and_alert_records_are_tls_banners_are_not() {
        assert_eq!(looks_like_tls(&[0x16, 0x03, 0x03, 0, 5]), Ok(true));
        assert_eq!(looks_like_tls(&[0x15, 0x03, 0x01]), Ok(true));
        assert_eq!(looks_like_tls(&[0x16, 0x03, 0x09]), Ok(false));
        assert_eq!(looks_like_tls(b"SSH-2.0-x"), Ok(false));
        assert_eq!(looks_like_tls(b"220 ftp"), Ok(false));
        assert!(matches!(
            looks_like_tls(&[0x16, 0x03]),
            Err(ParseError::Truncated { .. })
        ));
    }

    #[tokio::test]
    async fn a_server_answering_a_handshake_record_speaks_tls() {
        let addr = serve(vec![Script::Steps(vec![(
            true,
            vec![0x16, 0x03, 0x03, 0x00, 0x02, 0x02, 0x00],
        )])])
        .await;
        assert!(speaks_tls(addr, &quick_limits()).await.expect("probe"));
    }

    #[tokio::test]
    async fn banners_silence_and_resets_are_not_tls() {
        for script in [
            Script::Send(b"SSH-2.0-OpenSSH_9.2p1\r\n".to_vec()),
            Script::Silent,
            Script::Reset,
        ] {
            let addr = serve(vec![script]).await;
            assert!(!speaks_tls(addr, &quick_limits()).await.expect("probe"));
        }
    }

    proptest! {
        #[test]
        fn looks_like_tls_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = looks_like_tls(&bytes);
        }
    }
}
