//! Small stand-ins for devices that cannot run here, for the network
//! namespace tests of the network collector. Each mode answers with bytes
//! written from the protocol specifications (no Windows to record from):
//!
//! - `smb-win7 ADDR READY`: an SMB1-only Windows 7 SP1. NEGOTIATE follows
//!   the client's FLAGS2_EXTENDED_SECURITY: with it, [MS-SMB] 2.2.4.5.2.1
//!   (ServerGUID, SPNEGO NegTokenInit); without it, [MS-SMB] 2.2.4.5.2.2 /
//!   [MS-CIFS] 2.2.4.52.2 (8-byte challenge, domain LAB, server LAB-W7).
//!   Session setup carrying an NTLMSSP NEGOTIATE gets ([MS-SMB] 2.2.4.6.2)
//!   an [MS-NLMP] 2.2.1.2 CHALLENGE, VERSION 6.1.7601, NativeOS
//!   "Windows 7 Professional 7601 Service Pack 1"; anything else (an
//!   AUTHENTICATE, a non-extended logon) gets STATUS_LOGON_FAILURE. SMB2
//!   requests are closed (SMB2 disabled).
//! - `ssh-banner ADDR READY BANNER`: an identification line (RFC 4253 §4.2),
//!   then it reads the client's and closes.
//! - `http-iis6 ADDR READY`: answers every request with IIS 6 headers.
//! - `rdp-nla ADDR READY`: a Windows 7 SP1 / Server 2008 R2 RDP server
//!   requiring NLA ([MS-RDPBCGR] 2.2.1.2, 3.3.5.3): an RDP_NEG_REQ that
//!   includes PROTOCOL_HYBRID gets an RDP_NEG_RSP selecting HYBRID, then
//!   the TLS handshake of CredSSP (self-signed certificate, TLS 1.2) and a
//!   close after the client's first TSRequest; any other RDP_NEG_REQ (TLS
//!   only, standard RDP security) gets an RDP_NEG_FAILURE
//!   HYBRID_REQUIRED_BY_SERVER and a close; a request without negotiation
//!   data gets a Connection Confirm without it, and a close.
//! - `printer ADDR READY RECORD`: a raw printer port; RECORD holds
//!   `connections bytes` received so far (bytes must stay 0).
//! - `count ADDR FIRST-LAST READY RECORD`: listens on every port of the
//!   range; RECORD gets one line `port unix_millis` per connection.
//!
//! READY is a file created once every listener is bound. ADDR is
//! `ip:port` (`count`: `ip`), always an address inside the test's own
//! network namespace.
#![forbid(unsafe_code)]

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> &str {
        args.get(i).map(String::as_str).unwrap_or_else(|| {
            eprintln!("usage: tw-lab-responder MODE ADDR ... (see the source)");
            std::process::exit(2)
        })
    };
    let mode = arg(0).to_owned();
    match mode.as_str() {
        "count" => {
            let ip: IpAddr = arg(1).parse().expect("ip");
            let (a, b) = arg(2).split_once('-').expect("FIRST-LAST");
            let (a, b): (u16, u16) = (a.parse().expect("port"), b.parse().expect("port"));
            let record = arg(4).to_owned();
            let mut listeners = Vec::new();
            for port in a..=b {
                listeners.push(TcpListener::bind((ip, port)).expect("bind"));
            }
            std::fs::write(arg(3), b"ready").expect("ready file");
            let mut threads = Vec::new();
            for l in listeners {
                let record = record.clone();
                threads.push(std::thread::spawn(move || {
                    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
                    for conn in l.incoming() {
                        let ms = SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .map(|d| d.as_millis())
                            .unwrap_or(0);
                        if let Ok(mut f) =
                            OpenOptions::new().create(true).append(true).open(&record)
                        {
                            let _ = writeln!(f, "{port} {ms}");
                        }
                        drop(conn);
                    }
                }));
            }
            for t in threads {
                let _ = t.join();
            }
        }
        _ => {
            let addr: SocketAddr = arg(1).parse().expect("ip:port");
            // Only the RDP stand-in speaks TLS (CredSSP's first leg).
            let tls = if mode == "rdp-nla" {
                match credssp_tls_config() {
                    Ok(c) => Some(c),
                    Err(e) => {
                        eprintln!("rdp-nla: TLS configuration: {e:#}");
                        std::process::exit(1)
                    }
                }
            } else {
                None
            };
            let listener = TcpListener::bind(addr).expect("bind");
            std::fs::write(arg(2), b"ready").expect("ready file");
            let extra = args.get(3).cloned().unwrap_or_default();
            let total = Arc::new(AtomicU64::new(0));
            let conns = Arc::new(AtomicU64::new(0));
            for conn in listener.incoming() {
                let Ok(stream) = conn else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mode = mode.clone();
                let extra = extra.clone();
                let (total, conns) = (total.clone(), conns.clone());
                let tls = tls.clone();
                std::thread::spawn(move || match (mode.as_str(), &tls) {
                    ("smb-win7", _) => smb_win7(stream),
                    ("ssh-banner", _) => ssh_banner(stream, &extra),
                    ("http-iis6", _) => http_iis6(stream),
                    ("rdp-nla", Some(tls)) => rdp_nla(stream, tls),
                    ("printer", _) => printer(stream, &extra, &total, &conns),
                    (other, _) => eprintln!("unknown mode {other}"),
                });
            }
        }
    }
}

