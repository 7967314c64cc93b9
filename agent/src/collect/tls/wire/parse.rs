//! The parser of a server's answer to one ClientHello: total, bounded, pure.
//!
//! [`parse_answer`] takes every byte received so far and returns
//! [`Progress::NeedMore`], [`Progress::Done`] with a [`ServerAnswer`] and the
//! number of bytes it consumed, or a [`ParseError`]. Called again with more
//! bytes it starts over; it keeps no state.
//!
//! Format read (RFC 5246 §6.2, §7.4; RFC 8446 §4.1.3, §4.1.4; RFC 6101):
//! ```text
//! record:    content_type | version (0x03XX) | u16 length ≤ MAX_RECORD_LEN | fragment
//! handshake: msg_type | u24 length ≤ MAX_HANDSHAKE_LEN | body  (reassembled across records)
//! alert:     level | description
//! ```
//! An answer is decided at: a fatal alert or close_notify; a ServerHello
//! that is a HelloRetryRequest (the RFC 8446 special random) or that selects
//! TLS 1.3 (what follows is encrypted); for older versions the
//! ServerHelloDone, or earlier if [`ParseOptions::stop_at`] says so; a
//! ChangeCipherSpec or application data after the ServerHello. A first byte
//! with the high bit set followed by an SSLv2 SERVER-HELLO or ERROR type is
//! read as SSLv2 ([`super::sslv2`]). Anything else is [`ParseError::NotTls`].
//!
//! Invariants: no panic and no unchecked index on any input; records larger
//! than [`MAX_RECORD_LEN`] and handshake messages announcing more than
//! [`MAX_HANDSHAKE_LEN`] are refused from their headers alone (before their
//! bodies arrive); `consumed` in [`Progress::Done`] is never more than the
//! input's length; warning alerts are kept (at most [`MAX_WARNINGS`]).

use std::fmt;

use tls_parser::{
    parse_dh_params, parse_ecdh_params, parse_tls_handshake_msg_certificate,
    parse_tls_handshake_server_hello, parse_tls_message_alert, parse_tls_record_header,
    parse_tls_server_hello_extension, TlsExtension, TlsMessage, TlsMessageHandshake,
};

use super::codec::Reader;
use super::sslv2::{self, Sslv2Message, Sslv2ServerHello};
use super::suites::{self, KeyExchange};
use super::version::ProtocolVersion;

/// Largest TLS record accepted: 2^14 plus 2048 bytes of expansion (RFC 5246 §6.2.3).
pub const MAX_RECORD_LEN: usize = (1 << 14) + 2048;
/// Largest handshake message accepted (a certificate chain of 256 KiB is
/// already far beyond any real one).
pub const MAX_HANDSHAKE_LEN: usize = 256 * 1024;
/// Most warning alerts kept before the answer is called malformed.
pub const MAX_WARNINGS: usize = 8;

/// The ServerHello.random that marks a HelloRetryRequest (RFC 8446 §4.1.3):
/// SHA-256 of "HelloRetryRequest".
pub const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

const CT_CHANGE_CIPHER_SPEC: u8 = 20;
const CT_ALERT: u8 = 21;
const CT_HANDSHAKE: u8 = 22;
const CT_APPLICATION_DATA: u8 = 23;

const HS_HELLO_REQUEST: u8 = 0;
const HS_SERVER_HELLO: u8 = 2;
const HS_CERTIFICATE: u8 = 11;
const HS_SERVER_KEY_EXCHANGE: u8 = 12;
const HS_CERTIFICATE_REQUEST: u8 = 13;
const HS_SERVER_HELLO_DONE: u8 = 14;
const HS_CERTIFICATE_STATUS: u8 = 22;

const EXT_EXTENDED_MASTER_SECRET: u16 = 23;
const EXT_SUPPORTED_VERSIONS: u16 = 43;
const EXT_COOKIE: u16 = 44;
const EXT_KEY_SHARE: u16 = 51;
const EXT_RENEGOTIATION_INFO: u16 = 0xff01;

/// How far to read a pre-TLS 1.3 flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StopAt {
    /// The ServerHello is enough (version and suite probes).
    ServerHello,
    /// Up to the end of the Certificate message (chain collection).
    Certificate,
    /// The whole flight, to the ServerHelloDone (key exchange parameters too).
    #[default]
    ServerHelloDone,
}

/// What the parser should expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParseOptions {
    /// How far to read a pre-TLS 1.3 flight.
    pub stop_at: StopAt,
    /// This is the answer to a second ClientHello sent after a
    /// HelloRetryRequest: one ChangeCipherSpec record before the ServerHello
    /// is allowed (middlebox compatibility), and a second HRR is an error.
    pub after_hrr: bool,
}

/// The parser's verdict on the bytes so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The answer is not decided yet: read more.
    NeedMore,
    /// The answer is decided.
    Done {
        /// What the server answered (boxed: a flight is large, `NeedMore` is not).
        answer: Box<ServerAnswer>,
        /// How many bytes of the input the answer used (the records up to
        /// and including the deciding one); never more than the input.
        consumed: usize,
    },
}

/// What a server answered to a ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAnswer {
    /// A ServerHello and what followed it (SSLv3 to TLS 1.3).
    Handshake(ServerFlight),
    /// A TLS 1.3 HelloRetryRequest (`is_hrr` is set; `selected_group` and
    /// `cookie` say what the retry must carry).
    HelloRetryRequest(ServerHello),
    /// A fatal alert (or close_notify) before any ServerHello: refused.
    Alert(Alert),
    /// An SSLv2 SERVER-HELLO: the server speaks SSL 2.0.
    Sslv2(Sslv2ServerHello),
    /// An SSLv2 ERROR message with its code.
    Sslv2Error(u16),
}

/// A ServerHello (or HelloRetryRequest), decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHello {
    /// `legacy_version` / `server_version` as sent.
    pub legacy_version: u16,
    /// The negotiated version: `supported_versions` if present, else `legacy_version`.
    pub version: u16,
    /// The server random.
    pub random: [u8; 32],
    /// The session id (echoed legacy_session_id in TLS 1.3).
    pub session_id: Vec<u8>,
    /// The cipher suite the server picked.
    pub cipher_suite: u16,
    /// The compression method (0 = null).
    pub compression: u8,
    /// Extension types, in the order sent.
    pub extensions: Vec<u16>,
    /// The `supported_versions` extension's version, if sent.
    pub selected_version: Option<u16>,
    /// The `key_share` group: the server's share group in a ServerHello,
    /// the group asked for in a HelloRetryRequest.
    pub selected_group: Option<u16>,
    /// Length of the server's key share (ServerHello only).
    pub key_share_len: Option<usize>,
    /// The `cookie` extension's body as sent (length prefix included), to
    /// be echoed verbatim in the retry.
    pub cookie: Option<Vec<u8>>,
    /// The random is RFC 8446's HelloRetryRequest marker.
    pub is_hrr: bool,
    /// `renegotiation_info` was sent (RFC 5746).
    pub secure_renegotiation: bool,
    /// `extended_master_secret` was sent (RFC 7627).
    pub extended_master_secret: bool,
    /// RFC 8446 §4.1.3 downgrade marker at the end of the random:
    /// `Some(1)` = "DOWNGRD\x01" (a TLS 1.3 server negotiating TLS 1.2),
    /// `Some(0)` = "DOWNGRD\x00" (negotiating TLS 1.1 or below).
    pub downgrade_sentinel: Option<u8>,
}

