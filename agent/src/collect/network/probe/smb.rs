//! SMB: is SMBv1 accepted, which SMB2/3 dialect and signing policy, and
//! what the server's NTLMSSP CHALLENGE says about its Windows version and
//! names.
//!
//! Sends, on two connections (each preceded, on port 139 only, by a
//! NetBIOS session request for `*SMBSERVER`):
//! 1. an SMB1 `SMB_COM_NEGOTIATE` offering only `NT LM 0.12` ([MS-CIFS]
//!    2.2.4.52, [MS-SMB] 2.2.4.5); if accepted with extended security, one
//!    `SMB_COM_SESSION_SETUP_ANDX` ([MS-SMB] 2.2.4.6.1) whose security blob
//!    is a SPNEGO NegTokenInit carrying an NTLMSSP NEGOTIATE ([MS-NLMP]
//!    2.2.1.1), to read the CHALLENGE, NativeOS and NativeLanMan;
//! 2. an SMB2 `NEGOTIATE` ([MS-SMB2] 2.2.3) offering 2.0.2, 2.1, 3.0, 3.0.2
//!    and 3.1.1 (with the preauth-integrity and encryption contexts 3.1.1
//!    requires), signing enabled; then one `SESSION_SETUP` ([MS-SMB2]
//!    2.2.5) with the same NTLMSSP NEGOTIATE.
//!
//! Never sends an NTLMSSP AUTHENTICATE, credentials, a TREE_CONNECT or any
//! file operation; the half-made session dies with the connection.
//!
//! Framing: each message is preceded by a 4-byte header: type `00` and a
//! 24-bit big-endian length (direct TCP, [MS-SMB2] 2.1), which is also the
//! RFC 1002 session message for the lengths seen here. Keep-alives (`85`)
//! are skipped, at most [`MAX_KEEPALIVES`].
//!
//! Samba note: Samba announces NTLMSSP version 6.1 build 0 and SMB1
//! NativeOS "Windows 6.1"; a real Windows 7 says build 7600/7601. Telling
//! them apart is the fingerprint rules' job; this module reports exactly
//! what the server said.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::bytes::{le16, le32, le64, slice, u8_at};
use super::snmp::{ber_oid, ber_tlv};
use super::{clean_text, Conn, ParseError, ProbeError, ProbeLimits};

/// Keep-alive frames skipped while waiting for one answer.
pub const MAX_KEEPALIVES: usize = 4;
/// Most AV pairs read from a CHALLENGE's target info.
const MAX_AV_PAIRS: usize = 64;
/// Longest UTF-16 name kept, in code units.
const MAX_NAME_UNITS: usize = 256;

const SMB1_MAGIC: &[u8; 4] = b"\xffSMB";
const SMB2_MAGIC: &[u8; 4] = b"\xfeSMB";
const SMB_COM_NEGOTIATE: u8 = 0x72;
const SMB_COM_SESSION_SETUP_ANDX: u8 = 0x73;
/// Flags2: UNICODE | NT_STATUS | EXTENDED_SECURITY | LONG_NAMES.
const SMB1_FLAGS2: u16 = 0xC801;
const FLAGS2_UNICODE: u16 = 0x8000;
const CAP_EXTENDED_SECURITY: u32 = 0x8000_0000;
const STATUS_SUCCESS: u32 = 0;
const STATUS_MORE_PROCESSING_REQUIRED: u32 = 0xC000_0016;
const STATUS_PENDING: u32 = 0x0000_0103;

/// NTLMSSP flags sent: UNICODE | OEM | REQUEST_TARGET | NTLM | ALWAYS_SIGN
/// | EXTENDED_SESSIONSECURITY | VERSION | 128 | 56.
pub const NTLM_NEGOTIATE_FLAGS: u32 = 0xA208_8207;
const NTLMSSP_NEGOTIATE_VERSION: u32 = 0x0200_0000;
const NTLMSSP_SIGNATURE: &[u8; 8] = b"NTLMSSP\0";
/// SPNEGO 1.3.6.1.5.5.2 and NTLMSSP 1.3.6.1.4.1.311.2.2.10.
const OID_SPNEGO: &[u32] = &[1, 3, 6, 1, 5, 5, 2];
const OID_NTLMSSP: &[u32] = &[1, 3, 6, 1, 4, 1, 311, 2, 2, 10];

/// SMB2 dialects offered, oldest first.
pub const SMB2_DIALECTS: [u16; 5] = [0x0202, 0x0210, 0x0300, 0x0302, 0x0311];

// ------------------------------------------------------------ framing

/// Wraps an SMB message in the 4-byte direct-TCP header.
pub fn frame(msg: &[u8]) -> Vec<u8> {
    let len = msg.len() as u32; // our messages are a few hundred bytes
    let mut out = vec![0x00];
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(msg);
    out
}

/// Total length of the frame at the start of `b` (header included).
pub fn frame_len(b: &[u8]) -> Result<usize, ParseError> {
    let kind = u8_at(b, 0, "netbios header")?;
    let h = slice(b, 0, 4, "netbios header")?;
    let len = match kind {
        0x00 => usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]),
        0x82..=0x85 => (usize::from(h[1]) & 1) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]),
        _ => return Err(ParseError::invalid("netbios message type")),
    };
    Ok(4 + len)
}

/// RFC 1002 first-level encoding of a 16-byte NetBIOS name (15 characters
/// padded with spaces, then `suffix`).
fn netbios_name(name: &str, suffix: u8) -> Vec<u8> {
    let mut raw = [b' '; 16];
    for (r, c) in raw.iter_mut().zip(name.bytes().take(15)) {
        *r = c.to_ascii_uppercase();
    }
    raw[15] = suffix;
    let mut out = vec![0x20];
    for b in raw {
        out.push(b'A' + (b >> 4));
        out.push(b'A' + (b & 0x0f));
    }
    out.push(0x00);
    out
}

/// RFC 1002 4.3.2 SESSION REQUEST for `*SMBSERVER` from `TRUSTWATCH`.
pub fn encode_session_request() -> Vec<u8> {
    let mut body = netbios_name("*SMBSERVER", 0x20);
    body.extend(netbios_name("TRUSTWATCH", 0x00));
    let mut out = vec![0x81, 0x00];
    out.extend_from_slice(&(body.len() as u16).to_be_bytes()); // 68
    out.extend(body);
    out
}

// ------------------------------------------------------------ NTLMSSP

/// The NTLMSSP NEGOTIATE message ([MS-NLMP] 2.2.1.1): no domain, no
/// workstation, VERSION 0.0.0 revision 15.
pub fn encode_ntlmssp_negotiate() -> Vec<u8> {
    let mut m = NTLMSSP_SIGNATURE.to_vec();
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&NTLM_NEGOTIATE_FLAGS.to_le_bytes());
    // DomainNameFields, WorkstationFields: empty, offset at the end (40).
    for _ in 0..2 {
        m.extend_from_slice(&[0, 0, 0, 0]);
        m.extend_from_slice(&40u32.to_le_bytes());
    }
    m.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x0f]);
    m
}

/// A SPNEGO NegTokenInit (RFC 4178) offering NTLMSSP with `token`.
pub fn spnego_init(token: &[u8]) -> Vec<u8> {
    let mech_types = ber_tlv(0xa0, &ber_tlv(0x30, &ber_oid(OID_NTLMSSP)));
    let mech_token = ber_tlv(0xa2, &ber_tlv(0x04, token));
    let init = ber_tlv(0xa0, &ber_tlv(0x30, &[mech_types, mech_token].concat()));
    ber_tlv(0x60, &[ber_oid(OID_SPNEGO), init].concat())
}

/// The VERSION structure ([MS-NLMP] 2.2.2.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NtlmVersion {
    pub major: u8,
    pub minor: u8,
    pub build: u16,
    /// NTLMRevisionCurrent (15 for current Windows).
    pub revision: u8,
}

impl std::fmt::Display for NtlmVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)
    }
}

/// What an NTLMSSP CHALLENGE ([MS-NLMP] 2.2.1.2) tells about the server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NtlmChallenge {
    pub flags: u32,
    /// Present when the server set NTLMSSP_NEGOTIATE_VERSION.
    pub version: Option<NtlmVersion>,
    pub target_name: Option<String>,
    pub netbios_computer: Option<String>,
    pub netbios_domain: Option<String>,
    pub dns_computer: Option<String>,
    pub dns_domain: Option<String>,
    pub dns_tree: Option<String>,
    /// MsvAvTimestamp (FILETIME), when given.
    pub timestamp: Option<u64>,
}

