//! Protocol probes of the network collector: one small conversation per
//! service that identifies what answers, never more.
//!
//! # What each probe sends (and never sends)
//!
//! | probe | sends | never sends |
//! |---|---|---|
//! | [`smb`] | an SMB1 NEGOTIATE offering only `NT LM 0.12`; an SMB2 NEGOTIATE (2.0.2 to 3.1.1); on each, one SESSION_SETUP carrying an NTLMSSP NEGOTIATE (to read the CHALLENGE) | credentials, an NTLMSSP AUTHENTICATE, a TREE_CONNECT, any file operation |
//! | [`telnet`] | `IAC WONT`/`IAC DONT` refusals of every option the server asks for | a user name, a password, any text |
//! | [`ftp`] | `FEAT`, maybe `AUTH TLS`, `USER anonymous`, `PASS` with an address-like password, `QUIT` | a real account, a TLS handshake, any transfer or directory command |
//! | [`snmp`] | one SNMPv1 and one SNMPv2c GetRequest for `sysDescr.0`, community `public` | a SetRequest, a walk, any other community |
//! | [`rdp`] | two X.224 Connection Requests (TLS only; standard RDP security) | a TLS handshake, an MCS connect, credentials |
//! | [`ssh`] | nothing (it reads the server's identification line) | an identification line, a key exchange |
//! | [`http`] | `HEAD /` with `Host` | a body, a method other than HEAD |
//! | [`dicom`] | an A-ASSOCIATE-RQ for Verification (1.2.840.10008.1.1, Implicit VR Little Endian), then A-RELEASE-RQ | a C-STORE or any other DIMSE message |
//! | [`mllp`] | nothing: it connects and closes | an HL7 message |
//! | [`tlshello`] | one TLS 1.2 ClientHello (to tell whether an unknown port speaks TLS) | anything after the server's first bytes |
//!
//! Every connection attempt and UDP request first waits for the
//! collector's rate limiter when the probe runs inside
//! `super::pace::with_pacer`.
//!
//! Printer ports (see `super::ports::is_printer_port`) are never written
//! to: [`Conn::send`] and [`udp_exchange`] refuse them whatever the caller
//! asks, so a probe pointed at one by mistake fails before any byte leaves.
//!
//! # Bounds
//!
//! Every probe runs under a [`ProbeLimits`]: a connect timeout per
//! connection, a read timeout per read, a total deadline for the whole probe
//! (all its connections together), and a budget of bytes read per
//! connection. A server that stalls, trickles, talks forever or lies about a
//! length ends the probe with a [`ProbeError`]; it never hangs it nor makes
//! it allocate more than the budget.
//!
//! # Parsers
//!
//! Each protocol module has a pure parser `parse_xxx(&[u8])` that the async
//! part calls. Parsers are total: any bytes give a value or a
//! [`ParseError`], never a panic; every length is checked against the
//! buffer and what they allocate is bounded by their input (and capped for
//! strings). [`ParseError::Truncated`] means "a prefix of a valid answer":
//! the readers use it to ask for more bytes.

pub mod dicom;
pub mod ftp;
pub mod http;
pub mod mllp;
pub mod rdp;
pub mod smb;
pub mod snmp;
pub mod ssh;
pub mod telnet;
pub mod tlshello;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use super::pace::admit_current;
use super::ports::is_printer_port;

/// Size of one read from a socket.
const CHUNK: usize = 4096;
/// Largest UDP datagram accepted (larger ones are truncated by the kernel).
const MAX_DATAGRAM: usize = 65_535;
/// Longest text (banner, header value, name) a parser keeps, in characters.
pub const MAX_TEXT_CHARS: usize = 512;

/// The bounds every probe runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeLimits {
    /// Longest wait for one TCP connection to be established.
    pub connect_timeout: Duration,
    /// Longest wait for one read (or one write) to make progress.
    pub read_timeout: Duration,
    /// Longest time one whole probe may take, all its connections together.
    pub deadline: Duration,
    /// Most bytes read from one connection (or one datagram) before giving up.
    pub max_bytes: usize,
}

impl Default for ProbeLimits {
    fn default() -> Self {
        ProbeLimits {
            connect_timeout: Duration::from_secs(3),
            read_timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(20),
            max_bytes: 64 * 1024,
        }
    }
}

impl ProbeLimits {
    /// The instant a probe started now must be finished by.
    pub fn deadline_from_now(&self) -> Instant {
        Instant::now() + self.deadline
    }
}

