//! SSL 2.0 (draft-hickman-netscape-ssl-00, 1995): the CLIENT-HELLO builder
//! and the parser of the server's first message (SERVER-HELLO or ERROR).
//!
//! Format: a record has a 2-byte header `0x80 | len >> 8, len & 0xff`
//! (len ≤ 32767, no padding) followed by one message:
//! ```text
//! CLIENT-HELLO: 0x01 | version 0x0002 | u16 cipher_specs_len | u16 session_id_len
//!               | u16 challenge_len | cipher_specs (3 bytes each) | session_id | challenge
//! SERVER-HELLO: 0x04 | session_id_hit | certificate_type | version (0x0002)
//!               | u16 certificate_len | u16 cipher_specs_len | u16 connection_id_len
//!               | certificate | cipher_specs | connection_id
//! ERROR:        0x00 | u16 error_code
//! ```
//! Invariants: the parser reads nothing past the record it was given, the
//! lengths inside a SERVER-HELLO must add up to the record length exactly,
//! and `cipher_specs_len` must be a multiple of 3.

use super::codec::{Reader, Writer};
use super::hello::HelloError;
use super::parse::ParseError;

/// SSL_CK_RC4_128_WITH_MD5.
pub const RC4_128_WITH_MD5: u32 = 0x010080;
/// SSL_CK_RC4_128_EXPORT40_WITH_MD5.
pub const RC4_128_EXPORT40_WITH_MD5: u32 = 0x020080;
/// SSL_CK_RC2_128_CBC_WITH_MD5.
pub const RC2_128_CBC_WITH_MD5: u32 = 0x030080;
/// SSL_CK_RC2_128_CBC_EXPORT40_WITH_MD5.
pub const RC2_128_CBC_EXPORT40_WITH_MD5: u32 = 0x040080;
/// SSL_CK_IDEA_128_CBC_WITH_MD5.
pub const IDEA_128_CBC_WITH_MD5: u32 = 0x050080;
/// SSL_CK_DES_64_CBC_WITH_MD5.
pub const DES_64_CBC_WITH_MD5: u32 = 0x060040;
/// SSL_CK_DES_192_EDE3_CBC_WITH_MD5.
pub const DES_192_EDE3_CBC_WITH_MD5: u32 = 0x0700c0;

/// The seven SSLv2 cipher kinds, as a CLIENT-HELLO offers them.
pub const ALL_CIPHER_KINDS: [u32; 7] = [
    RC4_128_WITH_MD5,
    RC4_128_EXPORT40_WITH_MD5,
    RC2_128_CBC_WITH_MD5,
    RC2_128_CBC_EXPORT40_WITH_MD5,
    IDEA_128_CBC_WITH_MD5,
    DES_64_CBC_WITH_MD5,
    DES_192_EDE3_CBC_WITH_MD5,
];

/// The conventional name of an SSLv2 cipher kind.
pub fn cipher_kind_name(kind: u32) -> Option<&'static str> {
    Some(match kind {
        RC4_128_WITH_MD5 => "SSL_CK_RC4_128_WITH_MD5",
        RC4_128_EXPORT40_WITH_MD5 => "SSL_CK_RC4_128_EXPORT40_WITH_MD5",
        RC2_128_CBC_WITH_MD5 => "SSL_CK_RC2_128_CBC_WITH_MD5",
        RC2_128_CBC_EXPORT40_WITH_MD5 => "SSL_CK_RC2_128_CBC_EXPORT40_WITH_MD5",
        IDEA_128_CBC_WITH_MD5 => "SSL_CK_IDEA_128_CBC_WITH_MD5",
        DES_64_CBC_WITH_MD5 => "SSL_CK_DES_64_CBC_WITH_MD5",
        DES_192_EDE3_CBC_WITH_MD5 => "SSL_CK_DES_192_EDE3_CBC_WITH_MD5",
        _ => return None,
    })
}

const MSG_ERROR: u8 = 0;
const MSG_CLIENT_HELLO: u8 = 1;
const MSG_SERVER_HELLO: u8 = 4;
const SSL2_VERSION: u16 = 0x0002;
const MAX_RECORD: usize = 0x7fff;

/// What an SSLv2 server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sslv2ServerHello {
    /// The server found the (empty) session id in its cache.
    pub session_id_hit: bool,
    /// 1 = X.509 certificate.
    pub certificate_type: u8,
    /// The server's version (0x0002 for SSL 2.0).
    pub version: u16,
    /// The certificate bytes (DER for type 1), as sent.
    pub certificate: Vec<u8>,
    /// The cipher kinds the server accepts (3-byte specs).
    pub cipher_specs: Vec<u32>,
    /// The connection id.
    pub connection_id: Vec<u8>,
}

