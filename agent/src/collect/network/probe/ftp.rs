//! FTP (RFC 959, RFC 2389 FEAT, RFC 4217 AUTH TLS): banner, TLS offer and
//! anonymous login.
//!
//! Conversation: read the greeting (220); `FEAT`; when FEAT is not
//! understood, `AUTH TLS` (a 234 means TLS is offered; the probe then never
//! starts TLS but closes and reconnects for the next step); `USER
//! anonymous`, then `PASS` with [`ANONYMOUS_PASSWORD`] (an address-like
//! string, as RFC 1635 asks) when the server wants one; 230 means anonymous
//! login is accepted; `QUIT`. Never a transfer, a directory command, a
//! PORT/PASV, or a real account.
//!
//! Replies: `ddd text` on one line, or `ddd-text` ... `ddd text` over
//! several (RFC 959 §4.2); lines end with CR LF (bare LF accepted). A reply
//! is at most [`MAX_REPLY`] bytes and [`MAX_LINES`] lines.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{clean_text, Conn, ParseError, ProbeError, ProbeLimits};

/// Largest reply accepted.
pub const MAX_REPLY: usize = 16 * 1024;
/// Most lines in one reply.
pub const MAX_LINES: usize = 256;
/// The password sent with `USER anonymous`.
pub const ANONYMOUS_PASSWORD: &str = "trustwatch@example.invalid";

/// One FTP reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FtpReply {
    pub code: u16,
    /// The lines of the reply, cleaned (the first keeps its code prefix
    /// stripped, like the last).
    pub lines: Vec<String>,
}

impl FtpReply {
    /// "220 (vsFTPd 3.0.3)": the code and the text of the last line.
    pub fn summary(&self) -> String {
        let text = self.lines.last().map(String::as_str).unwrap_or_default();
        format!("{} {}", self.code, text).trim().to_owned()
    }
}

/// Parses one reply at the start of `b`; returns it and the bytes used.
/// [`ParseError::Truncated`] until the reply's last line has arrived.
pub fn parse_ftp_reply(b: &[u8]) -> Result<(FtpReply, usize), ParseError> {
    let mut at = 0usize;
    let mut code: Option<(u16, [u8; 3])> = None;
    let mut lines = Vec::new();
    loop {
        let rest = b.get(at..).unwrap_or_default();
        let Some(nl) = rest.iter().position(|&c| c == b'\n') else {
            if b.len() >= MAX_REPLY {
                return Err(ParseError::TooLarge { what: "ftp reply" });
            }
            if code.is_none() {
                check_code_prefix(rest)?;
            }
            return Err(ParseError::truncated("ftp reply"));
        };
        let line = rest.get(..nl).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        at += nl + 1;
        if at > MAX_REPLY {
            return Err(ParseError::TooLarge { what: "ftp reply" });
        }
        if lines.len() >= MAX_LINES {
            return Err(ParseError::TooLarge {
                what: "ftp reply lines",
            });
        }
        match code {
            None => {
                check_code_prefix(line)?;
                let digits = line.get(..3).ok_or(ParseError::invalid("ftp reply code"))?;
                let value = digits
                    .iter()
                    .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
                let sep = line.get(3).copied();
                lines.push(clean_text(line.get(4..).unwrap_or_default()));
                match sep {
                    None | Some(b' ') => return done(value, lines, at),
                    Some(b'-') => code = Some((value, [digits[0], digits[1], digits[2]])),
                    Some(_) => return Err(ParseError::invalid("ftp reply separator")),
                }
            }
            Some((value, digits)) => {
                let last = line.len() >= 3
                    && line.get(..3) == Some(&digits[..])
                    && matches!(line.get(3), None | Some(b' '));
                if last {
                    lines.push(clean_text(line.get(4..).unwrap_or_default()));
                    return done(value, lines, at);
                }
                lines.push(clean_text(line));
            }
        }
    }
}

fn done(code: u16, lines: Vec<String>, used: usize) -> Result<(FtpReply, usize), ParseError> {
    Ok((FtpReply { code, lines }, used))
}