fn read_exactly(s: &mut TcpStream, n: usize) -> Option<Vec<u8>> {
    let mut b = vec![0u8; n];
    s.read_exact(&mut b).ok()?;
    Some(b)
}

// ------------------------------------------------------------------ printer

fn printer(mut s: TcpStream, record: &str, total: &AtomicU64, conns: &AtomicU64) {
    conns.fetch_add(1, Ordering::SeqCst);
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                total.fetch_add(n as u64, Ordering::SeqCst);
            }
        }
    }
    let line = format!(
        "{} {}\n",
        conns.load(Ordering::SeqCst),
        total.load(Ordering::SeqCst)
    );
    let _ = std::fs::write(record, line);
}

// ------------------------------------------------------------------ SSH, HTTP

fn ssh_banner(mut s: TcpStream, banner: &str) {
    let _ = s.write_all(format!("{banner}\r\n").as_bytes());
    // Read the client's identification (and whatever follows at once).
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 2048];
    let _ = s.read(&mut buf);
    std::thread::sleep(Duration::from_millis(200));
}

fn http_iis6(mut s: TcpStream) {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16384 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Type: text/html\r\n\
Server: Microsoft-IIS/6.0\r\nX-Powered-By: ASP.NET\r\nConnection: close\r\n\r\n";
    let _ = s.write_all(head);
}

// ------------------------------------------------------------------ RDP

/// requestedProtocols / selectedProtocol bit for CredSSP ([MS-RDPBCGR]
/// 2.2.1.1.1, 2.2.1.2.1).
const PROTOCOL_HYBRID: u32 = 0x0000_0002;
/// failureCode: the server requires CredSSP ([MS-RDPBCGR] 2.2.1.2.2).
const HYBRID_REQUIRED_BY_SERVER: u32 = 5;
/// RDP_NEG_RSP flags of a Windows 7 SP1 / Server 2008 R2 server:
/// EXTENDED_CLIENT_DATA_SUPPORTED only (the GFX, restricted-admin and
/// remote-guard flags came with later releases).
const NEG_RSP_FLAGS: u8 = 0x01;
/// The name in the stand-in's self-signed RDP certificate (Windows makes
/// one for its own computer name).
const RDP_CERT_NAME: &str = "LAB-RDP";

/// What an X.224 Connection Request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RdpRequest {
    /// No rdpNegData: a client that predates security negotiation.
    Legacy,
    /// An RDP_NEG_REQ with these requestedProtocols.
    Negotiate(u32),
}

/// What the NLA-enforcing server does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RdpAnswer {
    /// RDP_NEG_RSP selecting PROTOCOL_HYBRID, then TLS (CredSSP's first leg).
    SelectHybrid,
    /// RDP_NEG_FAILURE HYBRID_REQUIRED_BY_SERVER, then close.
    HybridRequired,
    /// A Connection Confirm without negotiation data, then close at the
    /// client's next PDU: this server serves no standard RDP security.
    LegacyConfirm,
}

/// Parses a whole TPKT holding an X.224 Connection Request ([MS-RDPBCGR]
/// 2.2.1.1); `None` where 3.3.5.3.1 says to drop the connection (lengths
/// inconsistent, shorter than 11 bytes, not a class 0 CR) or the
/// negotiation data is not an RDP_NEG_REQ.
fn parse_connection_request(pkt: &[u8]) -> Option<RdpRequest> {
    let [3, _, l0, l1, li, code, ..] = *pkt else {
        return None;
    };
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    if len != pkt.len() || len < 11 || 5 + usize::from(li) != len || code & 0xf0 != 0xe0 {
        return None;
    }
    // Class and options: class 0 only.
    if pkt[10] >> 4 != 0 {
        return None;
    }
    // The optional routingToken or cookie ("Cookie: ...\r\n") is ignored.
    let mut rest = &pkt[11..];
    if rest.starts_with(b"Cookie:") {
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        rest = &rest[end + 2..];
    }
    match *rest {
        [] => Some(RdpRequest::Legacy),
        // RDP_NEG_REQ: type 1, flags, length 8, requestedProtocols; an
        // rdpCorrelationInfo may follow.
        [0x01, _, 0x08, 0x00, p0, p1, p2, p3, ..] => {
            Some(RdpRequest::Negotiate(u32::from_le_bytes([p0, p1, p2, p3])))
        }
        _ => None,
    }
}