impl ServerHello {
    /// The negotiated protocol version, if it is one of the known ones.
    pub fn protocol(&self) -> Option<ProtocolVersion> {
        ProtocolVersion::from_wire(self.version)
    }
}

/// A ServerHello and the rest of the server's first flight, as far as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFlight {
    /// The ServerHello.
    pub server_hello: ServerHello,
    /// The certificate chain as sent (DER, leaf first); `None` when no
    /// Certificate message was read (TLS 1.3, anonymous suites, or stopped early).
    pub certificates: Option<Vec<Vec<u8>>>,
    /// The CertificateStatus body (stapled OCSP), as sent.
    pub certificate_status: Option<Vec<u8>>,
    /// The ServerKeyExchange.
    pub key_exchange: Option<ServerKeyExchange>,
    /// A CertificateRequest was sent (client certificates asked for).
    pub certificate_request: bool,
    /// The ServerHelloDone was read (the flight is complete).
    pub server_hello_done: bool,
    /// The fatal alert (or close_notify) that ended the flight early.
    pub alert: Option<Alert>,
    /// Warning alerts received before the answer was decided.
    pub warnings: Vec<Alert>,
}

/// A ServerKeyExchange message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerKeyExchange {
    /// The message body as sent.
    pub raw: Vec<u8>,
    /// Its parameters, decoded for the negotiated suite.
    pub params: KeyExchangeParams,
}

/// Key exchange parameters of a ServerKeyExchange.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyExchangeParams {
    /// Finite-field Diffie-Hellman (DHE, DH_anon, DHE_PSK).
    Dh(DhParams),
    /// Elliptic-curve Diffie-Hellman (ECDHE, ECDH_anon, ECDHE_PSK).
    Ecdh {
        /// The curve.
        curve: EcCurve,
        /// Length of the server's public point.
        point_len: usize,
    },
    /// A temporary RSA key (EXPORT suites).
    RsaExport {
        /// Modulus size in bits.
        modulus_bits: u32,
    },
    /// Not decoded (PSK hint only, SRP, or a suite the registry does not know).
    NotDecoded,
}

/// Finite-field DH parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhParams {
    /// Bit length of the prime p (what `tls.kx.weak_dh` is judged on).
    pub prime_bits: u32,
    /// The prime, big-endian, as sent.
    pub prime: Vec<u8>,
    /// The generator, big-endian, as sent.
    pub generator: Vec<u8>,
    /// Bit length of the server's public value.
    pub public_bits: u32,
}

impl DhParams {
    /// The generator as a number when it fits in 64 bits (it is 2 or 5 in practice).
    pub fn generator_value(&self) -> Option<u64> {
        let significant: Vec<u8> = self
            .generator
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        if significant.len() > 8 {
            return None;
        }
        Some(
            significant
                .iter()
                .fold(0u64, |acc, b| acc << 8 | u64::from(*b)),
        )
    }
}

/// The curve of ECDH parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcCurve {
    /// A named group (see [`super::groups`]).
    Named(u16),
    /// Explicit prime-field curve parameters.
    ExplicitPrime,
    /// Explicit characteristic-2 curve parameters.
    ExplicitChar2,
}

/// A TLS alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alert {
    /// 1 = warning, 2 = fatal.
    pub level: u8,
    /// The alert description code.
    pub description: u8,
}

impl Alert {
    /// Whether the alert is fatal.
    pub fn is_fatal(&self) -> bool {
        self.level == 2
    }

    /// The RFC name of the description, e.g. `handshake_failure`.
    pub fn description_name(&self) -> &'static str {
        match self.description {
            0 => "close_notify",
            10 => "unexpected_message",
            20 => "bad_record_mac",
            21 => "decryption_failed",
            22 => "record_overflow",
            30 => "decompression_failure",
            40 => "handshake_failure",
            41 => "no_certificate",
            42 => "bad_certificate",
            43 => "unsupported_certificate",
            44 => "certificate_revoked",
            45 => "certificate_expired",
            46 => "certificate_unknown",
            47 => "illegal_parameter",
            48 => "unknown_ca",
            49 => "access_denied",
            50 => "decode_error",
            51 => "decrypt_error",
            60 => "export_restriction",
            70 => "protocol_version",
            71 => "insufficient_security",
            80 => "internal_error",
            86 => "inappropriate_fallback",
            90 => "user_canceled",
            100 => "no_renegotiation",
            109 => "missing_extension",
            110 => "unsupported_extension",
            111 => "certificate_unobtainable",
            112 => "unrecognized_name",
            113 => "bad_certificate_status_response",
            114 => "bad_certificate_hash_value",
            115 => "unknown_psk_identity",
            116 => "certificate_required",
            120 => "no_application_protocol",
            _ => "unknown",
        }
    }
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            1 => "warning",
            2 => "fatal",
            _ => "unknown-level",
        };
        write!(
            f,
            "{level} alert {} ({})",
            self.description_name(),
            self.description
        )
    }
}

/// Why an answer cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The peer speaks something else.
    #[error("the peer does not speak TLS: it sent {hint}")]
    NotTls {
        /// What it looks like, with its first bytes.
        hint: String,
    },
    /// A record header announced too many bytes.
    #[error("a TLS record of {announced} bytes was announced (limit {limit})")]
    RecordTooLarge {
        /// The announced length.
        announced: usize,
        /// [`MAX_RECORD_LEN`].
        limit: usize,
    },
    /// A handshake message header announced too many bytes.
    #[error("a {kind} message of {announced} bytes was announced (limit {limit})")]
    HandshakeTooLarge {
        /// The message type's name.
        kind: &'static str,
        /// The announced length.
        announced: usize,
        /// [`MAX_HANDSHAKE_LEN`].
        limit: usize,
    },
    /// The bytes break the protocol.
    #[error("malformed answer: {detail}")]
    Malformed {
        /// What is wrong.
        detail: String,
    },
}

