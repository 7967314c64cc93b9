//! The TLS collector: protocol versions, cipher suites, key exchange and
//! certificate chains of configured endpoints, measured on the wire.
//!
//! - [`wire`]: hand-built hellos, the bounded answer parser, the probe.
//! - [`prober`]: the per-endpoint gate (connections at a time, pauses,
//!   per-connection timeout, time budget, handshake count).
//! - [`enumerate`]: versions, suites, server preference, key exchange.
//! - [`fetch13`]: the chain of TLS 1.3-only servers, through rustls.
//! - [`trust`] and [`chain`]: trust store and chain analysis.
//! - [`findings`] and [`grade`]: DESIGN §2 findings, the SSL Labs grade.
//! - [`assess`]: one endpoint, end to end, as an asset and findings.
//! - [`table`]: the `scan tls --format table` rendering.
//!
//! Endpoints are assessed [`ScanLimits::concurrency`] at a time; results
//! keep the order of the targets given.

pub mod assess;
pub mod chain;
pub mod enumerate;
pub mod fetch13;
pub mod findings;
pub mod grade;
pub mod prober;
pub mod table;
pub mod trust;
pub mod wire;

use std::path::PathBuf;
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::Semaphore;
use trustwatch_common::report::collector;

pub use crate::config::Target;
pub use assess::Outcome;
pub use prober::ScanLimits;
pub use trust::{TrustError, TrustStore};

use super::{CollectContext, CollectFailed, CollectFuture, CollectOutput, Collector};

/// Assesses every target, `limits.concurrency` at a time, at clock `now`.
pub async fn scan_targets(
    targets: &[Target],
    limits: ScanLimits,
    store: Arc<TrustStore>,
    now: OffsetDateTime,
) -> CollectOutput {
    let gate = Arc::new(Semaphore::new(limits.concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, t) in targets.iter().enumerate() {
        let t = t.clone();
        let store = Arc::clone(&store);
        let gate = Arc::clone(&gate);
        set.spawn(async move {
            // The gate is never closed, so acquiring cannot fail; if it
            // did, assessing without it is still bounded per endpoint.
            let _permit = gate.acquire_owned().await.ok();
            (i, assess::assess(&t, limits, &store, now).await)
        });
    }
    let mut outcomes: Vec<(usize, Outcome)> = Vec::with_capacity(targets.len());
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(pair) => outcomes.push(pair),
            Err(e) => tracing::error!("a TLS assessment task failed: {e}"),
        }
    }
    outcomes.sort_by_key(|(i, _)| *i);
    let mut out = CollectOutput::default();
    for (i, o) in outcomes {
        match o {
            Outcome::Assessed { asset, findings } => {
                out.assets.push(asset);
                out.findings.extend(findings);
            }
            Outcome::Failed(e) => {
                tracing::warn!(
                    "TLS target {} not assessed: {}",
                    targets.get(i).map(|t| t.given.as_str()).unwrap_or("?"),
                    e.reason
                );
                out.errors.push(e);
            }
        }
    }
    out
}

/// The collector for `[collect.tls]`.
#[derive(Debug, Clone)]
pub struct TlsCollector {
    targets: Vec<Target>,
    ca: Vec<PathBuf>,
    limits: ScanLimits,
}

impl TlsCollector {
    /// A collector of `targets`, trusting `ca` beside the system's roots.
    pub fn new(targets: Vec<Target>, ca: Vec<PathBuf>, limits: ScanLimits) -> Self {
        TlsCollector {
            targets,
            ca,
            limits,
        }
    }
}

impl Collector for TlsCollector {
    fn name(&self) -> &'static str {
        collector::TLS
    }

    fn collect<'a>(&'a self, ctx: &'a CollectContext) -> CollectFuture<'a> {
        Box::pin(async move {
            let store = TrustStore::load(&self.ca, true)
                .map_err(|e| CollectFailed::new(format!("trust store: {e}")))?;
            Ok(scan_targets(&self.targets, self.limits, Arc::new(store), ctx.clock.now()).await)
        })
    }
}

/// `scan tls`: every target assessed, as a `trustwatch.scan/v1` document.
pub async fn scan_document(
    targets: &[Target],
    limits: ScanLimits,
    store: TrustStore,
    clock: Arc<dyn crate::clock::Clock>,
) -> trustwatch_common::ScanDocument {
    let started = clock.now();
    let out = scan_targets(targets, limits, Arc::new(store), started).await;
    let mut doc = trustwatch_common::ScanDocument::new(crate::round::AGENT_VERSION, started);
    doc.finished_at = clock.now();
    doc.assets = out.assets;
    doc.findings = out.findings;
    doc.errors = out.errors;
    doc
}