/// Why a parser rejected bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The bytes are a prefix of a valid answer: more are needed.
    #[error("truncated {what}")]
    Truncated { what: &'static str },
    /// The bytes cannot be the start of a valid answer.
    #[error("invalid {what}")]
    Invalid { what: &'static str },
    /// A length or count larger than this parser accepts.
    #[error("{what} too large")]
    TooLarge { what: &'static str },
}

impl ParseError {
    pub(crate) fn truncated(what: &'static str) -> Self {
        ParseError::Truncated { what }
    }
    pub(crate) fn invalid(what: &'static str) -> Self {
        ParseError::Invalid { what }
    }
}

/// Why a probe could not give an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// The connection could not be established (refused, unreachable, ...).
    #[error("connect to {addr} failed: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    /// The connection was not established within the connect timeout.
    #[error("connect to {addr} timed out")]
    ConnectTimeout { addr: SocketAddr },
    /// The peer sent nothing (or accepted nothing) within the read timeout.
    #[error("no answer within the read timeout")]
    ReadTimeout,
    /// The probe's total deadline passed.
    #[error("probe deadline passed")]
    Deadline,
    /// The peer closed the connection before a complete answer.
    #[error("peer closed the connection after {received} bytes, before a complete answer")]
    Closed { received: usize },
    /// The peer sent more than the byte budget without a complete answer.
    #[error("answer exceeds the {max_bytes}-byte budget")]
    TooLarge { max_bytes: usize },
    /// A write to a printer port was refused (they are never written to).
    #[error("refusing to write to printer port {port}")]
    PrinterPort { port: u16 },
    /// A read or write failed (reset, broken pipe, ...).
    #[error("i/o error: {0}")]
    Io(#[source] io::Error),
    /// The answer is not the protocol the probe speaks.
    #[error("malformed answer: {0}")]
    Parse(#[from] ParseError),
    /// The answer is well-formed but not one the probe can use.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
}

/// The outcome of one bounded read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// This many bytes were appended to the buffer.
    Data(usize),
    /// The peer closed its side.
    Eof,
    /// Nothing arrived within the quiet period asked for.
    Quiet,
}

/// A TCP connection with a read buffer, a byte budget and a deadline.
///
/// Invariants: the buffer never holds more than `max_bytes` bytes read in
/// total over the connection's life; no read or write waits past the
/// deadline; nothing is ever written to a printer port.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    buf: Vec<u8>,
    read_total: usize,
    read_timeout: Duration,
    max_bytes: usize,
    deadline: Instant,
}

impl Conn {
    /// Connects to `addr`, waiting at most the connect timeout (and never
    /// past `deadline`).
    pub async fn connect(
        addr: SocketAddr,
        limits: &ProbeLimits,
        deadline: Instant,
    ) -> Result<Conn, ProbeError> {
        // The collector's rate limits (when it set them for this task).
        if tokio::time::timeout_at(deadline, admit_current(addr.ip()))
            .await
            .is_err()
        {
            return Err(ProbeError::Deadline);
        }
        let (wait, by_deadline) = bounded_wait(limits.connect_timeout, deadline);
        match tokio::time::timeout(wait, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                // Best effort: probes send small messages and wait for answers.
                let _ = stream.set_nodelay(true);
                Ok(Conn {
                    stream,
                    peer: addr,
                    buf: Vec::new(),
                    read_total: 0,
                    read_timeout: limits.read_timeout,
                    max_bytes: limits.max_bytes,
                    deadline,
                })
            }
            Ok(Err(source)) => Err(ProbeError::Connect { addr, source }),
            Err(_) if by_deadline => Err(ProbeError::Deadline),
            Err(_) => Err(ProbeError::ConnectTimeout { addr }),
        }
    }

    /// The address connected to.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Bytes read and not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Sends `bytes`, refusing printer ports, bounded by the read timeout
    /// and the deadline.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), ProbeError> {
        if is_printer_port(self.peer.port()) {
            return Err(ProbeError::PrinterPort {
                port: self.peer.port(),
            });
        }
        let (wait, by_deadline) = bounded_wait(self.read_timeout, self.deadline);
        match tokio::time::timeout(wait, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ProbeError::Io(e)),
            Err(_) if by_deadline => Err(ProbeError::Deadline),
            Err(_) => Err(ProbeError::ReadTimeout),
        }
    }

    /// Reads once into the buffer. `quiet`: when given, a silence of that
    /// length (capped by the read timeout) is [`Fill::Quiet`] instead of an
    /// error. Fails with [`ProbeError::TooLarge`] once the byte budget is
    /// spent.
    pub async fn fill(&mut self, quiet: Option<Duration>) -> Result<Fill, ProbeError> {
        let room = self.max_bytes.saturating_sub(self.read_total);
        if room == 0 {
            return Err(ProbeError::TooLarge {
                max_bytes: self.max_bytes,
            });
        }
        let want = room.min(CHUNK);
        let timeout = quiet.map_or(self.read_timeout, |q| q.min(self.read_timeout));
        let (wait, by_deadline) = bounded_wait(timeout, self.deadline);
        let mut chunk = [0u8; CHUNK];
        // `want` <= CHUNK, so the slice is in bounds.
        let read = tokio::time::timeout(wait, self.stream.read(&mut chunk[..want])).await;
        match read {
            Ok(Ok(0)) => Ok(Fill::Eof),
            Ok(Ok(n)) => {
                self.read_total += n;
                self.buf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default());
                Ok(Fill::Data(n))
            }
            Ok(Err(e)) => Err(ProbeError::Io(e)),
            Err(_) if by_deadline => Err(ProbeError::Deadline),
            Err(_) if quiet.is_some() => Ok(Fill::Quiet),
            Err(_) => Err(ProbeError::ReadTimeout),
        }
    }

    /// Reads until `parse` accepts a prefix of the buffer: `parse` returns
    /// the value and how many bytes it used (they are removed from the
    /// buffer), or [`ParseError::Truncated`] to ask for more bytes.
    pub async fn read_parsed<T>(
        &mut self,
        mut parse: impl FnMut(&[u8]) -> Result<(T, usize), ParseError>,
    ) -> Result<T, ProbeError> {
        loop {
            if !self.buf.is_empty() {
                match parse(&self.buf) {
                    Ok((value, used)) => {
                        self.consume(used);
                        return Ok(value);
                    }
                    Err(ParseError::Truncated { .. }) => {}
                    Err(e) => return Err(ProbeError::Parse(e)),
                }
            }
            match self.fill(None).await? {
                Fill::Data(_) => {}
                Fill::Eof | Fill::Quiet => {
                    return Err(ProbeError::Closed {
                        received: self.read_total,
                    })
                }
            }
        }
    }

    /// Reads one length-delimited frame: `frame_len` returns the frame's
    /// total length from its header (or [`ParseError::Truncated`] while the
    /// header is incomplete). A frame longer than the byte budget is refused
    /// before it is read.
    pub async fn read_frame(
        &mut self,
        frame_len: impl Fn(&[u8]) -> Result<usize, ParseError>,
    ) -> Result<Vec<u8>, ProbeError> {
        let max_bytes = self.max_bytes;
        let mut too_large = false;
        let result = self
            .read_parsed(|buf| {
                let n = frame_len(buf)?;
                if n > max_bytes {
                    too_large = true;
                    return Err(ParseError::TooLarge { what: "frame" });
                }
                match buf.get(..n) {
                    Some(frame) => Ok((frame.to_vec(), n)),
                    None => Err(ParseError::truncated("frame")),
                }
            })
            .await;
        match result {
            Err(ProbeError::Parse(ParseError::TooLarge { .. })) if too_large => {
                Err(ProbeError::TooLarge { max_bytes })
            }
            other => other,
        }
    }

    /// Removes the first `n` buffered bytes (all of them if fewer).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.drain(..n);
    }

    /// Closes the connection politely (a FIN), ignoring errors.
    pub async fn close(mut self) {
        let wait = bounded_wait(Duration::from_millis(500), self.deadline).0;
        let _ = tokio::time::timeout(wait, self.stream.shutdown()).await;
    }
}

