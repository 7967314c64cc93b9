//! The gate every handshake of one endpoint goes through: at most
//! [`ScanLimits::connections_per_endpoint`] connections at a time, a random
//! pause before each handshake, a per-connection timeout, one time budget
//! for the whole endpoint, and a count of the handshakes made.
//!
//! Invariants: no connection is opened once the endpoint's budget is spent
//! (the probe then fails with [`ProbeError::BudgetSpent`]); every probe's own
//! deadline is the smaller of the per-connection timeout and what is left of
//! the budget, so the endpoint never runs past its budget by more than the
//! time to notice it; the count includes failed attempts.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::wire::hello::HelloOptions;
use super::wire::parse::StopAt;
use super::wire::{
    client_hello, probe, probe_tls13, sslv2, ProbeError, ProbeLimits, ProtocolVersion,
    ServerAnswer, Tls13Probe,
};
use crate::random::{OsRandom, Random};

/// How gently one scan treats the endpoints it assesses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanLimits {
    /// Longest wait for one connection (connect, each read, the whole probe).
    pub timeout: Duration,
    /// Upper bound of the random pause before each handshake (0 = none).
    pub pause: Duration,
    /// Longest the assessment of one endpoint may take.
    pub endpoint_budget: Duration,
    /// Endpoints assessed at the same time.
    pub concurrency: usize,
    /// Connections open at the same time to one endpoint (1 or 2).
    pub connections_per_endpoint: usize,
}

impl Default for ScanLimits {
    fn default() -> Self {
        ScanLimits {
            timeout: Duration::from_secs(5),
            pause: Duration::from_millis(5),
            endpoint_budget: Duration::from_secs(60),
            concurrency: 4,
            connections_per_endpoint: 2,
        }
    }
}

/// Most connections one endpoint ever gets at the same time.
pub const MAX_CONNECTIONS_PER_ENDPOINT: usize = 2;

/// The handshake gate of one endpoint.
pub struct Prober {
    addr: SocketAddr,
    host: String,
    limits: ScanLimits,
    deadline: Instant,
    permits: Semaphore,
    handshakes: AtomicU32,
    rng: OsRandom,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober")
            .field("addr", &self.addr)
            .field("host", &self.host)
            .field("handshakes", &self.handshakes())
            .finish()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Prober {
    /// A gate for `addr`, whose name (SNI) is `host`; the budget starts now.
    pub fn new(addr: SocketAddr, host: &str, limits: ScanLimits) -> Arc<Prober> {
        let lanes = limits
            .connections_per_endpoint
            .clamp(1, MAX_CONNECTIONS_PER_ENDPOINT);
        Arc::new(Prober {
            addr,
            host: host.to_owned(),
            limits,
            deadline: Instant::now() + limits.endpoint_budget,
            permits: Semaphore::new(lanes),
            handshakes: AtomicU32::new(0),
            rng: OsRandom::new(),
        })
    }

    /// The address probed.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The name sent as SNI and checked against the certificate.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Connections opened so far.
    pub fn handshakes(&self) -> u32 {
        self.handshakes.load(Ordering::Relaxed)
    }

    /// The hello options for this endpoint (SNI = its host).
    pub fn hello_options(&self) -> HelloOptions {
        HelloOptions::for_host(&self.host)
    }

    /// Waits for a lane and the pause; returns the probe limits to use
    /// (bounded by what is left of the budget) and counts the handshake.
    async fn slot(&self) -> Result<(tokio::sync::SemaphorePermit<'_>, ProbeLimits), ProbeError> {
        let spent = ProbeError::BudgetSpent {
            after_ms: millis(self.limits.endpoint_budget),
        };
        let permit = match tokio::time::timeout_at(self.deadline, self.permits.acquire()).await {
            Ok(Ok(p)) => p,
            _ => return Err(spent),
        };
        let pause = self.rng.up_to(self.limits.pause);
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(spent);
        }
        let per = self.limits.timeout.min(left);
        let limits = ProbeLimits {
            connect_timeout: per,
            read_timeout: per,
            total_timeout: per,
            stop_at: StopAt::ServerHelloDone,
            ..ProbeLimits::default()
        };
        self.handshakes.fetch_add(1, Ordering::Relaxed);
        Ok((permit, limits))
    }

    /// One SSLv3..TLS 1.2 hello offering `suites`, read to the ServerHelloDone.
    pub async fn hello(
        &self,
        version: ProtocolVersion,
        suites: &[u16],
    ) -> Result<ServerAnswer, ProbeError> {
        let bytes = client_hello(version, suites, &self.hello_options())?;
        let (_permit, limits) = self.slot().await?;
        probe(self.addr, &bytes, &limits).await
    }

    /// One TLS 1.3 probe (a HelloRetryRequest is answered on the same connection).
    pub async fn hello13(
        &self,
        suites: &[u16],
        opts: &HelloOptions,
    ) -> Result<Tls13Probe, ProbeError> {
        let (_permit, limits) = self.slot().await?;
        probe_tls13(self.addr, suites, opts, &limits).await
    }

    /// One SSLv2 CLIENT-HELLO offering every SSLv2 cipher kind.
    pub async fn sslv2(&self) -> Result<ServerAnswer, ProbeError> {
        let bytes = sslv2::client_hello_all()?;
        let (_permit, limits) = self.slot().await?;
        probe(self.addr, &bytes, &limits).await
    }

    /// Runs `f` (a handshake made by another TLS stack) under the same gate:
    /// a lane, the pause, the count, and `f`'s own bound.
    pub async fn guarded<T, F, Fut>(&self, f: F) -> Result<T, ProbeError>
    where
        F: FnOnce(Duration) -> Fut,
        Fut: std::future::Future<Output = Result<T, ProbeError>>,
    {
        let (_permit, limits) = self.slot().await?;
        let bound = limits.total_timeout;
        match tokio::time::timeout(bound, f(bound)).await {
            Ok(r) => r,
            Err(_) => Err(ProbeError::Deadline {
                after_ms: millis(bound),
            }),
        }
    }
}