/// The answer of a server that requires NLA and knows CredSSP as
/// PROTOCOL_HYBRID (a Windows 7 SP1 / Server 2008 R2): it selects HYBRID
/// whenever it was asked for, and refuses TLS-only and standard RDP
/// security with HYBRID_REQUIRED_BY_SERVER ([MS-RDPBCGR] 2.2.1.2.2,
/// 3.3.5.3.2). Bits it does not know (HYBRID_EX, RDSTLS, both from
/// Windows 8 / Server 2012 on) are ignored.
fn rdp_answer(req: RdpRequest) -> RdpAnswer {
    match req {
        RdpRequest::Negotiate(p) if p & PROTOCOL_HYBRID != 0 => RdpAnswer::SelectHybrid,
        RdpRequest::Negotiate(_) => RdpAnswer::HybridRequired,
        RdpRequest::Legacy => RdpAnswer::LegacyConfirm,
    }
}

/// The X.224 Connection Confirm ([MS-RDPBCGR] 2.2.1.2, 3.3.5.3.2: DST-REF
/// 0, SRC-REF 0x1234, class 0) for `answer`.
fn connection_confirm(answer: RdpAnswer) -> Vec<u8> {
    let mut cc = vec![
        0x03, 0x00, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00,
    ];
    let neg = match answer {
        RdpAnswer::SelectHybrid => Some((0x02, NEG_RSP_FLAGS, PROTOCOL_HYBRID)),
        RdpAnswer::HybridRequired => Some((0x03, 0x00, HYBRID_REQUIRED_BY_SERVER)),
        RdpAnswer::LegacyConfirm => None,
    };
    if let Some((typ, flags, value)) = neg {
        cc.extend_from_slice(&[typ, flags, 0x08, 0x00]);
        cc.extend_from_slice(&value.to_le_bytes());
    }
    let len = cc.len(); // 11 or 19
    cc[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    cc[4] = (len - 5) as u8;
    cc
}

/// The TLS server of CredSSP's first leg: a self-signed certificate made
/// at start (as Windows makes one for Remote Desktop), TLS 1.2 (the
/// highest a Windows 7 SP1 speaks). The key is ECDSA P-256 where Windows
/// uses RSA 2048: ring, the only provider here, cannot generate RSA keys.
fn credssp_tls_config() -> anyhow::Result<Arc<rustls::ServerConfig>> {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CommonName, RDP_CERT_NAME);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(182);
    let cert = p.self_signed(&key)?;
    let key_der = rustls_pki_types::PrivateKeyDer::Pkcs8(
        rustls_pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()),
    );
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])?
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], key_der)?;
    Ok(Arc::new(config))
}

/// Closes after the peer has read what was sent: FIN, then wait (at most
/// 2 s a read, 64 KiB in all) for the peer to close too.
fn close_gracefully(mut s: TcpStream) {
    let _ = s.shutdown(std::net::Shutdown::Write);
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 1024];
    for _ in 0..64 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

fn rdp_nla(mut s: TcpStream, tls: &Arc<rustls::ServerConfig>) {
    // TPKT header (RFC 1006): version 3, reserved, length.
    let Some(mut pkt) = read_exactly(&mut s, 4) else {
        return;
    };
    let len = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    if pkt[0] != 3 || !(11..=512).contains(&len) {
        return;
    }
    let Some(rest) = read_exactly(&mut s, len - 4) else {
        return;
    };
    pkt.extend(rest);
    let Some(req) = parse_connection_request(&pkt) else {
        return;
    };
    let answer = rdp_answer(req);
    if s.write_all(&connection_confirm(answer)).is_err() {
        return;
    }
    match answer {
        RdpAnswer::SelectHybrid => credssp_first_leg(s, tls),
        // "After sending the RDP Negotiation Failure structure the server
        // MUST close the connection" ([MS-RDPBCGR] 3.3.5.3.2).
        RdpAnswer::HybridRequired => close_gracefully(s),
        RdpAnswer::LegacyConfirm => {
            // The client goes on with an MCS Connect Initial; nothing is
            // served without CredSSP.
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
        }
    }
}