/// Checks that `b` starts like a reply code: three digits, the first 1-5.
fn check_code_prefix(b: &[u8]) -> Result<(), ParseError> {
    for (i, &c) in b.iter().take(3).enumerate() {
        let ok = if i == 0 {
            (b'1'..=b'5').contains(&c)
        } else {
            c.is_ascii_digit()
        };
        if !ok {
            return Err(ParseError::invalid("ftp reply code"));
        }
    }
    if b.len() < 3 {
        return Err(ParseError::truncated("ftp reply code"));
    }
    Ok(())
}

/// Whether anonymous login was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anonymous {
    Accepted,
    Refused,
    /// The probe could not tell (the conversation ended early).
    Unknown,
}

/// What the FTP service showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FtpInfo {
    /// The greeting, e.g. "220 (vsFTPd 3.0.3)"; multi-line greetings are
    /// joined by `\n` after the first line.
    pub banner: String,
    /// Features listed by FEAT (empty when FEAT is not supported).
    pub features: Vec<String>,
    /// Whether `AUTH TLS` is offered; `None` when the server did not say.
    pub auth_tls: Option<bool>,
    /// Where `auth_tls` comes from: "feat" or "auth" (the AUTH TLS reply).
    pub auth_tls_source: Option<String>,
    pub anonymous: Anonymous,
    /// The reply that decided `anonymous`, e.g. "230 Login successful.".
    pub anonymous_reply: Option<String>,
}

/// Whether a FEAT list offers TLS (`AUTH TLS`, or `AUTH` naming TLS).
pub fn feat_offers_tls(features: &[String]) -> bool {
    features.iter().any(|f| {
        let f = f.trim().to_ascii_uppercase();
        f.starts_with("AUTH") && f.contains("TLS")
    })
}

/// Runs the FTP conversation against `addr`.
pub async fn probe_ftp(addr: SocketAddr, limits: &ProbeLimits) -> Result<FtpInfo, ProbeError> {
    let deadline = limits.deadline_from_now();
    let mut conn = Conn::connect(addr, limits, deadline).await?;
    let banner = match greeting(&mut conn).await {
        Ok(b) => b,
        Err(e) => {
            conn.close().await;
            return Err(e);
        }
    };
    let mut info = FtpInfo {
        banner: banner_text(&banner),
        features: Vec::new(),
        auth_tls: None,
        auth_tls_source: None,
        anonymous: Anonymous::Unknown,
        anonymous_reply: None,
    };
    // FEAT, then AUTH TLS when FEAT says nothing.
    let mut reconnect = false;
    match command(&mut conn, "FEAT").await {
        Ok(feat) if feat.code == 211 => {
            let n = feat.lines.len();
            info.features = feat
                .lines
                .iter()
                .take(n.saturating_sub(1))
                .skip(1)
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty())
                .collect();
            info.auth_tls = Some(feat_offers_tls(&info.features));
            info.auth_tls_source = Some("feat".into());
        }
        Ok(_) => match command(&mut conn, "AUTH TLS").await {
            Ok(auth) => {
                // 234: proceed with TLS (we will not); 334: ADAT needed.
                let offered = matches!(auth.code, 234 | 334);
                info.auth_tls = Some(offered);
                info.auth_tls_source = Some("auth".into());
                reconnect = offered;
            }
            Err(_) => reconnect = true,
        },
        Err(_) => reconnect = true,
    }
    if reconnect {
        conn.close().await;
        conn = Conn::connect(addr, limits, deadline).await?;
        if greeting(&mut conn).await.is_err() {
            conn.close().await;
            return Ok(info);
        }
    }
    // Anonymous login.
    if let Ok(user) = command(&mut conn, "USER anonymous").await {
        let decisive = match user.code {
            230 => Some((Anonymous::Accepted, user)),
            331 | 332 => match command(&mut conn, &format!("PASS {ANONYMOUS_PASSWORD}")).await {
                Ok(pass) if pass.code == 230 || pass.code == 202 => {
                    Some((Anonymous::Accepted, pass))
                }
                Ok(pass) if (400..600).contains(&pass.code) => Some((Anonymous::Refused, pass)),
                _ => None,
            },
            c if (400..600).contains(&c) => Some((Anonymous::Refused, user)),
            _ => None,
        };
        if let Some((verdict, reply)) = decisive {
            info.anonymous = verdict;
            info.anonymous_reply = Some(reply.summary());
        }
    }
    // Best effort goodbye.
    let _ = command(&mut conn, "QUIT").await;
    conn.close().await;
    Ok(info)
}

