//! Telnet (RFC 854/855): read the banner while refusing every option.
//!
//! Sends only refusals: `IAC WONT x` for each `IAC DO x` and `IAC DONT x`
//! for each `IAC WILL x`, at most once per (command, option) pair, so a
//! server repeating a request cannot make the probe loop. `DONT`/`WONT`
//! are not answered (RFC 854: a party already in the requested state does
//! not acknowledge). Never sends text: no user name, no password, not even
//! a line end. Subnegotiations (`IAC SB ... IAC SE`) are skipped (the probe
//! never agrees to an option, so a server should not send any). `IAC IAC`
//! is a literal 255 in the text.
//!
//! The banner is what arrives until a login prompt, the end of the stream,
//! a quiet period after text, the byte budget or the deadline, whichever
//! comes first.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Conn, Fill, ParseError, ProbeError, ProbeLimits, MAX_TEXT_CHARS};

const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
const SB: u8 = 250;
const SE: u8 = 240;

/// Silence after some text that ends the banner.
const QUIET_AFTER_TEXT: Duration = Duration::from_millis(1500);

/// A negotiation command the server sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Negotiation {
    /// DO, DONT, WILL or WONT (253, 254, 251, 252).
    pub command: u8,
    pub option: u8,
}

impl Negotiation {
    /// The refusal to send, if any: WONT for DO, DONT for WILL.
    pub fn refusal(self) -> Option<[u8; 3]> {
        match self.command {
            DO => Some([IAC, WONT, self.option]),
            WILL => Some([IAC, DONT, self.option]),
            _ => None,
        }
    }

    /// "DO TERMINAL-TYPE", "WILL ECHO", ...
    pub fn describe(self) -> String {
        let command = match self.command {
            DO => "DO",
            DONT => "DONT",
            WILL => "WILL",
            WONT => "WONT",
            _ => "?",
        };
        format!("{command} {}", option_name(self.option))
    }
}

fn option_name(option: u8) -> String {
    let name = match option {
        0 => "BINARY",
        1 => "ECHO",
        3 => "SUPPRESS-GO-AHEAD",
        5 => "STATUS",
        6 => "TIMING-MARK",
        24 => "TERMINAL-TYPE",
        31 => "NAWS",
        32 => "TERMINAL-SPEED",
        33 => "TOGGLE-FLOW-CONTROL",
        34 => "LINEMODE",
        35 => "X-DISPLAY-LOCATION",
        36 => "ENVIRON",
        37 => "AUTHENTICATION",
        38 => "ENCRYPT",
        39 => "NEW-ENVIRON",
        other => return format!("OPTION-{other}"),
    };
    name.to_owned()
}

/// A telnet stream split into text and negotiation commands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TelnetStream {
    /// The data bytes (IAC sequences removed, IAC IAC as 255).
    pub text: Vec<u8>,
    /// Negotiation commands in order of arrival.
    pub negotiations: Vec<Negotiation>,
    /// Subnegotiations skipped.
    pub subnegotiations: usize,
}

/// Splits the bytes a telnet server sent. Total: an incomplete command at
/// the end is left out (it is completed by later bytes). Errors only when
/// nothing at all was received.
pub fn parse_telnet(b: &[u8]) -> Result<TelnetStream, ParseError> {
    if b.is_empty() {
        return Err(ParseError::truncated("telnet stream"));
    }
    let mut out = TelnetStream::default();
    let mut i = 0usize;
    while let Some(&c) = b.get(i) {
        if c != IAC {
            out.text.push(c);
            i += 1;
            continue;
        }
        let Some(&cmd) = b.get(i + 1) else { break };
        match cmd {
            IAC => {
                out.text.push(IAC);
                i += 2;
            }
            DO | DONT | WILL | WONT => {
                let Some(&option) = b.get(i + 2) else { break };
                out.negotiations.push(Negotiation {
                    command: cmd,
                    option,
                });
                i += 3;
            }
            SB => {
                // Skip to IAC SE; an unfinished one waits for more bytes.
                let rest = b.get(i + 2..).unwrap_or_default();
                match rest.windows(2).position(|w| w == [IAC, SE]) {
                    Some(end) => {
                        out.subnegotiations += 1;
                        i += 2 + end + 2;
                    }
                    None => break,
                }
            }
            // NOP, GA, DM, BRK, IP, AO, AYT, EC, EL, SE outside SB: no data.
            _ => i += 2,
        }
    }
    Ok(out)
}

/// What the telnet service showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TelnetInfo {
    /// The banner text, lines trimmed, empty lines dropped, joined by `\n`.
    pub banner: String,
    /// Whether the text ends in a login or password prompt.
    pub login_prompt: bool,
    /// The options the server asked for (all refused), e.g. "DO TERMINAL-TYPE".
    pub negotiations: Vec<String>,
}

