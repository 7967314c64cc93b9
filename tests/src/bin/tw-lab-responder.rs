//! Small stand-ins for devices that cannot run here, for the network
//! namespace tests of the network collector. Each mode answers with bytes
//! written from the protocol specifications (no Windows to record from):
//!
//! - `smb-win7 ADDR READY`: an SMB1-only Windows 7 SP1 ([MS-SMB] 2.2.4.5.2.1
//!   negotiate with extended security, [MS-SMB] 2.2.4.6.2 session setup
//!   carrying an [MS-NLMP] 2.2.1.2 CHALLENGE, VERSION 6.1.7601, NativeOS
//!   "Windows 7 Professional 7601 Service Pack 1"); SMB2 requests are
//!   closed (SMB2 disabled); an AUTHENTICATE gets STATUS_LOGON_FAILURE.
//! - `ssh-banner ADDR READY BANNER`: an identification line (RFC 4253 §4.2),
//!   then it reads the client's and closes.
//! - `http-iis6 ADDR READY`: answers every request with IIS 6 headers.
//! - `rdp-nla ADDR READY`: answers every X.224 Connection Request with an
//!   RDP Negotiation Failure HYBRID_REQUIRED_BY_SERVER ([MS-RDPBCGR]
//!   2.2.1.2.2): NLA enforced.
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
                std::thread::spawn(move || match mode.as_str() {
                    "smb-win7" => smb_win7(stream),
                    "ssh-banner" => ssh_banner(stream, &extra),
                    "http-iis6" => http_iis6(stream),
                    "rdp-nla" => rdp_nla(stream),
                    "printer" => printer(stream, &extra, &total, &conns),
                    other => eprintln!("unknown mode {other}"),
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

fn rdp_nla(mut s: TcpStream) {
    // TPKT header (RFC 1006): version 3, reserved, length.
    let Some(h) = read_exactly(&mut s, 4) else {
        return;
    };
    let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if h[0] != 3 || !(11..=512).contains(&len) || read_exactly(&mut s, len - 4).is_none() {
        return;
    }
    // X.224 Connection Confirm (LI 14, CC, DST-REF 0, SRC-REF 0x1234,
    // class 0) with RDP_NEG_FAILURE (type 3, flags 0, length 8,
    // failureCode 5 = HYBRID_REQUIRED_BY_SERVER).
    let cc = [
        0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00, 0x03, 0x00, 0x08, 0x00,
        0x05, 0x00, 0x00, 0x00,
    ];
    let _ = s.write_all(&cc);
    std::thread::sleep(Duration::from_millis(200));
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

/// An SMB1 reply header answering `req` (32 bytes).
fn smb1_reply_header(req: &[u8], command: u8, status: u32, uid: u16) -> Vec<u8> {
    let mut h = vec![0xff, b'S', b'M', b'B', command];
    h.extend_from_slice(&status.to_le_bytes());
    h.push(0x98); // reply, case-insensitive, canonicalised paths
    let req_flags2 = u16::from_le_bytes([req[10], req[11]]);
    let flags2 = (req_flags2 & 0x8000) | 0x4000 | 0x0800 | 0x0003;
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
                let mut m = smb1_reply_header(&req, 0x72, 0, 0);
                m.push(17);
                m.extend_from_slice(&index.to_le_bytes());
                m.push(0x03); // user security, encrypted passwords; signing not required
                m.extend_from_slice(&50u16.to_le_bytes()); // MaxMpxCount
                m.extend_from_slice(&1u16.to_le_bytes()); // MaxNumberVcs
                m.extend_from_slice(&16644u32.to_le_bytes()); // MaxBufferSize
                m.extend_from_slice(&65536u32.to_le_bytes()); // MaxRawSize
                m.extend_from_slice(&0u32.to_le_bytes()); // SessionKey
                m.extend_from_slice(&0x8000_f3fdu32.to_le_bytes()); // caps, EXTENDED_SECURITY
                m.extend_from_slice(&filetime_now().to_le_bytes());
                m.extend_from_slice(&0i16.to_le_bytes()); // time zone
                m.push(0); // ChallengeLength
                let guid = [
                    0x6b, 0x2a, 0x51, 0x0e, 0x9d, 0x43, 0x4c, 0x1f, 0xa2, 0x71, 0x35, 0x0b, 0xc4,
                    0x88, 0x19, 0xd6,
                ];
                let blob = neg_token_init();
                m.extend_from_slice(&((guid.len() + blob.len()) as u16).to_le_bytes());
                m.extend_from_slice(&guid);
                m.extend(blob);
                if !smb_send(&mut s, &m) {
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
                // Unicode strings start on an even offset from the header.
                if (m.len() + 2 + bytes.len()) % 2 == 1 {
                    bytes.push(0);
                }
                for text in [
                    "Windows 7 Professional 7601 Service Pack 1",
                    "Windows 7 Professional 6.1",
                ] {
                    bytes.extend(utf16(text));
                    bytes.extend_from_slice(&[0, 0]);
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