impl ParseError {
    pub(super) fn malformed(detail: impl Into<String>) -> Self {
        ParseError::Malformed {
            detail: detail.into(),
        }
    }
}

fn handshake_name(t: u8) -> &'static str {
    match t {
        0 => "HelloRequest",
        1 => "ClientHello",
        2 => "ServerHello",
        4 => "NewSessionTicket",
        8 => "EncryptedExtensions",
        11 => "Certificate",
        12 => "ServerKeyExchange",
        13 => "CertificateRequest",
        14 => "ServerHelloDone",
        15 => "CertificateVerify",
        16 => "ClientKeyExchange",
        20 => "Finished",
        22 => "CertificateStatus",
        _ => "handshake",
    }
}

/// Reads a server's answer from all the bytes received so far.
pub fn parse_answer(buf: &[u8], opts: &ParseOptions) -> Result<Progress, ParseError> {
    let Some(&b0) = buf.first() else {
        return Ok(Progress::NeedMore);
    };
    if b0 & 0x80 != 0 {
        return match sslv2::looks_like_sslv2(buf) {
            None => Ok(Progress::NeedMore),
            Some(false) => Err(not_tls(buf)),
            Some(true) => match sslv2::parse_record(buf)? {
                None => Ok(Progress::NeedMore),
                Some((msg, consumed)) => Ok(Progress::Done {
                    answer: Box::new(match msg {
                        Sslv2Message::ServerHello(sh) => ServerAnswer::Sslv2(sh),
                        Sslv2Message::Error(code) => ServerAnswer::Sslv2Error(code),
                    }),
                    consumed,
                }),
            },
        };
    }
    if !(CT_CHANGE_CIPHER_SPEC..=24).contains(&b0) {
        return Err(not_tls(buf));
    }
    match buf.get(1) {
        None => return Ok(Progress::NeedMore),
        Some(3) => {}
        Some(_) => return Err(not_tls(buf)),
    }
    Tls::new(*opts).run(buf)
}

/// Describes bytes that are not TLS, for a person.
fn not_tls(buf: &[u8]) -> ParseError {
    let head = buf.get(..buf.len().min(48)).unwrap_or(buf);
    let kind = if head.starts_with(b"SSH-") {
        "an SSH banner"
    } else if head.starts_with(b"HTTP/") {
        "an HTTP response"
    } else if head.starts_with(b"220") {
        "an FTP or SMTP greeting"
    } else if head.starts_with(b"+OK") {
        "a POP3 greeting"
    } else if head.starts_with(b"* OK") {
        "an IMAP greeting"
    } else if head.starts_with(b"RFB ") {
        "a VNC banner"
    } else if head.first() == Some(&0x15) || head.first() == Some(&0x16) {
        "a record with a non-TLS version"
    } else if head
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        "a text banner"
    } else {
        "bytes that are not a TLS record"
    };
    let mut shown = String::new();
    for b in head {
        if b.is_ascii_graphic() || *b == b' ' {
            shown.push(char::from(*b));
        } else {
            shown.push_str(&format!("\\x{b:02x}"));
        }
    }
    ParseError::NotTls {
        hint: format!("{kind} (\"{shown}\")"),
    }
}

/// The state of one pass over the bytes.
struct Tls {
    opts: ParseOptions,
    /// Handshake bytes not yet forming a whole message.
    pending: Vec<u8>,
    server_hello: Option<ServerHello>,
    certificates: Option<Vec<Vec<u8>>>,
    certificate_status: Option<Vec<u8>>,
    key_exchange: Option<ServerKeyExchange>,
    certificate_request: bool,
    warnings: Vec<Alert>,
    skipped_ccs: bool,
}

impl Tls {
    fn new(opts: ParseOptions) -> Self {
        Tls {
            opts,
            pending: Vec::new(),
            server_hello: None,
            certificates: None,
            certificate_status: None,
            key_exchange: None,
            certificate_request: false,
            warnings: Vec::new(),
            skipped_ccs: false,
        }
    }

    fn run(mut self, buf: &[u8]) -> Result<Progress, ParseError> {
        let mut pos = 0usize;
        loop {
            let rest = buf.get(pos..).unwrap_or_default();
            if rest.len() < 5 {
                return Ok(Progress::NeedMore);
            }
            let hdr = match parse_tls_record_header(rest) {
                Ok((_, h)) => h,
                Err(_) => return Err(ParseError::malformed("unreadable record header")),
            };
            let ct = hdr.record_type.0;
            if hdr.version.0 >> 8 != 3 {
                return Err(if pos == 0 {
                    not_tls(buf)
                } else {
                    ParseError::malformed(format!("record with version {:#06x}", hdr.version.0))
                });
            }
            let len = usize::from(hdr.len);
            if len > MAX_RECORD_LEN {
                return Err(ParseError::RecordTooLarge {
                    announced: len,
                    limit: MAX_RECORD_LEN,
                });
            }
            let Some(payload) = rest.get(5..5 + len) else {
                if ct == CT_HANDSHAKE {
                    // Refuse an oversized message from its header, before its body.
                    self.check_pending_headers(rest.get(5..).unwrap_or_default())?;
                }
                return Ok(Progress::NeedMore);
            };
            let end = pos + 5 + len;
            let decided = match ct {
                CT_HANDSHAKE => self.on_handshake_record(payload)?,
                CT_ALERT => self.on_alert_record(payload)?,
                CT_CHANGE_CIPHER_SPEC => self.on_ccs(payload)?,
                CT_APPLICATION_DATA => {
                    if self.server_hello.is_none() {
                        return Err(ParseError::malformed(
                            "application data before the ServerHello",
                        ));
                    }
                    Some(self.finish(None, false)?)
                }
                other => {
                    return Err(ParseError::malformed(format!(
                        "unexpected record type {other}"
                    )))
                }
            };
            if let Some(answer) = decided {
                return Ok(Progress::Done {
                    answer: Box::new(answer),
                    consumed: end,
                });
            }
            pos = end;
        }
    }

    /// Checks the headers of the messages in `pending` + `partial` (an
    /// incomplete record's bytes) against [`MAX_HANDSHAKE_LEN`].
    fn check_pending_headers(&self, partial: &[u8]) -> Result<(), ParseError> {
        // `pending` starts with the header of the message in progress.
        let mut joined = Vec::with_capacity(self.pending.len() + partial.len());
        joined.extend_from_slice(&self.pending);
        joined.extend_from_slice(partial);
        let mut r = Reader::new(&joined);
        while r.remaining() >= 4 {
            let (Some(t), Some(len)) = (r.u8(), r.u24()) else {
                break;
            };
            check_message_len(t, len)?;
            if r.take(len).is_none() {
                break;
            }
        }
        Ok(())
    }

