//! The on-disk spool of reports waiting to be shipped: no report is lost
//! while the server is unreachable or the agent is killed, within the bound.
//!
//! # Format of `<state>/spool/`
//!
//! * `<report_id>.json`: one complete `trustwatch.report/v1` document (JSON)
//!   per file, named by its UUIDv7 in canonical lowercase hyphenated form.
//!   A UUIDv7 starts with its creation time in milliseconds, so the lexical
//!   order of names is the age order of reports.
//! * `.<name>.<random>.tmp`: a write in progress, or the leftover of a crash.
//! * `dropped`: how many reports the bound has dropped so far, as ASCII
//!   decimal and a newline. Missing means 0. Its value goes into each new
//!   report's `spool_dropped`.
//! * `quarantined`: how many files were moved to quarantine, same format.
//! * `quarantine/`: files that could not be read or parsed, had a name that
//!   is not a canonical report id, or that the server refused for good. At
//!   most [`QUARANTINE_KEEP`] are kept (the oldest names go first).
//!
//! # Invariants
//!
//! 1. A report file under its final name is complete: it is written to a
//!    temporary file in the same directory, fsynced, renamed, and the
//!    directory fsynced, before any upload of it is tried.
//! 2. A report file is deleted only after the server answered 202 for its
//!    `report_id`, or when the bound drops it (counted), or by quarantine.
//! 3. After a push the spool holds at most `max_reports` reports of at most
//!    `max_bytes` in total. The oldest reports are dropped to make room; the
//!    `dropped` counter is durably raised *before* they are deleted, so a
//!    crash in between over-counts and never under-counts.
//! 4. A file that cannot be read or parsed is moved to `quarantine/` (logged
//!    and counted), never retried forever and never a reason to crash.
//! 5. Temporary files older than [`TEMP_GRACE`] are removed whenever the
//!    directory is scanned (younger ones may belong to a write in progress
//!    of another process).
//!
//! A [`Spool`] value keeps no state of its own beyond a lock that
//! serialises its mutations: the directory is the truth, so a restarted
//! agent, a concurrent `once`, and `status` all see the same spool.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use trustwatch_common::Report;
use uuid::Uuid;

use crate::config::SpoolLimits;
use crate::fsio::{self, AtomicWriter, DurableWriter, TEMP_SUFFIX};

/// Temporary files younger than this are left alone by scans.
pub const TEMP_GRACE: Duration = Duration::from_secs(60);
/// How many files `quarantine/` keeps.
pub const QUARANTINE_KEEP: usize = 100;

const DROPPED_FILE: &str = "dropped";
const QUARANTINED_FILE: &str = "quarantined";
const QUARANTINE_DIR: &str = "quarantine";
const REPORT_EXT: &str = ".json";

