//! The network collector: discovery of what answers on the organisation's
//! ranges, protocol probes of legacy services, fingerprints of end-of-life
//! systems, and the `legacy.*` findings of DESIGN §2.
//!
//! - [`targets`]: ranges to addresses, exclusions, the 65,536-address cap.
//! - [`settings`]: the do-no-harm settings and scan windows.
//! - [`pace`]: the global and per-host rate limits (behind a clock trait).
//! - [`sweep`]: hosts first, then ports, then the probes of open ports.
//! - [`probe`]: one bounded conversation per protocol.
//! - [`fingerprint`] (+ `fingerprints.toml`): what a device is, whether it
//!   is past end of support.
//! - [`judge`]: the `device` asset and its findings.
//! - [`audit`]: what was sent to how many hosts, logged per kind.
//! - [`table`]: `scan network --format table`.
//!
//! TLS ports found (443, 8443, and any port that answers a ClientHello) are
//! handed to the TLS collector ([`assess_tls`]); its assets and findings
//! join this collector's output, labelled `network`, so that they are
//! resolved when the next sweep no longer sees them.

pub mod audit;
pub mod fingerprint;
pub mod judge;
pub mod pace;
pub mod ports;
pub mod probe;
pub mod settings;
pub mod sweep;
pub mod table;
pub mod targets;

use std::path::PathBuf;
use std::sync::Arc;

use time::OffsetDateTime;
use trustwatch_common::report::{collector, CollectorError};
use trustwatch_common::ScanDocument;

use super::tls;
use super::{CollectContext, CollectFailed, CollectFuture, CollectOutput, Collector};
use crate::clock::Clock;
use crate::config::Cidr;
use fingerprint::{Judging, RuleSet};
use pace::{PaceClock, TokioClock};
use probe::ProbeLimits;
use settings::{windows_open, ScanSettings};
use sweep::{StopReason, SweepPlan};

/// One network scan: what to sweep and how.
#[derive(Debug, Clone)]
pub struct NetworkJob {
    /// Ranges to sweep.
    pub ranges: Vec<Cidr>,
    /// Ranges never sent a packet.
    pub exclude: Vec<Cidr>,
    /// Ports, rates, windows, budget.
    pub settings: ScanSettings,
    /// Scan windows apply (`run`); `once` and `scan network` ignore them.
    pub enforce_windows: bool,
    /// Bounds of each protocol probe.
    pub probe_limits: ProbeLimits,
    /// How the TLS collector treats the TLS ports found.
    pub tls_limits: tls::ScanLimits,
    /// Extra trusted roots for the TLS assessment.
    pub tls_ca: Vec<PathBuf>,
}

impl NetworkJob {
    /// A job with default probe and TLS limits.
    pub fn new(ranges: Vec<Cidr>, exclude: Vec<Cidr>, settings: ScanSettings) -> NetworkJob {
        NetworkJob {
            ranges,
            exclude,
            settings,
            enforce_windows: false,
            probe_limits: ProbeLimits::default(),
            tls_limits: tls::ScanLimits::default(),
            tls_ca: Vec::new(),
        }
    }
}

/// Why a network scan could not run at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    #[error(transparent)]
    Targets(#[from] targets::TargetError),
    #[error("outside the scan windows ({windows} UTC); nothing was sent")]
    OutsideWindow { windows: String },
    #[error("fingerprint rules: {0}")]
    Rules(#[from] fingerprint::FingerprintError),
}

fn error(target: Option<String>, reason: String) -> CollectorError {
    CollectorError {
        collector: collector::NETWORK.to_owned(),
        target,
        reason,
    }
}

/// Hands `targets` (`host:port`) to the TLS collector and returns its
/// output, relabelled as this collector's. This is the one place the
/// network collector calls the TLS collector.
pub async fn assess_tls(
    targets: &[String],
    limits: tls::ScanLimits,
    ca: &[PathBuf],
    now: OffsetDateTime,
) -> CollectOutput {
    let mut out = CollectOutput::default();
    if targets.is_empty() {
        return out;
    }
    let parsed: Vec<tls::Target> = targets.iter().filter_map(|t| t.parse().ok()).collect();
    let store = match tls::TrustStore::load(ca, true) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            out.errors = targets
                .iter()
                .map(|t| {
                    error(
                        Some(t.clone()),
                        format!("TLS not assessed: trust store: {e}"),
                    )
                })
                .collect();
            return out;
        }
    };
    let mut got = tls::scan_targets(&parsed, limits, store, now).await;
    for f in &mut got.findings {
        f.collector = collector::NETWORK.to_owned();
    }
    for e in &mut got.errors {
        e.collector = collector::NETWORK.to_owned();
    }
    got
}

