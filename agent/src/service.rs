//! The agent at work: `once` (one round now, spool, ship everything) and
//! `run` (the service: scheduler and shipper side by side until a signal).
//!
//! Collection never waits for shipping: the scheduler only writes to the
//! spool and wakes the shipper, which runs as its own task with jittered
//! exponential backoff. On SIGTERM/SIGINT a spool write in progress is
//! finished (writes are synchronous and never cancelled), an upload in
//! flight is abandoned (its report stays spooled), and `run` returns.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use trustwatch_common::report::AgentInfo;
use uuid::Uuid;

use crate::backoff::Backoff;
use crate::clock::{Clock, SystemClock};
use crate::collect::{host, CollectContext, Collector, Registered, Registry};
use crate::config::{Config, ServerUrl, ShipConfig};
use crate::random::{OsRandom, Random};
use crate::round::{run_round, AGENT_VERSION};
use crate::schedule::Scheduler;
use crate::ship::{drain, Drain, DrainEnd, ShipError, Shipper};
use crate::spool::{Spool, SpoolError};
use crate::state::{RunLog, StateDir, StateError};
use crate::tlsconf::{self, TlsError};

/// Why the agent cannot start or spool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("the agent's credentials in {dir} cannot be used: {source}")]
    Credentials { dir: String, source: TlsError },
    #[error("the server URL recorded at enrolment ({0}) is not valid; set server_url in the config or enrol again")]
    ServerUrl(String),
    #[error(transparent)]
    Ship(#[from] ShipError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

/// Everything `once` and `run` need.
pub struct Agent {
    pub spool: Arc<Spool>,
    pub shipper: Arc<Shipper>,
    pub log: Arc<RunLog>,
    pub registry: Registry,
    pub ctx: CollectContext,
    pub agent: AgentInfo,
    pub ship: ShipConfig,
    pub random: Arc<dyn Random>,
}

impl Agent {
    /// Loads the enrolment and credentials and opens the spool.
    pub fn load(cfg: &Config) -> Result<Agent, ServiceError> {
        let state = StateDir::new(&cfg.state_dir);
        let enrollment = state.require_enrollment()?;
        let server = match &cfg.server_url {
            Some(u) => u.clone(),
            None => ServerUrl::parse(&enrollment.server_url)
                .map_err(|_| ServiceError::ServerUrl(enrollment.server_url.clone()))?,
        };
        let tls =
            tlsconf::agent_client_config(&state).map_err(|source| ServiceError::Credentials {
                dir: state.root().display().to_string(),
                source,
            })?;
        let shipper = Shipper::new(tls, &server, cfg.ship.timeout)?;
        let spool = Spool::open(&state.spool_dir(), cfg.spool)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Ok(Agent {
            spool: Arc::new(spool),
            shipper: Arc::new(shipper),
            log: Arc::new(RunLog::new(&state)),
            registry: Registry::from_config(&cfg.collect),
            ctx: CollectContext {
                clock,
                root: cfg.collect.host.root.clone(),
            },
            agent: AgentInfo {
                id: enrollment.agent_id,
                hostname: host::hostname(),
                version: AGENT_VERSION.to_owned(),
            },
            ship: cfg.ship,
            random: Arc::new(OsRandom::new()),
        })
    }

    /// Runs these collectors as one round and spools its report.
    pub async fn collect_and_spool(&self, due: &[Registered]) -> Result<Uuid, ServiceError> {
        let items: Vec<(Arc<dyn Collector>, Option<Duration>)> = due
            .iter()
            .map(|r| (r.collector.clone(), Some(r.schedule.interval)))
            .collect();
        let round = run_round(&items, &self.ctx).await;
        let ran = round.collectors.clone();
        let finished = round.finished_at;
        let mut report = round.into_report(Uuid::now_v7(), self.agent.clone());
        let out = self.spool.push(&mut report)?;
        tracing::info!(
            "spooled report {} ({} bytes; collectors: {})",
            report.report_id,
            out.bytes,
            if ran.is_empty() {
                "none".to_owned()
            } else {
                ran.join(", ")
            }
        );
        if let Err(e) = self.log.record_runs(&ran, finished) {
            tracing::warn!("cannot record the collector runs: {e}");
        }
        Ok(report.report_id)
    }

    /// Ships the spool once, oldest first, until empty or a failure.
    pub async fn drain(&self) -> Drain {
        let d = drain(
            &self.spool,
            &self.shipper,
            &self.log,
            self.ctx.clock.as_ref(),
        )
        .await;
        if let Some(p) = d.end.problem() {
            if let Err(e) = self.log.record_ship_error(&p) {
                tracing::warn!("cannot record the shipping problem: {e}");
            }
        }
        d
    }
}

/// What `once` did.
#[derive(Debug)]
pub struct OnceOutcome {
    pub report_id: Uuid,
    pub drain: Drain,
}

/// One round with every configured collector, spooled, then the whole
/// spool shipped. An error means the report was not spooled.
pub async fn once(agent: &Agent) -> Result<OnceOutcome, ServiceError> {
    let report_id = agent.collect_and_spool(agent.registry.entries()).await?;
    let drain = agent.drain().await;
    Ok(OnceOutcome { report_id, drain })
}

/// The service, until `shutdown` completes.
pub async fn run(agent: Arc<Agent>, shutdown: impl Future<Output = ()>) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let wake = Arc::new(Notify::new());
    // Ship whatever a previous life left in the spool.
    wake.notify_one();
    let shipper = tokio::spawn(ship_loop(agent.clone(), stop_rx, wake.clone()));

    let mut sched = Scheduler::new(&agent.registry, Instant::now(), agent.random.clone());
    if agent.registry.is_empty() {
        tracing::warn!("no collector is enabled; only shipping what is spooled");
    }
    tokio::pin!(shutdown);
    loop {
        let Some(due_at) = sched.next_due() else {
            (&mut shutdown).await;
            break;
        };
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep_until(due_at) => {}
        }
        let due = sched.take_due(Instant::now(), agent.ctx.clock.now());
        if due.is_empty() {
            continue;
        }
        // Collection may be abandoned on shutdown; the spool write inside
        // collect_and_spool is synchronous, so once started it completes.
        let result = tokio::select! {
            _ = &mut shutdown => break,
            r = agent.collect_and_spool(&due) => r,
        };
        match result {
            Ok(_) => wake.notify_one(),
            Err(e) => tracing::error!("report not spooled: {e}"),
        }
    }
    tracing::info!("stopping");
    let _ = stop_tx.send(true);
    if let Err(e) = shipper.await {
        tracing::error!("shipper task failed: {e}");
    }
}

