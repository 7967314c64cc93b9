//! One probe: a TCP connection, a ClientHello, the server's answer, close.
//!
//! Bounds (all in [`ProbeLimits`]): the TCP connect has its own timeout;
//! every write and read waits at most `read_timeout`; the whole probe, from
//! the connect on, ends at `total_timeout`; at most `max_bytes` are read.
//! Whatever the peer does (silence, a slow trickle, garbage, a reset, an
//! announced 16 MiB message) the probe returns within `total_timeout` with a
//! [`ProbeError`] whose message a person can read in a report's `errors`.
//! The connection is closed when the [`ProbeConnection`] is dropped; nothing
//! is sent after the hello (two hellos after a HelloRetryRequest).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

use super::hello::{client_hello, fresh_random, retry_client_hello, HelloError, HelloOptions};
use super::parse::{
    parse_answer, ParseError, ParseOptions, Progress, ServerAnswer, ServerHello, StopAt,
};
use super::version::ProtocolVersion;

/// Bytes read per `read` call at most.
const READ_CHUNK: usize = 16 * 1024;

/// The bounds of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeLimits {
    /// Longest wait for the TCP connection.
    pub connect_timeout: Duration,
    /// Longest wait for each write and each read.
    pub read_timeout: Duration,
    /// Longest the whole probe may take, connect included.
    pub total_timeout: Duration,
    /// Most bytes read from the server.
    pub max_bytes: usize,
    /// How far to read a pre-TLS 1.3 flight.
    pub stop_at: StopAt,
}

impl Default for ProbeLimits {
    fn default() -> Self {
        ProbeLimits {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(10),
            max_bytes: 512 * 1024,
            stop_at: StopAt::ServerHelloDone,
        }
    }
}

/// Why a probe got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// Nothing listens on the port.
    #[error("connection refused")]
    ConnectRefused,
    /// The TCP connection was not established in time.
    #[error("TCP connect timed out after {after_ms} ms")]
    ConnectTimeout {
        /// The timeout that expired.
        after_ms: u64,
    },
    /// The server went silent.
    #[error("the server sent nothing for {after_ms} ms")]
    ReadTimeout {
        /// The timeout that expired.
        after_ms: u64,
    },
    /// The whole probe took too long (a slow or endless answer).
    #[error("the server's answer was not complete within the {after_ms} ms deadline")]
    Deadline {
        /// The total deadline.
        after_ms: u64,
    },
    /// The server reset the connection.
    #[error("the server reset the connection (after sending {after_bytes} bytes)")]
    Reset {
        /// Bytes received before the reset.
        after_bytes: usize,
    },
    /// The server closed the connection without sending anything.
    #[error("the server closed the connection without answering")]
    ClosedWithoutAnswer,
    /// The server closed the connection in the middle of its answer.
    #[error(
        "the server closed the connection in the middle of its answer (after {received} bytes)"
    )]
    Truncated {
        /// Bytes received before the close.
        received: usize,
    },
    /// The service speaks another protocol.
    #[error("the service does not speak TLS: it sent {hint}")]
    NotTls {
        /// What it sent instead.
        hint: String,
    },
    /// The answer exceeds a bound.
    #[error("the answer is too large: {detail}")]
    TooLarge {
        /// Which bound.
        detail: String,
    },
    /// The answer breaks the protocol.
    #[error("malformed TLS answer: {detail}")]
    Malformed {
        /// What is wrong.
        detail: String,
    },
    /// The hello could not be built.
    #[error("could not build the ClientHello: {0}")]
    Hello(#[from] HelloError),
    /// The endpoint's whole time budget is spent: no further connection.
    #[error("the endpoint's time budget of {after_ms} ms is spent")]
    BudgetSpent {
        /// The budget.
        after_ms: u64,
    },
    /// Another network error.
    #[error("network error: {detail}")]
    Io {
        /// The operating system's message.
        detail: String,
    },
}

impl ProbeError {
    /// Whether this is how servers commonly refuse a hello they do not
    /// like (a version they do not speak) without an alert: a close or a
    /// reset before any byte.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ProbeError::ClosedWithoutAnswer | ProbeError::Reset { after_bytes: 0 }
        )
    }
}

