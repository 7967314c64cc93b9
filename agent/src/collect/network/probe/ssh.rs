//! SSH identification (RFC 4253 §4.2): the server's first line
//! `SSH-protoversion-softwareversion SP comments CR LF`.
//!
//! The probe sends nothing: it reads the server's identification and
//! closes. A server may send other lines first (RFC 4253 §4.2); at most
//! [`MAX_PRE_LINES`] are skipped. The identification line is at most 255
//! bytes with its CR LF (a bare LF is accepted, as OpenSSH does);
//! `protoversion` `1.x` means SSH protocol 1 only and `1.99` both 1 and 2.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{clean_text, Conn, ParseError, ProbeError, ProbeLimits};

/// Longest identification line, CR LF included (RFC 4253 §4.2).
pub const MAX_IDENT_LEN: usize = 255;
/// Most lines accepted before the identification.
pub const MAX_PRE_LINES: usize = 32;
/// Longest line accepted before the identification.
const MAX_PRE_LINE_LEN: usize = 1024;

/// What the identification line says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshInfo {
    /// The identification line without CR LF (cleaned), the banner evidence.
    pub banner: String,
    /// `protoversion`: "2.0", "1.99", "1.5", ...
    pub protocol_version: String,
    /// `softwareversion`, e.g. "OpenSSH_9.2p1".
    pub software: String,
    /// The comments after the first space, e.g. "Debian-2+deb12u3".
    pub comments: Option<String>,
    /// Whether SSH protocol 1 is offered (protoversion 1.x, including 1.99).
    pub protocol1: bool,
    /// Product and version split from `software` at the first `_` or `/`
    /// ("OpenSSH", "9.2p1").
    pub product: Option<String>,
    pub version: Option<String>,
    /// Lines the server sent before the identification, cleaned.
    pub pre_lines: Vec<String>,
}

/// Parses the start of an SSH server's output. Returns the identification
/// and the bytes it used; [`ParseError::Truncated`] until a complete
/// identification line has arrived.
pub fn parse_ssh_ident(b: &[u8]) -> Result<(SshInfo, usize), ParseError> {
    let mut at = 0usize;
    let mut pre_lines = Vec::new();
    loop {
        let rest = b.get(at..).unwrap_or_default();
        let Some(nl) = rest.iter().position(|&c| c == b'\n') else {
            // An identification line can be told apart before its end.
            let limit = if rest.starts_with(b"SSH-") {
                MAX_IDENT_LEN
            } else {
                MAX_PRE_LINE_LEN
            };
            if rest.len() >= limit {
                return Err(ParseError::TooLarge { what: "ssh line" });
            }
            return Err(ParseError::truncated("ssh identification"));
        };
        let line = rest.get(..nl).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let used = at + nl + 1;
        if line.starts_with(b"SSH-") {
            if nl + 1 > MAX_IDENT_LEN {
                return Err(ParseError::TooLarge {
                    what: "ssh identification",
                });
            }
            return Ok((parse_ident_line(line, pre_lines)?, used));
        }
        if nl > MAX_PRE_LINE_LEN {
            return Err(ParseError::TooLarge { what: "ssh line" });
        }
        if pre_lines.len() >= MAX_PRE_LINES {
            return Err(ParseError::TooLarge {
                what: "lines before the ssh identification",
            });
        }
        pre_lines.push(clean_text(line));
        at = used;
    }
}

/// Parses one complete identification line (without CR LF).
pub fn parse_ssh(line: &[u8]) -> Result<SshInfo, ParseError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    parse_ident_line(line, Vec::new())
}