/// Finds and parses the NTLMSSP CHALLENGE inside a security blob (raw or
/// wrapped in SPNEGO: the message is located by its signature).
pub fn parse_ntlmssp_in_blob(blob: &[u8]) -> Result<NtlmChallenge, ParseError> {
    let start = blob
        .windows(12)
        .position(|w| {
            w.get(..8) == Some(&NTLMSSP_SIGNATURE[..]) && w.get(8..12) == Some(&[2, 0, 0, 0])
        })
        .ok_or(ParseError::invalid("no ntlmssp challenge in security blob"))?;
    parse_ntlmssp_challenge(blob.get(start..).unwrap_or_default())
}

/// Parses an NTLMSSP CHALLENGE message starting at `m[0]`.
pub fn parse_ntlmssp_challenge(m: &[u8]) -> Result<NtlmChallenge, ParseError> {
    if slice(m, 0, 8, "ntlmssp signature")? != NTLMSSP_SIGNATURE {
        return Err(ParseError::invalid("ntlmssp signature"));
    }
    if le32(m, 8, "ntlmssp message type")? != 2 {
        return Err(ParseError::invalid("ntlmssp message type"));
    }
    let (name_len, name_off) = fields(m, 12)?;
    let flags = le32(m, 20, "ntlmssp flags")?;
    let (info_len, info_off) = fields(m, 40)?;
    let unicode = flags & 1 != 0;
    let mut out = NtlmChallenge {
        flags,
        ..NtlmChallenge::default()
    };
    // The payload starts after the version field when there is one: a
    // version is only read where no payload can be.
    let payload_start = [(name_len, name_off), (info_len, info_off)]
        .iter()
        .filter(|(l, _)| *l > 0)
        .map(|(_, o)| *o)
        .min()
        .unwrap_or(usize::MAX);
    if flags & NTLMSSP_NEGOTIATE_VERSION != 0 && payload_start >= 56 {
        if let Ok(v) = slice(m, 48, 8, "ntlmssp version") {
            out.version = Some(NtlmVersion {
                major: v[0],
                minor: v[1],
                build: u16::from_le_bytes([v[2], v[3]]),
                revision: v[7],
            });
        }
    }
    if name_len > 0 {
        let raw = slice(m, name_off, name_len, "ntlmssp target name")?;
        out.target_name = Some(if unicode { utf16(raw) } else { clean_text(raw) });
    }
    if info_len > 0 {
        let info = slice(m, info_off, info_len, "ntlmssp target info")?;
        let mut at = 0usize;
        for _ in 0..MAX_AV_PAIRS {
            let id = le16(info, at, "av pair id")?;
            let len = usize::from(le16(info, at + 2, "av pair length")?);
            let value = slice(info, at + 4, len, "av pair value")?;
            at += 4 + len;
            match id {
                0 => break, // MsvAvEOL
                1 => out.netbios_computer = name(value),
                2 => out.netbios_domain = name(value),
                3 => out.dns_computer = name(value),
                4 => out.dns_domain = name(value),
                5 => out.dns_tree = name(value),
                7 => out.timestamp = le64(value, 0, "av timestamp").ok(),
                _ => {}
            }
        }
    }
    Ok(out)
}

/// (length, offset) of an NTLMSSP `*Fields` structure at `at`.
fn fields(m: &[u8], at: usize) -> Result<(usize, usize), ParseError> {
    let len = usize::from(le16(m, at, "ntlmssp fields")?);
    let off = usize::try_from(le32(m, at + 4, "ntlmssp fields")?)
        .map_err(|_| ParseError::invalid("ntlmssp offset"))?;
    Ok((len, off))
}

/// UTF-16LE text (an odd trailing byte is dropped), cleaned and capped.
fn utf16(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .take(MAX_NAME_UNITS)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    clean_text(String::from_utf16_lossy(&units).as_bytes())
}

/// A UTF-16LE name; `None` when empty.
fn name(b: &[u8]) -> Option<String> {
    Some(utf16(b)).filter(|s| !s.is_empty())
}

/// A NUL-terminated UTF-16LE string at `at`: the text and the position
/// after its terminator (the end of `b` when unterminated).
fn utf16z(b: &[u8], at: usize) -> (String, usize) {
    let rest = b.get(at..).unwrap_or_default();
    let mut end = rest.len() & !1;
    let mut next = rest.len();
    for (i, c) in rest.chunks_exact(2).enumerate() {
        if c == [0, 0] {
            end = i * 2;
            next = i * 2 + 2;
            break;
        }
    }
    (utf16(rest.get(..end).unwrap_or_default()), at + next)
}

/// A NUL-terminated 8-bit string at `at`.
fn asciiz(b: &[u8], at: usize) -> (String, usize) {
    let rest = b.get(at..).unwrap_or_default();
    match rest.iter().position(|&c| c == 0) {
        Some(i) => (clean_text(rest.get(..i).unwrap_or_default()), at + i + 1),
        None => (clean_text(rest), b.len()),
    }
}

// ------------------------------------------------------------ SMB1

fn smb1_header(command: u8, mid: u16) -> Vec<u8> {
    let mut h = SMB1_MAGIC.to_vec();
    h.push(command);
    h.extend_from_slice(&[0, 0, 0, 0]); // status
    h.push(0x18); // flags: case-insensitive, canonicalized paths
    h.extend_from_slice(&SMB1_FLAGS2.to_le_bytes());
    h.extend_from_slice(&[0, 0]); // PIDHigh
    h.extend_from_slice(&[0; 8]); // SecurityFeatures
    h.extend_from_slice(&[0, 0]); // reserved
    h.extend_from_slice(&[0, 0]); // TID
    h.extend_from_slice(&0xFEFFu16.to_le_bytes()); // PIDLow
    h.extend_from_slice(&[0, 0]); // UID
    h.extend_from_slice(&mid.to_le_bytes());
    h
}

/// SMB_COM_NEGOTIATE offering only "NT LM 0.12" (without the 4-byte frame).
pub fn encode_smb1_negotiate() -> Vec<u8> {
    let mut m = smb1_header(SMB_COM_NEGOTIATE, 1);
    m.push(0); // WordCount
    let dialects = b"\x02NT LM 0.12\x00";
    m.extend_from_slice(&(dialects.len() as u16).to_le_bytes());
    m.extend_from_slice(dialects);
    m
}

/// SMB_COM_SESSION_SETUP_ANDX, extended security form, with `blob`
/// (without the 4-byte frame). NativeOS and NativeLanMan are empty.
pub fn encode_smb1_session_setup(blob: &[u8]) -> Vec<u8> {
    let mut m = smb1_header(SMB_COM_SESSION_SETUP_ANDX, 2);
    m.push(12); // WordCount
    m.extend_from_slice(&[0xFF, 0x00, 0x00, 0x00]); // no AndX
    m.extend_from_slice(&4356u16.to_le_bytes()); // MaxBufferSize
    m.extend_from_slice(&1u16.to_le_bytes()); // MaxMpxCount
                                              // VcNumber 1: a 0 asks Windows to drop other sessions from this client.
    m.extend_from_slice(&1u16.to_le_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]); // SessionKey
    m.extend_from_slice(&(blob.len() as u16).to_le_bytes()); // a small blob
    m.extend_from_slice(&[0, 0, 0, 0]); // reserved
                                        // Capabilities: EXTENDED_SECURITY | STATUS32 | NT_SMBS | LARGE_FILES | UNICODE.
    m.extend_from_slice(&0x8000_005Cu32.to_le_bytes());
    let mut bytes = blob.to_vec();
    // Unicode strings start at an even offset from the SMB header.
    if (m.len() + 2 + bytes.len()) % 2 == 1 {
        bytes.push(0);
    }
    bytes.extend_from_slice(&[0, 0, 0, 0]); // NativeOS "", NativeLanMan ""
    m.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    m.extend(bytes);
    m
}

/// The SMB1 negotiate answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum Smb1Negotiate {
    /// NT LM 0.12 selected.
    Accepted(Smb1Dialect),
    /// The server answered but selected no dialect (or an error status).
    Refused { reason: String },
}

/// The NT LM 0.12 negotiate response ([MS-SMB] 2.2.4.5.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Smb1Dialect {
    pub security_mode: u8,
    pub signing_enabled: bool,
    pub signing_required: bool,
    pub capabilities: u32,
    pub extended_security: bool,
    /// Domain and server names (non-extended-security responses only).
    pub domain: Option<String>,
    pub server: Option<String>,
}