/// Runs `job`: sweep, identify, judge, TLS. `wall` is the clock verdicts
/// and windows read; `pace` the clock the rate limits run on.
pub async fn run_scan(
    job: &NetworkJob,
    wall: Arc<dyn Clock>,
    pace: Arc<dyn PaceClock>,
) -> Result<CollectOutput, NetworkError> {
    let rules = RuleSet::builtin()?;
    let addresses = targets::addresses(&job.ranges, &job.exclude)?;
    if job.enforce_windows && !windows_open(&job.settings.windows, wall.now()) {
        let windows: Vec<String> = job.settings.windows.iter().map(|w| w.to_string()).collect();
        return Err(NetworkError::OutsideWindow {
            windows: windows.join(", "),
        });
    }
    let now = wall.now();
    let judging = Judging {
        today: now.date(),
        windows_esu: job.settings.windows_esu,
    };
    tracing::info!(
        "network sweep of {} address(es) ({} range(s), {} excluded range(s)), ports {}, at most {}/s overall and {}/s per host",
        addresses.len(),
        job.ranges.len(),
        job.exclude.len(),
        job.settings.ports,
        job.settings.rate,
        job.settings.host_rate
    );
    let plan = SweepPlan {
        addresses,
        settings: job.settings.clone(),
        probe_limits: job.probe_limits,
        enforce_windows: job.enforce_windows,
    };
    let outcome = sweep::sweep(plan, wall.clone(), pace).await;
    let mut out = CollectOutput::default();
    let mut tls_targets = Vec::new();
    for host in &outcome.hosts {
        out.assets.push(judge::asset(host, rules, judging));
        out.findings.extend(judge::findings(host, rules, judging));
        tls_targets.extend(judge::tls_targets(host));
        for p in &host.ports {
            if let sweep::Found::ProbeFailed { kind, reason } = &p.found {
                out.errors.push(error(
                    Some(format!("{}:{}/{}", host.addr, p.port, p.transport.as_str())),
                    format!("{} probe failed: {reason}", kind.as_str()),
                ));
            }
        }
    }
    if let Some(why) = outcome.stop {
        out.errors.push(error(
            None,
            format!(
                "sweep stopped early: {}; {} address(es) not scanned",
                why.describe(),
                outcome.not_started
            ),
        ));
    }
    for a in &tls_targets {
        if let Ok(addr) = a.parse::<std::net::SocketAddr>() {
            outcome
                .audit
                .record(audit::Traffic::TlsAssessment, addr.ip());
        }
    }
    outcome.audit.log();
    tracing::info!(
        "network sweep done: {} address(es) swept, {} answered, {} with open ports, {} send(s); {} TLS endpoint(s) to assess",
        outcome.swept,
        outcome.live,
        outcome.hosts.len(),
        outcome.sent,
        tls_targets.len()
    );
    let tls_out = if outcome.stop == Some(StopReason::Window) {
        // The window closed: no more traffic, the TLS ports wait for the next run.
        CollectOutput {
            errors: tls_targets
                .iter()
                .map(|t| {
                    error(
                        Some(t.clone()),
                        "TLS not assessed: the scan window closed".into(),
                    )
                })
                .collect(),
            ..CollectOutput::default()
        }
    } else {
        assess_tls(&tls_targets, job.tls_limits, &job.tls_ca, now).await
    };
    out.assets.extend(tls_out.assets);
    out.findings.extend(tls_out.findings);
    out.errors.extend(tls_out.errors);
    Ok(out)
}

/// `scan network`: runs `job` now and returns its `trustwatch.scan/v1`
/// document.
pub async fn scan_document(
    job: &NetworkJob,
    wall: Arc<dyn Clock>,
) -> Result<ScanDocument, NetworkError> {
    let started_at = wall.now();
    let out = run_scan(job, wall.clone(), Arc::new(TokioClock::new())).await?;
    let mut doc = ScanDocument::new(crate::round::AGENT_VERSION, started_at);
    doc.finished_at = wall.now();
    doc.assets = out.assets;
    doc.findings = out.findings;
    doc.errors = out.errors;
    Ok(doc)
}