/// CredSSP ([MS-CSSP] 3.1.5): the TLS handshake, then the client's first
/// TSRequest is read and the connection closed (close_notify), where a
/// Windows would answer with an NTLM CHALLENGE: nobody logs in here.
fn credssp_first_leg(s: TcpStream, tls: &Arc<rustls::ServerConfig>) {
    let Ok(conn) = rustls::ServerConnection::new(tls.clone()) else {
        return;
    };
    let mut stream = rustls::StreamOwned::new(conn, s);
    let mut buf = [0u8; 4096];
    // The handshake runs inside the first read.
    if stream.read(&mut buf).is_err() {
        return;
    }
    stream.conn.send_close_notify();
    let _ = stream.flush();
    close_gracefully(stream.sock);
}

// ------------------------------------------------------------------ SMB (Windows 7)

const NTLMSSP_OID: [u8; 12] = [
    0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a,
];
const SPNEGO_OID: [u8; 8] = [0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];

/// DER TLV with a definite length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend_from_slice(&[0x81, n as u8]);
    } else {
        out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(content);
    out
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn filetime_now() -> u64 {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    (unix + 11_644_473_600) * 10_000_000
}

/// SPNEGO NegTokenInit (RFC 4178 §4.2.1) announcing NTLMSSP.
fn neg_token_init() -> Vec<u8> {
    let mech_types = tlv(0xa0, &tlv(0x30, &NTLMSSP_OID));
    let init = tlv(0xa0, &tlv(0x30, &mech_types));
    tlv(0x60, &[SPNEGO_OID.to_vec(), init].concat())
}

/// SPNEGO NegTokenResp: accept-incomplete, NTLMSSP, the token.
fn neg_token_resp(token: &[u8]) -> Vec<u8> {
    let state = tlv(0xa0, &[0x0a, 0x01, 0x01]);
    let mech = tlv(0xa1, &NTLMSSP_OID);
    let tok = tlv(0xa2, &tlv(0x04, token));
    tlv(0xa1, &tlv(0x30, &[state, mech, tok].concat()))
}

/// The CHALLENGE_MESSAGE of a Windows 7 SP1 workstation LAB-W7.
fn ntlm_challenge() -> Vec<u8> {
    let target = utf16("LAB-W7");
    let mut info = Vec::new();
    for (id, v) in [
        (2u16, "LAB"),
        (1, "LAB-W7"),
        (4, "lab.example"),
        (3, "lab-w7.lab.example"),
    ] {
        let v = utf16(v);
        info.extend_from_slice(&id.to_le_bytes());
        info.extend_from_slice(&(v.len() as u16).to_le_bytes());
        info.extend(v);
    }
    info.extend_from_slice(&7u16.to_le_bytes());
    info.extend_from_slice(&8u16.to_le_bytes());
    info.extend_from_slice(&filetime_now().to_le_bytes());
    info.extend_from_slice(&[0, 0, 0, 0]); // MsvAvEOL
    let mut m = b"NTLMSSP\0".to_vec();
    m.extend_from_slice(&2u32.to_le_bytes());
    m.extend_from_slice(&(target.len() as u16).to_le_bytes());
    m.extend_from_slice(&(target.len() as u16).to_le_bytes());
    m.extend_from_slice(&56u32.to_le_bytes());
    m.extend_from_slice(&0xe28a_8215u32.to_le_bytes());
    m.extend_from_slice(&[0x5a, 0x17, 0x3c, 0x91, 0x04, 0xee, 0x42, 0x08]); // server challenge
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&(info.len() as u16).to_le_bytes());
    m.extend_from_slice(&(info.len() as u16).to_le_bytes());
    m.extend_from_slice(&((56 + target.len()) as u32).to_le_bytes());
    // VERSION: 6.1 build 7601, NTLM revision 15.
    m.extend_from_slice(&[6, 1]);
    m.extend_from_slice(&7601u16.to_le_bytes());
    m.extend_from_slice(&[0, 0, 0, 0x0f]);
    m.extend(target);
    m.extend(info);
    m
}