/// Parses the answer to [`encode_smb1_negotiate`] (the SMB message,
/// without the 4-byte frame).
pub fn parse_smb1_negotiate(m: &[u8]) -> Result<Smb1Negotiate, ParseError> {
    let magic = slice(m, 0, 4, "smb header")?;
    if magic == SMB2_MAGIC {
        return Ok(Smb1Negotiate::Refused {
            reason: "answered with SMB2".into(),
        });
    }
    if magic != SMB1_MAGIC {
        return Err(ParseError::invalid("smb1 signature"));
    }
    if u8_at(m, 4, "smb1 command")? != SMB_COM_NEGOTIATE {
        return Err(ParseError::invalid("smb1 command"));
    }
    let status = le32(m, 5, "smb1 status")?;
    if status != STATUS_SUCCESS {
        return Ok(Smb1Negotiate::Refused {
            reason: format!("status 0x{status:08x}"),
        });
    }
    let flags2 = le16(m, 10, "smb1 flags2")?;
    let words = usize::from(u8_at(m, 32, "smb1 word count")?);
    let dialect = le16(m, 33, "smb1 dialect index")?;
    if dialect == 0xFFFF {
        return Ok(Smb1Negotiate::Refused {
            reason: "no dialect accepted".into(),
        });
    }
    if dialect != 0 {
        return Err(ParseError::invalid("smb1 dialect index"));
    }
    if words != 17 {
        return Err(ParseError::invalid("smb1 negotiate word count"));
    }
    let security_mode = u8_at(m, 35, "smb1 security mode")?;
    let capabilities = le32(m, 33 + 19, "smb1 capabilities")?;
    let challenge_len = usize::from(u8_at(m, 33 + 33, "smb1 challenge length")?);
    let byte_count = usize::from(le16(m, 33 + 34, "smb1 byte count")?);
    let bytes = slice(m, 33 + 36, byte_count, "smb1 negotiate bytes")?;
    let extended_security = capabilities & CAP_EXTENDED_SECURITY != 0;
    let (mut domain, mut server) = (None, None);
    if !extended_security && challenge_len <= bytes.len() {
        let (d, next) = if flags2 & FLAGS2_UNICODE != 0 {
            utf16z(bytes, challenge_len)
        } else {
            asciiz(bytes, challenge_len)
        };
        let (s, _) = if flags2 & FLAGS2_UNICODE != 0 {
            utf16z(bytes, next)
        } else {
            asciiz(bytes, next)
        };
        domain = Some(d).filter(|d| !d.is_empty());
        server = Some(s).filter(|s| !s.is_empty());
    }
    Ok(Smb1Negotiate::Accepted(Smb1Dialect {
        security_mode,
        signing_enabled: security_mode & 0x04 != 0,
        signing_required: security_mode & 0x08 != 0,
        capabilities,
        extended_security,
        domain,
        server,
    }))
}

/// The SMB1 session setup answer ([MS-SMB] 2.2.4.6.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Smb1SessionSetup {
    pub status: u32,
    pub ntlm: Option<NtlmChallenge>,
    pub native_os: Option<String>,
    pub native_lanman: Option<String>,
    pub primary_domain: Option<String>,
}

/// Parses the answer to [`encode_smb1_session_setup`].
pub fn parse_smb1_session_setup(m: &[u8]) -> Result<Smb1SessionSetup, ParseError> {
    if slice(m, 0, 4, "smb header")? != SMB1_MAGIC {
        return Err(ParseError::invalid("smb1 signature"));
    }
    if u8_at(m, 4, "smb1 command")? != SMB_COM_SESSION_SETUP_ANDX {
        return Err(ParseError::invalid("smb1 command"));
    }
    let status = le32(m, 5, "smb1 status")?;
    let flags2 = le16(m, 10, "smb1 flags2")?;
    let words = usize::from(u8_at(m, 32, "smb1 word count")?);
    let mut out = Smb1SessionSetup {
        status,
        ntlm: None,
        native_os: None,
        native_lanman: None,
        primary_domain: None,
    };
    if words == 0 {
        // An error answer carries no parameters.
        return Ok(out);
    }
    if words != 4 && words != 3 {
        return Err(ParseError::invalid("smb1 session setup word count"));
    }
    let bytes_at = 33 + 2 * words + 2;
    let byte_count = usize::from(le16(m, 33 + 2 * words, "smb1 byte count")?);
    let bytes = slice(m, bytes_at, byte_count, "smb1 session setup bytes")?;
    let mut at = 0usize;
    if words == 4 {
        let blob_len = usize::from(le16(m, 33 + 6, "smb1 security blob length")?);
        let blob = slice(bytes, 0, blob_len, "smb1 security blob")?;
        out.ntlm = parse_ntlmssp_in_blob(blob).ok();
        at = blob_len;
    }
    let unicode = flags2 & FLAGS2_UNICODE != 0;
    if unicode && (bytes_at + at) % 2 == 1 {
        at += 1;
    }
    let mut strings = Vec::new();
    for _ in 0..3 {
        if at >= bytes.len() {
            break;
        }
        let (s, next) = if unicode {
            utf16z(bytes, at)
        } else {
            asciiz(bytes, at)
        };
        strings.push(Some(s).filter(|s| !s.is_empty()));
        at = next;
    }
    let mut it = strings.into_iter();
    out.native_os = it.next().flatten();
    out.native_lanman = it.next().flatten();
    out.primary_domain = it.next().flatten();
    Ok(out)
}

// ------------------------------------------------------------ SMB2

fn smb2_header(command: u16, message_id: u64, credit_charge: u16) -> Vec<u8> {
    let mut h = SMB2_MAGIC.to_vec();
    h.extend_from_slice(&64u16.to_le_bytes()); // StructureSize
    h.extend_from_slice(&credit_charge.to_le_bytes());
    h.extend_from_slice(&[0, 0, 0, 0]); // Status
    h.extend_from_slice(&command.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // CreditRequest
    h.extend_from_slice(&[0, 0, 0, 0]); // Flags
    h.extend_from_slice(&[0, 0, 0, 0]); // NextCommand
    h.extend_from_slice(&message_id.to_le_bytes());
    h.extend_from_slice(&0xFEFFu32.to_le_bytes()); // Reserved (ProcessId)
    h.extend_from_slice(&[0, 0, 0, 0]); // TreeId
    h.extend_from_slice(&[0; 8]); // SessionId
    h.extend_from_slice(&[0; 16]); // Signature
    h
}

/// SMB2 NEGOTIATE offering [`SMB2_DIALECTS`], signing enabled, with the
/// 3.1.1 contexts: PREAUTH_INTEGRITY (SHA-512, `salt`) and ENCRYPTION
/// (AES-128-GCM, AES-128-CCM). Without the 4-byte frame.
pub fn encode_smb2_negotiate(client_guid: [u8; 16], salt: [u8; 32]) -> Vec<u8> {
    let mut m = smb2_header(0x0000, 0, 0);
    // Contexts start 8-aligned after the fixed part and the dialects.
    let dialects_end = 64 + 36 + 2 * SMB2_DIALECTS.len();
    let contexts_at = (dialects_end + 7) & !7;
    m.extend_from_slice(&36u16.to_le_bytes()); // StructureSize
    m.extend_from_slice(&(SMB2_DIALECTS.len() as u16).to_le_bytes());
    m.extend_from_slice(&1u16.to_le_bytes()); // SecurityMode: SIGNING_ENABLED
    m.extend_from_slice(&[0, 0]); // Reserved
    m.extend_from_slice(&[0, 0, 0, 0]); // Capabilities
    m.extend_from_slice(&client_guid);
    m.extend_from_slice(&(contexts_at as u32).to_le_bytes()); // NegotiateContextOffset
    m.extend_from_slice(&2u16.to_le_bytes()); // NegotiateContextCount
    m.extend_from_slice(&[0, 0]); // Reserved2
    for d in SMB2_DIALECTS {
        m.extend_from_slice(&d.to_le_bytes());
    }
    m.resize(contexts_at, 0);
    // SMB2_PREAUTH_INTEGRITY_CAPABILITIES.
    let mut preauth = Vec::new();
    preauth.extend_from_slice(&1u16.to_le_bytes()); // HashAlgorithmCount
    preauth.extend_from_slice(&32u16.to_le_bytes()); // SaltLength
    preauth.extend_from_slice(&1u16.to_le_bytes()); // SHA-512
    preauth.extend_from_slice(&salt);
    push_context(&mut m, 0x0001, &preauth);
    m.resize((m.len() + 7) & !7, 0);
    // SMB2_ENCRYPTION_CAPABILITIES.
    let mut enc = Vec::new();
    enc.extend_from_slice(&2u16.to_le_bytes());
    enc.extend_from_slice(&0x0002u16.to_le_bytes()); // AES-128-GCM
    enc.extend_from_slice(&0x0001u16.to_le_bytes()); // AES-128-CCM
    push_context(&mut m, 0x0002, &enc);
    m
}

fn push_context(m: &mut Vec<u8>, kind: u16, data: &[u8]) {
    m.extend_from_slice(&kind.to_le_bytes());
    m.extend_from_slice(&(data.len() as u16).to_le_bytes()); // small constant
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(data);
}

/// SMB2 SESSION_SETUP with `blob` (without the 4-byte frame).
pub fn encode_smb2_session_setup(blob: &[u8], credit_charge: u16) -> Vec<u8> {
    let mut m = smb2_header(0x0001, 1, credit_charge);
    m.extend_from_slice(&25u16.to_le_bytes()); // StructureSize
    m.push(0); // Flags
    m.push(1); // SecurityMode: SIGNING_ENABLED
    m.extend_from_slice(&[0, 0, 0, 0]); // Capabilities
    m.extend_from_slice(&[0, 0, 0, 0]); // Channel
    m.extend_from_slice(&(64u16 + 24).to_le_bytes()); // SecurityBufferOffset
    m.extend_from_slice(&(blob.len() as u16).to_le_bytes()); // small blob
    m.extend_from_slice(&[0; 8]); // PreviousSessionId
    m.extend_from_slice(blob);
    m
}

/// Name of an SMB2 dialect revision.
pub fn dialect_name(code: u16) -> String {
    match code {
        0x0202 => "2.0.2".into(),
        0x0210 => "2.1".into(),
        0x0300 => "3.0".into(),
        0x0302 => "3.0.2".into(),
        0x0311 => "3.1.1".into(),
        0x02FF => "2.???".into(),
        other => format!("0x{other:04x}"),
    }
}

/// The SMB2 NEGOTIATE response ([MS-SMB2] 2.2.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Smb2Negotiate {
    pub dialect: String,
    pub dialect_code: u16,
    pub security_mode: u16,
    pub signing_enabled: bool,
    pub signing_required: bool,
    pub server_guid: String,
    pub capabilities: u32,
}

