//! `feed import`: tell a file's kind from its content, read it, and write
//! it to the store in one transaction together with its `feed_imports` row.
//! A file that fails anywhere (unreadable, corrupt, hostile, a database
//! error) changes nothing: the transaction is dropped.
//!
//! Kinds, told from content (`--kind` forces one):
//! * a directory, or a file starting `PK\x03\x04`/`PK\x05\x06` (ZIP) → OSV;
//! * gzip → EPSS (FIRST publishes `epss_scores-YYYY-MM-DD.csv.gz`);
//! * `---` (front matter) → end-of-life, endoflife.date product file;
//! * `#model_version…` or `cve,epss,percentile` → EPSS;
//! * a JSON object with `"schema": "trustwatch.eol/v1"` → end-of-life; with
//!   `vulnerabilities` → KEV; with `id` → one OSV record; with a `$schema`
//!   of json-schema.org → a JSON Schema (vendors ship one beside their
//!   feed), which is reported and skipped, not imported.
//!
//! OSV input is streamed: a ZIP is read entry by entry ([`super::zipread`]),
//! a directory file by file (its `*.json` files, not its subdirectories, in
//! name order), each record parsed alone (at most
//! [`osv::MAX_RECORD_BYTES`]) and written in batches inside the one
//! transaction. Reading, inflating and parsing run on a blocking thread
//! that hands parsed records to the writer through a bounded channel, so
//! they overlap with the database writes; memory is bounded by the largest
//! record, the pieces in flight and a batch.
//! The recorded SHA-256 is the file's; for a directory, that of the list of
//! `name NUL sha256 LF` lines of its files in name order (each file is read
//! once, for its record and its digest).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::json;
use sqlx::SqliteConnection;
use uuid::Uuid;

use super::{eol, epss, kev, osv, zipread, Advisory, FeedKind};
use crate::clock::to_ms;
use crate::store::feeds::{self, ImportRecord};
use crate::store::{Store, StoreError};

/// Largest single JSON file (KEV catalogue, EOL document) read whole.
pub const MAX_JSON_FILE: u64 = 256 * 1024 * 1024;
/// Largest endoflife.date product file.
pub const MAX_EOL_FILE: u64 = 16 * 1024 * 1024;
/// Advisories written per batch.
const OSV_BATCH: usize = 500;
/// EPSS rows written per batch.
const EPSS_BATCH: usize = 2000;

/// Why a file was not imported. Its `Display` names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    #[error("{path}: {what}")]
    Bad { path: PathBuf, what: String },
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Store { path: PathBuf, source: StoreError },
}