async fn greeting(conn: &mut Conn) -> Result<FtpReply, ProbeError> {
    let mut reply = conn.read_parsed(parse_ftp_reply).await?;
    // 120: "service ready in nnn minutes"; a 220 may follow.
    if reply.code == 120 {
        reply = conn.read_parsed(parse_ftp_reply).await?;
    }
    if reply.code != 220 {
        return Err(ProbeError::Unexpected(format!(
            "FTP greeting is not 220: {}",
            reply.summary()
        )));
    }
    Ok(reply)
}

async fn command(conn: &mut Conn, line: &str) -> Result<FtpReply, ProbeError> {
    conn.send(format!("{line}\r\n").as_bytes()).await?;
    conn.read_parsed(parse_ftp_reply).await
}

fn banner_text(reply: &FtpReply) -> String {
    let mut lines = reply.lines.iter().filter(|l| !l.is_empty());
    let first = lines.next().cloned().unwrap_or_default();
    let mut text = format!("{} {}", reply.code, first).trim().to_owned();
    for l in lines {
        text.push('\n');
        text.push_str(l);
    }
    text.chars().take(super::MAX_TEXT_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{quick_limits, serve, Script};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_single_and_multi_line_replies_rfc_959() {
        let (r, used) = parse_ftp_reply(b"220 (vsFTPd 3.0.3)\r\n331 x").expect("valid");
        assert_eq!(r.code, 220);
        assert_eq!(r.lines, vec!["(vsFTPd 3.0.3)"]);
        assert_eq!(used, 20);
        let feat = b"211-Features:\r\n EPRT\r\n AUTH TLS\r\n211- not the end\r\n211 End\r\n";
        let (r, used) = parse_ftp_reply(feat).expect("valid");
        assert_eq!(r.code, 211);
        assert_eq!(used, feat.len());
        assert_eq!(
            r.lines,
            vec!["Features:", "EPRT", "AUTH TLS", "211- not the end", "End"]
        );
        assert_eq!(r.summary(), "211 End");
        // A bare code is a complete reply.
        let (r, _) = parse_ftp_reply(b"230\n").expect("valid");
        assert_eq!(r.code, 230);
    }

    #[test]
    fn incomplete_replies_are_truncated_and_garbage_invalid() {
        assert!(matches!(
            parse_ftp_reply(b"220 hel"),
            Err(ParseError::Truncated { .. })
        ));
        assert!(matches!(
            parse_ftp_reply(b"22"),
            Err(ParseError::Truncated { .. })
        ));
        assert!(matches!(
            parse_ftp_reply(b"211-a\r\n b\r\n"),
            Err(ParseError::Truncated { .. })
        ));
        for bad in [&b"SSH-2.0\r\n"[..], b"620 x\r\n", b"2x0 x\r\n", b"220x\r\n"] {
            assert!(
                matches!(parse_ftp_reply(bad), Err(ParseError::Invalid { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn endless_multi_line_reply_is_refused() {
        let b = [b"220-hi\r\n".as_slice(), &b"x\r\n".repeat(MAX_LINES + 1)].concat();
        assert!(matches!(
            parse_ftp_reply(&b),
            Err(ParseError::TooLarge { .. })
        ));
    }

    #[test]
    fn feat_tls_detection() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(feat_offers_tls(&f(&["EPRT", "AUTH TLS", "PBSZ"])));
        assert!(feat_offers_tls(&f(&["AUTH SSL TLS"])));
        assert!(!feat_offers_tls(&f(&["AUTH SSL"])));
        assert!(!feat_offers_tls(&f(&["EPRT", "PASV", "UTF8"])));
    }

    proptest! {
        #[test]
        fn parser_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok((_, used)) = parse_ftp_reply(&bytes) {
                prop_assert!(used <= bytes.len());
            }
        }
    }

    fn steps(s: &[(bool, &[u8])]) -> Script {
        Script::Steps(s.iter().map(|(r, b)| (*r, b.to_vec())).collect())
    }

    #[tokio::test]
    async fn anonymous_with_password_and_feat_without_tls() {
        let addr = serve(vec![steps(&[
            (false, b"220-Welcome\r\n220 ProFTPD 1.3.3 Server\r\n"),
            (true, b"211-Features:\r\n MDTM\r\n SIZE\r\n211 End\r\n"),
            (
                true,
                b"331 Anonymous login ok, send your complete email address\r\n",
            ),
            (true, b"230 Anonymous access granted\r\n"),
            (true, b"221 Goodbye.\r\n"),
        ])])
        .await;
        let info = probe_ftp(addr, &quick_limits()).await.expect("ftp");
        assert_eq!(info.banner, "220 Welcome\nProFTPD 1.3.3 Server");
        assert_eq!(info.features, vec!["MDTM", "SIZE"]);
        assert_eq!(info.auth_tls, Some(false));
        assert_eq!(info.anonymous, Anonymous::Accepted);
        assert_eq!(
            info.anonymous_reply.as_deref(),
            Some("230 Anonymous access granted")
        );
    }

    #[tokio::test]
    async fn auth_tls_accepted_without_feat_reconnects_then_anonymous_refused() {
        let addr = serve(vec![
            steps(&[
                (false, b"220 Microsoft FTP Service\r\n"),
                (true, b"500 FEAT not understood\r\n"),
                (true, b"234 AUTH command ok. Expecting TLS Negotiation.\r\n"),
            ]),
            steps(&[
                (false, b"220 Microsoft FTP Service\r\n"),
                (true, b"331 Password required\r\n"),
                (true, b"530 User cannot log in.\r\n"),
                (true, b"221 Goodbye.\r\n"),
            ]),
        ])
        .await;
        // vsftpd answers a failed login after a delay (delay_failed_login=1).
        let limits = ProbeLimits {
            read_timeout: std::time::Duration::from_secs(4),
            deadline: std::time::Duration::from_secs(15),
            ..quick_limits()
        };
        let info = probe_ftp(addr, &limits).await.expect("ftp");
        assert_eq!(info.auth_tls, Some(true));
        assert_eq!(info.auth_tls_source.as_deref(), Some("auth"));
        assert_eq!(info.anonymous, Anonymous::Refused);
    }

    /// Starts vsftpd on 127.0.0.1 with `extra` settings.
    fn vsftpd(port: u16, extra: &str) -> super::super::testutil::live::Daemon {
        use super::super::testutil::live;
        live::require("/usr/sbin/vsftpd", "vsftpd");
        let dir = live::temp_dir("vsftpd");
        let root = dir.join("anon");
        std::fs::create_dir_all(&root).expect("anon root");
        // vsftpd refuses a writable anonymous root.
        let _ = std::process::Command::new("chmod")
            .arg("555")
            .arg(&root)
            .status();
        let conf = format!(
            "listen=YES\nlisten_address=127.0.0.1\nlisten_port={port}\nbackground=NO\n\
             seccomp_sandbox=NO\nanon_root={r}\nsecure_chroot_dir={r}\nwrite_enable=NO\n{extra}\n",
            r = root.display()
        );
        let path = dir.join("vsftpd.conf");
        std::fs::write(&path, conf).expect("vsftpd.conf");
        let path = path.display().to_string();
        live::spawn("/usr/sbin/vsftpd", &[&path], dir)
    }

    /// Live: vsftpd with anonymous login and no TLS.
    #[tokio::test]
    async fn live_vsftpd_accepts_anonymous_without_tls() {
        use super::super::testutil::live;
        if !live::isolated(&live::test_path(
            module_path!(),
            "live_vsftpd_accepts_anonymous_without_tls",
        )) {
            return;
        }
        let port = live::free_tcp_port();
        let daemon = vsftpd(port, "anonymous_enable=YES\nlocal_enable=NO");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        assert!(
            live::wait_listening(addr, std::time::Duration::from_secs(5)).await,
            "vsftpd did not start: {}",
            daemon.log()
        );
        let info = probe_ftp(addr, &quick_limits()).await.expect("ftp");
        assert!(info.banner.starts_with("220 (vsFTPd "), "{}", info.banner);
        assert_eq!(info.auth_tls, Some(false));
        assert_eq!(info.anonymous, Anonymous::Accepted);
        assert_eq!(
            info.anonymous_reply.as_deref(),
            Some("230 Login successful.")
        );
    }

    /// Live: vsftpd with TLS offered and anonymous login disabled.
    #[tokio::test]
    async fn live_vsftpd_offers_tls_and_refuses_anonymous() {
        use super::super::testutil::live;
        if !live::isolated(&live::test_path(
            module_path!(),
            "live_vsftpd_offers_tls_and_refuses_anonymous",
        )) {
            return;
        }
        let port = live::free_tcp_port();
        let certs = live::temp_dir("vsftpd-cert");
        let (cert, key) = live::self_signed_cert(&certs);
        let extra = format!(
            "anonymous_enable=NO\nlocal_enable=YES\nssl_enable=YES\nrsa_cert_file={}\nrsa_private_key_file={}",
            cert.display(),
            key.display()
        );
        let daemon = vsftpd(port, &extra);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        assert!(
            live::wait_listening(addr, std::time::Duration::from_secs(5)).await,
            "vsftpd did not start: {}",
            daemon.log()
        );
        // vsftpd answers a failed login after a delay (delay_failed_login=1).
        let limits = ProbeLimits {
            read_timeout: std::time::Duration::from_secs(4),
            deadline: std::time::Duration::from_secs(15),
            ..quick_limits()
        };
        let info = probe_ftp(addr, &limits).await.expect("ftp");
        assert_eq!(info.auth_tls, Some(true));
        assert!(info.features.iter().any(|f| f == "AUTH TLS"));
        assert_eq!(info.anonymous, Anonymous::Refused);
        let _ = std::fs::remove_dir_all(certs);
    }

    #[tokio::test]
    async fn probe_sends_exactly_feat_user_pass_quit() {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (sock, _) = listener.accept().await.expect("accept");
            let (r, mut w) = sock.into_split();
            w.write_all(b"220 ready\r\n").await.expect("greet");
            let mut lines = BufReader::new(r).lines();
            let mut got = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                let answer: &[u8] = match line.split(' ').next().unwrap_or_default() {
                    "FEAT" => b"211-Features:\r\n AUTH TLS\r\n211 End\r\n",
                    "USER" => b"331 Password please\r\n",
                    "PASS" => b"230 Logged in\r\n",
                    "QUIT" => b"221 Bye\r\n",
                    _ => b"502 No\r\n",
                };
                got.push(line);
                if w.write_all(answer).await.is_err() {
                    break;
                }
            }
            got
        });
        let info = probe_ftp(addr, &quick_limits()).await.expect("ftp");
        assert_eq!(info.anonymous, Anonymous::Accepted);
        assert_eq!(info.auth_tls, Some(true));
        assert_eq!(
            server.await.expect("join"),
            vec![
                "FEAT".to_owned(),
                "USER anonymous".to_owned(),
                format!("PASS {ANONYMOUS_PASSWORD}"),
                "QUIT".to_owned()
            ]
        );
    }

    #[tokio::test]
    async fn not_ready_greeting_is_an_error() {
        let addr = serve(vec![steps(&[(false, b"421 Too many users\r\n")])]).await;
        let err = probe_ftp(addr, &quick_limits()).await.expect_err("421");
        assert!(matches!(err, ProbeError::Unexpected(_)), "{err:?}");
    }

    #[tokio::test]
    async fn garbage_greeting_is_a_parse_error() {
        let addr = serve(vec![Script::Send(b"\x00\x01garbage".to_vec())]).await;
        let err = probe_ftp(addr, &quick_limits()).await.expect_err("garbage");
        assert!(matches!(err, ProbeError::Parse(_)), "{err:?}");
    }
}