fn smb2_status(m: &[u8], command: u16) -> Result<u32, ParseError> {
    if slice(m, 0, 4, "smb2 header")? != SMB2_MAGIC {
        return Err(ParseError::invalid("smb2 signature"));
    }
    if le16(m, 4, "smb2 header size")? != 64 {
        return Err(ParseError::invalid("smb2 header size"));
    }
    if le16(m, 12, "smb2 command")? != command {
        return Err(ParseError::invalid("smb2 command"));
    }
    le32(m, 8, "smb2 status")
}

/// Parses the answer to [`encode_smb2_negotiate`].
pub fn parse_smb2_negotiate(m: &[u8]) -> Result<Smb2Negotiate, ParseError> {
    let status = smb2_status(m, 0x0000)?;
    if status != STATUS_SUCCESS {
        return Err(ParseError::invalid("smb2 negotiate status"));
    }
    if le16(m, 64, "smb2 negotiate structure size")? != 65 {
        return Err(ParseError::invalid("smb2 negotiate structure size"));
    }
    let security_mode = le16(m, 66, "smb2 security mode")?;
    let dialect_code = le16(m, 68, "smb2 dialect")?;
    let guid = slice(m, 72, 16, "smb2 server guid")?;
    let capabilities = le32(m, 88, "smb2 capabilities")?;
    Ok(Smb2Negotiate {
        dialect: dialect_name(dialect_code),
        dialect_code,
        security_mode,
        signing_enabled: security_mode & 0x01 != 0,
        signing_required: security_mode & 0x02 != 0,
        server_guid: guid_text(guid),
        capabilities,
    })
}

/// The status and CHALLENGE of an SMB2 SESSION_SETUP response.
pub fn parse_smb2_session_setup(m: &[u8]) -> Result<(u32, Option<NtlmChallenge>), ParseError> {
    let status = smb2_status(m, 0x0001)?;
    if status != STATUS_MORE_PROCESSING_REQUIRED && status != STATUS_SUCCESS {
        return Ok((status, None));
    }
    if le16(m, 64, "smb2 session setup structure size")? != 9 {
        return Err(ParseError::invalid("smb2 session setup structure size"));
    }
    let off = usize::from(le16(m, 68, "smb2 security buffer offset")?);
    let len = usize::from(le16(m, 70, "smb2 security buffer length")?);
    let blob = slice(m, off, len, "smb2 security buffer")?;
    Ok((status, parse_ntlmssp_in_blob(blob).ok()))
}

/// A GUID in its registry form (first three fields little-endian).
fn guid_text(g: &[u8]) -> String {
    let b = |i: usize| g.get(i).copied().unwrap_or(0);
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b(3), b(2), b(1), b(0), b(5), b(4), b(7), b(6), b(8), b(9), b(10), b(11), b(12), b(13), b(14), b(15)
    )
}

// ------------------------------------------------------------ probe

/// SMB1 as the server answered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum Smb1Outcome {
    /// NT LM 0.12 was negotiated: SMBv1 is enabled.
    Accepted {
        #[serde(flatten)]
        dialect: Smb1Dialect,
        /// The session setup answer (NativeOS, CHALLENGE), when read.
        session: Option<Box<Smb1SessionSetup>>,
    },
    /// The server refused SMB1 (no dialect, an error, or a closed
    /// connection after the request).
    Refused { reason: String },
}

/// SMB2/3 as the server answered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum Smb2Outcome {
    Negotiated {
        #[serde(flatten)]
        negotiate: Smb2Negotiate,
        /// The CHALLENGE from the session setup, when read.
        ntlm: Option<Box<NtlmChallenge>>,
    },
    Failed {
        reason: String,
    },
}

/// What the SMB probe learned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmbInfo {
    pub smb1: Smb1Outcome,
    pub smb2: Smb2Outcome,
    /// The CHALLENGE (SMB2's, else SMB1's).
    pub ntlm: Option<NtlmChallenge>,
    /// SMB1 NativeOS / NativeLanMan, when SMB1 gave them.
    pub native_os: Option<String>,
    pub native_lanman: Option<String>,
    /// Whether every dialect the server negotiated requires signing.
    pub signing_required: bool,
}

impl SmbInfo {
    /// Whether SMBv1 (NT LM 0.12) was negotiated.
    pub fn smb1_enabled(&self) -> bool {
        matches!(self.smb1, Smb1Outcome::Accepted { .. })
    }
}

/// Reads one SMB message (skipping keep-alives), without its frame.
async fn read_message(conn: &mut Conn) -> Result<Vec<u8>, ProbeError> {
    for _ in 0..=MAX_KEEPALIVES {
        let f = conn.read_frame(frame_len).await?;
        match f.first() {
            Some(0x00) => return Ok(f.get(4..).unwrap_or_default().to_vec()),
            Some(0x85) => continue,
            _ => {
                return Err(ProbeError::Unexpected(
                    "netbios message is not a session message".into(),
                ))
            }
        }
    }
    Err(ProbeError::Unexpected("only keep-alives".into()))
}

/// How SMB is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmbTransport {
    /// Direct TCP (port 445).
    Direct,
    /// NetBIOS session service (port 139): a session request first.
    NetBios,
}

impl SmbTransport {
    /// NetBIOS on port 139, direct TCP elsewhere.
    pub fn for_port(port: u16) -> SmbTransport {
        if port == 139 {
            SmbTransport::NetBios
        } else {
            SmbTransport::Direct
        }
    }
}

async fn open(
    addr: SocketAddr,
    limits: &ProbeLimits,
    deadline: Instant,
    transport: SmbTransport,
) -> Result<Conn, ProbeError> {
    let mut conn = Conn::connect(addr, limits, deadline).await?;
    if transport == SmbTransport::NetBios {
        conn.send(&encode_session_request()).await?;
        let answer = conn.read_frame(frame_len).await?;
        if answer.first() != Some(&0x82) {
            conn.close().await;
            return Err(ProbeError::Unexpected(format!(
                "netbios session refused (type 0x{:02x})",
                answer.first().copied().unwrap_or(0)
            )));
        }
    }
    Ok(conn)
}

async fn smb1_conversation(conn: &mut Conn) -> Result<Smb1Outcome, ProbeError> {
    conn.send(&frame(&encode_smb1_negotiate())).await?;
    let answer = match read_message(conn).await {
        Ok(a) => a,
        // Windows with SMB1 removed drops the connection.
        Err(e @ (ProbeError::Closed { .. } | ProbeError::Io(_))) => {
            return Ok(Smb1Outcome::Refused {
                reason: format!("connection ended: {e}"),
            })
        }
        Err(e) => return Err(e),
    };
    let dialect = match parse_smb1_negotiate(&answer)? {
        Smb1Negotiate::Refused { reason } => return Ok(Smb1Outcome::Refused { reason }),
        Smb1Negotiate::Accepted(d) => d,
    };
    let mut session = None;
    if dialect.extended_security {
        let setup = encode_smb1_session_setup(&spnego_init(&encode_ntlmssp_negotiate()));
        if conn.send(&frame(&setup)).await.is_ok() {
            if let Ok(reply) = read_message(conn).await {
                session = parse_smb1_session_setup(&reply).ok().map(Box::new);
            }
        }
    }
    Ok(Smb1Outcome::Accepted { dialect, session })
}