/// `min(timeout, time left before deadline)`, and whether the deadline is
/// the tighter bound.
fn bounded_wait(timeout: Duration, deadline: Instant) -> (Duration, bool) {
    let left = deadline.saturating_duration_since(Instant::now());
    if left <= timeout {
        (left, true)
    } else {
        (timeout, false)
    }
}

/// Sends `request` to `addr` over UDP and returns the first datagram from
/// `addr` that `accept` takes (`accept` returns `None` for a datagram that
/// is not an answer to this request, which is then ignored). The request is
/// sent at most `1 + retries` times, one read timeout apart, never past the
/// deadline. The local socket is bound to the loopback address of the same
/// family when `addr` is loopback, to the unspecified address otherwise, and
/// connected to `addr` so the kernel drops datagrams from anyone else.
pub async fn udp_exchange<T>(
    addr: SocketAddr,
    request: &[u8],
    limits: &ProbeLimits,
    deadline: Instant,
    retries: u32,
    mut accept: impl FnMut(&[u8]) -> Option<T>,
) -> Result<T, ProbeError> {
    if is_printer_port(addr.port()) {
        return Err(ProbeError::PrinterPort { port: addr.port() });
    }
    let local: SocketAddr = match (addr.ip(), addr.ip().is_loopback()) {
        (IpAddr::V4(_), true) => (Ipv4Addr::LOCALHOST, 0).into(),
        (IpAddr::V4(_), false) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        (IpAddr::V6(_), true) => (Ipv6Addr::LOCALHOST, 0).into(),
        (IpAddr::V6(_), false) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await.map_err(ProbeError::Io)?;
    socket
        .connect(addr)
        .await
        .map_err(|source| ProbeError::Connect { addr, source })?;
    let mut datagram = vec![0u8; MAX_DATAGRAM.min(limits.max_bytes.max(1))];
    // Datagrams that are not the answer (late answers to an earlier send,
    // noise) are bounded too.
    let mut ignored = 0u32;
    for _attempt in 0..=retries {
        if Instant::now() >= deadline
            || tokio::time::timeout_at(deadline, admit_current(addr.ip()))
                .await
                .is_err()
        {
            return Err(ProbeError::Deadline);
        }
        socket.send(request).await.map_err(ProbeError::Io)?;
        let wait_until = Instant::now() + limits.read_timeout;
        loop {
            let until = wait_until.min(deadline);
            let left = until.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, socket.recv(&mut datagram)).await {
                Ok(Ok(n)) => {
                    if let Some(answer) = datagram.get(..n).and_then(&mut accept) {
                        return Ok(answer);
                    }
                    ignored += 1;
                    if ignored > 16 {
                        return Err(ProbeError::Unexpected(
                            "too many datagrams that are not an answer".into(),
                        ));
                    }
                }
                // ICMP port unreachable shows up as ECONNREFUSED on a
                // connected UDP socket.
                Ok(Err(e)) => return Err(ProbeError::Io(e)),
                Err(_) => break,
            }
        }
        if Instant::now() >= deadline {
            return Err(ProbeError::Deadline);
        }
    }
    Err(ProbeError::ReadTimeout)
}