/// Flags2 bits ([MS-CIFS] 2.2.3.1, [MS-SMB] 2.2.3.1).
const FLAGS2_UNICODE: u16 = 0x8000;
const FLAGS2_NT_STATUS: u16 = 0x4000;
const FLAGS2_EXTENDED_SECURITY: u16 = 0x0800;
const FLAGS2_KNOWS_EAS: u16 = 0x0002;
const FLAGS2_LONG_NAMES: u16 = 0x0001;
/// Capabilities of Windows 7's SMB1 server ([MS-SMB] 2.2.4.5.2): UNICODE,
/// LARGE_FILES, NT_SMBS, RPC_REMOTE_APIS, STATUS32, LEVEL_II_OPLOCKS,
/// LOCK_AND_READ, NT_FIND, INFOLEVEL_PASSTHRU, LARGE_READX, LARGE_WRITEX,
/// LWIO (no raw or MPX mode, no DFS: a workstation). The value nmap's
/// `Microsoft Windows 7 - 10 microsoft-ds` rules read from real replies.
const WIN7_CAPABILITIES: u32 = 0x0001_e3fc;
const CAP_EXTENDED_SECURITY: u32 = 0x8000_0000;
/// MaxBufferSize of a Windows workstation (4356; servers say 16644).
const WIN7_MAX_BUFFER_SIZE: u32 = 4356;
/// The 8-byte challenge of the non-extended-security negotiate response.
const WIN7_ENCRYPTION_KEY: [u8; 8] = [0x3e, 0x81, 0x0c, 0x77, 0xa5, 0x19, 0xd2, 0x60];

/// The request's Flags2.
fn flags2_of(req: &[u8]) -> u16 {
    u16::from_le_bytes([req[10], req[11]])
}

/// An SMB1 reply header answering `req` (32 bytes; `req` is at least
/// that). Flags and Flags2 follow the request, as Windows does: the reply
/// bit on the request's path flags; the client's UNICODE, EXTENDED_SECURITY,
/// KNOWS_EAS and LONG_NAMES bits, with NT status codes.
fn smb1_reply_header(req: &[u8], command: u8, status: u32, uid: u16) -> Vec<u8> {
    let mut h = vec![0xff, b'S', b'M', b'B', command];
    h.extend_from_slice(&status.to_le_bytes());
    h.push(0x80 | (req[9] & 0x18)); // reply; case-insensitive, canonicalised paths as asked
    let mask = FLAGS2_UNICODE | FLAGS2_EXTENDED_SECURITY | FLAGS2_KNOWS_EAS | FLAGS2_LONG_NAMES;
    let flags2 = (flags2_of(req) & mask) | FLAGS2_NT_STATUS;
    h.extend_from_slice(&flags2.to_le_bytes());
    h.extend_from_slice(&req[12..14]); // PIDHigh
    h.extend_from_slice(&[0; 8]); // signature
    h.extend_from_slice(&[0, 0]); // reserved
    h.extend_from_slice(&req[24..26]); // TID
    h.extend_from_slice(&req[26..28]); // PIDLow
    h.extend_from_slice(&uid.to_le_bytes());
    h.extend_from_slice(&req[30..32]); // MID
    h
}

/// A NUL-terminated UTF-16LE string.
fn utf16z(s: &str) -> Vec<u8> {
    let mut v = utf16(s);
    v.extend_from_slice(&[0, 0]);
    v
}

/// The SMB_COM_NEGOTIATE response selecting the dialect at `index`
/// (NT LM 0.12): with extended security when the client's Flags2 asks for
/// it ([MS-SMB] 2.2.4.5.2.1: ServerGUID and a SPNEGO NegTokenInit), else
/// the non-extended form ([MS-SMB] 2.2.4.5.2.2, [MS-CIFS] 2.2.4.52.2: the
/// 8-byte challenge, DomainName, ServerName). Windows writes both names in
/// UTF-16 whatever the request's Flags2 says (so do nmap's fingerprints of
/// it).
fn smb1_negotiate_response(req: &[u8], index: u16) -> Vec<u8> {
    let extended = flags2_of(req) & FLAGS2_EXTENDED_SECURITY != 0;
    let mut m = smb1_reply_header(req, 0x72, 0, 0);
    m.push(17);
    m.extend_from_slice(&index.to_le_bytes());
    m.push(0x03); // user security, encrypted passwords; signing not required
    m.extend_from_slice(&50u16.to_le_bytes()); // MaxMpxCount
    m.extend_from_slice(&1u16.to_le_bytes()); // MaxNumberVcs
    m.extend_from_slice(&WIN7_MAX_BUFFER_SIZE.to_le_bytes());
    m.extend_from_slice(&65536u32.to_le_bytes()); // MaxRawSize
    m.extend_from_slice(&0u32.to_le_bytes()); // SessionKey
    let caps = WIN7_CAPABILITIES | if extended { CAP_EXTENDED_SECURITY } else { 0 };
    m.extend_from_slice(&caps.to_le_bytes());
    m.extend_from_slice(&filetime_now().to_le_bytes());
    m.extend_from_slice(&0i16.to_le_bytes()); // time zone
    let bytes = if extended {
        m.push(0); // ChallengeLength
        let guid = [
            0x6b, 0x2a, 0x51, 0x0e, 0x9d, 0x43, 0x4c, 0x1f, 0xa2, 0x71, 0x35, 0x0b, 0xc4, 0x88,
            0x19, 0xd6,
        ];
        [guid.to_vec(), neg_token_init()].concat()
    } else {
        m.push(WIN7_ENCRYPTION_KEY.len() as u8); // ChallengeLength
        [
            WIN7_ENCRYPTION_KEY.to_vec(),
            utf16z("LAB"),
            utf16z("LAB-W7"),
        ]
        .concat()
    };
    m.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    m.extend(bytes);
    m
}