impl ImportError {
    fn bad(path: &Path, what: impl std::fmt::Display) -> Self {
        ImportError::Bad {
            path: path.to_owned(),
            what: what.to_string(),
        }
    }
    fn io(path: &Path, source: std::io::Error) -> Self {
        ImportError::Io {
            path: path.to_owned(),
            source,
        }
    }
    fn store(path: &Path, e: impl Into<StoreError>) -> Self {
        ImportError::Store {
            path: path.to_owned(),
            source: e.into(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a file, streamed.
fn sha256_file(path: &Path) -> Result<String, ImportError> {
    let mut f = File::open(path).map_err(|e| ImportError::io(path, e))?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(|e| ImportError::io(path, e))?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(hex(ctx.finish().as_ref()))
}

/// Reads a whole file, refusing one over `max` bytes.
fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, ImportError> {
    let f = File::open(path).map_err(|e| ImportError::io(path, e))?;
    let mut out = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| ImportError::io(path, e))?;
    if out.len() as u64 > max {
        return Err(ImportError::bad(
            path,
            format!("the file is larger than {max} bytes"),
        ));
    }
    Ok(out)
}

#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "$schema")]
    json_schema: Option<String>,
    schema: Option<IgnoredAny>,
    vulnerabilities: Option<IgnoredAny>,
    id: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct SchemaProbe {
    schema: Option<String>,
}

/// Tells a file's kind from its content; `None` for a JSON Schema (the
/// vendors ship the schema of their feed beside it: it is not feed data).
pub fn detect(path: &Path) -> Result<Option<FeedKind>, ImportError> {
    let meta = std::fs::metadata(path).map_err(|e| ImportError::io(path, e))?;
    if meta.is_dir() {
        return Ok(Some(FeedKind::Osv));
    }
    let mut head = Vec::new();
    File::open(path)
        .map_err(|e| ImportError::io(path, e))?
        .take(4096)
        .read_to_end(&mut head)
        .map_err(|e| ImportError::io(path, e))?;
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Ok(Some(FeedKind::Osv));
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(Some(FeedKind::Epss));
    }
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(text.len());
    let text = &text[start..];
    if text.starts_with(b"---") {
        return Ok(Some(FeedKind::Eol));
    }
    if text.starts_with(b"#model_version") || text.starts_with(b"cve,epss") {
        return Ok(Some(FeedKind::Epss));
    }
    if text.starts_with(b"{") {
        let bytes = read_capped(path, MAX_JSON_FILE)?;
        depth_ok(path, &bytes)?;
        let probe: Probe = serde_json::from_slice(&bytes)
            .map_err(|e| ImportError::bad(path, format!("not valid JSON: {e}")))?;
        if probe
            .json_schema
            .as_deref()
            .is_some_and(|s| s.contains("json-schema.org"))
        {
            return Ok(None);
        }
        if probe.schema.is_some() {
            let s: SchemaProbe = serde_json::from_slice(&bytes)
                .map_err(|e| ImportError::bad(path, format!("not valid JSON: {e}")))?;
            if s.schema.as_deref() == Some(eol::SCHEMA) {
                return Ok(Some(FeedKind::Eol));
            }
        }
        if probe.vulnerabilities.is_some() {
            return Ok(Some(FeedKind::Kev));
        }
        if probe.id.is_some() {
            return Ok(Some(FeedKind::Osv));
        }
        return Err(ImportError::bad(
            path,
            "a JSON document that is neither an OSV record, a KEV catalogue nor a trustwatch.eol/v1 document",
        ));
    }
    Err(ImportError::bad(
        path,
        "cannot tell what kind of feed this is (expected an OSV zip, directory or JSON record, a KEV JSON catalogue, an EPSS CSV, or an end-of-life file); use --kind to say",
    ))
}

/// Imports one file (or OSV directory) atomically and returns its record;
/// `None` when the file is a JSON Schema, skipped (unless `kind` is forced).
pub async fn import_path(
    store: &Store,
    path: &Path,
    kind: Option<FeedKind>,
    now: time::OffsetDateTime,
) -> Result<Option<ImportRecord>, ImportError> {
    let kind = match kind {
        Some(k) => k,
        None => match detect(path)? {
            Some(k) => k,
            None => return Ok(None),
        },
    };
    let mut rec = ImportRecord {
        id: Uuid::now_v7().to_string(),
        kind,
        source: path.display().to_string(),
        sha256: String::new(),
        records: 0,
        stored: 0,
        skipped: 0,
        feed_date: None,
        imported_at: to_ms(now),
        summary: json!({}),
    };
    let mut tx = store
        .pool()
        .begin()
        .await
        .map_err(|e| ImportError::store(path, e))?;
    match kind {
        FeedKind::Osv => import_osv(&mut tx, path, &mut rec).await?,
        FeedKind::Kev => import_kev(&mut tx, path, &mut rec).await?,
        FeedKind::Epss => import_epss(&mut tx, path, &mut rec).await?,
        FeedKind::Eol => import_eol(&mut tx, path, &mut rec).await?,
    }
    sqlx::query(
        "UPDATE feed_imports SET sha256 = $1, records = $2, stored = $3, skipped = $4, \
         feed_date = $5, summary = $6 WHERE id = $7",
    )
    .bind(&rec.sha256)
    .bind(i64::try_from(rec.records).unwrap_or(i64::MAX))
    .bind(i64::try_from(rec.stored).unwrap_or(i64::MAX))
    .bind(i64::try_from(rec.skipped).unwrap_or(i64::MAX))
    .bind(rec.feed_date)
    .bind(rec.summary.to_string())
    .bind(&rec.id)
    .execute(&mut *tx)
    .await
    .map_err(|e| ImportError::store(path, e))?;
    tx.commit().await.map_err(|e| ImportError::store(path, e))?;
    Ok(Some(rec))
}

/// The source of OSV records: one file, a directory, or a ZIP archive.
enum OsvSource {
    File(Option<PathBuf>),
    /// The files still to read, and the digest of those read so far
    /// (`name NUL sha256 LF` lines, in name order).
    Dir(std::vec::IntoIter<PathBuf>, Box<ring::digest::Context>),
    Zip(Box<zipread::Archive>),
}

impl OsvSource {
    /// Opens `path`; for a file or archive also returns its SHA-256 (a
    /// directory's comes from [`OsvSource::dir_sha256`] once it is read).
    fn open(path: &Path) -> Result<(OsvSource, Option<String>), ImportError> {
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| ImportError::io(path, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            let ctx = ring::digest::Context::new(&ring::digest::SHA256);
            return Ok((OsvSource::Dir(files.into_iter(), Box::new(ctx)), None));
        }
        let sha = sha256_file(path)?;
        let mut head = [0u8; 4];
        let n = File::open(path)
            .and_then(|mut f| f.read(&mut head))
            .map_err(|e| ImportError::io(path, e))?;
        if n == 4 && (head == *b"PK\x03\x04" || head == *b"PK\x05\x06") {
            let a = zipread::Archive::open(path).map_err(|e| ImportError::bad(path, e))?;
            return Ok((OsvSource::Zip(Box::new(a)), Some(sha)));
        }
        Ok((OsvSource::File(Some(path.to_owned())), Some(sha)))
    }

    /// The next record: where it came from, and its bytes. Each file of a
    /// directory is read once, for its record and for the digest.
    fn next(&mut self, path: &Path) -> Result<Option<(String, Vec<u8>)>, ImportError> {
        match self {
            OsvSource::File(f) => match f.take() {
                None => Ok(None),
                Some(p) => Ok(Some((String::new(), read_record(&p)?))),
            },
            OsvSource::Dir(files, ctx) => match files.next() {
                None => Ok(None),
                Some(p) => {
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let bytes = read_record(&p)?;
                    ctx.update(name.as_bytes());
                    ctx.update(b"\0");
                    ctx.update(
                        hex(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref())
                            .as_bytes(),
                    );
                    ctx.update(b"\n");
                    Ok(Some((name, bytes)))
                }
            },
            OsvSource::Zip(a) => loop {
                let Some(e) = a.next_entry().map_err(|e| ImportError::bad(path, e))? else {
                    return Ok(None);
                };
                if e.is_dir() || !e.name.ends_with(".json") {
                    continue;
                }
                let bytes = a
                    .read(&e, osv::MAX_RECORD_BYTES)
                    .map_err(|err| ImportError::bad(path, err))?;
                return Ok(Some((e.name, bytes)));
            },
        }
    }

    /// A directory's digest, once every file was read.
    fn dir_sha256(self) -> Option<String> {
        match self {
            OsvSource::Dir(_, ctx) => Some(hex(ctx.finish().as_ref())),
            _ => None,
        }
    }
}

/// What the reading thread of an OSV import hands to the writer.
enum Piece {
    /// Parsed records, in source order.
    Records(Vec<osv::Parsed>),
    /// Everything was read; the SHA-256 of the source.
    Done { sha256: String },
}

/// Records per [`Piece::Records`].
const PIECE_RECORDS: usize = 100;
/// Pieces in flight between the reader and the writer: with the writer's
/// batch, memory holds at most this many pieces of records at a time.
const PIECES_IN_FLIGHT: usize = 4;

/// The reading half of an OSV import (a blocking thread): opens the
/// source, reads and parses each record and sends them on in pieces, so
/// that reading, inflating and parsing overlap with the database writes.
/// Stops at the first error (sent on) or when the writer hangs up.
fn read_osv(path: &Path, tx: &tokio::sync::mpsc::Sender<Result<Piece, ImportError>>) {
    let fail = |e: ImportError| {
        // The writer may be gone already; then nobody needs the error.
        let _ = tx.blocking_send(Err(e));
    };
    let (mut source, sha) = match OsvSource::open(path) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let mut piece = Vec::with_capacity(PIECE_RECORDS);
    loop {
        let (name, bytes) = match source.next(path) {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => return fail(e),
        };
        match osv::parse(&bytes) {
            Ok(p) => piece.push(p),
            Err(e) if name.is_empty() => return fail(ImportError::bad(path, e)),
            Err(e) => return fail(ImportError::bad(path, format!("{name}: {e}"))),
        }
        if piece.len() >= PIECE_RECORDS {
            let full = std::mem::replace(&mut piece, Vec::with_capacity(PIECE_RECORDS));
            if tx.blocking_send(Ok(Piece::Records(full))).is_err() {
                return;
            }
        }
    }
    if !piece.is_empty() && tx.blocking_send(Ok(Piece::Records(piece))).is_err() {
        return;
    }
    let sha256 = match sha.or_else(|| source.dir_sha256()) {
        Some(s) => s,
        None => return fail(ImportError::bad(path, "no digest of the source")),
    };
    let _ = tx.blocking_send(Ok(Piece::Done { sha256 }));
}

fn depth_ok(path: &Path, bytes: &[u8]) -> Result<(), ImportError> {
    super::check_json_depth(bytes, super::MAX_JSON_DEPTH).map_err(|at| {
        ImportError::bad(
            path,
            format!(
                "JSON nested deeper than {} levels (at byte {at})",
                super::MAX_JSON_DEPTH
            ),
        )
    })
}

fn read_record(p: &Path) -> Result<Vec<u8>, ImportError> {
    let size = std::fs::metadata(p)
        .map_err(|e| ImportError::io(p, e))?
        .len();
    if size > osv::MAX_RECORD_BYTES {
        return Err(ImportError::bad(
            p,
            osv::OsvError::TooLarge {
                size,
                max: osv::MAX_RECORD_BYTES,
            },
        ));
    }
    read_capped(p, osv::MAX_RECORD_BYTES)
}

async fn flush(
    conn: &mut SqliteConnection,
    path: &Path,
    batch: &mut Vec<Advisory>,
    rec: &mut ImportRecord,
    not_newer: &mut u64,
) -> Result<(), ImportError> {
    let (written, unchanged) = feeds::upsert_advisories(conn, batch, &rec.id)
        .await
        .map_err(|e| ImportError::store(path, e))?;
    rec.stored += written;
    *not_newer += unchanged;
    batch.clear();
    Ok(())
}

async fn insert_record(
    conn: &mut SqliteConnection,
    path: &Path,
    rec: &ImportRecord,
) -> Result<(), ImportError> {
    feeds::insert_import(conn, rec)
        .await
        .map_err(|e| ImportError::store(path, e))
}

/// Counts of an OSV import, for its summary.
#[derive(Default)]
struct OsvCounts {
    out_of_scope: u64,
    not_newer: u64,
    skipped_entries: u64,
    withdrawn: u64,
    unparseable: u64,
    examples: Vec<String>,
    newest: Option<i64>,
}

async fn import_osv(
    conn: &mut SqliteConnection,
    path: &Path,
    rec: &mut ImportRecord,
) -> Result<(), ImportError> {
    insert_record(conn, path, rec).await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(PIECES_IN_FLIGHT);
    let source = path.to_owned();
    let reader = tokio::task::spawn_blocking(move || read_osv(&source, &tx));
    let written = write_osv(conn, path, rec, &mut rx).await;
    // On an error the reader stops at its next send.
    drop(rx);
    let joined = reader.await;
    let counts = written?;
    joined.map_err(|e| ImportError::bad(path, format!("the reading thread failed: {e}")))?;
    if rec.records == 0 {
        return Err(ImportError::bad(path, "no OSV records found"));
    }
    rec.skipped = counts.out_of_scope + counts.not_newer;
    rec.feed_date = counts.newest;
    rec.summary = json!({
        "out_of_scope": counts.out_of_scope,
        "not_newer": counts.not_newer,
        "withdrawn": counts.withdrawn,
        "skipped_entries": counts.skipped_entries,
        "unparseable_versions": counts.unparseable,
        "unparseable_examples": counts.examples,
    });
    Ok(())
}

/// The writing half of an OSV import: stores what the reader sends, in
/// batches, until it says it is done.
async fn write_osv(
    conn: &mut SqliteConnection,
    path: &Path,
    rec: &mut ImportRecord,
    rx: &mut tokio::sync::mpsc::Receiver<Result<Piece, ImportError>>,
) -> Result<OsvCounts, ImportError> {
    let mut c = OsvCounts::default();
    let mut batch: Vec<Advisory> = Vec::with_capacity(OSV_BATCH);
    loop {
        let piece = match rx.recv().await {
            Some(p) => p?,
            None => return Err(ImportError::bad(path, "the reading thread stopped early")),
        };
        let records = match piece {
            Piece::Records(r) => r,
            Piece::Done { sha256 } => {
                rec.sha256 = sha256;
                break;
            }
        };
        for parsed in records {
            rec.records += 1;
            match parsed {
                osv::Parsed::OutOfScope { .. } => c.out_of_scope += 1,
                osv::Parsed::Record {
                    advisory,
                    unparseable: bad,
                    skipped_entries: s,
                } => {
                    c.skipped_entries += s as u64;
                    c.unparseable += bad.len() as u64;
                    for b in bad {
                        if c.examples.len() < 5 {
                            c.examples.push(format!("{}: {b}", advisory.id));
                        }
                    }
                    if advisory.withdrawn.is_some() {
                        c.withdrawn += 1;
                    }
                    c.newest = Some(
                        c.newest
                            .map_or(advisory.modified, |n| n.max(advisory.modified)),
                    );
                    batch.push(advisory);
                    if batch.len() >= OSV_BATCH {
                        flush(conn, path, &mut batch, rec, &mut c.not_newer).await?;
                    }
                }
            }
        }
    }
    flush(conn, path, &mut batch, rec, &mut c.not_newer).await?;
    Ok(c)
}

async fn import_kev(
    conn: &mut SqliteConnection,
    path: &Path,
    rec: &mut ImportRecord,
) -> Result<(), ImportError> {
    let bytes = read_capped(path, MAX_JSON_FILE)?;
    rec.sha256 = hex(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref());
    depth_ok(path, &bytes)?;
    let cat = kev::parse(&bytes).map_err(|e| ImportError::bad(path, e))?;
    insert_record(conn, path, rec).await?;
    feeds::replace_kev(conn, &cat.entries)
        .await
        .map_err(|e| ImportError::store(path, e))?;
    rec.records = cat.entries.len() as u64;
    rec.stored = rec.records;
    rec.feed_date = cat.released;
    rec.summary = json!({"catalog_version": cat.version});
    Ok(())
}

async fn import_epss(
    conn: &mut SqliteConnection,
    path: &Path,
    rec: &mut ImportRecord,
) -> Result<(), ImportError> {
    rec.sha256 = sha256_file(path)?;
    let f = File::open(path).map_err(|e| ImportError::io(path, e))?;
    let mut buffered = BufReader::new(f);
    let gz = buffered
        .fill_buf()
        .map_err(|e| ImportError::io(path, e))?
        .starts_with(&[0x1f, 0x8b]);
    let input: Box<dyn BufRead> = if gz {
        Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(
            buffered,
        )))
    } else {
        Box::new(buffered)
    };
    let (mut reader, header) = epss::Reader::new(input).map_err(|e| ImportError::bad(path, e))?;
    insert_record(conn, path, rec).await?;
    feeds::clear_epss(conn)
        .await
        .map_err(|e| ImportError::store(path, e))?;
    let mut batch = Vec::with_capacity(EPSS_BATCH);
    loop {
        let next = reader.next_score().map_err(|e| ImportError::bad(path, e))?;
        let done = next.is_none();
        if let Some(s) = next {
            batch.push(s);
            rec.records += 1;
        }
        if batch.len() >= EPSS_BATCH || (done && !batch.is_empty()) {
            feeds::insert_epss(conn, &batch)
                .await
                .map_err(|e| ImportError::store(path, e))?;
            batch.clear();
        }
        if done {
            break;
        }
    }
    if rec.records == 0 {
        return Err(ImportError::bad(path, "no EPSS rows"));
    }
    rec.stored = rec.records;
    rec.feed_date = header.score_date;
    rec.summary = json!({"model_version": header.model_version, "gzip": gz});
    Ok(())
}