    fn on_handshake_record(&mut self, payload: &[u8]) -> Result<Option<ServerAnswer>, ParseError> {
        if payload.is_empty() {
            return Err(ParseError::malformed("empty handshake record"));
        }
        self.pending.extend_from_slice(payload);
        loop {
            let mut r = Reader::new(&self.pending);
            let (Some(t), Some(len)) = (r.u8(), r.u24()) else {
                return Ok(None);
            };
            check_message_len(t, len)?;
            let Some(body) = r.take(len) else {
                return Ok(None);
            };
            let body = body.to_vec();
            self.pending.drain(..4 + len);
            if let Some(answer) = self.on_message(t, &body)? {
                return Ok(Some(answer));
            }
        }
    }

    fn on_message(&mut self, t: u8, body: &[u8]) -> Result<Option<ServerAnswer>, ParseError> {
        if t == HS_HELLO_REQUEST {
            return if body.is_empty() {
                Ok(None)
            } else {
                Err(ParseError::malformed("HelloRequest with a body"))
            };
        }
        let Some(sh) = &self.server_hello else {
            if t != HS_SERVER_HELLO {
                return Err(ParseError::malformed(format!(
                    "expected a ServerHello, got {} ({t})",
                    handshake_name(t)
                )));
            }
            let sh = parse_server_hello(body)?;
            if sh.is_hrr {
                if self.opts.after_hrr {
                    return Err(ParseError::malformed("a second HelloRetryRequest"));
                }
                return Ok(Some(ServerAnswer::HelloRetryRequest(sh)));
            }
            let tls13 = sh.version == ProtocolVersion::Tls13.wire();
            self.server_hello = Some(sh);
            if tls13 || self.opts.stop_at == StopAt::ServerHello {
                return self.finish(None, false).map(Some);
            }
            return Ok(None);
        };
        match t {
            HS_CERTIFICATE => {
                if self.certificates.is_some() {
                    return Err(ParseError::malformed("a second Certificate message"));
                }
                self.certificates = Some(parse_certificates(body)?);
                if self.opts.stop_at == StopAt::Certificate {
                    return self.finish(None, false).map(Some);
                }
                Ok(None)
            }
            HS_CERTIFICATE_STATUS => {
                self.certificate_status = Some(body.to_vec());
                Ok(None)
            }
            HS_SERVER_KEY_EXCHANGE => {
                if self.key_exchange.is_some() {
                    return Err(ParseError::malformed("a second ServerKeyExchange"));
                }
                let params = parse_server_key_exchange(body, sh.cipher_suite)?;
                self.key_exchange = Some(ServerKeyExchange {
                    raw: body.to_vec(),
                    params,
                });
                Ok(None)
            }
            HS_CERTIFICATE_REQUEST => {
                self.certificate_request = true;
                Ok(None)
            }
            HS_SERVER_HELLO_DONE => {
                if !body.is_empty() {
                    return Err(ParseError::malformed("ServerHelloDone with a body"));
                }
                self.finish(None, true).map(Some)
            }
            other => Err(ParseError::malformed(format!(
                "unexpected {} ({other}) in the server's flight",
                handshake_name(other)
            ))),
        }
    }

    fn on_alert_record(&mut self, payload: &[u8]) -> Result<Option<ServerAnswer>, ParseError> {
        if payload.is_empty() || !payload.len().is_multiple_of(2) {
            return Err(ParseError::malformed(format!(
                "alert record of {} bytes",
                payload.len()
            )));
        }
        let mut rest = payload;
        while !rest.is_empty() {
            let alert = match parse_tls_message_alert(rest) {
                Ok((r, TlsMessage::Alert(a))) => {
                    rest = r;
                    Alert {
                        level: a.severity.0,
                        description: a.code.0,
                    }
                }
                _ => return Err(ParseError::malformed("unreadable alert")),
            };
            if alert.level == 1 && alert.description != 0 {
                if self.warnings.len() >= MAX_WARNINGS {
                    return Err(ParseError::malformed("too many warning alerts"));
                }
                self.warnings.push(alert);
                continue;
            }
            if self.server_hello.is_none() {
                return Ok(Some(ServerAnswer::Alert(alert)));
            }
            return self.finish(Some(alert), false).map(Some);
        }
        Ok(None)
    }

    fn on_ccs(&mut self, payload: &[u8]) -> Result<Option<ServerAnswer>, ParseError> {
        if payload != [1] {
            return Err(ParseError::malformed("malformed ChangeCipherSpec"));
        }
        if self.server_hello.is_some() {
            return self.finish(None, false).map(Some);
        }
        if self.opts.after_hrr && !self.skipped_ccs {
            self.skipped_ccs = true;
            return Ok(None);
        }
        Err(ParseError::malformed(
            "ChangeCipherSpec before the ServerHello",
        ))
    }

    fn finish(&mut self, alert: Option<Alert>, done: bool) -> Result<ServerAnswer, ParseError> {
        let Some(server_hello) = self.server_hello.take() else {
            return Err(ParseError::malformed("flight without a ServerHello"));
        };
        Ok(ServerAnswer::Handshake(ServerFlight {
            server_hello,
            certificates: self.certificates.take(),
            certificate_status: self.certificate_status.take(),
            key_exchange: self.key_exchange.take(),
            certificate_request: self.certificate_request,
            server_hello_done: done,
            alert,
            warnings: std::mem::take(&mut self.warnings),
        }))
    }
}

fn check_message_len(t: u8, len: usize) -> Result<(), ParseError> {
    if len > MAX_HANDSHAKE_LEN {
        return Err(ParseError::HandshakeTooLarge {
            kind: handshake_name(t),
            announced: len,
            limit: MAX_HANDSHAKE_LEN,
        });
    }
    Ok(())
}

