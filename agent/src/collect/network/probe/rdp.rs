//! RDP security negotiation ([MS-RDPBCGR] 2.2.1.1 and 2.2.1.2): which
//! security protocol the server selects, and whether it insists on NLA.
//!
//! Sends, on two connections: an X.224 Connection Request (in a TPKT,
//! RFC 1006) carrying an RDP Negotiation Request asking for TLS only
//! (`PROTOCOL_SSL`), and one asking for standard RDP security
//! (`PROTOCOL_RDP`). Reads the Connection Confirm and closes: never a TLS
//! handshake, an MCS Connect Initial, or credentials.
//!
//! Verdict: NLA is enforced only when the TLS-only request is refused with
//! `HYBRID_REQUIRED_BY_SERVER`; a server that selects TLS or standard RDP
//! security lets a client reach the logon screen without authenticating
//! first.
//!
//! Wire format (all multi-byte X.224 fields big-endian, RDP fields
//! little-endian): TPKT `03 00 LEN(2)`; X.224 CR `LI E0 DST(2) SRC(2)
//! CLASS`; RDP_NEG_REQ `01 FLAGS 08 00 PROTOCOLS(4)`. The confirm is
//! `LI D0 ...` followed by RDP_NEG_RSP `02 FLAGS 08 00 SELECTED(4)` or
//! RDP_NEG_FAILURE `03 FLAGS 08 00 CODE(4)`, or nothing (a server that
//! predates negotiation, i.e. standard RDP security).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::bytes::{be16, le32, slice, u8_at};
use super::{Conn, ParseError, ProbeError, ProbeLimits};

/// requestedProtocols / selectedProtocol values ([MS-RDPBCGR] 2.2.1.1.1).
pub const PROTOCOL_RDP: u32 = 0x0000_0000;
pub const PROTOCOL_SSL: u32 = 0x0000_0001;
pub const PROTOCOL_HYBRID: u32 = 0x0000_0002;
pub const PROTOCOL_RDSTLS: u32 = 0x0000_0004;
pub const PROTOCOL_HYBRID_EX: u32 = 0x0000_0008;
pub const PROTOCOL_RDSAAD: u32 = 0x0000_0010;

/// failureCode values ([MS-RDPBCGR] 2.2.1.2.2).
pub const SSL_REQUIRED_BY_SERVER: u32 = 1;
pub const SSL_NOT_ALLOWED_BY_SERVER: u32 = 2;
pub const SSL_CERT_NOT_ON_SERVER: u32 = 3;
pub const INCONSISTENT_FLAGS: u32 = 4;
pub const HYBRID_REQUIRED_BY_SERVER: u32 = 5;
pub const SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER: u32 = 6;

/// The X.224 Connection Request with an RDP Negotiation Request for
/// `protocols`, no cookie.
pub fn encode_connection_request(protocols: u32) -> Vec<u8> {
    let mut neg = vec![0x01, 0x00, 0x08, 0x00];
    neg.extend_from_slice(&protocols.to_le_bytes());
    // X.224 CR header after LI: code, DST-REF, SRC-REF, class = 6 bytes.
    let li = 6 + neg.len();
    let total = 4 + 1 + li;
    let mut out = vec![0x03, 0x00];
    out.extend_from_slice(&(total as u16).to_be_bytes()); // 19, fits
    out.push(li as u8); // 14, fits
    out.extend_from_slice(&[0xE0, 0x00, 0x00, 0x00, 0x00, 0x00]);
    out.extend_from_slice(&neg);
    out
}

/// The TPKT's total length (RFC 1006: version 3, length includes the
/// 4-byte header).
pub fn tpkt_len(b: &[u8]) -> Result<usize, ParseError> {
    let version = u8_at(b, 0, "tpkt version")?;
    if version != 3 {
        return Err(ParseError::invalid("tpkt version"));
    }
    let len = usize::from(be16(b, 2, "tpkt length")?);
    if len < 7 {
        return Err(ParseError::invalid("tpkt length"));
    }
    Ok(len)
}