fn parse_ident_line(line: &[u8], pre_lines: Vec<String>) -> Result<SshInfo, ParseError> {
    let body = line
        .strip_prefix(b"SSH-")
        .ok_or(ParseError::invalid("ssh identification"))?;
    // RFC 4253: US-ASCII printable, no '-' or space inside the versions.
    if body.iter().any(|&c| c == 0 || c > 0x7e) {
        return Err(ParseError::invalid("ssh identification characters"));
    }
    let text = String::from_utf8_lossy(body);
    let (versions, comments) = match text.split_once(' ') {
        Some((v, c)) => (v, Some(c)),
        None => (text.as_ref(), None),
    };
    let (protocol, software) = versions
        .split_once('-')
        .ok_or(ParseError::invalid("ssh identification versions"))?;
    if protocol.is_empty()
        || software.is_empty()
        || !protocol.bytes().all(|c| c.is_ascii_digit() || c == b'.')
    {
        return Err(ParseError::invalid("ssh protocol version"));
    }
    let protocol1 = protocol.starts_with("1.");
    let (product, version) = match software.split_once(['_', '/']) {
        Some((p, v)) if !p.is_empty() && !v.is_empty() => (
            Some(clean_text(p.as_bytes())),
            Some(clean_text(v.as_bytes())),
        ),
        _ => (None, None),
    };
    Ok(SshInfo {
        banner: clean_text(line),
        protocol_version: clean_text(protocol.as_bytes()),
        software: clean_text(software.as_bytes()),
        comments: comments
            .map(|c| clean_text(c.as_bytes()))
            .filter(|c| !c.is_empty()),
        protocol1,
        product,
        version,
        pre_lines,
    })
}