/// Which probe speaks to a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    Smb,
    Telnet,
    Ftp,
    Snmp,
    Rdp,
    Ssh,
    Http,
    Dicom,
    Mllp,
}

impl ProbeKind {
    /// The name used in logs and in a service's `protocol`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Smb => "smb",
            ProbeKind::Telnet => "telnet",
            ProbeKind::Ftp => "ftp",
            ProbeKind::Snmp => "snmp",
            ProbeKind::Rdp => "rdp",
            ProbeKind::Ssh => "ssh",
            ProbeKind::Http => "http",
            ProbeKind::Dicom => "dicom",
            ProbeKind::Mllp => "mllp",
        }
    }
}

/// What one probe learned, tagged with the probe that learned it
/// (`{"probe": "smb", ...}`; no info struct has a field named `probe`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "probe", rename_all = "snake_case")]
pub enum ServiceInfo {
    Smb(Box<smb::SmbInfo>),
    Telnet(telnet::TelnetInfo),
    Ftp(ftp::FtpInfo),
    Snmp(snmp::SnmpInfo),
    Rdp(rdp::RdpInfo),
    Ssh(ssh::SshInfo),
    Http(http::HttpInfo),
    Dicom(dicom::DicomInfo),
    Mllp(mllp::MllpInfo),
}

/// Runs the probe of `kind` against `addr`.
pub async fn run_probe(
    kind: ProbeKind,
    addr: SocketAddr,
    limits: &ProbeLimits,
) -> Result<ServiceInfo, ProbeError> {
    Ok(match kind {
        ProbeKind::Smb => ServiceInfo::Smb(Box::new(smb::probe_smb(addr, limits).await?)),
        ProbeKind::Telnet => ServiceInfo::Telnet(telnet::probe_telnet(addr, limits).await?),
        ProbeKind::Ftp => ServiceInfo::Ftp(ftp::probe_ftp(addr, limits).await?),
        ProbeKind::Snmp => ServiceInfo::Snmp(snmp::probe_snmp(addr, limits).await?),
        ProbeKind::Rdp => ServiceInfo::Rdp(rdp::probe_rdp(addr, limits).await?),
        ProbeKind::Ssh => ServiceInfo::Ssh(ssh::probe_ssh(addr, limits).await?),
        ProbeKind::Http => ServiceInfo::Http(http::probe_http(addr, limits).await?),
        ProbeKind::Dicom => ServiceInfo::Dicom(dicom::probe_dicom(addr, limits).await?),
        ProbeKind::Mllp => ServiceInfo::Mllp(mllp::probe_mllp(addr, limits).await?),
    })
}

/// Text for a report: lossy UTF-8, control characters (other than tab)
/// replaced by spaces, trimmed, at most [`MAX_TEXT_CHARS`] characters.
pub fn clean_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
        .take(MAX_TEXT_CHARS)
        .collect();
    cleaned.trim().to_owned()
}

/// Little-endian and big-endian readers over a slice that report a
/// truncation instead of panicking.
pub(crate) mod bytes {
    use super::ParseError;