/// What a Connection Confirm says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum RdpNegotiation {
    /// RDP_NEG_RSP: the server selected this protocol.
    Selected {
        /// Protocol name ("rdp", "ssl", "hybrid", "hybrid_ex", ...).
        protocol: String,
        /// The raw selectedProtocol value.
        code: u32,
        /// responseFlags.
        flags: u8,
    },
    /// RDP_NEG_FAILURE with its failureCode.
    Failure { code: u32, name: String },
    /// A Connection Confirm without negotiation data: the server predates
    /// RDP 5.2 negotiation and uses standard RDP security.
    Legacy,
}

fn protocol_name(code: u32) -> String {
    match code {
        PROTOCOL_RDP => "rdp".into(),
        PROTOCOL_SSL => "ssl".into(),
        PROTOCOL_HYBRID => "hybrid".into(),
        PROTOCOL_RDSTLS => "rdstls".into(),
        PROTOCOL_HYBRID_EX => "hybrid_ex".into(),
        PROTOCOL_RDSAAD => "rdsaad".into(),
        other => format!("0x{other:08x}"),
    }
}

fn failure_name(code: u32) -> String {
    match code {
        SSL_REQUIRED_BY_SERVER => "SSL_REQUIRED_BY_SERVER".into(),
        SSL_NOT_ALLOWED_BY_SERVER => "SSL_NOT_ALLOWED_BY_SERVER".into(),
        SSL_CERT_NOT_ON_SERVER => "SSL_CERT_NOT_ON_SERVER".into(),
        INCONSISTENT_FLAGS => "INCONSISTENT_FLAGS".into(),
        HYBRID_REQUIRED_BY_SERVER => "HYBRID_REQUIRED_BY_SERVER".into(),
        SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER => "SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER".into(),
        other => format!("UNKNOWN_0x{other:08x}"),
    }
}

/// Parses one TPKT holding an X.224 Connection Confirm.
pub fn parse_connection_confirm(b: &[u8]) -> Result<RdpNegotiation, ParseError> {
    let len = tpkt_len(b)?;
    let pkt = slice(b, 0, len, "tpkt")?;
    let li = usize::from(u8_at(pkt, 4, "x224 length indicator")?);
    // LI counts the bytes after itself within the TPDU header+data.
    if li < 6 || 5 + li > pkt.len() {
        return Err(ParseError::invalid("x224 length indicator"));
    }
    let code = u8_at(pkt, 5, "x224 code")?;
    if code & 0xF0 != 0xD0 {
        return Err(ParseError::invalid("x224 tpdu is not a connection confirm"));
    }
    let rest = slice(pkt, 11, 5 + li - 11, "x224 variable part")?;
    if rest.len() < 8 {
        return Ok(RdpNegotiation::Legacy);
    }
    let typ = u8_at(rest, 0, "rdp negotiation type")?;
    let flags = u8_at(rest, 1, "rdp negotiation flags")?;
    let length = u16::from_le_bytes([
        u8_at(rest, 2, "rdp negotiation length")?,
        u8_at(rest, 3, "rdp negotiation length")?,
    ]);
    if length != 8 {
        return Err(ParseError::invalid("rdp negotiation length"));
    }
    let value = le32(rest, 4, "rdp negotiation value")?;
    match typ {
        0x02 => Ok(RdpNegotiation::Selected {
            protocol: protocol_name(value),
            code: value,
            flags,
        }),
        0x03 => Ok(RdpNegotiation::Failure {
            code: value,
            name: failure_name(value),
        }),
        _ => Err(ParseError::invalid("rdp negotiation type")),
    }
}

/// The outcome of one request: the confirm, or why there was none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum RdpAttempt {
    Confirmed(RdpNegotiation),
    /// No confirm (closed, reset, timeout, garbage), with the reason.
    NoAnswer {
        reason: String,
    },
}

/// What the RDP negotiation showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RdpInfo {
    /// The answer to the TLS-only request.
    pub tls_only: RdpAttempt,
    /// The answer to the standard-RDP-security request.
    pub standard: RdpAttempt,
    /// True only when the TLS-only request was refused with
    /// HYBRID_REQUIRED_BY_SERVER.
    pub nla_enforced: bool,
    /// The server accepts sessions without NLA (it selected TLS or standard
    /// RDP security for one of the requests).
    pub accepts_without_nla: bool,
}

