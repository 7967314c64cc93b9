//! The TLS wire layer of the TLS collector: hand-built ClientHellos for every
//! protocol version from SSL 2.0 to TLS 1.3, a total parser for what servers
//! answer, cipher-suite facts, and one bounded probe over TCP.
//!
//! rustls cannot speak SSLv2, SSLv3, TLS 1.0 or 1.1, and it never tells which
//! suites a server accepts, so the collector measures those on the wire: it
//! sends a ClientHello built here, reads the server's first flight, and closes.
//! No handshake is ever completed (no key is derived, nothing is encrypted).
//!
//! # What is built
//! - [`hello::client_hello`]: SSLv3 (RFC 6101), TLS 1.0 to 1.2 (RFC 2246,
//!   4346, 5246) and TLS 1.3 (RFC 8446) ClientHellos, byte-exact, one record.
//!   TLS 1.3 hellos carry real ephemeral public keys made with `ring`
//!   (X25519, P-256, P-384); [`hello::retry_client_hello`] answers a
//!   HelloRetryRequest on the same connection.
//! - [`sslv2::client_hello`]: the SSL 2.0 CLIENT-HELLO (2-byte record header,
//!   3-byte cipher kinds).
//!
//! # What is parsed
//! [`parse::parse_answer`] reads a byte buffer (what the server sent so far)
//! and says either "need more bytes" or "decided": a [`parse::ServerAnswer`]
//! (a TLS ServerHello flight, a HelloRetryRequest, an alert, an SSLv2
//! SERVER-HELLO or ERROR), or a [`parse::ParseError`] (not TLS, too large,
//! malformed). It is pure (no I/O), so the probe re-runs it on the whole
//! buffer after every read.
//!
//! # Bounds and invariants
//! - A TLS record longer than [`parse::MAX_RECORD_LEN`] (2^14 + 2048) is
//!   refused as soon as its 5-byte header arrives.
//! - A handshake message announcing more than [`parse::MAX_HANDSHAKE_LEN`]
//!   (256 KiB) is refused as soon as its 4-byte header arrives, whichever
//!   record it starts in (the "16 MiB certificate" never gets buffered).
//! - The parser never panics and never indexes without a bounds check; every
//!   length read from the wire is checked against what is present. On success
//!   it reports how many bytes it consumed, never more than it was given.
//! - The probe ([`probe::probe`]) bounds the TCP connect, every read, the
//!   whole exchange (a total deadline) and the bytes read (512 KiB by
//!   default); it sends one hello (two after a HelloRetryRequest) and closes.
//! - Nothing here decides findings: [`suites`] states facts about suites
//!   (DESIGN §2 classes) and the collector turns answers into findings.
#![forbid(unsafe_code)]

mod codec;
pub mod groups;
pub mod hello;
pub mod parse;
pub mod probe;
pub mod sslv2;
pub mod suites;
#[cfg(test)]
mod testutil;
pub mod version;

pub use hello::{client_hello, retry_client_hello, HelloError, HelloOptions};
pub use parse::{
    parse_answer, Alert, KeyExchangeParams, ParseError, ParseOptions, Progress, ServerAnswer,
    ServerFlight, ServerHello, StopAt,
};
pub use probe::{probe, probe_tls13, ProbeConnection, ProbeError, ProbeLimits, Tls13Probe};
pub use version::ProtocolVersion;