/// Decodes a ServerHello body (SSLv3 to TLS 1.3, HelloRetryRequest included).
pub fn parse_server_hello(body: &[u8]) -> Result<ServerHello, ParseError> {
    let legacy = Reader::new(body)
        .u16()
        .ok_or_else(|| ParseError::malformed("ServerHello too short"))?;
    if !(0x0300..=0x0303).contains(&legacy) {
        return Err(ParseError::malformed(format!(
            "ServerHello with version {legacy:#06x}"
        )));
    }
    let (rest, sh) = parse_tls_handshake_server_hello(body)
        .map_err(|_| ParseError::malformed("ServerHello could not be decoded"))?;
    let ext_block: Option<&[u8]> = match (sh.ext, rest.is_empty()) {
        (Some(e), true) => Some(e),
        (None, true) => None,
        (None, false) if legacy == 0x0300 => {
            // tls-parser does not read SSLv3 extensions; RFC 5746 allows them.
            let mut r = Reader::new(rest);
            let e = r
                .vec_u16()
                .ok_or_else(|| ParseError::malformed("ServerHello extensions overrun"))?;
            if !r.is_empty() {
                return Err(ParseError::malformed(
                    "bytes after the ServerHello extensions",
                ));
            }
            Some(e)
        }
        _ => {
            return Err(ParseError::malformed(
                "ServerHello extensions overrun or trailing bytes",
            ))
        }
    };
    let mut random = [0u8; 32];
    if sh.random.len() != 32 {
        return Err(ParseError::malformed("ServerHello random is not 32 bytes"));
    }
    random.copy_from_slice(sh.random);
    let is_hrr = random == HRR_RANDOM;
    let downgrade_sentinel = match random.get(24..) {
        Some(tail) if tail.get(..7) == Some(b"DOWNGRD") => tail.get(7).copied().filter(|b| *b <= 1),
        _ => None,
    };
    let mut out = ServerHello {
        legacy_version: legacy,
        version: legacy,
        random,
        session_id: sh.session_id.map(<[u8]>::to_vec).unwrap_or_default(),
        cipher_suite: sh.cipher.0,
        compression: sh.compression.0,
        extensions: Vec::new(),
        selected_version: None,
        selected_group: None,
        key_share_len: None,
        cookie: None,
        is_hrr,
        secure_renegotiation: false,
        extended_master_secret: false,
        downgrade_sentinel,
    };
    if let Some(block) = ext_block {
        read_extensions(block, &mut out)?;
    }
    if let Some(v) = out.selected_version {
        out.version = v;
    }
    if out.is_hrr && out.version != ProtocolVersion::Tls13.wire() {
        return Err(ParseError::malformed(
            "HelloRetryRequest without supported_versions 0x0304",
        ));
    }
    Ok(out)
}

fn read_extensions(block: &[u8], out: &mut ServerHello) -> Result<(), ParseError> {
    let mut r = Reader::new(block);
    while !r.is_empty() {
        let start = r.rest();
        let (Some(t), Some(data)) = (r.u16(), r.vec_u16()) else {
            return Err(ParseError::malformed("ServerHello extension overrun"));
        };
        let whole = start.get(..4 + data.len()).unwrap_or_default();
        if out.extensions.contains(&t) {
            return Err(ParseError::malformed(format!(
                "extension {t} sent twice in the ServerHello"
            )));
        }
        out.extensions.push(t);
        let bad = || ParseError::malformed(format!("ServerHello extension {t} is malformed"));
        match t {
            EXT_SUPPORTED_VERSIONS => match parse_tls_server_hello_extension(whole) {
                Ok((_, TlsExtension::SupportedVersions(v))) if v.len() == 1 && data.len() == 2 => {
                    out.selected_version = v.first().map(|v| v.0);
                }
                _ => return Err(bad()),
            },
            EXT_KEY_SHARE => {
                let mut k = Reader::new(data);
                let group = k.u16().ok_or_else(bad)?;
                if !out.is_hrr {
                    let key = k.vec_u16().ok_or_else(bad)?;
                    out.key_share_len = Some(key.len());
                }
                if !k.is_empty() {
                    return Err(bad());
                }
                out.selected_group = Some(group);
            }
            EXT_COOKIE => {
                let mut c = Reader::new(data);
                match c.vec_u16() {
                    Some(cookie) if !cookie.is_empty() && c.is_empty() => {}
                    _ => return Err(bad()),
                }
                out.cookie = Some(data.to_vec());
            }
            EXT_RENEGOTIATION_INFO => match parse_tls_server_hello_extension(whole) {
                Ok((_, TlsExtension::RenegotiationInfo(_))) => out.secure_renegotiation = true,
                _ => return Err(bad()),
            },
            EXT_EXTENDED_MASTER_SECRET => match parse_tls_server_hello_extension(whole) {
                Ok((_, TlsExtension::ExtendedMasterSecret)) => out.extended_master_secret = true,
                _ => return Err(bad()),
            },
            _ => {}
        }
    }
    Ok(())
}

/// Decodes a (pre-TLS 1.3) Certificate message body into DER certificates.
fn parse_certificates(body: &[u8]) -> Result<Vec<Vec<u8>>, ParseError> {
    let list_len = Reader::new(body)
        .u24()
        .ok_or_else(|| ParseError::malformed("Certificate message too short"))?;
    if list_len + 3 != body.len() {
        return Err(ParseError::malformed(
            "Certificate list length disagrees with its message",
        ));
    }
    let certs = match parse_tls_handshake_msg_certificate(body) {
        Ok(([], TlsMessageHandshake::Certificate(c))) => c.cert_chain,
        _ => {
            return Err(ParseError::malformed(
                "Certificate message could not be decoded",
            ))
        }
    };
    let used: usize = certs.iter().map(|c| 3 + c.data.len()).sum();
    if used != list_len {
        return Err(ParseError::malformed(
            "a certificate overruns the Certificate list",
        ));
    }
    Ok(certs.into_iter().map(|c| c.data.to_vec()).collect())
}

/// Bit length of a big-endian unsigned number.
fn bit_len(be: &[u8]) -> u32 {
    let mut bytes = be.iter().skip_while(|b| **b == 0);
    match bytes.next() {
        None => 0,
        Some(first) => {
            let rest = bytes.count() as u32;
            rest * 8 + (8 - first.leading_zeros())
        }
    }
}