/// Index of "NT LM 0.12" among the dialects of an SMB_COM_NEGOTIATE.
fn nt_lm_index(req: &[u8]) -> Option<u16> {
    let wc = usize::from(*req.get(32)?);
    let at = 33 + 2 * wc;
    let bc = usize::from(u16::from_le_bytes([*req.get(at)?, *req.get(at + 1)?]));
    let bytes = req.get(at + 2..at + 2 + bc)?;
    bytes
        .split(|b| *b == 0)
        .filter(|d| !d.is_empty())
        .position(|d| d.first() == Some(&0x02) && &d[1..] == b"NT LM 0.12")
        .and_then(|i| u16::try_from(i).ok())
}

/// The NTLMSSP message type inside a request's security blob.
fn ntlm_message_type(req: &[u8]) -> Option<u32> {
    let at = req.windows(8).position(|w| w == b"NTLMSSP\0")?;
    let t = req.get(at + 8..at + 12)?;
    Some(u32::from_le_bytes([t[0], t[1], t[2], t[3]]))
}

fn smb_send(s: &mut TcpStream, msg: &[u8]) -> bool {
    let n = msg.len() as u32;
    let mut f = vec![0x00, (n >> 16) as u8, (n >> 8) as u8, n as u8];
    f.extend_from_slice(msg);
    s.write_all(&f).is_ok()
}