/// Spool failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    #[error("spool I/O on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("report {id} is {size} bytes, more than the whole spool may hold ({max} bytes); it was dropped")]
    TooLarge { id: Uuid, size: u64, max: u64 },
    #[error("cannot encode report: {0}")]
    Encode(#[from] serde_json::Error),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Counts shown by `status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SpoolStats {
    /// Reports waiting.
    pub depth: usize,
    /// Their total size.
    pub bytes: u64,
    /// Reports dropped so far because the spool was full.
    pub dropped: u64,
    /// Files moved to quarantine so far.
    pub quarantined: u64,
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushOutcome {
    /// Oldest reports dropped to make room for this one.
    pub dropped_now: u64,
    /// Size of the spooled file.
    pub bytes: u64,
}

/// A spooled report, as its exact file bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spooled {
    pub id: Uuid,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Entry {
    id: Uuid,
    name: String,
    size: u64,
}

/// The spool directory.
pub struct Spool {
    dir: PathBuf,
    limits: SpoolLimits,
    writer: Box<dyn AtomicWriter>,
    lock: Mutex<()>,
}

impl Spool {
    /// Opens (creating if needed) the spool at `dir` with durable writes.
    pub fn open(dir: &Path, limits: SpoolLimits) -> Result<Spool, SpoolError> {
        Spool::with_writer(dir, limits, Box::new(DurableWriter))
    }

    /// Opens the spool with a given writer (tests inject faults here).
    pub fn with_writer(
        dir: &Path,
        limits: SpoolLimits,
        writer: Box<dyn AtomicWriter>,
    ) -> Result<Spool, SpoolError> {
        let q = dir.join(QUARANTINE_DIR);
        fsio::create_private_dir(&q).map_err(io_err(&q))?;
        let spool = Spool {
            dir: dir.to_owned(),
            limits,
            writer,
            lock: Mutex::new(()),
        };
        {
            let _g = spool.guard();
            spool.scan(true)?;
        }
        Ok(spool)
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn guard(&self) -> MutexGuard<'_, ()> {
        // Poisoning means a panic elsewhere; the directory is still the
        // truth (atomic writes), so the lock is safe to take over.
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Spools a report: sets its `spool_dropped`, makes room by dropping the
    /// oldest reports if the bound requires it, and writes it durably.
    pub fn push(&self, report: &mut Report) -> Result<PushOutcome, SpoolError> {
        let _g = self.guard();
        let entries: Vec<Entry> = self
            .scan(true)?
            .into_iter()
            .filter(|e| e.id != report.report_id)
            .collect();
        let dropped_before = self.read_counter(DROPPED_FILE)?;
        let mut victims = 0usize;
        let body = loop {
            report.spool_dropped = dropped_before.saturating_add(victims as u64);
            let body = serde_json::to_vec(report)?;
            let size = body.len() as u64;
            if size > self.limits.max_bytes {
                self.write_counter(DROPPED_FILE, dropped_before.saturating_add(1))?;
                return Err(SpoolError::TooLarge {
                    id: report.report_id,
                    size,
                    max: self.limits.max_bytes,
                });
            }
            let need = victims_needed(&entries, size, self.limits);
            if need <= victims {
                break body;
            }
            victims = need;
        };
        if victims > 0 {
            self.write_counter(DROPPED_FILE, dropped_before.saturating_add(victims as u64))?;
            for e in &entries[..victims] {
                let p = self.dir.join(&e.name);
                match fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(SpoolError::Io { path: p, source: e }),
                }
            }
            tracing::warn!(
                "spool full: dropped {victims} oldest report(s) to make room ({} dropped so far)",
                dropped_before.saturating_add(victims as u64)
            );
        }
        let path = self.report_path(report.report_id);
        self.writer
            .write_atomic(&path, &body, 0o600)
            .map_err(io_err(&path))?;
        Ok(PushOutcome {
            dropped_now: victims as u64,
            bytes: body.len() as u64,
        })
    }

    /// The oldest readable report. Files that cannot be read or parsed on
    /// the way are quarantined.
    pub fn oldest(&self) -> Result<Option<Spooled>, SpoolError> {
        loop {
            let ids = self.oldest_ids(16)?;
            if ids.is_empty() {
                return Ok(None);
            }
            for id in ids {
                if let Some(s) = self.load(id)? {
                    return Ok(Some(s));
                }
            }
        }
    }

    /// The ids of up to `max` reports, oldest first.
    pub fn oldest_ids(&self, max: usize) -> Result<Vec<Uuid>, SpoolError> {
        let _g = self.guard();
        Ok(self
            .scan(true)?
            .into_iter()
            .take(max)
            .map(|e| e.id)
            .collect())
    }

    /// One report, checked: `None` if it is gone, or if it could not be
    /// read or parsed (it is then quarantined).
    pub fn load(&self, id: Uuid) -> Result<Option<Spooled>, SpoolError> {
        let _g = self.guard();
        let name = report_name(id);
        let path = self.dir.join(&name);
        let why = match fsio::read_bounded(&path, self.limits.max_bytes) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => format!("unreadable: {err}"),
            Ok(body) => match serde_json::from_slice::<Report>(&body) {
                Err(err) => format!("not a report: {err}"),
                Ok(r) if r.report_id != id => {
                    format!("its report_id is {}, not its file name", r.report_id)
                }
                Ok(_) => return Ok(Some(Spooled { id, body })),
            },
        };
        self.quarantine_locked(&name, &why)?;
        Ok(None)
    }

    /// Deletes a report the server has acknowledged. A report already gone
    /// (dropped meanwhile, or shipped by another process) is not an error.
    pub fn remove(&self, id: Uuid) -> Result<(), SpoolError> {
        let _g = self.guard();
        let path = self.report_path(id);
        match fs::remove_file(&path) {
            Ok(()) => fsio::sync_dir(&self.dir).map_err(io_err(&self.dir)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SpoolError::Io { path, source: e }),
        }
    }

    /// Moves a report the server will never accept to quarantine.
    pub fn quarantine(&self, id: Uuid, why: &str) -> Result<(), SpoolError> {
        let _g = self.guard();
        self.quarantine_locked(&report_name(id), why)
    }

    /// Current counts.
    pub fn stats(&self) -> Result<SpoolStats, SpoolError> {
        let _g = self.guard();
        self.stats_locked()
    }

    /// Counts of the spool at `dir` without changing anything (for
    /// `status`); a missing spool has all counts zero.
    pub fn read_stats(dir: &Path) -> Result<SpoolStats, SpoolError> {
        if !dir.exists() {
            return Ok(SpoolStats::default());
        }
        let view = Spool {
            dir: dir.to_owned(),
            limits: SpoolLimits::default(),
            writer: Box::new(DurableWriter),
            lock: Mutex::new(()),
        };
        let entries = view.scan(false)?;
        Ok(SpoolStats {
            depth: entries.len(),
            bytes: entries.iter().map(|e| e.size).sum(),
            dropped: view.read_counter(DROPPED_FILE)?,
            quarantined: view.read_counter(QUARANTINED_FILE)?,
        })
    }

    fn stats_locked(&self) -> Result<SpoolStats, SpoolError> {
        let entries = self.scan(true)?;
        Ok(SpoolStats {
            depth: entries.len(),
            bytes: entries.iter().map(|e| e.size).sum(),
            dropped: self.read_counter(DROPPED_FILE)?,
            quarantined: self.read_counter(QUARANTINED_FILE)?,
        })
    }

    fn report_path(&self, id: Uuid) -> PathBuf {
        self.dir.join(report_name(id))
    }

    /// Lists the reports, oldest first. With `tidy`, stale temporary files
    /// are removed and stray files quarantined.
    fn scan(&self, tidy: bool) -> Result<Vec<Entry>, SpoolError> {
        let mut entries = Vec::new();
        let rd = fs::read_dir(&self.dir).map_err(io_err(&self.dir))?;
        for item in rd {
            let item = item.map_err(io_err(&self.dir))?;
            let Ok(name) = item.file_name().into_string() else {
                if tidy {
                    let lossy = item.file_name().to_string_lossy().into_owned();
                    self.quarantine_path(&item.path(), &lossy, "file name is not UTF-8")?;
                }
                continue;
            };
            if name == DROPPED_FILE || name == QUARANTINED_FILE || name == QUARANTINE_DIR {
                continue;
            }
            let meta = match item.metadata() {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(SpoolError::Io {
                        path: item.path(),
                        source: e,
                    })
                }
            };
            if name.starts_with('.') && name.ends_with(TEMP_SUFFIX) {
                if tidy && is_stale(&meta) {
                    tracing::info!("removing leftover temporary file {}", item.path().display());
                    match fs::remove_file(item.path()) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(SpoolError::Io {
                                path: item.path(),
                                source: e,
                            })
                        }
                    }
                }
                continue;
            }
            if !meta.is_file() {
                continue;
            }
            match parse_report_name(&name) {
                Some(id) => entries.push(Entry {
                    id,
                    name,
                    size: meta.len(),
                }),
                None if tidy => {
                    self.quarantine_locked(&name, "not a report file name")?;
                }
                None => {}
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    fn quarantine_locked(&self, name: &str, why: &str) -> Result<(), SpoolError> {
        self.quarantine_path(&self.dir.join(name), name, why)
    }

    fn quarantine_path(&self, from: &Path, name: &str, why: &str) -> Result<(), SpoolError> {
        let qdir = self.dir.join(QUARANTINE_DIR);
        fsio::create_private_dir(&qdir).map_err(io_err(&qdir))?;
        let safe: String = name
            .chars()
            .map(|c| if c == '/' || c.is_control() { '_' } else { c })
            .collect();
        let mut to = qdir.join(&safe);
        let mut n = 1u32;
        while to.exists() {
            to = qdir.join(format!("{safe}.{n}"));
            n = n.saturating_add(1);
        }
        match fs::rename(from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(SpoolError::Io {
                    path: from.to_owned(),
                    source: e,
                })
            }
        }
        fsio::sync_dir(&qdir).map_err(io_err(&qdir))?;
        fsio::sync_dir(&self.dir).map_err(io_err(&self.dir))?;
        let count = self.read_counter(QUARANTINED_FILE)?.saturating_add(1);
        self.write_counter(QUARANTINED_FILE, count)?;
        tracing::warn!(
            "quarantined spool file {name} ({why}); now {}",
            to.display()
        );
        self.trim_quarantine(&qdir)
    }

    fn trim_quarantine(&self, qdir: &Path) -> Result<(), SpoolError> {
        let mut names: Vec<String> = fs::read_dir(qdir)
            .map_err(io_err(qdir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        if names.len() <= QUARANTINE_KEEP {
            return Ok(());
        }
        names.sort();
        let excess = names.len() - QUARANTINE_KEEP;
        for n in &names[..excess] {
            let p = qdir.join(n);
            if let Err(e) = fs::remove_file(&p) {
                if e.kind() != io::ErrorKind::NotFound {
                    return Err(SpoolError::Io { path: p, source: e });
                }
            }
        }
        Ok(())
    }

    fn read_counter(&self, name: &str) -> Result<u64, SpoolError> {
        let path = self.dir.join(name);
        match fsio::read_bounded(&path, 64) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                match text.trim().parse::<u64>() {
                    Ok(n) => Ok(n),
                    Err(_) => {
                        tracing::warn!(
                            "spool counter {} is damaged; counting from 0",
                            path.display()
                        );
                        Ok(0)
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                tracing::warn!(
                    "spool counter {} is damaged; counting from 0",
                    path.display()
                );
                Ok(0)
            }
            Err(e) => Err(SpoolError::Io { path, source: e }),
        }
    }

    fn write_counter(&self, name: &str, value: u64) -> Result<(), SpoolError> {
        let path = self.dir.join(name);
        self.writer
            .write_atomic(&path, format!("{value}\n").as_bytes(), 0o600)
            .map_err(io_err(&path))
    }
}

fn report_name(id: Uuid) -> String {
    format!("{}{REPORT_EXT}", id.hyphenated())
}

/// The report id of a canonical report file name.
fn parse_report_name(name: &str) -> Option<Uuid> {
    let stem = name.strip_suffix(REPORT_EXT)?;
    let id = Uuid::parse_str(stem).ok()?;
    (report_name(id) == name).then_some(id)
}

fn is_stale(meta: &fs::Metadata) -> bool {
    match meta.modified() {
        Ok(m) => SystemTime::now()
            .duration_since(m)
            .is_ok_and(|age| age >= TEMP_GRACE),
        Err(_) => true,
    }
}

/// How many of the oldest `entries` must go so that one more report of
/// `size` bytes fits the bound.
fn victims_needed(entries: &[Entry], size: u64, limits: SpoolLimits) -> usize {
    let mut count = entries.len();
    let mut bytes: u64 = entries.iter().map(|e| e.size).sum();
    let mut victims = 0;
    while victims < entries.len()
        && (count + 1 > limits.max_reports || bytes.saturating_add(size) > limits.max_bytes)
    {
        bytes = bytes.saturating_sub(entries[victims].size);
        count -= 1;
        victims += 1;
    }
    victims
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use time::OffsetDateTime;
    use trustwatch_common::report::{AgentInfo, REPORT_SCHEMA};

    fn id_at(ms: u64) -> Uuid {
        uuid::Builder::from_unix_timestamp_millis(ms, &[7; 10]).into_uuid()
    }

    fn report(id: Uuid, padding: usize) -> Report {
        let t = OffsetDateTime::from_unix_timestamp(1_760_000_000).unwrap();
        Report {
            schema: REPORT_SCHEMA.into(),
            report_id: id,
            collected_at: t,
            agent: AgentInfo {
                id: Uuid::nil(),
                hostname: "x".repeat(padding.max(1)),
                version: "0.1.0".into(),
            },
            agent_version: "0.1.0".into(),
            started_at: t,
            finished_at: t,
            collectors: vec!["host".into()],
            assets: vec![],
            findings: vec![],
            errors: vec![],
            spool_dropped: 0,
        }
    }

    fn limits(max_reports: usize, max_bytes: u64) -> SpoolLimits {
        SpoolLimits {
            max_bytes,
            max_reports,
        }
    }

    fn ids_in_order(s: &Spool) -> Vec<Uuid> {
        let mut out = vec![];
        while let Some(r) = s.oldest().unwrap() {
            out.push(r.id);
            s.remove(r.id).unwrap();
        }
        out
    }

    fn make_old(path: &Path) {
        let f = File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000))
            .unwrap();
    }

    #[test]
    fn reports_come_out_oldest_first_whatever_order_they_went_in() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::open(dir.path(), SpoolLimits::default()).unwrap();
        let ids: Vec<Uuid> = [5_000, 1_000, 9_000, 3_000, 1_001]
            .into_iter()
            .map(id_at)
            .collect();
        for id in &ids {
            s.push(&mut report(*id, 10)).unwrap();
        }
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(ids_in_order(&s), expected);
        assert_eq!(s.stats().unwrap().depth, 0);
    }

    #[test]
    fn a_spooled_report_is_the_exact_json_with_its_id_as_name() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::open(dir.path(), SpoolLimits::default()).unwrap();
        let id = id_at(42_000);
        let mut r = report(id, 3);
        s.push(&mut r).unwrap();
        let on_disk = fs::read(dir.path().join(format!("{id}.json"))).unwrap();
        let back: Report = serde_json::from_slice(&on_disk).unwrap();
        assert_eq!(back, r);
        assert_eq!(s.oldest().unwrap().unwrap().body, on_disk);
    }

    #[test]
    fn count_bound_drops_the_oldest_and_counts_them_in_new_reports() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::open(dir.path(), limits(3, 1 << 20)).unwrap();
        for i in 1..=5u64 {
            let mut r = report(id_at(i * 1000), 10);
            s.push(&mut r).unwrap();
            assert_eq!(r.spool_dropped, i.saturating_sub(3), "report {i}");
        }
        let st = s.stats().unwrap();
        assert_eq!(st.depth, 3);
        assert_eq!(st.dropped, 2);
        assert_eq!(
            ids_in_order(&s),
            vec![id_at(3000), id_at(4000), id_at(5000)]
        );
        // The counter persists across a reopen.
        let s2 = Spool::open(dir.path(), limits(3, 1 << 20)).unwrap();
        let mut r = report(id_at(6000), 10);
        s2.push(&mut r).unwrap();
        assert_eq!(r.spool_dropped, 2);
        assert_eq!(
            fs::read_to_string(dir.path().join("dropped")).unwrap(),
            "2\n"
        );
    }

    #[test]
    fn byte_bound_drops_as_many_old_reports_as_needed() {
        let dir = tempfile::tempdir().unwrap();
        let one = serde_json::to_vec(&report(id_at(1000), 1000))
            .unwrap()
            .len() as u64;
        let s = Spool::open(dir.path(), limits(100, one * 3 + 10)).unwrap();
        for i in 1..=3 {
            s.push(&mut report(id_at(i * 1000), 1000)).unwrap();
        }
        assert_eq!(s.stats().unwrap().dropped, 0);
        // A report twice the size needs two of the old ones to go.
        let mut big = report(id_at(9000), 2 * 1000 + 100);
        let out = s.push(&mut big).unwrap();
        assert_eq!(out.dropped_now, 2);
        assert_eq!(big.spool_dropped, 2);
        let st = s.stats().unwrap();
        assert!(st.bytes <= one * 3 + 10, "{st:?}");
        assert_eq!(ids_in_order(&s), vec![id_at(3000), id_at(9000)]);
    }

    #[test]
    fn a_report_larger_than_the_whole_spool_is_refused_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::open(dir.path(), limits(10, 4096)).unwrap();
        s.push(&mut report(id_at(1000), 10)).unwrap();
        let err = s.push(&mut report(id_at(2000), 10_000)).unwrap_err();
        assert!(matches!(err, SpoolError::TooLarge { .. }), "{err}");
        let st = s.stats().unwrap();
        assert_eq!((st.depth, st.dropped), (1, 1));
    }

    #[test]
    fn unparseable_and_misnamed_files_are_quarantined_and_shipping_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::open(dir.path(), SpoolLimits::default()).unwrap();
        let good = id_at(5000);
        s.push(&mut report(good, 5)).unwrap();
        // Older than the good one, so met first: garbage, truncated JSON,
        // a report whose id disagrees with its name.
        fs::write(
            dir.path().join(format!("{}.json", id_at(1000))),
            b"\xff\x00garbage",
        )
        .unwrap();
        let full = serde_json::to_vec(&report(id_at(2000), 5)).unwrap();
        fs::write(
            dir.path().join(format!("{}.json", id_at(2000))),
            &full[..full.len() / 2],
        )
        .unwrap();
        fs::write(
            dir.path().join(format!("{}.json", id_at(3000))),
            serde_json::to_vec(&report(id_at(4000), 5)).unwrap(),
        )
        .unwrap();
        fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
        let first = s.oldest().unwrap().unwrap();
        assert_eq!(first.id, good);
        let st = s.stats().unwrap();
        assert_eq!(st.quarantined, 4);
        assert_eq!(st.depth, 1);
        let q: Vec<_> = fs::read_dir(dir.path().join("quarantine"))
            .unwrap()
            .collect();
        assert_eq!(q.len(), 4);
        // Quarantined files are not retried: the next look finds the same.
        assert_eq!(s.oldest().unwrap().unwrap().id, good);
        assert_eq!(s.stats().unwrap().quarantined, 4);
    }

    #[test]
    fn server_refused_report_is_quarantined_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::open(dir.path(), SpoolLimits::default()).unwrap();
        let id = id_at(1000);
        s.push(&mut report(id, 5)).unwrap();
        s.quarantine(id, "server answered 422").unwrap();
        assert_eq!(s.oldest().unwrap(), None);
        assert!(dir
            .path()
            .join("quarantine")
            .join(format!("{id}.json"))
            .exists());
        assert_eq!(s.stats().unwrap().quarantined, 1);
    }

    #[test]
    fn quarantine_keeps_a_bounded_number_of_files() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::open(dir.path(), SpoolLimits::default()).unwrap();
        for i in 0..(QUARANTINE_KEEP as u64 + 5) {
            fs::write(dir.path().join(format!("{}.json", id_at(1000 + i))), b"x").unwrap();
        }
        assert_eq!(s.oldest().unwrap(), None);
        let n = fs::read_dir(dir.path().join("quarantine")).unwrap().count();
        assert_eq!(n, QUARANTINE_KEEP);
        assert_eq!(s.stats().unwrap().quarantined, QUARANTINE_KEEP as u64 + 5);
    }

    /// Simulates a crash in the middle of writing a report: half the bytes
    /// reach a temporary file, then the "process dies" (an error here).
    struct CrashMidWrite;
    impl AtomicWriter for CrashMidWrite {
        fn write_atomic(&self, path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
            if path.extension().is_some_and(|e| e == "json") {
                let tmp = fsio::temp_path_for(path)?;
                use std::os::unix::fs::OpenOptionsExt;
                let mut f = File::options()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(tmp)?;
                io::Write::write_all(&mut f, &bytes[..bytes.len() / 2])?;
                return Err(io::Error::other("simulated crash"));
            }
            fsio::write_atomic(path, bytes, mode)
        }
    }

    #[test]
    fn crash_mid_write_leaves_no_partial_report_and_the_leftover_is_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::open(dir.path(), SpoolLimits::default()).unwrap();
        s.push(&mut report(id_at(1000), 5)).unwrap();
        drop(s);
        let crashing =
            Spool::with_writer(dir.path(), SpoolLimits::default(), Box::new(CrashMidWrite))
                .unwrap();
        assert!(crashing.push(&mut report(id_at(2000), 5)).is_err());
        drop(crashing);
        let temps: Vec<PathBuf> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert_eq!(temps.len(), 1);
        // A fresh temp file may belong to a writer still at work: kept.
        let s = Spool::open(dir.path(), SpoolLimits::default()).unwrap();
        assert!(temps[0].exists());
        // Once stale it is a crash leftover: removed, never shipped.
        make_old(&temps[0]);
        let s2 = Spool::open(dir.path(), SpoolLimits::default()).unwrap();
        assert!(!temps[0].exists());
        assert_eq!(ids_in_order(&s2), vec![id_at(1000)]);
        assert_eq!(s.stats().unwrap().quarantined, 0);
    }

    /// A disk that refuses every write whose file name is `dropped`.
    struct CounterWriteFails;
    impl AtomicWriter for CounterWriteFails {
        fn write_atomic(&self, path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
            if path.file_name().is_some_and(|n| n == DROPPED_FILE) {
                return Err(io::Error::other("disk full"));
            }
            fsio::write_atomic(path, bytes, mode)
        }
    }

    #[test]
    fn spool_deletes_nothing_when_the_drop_counter_cannot_be_saved() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::with_writer(dir.path(), limits(2, 1 << 20), Box::new(CounterWriteFails))
            .unwrap();
        s.push(&mut report(id_at(1000), 5)).unwrap();
        s.push(&mut report(id_at(2000), 5)).unwrap();
        assert!(s.push(&mut report(id_at(3000), 5)).is_err());
        assert_eq!(ids_in_order(&s), vec![id_at(1000), id_at(2000)]);
    }

    #[test]
    fn read_stats_changes_nothing_and_a_missing_spool_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Spool::read_stats(&dir.path().join("none")).unwrap(),
            SpoolStats::default()
        );
        let s = Spool::open(dir.path(), SpoolLimits::default()).unwrap();
        s.push(&mut report(id_at(1000), 5)).unwrap();
        fs::write(dir.path().join("stray"), b"x").unwrap();
        let st = Spool::read_stats(dir.path()).unwrap();
        assert_eq!((st.depth, st.quarantined), (1, 0));
        assert!(dir.path().join("stray").exists());
    }

    #[test]
    fn removing_a_report_twice_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::open(dir.path(), SpoolLimits::default()).unwrap();
        let id = id_at(1000);
        s.push(&mut report(id, 5)).unwrap();
        s.remove(id).unwrap();
        s.remove(id).unwrap();
        assert_eq!(s.stats().unwrap().depth, 0);
    }

    #[test]
    fn damaged_counter_counts_from_zero_instead_of_failing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::open(dir.path(), limits(1, 1 << 20)).unwrap();
        fs::write(dir.path().join("dropped"), b"lots").unwrap();
        s.push(&mut report(id_at(1000), 5)).unwrap();
        let mut r = report(id_at(2000), 5);
        s.push(&mut r).unwrap();
        assert_eq!(r.spool_dropped, 1);
    }
}