/// Decodes a ServerKeyExchange body for the negotiated `suite`, whose key
/// exchange says the format: DH parameters (p, g, Ys) for DHE/DH_anon/
/// DHE_PSK, ECDH parameters for ECDHE/ECDH_anon/ECDHE_PSK, an RSA key for
/// EXPORT RSA suites (PSK suites first carry an identity hint). The
/// signature that follows is not read.
pub fn parse_server_key_exchange(body: &[u8], suite: u16) -> Result<KeyExchangeParams, ParseError> {
    let Some(info) = suites::info(suite) else {
        return Ok(KeyExchangeParams::NotDecoded);
    };
    let bad = |what: &str| ParseError::malformed(format!("ServerKeyExchange: {what}"));
    let mut r = Reader::new(body);
    if info.kx.has_psk_hint() {
        r.vec_u16()
            .ok_or_else(|| bad("PSK identity hint overruns"))?;
    }
    if info.kx.sends_dh_params() {
        let (_, p) = parse_dh_params(r.rest()).map_err(|_| bad("DH parameters overrun"))?;
        if p.dh_p.is_empty() || p.dh_g.is_empty() {
            return Err(bad("empty DH prime or generator"));
        }
        return Ok(KeyExchangeParams::Dh(DhParams {
            prime_bits: bit_len(p.dh_p),
            prime: p.dh_p.to_vec(),
            generator: p.dh_g.to_vec(),
            public_bits: bit_len(p.dh_ys),
        }));
    }
    if info.kx.sends_ecdh_params() {
        let params = r.rest();
        return match r.u8() {
            Some(3) => {
                let group = r.u16().ok_or_else(|| bad("named curve missing"))?;
                let point = r.vec_u8().ok_or_else(|| bad("EC point overruns"))?;
                Ok(KeyExchangeParams::Ecdh {
                    curve: EcCurve::Named(group),
                    point_len: point.len(),
                })
            }
            Some(1) => {
                let (_, p) =
                    parse_ecdh_params(params).map_err(|_| bad("explicit curve overruns"))?;
                Ok(KeyExchangeParams::Ecdh {
                    curve: EcCurve::ExplicitPrime,
                    point_len: p.public.point.len(),
                })
            }
            Some(2) => Ok(KeyExchangeParams::Ecdh {
                curve: EcCurve::ExplicitChar2,
                point_len: 0,
            }),
            _ => Err(bad("unknown EC curve type")),
        };
    }
    if info.kx == KeyExchange::RsaStatic {
        let modulus = r.vec_u16().ok_or_else(|| bad("RSA modulus overruns"))?;
        r.vec_u16().ok_or_else(|| bad("RSA exponent overruns"))?;
        return Ok(KeyExchangeParams::RsaExport {
            modulus_bits: bit_len(modulus),
        });
    }
    Ok(KeyExchangeParams::NotDecoded)
}

#[cfg(test)]
mod tests {
    use super::super::groups;
    use super::super::testutil::*;
    use super::*;
    use proptest::prelude::*;

    fn done(buf: &[u8], opts: &ParseOptions) -> (ServerAnswer, usize) {
        match parse_answer(buf, opts).expect("parses") {
            Progress::Done { answer, consumed } => (*answer, consumed),
            Progress::NeedMore => panic!("undecided"),
        }
    }

    fn flight(a: ServerAnswer) -> ServerFlight {
        match a {
            ServerAnswer::Handshake(f) => f,
            other => panic!("not a flight: {other:?}"),
        }
    }

    #[test]
    fn a_tls12_flight_is_read_to_the_server_hello_done() {
        let bytes = tls12_flight(0xc02f, &ske_ecdh(groups::X25519, &[7; 32]));
        let (a, used) = done(&bytes, &ParseOptions::default());
        assert_eq!(used, bytes.len());
        let f = flight(a);
        assert_eq!(f.server_hello.version, 0x0303);
        assert_eq!(f.server_hello.cipher_suite, 0xc02f);
        assert!(f.server_hello.secure_renegotiation);
        assert_eq!(f.server_hello.extensions, vec![0xff01, 11]);
        assert_eq!(
            f.certificates,
            Some(vec![b"leaf-der".to_vec(), b"intermediate-der".to_vec()])
        );
        assert_eq!(
            f.key_exchange.unwrap().params,
            KeyExchangeParams::Ecdh {
                curve: EcCurve::Named(groups::X25519),
                point_len: 32
            }
        );
        assert!(f.server_hello_done);
        assert_eq!(f.server_hello.protocol(), Some(ProtocolVersion::Tls12));
    }