fn smb_win7(mut s: TcpStream) {
    loop {
        let Some(h) = read_exactly(&mut s, 4) else {
            return;
        };
        let len = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
        if h[0] != 0 || !(32..=65536).contains(&len) {
            return;
        }
        let Some(req) = read_exactly(&mut s, len) else {
            return;
        };
        if &req[..4] != b"\xffSMB" {
            // SMB2 (0xFE 'SMB') or anything else: SMB2 is disabled here.
            return;
        }
        match req[4] {
            0x72 => {
                let Some(index) = nt_lm_index(&req) else {
                    return;
                };
                if !smb_send(&mut s, &smb1_negotiate_response(&req, index)) {
                    return;
                }
            }
            0x73 => {
                if ntlm_message_type(&req) != Some(1) {
                    // An AUTHENTICATE (or anything but a NEGOTIATE): nobody
                    // logs in here. The client may try again.
                    let mut m = smb1_reply_header(&req, 0x73, 0xc000_006d, 0);
                    m.push(0);
                    m.extend_from_slice(&0u16.to_le_bytes());
                    if !smb_send(&mut s, &m) {
                        return;
                    }
                    continue;
                }
                let blob = neg_token_resp(&ntlm_challenge());
                let mut m = smb1_reply_header(&req, 0x73, 0xc000_0016, 0x0800);
                m.push(4);
                m.extend_from_slice(&[0xff, 0x00, 0x00, 0x00]); // no AndX
                m.extend_from_slice(&0u16.to_le_bytes()); // Action
                m.extend_from_slice(&(blob.len() as u16).to_le_bytes());
                let mut bytes = blob;
                let unicode = flags2_of(&req) & FLAGS2_UNICODE != 0;
                // Unicode strings start on an even offset from the header.
                if unicode && (m.len() + 2 + bytes.len()) % 2 == 1 {
                    bytes.push(0);
                }
                for text in [
                    "Windows 7 Professional 7601 Service Pack 1",
                    "Windows 7 Professional 6.1",
                ] {
                    if unicode {
                        bytes.extend(utf16z(text));
                    } else {
                        bytes.extend_from_slice(text.as_bytes());
                        bytes.push(0);
                    }
                }
                m.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
                m.extend(bytes);
                if !smb_send(&mut s, &m) {
                    return;
                }
            }
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TPKT + X.224 Connection Request with nmap's cookie and, when
    /// `protocols` is given, an RDP_NEG_REQ.
    fn connection_request(protocols: Option<u32>) -> Vec<u8> {
        let mut body = vec![0xe0, 0x00, 0x00, 0x00, 0x00, 0x00];
        body.extend_from_slice(b"Cookie: mstshash=nmap\r\n");
        if let Some(p) = protocols {
            body.extend_from_slice(&[0x01, 0x00, 0x08, 0x00]);
            body.extend_from_slice(&p.to_le_bytes());
        }
        let mut pkt = vec![0x03, 0x00];
        pkt.extend_from_slice(&((5 + body.len()) as u16).to_be_bytes());
        pkt.push(body.len() as u8);
        pkt.extend(body);
        pkt
    }

    const SELECTED_HYBRID: [u8; 19] = [
        0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00, 0x02, 0x01, 0x08, 0x00,
        0x02, 0x00, 0x00, 0x00,
    ];
    const HYBRID_REQUIRED: [u8; 19] = [
        0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00, 0x03, 0x00, 0x08, 0x00,
        0x05, 0x00, 0x00, 0x00,
    ];

    fn confirm_for(pkt: &[u8]) -> Option<Vec<u8>> {
        parse_connection_request(pkt).map(|r| connection_confirm(rdp_answer(r)))
    }

    #[test]
    fn rdp_requests_including_hybrid_get_hybrid_selected() {
        // SSL|HYBRID (nmap, FreeRDP), HYBRID alone, SSL|HYBRID|HYBRID_EX (mstsc).
        for p in [0x03, 0x02, 0x0b] {
            assert_eq!(
                confirm_for(&connection_request(Some(p))),
                Some(SELECTED_HYBRID.to_vec()),
                "requestedProtocols 0x{p:x}"
            );
        }
    }

    #[test]
    fn rdp_tls_only_standard_and_unknown_requests_are_refused_with_hybrid_required() {
        // SSL, RDP, HYBRID_EX alone and RDSTLS alone (unknown to Windows 7).
        for p in [0x01, 0x00, 0x08, 0x04] {
            assert_eq!(
                confirm_for(&connection_request(Some(p))),
                Some(HYBRID_REQUIRED.to_vec()),
                "requestedProtocols 0x{p:x}"
            );
        }
    }

    #[test]
    fn rdp_request_without_negotiation_data_gets_a_confirm_without_it() {
        assert_eq!(
            confirm_for(&connection_request(None)),
            Some(vec![
                0x03, 0x00, 0x00, 0x0b, 0x06, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00
            ])
        );
        // Without a cookie either (nmap's TerminalServer probe).
        let bare = [
            0x03, 0x00, 0x00, 0x0b, 0x06, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(parse_connection_request(&bare), Some(RdpRequest::Legacy));
    }

    #[test]
    fn rdp_inconsistent_or_foreign_requests_are_dropped_without_an_answer() {
        let good = connection_request(Some(0x03));
        let mut wrong_tpkt_len = good.clone();
        wrong_tpkt_len[3] += 1;
        let mut wrong_li = good.clone();
        wrong_li[4] -= 1;
        let mut class_2 = good.clone();
        class_2[10] = 0x20;
        let mut not_cr = good.clone();
        not_cr[5] = 0xf0;
        let mut bad_neg_type = good.clone();
        let at = good.len() - 8;
        bad_neg_type[at] = 0x02;
        let mut no_crlf = good.clone();
        let cr = good
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("cookie end");
        no_crlf[cr] = b'x';
        for (what, pkt) in [
            ("tpkt length", wrong_tpkt_len),
            ("length indicator", wrong_li),
            ("class 2", class_2),
            ("data TPDU", not_cr),
            ("negotiation type", bad_neg_type),
            ("cookie without CRLF", no_crlf),
            ("short", good[..10].to_vec()),
        ] {
            assert_eq!(parse_connection_request(&pkt), None, "{what}");
        }
    }

    /// Accepts any server certificate: the test checks the handshake, not
    /// the stand-in's identity.
    #[derive(Debug)]
    struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

    impl rustls::client::danger::ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _: &rustls_pki_types::CertificateDer<'_>,
            _: &[rustls_pki_types::CertificateDer<'_>],
            _: &rustls_pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls_pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &rustls_pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &rustls_pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    /// One connection to an `rdp-nla` stand-in on loopback: sends the
    /// request, returns the 19-byte confirm and the stream.
    fn rdp_exchange(protocols: u32) -> ([u8; 19], TcpStream) {
        let tls = credssp_tls_config().expect("tls config");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            if let Ok((s, _)) = listener.accept() {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                rdp_nla(s, &tls);
            }
        });
        let mut c = TcpStream::connect(addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        c.write_all(&connection_request(Some(protocols)))
            .expect("send CR");
        let mut cc = [0u8; 19];
        c.read_exact(&mut cc).expect("confirm");
        (cc, c)
    }

    #[test]
    fn rdp_refusal_is_followed_by_the_server_closing() {
        let (cc, mut c) = rdp_exchange(0x01);
        assert_eq!(cc, HYBRID_REQUIRED);
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).expect("clean close");
        assert!(rest.is_empty(), "nothing after the failure: {rest:?}");
    }

    #[test]
    fn rdp_selected_hybrid_leads_into_a_tls_1_2_handshake_and_a_close_at_credssp() {
        let (cc, c) = rdp_exchange(0x03);
        assert_eq!(cc, SELECTED_HYBRID);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
            .with_no_client_auth();
        let name = rustls_pki_types::ServerName::try_from("LAB-RDP").expect("name");
        let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
        let mut tls = rustls::StreamOwned::new(conn, c);
        // A TSRequest ([MS-CSSP] 2.2.1) stand-in: its bytes are not read.
        tls.write_all(&[0x30, 0x03, 0x02, 0x01, 0x06])
            .expect("handshake and first TSRequest");
        assert_eq!(
            tls.conn.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_2)
        );
        let certs = tls.conn.peer_certificates().expect("server certificate");
        assert_eq!(certs.len(), 1, "one self-signed certificate");
        let mut buf = [0u8; 64];
        assert_eq!(
            tls.read(&mut buf).expect("close_notify, then EOF"),
            0,
            "the stand-in ends where CredSSP authentication would begin"
        );
    }

    /// nmap's SMBProgNeg probe (nmap-service-probes), without the 4-byte
    /// session header: Flags2 0x4001, no extended security; "NT LM 0.12"
    /// is dialect 7.
    fn nmap_negotiate() -> Vec<u8> {
        let mut m =
            b"\xffSMBr\0\0\0\0\x08\x01\x40\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x40\x06\0\0\x01\0\0\x81\0"
                .to_vec();
        for d in [
            "PC NETWORK PROGRAM 1.0",
            "MICROSOFT NETWORKS 1.03",
            "MICROSOFT NETWORKS 3.0",
            "LANMAN1.0",
            "LM1.2X002",
            "Samba",
            "NT LANMAN 1.0",
            "NT LM 0.12",
        ] {
            m.push(0x02);
            m.extend_from_slice(d.as_bytes());
            m.push(0);
        }
        m
    }

    #[test]
    fn smb_negotiate_without_extended_security_answers_with_challenge_domain_and_server() {
        let req = nmap_negotiate();
        let index = nt_lm_index(&req).expect("NT LM 0.12 offered");
        assert_eq!(index, 7);
        let r = smb1_negotiate_response(&req, index);
        // Header: the reply flag on the request's 0x08; Flags2 as asked.
        assert_eq!(&r[..9], b"\xffSMBr\0\0\0\0");
        assert_eq!(r[9], 0x88);
        assert_eq!(u16::from_le_bytes([r[10], r[11]]), 0x4001);
        assert_eq!(&r[26..32], &req[26..32], "PID, UID, MID echoed");
        assert_eq!(r[32], 17, "WordCount");
        assert_eq!(u16::from_le_bytes([r[33], r[34]]), 7, "DialectIndex");
        let caps = u32::from_le_bytes([r[52], r[53], r[54], r[55]]);
        assert_eq!(caps, 0x0001_e3fc, "no CAP_EXTENDED_SECURITY");
        assert_eq!(r[66], 8, "ChallengeLength");
        let bc = usize::from(u16::from_le_bytes([r[67], r[68]]));
        let bytes = &r[69..];
        assert_eq!(bytes.len(), bc);
        assert_eq!(&bytes[..8], &WIN7_ENCRYPTION_KEY);
        let names = [utf16z("LAB"), utf16z("LAB-W7")].concat();
        assert_eq!(&bytes[8..], &names[..]);
    }

    #[test]
    fn smb_negotiate_with_extended_security_answers_with_guid_and_spnego() {
        let mut req = nmap_negotiate();
        req[10..12].copy_from_slice(&0xc801u16.to_le_bytes());
        let r = smb1_negotiate_response(&req, 7);
        assert_eq!(u16::from_le_bytes([r[10], r[11]]), 0xc801);
        let caps = u32::from_le_bytes([r[52], r[53], r[54], r[55]]);
        assert_eq!(caps, 0x8001_e3fc, "CAP_EXTENDED_SECURITY");
        assert_eq!(r[66], 0, "ChallengeLength");
        let bc = usize::from(u16::from_le_bytes([r[67], r[68]]));
        assert_eq!(r.len() - 69, bc);
        assert_eq!(&r[69 + 16..], &neg_token_init()[..], "GUID, then SPNEGO");
    }
}