impl From<ParseError> for ProbeError {
    fn from(e: ParseError) -> Self {
        match e {
            ParseError::NotTls { hint } => ProbeError::NotTls { hint },
            ParseError::Malformed { detail } => ProbeError::Malformed { detail },
            other @ (ParseError::RecordTooLarge { .. } | ParseError::HandshakeTooLarge { .. }) => {
                ProbeError::TooLarge {
                    detail: other.to_string(),
                }
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn io_error(e: &std::io::Error, received: usize) -> ProbeError {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => {
            ProbeError::Reset {
                after_bytes: received,
            }
        }
        _ => ProbeError::Io {
            detail: e.to_string(),
        },
    }
}

/// An open probe connection: one or two hellos, each followed by its answer.
#[derive(Debug)]
pub struct ProbeConnection {
    stream: TcpStream,
    /// Bytes received and not yet consumed by an answer.
    buf: Vec<u8>,
    read_total: usize,
    deadline: Instant,
    limits: ProbeLimits,
}

impl ProbeConnection {
    /// Connects to `addr` under `limits` (the total deadline starts now).
    pub async fn connect(addr: SocketAddr, limits: &ProbeLimits) -> Result<Self, ProbeError> {
        let deadline = Instant::now() + limits.total_timeout;
        let wait = limits.connect_timeout.min(limits.total_timeout);
        let stream = match timeout(wait, TcpStream::connect(addr)).await {
            Err(_) => {
                return Err(ProbeError::ConnectTimeout {
                    after_ms: millis(wait),
                })
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err(ProbeError::ConnectRefused)
            }
            Ok(Err(e)) => {
                return Err(ProbeError::Io {
                    detail: format!("connect: {e}"),
                })
            }
            Ok(Ok(s)) => s,
        };
        // Hellos are small: send them at once. Failing to set it only costs latency.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY not set: {e}");
        }
        Ok(ProbeConnection {
            stream,
            buf: Vec::new(),
            read_total: 0,
            deadline,
            limits: *limits,
        })
    }

    /// Sends `hello` and reads the server's answer to it.
    pub async fn exchange(
        &mut self,
        hello: &[u8],
        opts: ParseOptions,
    ) -> Result<ServerAnswer, ProbeError> {
        self.send(hello).await?;
        self.read_answer(opts).await
    }

    /// The time left, or the deadline error.
    fn left(&self) -> Result<Duration, ProbeError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ProbeError::Deadline {
                after_ms: millis(self.limits.total_timeout),
            });
        }
        Ok(left)
    }

    /// How long the next operation may wait, and the error if it does not end.
    fn next_wait(&self) -> Result<(Duration, ProbeError), ProbeError> {
        let left = self.left()?;
        if left < self.limits.read_timeout {
            Ok((
                left,
                ProbeError::Deadline {
                    after_ms: millis(self.limits.total_timeout),
                },
            ))
        } else {
            Ok((
                self.limits.read_timeout,
                ProbeError::ReadTimeout {
                    after_ms: millis(self.limits.read_timeout),
                },
            ))
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), ProbeError> {
        let (wait, on_timeout) = self.next_wait()?;
        match timeout(wait, self.stream.write_all(bytes)).await {
            Err(_) => Err(on_timeout),
            Ok(Err(e)) => Err(io_error(&e, self.buf.len())),
            Ok(Ok(())) => Ok(()),
        }
    }

    async fn read_answer(&mut self, opts: ParseOptions) -> Result<ServerAnswer, ProbeError> {
        let mut chunk = vec![0u8; READ_CHUNK];
        loop {
            match parse_answer(&self.buf, &opts)? {
                Progress::Done { answer, consumed } => {
                    self.buf.drain(..consumed.min(self.buf.len()));
                    return Ok(*answer);
                }
                Progress::NeedMore => {}
            }
            let room = self.limits.max_bytes.saturating_sub(self.read_total);
            if room == 0 {
                return Err(ProbeError::TooLarge {
                    detail: format!(
                        "the server sent {} bytes without finishing its answer (limit {})",
                        self.read_total, self.limits.max_bytes
                    ),
                });
            }
            let (wait, on_timeout) = self.next_wait()?;
            let want = room.min(chunk.len());
            let Some(dest) = chunk.get_mut(..want) else {
                return Err(ProbeError::Io {
                    detail: "read buffer".into(),
                });
            };
            match timeout(wait, self.stream.read(dest)).await {
                // Silence from the start reads better as silence than as a
                // missed deadline, whichever bound ran out.
                Err(_) if self.read_total == 0 => {
                    return Err(ProbeError::ReadTimeout {
                        after_ms: millis(self.limits.read_timeout.min(self.limits.total_timeout)),
                    })
                }
                Err(_) => return Err(on_timeout),
                Ok(Ok(0)) => {
                    return Err(if self.buf.is_empty() {
                        ProbeError::ClosedWithoutAnswer
                    } else {
                        ProbeError::Truncated {
                            received: self.buf.len(),
                        }
                    })
                }
                Ok(Ok(n)) => {
                    self.buf
                        .extend_from_slice(chunk.get(..n).unwrap_or_default());
                    self.read_total = self.read_total.saturating_add(n);
                }
                Ok(Err(e)) => return Err(io_error(&e, self.buf.len())),
            }
        }
    }
}