/// The collector for `[collect.network]`.
#[derive(Debug, Clone)]
pub struct NetworkCollector {
    job: NetworkJob,
}

impl NetworkCollector {
    pub fn new(job: NetworkJob) -> Self {
        NetworkCollector { job }
    }
}

impl Collector for NetworkCollector {
    fn name(&self) -> &'static str {
        collector::NETWORK
    }

    fn collect<'a>(&'a self, ctx: &'a CollectContext) -> CollectFuture<'a> {
        Box::pin(async move {
            run_scan(&self.job, ctx.clock.clone(), Arc::new(TokioClock::new()))
                .await
                .map_err(|e| CollectFailed::new(e.to_string()))
        })
    }

    fn wait_for_window(&self, now: time::OffsetDateTime) -> std::time::Duration {
        if self.job.enforce_windows {
            settings::wait_for_window(&self.job.settings.windows, now)
        } else {
            std::time::Duration::ZERO
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use std::net::{IpAddr, Ipv4Addr};
    use time::macros::datetime;
    use trustwatch_common::AssetKind;

    /// A TLS 1.2/1.3 server (rustls, self-signed) on 127.0.0.1 answering
    /// every handshake; returns its port.
    async fn tls_server() -> u16 {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let der = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], der)
        .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_secs(5),
                        acceptor.accept(sock),
                    )
                    .await;
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn a_port_answering_a_client_hello_is_handed_to_the_tls_collector() {
        let port = tls_server().await;
        let cidr = Cidr {
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            prefix: 32,
        };
        let settings = ScanSettings {
            ports: port.to_string().parse().expect("ports"),
            ..ScanSettings::default()
        };
        let mut job = NetworkJob::new(vec![cidr], Vec::new(), settings);
        job.tls_limits.pause = std::time::Duration::ZERO;
        let wall: Arc<dyn Clock> = Arc::new(FixedClock(datetime!(2026-11-26 12:00 UTC)));
        let out = run_scan(&job, wall, Arc::new(TokioClock::new()))
            .await
            .expect("scan");
        let target = format!("127.0.0.1:{port}");
        let device = out
            .assets
            .iter()
            .find(|a| a.kind == AssetKind::Device)
            .expect("device");
        assert_eq!(device.details["services"][0]["protocol"], "tls");
        assert!(
            out.assets
                .iter()
                .any(|a| a.kind == AssetKind::TlsEndpoint && a.id == target),
            "no tls_endpoint {target}: {out:#?}"
        );
        assert!(
            !out.findings.is_empty(),
            "a self-signed certificate at least"
        );
        assert!(out.findings.iter().all(|f| f.collector == "network"));
        assert!(out.errors.is_empty(), "{:?}", out.errors);
    }

    #[tokio::test]
    async fn excluded_and_oversized_ranges_send_nothing() {
        let wall: Arc<dyn Clock> = Arc::new(FixedClock(datetime!(2026-11-26 12:00 UTC)));
        let one: Cidr = "127.0.0.1".parse().expect("cidr");
        let job = NetworkJob::new(vec![one], vec![one], ScanSettings::default());
        let out = run_scan(&job, wall.clone(), Arc::new(TokioClock::new()))
            .await
            .expect("scan");
        assert!(out.assets.is_empty() && out.errors.is_empty());
        let big: Cidr = "10.0.0.0/15".parse().expect("cidr");
        let job = NetworkJob::new(vec![big], Vec::new(), ScanSettings::default());
        assert!(matches!(
            run_scan(&job, wall.clone(), Arc::new(TokioClock::new())).await,
            Err(NetworkError::Targets(_))
        ));
        let mut job = NetworkJob::new(vec![one], Vec::new(), ScanSettings::default());
        job.enforce_windows = true;
        job.settings.windows = vec![settings::ScanWindow::parse("20:00-06:00").expect("w")];
        assert!(matches!(
            run_scan(&job, wall, Arc::new(TokioClock::new())).await,
            Err(NetworkError::OutsideWindow { .. })
        ));
    }
}
