//! `serve`: opens the store, sets up the PKI and TLS, binds, logs
//! `listening on https://ADDR`, serves until the shutdown future completes,
//! drains, closes the store. Beside the listener, a task refreshes scores
//! every `[score] refresh` (see `store::scores`) and another fires the
//! scheduled reports (`report::schedule`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::api::{self, AppState, Limits};
use crate::clock::Clock;
use crate::config::{ScoreSettings, ServeOptions};
use crate::metrics::Metrics;
use crate::pki::{self, Ca, PkiError, ServerIdentity};
use crate::report::schedule::{self, Scheduler};
use crate::score::MODEL_VERSION;
use crate::store::scores::RefreshOptions;
use crate::store::{Store, StoreError};
use crate::tls::{self, TlsError};

/// Why `serve` could not start or ended badly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("the server task failed: {0}")]
    Task(String),
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    /// The address actually bound (port 0 resolved).
    pub local_addr: SocketAddr,
    /// The state handlers see (store, CA, clock, metrics).
    pub state: AppState,
    task: JoinHandle<()>,
}

impl Running {
    /// Waits until the server has shut down and closed the store.
    pub async fn wait(self) -> Result<(), ServeError> {
        self.task.await.map_err(|e| ServeError::Task(e.to_string()))
    }
}

/// Starts serving; returns once the listener is bound and the line
/// `listening on https://ADDR` has been logged.
pub async fn start(
    opts: &ServeOptions,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, ServeError> {
    let store = Store::open_in(&opts.data_dir).await?;
    // `feed import` re-matches under the policy `serve` runs with.
    store.save_policy(&opts.policy).await?;
    let now = clock.now();
    let ca = match &opts.ca {
        Some((cert, key)) => {
            let ca = Ca::load(cert, key)?;
            // `<data dir>/ca.pem` is the file agents pin: it holds the CA in use.
            pki::write_atomic(
                &opts.data_dir.join("ca.pem"),
                ca.cert_pem().as_bytes(),
                0o644,
            )?;
            ca
        }
        None => Ca::load_or_create(&opts.data_dir, now)?,
    };
    let identity = match &opts.tls {
        Some((cert, key)) => ServerIdentity::load(cert, key)?,
        None => ServerIdentity::ensure(&opts.data_dir, &ca, &pki::server_names(&opts.listen), now)?,
    };
    let tls_config = tls::server_config(&ca, identity, clock.clone())?;
    let listener = TcpListener::bind(&opts.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: opts.listen.clone(),
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: opts.listen.clone(),
        source,
    })?;
    let state = AppState {
        store: store.clone(),
        ca: Arc::new(ca),
        clock,
        metrics: Arc::new(Metrics::default()),
        limits: Limits {
            max_body_bytes: opts.max_body_bytes,
            max_decompressed_bytes: opts.max_decompressed_bytes,
        },
        policy: opts.policy,
    };
    let router = api::router(state.clone());
    tracing::info!("listening on https://{local_addr}");
    let refresher = tokio::spawn(refresh_scores_forever(
        store.clone(),
        state.clock.clone(),
        opts.score,
    ));
    let scheduler = tokio::spawn(schedule::run_forever(
        Scheduler::new(
            store.clone(),
            opts.reports.clone(),
            opts.smtp.clone(),
            opts.score.agent_interval,
        ),
        state.clock.clone(),
    ));
    let task = tokio::spawn(async move {
        tls::serve(listener, tls_config, router, shutdown).await;
        // Dropping a refresh mid-transaction rolls it back; a report cut
        // short leaves its slot claimed with status `running`.
        refresher.abort();
        let _ = refresher.await;
        scheduler.abort();
        let _ = scheduler.await;
        store.close().await;
        tracing::info!("stopped");
    });
    Ok(Running {
        local_addr,
        state,
        task,
    })
}

/// Re-scores the history of days scored only under another model version,
/// then refreshes scores every `settings.refresh`, for ever. Failures are
/// logged and retried at the next tick.
async fn refresh_scores_forever(store: Store, clock: Arc<dyn Clock>, settings: ScoreSettings) {
    match store.history_days_to_rescore().await {
        Ok(days) => {
            if let (Some(first), Some(last)) = (days.first(), days.last()) {
                tracing::info!(from = %first, to = %last, "re-scoring history under model {MODEL_VERSION}");
                match store.rescore_history(*first, *last, clock.now()).await {
                    Ok(n) => tracing::info!(points = n, "history re-scored"),
                    Err(e) => tracing::warn!(error = %e, "re-scoring history failed"),
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the score history"),
    }
    let opts = RefreshOptions {
        all: false,
        agent_interval: settings.agent_interval,
    };
    loop {
        let started = std::time::Instant::now();
        match store.refresh_scores(clock.now(), &opts).await {
            Ok(s) if s.computed > 0 || s.stale_raised > 0 || s.stale_resolved > 0 => {
                tracing::info!(
                    computed = s.computed,
                    written = s.written,
                    stale_raised = s.stale_raised,
                    stale_resolved = s.stale_resolved,
                    ms = started.elapsed().as_millis() as u64,
                    "scores refreshed"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "score refresh failed"),
        }
        tokio::time::sleep(settings.refresh).await;
    }
}

/// A future that completes on SIGTERM or SIGINT. The handlers are
/// installed now (not when the future is first polled), so a signal that
/// arrives right after the "listening" line is not lost.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    })
}