async fn import_eol(
    conn: &mut SqliteConnection,
    path: &Path,
    rec: &mut ImportRecord,
) -> Result<(), ImportError> {
    let bytes = read_capped(path, MAX_JSON_FILE)?;
    rec.sha256 = hex(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref());
    let text = std::str::from_utf8(&bytes).map_err(|_| ImportError::bad(path, "not UTF-8 text"))?;
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let (releases, format, date) = if trimmed.starts_with('{') {
        depth_ok(path, trimmed.as_bytes())?;
        let doc = eol::parse_own(trimmed.as_bytes()).map_err(|e| ImportError::bad(path, e))?;
        let date = doc.snapshot_date.map(|d| to_ms(d.midnight().assume_utc()));
        (doc.entries, "trustwatch.eol/v1", date)
    } else {
        if bytes.len() as u64 > MAX_EOL_FILE {
            return Err(ImportError::bad(
                path,
                format!("larger than {MAX_EOL_FILE} bytes"),
            ));
        }
        let r = eol::parse_endoflife(trimmed).map_err(|e| ImportError::bad(path, e))?;
        (r, "endoflife.date", None)
    };
    if releases.is_empty() {
        return Err(ImportError::bad(path, "no releases"));
    }
    insert_record(conn, path, rec).await?;
    feeds::replace_eol(conn, &releases, &rec.id)
        .await
        .map_err(|e| ImportError::store(path, e))?;
    let oses: std::collections::BTreeSet<&str> = releases.iter().map(|r| r.os.as_str()).collect();
    rec.records = releases.len() as u64;
    rec.stored = rec.records;
    rec.feed_date = date;
    rec.summary = json!({"format": format, "systems": oses});
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::parse_rfc3339;

    fn osv_record(id: &str) -> String {
        format!(
            r#"{{"id":"{id}","modified":"2025-01-01T00:00:00Z","affected":[
               {{"package":{{"ecosystem":"Debian:12","name":"zlib"}},
                 "ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}},{{"fixed":"1:1.2.13-1"}}]}}]}}]}}"#
        )
    }

    fn now() -> time::OffsetDateTime {
        parse_rfc3339("2026-03-01T00:00:00Z").unwrap()
    }

    #[tokio::test]
    async fn a_directory_digest_covers_each_file_name_and_content_in_name_order() {
        let data = tempfile::tempdir().unwrap();
        let feed = tempfile::tempdir().unwrap();
        let files = [("b.json", osv_record("B-1")), ("a.json", osv_record("A-1"))];
        for (name, text) in &files {
            std::fs::write(feed.path().join(name), text).unwrap();
        }
        let store = Store::open_in(data.path()).await.unwrap();
        let rec = import_path(&store, feed.path(), None, now())
            .await
            .unwrap()
            .unwrap();
        store.close().await;
        let mut lines = String::new();
        for (name, text) in [&files[1], &files[0]] {
            let sha = hex(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref());
            lines.push_str(&format!("{name}\0{sha}\n"));
        }
        let want = hex(ring::digest::digest(&ring::digest::SHA256, lines.as_bytes()).as_ref());
        assert_eq!(rec.sha256, want);
        assert_eq!((rec.records, rec.stored), (2, 2));
    }

    #[tokio::test]
    async fn a_bad_record_after_batches_were_written_rolls_the_whole_import_back() {
        // More records than several reader pieces and a writer batch hold,
        // so rows were written before the reader meets the bad one.
        let data = tempfile::tempdir().unwrap();
        let feed = tempfile::tempdir().unwrap();
        let good = OSV_BATCH + 3 * PIECE_RECORDS;
        for i in 0..good {
            let id = format!("T-{i:05}");
            std::fs::write(feed.path().join(format!("{id}.json")), osv_record(&id)).unwrap();
        }
        std::fs::write(feed.path().join("zz-bad.json"), b"{\"id\": 7}").unwrap();
        let store = Store::open_in(data.path()).await.unwrap();
        let err = import_path(&store, feed.path(), None, now())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("zz-bad.json"), "{err}");
        let counts = store.feed_counts().await.unwrap();
        assert_eq!(counts["osv_advisories"], 0);
        assert_eq!(counts["osv_affected"], 0);
        assert_eq!(counts["feed_imports"], 0);
        store.close().await;
    }
}