/// Whether NLA is enforced, from the two answers.
pub fn verdict(tls_only: &RdpAttempt, standard: &RdpAttempt) -> (bool, bool) {
    let nla_enforced = matches!(
        tls_only,
        RdpAttempt::Confirmed(RdpNegotiation::Failure { code, .. }) if *code == HYBRID_REQUIRED_BY_SERVER
    );
    let selects_without_nla = |a: &RdpAttempt| {
        matches!(
            a,
            RdpAttempt::Confirmed(RdpNegotiation::Legacy)
                | RdpAttempt::Confirmed(RdpNegotiation::Selected {
                    code: PROTOCOL_RDP | PROTOCOL_SSL,
                    ..
                })
        )
    };
    let accepts = selects_without_nla(tls_only) || selects_without_nla(standard);
    (nla_enforced, accepts && !nla_enforced)
}

async fn attempt(
    addr: SocketAddr,
    limits: &ProbeLimits,
    deadline: tokio::time::Instant,
    protocols: u32,
) -> Result<RdpAttempt, ProbeError> {
    let mut conn = Conn::connect(addr, limits, deadline).await?;
    let result = async {
        conn.send(&encode_connection_request(protocols)).await?;
        let frame = conn.read_frame(tpkt_len).await?;
        Ok::<_, ProbeError>(parse_connection_confirm(&frame)?)
    }
    .await;
    conn.close().await;
    match result {
        Ok(n) => Ok(RdpAttempt::Confirmed(n)),
        Err(e @ (ProbeError::Deadline | ProbeError::PrinterPort { .. })) => Err(e),
        Err(e) => Ok(RdpAttempt::NoAnswer {
            reason: e.to_string(),
        }),
    }
}