    pub fn slice<'a>(
        b: &'a [u8],
        at: usize,
        len: usize,
        what: &'static str,
    ) -> Result<&'a [u8], ParseError> {
        let end = at.checked_add(len).ok_or(ParseError::invalid(what))?;
        b.get(at..end).ok_or(ParseError::truncated(what))
    }
    pub fn u8_at(b: &[u8], at: usize, what: &'static str) -> Result<u8, ParseError> {
        b.get(at).copied().ok_or(ParseError::truncated(what))
    }
    pub fn le16(b: &[u8], at: usize, what: &'static str) -> Result<u16, ParseError> {
        let s = slice(b, at, 2, what)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    pub fn le32(b: &[u8], at: usize, what: &'static str) -> Result<u32, ParseError> {
        let s = slice(b, at, 4, what)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    pub fn le64(b: &[u8], at: usize, what: &'static str) -> Result<u64, ParseError> {
        let s = slice(b, at, 8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }
    pub fn be16(b: &[u8], at: usize, what: &'static str) -> Result<u16, ParseError> {
        let s = slice(b, at, 2, what)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    pub fn be32(b: &[u8], at: usize, what: &'static str) -> Result<u32, ParseError> {
        let s = slice(b, at, 4, what)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Loopback listeners that answer with canned or hostile bytes.
    use std::net::SocketAddr;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// What a test server does with each connection.
    #[derive(Clone)]
    pub enum Script {
        /// Writes these bytes at once, then waits for the client to close.
        Send(Vec<u8>),
        /// For each step: read at least one byte (when `true`), then write
        /// the bytes; then wait for the client to close.
        Steps(Vec<(bool, Vec<u8>)>),
        /// Writes the byte pattern forever.
        Endless(Vec<u8>),
        /// Writes one byte every `Duration`, forever.
        Trickle(Duration),
        /// Accepts and says nothing, reading whatever comes.
        Silent,
        /// Closes at once with a reset (SO_LINGER 0).
        Reset,
    }

    /// Starts a listener on 127.0.0.1 running `scripts` on successive
    /// connections (the last one repeats). Returns its address.
    pub async fn serve(scripts: Vec<Script>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let mut i = 0usize;
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let script = scripts
                    .get(i.min(scripts.len().saturating_sub(1)))
                    .cloned()
                    .unwrap_or(Script::Silent);
                i += 1;
                tokio::spawn(async move {
                    let mut sink = [0u8; 4096];
                    match script {
                        Script::Send(bytes) => {
                            let _ = sock.write_all(&bytes).await;
                            while let Ok(n) = sock.read(&mut sink).await {
                                if n == 0 {
                                    break;
                                }
                            }
                        }
                        Script::Steps(steps) => {
                            for (read_first, bytes) in steps {
                                if read_first {
                                    match sock.read(&mut sink).await {
                                        Ok(0) | Err(_) => return,
                                        Ok(_) => {}
                                    }
                                    // Let the rest of a request arrive.
                                    tokio::time::sleep(Duration::from_millis(20)).await;
                                }
                                if sock.write_all(&bytes).await.is_err() {
                                    return;
                                }
                            }
                            while let Ok(n) = sock.read(&mut sink).await {
                                if n == 0 {
                                    break;
                                }
                            }
                        }
                        Script::Endless(pattern) => while sock.write_all(&pattern).await.is_ok() {},
                        Script::Trickle(every) => loop {
                            if sock.write_all(b"x").await.is_err() {
                                return;
                            }
                            tokio::time::sleep(every).await;
                        },
                        Script::Silent => {
                            while let Ok(n) = sock.read(&mut sink).await {
                                if n == 0 {
                                    break;
                                }
                            }
                        }
                        Script::Reset => {
                            // Linger 0 makes the close a reset; it does not
                            // block (nothing is left to send).
                            #[allow(deprecated)]
                            let _ = sock.set_linger(Some(Duration::ZERO));
                            drop(sock);
                        }
                    }
                });
            }
        });
        addr
    }

    /// Real daemons (Debian packages) for the live tests. Each live test
    /// runs in a network namespace of its own ([`isolated`]): its daemon
    /// binds 127.0.0.1 there, where nothing else listens. A missing
    /// program is a failure naming the Debian package (`scripts/test`
    /// installs them), never a skip.
    pub mod live {
        use std::net::SocketAddr;
        use std::os::unix::process::CommandExt;
        use std::path::{Path, PathBuf};
        use std::process::{Child, Command, Stdio};
        use std::sync::atomic::{AtomicU32, Ordering};
        use std::time::{Duration, Instant};

        /// A daemon started in a process group of its own (xrdp signals its
        /// whole group when it stops), stopped by that group's id on drop.
        pub struct Daemon {
            child: Child,
            pub dir: PathBuf,
        }

        impl Daemon {
            /// The daemon's log (stdout and stderr).
            pub fn log(&self) -> String {
                std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
            }
        }

        impl Drop for Daemon {
            fn drop(&mut self) {
                let group = format!("-{}", self.child.id());
                let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
                let until = Instant::now() + Duration::from_secs(3);
                while Instant::now() < until {
                    if let Ok(Some(_)) = self.child.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
                let _ = self.child.wait();
                let _ = std::fs::remove_dir_all(&self.dir);
            }
        }

        /// Fails the test when `program` is missing.
        pub fn require(program: &str, package: &str) {
            assert!(
                installed(program),
                "{program} is not installed: install the Debian package {package} (scripts/test does)"
            );
        }

        /// The test's path for `--exact`: `module` (from `module_path!()`)
        /// without the crate name, then `::test`.
        pub fn test_path(module: &str, test: &str) -> String {
            let below = module.split_once("::").map_or("", |(_, rest)| rest);
            format!("{below}::{test}")
        }

        /// Runs the test `path` (see [`test_path`]) again inside new network
        /// and mount namespaces (`unshare --net --mount`), where only a
        /// loopback interface exists and /run is a private tmpfs. Returns
        /// `true` in that inner run (the test goes on), `false` in the outer
        /// run once it has checked that the inner run passed.
        pub fn isolated(path: &str) -> bool {
            const INNER: &str = "TW_LIVE_IN_NETNS";
            if std::env::var_os(INNER).is_some() {
                let up = Command::new("ip")
                    .args(["link", "set", "lo", "up"])
                    .status();
                assert!(up.is_ok_and(|s| s.success()), "ip link set lo up");
                let run = Command::new("mount")
                    .args(["-n", "-t", "tmpfs", "tmpfs", "/run"])
                    .status();
                assert!(run.is_ok_and(|s| s.success()), "mount a private /run");
                return true;
            }
            require("unshare", "util-linux");
            require("ip", "iproute2");
            let exe = std::env::current_exe().expect("test binary");
            let out = Command::new("unshare")
                .args(["--net", "--mount", "--propagation", "private"])
                .arg(exe)
                .args(["--exact", path, "--nocapture", "--test-threads=1"])
                .env(INNER, "1")
                .output()
                .expect("run unshare");
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "the test in its own network namespace failed (it needs root):\n{text}"
            );
            assert!(text.contains("1 passed"), "inner test did not run:\n{text}");
            false
        }

        /// Whether an executable is installed (absolute path, or on PATH).
        pub fn installed(program: &str) -> bool {
            if program.starts_with('/') {
                return Path::new(program).is_file();
            }
            std::env::var_os("PATH").is_some_and(|paths| {
                std::env::split_paths(&paths).any(|p| p.join(program).is_file())
            })
        }

        /// A self-signed RSA certificate for `localhost` made by the real
        /// `openssl req` in `dir`; returns (certificate, key) paths.
        pub fn self_signed_cert(dir: &std::path::Path) -> (PathBuf, PathBuf) {
            require("openssl", "openssl");
            let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
            let made = Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                ])
                .args(["-subj", "/CN=localhost", "-keyout"])
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .stderr(std::process::Stdio::null())
                .status();
            assert!(made.is_ok_and(|s| s.success()), "openssl req");
            (cert, key)
        }

        /// A fresh directory for one daemon.
        pub fn temp_dir(name: &str) -> PathBuf {
            static N: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "tw-live-{name}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("temp dir");
            dir
        }

        /// Starts `program args` in `dir`; fails the test when the program
        /// is not installed.
        pub fn spawn(program: &str, args: &[&str], dir: PathBuf) -> Daemon {
            assert!(installed(program), "{program} is not installed");
            let log = std::fs::File::create(dir.join("daemon.log")).expect("log file");
            let err = log.try_clone().expect("log file");
            let child = Command::new(program)
                .args(args)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(err)
                .process_group(0)
                .spawn()
                .expect("spawn daemon");
            Daemon { child, dir }
        }

        /// A loopback TCP port nobody listens on right now.
        pub fn free_tcp_port() -> u16 {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        }

        /// A loopback UDP port nobody uses right now.
        pub fn free_udp_port() -> u16 {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
            s.local_addr().expect("addr").port()
        }

        /// Waits until `addr` accepts TCP connections.
        pub async fn wait_listening(addr: SocketAddr, within: Duration) -> bool {
            let until = Instant::now() + within;
            while Instant::now() < until {
                if tokio::net::TcpStream::connect(addr).await.is_ok() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        }
    }

    /// Limits small enough that hostile tests end quickly.
    pub fn quick_limits() -> super::ProbeLimits {
        super::ProbeLimits {
            connect_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_millis(700),
            deadline: Duration::from_secs(3),
            max_bytes: 16 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::{quick_limits, serve, Script};
    use super::*;

    #[tokio::test]
    async fn endless_stream_stops_at_the_byte_budget() {
        let addr = serve(vec![Script::Endless(b"ABCDEFGH".to_vec())]).await;
        let limits = quick_limits();
        let mut conn = Conn::connect(addr, &limits, limits.deadline_from_now())
            .await
            .expect("connect");
        let started = std::time::Instant::now();
        // A parser that never completes.
        let err = conn
            .read_parsed(|_| Err::<((), usize), _>(ParseError::truncated("never")))
            .await
            .expect_err("must stop");
        assert!(
            matches!(err, ProbeError::TooLarge { max_bytes } if max_bytes == limits.max_bytes),
            "{err:?}"
        );
        assert_eq!(conn.buffered().len(), limits.max_bytes);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn trickling_stream_stops_at_the_deadline() {
        let addr = serve(vec![Script::Trickle(Duration::from_millis(100))]).await;
        let limits = ProbeLimits {
            deadline: Duration::from_millis(1200),
            ..quick_limits()
        };
        let started = std::time::Instant::now();
        let mut conn = Conn::connect(addr, &limits, limits.deadline_from_now())
            .await
            .expect("connect");
        let err = conn
            .read_parsed(|_| Err::<((), usize), _>(ParseError::truncated("never")))
            .await
            .expect_err("must stop");
        assert!(matches!(err, ProbeError::Deadline), "{err:?}");
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(1100), "{took:?}");
        assert!(took < Duration::from_millis(2000), "{took:?}");
    }

    #[tokio::test]
    async fn silent_peer_ends_in_read_timeout() {
        let addr = serve(vec![Script::Silent]).await;
        let limits = quick_limits();
        let mut conn = Conn::connect(addr, &limits, limits.deadline_from_now())
            .await
            .expect("connect");
        let err = conn
            .read_parsed(|_| Err::<((), usize), _>(ParseError::truncated("never")))
            .await
            .expect_err("must stop");
        assert!(matches!(err, ProbeError::ReadTimeout), "{err:?}");
    }

    #[tokio::test]
    async fn reset_connection_is_an_error_not_a_hang() {
        let addr = serve(vec![Script::Reset]).await;
        let limits = quick_limits();
        let mut conn = Conn::connect(addr, &limits, limits.deadline_from_now())
            .await
            .expect("connect");
        let err = conn
            .read_parsed(|_| Err::<((), usize), _>(ParseError::truncated("never")))
            .await
            .expect_err("must stop");
        assert!(
            matches!(err, ProbeError::Io(_) | ProbeError::Closed { .. }),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn frame_longer_than_the_budget_is_refused_before_reading_it() {
        // Header announces 1 MiB; only the header arrives.
        let addr = serve(vec![Script::Send(vec![0, 0x10, 0, 0])]).await;
        let limits = quick_limits();
        let mut conn = Conn::connect(addr, &limits, limits.deadline_from_now())
            .await
            .expect("connect");
        let started = std::time::Instant::now();
        let err = conn
            .read_frame(|b| {
                let h = bytes::slice(b, 0, 4, "header")?;
                Ok(4 + (usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3])))
            })
            .await
            .expect_err("must refuse");
        assert!(matches!(err, ProbeError::TooLarge { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_millis(500));
    }

    #[tokio::test]
    async fn connect_to_a_closed_port_is_a_connect_error() {
        // Bind then drop to find a port nobody listens on.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let limits = quick_limits();
        let addr: SocketAddr = (Ipv4Addr::LOCALHOST, port).into();
        let err = Conn::connect(addr, &limits, limits.deadline_from_now())
            .await
            .expect_err("nothing listens");
        assert!(matches!(err, ProbeError::Connect { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn send_refuses_printer_ports_before_connecting_anything() {
        // A listener on 127.0.0.1:9100 may be taken; the refusal must come
        // from the port number alone, so use a UDP exchange which needs no
        // peer at all.
        let limits = quick_limits();
        let addr: SocketAddr = (Ipv4Addr::LOCALHOST, 9100).into();
        let err = udp_exchange(addr, b"x", &limits, limits.deadline_from_now(), 0, |_| {
            Some(())
        })
        .await
        .expect_err("printer port");
        assert!(
            matches!(err, ProbeError::PrinterPort { port: 9100 }),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn conn_send_to_a_printer_port_is_refused() {
        use super::testutil::live;
        // In a namespace of its own, where the printer port is free.
        if !live::isolated(&live::test_path(
            module_path!(),
            "conn_send_to_a_printer_port_is_refused",
        )) {
            return;
        }
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 9100))
            .await
            .expect("bind 127.0.0.1:9100");
        let addr = listener.local_addr().expect("addr");
        let got = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf).await;
            buf
        });
        let limits = quick_limits();
        let mut conn = Conn::connect(addr, &limits, limits.deadline_from_now())
            .await
            .expect("connect is allowed");
        let err = conn.send(b"PJL").await.expect_err("write refused");
        assert!(matches!(err, ProbeError::PrinterPort { .. }), "{err:?}");
        conn.close().await;
        assert!(got.await.expect("join").is_empty(), "printer got bytes");
    }

    #[tokio::test]
    async fn udp_exchange_ignores_noise_and_returns_the_answer() {
        let server = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = server.local_addr().expect("addr");
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            if let Ok((n, from)) = server.recv_from(&mut buf).await {
                let _ = server.send_to(b"noise", from).await;
                let mut answer = b"re:".to_vec();
                answer.extend_from_slice(&buf[..n]);
                let _ = server.send_to(&answer, from).await;
            }
        });
        let limits = quick_limits();
        let got = udp_exchange(addr, b"ping", &limits, limits.deadline_from_now(), 0, |d| {
            d.starts_with(b"re:").then(|| d.to_vec())
        })
        .await
        .expect("answer");
        assert_eq!(got, b"re:ping");
    }

    #[tokio::test]
    async fn udp_exchange_without_answer_times_out() {
        let server = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = server.local_addr().expect("addr");
        let limits = ProbeLimits {
            read_timeout: Duration::from_millis(200),
            ..quick_limits()
        };
        let started = std::time::Instant::now();
        let err = udp_exchange(
            addr,
            b"ping",
            &limits,
            limits.deadline_from_now(),
            1,
            |_| Some(()),
        )
        .await
        .expect_err("silent");
        assert!(matches!(err, ProbeError::ReadTimeout), "{err:?}");
        assert!(started.elapsed() >= Duration::from_millis(400));
        drop(server);
    }

    /// One answer of each probe, as the collector will store them.
    fn one_of_each() -> Vec<ServiceInfo> {
        let smb1 = match smb::parse_smb1_negotiate(&smb::tests::smb1_negotiate_response(0x03)) {
            Ok(smb::Smb1Negotiate::Accepted(d)) => d,
            other => panic!("vector: {other:?}"),
        };
        let session = smb::parse_smb1_session_setup(&smb::tests::smb1_session_setup_response(
            "Windows 7 Professional 7601 Service Pack 1",
            "Windows 7 Professional 6.1",
            &smb::tests::windows7_challenge(),
        ))
        .expect("vector");
        let ntlm = session.ntlm.clone();
        let rj = [0x03, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x01, 0x01, 0x07];
        let telnet = telnet::parse_telnet(b"\xff\xfd\x18login: ").expect("vector");
        vec![
            ServiceInfo::Smb(Box::new(smb::SmbInfo {
                smb1: smb::Smb1Outcome::Accepted {
                    dialect: smb1,
                    session: Some(Box::new(session)),
                },
                smb2: smb::Smb2Outcome::Failed {
                    reason: "reset".into(),
                },
                ntlm,
                native_os: Some("Windows 7 Professional 7601 Service Pack 1".into()),
                native_lanman: Some("Windows 7 Professional 6.1".into()),
                signing_required: false,
            })),
            ServiceInfo::Telnet(telnet::summarize(&telnet)),
            ServiceInfo::Ftp(ftp::FtpInfo {
                banner: "220 x".into(),
                features: vec!["AUTH TLS".into()],
                auth_tls: Some(true),
                auth_tls_source: Some("feat".into()),
                anonymous: ftp::Anonymous::Refused,
                anonymous_reply: Some("530 no".into()),
            }),
            ServiceInfo::Snmp(snmp::SnmpInfo {
                community: "public".into(),
                v1: None,
                v2c: Some(snmp::SnmpAnswer {
                    error_status: 0,
                    sys_descr: Some("x".into()),
                }),
                sys_descr: Some("x".into()),
            }),
            ServiceInfo::Rdp(rdp::RdpInfo {
                tls_only: rdp::RdpAttempt::Confirmed(rdp::RdpNegotiation::Failure {
                    code: 5,
                    name: "HYBRID_REQUIRED_BY_SERVER".into(),
                }),
                standard: rdp::RdpAttempt::NoAnswer {
                    reason: "closed".into(),
                },
                nla_enforced: true,
                accepts_without_nla: false,
            }),
            ServiceInfo::Ssh(ssh::parse_ssh(b"SSH-2.0-OpenSSH_9.2p1 Debian").expect("vector")),
            ServiceInfo::Http(
                http::parse_http_head(b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n")
                    .expect("vector")
                    .0,
            ),
            ServiceInfo::Dicom(dicom::DicomInfo {
                answer: dicom::parse_associate_answer(&rj).expect("vector"),
                released: false,
            }),
            ServiceInfo::Mllp(mllp::MllpInfo { port_open: true }),
        ]
    }

    #[test]
    fn every_service_info_round_trips_through_json_tagged_by_probe() {
        let all = one_of_each();
        let kinds = [
            ProbeKind::Smb,
            ProbeKind::Telnet,
            ProbeKind::Ftp,
            ProbeKind::Snmp,
            ProbeKind::Rdp,
            ProbeKind::Ssh,
            ProbeKind::Http,
            ProbeKind::Dicom,
            ProbeKind::Mllp,
        ];
        assert_eq!(all.len(), kinds.len());
        for (info, kind) in all.iter().zip(kinds) {
            let text = serde_json::to_string(info).expect("serialize");
            // A field named like the tag would appear twice.
            assert_eq!(text.matches("\"probe\":").count(), 1, "{text}");
            let value: serde_json::Value = serde_json::from_str(&text).expect("json");
            assert_eq!(value["probe"], kind.as_str(), "{text}");
            let back: ServiceInfo = serde_json::from_str(&text).expect("deserialize");
            assert_eq!(&back, info);
        }
    }

    #[test]
    fn clean_text_strips_controls_and_caps_length() {
        assert_eq!(clean_text(b" a\x1bb\r\n"), "a b");
        let long = vec![b'x'; 10_000];
        assert_eq!(clean_text(&long).len(), MAX_TEXT_CHARS);
        assert_eq!(clean_text(&[0xff, b'a']), "\u{fffd}a");
    }
}