async fn ship_loop(agent: Arc<Agent>, mut stop: watch::Receiver<bool>, wake: Arc<Notify>) {
    let mut backoff = Backoff::new(
        agent.ship.backoff_initial,
        agent.ship.backoff_max,
        agent.random.clone(),
    );
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = wake.notified() => {}
        }
        loop {
            let d = tokio::select! {
                _ = stop.changed() => return,
                d = agent.drain() => d,
            };
            let wait = match &d.end {
                DrainEnd::Empty => {
                    backoff.reset();
                    break;
                }
                DrainEnd::Retry { reason, after } => {
                    let mut w = backoff.next_delay();
                    if let Some(a) = after {
                        w = w.max((*a).min(backoff.max()));
                    }
                    tracing::warn!(
                        "shipping paused: {reason}; retrying in {}s",
                        w.as_secs_f32()
                    );
                    w
                }
                DrainEnd::Unauthorized { .. } => {
                    tracing::error!(
                        "{}; retrying in {}s",
                        d.end.problem().unwrap_or_default(),
                        backoff.max().as_secs()
                    );
                    backoff.max()
                }
                DrainEnd::Spool(e) => {
                    let w = backoff.next_delay();
                    tracing::error!(
                        "spool failed while shipping: {e}; retrying in {}s",
                        w.as_secs()
                    );
                    w
                }
            };
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => tracing::info!("SIGTERM received"),
                _ = i.recv() => tracing::info!("SIGINT received"),
            }
        }
        (t, i) => {
            // Without signal handlers the default action (exit) applies;
            // wait forever rather than stop the service at once.
            if let Err(e) = t.and(i) {
                tracing::error!("cannot install signal handlers: {e}");
            }
            std::future::pending::<()>().await
        }
    }
}
