//! Collectors: the interface every signal source implements, and the
//! registry of the collectors a configuration enables.
//!
//! A collector is a [`Collector`]: a name (one of
//! `trustwatch_common::report::collector`) and an async `collect` that
//! returns a [`CollectOutput`] (assets, findings, per-target errors) or a
//! [`CollectFailed`] when it could not run at all. The scheduler, the spool
//! and the shipper know nothing else about collectors: a new one (TLS,
//! network) is added by implementing the trait and registering it in
//! [`Registry::from_config`].

pub mod host;
pub mod network;
pub mod tls;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use trustwatch_common::report::CollectorError;
use trustwatch_common::{Asset, Finding};

use crate::clock::Clock;
use crate::config::{CollectConfig, Schedule};

/// What a collector may use while it runs.
#[derive(Clone)]
pub struct CollectContext {
    /// The clock all time-dependent verdicts read.
    pub clock: Arc<dyn Clock>,
    /// Root of the filesystem the host collector inventories (`/` normally).
    pub root: PathBuf,
}

/// What one collector found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollectOutput {
    pub assets: Vec<Asset>,
    pub findings: Vec<Finding>,
    /// Targets that could not be assessed, and why (the collector still ran).
    pub errors: Vec<CollectorError>,
}

/// A collector that could not run at all (its name is then not listed
/// among the collectors of the report, so nothing it found before is
/// considered resolved).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct CollectFailed {
    pub reason: String,
}

impl CollectFailed {
    pub fn new(reason: impl Into<String>) -> Self {
        CollectFailed {
            reason: reason.into(),
        }
    }
}

/// The future a collector returns (boxed, so the trait is object-safe).
pub type CollectFuture<'a> =
    Pin<Box<dyn Future<Output = Result<CollectOutput, CollectFailed>> + Send + 'a>>;

/// A source of signals.
pub trait Collector: Send + Sync {
    /// Its name: `host`, `tls` or `network`.
    fn name(&self) -> &'static str;
    /// Runs once. Must bound its own network reads with timeouts.
    fn collect<'a>(&'a self, ctx: &'a CollectContext) -> CollectFuture<'a>;
    /// How long the scheduler of `run` must hold this collector back at
    /// wall time `now` (scan windows); zero means it may run now.
    fn wait_for_window(&self, _now: time::OffsetDateTime) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

/// The reason [`Unavailable`] gives.
#[cfg(test)]
pub const NOT_AVAILABLE: &str = "collector not available in this build";

/// A test double: a collector that can never run (it always fails with
/// [`NOT_AVAILABLE`]), for the round and scheduler tests.
#[cfg(test)]
pub struct Unavailable {
    name: &'static str,
}

#[cfg(test)]
impl Unavailable {
    pub fn new(name: &'static str) -> Self {
        Unavailable { name }
    }
}

#[cfg(test)]
impl Collector for Unavailable {
    fn name(&self) -> &'static str {
        self.name
    }
    fn collect<'a>(&'a self, _ctx: &'a CollectContext) -> CollectFuture<'a> {
        Box::pin(async { Err(CollectFailed::new(NOT_AVAILABLE)) })
    }
}

/// A collector and when it runs.
#[derive(Clone)]
pub struct Registered {
    pub collector: Arc<dyn Collector>,
    pub schedule: Schedule,
}

/// The collectors a configuration enables.
#[derive(Clone, Default)]
pub struct Registry {
    entries: Vec<Registered>,
}

impl Registry {
    /// A registry of exactly these collectors.
    pub fn new(entries: Vec<Registered>) -> Self {
        Registry { entries }
    }

    /// Every enabled and configured collector of `cfg`.
    pub fn from_config(cfg: &CollectConfig) -> Self {
        let mut entries = Vec::new();
        if cfg.host.enabled {
            entries.push(Registered {
                collector: Arc::new(host::HostCollector::new()),
                schedule: cfg.host.schedule,
            });
        }
        if cfg.tls.is_configured() {
            let t = &cfg.tls;
            let limits = tls::ScanLimits {
                timeout: t.timeout,
                pause: t.pause,
                endpoint_budget: t.endpoint_timeout,
                concurrency: t.concurrency,
                ..tls::ScanLimits::default()
            };
            entries.push(Registered {
                collector: Arc::new(tls::TlsCollector::new(
                    t.targets.clone(),
                    t.ca.clone(),
                    limits,
                )),
                schedule: t.schedule,
            });
        }
        if cfg.network.is_configured() {
            let n = &cfg.network;
            let mut job =
                network::NetworkJob::new(n.ranges.clone(), n.exclude.clone(), n.settings.clone());
            job.enforce_windows = n.enforce_windows;
            job.tls_ca = cfg.tls.ca.clone();
            job.tls_limits = tls::ScanLimits {
                timeout: cfg.tls.timeout,
                pause: cfg.tls.pause,
                endpoint_budget: cfg.tls.endpoint_timeout,
                concurrency: cfg.tls.concurrency,
                ..tls::ScanLimits::default()
            };
            entries.push(Registered {
                collector: Arc::new(network::NetworkCollector::new(job)),
                schedule: n.schedule,
            });
        }
        Registry { entries }
    }

    pub fn entries(&self) -> &[Registered] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, RawConfig};
    use std::path::Path;

    fn registry(text: &str) -> Vec<&'static str> {
        let raw: RawConfig = parse(Path::new("t"), text.as_bytes()).unwrap();
        let cfg = raw.validate().unwrap();
        Registry::from_config(&cfg.collect)
            .entries()
            .iter()
            .map(|e| e.collector.name())
            .collect()
    }

    #[test]
    fn registry_holds_what_the_config_enables() {
        assert_eq!(registry(""), vec!["host"]);
        assert_eq!(
            registry("[collect.host]\nenabled = false"),
            Vec::<&str>::new()
        );
        assert_eq!(
            registry("[collect.tls]\ntargets = [\"a:443\"]\n[collect.network]\nranges = [\"10.0.0.0/24\"]"),
            vec!["host", "tls", "network"]
        );
        assert_eq!(
            registry("[collect.tls]\ntargets = [\"a:443\"]\nenabled = false"),
            vec!["host"]
        );
    }
}
