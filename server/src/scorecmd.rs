//! `score`: recomputes every organisation's score now (the stale-agent
//! check included), optionally re-scores past days' history under the
//! current model, and prints the league table. A running `serve` reads the
//! result on its next request.

use std::io::Write;
use std::time::Duration;

use time::{Date, OffsetDateTime};

use crate::admin::Format;
use crate::store::query::{find_sort, OrgFilter, OrgItem, PageReq, ORG_SORTS};
use crate::store::scores::RefreshOptions;
use crate::store::{Store, StoreError};

/// Why `score` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScoreCmdError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    #[error("{0}")]
    Invalid(String),
}

/// Every organisation, best score first (unscored last).
pub async fn league(store: &Store) -> Result<Vec<OrgItem>, StoreError> {
    let sort = find_sort(ORG_SORTS, Some("-score")).map_err(StoreError::Corrupt)?;
    let mut page = PageReq {
        sort,
        after: None,
        limit: 1000,
    };
    let mut all = Vec::new();
    loop {
        let p = store.orgs_page(&OrgFilter::default(), &page).await?;
        all.extend(p.items);
        match p.next_cursor {
            Some(c) => {
                page.after = Some(
                    crate::store::query::decode_cursor(&page.sort, &c)
                        .map_err(StoreError::Corrupt)?,
                )
            }
            None => return Ok(all),
        }
    }
}

/// `score [--history-from DAY]`.
pub async fn score_command(
    store: &Store,
    now: OffsetDateTime,
    agent_interval: Duration,
    history_from: Option<Date>,
    format: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), ScoreCmdError> {
    if let Some(from) = history_from {
        let Some(yesterday) = now.date().previous_day() else {
            return Err(ScoreCmdError::Invalid("no day before now".into()));
        };
        if from > yesterday {
            return Err(ScoreCmdError::Invalid(format!(
                "--history-from {from} is not before today"
            )));
        }
        let n = store.rescore_history(from, yesterday, now).await?;
        writeln!(
            err,
            "history: {n} daily points re-scored from {from} to {yesterday}"
        )?;
    }
    let started = std::time::Instant::now();
    let s = store
        .refresh_scores(
            now,
            &RefreshOptions {
                all: true,
                agent_interval,
            },
        )
        .await?;
    writeln!(
        err,
        "scored {} organisations in {:.1}s ({} stale agents flagged, {} cleared)",
        s.written,
        started.elapsed().as_secs_f64(),
        s.stale_raised,
        s.stale_resolved
    )?;
    let items = league(store).await?;
    match format {
        Format::Json => {
            let text = serde_json::to_string_pretty(&items)
                .map_err(|e| ScoreCmdError::Invalid(e.to_string()))?;
            writeln!(out, "{text}")?;
        }
        Format::Table => {
            writeln!(
                out,
                "{:<12} {:<12} {:>6} {:<5} {:>6} {:>6} {:>6} {:>6} {:>5} {:>7}",
                "CODE",
                "PARENT",
                "SCORE",
                "GRADE",
                "TLS",
                "PATCH",
                "LEGACY",
                "COVER",
                "CONF",
                "RANK"
            )?;
            let num = |v: Option<f64>| v.map_or("-".to_owned(), |x| format!("{x:.1}"));
            for o in &items {
                writeln!(
                    out,
                    "{:<12} {:<12} {:>6} {:<5} {:>6} {:>6} {:>6} {:>6} {:>5} {:>7}",
                    o.code,
                    o.parent.as_deref().unwrap_or("-"),
                    num(o.score),
                    o.grade.as_deref().unwrap_or("-"),
                    num(o.tls_score),
                    num(o.patch_score),
                    num(o.legacy_score),
                    num(o.coverage_score),
                    o.confidence.map_or("-".to_owned(), |c| format!("{c}%")),
                    match (o.rank, o.siblings) {
                        (Some(r), Some(n)) => format!("{r}/{n}"),
                        _ => "-".to_owned(),
                    }
                )?;
            }
        }
    }
    Ok(())
}