/// Builds the report's view of a parsed stream.
pub fn summarize(stream: &TelnetStream) -> TelnetInfo {
    let text = String::from_utf8_lossy(&stream.text);
    let lines: Vec<String> = text
        .split(['\n', '\r'])
        .map(|l| {
            l.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect::<String>()
                .trim()
                .to_owned()
        })
        .filter(|l| !l.is_empty())
        .collect();
    let login_prompt = lines.last().is_some_and(|l| is_prompt(l));
    let banner: String = lines.join("\n").chars().take(MAX_TEXT_CHARS).collect();
    let mut seen = BTreeSet::new();
    let negotiations = stream
        .negotiations
        .iter()
        .filter(|n| seen.insert(**n))
        .map(|n| n.describe())
        .collect();
    TelnetInfo {
        banner,
        login_prompt,
        negotiations,
    }
}

fn is_prompt(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    let l = l.trim_end();
    (l.ends_with(':') || l.ends_with('>'))
        && ["login", "user", "password", "username"]
            .iter()
            .any(|w| l.contains(w))
}

/// Reads the telnet banner of `addr`, refusing every option.
pub async fn probe_telnet(
    addr: SocketAddr,
    limits: &ProbeLimits,
) -> Result<TelnetInfo, ProbeError> {
    let deadline = limits.deadline_from_now();
    let mut conn = Conn::connect(addr, limits, deadline).await?;
    let result = converse(&mut conn).await;
    conn.close().await;
    result
}