async fn smb2_conversation(conn: &mut Conn) -> Result<Smb2Outcome, ProbeError> {
    let (guid, salt) = random_guid_and_salt();
    conn.send(&frame(&encode_smb2_negotiate(guid, salt)))
        .await?;
    let answer = read_message(conn).await?;
    let negotiate = parse_smb2_negotiate(&answer)?;
    let credit_charge = u16::from(negotiate.dialect_code >= 0x0210);
    let setup = encode_smb2_session_setup(&spnego_init(&encode_ntlmssp_negotiate()), credit_charge);
    let mut ntlm = None;
    if conn.send(&frame(&setup)).await.is_ok() {
        for _ in 0..2 {
            let Ok(reply) = read_message(conn).await else {
                break;
            };
            match parse_smb2_session_setup(&reply) {
                Ok((STATUS_PENDING, _)) => continue,
                Ok((_, challenge)) => {
                    ntlm = challenge.map(Box::new);
                    break;
                }
                Err(_) => break,
            }
        }
    }
    Ok(Smb2Outcome::Negotiated { negotiate, ntlm })
}

fn random_guid_and_salt() -> ([u8; 16], [u8; 32]) {
    use ring::rand::SecureRandom;
    let rng = ring::rand::SystemRandom::new();
    let mut guid = [0u8; 16];
    let mut salt = [0u8; 32];
    // A failed fill leaves zeros: still a valid (if predictable) request.
    let _ = rng.fill(&mut guid);
    let _ = rng.fill(&mut salt);
    (guid, salt)
}

/// Runs the SMB1 and SMB2 conversations against `addr`, over NetBIOS on
/// port 139 and direct TCP elsewhere. Fails when no connection could be
/// made or neither dialect family gave an answer.
pub async fn probe_smb(addr: SocketAddr, limits: &ProbeLimits) -> Result<SmbInfo, ProbeError> {
    probe_smb_over(addr, limits, SmbTransport::for_port(addr.port())).await
}