/// An SSLv2 server's first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sslv2Message {
    /// SERVER-HELLO: the server speaks SSL 2.0.
    ServerHello(Sslv2ServerHello),
    /// ERROR with its code (1 = no cipher, 2 = no certificate, …).
    Error(u16),
}

/// A CLIENT-HELLO record offering `kinds` with a 16-byte `challenge`.
pub fn client_hello(kinds: &[u32], challenge: [u8; 16]) -> Result<Vec<u8>, HelloError> {
    if kinds.is_empty() {
        return Err(HelloError::NoSuites);
    }
    let specs_len = kinds.len().checked_mul(3).ok_or(HelloError::TooLarge)?;
    let mut w = Writer::new();
    w.u8(MSG_CLIENT_HELLO);
    w.u16(SSL2_VERSION);
    w.u16(u16::try_from(specs_len).map_err(|_| HelloError::TooLarge)?);
    w.u16(0); // no session id
    w.u16(16); // challenge length
    for k in kinds {
        let b = k.to_be_bytes();
        w.bytes(&b[1..]);
    }
    w.bytes(&challenge);
    let body = w.into_vec();
    if body.len() > MAX_RECORD {
        return Err(HelloError::TooLarge);
    }
    let len = body.len() as u16; // ≤ 0x7fff, checked above
    let mut rec = Vec::with_capacity(body.len() + 2);
    rec.push(0x80 | (len >> 8) as u8);
    rec.push((len & 0xff) as u8);
    rec.extend_from_slice(&body);
    Ok(rec)
}

/// A CLIENT-HELLO offering every SSLv2 cipher kind with a fresh challenge.
pub fn client_hello_all() -> Result<Vec<u8>, HelloError> {
    let r = super::hello::fresh_random()?;
    let mut challenge = [0u8; 16];
    challenge.copy_from_slice(&r[..16]);
    client_hello(&ALL_CIPHER_KINDS, challenge)
}

/// Whether `buf` starts like an SSLv2 server record: a 2-byte header with
/// the high bit set, then a SERVER-HELLO or ERROR message type. `None` when
/// fewer than 3 bytes are present.
pub(super) fn looks_like_sslv2(buf: &[u8]) -> Option<bool> {
    let b0 = *buf.first()?;
    let t = *buf.get(2)?;
    Some(b0 & 0x80 != 0 && (t == MSG_SERVER_HELLO || t == MSG_ERROR))
}

/// Parses the first SSLv2 record of `buf`: `Ok(None)` while incomplete,
/// else the message and the bytes consumed.
pub(super) fn parse_record(buf: &[u8]) -> Result<Option<(Sslv2Message, usize)>, ParseError> {
    let mut r = Reader::new(buf);
    let (Some(h0), Some(h1)) = (r.u8(), r.u8()) else {
        return Ok(None);
    };
    if h0 & 0x80 == 0 {
        return Err(ParseError::malformed(
            "SSLv2 record without the 2-byte header",
        ));
    }
    let len = usize::from(h0 & 0x7f) << 8 | usize::from(h1);
    let Some(body) = r.take(len) else {
        return Ok(None);
    };
    let consumed = 2 + len;
    let mut m = Reader::new(body);
    match m.u8() {
        Some(MSG_ERROR) => {
            let code = m
                .u16()
                .ok_or_else(|| ParseError::malformed("SSLv2 ERROR without its code"))?;
            if !m.is_empty() {
                return Err(ParseError::malformed("SSLv2 ERROR with trailing bytes"));
            }
            Ok(Some((Sslv2Message::Error(code), consumed)))
        }
        Some(MSG_SERVER_HELLO) => {
            let short = || ParseError::malformed("SSLv2 SERVER-HELLO shorter than its header");
            let hit = m.u8().ok_or_else(short)?;
            let cert_type = m.u8().ok_or_else(short)?;
            let version = m.u16().ok_or_else(short)?;
            let cert_len = usize::from(m.u16().ok_or_else(short)?);
            let specs_len = usize::from(m.u16().ok_or_else(short)?);
            let conn_len = usize::from(m.u16().ok_or_else(short)?);
            if cert_len + specs_len + conn_len != m.remaining() {
                return Err(ParseError::malformed(
                    "SSLv2 SERVER-HELLO lengths do not add up to its record",
                ));
            }
            if specs_len % 3 != 0 {
                return Err(ParseError::malformed(
                    "SSLv2 cipher specs length is not a multiple of 3",
                ));
            }
            let cert = m.take(cert_len).ok_or_else(short)?;
            let specs = m.take(specs_len).ok_or_else(short)?;
            let conn = m.take(conn_len).ok_or_else(short)?;
            let cipher_specs = specs
                .chunks_exact(3)
                .map(|c| u32::from_be_bytes([0, c[0], c[1], c[2]]))
                .collect();
            Ok(Some((
                Sslv2Message::ServerHello(Sslv2ServerHello {
                    session_id_hit: hit != 0,
                    certificate_type: cert_type,
                    version,
                    certificate: cert.to_vec(),
                    cipher_specs,
                    connection_id: conn.to_vec(),
                }),
                consumed,
            )))
        }
        _ => Err(ParseError::malformed(
            "SSLv2 record is neither SERVER-HELLO nor ERROR",
        )),
    }
}