/// Runs both negotiations against `addr`. Fails when the first connection
/// cannot be made, or when neither request got a confirm.
pub async fn probe_rdp(addr: SocketAddr, limits: &ProbeLimits) -> Result<RdpInfo, ProbeError> {
    let deadline = limits.deadline_from_now();
    let tls_only = attempt(addr, limits, deadline, PROTOCOL_SSL).await?;
    let standard = attempt(addr, limits, deadline, PROTOCOL_RDP).await?;
    if let (RdpAttempt::NoAnswer { reason }, RdpAttempt::NoAnswer { .. }) = (&tls_only, &standard) {
        return Err(ProbeError::Unexpected(format!(
            "no X.224 connection confirm: {reason}"
        )));
    }
    let (nla_enforced, accepts_without_nla) = verdict(&tls_only, &standard);
    Ok(RdpInfo {
        tls_only,
        standard,
        nla_enforced,
        accepts_without_nla,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{quick_limits, serve, Script};
    use super::*;
    use proptest::prelude::*;

    /// A Connection Confirm as [MS-RDPBCGR] 2.2.1.2 lays it out, written
    /// from the spec (no Windows here to record one): TPKT, X.224 CC with
    /// SRC-REF 0x1234 (as xrdp sends too), then RDP_NEG_RSP or
    /// RDP_NEG_FAILURE. The HYBRID_REQUIRED_BY_SERVER form decodes in
    /// tshark 4.0 as "Negotiate Failure, failureCode Server requires
    /// Enhanced RDP Security with CredSSP" without a malformed mark.
    fn confirm(typ: u8, flags: u8, value: u32) -> Vec<u8> {
        let mut b = vec![
            0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00,
        ];
        b.extend_from_slice(&[typ, flags, 0x08, 0x00]);
        b.extend_from_slice(&value.to_le_bytes());
        b
    }

    #[test]
    fn connection_requests_match_the_spec_bytes() {
        // [MS-RDPBCGR] 4.1.1 shape without the cookie: TPKT 03 00 00 13,
        // X.224 0e e0 00 00 00 00 00, RDP_NEG_REQ 01 00 08 00 + protocols.
        assert_eq!(
            encode_connection_request(PROTOCOL_SSL),
            [
                0x03, 0x00, 0x00, 0x13, 0x0e, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x08,
                0x00, 0x01, 0x00, 0x00, 0x00
            ]
        );
        assert_eq!(
            encode_connection_request(PROTOCOL_RDP)[15..],
            [0x00, 0x00, 0x00, 0x00]
        );
    }

    #[test]
    fn parses_selected_protocol_and_failures() {
        assert_eq!(
            parse_connection_confirm(&confirm(0x02, 0x1f, PROTOCOL_SSL)),
            Ok(RdpNegotiation::Selected {
                protocol: "ssl".into(),
                code: 1,
                flags: 0x1f
            })
        );
        assert_eq!(
            parse_connection_confirm(&confirm(0x03, 0, HYBRID_REQUIRED_BY_SERVER)),
            Ok(RdpNegotiation::Failure {
                code: 5,
                name: "HYBRID_REQUIRED_BY_SERVER".into()
            })
        );
        // No negotiation data: legacy server.
        let legacy = [
            0x03, 0x00, 0x00, 0x0b, 0x06, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00,
        ];
        assert_eq!(
            parse_connection_confirm(&legacy),
            Ok(RdpNegotiation::Legacy)
        );
    }

    #[test]
    fn malformed_confirms_are_errors() {
        let mut bad_li = confirm(0x02, 0, 1);
        bad_li[4] = 0x40;
        assert!(parse_connection_confirm(&bad_li).is_err());
        let mut cr_not_cc = confirm(0x02, 0, 1);
        cr_not_cc[5] = 0xe0;
        assert!(parse_connection_confirm(&cr_not_cc).is_err());
        let mut bad_len = confirm(0x02, 0, 1);
        bad_len[13] = 0x09;
        assert!(parse_connection_confirm(&bad_len).is_err());
        assert!(parse_connection_confirm(&[0x03, 0x00, 0x00, 0x13, 0x0e]).is_err());
        assert!(parse_connection_confirm(b"HTTP/1.1 400").is_err());
    }

    #[test]
    fn nla_verdict_follows_the_tls_only_refusal() {
        let sel = |code| {
            RdpAttempt::Confirmed(RdpNegotiation::Selected {
                protocol: protocol_name(code),
                code,
                flags: 0,
            })
        };
        let fail = |code| {
            RdpAttempt::Confirmed(RdpNegotiation::Failure {
                code,
                name: failure_name(code),
            })
        };
        // Windows with NLA required: both refused with HYBRID_REQUIRED.
        assert_eq!(verdict(&fail(5), &fail(5)), (true, false));
        // xrdp security_layer=rdp: TLS refused (SSL_NOT_ALLOWED), RDP selected.
        assert_eq!(verdict(&fail(2), &sel(PROTOCOL_RDP)), (false, true));
        // TLS selected: no NLA.
        assert_eq!(verdict(&sel(PROTOCOL_SSL), &fail(1)), (false, true));
        // Silence on both: nothing is claimed.
        let none = RdpAttempt::NoAnswer { reason: "x".into() };
        assert_eq!(verdict(&none, &none), (false, false));
    }

    proptest! {
        #[test]
        fn parser_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_connection_confirm(&bytes);
            let _ = tpkt_len(&bytes);
        }

        #[test]
        fn garbage_after_the_tpkt_is_ignored(tail in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut b = confirm(0x02, 0, PROTOCOL_SSL);
            b.extend_from_slice(&tail);
            prop_assert!(parse_connection_confirm(&b).is_ok());
        }
    }

    /// xrdp 0.9.21.1 answers, recorded from the live tests below: with
    /// security_layer=rdp it selects standard RDP security even for a
    /// TLS-only request; with security_layer=tls it refuses the standard
    /// request with SSL_REQUIRED_BY_SERVER.
    const XRDP_RDP_SELECTED: [u8; 19] = [
        0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00, 0x02, 0x01, 0x08, 0x00,
        0x00, 0x00, 0x00, 0x00,
    ];
    const XRDP_SSL_REQUIRED: [u8; 19] = [
        0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00, 0x03, 0x00, 0x08, 0x00,
        0x01, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn recorded_xrdp_answers_parse() {
        assert_eq!(
            parse_connection_confirm(&XRDP_RDP_SELECTED),
            Ok(RdpNegotiation::Selected {
                protocol: "rdp".into(),
                code: PROTOCOL_RDP,
                flags: 1
            })
        );
        assert_eq!(
            parse_connection_confirm(&XRDP_SSL_REQUIRED),
            Ok(RdpNegotiation::Failure {
                code: SSL_REQUIRED_BY_SERVER,
                name: "SSL_REQUIRED_BY_SERVER".into()
            })
        );
    }

    /// Starts xrdp on 127.0.0.1:`port` with `security_layer`.
    fn xrdp(port: u16, layer: &str) -> super::super::testutil::live::Daemon {
        use super::super::testutil::live;
        live::require("/usr/sbin/xrdp", "xrdp");
        // xrdp insists on its socket directory (in the test's private /run).
        std::fs::create_dir_all("/run/xrdp/sockdir").expect("create /run/xrdp/sockdir");
        let dir = live::temp_dir("xrdp");
        let (cert, key) = live::self_signed_cert(&dir);
        let ini = format!(
            "[Globals]\nini_version=1\nfork=false\nport=tcp://127.0.0.1:{port}\n\
             security_layer={layer}\ncrypt_level=high\ncertificate={}\nkey_file={}\n\
             ssl_protocols=TLSv1.2, TLSv1.3\n[Logging]\nLogFile={}\nLogLevel=INFO\nEnableSyslog=false\n",
            cert.display(),
            key.display(),
            dir.join("xrdp.log").display()
        );
        let path = dir.join("xrdp.ini");
        std::fs::write(&path, ini).expect("xrdp.ini");
        let path = path.display().to_string();
        live::spawn("/usr/sbin/xrdp", &["--nodaemon", "--config", &path], dir)
    }

    /// Live: xrdp with standard RDP security accepts sessions without NLA.
    #[tokio::test]
    async fn live_xrdp_rdp_security_is_not_nla() {
        use super::super::testutil::live;
        if !live::isolated(&live::test_path(
            module_path!(),
            "live_xrdp_rdp_security_is_not_nla",
        )) {
            return;
        }
        let port = live::free_tcp_port();
        let daemon = xrdp(port, "rdp");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        assert!(
            live::wait_listening(addr, std::time::Duration::from_secs(5)).await,
            "xrdp did not start: {}",
            daemon.log()
        );
        let info = probe_rdp(addr, &quick_limits()).await.expect("rdp");
        assert!(!info.nla_enforced);
        assert!(info.accepts_without_nla);
        assert_eq!(
            info.standard,
            RdpAttempt::Confirmed(parse_connection_confirm(&XRDP_RDP_SELECTED).expect("vector"))
        );
    }

    /// Live: xrdp with TLS security selects TLS (still no NLA: xrdp never
    /// offers CredSSP).
    #[tokio::test]
    async fn live_xrdp_tls_security_selects_ssl_without_nla() {
        use super::super::testutil::live;
        if !live::isolated(&live::test_path(
            module_path!(),
            "live_xrdp_tls_security_selects_ssl_without_nla",
        )) {
            return;
        }
        let port = live::free_tcp_port();
        let daemon = xrdp(port, "tls");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        assert!(
            live::wait_listening(addr, std::time::Duration::from_secs(5)).await,
            "xrdp did not start: {}",
            daemon.log()
        );
        let info = probe_rdp(addr, &quick_limits()).await.expect("rdp");
        assert!(matches!(
            info.tls_only,
            RdpAttempt::Confirmed(RdpNegotiation::Selected {
                code: PROTOCOL_SSL,
                ..
            })
        ));
        assert_eq!(
            info.standard,
            RdpAttempt::Confirmed(parse_connection_confirm(&XRDP_SSL_REQUIRED).expect("vector"))
        );
        assert!(!info.nla_enforced);
        assert!(info.accepts_without_nla);
    }

    #[tokio::test]
    async fn nla_enforcing_responder_is_recognised() {
        let refuse = Script::Steps(vec![(true, confirm(0x03, 0, HYBRID_REQUIRED_BY_SERVER))]);
        let addr = serve(vec![refuse]).await;
        let info = probe_rdp(addr, &quick_limits()).await.expect("rdp");
        assert!(info.nla_enforced);
        assert!(!info.accepts_without_nla);
    }

    #[tokio::test]
    async fn tpkt_announcing_a_huge_length_is_refused() {
        let huge = Script::Steps(vec![(true, vec![0x03, 0x00, 0xff, 0xff, 0x0e, 0xd0])]);
        let addr = serve(vec![huge]).await;
        let limits = ProbeLimits {
            max_bytes: 1024,
            ..quick_limits()
        };
        let err = probe_rdp(addr, &limits).await.expect_err("no confirm");
        assert!(matches!(err, ProbeError::Unexpected(_)), "{err:?}");
    }
}