/// Reads the SSH identification of `addr`; sends nothing.
pub async fn probe_ssh(addr: SocketAddr, limits: &ProbeLimits) -> Result<SshInfo, ProbeError> {
    let deadline = limits.deadline_from_now();
    let mut conn = Conn::connect(addr, limits, deadline).await?;
    let info = conn.read_parsed(parse_ssh_ident).await;
    conn.close().await;
    info
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{quick_limits, serve, Script};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_an_openssh_identification_with_comments() {
        let (info, used) =
            parse_ssh_ident(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\nrest").expect("valid");
        assert_eq!(used, 40);
        assert_eq!(info.protocol_version, "2.0");
        assert_eq!(info.software, "OpenSSH_9.2p1");
        assert_eq!(info.comments.as_deref(), Some("Debian-2+deb12u3"));
        assert_eq!(info.product.as_deref(), Some("OpenSSH"));
        assert_eq!(info.version.as_deref(), Some("9.2p1"));
        assert!(!info.protocol1);
        assert_eq!(info.banner, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3");
    }

    #[test]
    fn protocol_1_99_and_1_5_are_protocol1() {
        let a = parse_ssh(b"SSH-1.99-Cisco-1.25\r\n").expect("valid");
        assert!(a.protocol1);
        assert_eq!(a.protocol_version, "1.99");
        assert_eq!(a.software, "Cisco-1.25");
        assert_eq!(a.product, None);
        let b = parse_ssh(b"SSH-1.5-OpenSSH_3.4p1").expect("valid");
        assert!(b.protocol1);
        assert_eq!(b.version.as_deref(), Some("3.4p1"));
    }

    #[test]
    fn lines_before_the_identification_are_skipped_and_kept() {
        let (info, _) =
            parse_ssh_ident(b"Welcome\r\nauthorised use only\nSSH-2.0-dropbear_2019.78\r\n")
                .expect("valid");
        assert_eq!(info.pre_lines, vec!["Welcome", "authorised use only"]);
        assert_eq!(info.product.as_deref(), Some("dropbear"));
        assert_eq!(info.version.as_deref(), Some("2019.78"));
    }

    #[test]
    fn incomplete_line_is_truncated_and_garbage_is_invalid() {
        assert!(matches!(
            parse_ssh_ident(b"SSH-2.0-Open"),
            Err(ParseError::Truncated { .. })
        ));
        assert!(matches!(
            parse_ssh(b"SSH-2.0\r\n"),
            Err(ParseError::Invalid { .. })
        ));
        assert!(matches!(
            parse_ssh(b"SSH-x.y-foo\r\n"),
            Err(ParseError::Invalid { .. })
        ));
        assert!(matches!(
            parse_ssh(b"HTTP/1.1 400\r\n"),
            Err(ParseError::Invalid { .. })
        ));
    }

    #[test]
    fn overlong_identification_is_refused_before_its_end() {
        let mut long = b"SSH-2.0-".to_vec();
        long.extend(std::iter::repeat_n(b'a', 300));
        assert!(matches!(
            parse_ssh_ident(&long),
            Err(ParseError::TooLarge { .. })
        ));
        let many = b"x\n".repeat(MAX_PRE_LINES + 1);
        assert!(matches!(
            parse_ssh_ident(&many),
            Err(ParseError::TooLarge { .. })
        ));
    }

    proptest! {
        #[test]
        fn parser_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_ssh_ident(&bytes);
            let _ = parse_ssh(&bytes);
        }

        #[test]
        fn garbage_after_a_valid_line_is_not_consumed(tail in proptest::collection::vec(any::<u8>(), 0..100)) {
            let mut b = b"SSH-2.0-X_1\r\n".to_vec();
            b.extend_from_slice(&tail);
            let (info, used) = parse_ssh_ident(&b).expect("valid head");
            prop_assert_eq!(used, 13);
            prop_assert_eq!(info.software, "X_1");
        }
    }

    #[tokio::test]
    async fn probe_reads_a_served_banner() {
        let addr = serve(vec![Script::Send(
            b"SSH-2.0-OpenSSH_7.2p2 Ubuntu-4\r\n".to_vec(),
        )])
        .await;
        let info = probe_ssh(addr, &quick_limits()).await.expect("banner");
        assert_eq!(info.version.as_deref(), Some("7.2p2"));
    }

    /// Live: OpenSSH's sshd on 127.0.0.1 with a throw-away host key.
    #[tokio::test]
    async fn live_openssh_identification() {
        use super::super::testutil::live;
        use std::time::Duration;
        if !live::isolated(&live::test_path(
            module_path!(),
            "live_openssh_identification",
        )) {
            return;
        }
        live::require("/usr/sbin/sshd", "openssh-server");
        live::require("ssh-keygen", "openssh-client");
        // sshd insists on its privilege separation directory (private /run).
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        let dir = live::temp_dir("sshd");
        let key = dir.join("host_key");
        let made = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status();
        assert!(made.is_ok_and(|s| s.success()), "ssh-keygen");
        let port = live::free_tcp_port();
        let conf = dir.join("sshd_config");
        std::fs::write(
            &conf,
            format!(
                "ListenAddress 127.0.0.1\nPort {port}\nHostKey {}\nPidFile {}\nUsePAM no\n",
                key.display(),
                dir.join("sshd.pid").display()
            ),
        )
        .expect("config");
        let conf = conf.display().to_string();
        let daemon = live::spawn("/usr/sbin/sshd", &["-D", "-e", "-f", &conf], dir);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        assert!(
            live::wait_listening(addr, Duration::from_secs(5)).await,
            "sshd did not start: {}",
            daemon.log()
        );
        let info = probe_ssh(addr, &quick_limits())
            .await
            .expect("identification");
        assert_eq!(info.protocol_version, "2.0");
        assert_eq!(info.product.as_deref(), Some("OpenSSH"));
        assert!(!info.protocol1);
        assert!(
            info.banner.starts_with("SSH-2.0-OpenSSH_"),
            "{}",
            info.banner
        );
    }

    #[tokio::test]
    async fn probe_sends_nothing() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            s.write_all(b"SSH-2.0-OpenSSH_9.2p1\r\n")
                .await
                .expect("banner");
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got).await;
            got
        });
        probe_ssh(addr, &quick_limits()).await.expect("banner");
        assert!(server.await.expect("join").is_empty());
    }

    #[tokio::test]
    async fn probe_of_an_endless_line_stops() {
        let addr = serve(vec![Script::Endless(b"aaaaaaaa".to_vec())]).await;
        let err = probe_ssh(addr, &quick_limits())
            .await
            .expect_err("no banner");
        assert!(
            matches!(err, ProbeError::Parse(ParseError::TooLarge { .. })),
            "{err:?}"
        );
    }
}