/// [`probe_smb`] with the transport chosen by the caller.
pub async fn probe_smb_over(
    addr: SocketAddr,
    limits: &ProbeLimits,
    transport: SmbTransport,
) -> Result<SmbInfo, ProbeError> {
    let deadline = limits.deadline_from_now();
    let mut conn = open(addr, limits, deadline, transport).await?;
    let smb1 = smb1_conversation(&mut conn).await;
    conn.close().await;
    let smb2 = match open(addr, limits, deadline, transport).await {
        Ok(mut c) => {
            let r = smb2_conversation(&mut c).await;
            c.close().await;
            r
        }
        Err(e) => Err(e),
    };
    let (smb1, smb2) = match (smb1, smb2) {
        (Err(e), Err(_)) => return Err(e),
        (a, b) => (
            a.unwrap_or_else(|e| Smb1Outcome::Refused {
                reason: e.to_string(),
            }),
            b.unwrap_or_else(|e| Smb2Outcome::Failed {
                reason: e.to_string(),
            }),
        ),
    };
    if let (Smb1Outcome::Refused { .. }, Smb2Outcome::Failed { reason }) = (&smb1, &smb2) {
        return Err(ProbeError::Unexpected(format!(
            "neither SMB1 nor SMB2 negotiated: {reason}"
        )));
    }
    let (s1_ntlm, native_os, native_lanman) = match &smb1 {
        Smb1Outcome::Accepted {
            session: Some(s), ..
        } => (s.ntlm.clone(), s.native_os.clone(), s.native_lanman.clone()),
        _ => (None, None, None),
    };
    let s2_ntlm = match &smb2 {
        Smb2Outcome::Negotiated { ntlm, .. } => ntlm.as_deref().cloned(),
        Smb2Outcome::Failed { .. } => None,
    };
    let signing_required = match (&smb1, &smb2) {
        (Smb1Outcome::Accepted { dialect, .. }, Smb2Outcome::Negotiated { negotiate, .. }) => {
            dialect.signing_required && negotiate.signing_required
        }
        (Smb1Outcome::Accepted { dialect, .. }, _) => dialect.signing_required,
        (_, Smb2Outcome::Negotiated { negotiate, .. }) => negotiate.signing_required,
        _ => false,
    };
    Ok(SmbInfo {
        ntlm: s2_ntlm.or(s1_ntlm),
        smb1,
        smb2,
        native_os,
        native_lanman,
        signing_required,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::testutil::{quick_limits, serve, Script};
    use super::*;
    use proptest::prelude::*;

    fn utf16le(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    /// The CHALLENGE_MESSAGE of [MS-NLMP] 4.2.4.3 (NTLMv2 example):
    /// target "Server", NbDomainName "Domain", NbComputerName "Server",
    /// VERSION 6.0.6000 revision 15.
    const SPEC_CHALLENGE: [u8; 104] = [
        0x4e, 0x54, 0x4c, 0x4d, 0x53, 0x53, 0x50, 0x00, 0x02, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x0c,
        0x00, 0x38, 0x00, 0x00, 0x00, 0x33, 0x82, 0x8a, 0xe2, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
        0xcd, 0xef, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x24, 0x00, 0x24, 0x00, 0x44,
        0x00, 0x00, 0x00, 0x06, 0x00, 0x70, 0x17, 0x00, 0x00, 0x00, 0x0f, 0x53, 0x00, 0x65, 0x00,
        0x72, 0x00, 0x76, 0x00, 0x65, 0x00, 0x72, 0x00, 0x02, 0x00, 0x0c, 0x00, 0x44, 0x00, 0x6f,
        0x00, 0x6d, 0x00, 0x61, 0x00, 0x69, 0x00, 0x6e, 0x00, 0x01, 0x00, 0x0c, 0x00, 0x53, 0x00,
        0x65, 0x00, 0x72, 0x00, 0x76, 0x00, 0x65, 0x00, 0x72, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    /// A CHALLENGE as Windows 7 SP1 answers, written from [MS-NLMP]
    /// 2.2.1.2 (no Windows here to record one): VERSION 6.1.7601 rev 15,
    /// target "WIN7PC", NetBIOS/DNS names and a timestamp.
    pub fn windows7_challenge() -> Vec<u8> {
        challenge_with(
            6,
            1,
            7601,
            &[
                (2, "WORKGROUP"),
                (1, "WIN7PC"),
                (4, "WIN7PC"),
                (3, "WIN7PC"),
            ],
        )
    }

    pub fn challenge_with(major: u8, minor: u8, build: u16, pairs: &[(u16, &str)]) -> Vec<u8> {
        let target = utf16le("WIN7PC");
        let mut info = Vec::new();
        for (id, v) in pairs {
            let v = utf16le(v);
            info.extend_from_slice(&id.to_le_bytes());
            info.extend_from_slice(&(v.len() as u16).to_le_bytes());
            info.extend(v);
        }
        info.extend_from_slice(&7u16.to_le_bytes());
        info.extend_from_slice(&8u16.to_le_bytes());
        info.extend_from_slice(&0x01d9_0000_0000_0000u64.to_le_bytes());
        info.extend_from_slice(&[0, 0, 0, 0]);
        let mut m = NTLMSSP_SIGNATURE.to_vec();
        m.extend_from_slice(&2u32.to_le_bytes());
        m.extend_from_slice(&(target.len() as u16).to_le_bytes());
        m.extend_from_slice(&(target.len() as u16).to_le_bytes());
        m.extend_from_slice(&56u32.to_le_bytes());
        m.extend_from_slice(&0xe28a_8215u32.to_le_bytes());
        m.extend_from_slice(&[0x11; 8]);
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&(info.len() as u16).to_le_bytes());
        m.extend_from_slice(&(info.len() as u16).to_le_bytes());
        m.extend_from_slice(&((56 + target.len()) as u32).to_le_bytes());
        m.extend_from_slice(&[major, minor]);
        m.extend_from_slice(&build.to_le_bytes());
        m.extend_from_slice(&[0, 0, 0, 0x0f]);
        m.extend(target);
        m.extend(info);
        m
    }

    /// An SMB1 NT LM 0.12 negotiate response with extended security, as
    /// [MS-SMB] 2.2.4.5.2.1 lays it out.
    pub fn smb1_negotiate_response(security_mode: u8) -> Vec<u8> {
        let mut m = SMB1_MAGIC.to_vec();
        m.push(SMB_COM_NEGOTIATE);
        m.extend_from_slice(&[0, 0, 0, 0]);
        m.push(0x98);
        m.extend_from_slice(&0xC853u16.to_le_bytes());
        m.extend_from_slice(&[0; 12]);
        m.extend_from_slice(&[0, 0, 0xff, 0xfe, 0, 0, 0x01, 0x00]);
        m.push(17);
        m.extend_from_slice(&0u16.to_le_bytes()); // dialect index
        m.push(security_mode);
        m.extend_from_slice(&50u16.to_le_bytes());
        m.extend_from_slice(&1u16.to_le_bytes());
        m.extend_from_slice(&16644u32.to_le_bytes());
        m.extend_from_slice(&65536u32.to_le_bytes());
        m.extend_from_slice(&0u32.to_le_bytes());
        m.extend_from_slice(&0x8000_f3fdu32.to_le_bytes()); // caps incl. EXTENDED_SECURITY
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&0i16.to_le_bytes());
        m.push(0);
        let guid = [0x42u8; 16];
        m.extend_from_slice(&(guid.len() as u16).to_le_bytes());
        m.extend_from_slice(&guid);
        m
    }

    /// A SPNEGO negTokenResp (RFC 4178 4.2.2): accept-incomplete, NTLMSSP,
    /// the `token`.
    pub fn spnego_resp(token: &[u8]) -> Vec<u8> {
        let state = ber_tlv(0xa0, &[0x0a, 0x01, 0x01]);
        let mech = ber_tlv(0xa1, &ber_oid(OID_NTLMSSP));
        let tok = ber_tlv(0xa2, &ber_tlv(0x04, token));
        ber_tlv(0xa1, &ber_tlv(0x30, &[state, mech, tok].concat()))
    }

    /// A Windows 7 SP1 SESSION_SETUP_ANDX answer, written from [MS-SMB]
    /// 2.2.4.6.2: STATUS_MORE_PROCESSING_REQUIRED, the CHALLENGE in a
    /// SPNEGO negTokenResp, NativeOS "Windows 7 Professional 7601 Service
    /// Pack 1", NativeLanMan "Windows 7 Professional 6.1". Replayed to our
    /// probe, it decodes in tshark 4.0 (NTLMSSP_CHALLENGE, its target info)
    /// without a malformed mark.
    pub fn smb1_session_setup_response(
        native_os: &str,
        native_lanman: &str,
        challenge: &[u8],
    ) -> Vec<u8> {
        let blob = spnego_resp(challenge);
        let mut m = SMB1_MAGIC.to_vec();
        m.push(SMB_COM_SESSION_SETUP_ANDX);
        m.extend_from_slice(&STATUS_MORE_PROCESSING_REQUIRED.to_le_bytes());
        m.push(0x98);
        m.extend_from_slice(&0xC807u16.to_le_bytes());
        m.extend_from_slice(&[0; 12]);
        m.extend_from_slice(&[0, 0, 0xff, 0xfe, 0, 0x08, 0x02, 0x00]);
        m.push(4);
        m.extend_from_slice(&[0xff, 0, 0, 0, 0, 0]);
        m.extend_from_slice(&(blob.len() as u16).to_le_bytes());
        let mut bytes = blob.clone();
        if (m.len() + 2 + bytes.len()) % 2 == 1 {
            bytes.push(0);
        }
        for s in [native_os, native_lanman] {
            bytes.extend(utf16le(s));
            bytes.extend_from_slice(&[0, 0]);
        }
        m.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        m.extend(bytes);
        m
    }

    fn smb2_negotiate_response(security_mode: u16, dialect: u16) -> Vec<u8> {
        let mut m = smb2_header(0, 0, 0);
        m[14] = 1;
        m[16] = 0x01; // SMB2_FLAGS_SERVER_TO_REDIR
        m.extend_from_slice(&65u16.to_le_bytes());
        m.extend_from_slice(&security_mode.to_le_bytes());
        m.extend_from_slice(&dialect.to_le_bytes());
        m.extend_from_slice(&[0, 0]);
        m.extend_from_slice(&[
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ]);
        m.extend_from_slice(&0x2fu32.to_le_bytes());
        m.extend_from_slice(&[0; 12]);
        m.extend_from_slice(&[0; 16]);
        m.extend_from_slice(&128u16.to_le_bytes());
        m.extend_from_slice(&0u16.to_le_bytes());
        m.extend_from_slice(&0u32.to_le_bytes());
        m
    }

    fn smb2_session_setup_response(challenge: &[u8]) -> Vec<u8> {
        let blob = spnego_resp(challenge);
        let mut m = smb2_header(1, 1, 0);
        m[8..12].copy_from_slice(&STATUS_MORE_PROCESSING_REQUIRED.to_le_bytes());
        m[16] = 0x01; // SMB2_FLAGS_SERVER_TO_REDIR
        m.extend_from_slice(&9u16.to_le_bytes());
        m.extend_from_slice(&0u16.to_le_bytes());
        m.extend_from_slice(&72u16.to_le_bytes());
        m.extend_from_slice(&(blob.len() as u16).to_le_bytes());
        m.extend_from_slice(&blob);
        m
    }

    #[test]
    fn smb1_negotiate_matches_ms_cifs_bytes() {
        let m = encode_smb1_negotiate();
        assert_eq!(m.len(), 47);
        assert_eq!(&m[..5], b"\xffSMB\x72");
        assert_eq!(&m[10..12], &[0x01, 0xc8]); // Flags2 0xC801 little-endian
        assert_eq!(m[32], 0); // WordCount
        assert_eq!(&m[33..35], &[12, 0]); // ByteCount
        assert_eq!(&m[35..], b"\x02NT LM 0.12\x00");
        assert_eq!(&frame(&m)[..4], &[0, 0, 0, 47]);
    }

    #[test]
    fn ntlmssp_negotiate_matches_ms_nlmp_bytes() {
        assert_eq!(
            encode_ntlmssp_negotiate(),
            [
                0x4e, 0x54, 0x4c, 0x4d, 0x53, 0x53, 0x50, 0x00, // "NTLMSSP\0"
                0x01, 0x00, 0x00, 0x00, // NEGOTIATE
                0x07, 0x82, 0x08, 0xa2, // flags 0xA2088207
                0x00, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, // domain: empty @40
                0x00, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, // workstation: empty @40
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, // VERSION 0.0.0 rev 15
            ]
        );
    }

    #[test]
    fn spnego_wrapper_is_the_rfc_4178_neg_token_init() {
        let tok = encode_ntlmssp_negotiate();
        let s = spnego_init(&tok);
        let want: Vec<u8> = [
            &[0x60, 0x48, 0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02][..],
            &[0xa0, 0x3e, 0x30, 0x3c],
            &[0xa0, 0x0e, 0x30, 0x0c, 0x06, 0x0a],
            &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a],
            &[0xa2, 0x2a, 0x04, 0x28],
            &tok,
        ]
        .concat();
        assert_eq!(s, want);
    }

    #[test]
    fn smb2_negotiate_matches_ms_smb2_layout() {
        let m = encode_smb2_negotiate([0xaa; 16], [0xbb; 32]);
        assert_eq!(&m[..4], b"\xfeSMB");
        assert_eq!(&m[4..6], &[64, 0]);
        assert_eq!(&m[12..14], &[0, 0]); // NEGOTIATE
        assert_eq!(&m[64..66], &[36, 0]); // StructureSize
        assert_eq!(&m[66..68], &[5, 0]); // DialectCount
        assert_eq!(&m[68..70], &[1, 0]); // SIGNING_ENABLED
        assert_eq!(&m[76..92], &[0xaa; 16]);
        assert_eq!(&m[92..96], &[112, 0, 0, 0]); // NegotiateContextOffset
        assert_eq!(&m[96..98], &[2, 0]);
        assert_eq!(
            &m[100..110],
            &[0x02, 0x02, 0x10, 0x02, 0x00, 0x03, 0x02, 0x03, 0x11, 0x03]
        );
        assert_eq!(&m[110..112], &[0, 0]); // padding to 8
                                           // PREAUTH context: type 1, length 38, reserved, count 1, salt 32, SHA-512.
        assert_eq!(&m[112..126], &[1, 0, 38, 0, 0, 0, 0, 0, 1, 0, 32, 0, 1, 0]);
        assert_eq!(&m[126..158], &[0xbb; 32]);
        // 158 padded to 160; ENCRYPTION context: type 2, length 6, 2 ciphers.
        assert_eq!(&m[158..160], &[0, 0]);
        assert_eq!(&m[160..174], &[2, 0, 6, 0, 0, 0, 0, 0, 2, 0, 2, 0, 1, 0]);
        assert_eq!(m.len(), 174);
    }

    #[test]
    fn session_setups_carry_the_blob_at_the_declared_offset() {
        let blob = spnego_init(&encode_ntlmssp_negotiate());
        let s2 = encode_smb2_session_setup(&blob, 1);
        assert_eq!(&s2[6..8], &[1, 0]); // CreditCharge
        assert_eq!(&s2[64..66], &[25, 0]);
        assert_eq!(&s2[76..78], &[88, 0]);
        assert_eq!(
            usize::from(u16::from_le_bytes([s2[78], s2[79]])),
            blob.len()
        );
        assert_eq!(&s2[88..], &blob[..]);
        let s1 = encode_smb1_session_setup(&blob);
        assert_eq!(s1[32], 12);
        assert_eq!(&s1[33..37], &[0xff, 0, 0, 0]);
        assert_eq!(&s1[41..43], &[1, 0]); // VcNumber 1
        assert_eq!(
            usize::from(u16::from_le_bytes([s1[47], s1[48]])),
            blob.len()
        );
        assert_eq!(&s1[59..59 + blob.len()], &blob[..]);
        let byte_count = usize::from(u16::from_le_bytes([s1[57], s1[58]]));
        assert_eq!(59 + byte_count, s1.len());
        // Strings start even: 59 + 74 = 133 is odd, so one pad byte.
        assert_eq!(byte_count, blob.len() + 1 + 4);
    }

    #[test]
    fn netbios_session_request_encodes_smbserver() {
        let r = encode_session_request();
        assert_eq!(&r[..4], &[0x81, 0, 0, 68]);
        // '*' = 0x2a -> "CK"; 'S' = 0x53 -> "FD"; space -> "CA"; 0x20 suffix -> "CA".
        assert_eq!(&r[4..9], b"\x20CKFD");
        assert_eq!(&r[35..38], b"CA\x00");
        assert_eq!(r.len(), 72);
    }

    #[test]
    fn parses_the_ms_nlmp_example_challenge() {
        let c = parse_ntlmssp_challenge(&SPEC_CHALLENGE).expect("valid");
        assert_eq!(
            c.version,
            Some(NtlmVersion {
                major: 6,
                minor: 0,
                build: 6000,
                revision: 15
            })
        );
        assert_eq!(c.target_name.as_deref(), Some("Server"));
        assert_eq!(c.netbios_domain.as_deref(), Some("Domain"));
        assert_eq!(c.netbios_computer.as_deref(), Some("Server"));
        assert_eq!(c.flags, 0xe28a8233);
        // Found inside a wrapper too, with garbage after it.
        let wrapped = [&[0xa1, 0x10, 0x04, 0x00][..], &SPEC_CHALLENGE, b"trailing"].concat();
        assert_eq!(parse_ntlmssp_in_blob(&wrapped), Ok(c));
    }

    #[test]
    fn version_is_not_read_from_a_payload_area() {
        // Payload (target name) at offset 48: there is no version field.
        let mut m = SPEC_CHALLENGE.to_vec();
        m[16] = 48;
        let c = parse_ntlmssp_challenge(&m).expect("valid");
        assert_eq!(c.version, None);
    }

    #[test]
    fn parses_windows7_smb1_session_setup() {
        let r = smb1_session_setup_response(
            "Windows 7 Professional 7601 Service Pack 1",
            "Windows 7 Professional 6.1",
            &windows7_challenge(),
        );
        let s = parse_smb1_session_setup(&r).expect("valid");
        assert_eq!(s.status, STATUS_MORE_PROCESSING_REQUIRED);
        assert_eq!(
            s.native_os.as_deref(),
            Some("Windows 7 Professional 7601 Service Pack 1")
        );
        assert_eq!(
            s.native_lanman.as_deref(),
            Some("Windows 7 Professional 6.1")
        );
        let ntlm = s.ntlm.expect("challenge");
        assert_eq!(
            ntlm.version.map(|v| v.to_string()).as_deref(),
            Some("6.1.7601")
        );
        assert_eq!(ntlm.dns_computer.as_deref(), Some("WIN7PC"));
        assert_eq!(ntlm.netbios_domain.as_deref(), Some("WORKGROUP"));
        assert!(ntlm.timestamp.is_some());
    }

    #[test]
    fn parses_smb1_negotiate_answers() {
        let Smb1Negotiate::Accepted(d) =
            parse_smb1_negotiate(&smb1_negotiate_response(0x03)).expect("valid")
        else {
            panic!("refused");
        };
        assert!(d.extended_security);
        assert!(!d.signing_enabled);
        assert!(!d.signing_required);
        let Smb1Negotiate::Accepted(d) =
            parse_smb1_negotiate(&smb1_negotiate_response(0x0f)).expect("valid")
        else {
            panic!("refused");
        };
        assert!(d.signing_required);
        // Dialect index 0xFFFF: refused.
        let mut none = smb1_negotiate_response(0x03);
        none.truncate(33);
        none[32] = 1;
        none.extend_from_slice(&[0xff, 0xff, 0, 0]);
        assert!(matches!(
            parse_smb1_negotiate(&none),
            Ok(Smb1Negotiate::Refused { .. })
        ));
        // Error status: refused.
        let mut err = smb1_negotiate_response(0x03);
        err[5..9].copy_from_slice(&0xC000_0002u32.to_le_bytes());
        assert!(matches!(
            parse_smb1_negotiate(&err),
            Ok(Smb1Negotiate::Refused { .. })
        ));
    }

    #[test]
    fn parses_smb2_answers() {
        let n = parse_smb2_negotiate(&smb2_negotiate_response(0x03, 0x0311)).expect("valid");
        assert_eq!(n.dialect, "3.1.1");
        assert!(n.signing_required);
        assert_eq!(n.server_guid, "00112233-4455-6677-8899-aabbccddeeff");
        let n = parse_smb2_negotiate(&smb2_negotiate_response(0x01, 0x0210)).expect("valid");
        assert!(!n.signing_required);
        let (status, c) =
            parse_smb2_session_setup(&smb2_session_setup_response(&SPEC_CHALLENGE)).expect("valid");
        assert_eq!(status, STATUS_MORE_PROCESSING_REQUIRED);
        assert_eq!(c.and_then(|c| c.version).map(|v| v.build), Some(6000));
    }

    #[test]
    fn lying_lengths_are_errors_not_panics() {
        let mut r = smb2_session_setup_response(&SPEC_CHALLENGE);
        r[70] = 0xff; // security buffer longer than the message
        assert!(parse_smb2_session_setup(&r).is_err());
        let mut c = SPEC_CHALLENGE.to_vec();
        c[44] = 0xf0; // target info offset past the end
        assert!(parse_ntlmssp_challenge(&c).is_err());
        let mut c = SPEC_CHALLENGE.to_vec();
        c[70] = 0xff; // an AV pair longer than the target info
        assert!(parse_ntlmssp_challenge(&c).is_err());
        let mut s = smb1_session_setup_response("a", "b", &SPEC_CHALLENGE);
        s[39] = 0xff; // blob length beyond the bytes
        assert!(parse_smb1_session_setup(&s).is_err());
    }

    proptest! {
        #[test]
        fn parsers_are_total(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_smb1_negotiate(&bytes);
            let _ = parse_smb1_session_setup(&bytes);
            let _ = parse_smb2_negotiate(&bytes);
            let _ = parse_smb2_session_setup(&bytes);
            let _ = parse_ntlmssp_challenge(&bytes);
            let _ = parse_ntlmssp_in_blob(&bytes);
            let _ = frame_len(&bytes);
        }

        #[test]
        fn mutated_answers_never_panic(pos in 0usize..300, byte in any::<u8>()) {
            let mut a = smb1_session_setup_response("Windows 5.1", "Windows 2000 LAN Manager", &windows7_challenge());
            if let Some(b) = a.get_mut(pos) { *b = byte; }
            let _ = parse_smb1_session_setup(&a);
            let mut c = windows7_challenge();
            if let Some(b) = c.get_mut(pos) { *b = byte; }
            let _ = parse_ntlmssp_challenge(&c);
        }
    }

    /// Samba 4.17.12 (Debian 12, `server min protocol = NT1`): its answer
    /// to our SESSION_SETUP_ANDX, recorded from the live test below (frame
    /// payload, NetBIOS header included).
    const SAMBA_SMB1_SESSION_SETUP: &str =
        "00000120ff534d4273160000c08803c80000000000000000000000000000fffe\
        efdc020004ff00000000009f00f500a1819c308199a0030a0101a10c060a2b06\
        010401823702020aa281830481804e544c4d53535000020000000c000c003800\
        000005828aa296eab803d6dab95a00000000000000003c003c00440000000601\
        00000000000f530041004d0042004100310002000c00530041004d0042004100\
        310001000c00530041004d00420041003100040000000300040076006d000700\
        080068126c8b687ddd0100000000570069006e0064006f007700730020003600\
        2e0031000000530061006d0062006100200034002e00310037002e0031003200\
        2d00440065006200690061006e0000005400450053005400470052004f005500\
        50000000";

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn recorded_samba_answer_says_windows_6_1_build_0_and_samba() {
        let framed = unhex(SAMBA_SMB1_SESSION_SETUP);
        assert_eq!(frame_len(&framed), Ok(framed.len()));
        let s = parse_smb1_session_setup(&framed[4..]).expect("valid");
        assert_eq!(s.status, STATUS_MORE_PROCESSING_REQUIRED);
        assert_eq!(s.native_os.as_deref(), Some("Windows 6.1"));
        assert_eq!(s.native_lanman.as_deref(), Some("Samba 4.17.12-Debian"));
        assert_eq!(s.primary_domain.as_deref(), Some("TESTGROUP"));
        let ntlm = s.ntlm.expect("challenge");
        assert_eq!(
            ntlm.version,
            Some(NtlmVersion {
                major: 6,
                minor: 1,
                build: 0,
                revision: 15
            })
        );
        assert_eq!(ntlm.netbios_computer.as_deref(), Some("SAMBA1"));
        assert_eq!(ntlm.dns_domain, None);
    }

    /// Starts smbd on 127.0.0.1:`port` with `extra` global settings.
    fn samba(port: u16, name: &str, extra: &str) -> super::super::testutil::live::Daemon {
        use super::super::testutil::live;
        live::require("/usr/sbin/smbd", "samba");
        let dir = live::temp_dir("smbd");
        for sub in [
            "lock", "state", "cache", "private", "pid", "ncalrpc", "share", "log",
        ] {
            std::fs::create_dir_all(dir.join(sub)).expect("samba dirs");
        }
        let d = dir.display();
        let conf = format!(
            "[global]\n  server role = standalone server\n  workgroup = TESTGROUP\n  \
             netbios name = {name}\n  interfaces = 127.0.0.1\n  bind interfaces only = yes\n  \
             smb ports = {port}\n  disable netbios = yes\n  lock directory = {d}/lock\n  \
             state directory = {d}/state\n  cache directory = {d}/cache\n  \
             private dir = {d}/private\n  pid directory = {d}/pid\n  ncalrpc dir = {d}/ncalrpc\n  \
             log file = {d}/log/log.%m\n  load printers = no\n  printcap name = /dev/null\n  \
             disable spoolss = yes\n{extra}\n[share]\n  path = {d}/share\n  guest ok = yes\n"
        );
        let conf_path = dir.join("smb.conf");
        std::fs::write(&conf_path, conf).expect("smb.conf");
        let conf_path = conf_path.display().to_string();
        live::spawn(
            "/usr/sbin/smbd",
            &["--foreground", "--no-process-group", "-s", &conf_path],
            dir,
        )
    }

    /// Live: Samba with SMBv1 allowed answers NT LM 0.12, and tells what
    /// it is: NTLMSSP 6.1 build 0, NativeOS "Windows 6.1", NativeLanMan
    /// "Samba ..." -- which the fingerprint rules must not call Windows 7.
    #[tokio::test]
    async fn live_samba_nt1_accepts_smb1_and_is_not_windows_7() {
        use super::super::testutil::live;
        if !live::isolated(&live::test_path(
            module_path!(),
            "live_samba_nt1_accepts_smb1_and_is_not_windows_7",
        )) {
            return;
        }
        let port = live::free_tcp_port();
        let daemon = samba(port, "SAMBA1", "  server min protocol = NT1");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        assert!(
            live::wait_listening(addr, std::time::Duration::from_secs(10)).await,
            "smbd did not start: {}",
            daemon.log()
        );
        for transport in [SmbTransport::Direct, SmbTransport::NetBios] {
            let info = probe_smb_over(addr, &quick_limits(), transport)
                .await
                .expect("smb answers");
            assert!(info.smb1_enabled(), "{transport:?}: {:?}", info.smb1);
            assert!(!info.signing_required);
            assert_eq!(info.native_os.as_deref(), Some("Windows 6.1"));
            assert!(info
                .native_lanman
                .as_deref()
                .is_some_and(|l| l.starts_with("Samba ")));
            let ntlm = info.ntlm.clone().expect("challenge");
            assert_eq!(
                ntlm.version.map(|v| (v.major, v.minor, v.build)),
                Some((6, 1, 0))
            );
            assert_eq!(ntlm.netbios_computer.as_deref(), Some("SAMBA1"));
            assert!(matches!(info.smb2, Smb2Outcome::Negotiated { .. }));
            // The fingerprint rules see Samba, not an end-of-life Windows.
            use super::super::super::fingerprint::{Evidence, Judging, RuleSet};
            let services = [super::super::ServiceInfo::Smb(Box::new(info))];
            let evidence = Evidence::from_services(&services);
            let rules = RuleSet::builtin().expect("rules");
            let verdicts = rules.classify(
                &evidence,
                Judging {
                    today: time::macros::date!(2026 - 11 - 26),
                    windows_esu: false,
                },
            );
            assert!(!verdicts.is_empty());
            assert!(
                verdicts
                    .iter()
                    .all(|v| v.code.is_none() && v.identifies.starts_with("Samba")),
                "{verdicts:?}"
            );
        }
    }

    /// Live: Samba restricted to SMB2+ with mandatory signing refuses SMB1
    /// and requires signing.
    #[tokio::test]
    async fn live_samba_smb2_only_with_mandatory_signing() {
        use super::super::testutil::live;
        if !live::isolated(&live::test_path(
            module_path!(),
            "live_samba_smb2_only_with_mandatory_signing",
        )) {
            return;
        }
        let port = live::free_tcp_port();
        let daemon = samba(
            port,
            "SAMBA2",
            "  server min protocol = SMB2_02\n  server signing = mandatory",
        );
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        assert!(
            live::wait_listening(addr, std::time::Duration::from_secs(10)).await,
            "smbd did not start: {}",
            daemon.log()
        );
        let info = probe_smb(addr, &quick_limits()).await.expect("smb answers");
        assert!(!info.smb1_enabled(), "{:?}", info.smb1);
        assert!(info.signing_required);
        let Smb2Outcome::Negotiated { negotiate, ntlm } = &info.smb2 else {
            panic!("smb2 failed: {:?}", info.smb2);
        };
        assert_eq!(negotiate.dialect, "3.1.1");
        assert!(negotiate.signing_required);
        assert_eq!(
            ntlm.as_ref()
                .and_then(|n| n.version)
                .map(|v| v.to_string())
                .as_deref(),
            Some("6.1.0")
        );
    }

    #[tokio::test]
    async fn probe_against_a_windows7_like_responder() {
        let smb1 = Script::Steps(vec![
            (true, frame(&smb1_negotiate_response(0x03))),
            (
                true,
                frame(&smb1_session_setup_response(
                    "Windows 7 Professional 7601 Service Pack 1",
                    "Windows 7 Professional 6.1",
                    &windows7_challenge(),
                )),
            ),
        ]);
        let smb2 = Script::Steps(vec![
            (true, frame(&smb2_negotiate_response(0x01, 0x0210))),
            (
                true,
                frame(&smb2_session_setup_response(&windows7_challenge())),
            ),
        ]);
        let addr = serve(vec![smb1, smb2]).await;
        let info = probe_smb(addr, &quick_limits()).await.expect("smb");
        assert!(info.smb1_enabled());
        assert!(!info.signing_required);
        assert_eq!(
            info.native_os.as_deref(),
            Some("Windows 7 Professional 7601 Service Pack 1")
        );
        assert_eq!(
            info.ntlm
                .and_then(|n| n.version)
                .map(|v| v.to_string())
                .as_deref(),
            Some("6.1.7601")
        );
        assert!(
            matches!(info.smb2, Smb2Outcome::Negotiated { ref negotiate, .. } if negotiate.dialect == "2.1")
        );
    }

    #[tokio::test]
    async fn smb1_dropped_by_the_server_is_refused_not_an_error() {
        let smb1 = Script::Reset;
        let smb2 = Script::Steps(vec![
            (true, frame(&smb2_negotiate_response(0x03, 0x0311))),
            (true, frame(&smb2_session_setup_response(&SPEC_CHALLENGE))),
        ]);
        let addr = serve(vec![smb1, smb2]).await;
        let info = probe_smb(addr, &quick_limits()).await.expect("smb");
        assert!(!info.smb1_enabled());
        assert!(info.signing_required);
    }

    #[tokio::test]
    async fn endless_keepalives_and_garbage_end_the_probe() {
        let keepalives = Script::Endless(vec![0x85, 0, 0, 0]);
        let addr = serve(vec![keepalives]).await;
        let err = probe_smb(addr, &quick_limits()).await.expect_err("no smb");
        assert!(matches!(err, ProbeError::Unexpected(_)), "{err:?}");
    }
}