async fn converse(conn: &mut Conn) -> Result<TelnetInfo, ProbeError> {
    let mut answered: BTreeSet<Negotiation> = BTreeSet::new();
    let mut handled = 0usize;
    let mut stream = TelnetStream::default();
    loop {
        let quiet = (!stream.text.is_empty() || !stream.negotiations.is_empty())
            .then_some(QUIET_AFTER_TEXT);
        let fill = match conn.fill(quiet).await {
            Ok(f) => f,
            // Budget spent or deadline passed with something read: report it.
            Err(ProbeError::TooLarge { .. } | ProbeError::Deadline)
                if !conn.buffered().is_empty() =>
            {
                Fill::Eof
            }
            Err(e) => return Err(e),
        };
        if !conn.buffered().is_empty() {
            stream = parse_telnet(conn.buffered())?;
        }
        let mut replies = Vec::new();
        for n in stream.negotiations.iter().skip(handled) {
            if answered.insert(*n) {
                if let Some(r) = n.refusal() {
                    replies.extend_from_slice(&r);
                }
            }
        }
        handled = stream.negotiations.len();
        if !replies.is_empty() && fill != Fill::Eof {
            conn.send(&replies).await?;
        }
        let info = summarize(&stream);
        match fill {
            Fill::Data(_) if info.login_prompt => return Ok(info),
            Fill::Data(_) => {}
            Fill::Eof | Fill::Quiet => {
                if conn.buffered().is_empty() {
                    return Err(ProbeError::Closed { received: 0 });
                }
                return Ok(info);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{quick_limits, serve, Script};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn refusals_follow_rfc_854() {
        // RFC 854: WILL 251, WONT 252, DO 253, DONT 254, IAC 255.
        let n = |command, option| Negotiation { command, option };
        assert_eq!(n(DO, 24).refusal(), Some([255, 252, 24]));
        assert_eq!(n(WILL, 1).refusal(), Some([255, 254, 1]));
        assert_eq!(n(DONT, 1).refusal(), None);
        assert_eq!(n(WONT, 1).refusal(), None);
        assert_eq!(n(DO, 24).describe(), "DO TERMINAL-TYPE");
        assert_eq!(n(WILL, 200).describe(), "WILL OPTION-200");
    }

    #[test]
    fn splits_text_negotiations_and_subnegotiations() {
        let b = [
            &[IAC, DO, 24, IAC, WILL, 1][..],
            b"Hello",
            &[IAC, IAC],
            &[IAC, SB, 24, 1, IAC, SE],
            &[IAC, 241], // NOP
            b"\r\nlogin: ",
        ]
        .concat();
        let s = parse_telnet(&b).expect("valid");
        assert_eq!(
            s.text,
            [b"Hello".as_slice(), &[255], b"\r\nlogin: "].concat()
        );
        assert_eq!(
            s.negotiations,
            vec![
                Negotiation {
                    command: DO,
                    option: 24
                },
                Negotiation {
                    command: WILL,
                    option: 1
                }
            ]
        );
        assert_eq!(s.subnegotiations, 1);
        let info = summarize(&s);
        assert!(info.login_prompt);
        assert_eq!(info.negotiations, vec!["DO TERMINAL-TYPE", "WILL ECHO"]);
    }

    #[test]
    fn incomplete_commands_at_the_end_are_left_for_later() {
        for tail in [&[IAC][..], &[IAC, DO], &[IAC, SB, 24, 1]] {
            let b = [b"ok".as_slice(), tail].concat();
            let s = parse_telnet(&b).expect("valid");
            assert_eq!(s.text, b"ok");
            assert!(s.negotiations.is_empty());
        }
    }

    #[test]
    fn prompts_are_recognised() {
        for p in [
            "login:",
            "foo login: ",
            "Username:",
            "Password:",
            "User Name>",
        ] {
            assert!(is_prompt(p), "{p}");
        }
        for p in ["Welcome", "Debian GNU/Linux 12", "note: hello"] {
            assert!(!is_prompt(p), "{p}");
        }
    }

    proptest! {
        #[test]
        fn parser_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(s) = parse_telnet(&bytes) {
                prop_assert!(s.text.len() <= bytes.len());
                prop_assert!(s.negotiations.len() * 3 <= bytes.len());
                let _ = summarize(&s);
            }
        }
    }

    #[tokio::test]
    async fn probe_refuses_each_option_once_and_reads_the_prompt() {
        // Server: asks twice for TERMINAL-TYPE and offers ECHO, then prompts
        // once it got the refusals.
        let addr = serve(vec![Script::Steps(vec![
            (false, vec![IAC, DO, 24, IAC, DO, 24, IAC, WILL, 1]),
            (true, b"\r\nDebian GNU/Linux 12\r\nhost login: ".to_vec()),
        ])])
        .await;
        let info = probe_telnet(addr, &quick_limits()).await.expect("banner");
        assert!(info.login_prompt);
        assert_eq!(info.banner, "Debian GNU/Linux 12\nhost login:");
        assert_eq!(info.negotiations, vec!["DO TERMINAL-TYPE", "WILL ECHO"]);
    }

    #[tokio::test]
    async fn probe_sends_only_refusals() {
        // A listener that records what the probe sends.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut s, _) = listener.accept().await.expect("accept");
            s.write_all(&[IAC, DO, 24, IAC, WILL, 3, IAC, DONT, 5])
                .await
                .expect("write");
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got).await;
            got
        });
        let info = probe_telnet(addr, &quick_limits()).await.expect("answer");
        assert_eq!(info.banner, "");
        let got = server.await.expect("join");
        assert_eq!(got, vec![IAC, WONT, 24, IAC, DONT, 3]);
    }

    /// Live: inetutils telnetd under inetutils-inetd on 127.0.0.1. It asks
    /// for a dozen options; refused, it still shows the login prompt.
    #[tokio::test]
    async fn live_inetutils_telnetd_shows_a_login_prompt() {
        use super::super::testutil::live;
        if !live::isolated(&live::test_path(
            module_path!(),
            "live_inetutils_telnetd_shows_a_login_prompt",
        )) {
            return;
        }
        live::require("/usr/sbin/telnetd", "inetutils-telnetd");
        live::require("/usr/sbin/inetutils-inetd", "inetutils-inetd");
        let port = live::free_tcp_port();
        let dir = live::temp_dir("inetd");
        let conf = dir.join("inetd.conf");
        std::fs::write(
            &conf,
            format!("127.0.0.1:{port} stream tcp nowait root /usr/sbin/telnetd telnetd\n"),
        )
        .expect("inetd.conf");
        let pid = format!("--pidfile={}", dir.join("inetd.pid").display());
        let conf = conf.display().to_string();
        let daemon = live::spawn("/usr/sbin/inetutils-inetd", &["-d", &pid, &conf], dir);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        assert!(
            live::wait_listening(addr, Duration::from_secs(5)).await,
            "inetd did not start: {}",
            daemon.log()
        );
        let limits = ProbeLimits {
            read_timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(15),
            ..quick_limits()
        };
        let info = probe_telnet(addr, &limits).await.expect("banner");
        assert!(info.login_prompt, "{info:?}");
        assert!(info.banner.ends_with("login:"), "{}", info.banner);
        assert!(
            info.negotiations.iter().any(|n| n == "DO TERMINAL-TYPE"),
            "{info:?}"
        );
    }

    #[tokio::test]
    async fn endless_text_ends_at_the_budget_with_a_bounded_banner() {
        let addr = serve(vec![Script::Endless(b"spam spam\r\n".to_vec())]).await;
        let info = probe_telnet(addr, &quick_limits()).await.expect("banner");
        assert!(info.banner.chars().count() <= MAX_TEXT_CHARS);
        assert!(info.banner.starts_with("spam spam"));
    }

    #[tokio::test]
    async fn silent_server_is_a_timeout() {
        let addr = serve(vec![Script::Silent]).await;
        let err = probe_telnet(addr, &quick_limits())
            .await
            .expect_err("silent");
        assert!(matches!(err, ProbeError::ReadTimeout), "{err:?}");
    }
}