    #[test]
    fn every_prefix_of_a_flight_needs_more_and_never_errs() {
        let bytes = tls12_flight(0xc02f, &ske_ecdh(groups::X25519, &[7; 32]));
        for cut in 0..bytes.len() {
            assert_eq!(
                parse_answer(&bytes[..cut], &ParseOptions::default()),
                Ok(Progress::NeedMore),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_flight_split_into_one_byte_records_is_reassembled() {
        let mut msgs = server_hello(0x0303, [1; 32], 0x0033, Some(&ext(0xff01, &[0])));
        msgs.extend(certificate(&[b"leaf"]));
        msgs.extend(handshake(12, &ske_dh(&[0xff; 128], &[2], &[5; 128])));
        msgs.extend(handshake(14, &[]));
        let mut bytes = Vec::new();
        for b in &msgs {
            bytes.extend(record(22, 0x0303, &[*b]));
        }
        let (a, used) = done(&bytes, &ParseOptions::default());
        assert_eq!(used, bytes.len());
        let f = flight(a);
        let Some(ServerKeyExchange {
            params: KeyExchangeParams::Dh(dh),
            ..
        }) = f.key_exchange
        else {
            panic!("no DH params");
        };
        assert_eq!(dh.prime_bits, 1024);
        assert_eq!(dh.generator_value(), Some(2));
        assert_eq!(dh.public_bits, 1019);
    }

    #[test]
    fn stop_at_server_hello_and_certificate_decide_early() {
        let bytes = tls12_flight(0xc02f, &ske_ecdh(groups::X25519, &[7; 32]));
        let sh_only = ParseOptions {
            stop_at: StopAt::ServerHello,
            ..ParseOptions::default()
        };
        let (a, used) = done(&bytes, &sh_only);
        assert_eq!(used, bytes.len(), "one record holds the whole flight");
        let f = flight(a);
        assert!(f.certificates.is_none() && !f.server_hello_done);
        let to_cert = ParseOptions {
            stop_at: StopAt::Certificate,
            ..ParseOptions::default()
        };
        let f = flight(done(&bytes, &to_cert).0);
        assert!(f.certificates.is_some() && f.key_exchange.is_none());
    }

    #[test]
    fn a_tls13_server_hello_is_decided_at_once() {
        let mut exts = ext(43, &[0x03, 0x04]);
        let mut share = vec![0x00, 0x1d, 0x00, 0x20];
        share.extend([9u8; 32]);
        exts.extend(ext(51, &share));
        let mut bytes = record(
            22,
            0x0303,
            &server_hello(0x0303, [3; 32], 0x1301, Some(&exts)),
        );
        let first = bytes.len();
        bytes.extend(record(20, 0x0303, &[1]));
        bytes.extend(record(23, 0x0303, &[0xee; 40]));
        let (a, used) = done(&bytes, &ParseOptions::default());
        assert_eq!(used, first);
        let f = flight(a);
        assert_eq!(f.server_hello.version, 0x0304);
        assert_eq!(f.server_hello.legacy_version, 0x0303);
        assert_eq!(f.server_hello.selected_group, Some(groups::X25519));
        assert_eq!(f.server_hello.key_share_len, Some(32));
        assert_eq!(f.server_hello.protocol(), Some(ProtocolVersion::Tls13));
    }

    #[test]
    fn a_hello_retry_request_exposes_the_group_and_the_cookie() {
        let mut exts = ext(43, &[0x03, 0x04]);
        exts.extend(ext(51, &[0x00, 0x18]));
        exts.extend(ext(44, &[0x00, 0x02, 0xab, 0xcd]));
        let bytes = record(
            22,
            0x0303,
            &server_hello(0x0303, HRR_RANDOM, 0x1302, Some(&exts)),
        );
        let (a, _) = done(&bytes, &ParseOptions::default());
        let ServerAnswer::HelloRetryRequest(h) = a else {
            panic!("{a:?}")
        };
        assert!(h.is_hrr);
        assert_eq!(h.selected_group, Some(groups::SECP384R1));
        assert_eq!(h.cookie, Some(vec![0x00, 0x02, 0xab, 0xcd]));
        assert_eq!(h.cipher_suite, 0x1302);
        // After a retry, a second HRR is an error, and one CCS may precede the ServerHello.
        let after = ParseOptions {
            after_hrr: true,
            ..ParseOptions::default()
        };
        assert!(parse_answer(&bytes, &after).is_err());
        let mut exts = ext(43, &[0x03, 0x04]);
        exts.extend(ext(51, &[0x00, 0x18, 0x00, 0x01, 0x04]));
        let mut b2 = record(20, 0x0303, &[1]);
        b2.extend(record(
            22,
            0x0303,
            &server_hello(0x0303, [5; 32], 0x1302, Some(&exts)),
        ));
        let f = flight(done(&b2, &after).0);
        assert_eq!(f.server_hello.selected_group, Some(groups::SECP384R1));
        assert!(parse_answer(&b2, &ParseOptions::default()).is_err());
    }

    #[test]
    fn an_alert_before_the_server_hello_is_a_refusal() {
        let bytes = alert_record(2, 40);
        let (a, used) = done(&bytes, &ParseOptions::default());
        assert_eq!(used, 7);
        assert_eq!(
            a,
            ServerAnswer::Alert(Alert {
                level: 2,
                description: 40
            })
        );
        assert_eq!(
            Alert {
                level: 2,
                description: 70
            }
            .to_string(),
            "fatal alert protocol_version (70)"
        );
    }

    #[test]
    fn warning_alerts_are_kept_and_do_not_end_the_answer() {
        let mut bytes = alert_record(1, 112); // unrecognized_name
        bytes.extend(tls12_flight(0x009c, &[]));
        let f = flight(done(&bytes, &ParseOptions::default()).0);
        assert_eq!(
            f.warnings,
            vec![Alert {
                level: 1,
                description: 112
            }]
        );
        assert!(f.server_hello_done);
        let mut many = Vec::new();
        for _ in 0..=MAX_WARNINGS {
            many.extend(alert_record(1, 112));
        }
        assert!(parse_answer(&many, &ParseOptions::default()).is_err());
    }

    #[test]
    fn an_alert_after_the_server_hello_ends_the_flight() {
        let mut bytes = record(22, 0x0303, &server_hello(0x0303, [1; 32], 0xc02f, None));
        bytes.extend(alert_record(2, 80));
        let f = flight(done(&bytes, &ParseOptions::default()).0);
        assert_eq!(
            f.alert,
            Some(Alert {
                level: 2,
                description: 80
            })
        );
        assert!(!f.server_hello_done);
    }

    #[test]
    fn parser_refuses_an_oversized_record_from_its_header() {
        let hdr = [22u8, 3, 3, 0x50, 0x01];
        assert_eq!(
            parse_answer(&hdr, &ParseOptions::default()),
            Err(ParseError::RecordTooLarge {
                announced: 0x5001,
                limit: MAX_RECORD_LEN
            })
        );
    }

    #[test]
    fn parser_refuses_a_16_mib_certificate_from_its_header() {
        let mut bytes = record(22, 0x0303, &server_hello(0x0303, [1; 32], 0xc02f, None));
        // A full-size record starting a Certificate of 0xFFFFFF bytes; only 4
        // bytes of it have arrived.
        bytes.extend([22, 3, 3, 0x40, 0x00, 11, 0xff, 0xff, 0xff]);
        let err = parse_answer(&bytes, &ParseOptions::default()).unwrap_err();
        assert_eq!(
            err,
            ParseError::HandshakeTooLarge {
                kind: "Certificate",
                announced: 0xff_ffff,
                limit: MAX_HANDSHAKE_LEN
            }
        );
        assert!(err.to_string().contains("16777215"));
    }

    #[test]
    fn other_protocols_are_named_in_the_error() {
        for (bytes, word) in [
            (&b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n"[..], "SSH"),
            (&b"HTTP/1.1 400 Bad Request\r\n"[..], "HTTP"),
            (&b"220 ftp ready\r\n"[..], "FTP"),
            (&[0x00, 0x01, 0x02][..], "not a TLS record"),
            (&[0x16, 0x01][..], "non-TLS version"),
            (&[0x80, 0x05, 0x09][..], "not a TLS record"),
        ] {
            match parse_answer(bytes, &ParseOptions::default()) {
                Err(ParseError::NotTls { hint }) => assert!(hint.contains(word), "{hint}"),
                other => panic!("{bytes:?}: {other:?}"),
            }
        }
        assert_eq!(
            parse_answer(b"", &ParseOptions::default()),
            Ok(Progress::NeedMore)
        );
        assert_eq!(
            parse_answer(&[0x16], &ParseOptions::default()),
            Ok(Progress::NeedMore)
        );
    }

    #[test]
    fn an_sslv2_server_hello_is_recognised() {
        let rec = sslv2::server_hello_record(b"DER", &[sslv2::RC4_128_WITH_MD5], &[1; 16]);
        let (a, used) = done(&rec, &ParseOptions::default());
        assert_eq!(used, rec.len());
        let ServerAnswer::Sslv2(sh) = a else {
            panic!("{a:?}")
        };
        assert_eq!(sh.cipher_specs, vec![sslv2::RC4_128_WITH_MD5]);
        assert_eq!(sh.certificate, b"DER");
    }

    #[test]
    fn protocol_violations_are_malformed_not_panics() {
        let opts = ParseOptions::default();
        // A Certificate before the ServerHello.
        let b = record(22, 0x0303, &certificate(&[b"x"]));
        assert!(matches!(
            parse_answer(&b, &opts),
            Err(ParseError::Malformed { .. })
        ));
        // A certificate entry overrunning its list.
        let mut sh = record(22, 0x0303, &server_hello(0x0303, [1; 32], 0xc02f, None));
        sh.extend(record(22, 0x0303, &handshake(11, &[0, 0, 4, 0, 0, 9, 1])));
        assert!(matches!(
            parse_answer(&sh, &opts),
            Err(ParseError::Malformed { .. })
        ));
        // A ServerHello claiming TLS 1.3 as its legacy version.
        let b = record(22, 0x0303, &server_hello(0x0304, [1; 32], 0x1301, None));
        assert!(parse_answer(&b, &opts).is_err());
        // An empty handshake record, a 3-byte alert, application data first.
        assert!(parse_answer(&record(22, 0x0303, &[]), &opts).is_err());
        assert!(parse_answer(&record(21, 0x0303, &[2, 40, 0]), &opts).is_err());
        assert!(parse_answer(&record(23, 0x0303, &[0; 4]), &opts).is_err());
        // Duplicate extension.
        let mut exts = ext(0xff01, &[0]);
        exts.extend(ext(0xff01, &[0]));
        let b = record(
            22,
            0x0303,
            &server_hello(0x0303, [1; 32], 0xc02f, Some(&exts)),
        );
        assert!(parse_answer(&b, &opts).is_err());
    }

    #[test]
    fn sslv3_server_hello_with_extensions_is_read() {
        let b = record(
            22,
            0x0300,
            &server_hello(0x0300, [1; 32], 0x000a, Some(&ext(0xff01, &[0]))),
        );
        let opts = ParseOptions {
            stop_at: StopAt::ServerHello,
            ..ParseOptions::default()
        };
        let f = flight(done(&b, &opts).0);
        assert_eq!(f.server_hello.protocol(), Some(ProtocolVersion::Ssl3));
        assert!(f.server_hello.secure_renegotiation);
        let b = record(22, 0x0300, &server_hello(0x0300, [1; 32], 0x000a, None));
        assert_eq!(
            flight(done(&b, &opts).0).server_hello.extensions,
            Vec::<u16>::new()
        );
    }

    #[test]
    fn downgrade_sentinel_is_reported() {
        let mut random = [1u8; 32];
        random[24..].copy_from_slice(b"DOWNGRD\x01");
        let b = record(22, 0x0303, &server_hello(0x0303, random, 0xc02f, None));
        let opts = ParseOptions {
            stop_at: StopAt::ServerHello,
            ..ParseOptions::default()
        };
        assert_eq!(
            flight(done(&b, &opts).0).server_hello.downgrade_sentinel,
            Some(1)
        );
    }

    #[test]
    fn key_exchange_parameters_follow_the_suite() {
        // DHE_RSA: p of 2048 bits, g = 5.
        let mut p = vec![0x00, 0x80];
        p.extend([0x11; 255]);
        let body = ske_dh(&p, &[5], &[1; 256]);
        let KeyExchangeParams::Dh(dh) = parse_server_key_exchange(&body, 0x0033).unwrap() else {
            panic!()
        };
        assert_eq!((dh.prime_bits, dh.generator_value()), (2048, Some(5)));
        // ECDHE: named curve.
        let body = ske_ecdh(groups::SECP384R1, &[4; 97]);
        assert_eq!(
            parse_server_key_exchange(&body, 0xc030).unwrap(),
            KeyExchangeParams::Ecdh {
                curve: EcCurve::Named(groups::SECP384R1),
                point_len: 97
            }
        );
        // DHE_PSK: hint first.
        let mut body = vec![0x00, 0x02, b'h', b'i'];
        body.extend(ske_dh(&[0xc5; 64], &[2], &[3; 64]));
        let KeyExchangeParams::Dh(dh) = parse_server_key_exchange(&body, 0x00aa).unwrap() else {
            panic!()
        };
        assert_eq!(dh.prime_bits, 512);
        // RSA EXPORT: a 512-bit temporary key.
        let mut body = vec![0x00, 0x40];
        body.extend([0xaa; 64]);
        body.extend([0x00, 0x03, 1, 0, 1]);
        assert_eq!(
            parse_server_key_exchange(&body, 0x0003).unwrap(),
            KeyExchangeParams::RsaExport { modulus_bits: 512 }
        );
        // Truncated parameters, unknown suites.
        assert!(parse_server_key_exchange(&[0x00, 0x80, 1], 0x0033).is_err());
        assert!(parse_server_key_exchange(&[9], 0xc02f).is_err());
        assert_eq!(
            parse_server_key_exchange(&[1, 2, 3], 0xfefe).unwrap(),
            KeyExchangeParams::NotDecoded
        );
    }

    #[test]
    fn bit_lengths_ignore_leading_zeros() {
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(bit_len(&[0, 0]), 0);
        assert_eq!(bit_len(&[1]), 1);
        assert_eq!(bit_len(&[0, 0x80, 0]), 16);
        assert_eq!(bit_len(&[0xff; 128]), 1024);
    }

    fn check_bounded(bytes: &[u8]) {
        for opts in [
            ParseOptions::default(),
            ParseOptions {
                stop_at: StopAt::ServerHello,
                after_hrr: true,
            },
        ] {
            if let Ok(Progress::Done { answer, consumed }) = parse_answer(bytes, &opts) {
                assert!(
                    consumed <= bytes.len(),
                    "claims {consumed} of {}",
                    bytes.len()
                );
                if let ServerAnswer::Handshake(f) = &*answer {
                    let cert_bytes: usize = f.certificates.iter().flatten().map(Vec::len).sum();
                    assert!(cert_bytes <= consumed);
                    assert!(f.server_hello.session_id.len() <= 32);
                }
                if let ServerAnswer::Sslv2(s) = &*answer {
                    assert!(s.certificate.len() <= consumed);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes_never_panic_nor_overclaim(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            check_bounded(&bytes);
        }

        #[test]
        fn arbitrary_records_never_panic_nor_overclaim(
            ct in 20u8..25,
            ver in 0x0300u16..0x0305,
            body in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            let mut b = record(ct, ver, &body);
            check_bounded(&b);
            // And as the continuation of a real ServerHello.
            let mut sh = record(22, 0x0303, &server_hello(0x0303, [1; 32], 0x0033, None));
            sh.append(&mut b);
            check_bounded(&sh);
        }

        #[test]
        fn mutated_real_flights_never_panic_nor_overclaim(
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            cut in any::<usize>(),
        ) {
            let mut b = tls12_flight(0x0033, &ske_dh(&[0xf1; 256], &[2], &[7; 256]));
            for (at, v) in flips {
                let i = at % b.len();
                b[i] = v;
            }
            let cut = cut % (b.len() + 1);
            check_bounded(&b[..cut]);
            check_bounded(&b);
        }
    }
}
