//! The report scheduler inside `serve`: every [`TICK`] (and once at
//! start) it reads the one [`Clock`], and for each `[[reports]]` entry
//! whose latest cron slot at or before now is newer than the stored
//! `last_slot`, claims that slot in the store (`store::schedules`: one
//! process wins, a restart catches up once) and fires it: scores are
//! refreshed, the report is built as of now with "what changed" since the
//! previous fired slot, every format is written atomically to the report's
//! directory and, when `mail_to` is set, mailed. How the run ended is
//! recorded with the schedule. A failed run is not retried; the next slot
//! runs as usual.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::cron::Cron;
use super::mail::{self, Part, SmtpSettings};
use super::output::{file_name, write_atomic};
use super::{build, render, Format, ReportData, ReportError, Scope};
use crate::clock::{fmt_time, to_ms, Clock};
use crate::html::num;
use crate::store::schedules::Claim;
use crate::store::scores::RefreshOptions;
use crate::store::Store;

/// How often the scheduler looks at the clock.
pub const TICK: Duration = Duration::from_secs(20);

/// One `[[reports]]` entry, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSpec {
    pub name: String,
    pub cron: Cron,
    pub scope: Scope,
    pub formats: Vec<Format>,
    pub out_dir: PathBuf,
    pub mail_to: Vec<String>,
}

/// What one firing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub name: String,
    pub slot: OffsetDateTime,
    pub files: Vec<PathBuf>,
    pub mailed: bool,
    /// Set when the run failed (files written before the failure stay).
    pub error: Option<String>,
}

/// The scheduler of one process.
#[derive(Debug, Clone)]
pub struct Scheduler {
    store: Store,
    specs: Arc<Vec<ReportSpec>>,
    smtp: Option<SmtpSettings>,
    agent_interval: Duration,
}

impl Scheduler {
    pub fn new(
        store: Store,
        specs: Vec<ReportSpec>,
        smtp: Option<SmtpSettings>,
        agent_interval: Duration,
    ) -> Self {
        Scheduler {
            store,
            specs: Arc::new(specs),
            smtp,
            agent_interval,
        }
    }

    /// Handles every schedule at `now`; returns what fired here.
    pub async fn tick(&self, now: OffsetDateTime) -> Vec<Fired> {
        let mut fired = Vec::new();
        for spec in self.specs.iter() {
            let Some(slot) = spec.cron.at_or_before(now) else {
                continue;
            };
            let claim = self
                .store
                .claim_slot(&spec.name, spec.cron.as_str(), to_ms(slot), to_ms(now))
                .await;
            match claim {
                Ok(Claim::Fire { previous, claim }) => {
                    tracing::info!(report = %spec.name, slot = %fmt_time(slot), "report due");
                    let f = self.fire(spec, slot, previous, now).await;
                    let (ok, detail) = match &f.error {
                        None => (
                            true,
                            f.files
                                .iter()
                                .map(|p| p.display().to_string())
                                .collect::<Vec<_>>()
                                .join("\n"),
                        ),
                        Some(e) => (false, e.clone()),
                    };
                    match &f.error {
                        None => {
                            tracing::info!(report = %spec.name, files = f.files.len(), mailed = f.mailed, "report written")
                        }
                        Some(e) => tracing::warn!(report = %spec.name, error = %e, "report failed"),
                    }
                    if let Err(e) = self.store.finish_run(&spec.name, &claim, ok, &detail).await {
                        tracing::warn!(report = %spec.name, error = %e, "cannot record the report run");
                    }
                    fired.push(f);
                }
                Ok(Claim::Baseline) => {
                    tracing::info!(report = %spec.name, schedule = %spec.cron, "report scheduled")
                }
                Ok(Claim::NotDue) => {}
                Err(e) => {
                    tracing::warn!(report = %spec.name, error = %e, "cannot claim a report slot")
                }
            }
        }
        fired
    }

    async fn fire(
        &self,
        spec: &ReportSpec,
        slot: OffsetDateTime,
        previous: Option<i64>,
        now: OffsetDateTime,
    ) -> Fired {
        let mut fired = Fired {
            name: spec.name.clone(),
            slot,
            files: Vec::new(),
            mailed: false,
            error: None,
        };
        if let Err(e) = self.run(spec, slot, previous, now, &mut fired).await {
            fired.error = Some(e.to_string());
        }
        fired
    }

    async fn run(
        &self,
        spec: &ReportSpec,
        slot: OffsetDateTime,
        previous: Option<i64>,
        now: OffsetDateTime,
        fired: &mut Fired,
    ) -> Result<(), ReportError> {
        let opts = RefreshOptions {
            all: false,
            agent_interval: self.agent_interval,
        };
        self.store.refresh_scores(now, &opts).await?;
        let data = build(&self.store, &spec.scope, now, previous).await?;
        let mut parts = Vec::with_capacity(spec.formats.len());
        for f in &spec.formats {
            let name = file_name(&spec.name, &spec.scope, slot, *f);
            let bytes = render(&data, *f);
            let path = spec.out_dir.join(&name);
            write_atomic(&path, &bytes)?;
            fired.files.push(path);
            parts.push(Part {
                file_name: name,
                content_type: f.content_type(),
                bytes,
            });
        }
        if !spec.mail_to.is_empty() {
            let Some(smtp) = &self.smtp else {
                return Err(ReportError::Invalid(
                    "mail_to is set but there is no [smtp] section".into(),
                ));
            };
            let subject = format!("trustwatch: {} ({})", data.title, fmt_time(slot));
            mail::send(smtp, &spec.mail_to, &subject, &summary(&data), &parts).await?;
            fired.mailed = true;
        }
        Ok(())
    }
}

/// The text body of a mailed report.
pub fn summary(d: &ReportData) -> String {
    let mut s = format!(
        "{}\nGenerated {} with scoring model v{}; changes since {}.\n\n",
        d.title, d.generated_at, d.model_version, d.since
    );
    for sec in &d.sections {
        let o = &sec.org;
        s.push_str(&format!(
            "{} ({}): score {} grade {}, change {}; {} new, {} fixed, {} reopened findings.\n",
            o.name,
            o.code,
            num(o.score),
            o.grade.as_deref().unwrap_or("-"),
            sec.changes
                .delta
                .map_or("-".to_owned(), |d| format!("{d:+.1}")),
            sec.changes.new,
            sec.changes.fixed,
            sec.changes.reopened
        ));
        if let Some(f) = sec.top_to_fix.first() {
            s.push_str(&format!(
                "  Fix first: {} ({} findings, +{:.1} points).\n",
                f.code, f.findings, f.points
            ));
        }
    }
    s.push_str("\nFeeds:\n");
    for f in &d.feeds {
        s.push_str(&format!(
            "  {}: {} ({} days old)\n",
            f.kind,
            f.source,
            f.age_days.map_or("?".to_owned(), |a| a.to_string())
        ));
    }
    s.push_str("\nThe full report is attached.\n");
    s
}

/// Ticks at start and then every [`TICK`], for ever.
pub async fn run_forever(scheduler: Scheduler, clock: Arc<dyn Clock>) {
    if scheduler.specs.is_empty() {
        return;
    }
    loop {
        scheduler.tick(clock.now()).await;
        tokio::time::sleep(TICK).await;
    }
}