/// Builds a SERVER-HELLO record (for tests and replayed fixtures).
#[cfg(test)]
pub(super) fn server_hello_record(cert: &[u8], specs: &[u32], conn_id: &[u8]) -> Vec<u8> {
    let mut body = vec![MSG_SERVER_HELLO, 0, 1, 0x00, 0x02];
    body.extend_from_slice(&(cert.len() as u16).to_be_bytes());
    body.extend_from_slice(&((specs.len() * 3) as u16).to_be_bytes());
    body.extend_from_slice(&(conn_id.len() as u16).to_be_bytes());
    body.extend_from_slice(cert);
    for s in specs {
        body.extend_from_slice(&s.to_be_bytes()[1..]);
    }
    body.extend_from_slice(conn_id);
    let len = body.len() as u16;
    let mut rec = vec![0x80 | (len >> 8) as u8, (len & 0xff) as u8];
    rec.extend_from_slice(&body);
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_hello_is_byte_exact() {
        let h = client_hello(&[RC4_128_WITH_MD5, DES_192_EDE3_CBC_WITH_MD5], [0xcc; 16]).unwrap();
        let mut want = vec![
            0x80, 0x1f, // 31 bytes
            0x01, 0x00, 0x02, // CLIENT-HELLO, SSL 2.0
            0x00, 0x06, 0x00, 0x00, 0x00, 0x10, // specs 6, session id 0, challenge 16
            0x01, 0x00, 0x80, 0x07, 0x00, 0xc0,
        ];
        want.extend_from_slice(&[0xcc; 16]);
        assert_eq!(h, want);
        let all = client_hello_all().unwrap();
        assert_eq!(all.len(), 2 + 9 + 21 + 16);
        assert_eq!(client_hello(&[], [0; 16]), Err(HelloError::NoSuites));
        assert!(ALL_CIPHER_KINDS
            .iter()
            .all(|k| cipher_kind_name(*k).is_some()));
    }

    #[test]
    fn server_hello_gives_specs_and_certificate() {
        let rec = server_hello_record(
            b"CERTDER",
            &[RC4_128_WITH_MD5, DES_64_CBC_WITH_MD5],
            &[9; 16],
        );
        let (msg, used) = parse_record(&rec).unwrap().unwrap();
        assert_eq!(used, rec.len());
        let Sslv2Message::ServerHello(sh) = msg else {
            panic!("{msg:?}")
        };
        assert_eq!(sh.certificate, b"CERTDER");
        assert_eq!(sh.cipher_specs, vec![RC4_128_WITH_MD5, DES_64_CBC_WITH_MD5]);
        assert_eq!(sh.version, 2);
        assert_eq!(sh.connection_id, vec![9; 16]);
        // Every strict prefix is incomplete, never an error or a panic.
        for cut in 0..rec.len() {
            assert_eq!(parse_record(&rec[..cut]).unwrap(), None, "cut at {cut}");
        }
    }

    #[test]
    fn inconsistent_lengths_are_refused() {
        let mut rec = server_hello_record(b"C", &[RC4_128_WITH_MD5], &[1; 16]);
        rec[8] = 0x09; // cert length 9: the lengths no longer add up to the record
        assert!(parse_record(&rec).is_err());
        let mut rec = server_hello_record(b"C", &[RC4_128_WITH_MD5], &[1; 16]);
        rec[10] = 4; // specs length 4: not a multiple of 3 (and lengths no longer add up)
        assert!(parse_record(&rec).is_err());
        assert_eq!(
            parse_record(&[0x80, 0x03, 0x00, 0x00, 0x01]).unwrap(),
            Some((Sslv2Message::Error(1), 5))
        );
        assert!(parse_record(&[0x80, 0x02, 0x07, 0x00]).is_err());
    }
}
