//! `report --org CODE|--parent CODE|--all --format html|csv|json --out FILE
//! [--now RFC3339]`: one report on demand, written atomically to FILE (or
//! to stdout with `--out -`). Scores are refreshed first (as `serve`
//! would), so the report shows the store's current findings.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use time::OffsetDateTime;

use super::output::write_atomic;
use super::{build, render, Format, ReportError, Scope};
use crate::store::scores::RefreshOptions;
use crate::store::Store;

/// Runs the command; returns the number of bytes written.
pub async fn report_command(
    store: &Store,
    scope: &Scope,
    format: Format,
    out: &Path,
    now: OffsetDateTime,
    agent_interval: Duration,
    stdout: &mut dyn Write,
) -> Result<usize, ReportError> {
    store
        .refresh_scores(
            now,
            &RefreshOptions {
                all: false,
                agent_interval,
            },
        )
        .await?;
    let data = build(store, scope, now, None).await?;
    let bytes = render(&data, format);
    if out.as_os_str() == "-" {
        stdout
            .write_all(&bytes)
            .map_err(|source| ReportError::Write {
                path: out.to_owned(),
                source,
            })?;
    } else {
        write_atomic(out, &bytes)?;
    }
    Ok(bytes.len())
}