/// Connects to `addr`, sends `hello` (any version, SSLv2 included), reads
/// the answer under `limits`, and closes.
pub async fn probe(
    addr: SocketAddr,
    hello: &[u8],
    limits: &ProbeLimits,
) -> Result<ServerAnswer, ProbeError> {
    let mut conn = ProbeConnection::connect(addr, limits).await?;
    conn.exchange(
        hello,
        ParseOptions {
            stop_at: limits.stop_at,
            after_hrr: false,
        },
    )
    .await
}

/// A TLS 1.3 probe's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls13Probe {
    /// The HelloRetryRequest, when the server sent one (the answer is then
    /// the answer to the retry, on the same connection).
    pub hello_retry: Option<ServerHello>,
    /// The final answer. It is the HelloRetryRequest itself when the server
    /// selected a group no key share can be made for (see
    /// [`super::groups::KEY_SHARE_GROUPS`]): no retry is sent then.
    pub answer: ServerAnswer,
}

/// A TLS 1.3 probe: builds the hello from `suites` and `opts`, and when the
/// server answers with a HelloRetryRequest, sends the retry (key share for
/// the group it selected, cookie echoed, same random) on the same connection.
/// An HRR asking for a group the hello did not offer, or already had a share
/// for, is [`ProbeError::Malformed`].
pub async fn probe_tls13(
    addr: SocketAddr,
    suites: &[u16],
    opts: &HelloOptions,
    limits: &ProbeLimits,
) -> Result<Tls13Probe, ProbeError> {
    let random = match opts.random {
        Some(r) => r,
        None => fresh_random()?,
    };
    let first = HelloOptions {
        random: Some(random),
        ..opts.clone()
    };
    let hello = client_hello(ProtocolVersion::Tls13, suites, &first)?;
    let parse = ParseOptions {
        stop_at: limits.stop_at,
        after_hrr: false,
    };
    let mut conn = ProbeConnection::connect(addr, limits).await?;
    match conn.exchange(&hello, parse).await? {
        ServerAnswer::HelloRetryRequest(hrr) => {
            let retry = match retry_client_hello(suites, &first, random, &hrr) {
                Ok(r) => r,
                Err(HelloError::UnsupportedKeyShare(_)) => {
                    // A valid HRR already proves TLS 1.3 and names the group;
                    // no retry can be sent for a group `ring` lacks.
                    return Ok(Tls13Probe {
                        hello_retry: Some(hrr.clone()),
                        answer: ServerAnswer::HelloRetryRequest(hrr),
                    });
                }
                Err(HelloError::InvalidRetry(why)) => {
                    return Err(ProbeError::Malformed {
                        detail: format!("HelloRetryRequest: {why}"),
                    })
                }
                Err(e) => return Err(e.into()),
            };
            let answer = conn
                .exchange(
                    &retry,
                    ParseOptions {
                        after_hrr: true,
                        ..parse
                    },
                )
                .await?;
            Ok(Tls13Probe {
                hello_retry: Some(hrr),
                answer,
            })
        }
        answer => Ok(Tls13Probe {
            hello_retry: None,
            answer,
        }),
    }
}

#[cfg(test)]
mod tests;
