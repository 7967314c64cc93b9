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
//! transaction, so memory is bounded by the largest record and a batch.
//! The recorded SHA-256 is the file's; for a directory, that of the list of
//! `name NUL sha256 LF` lines of its files in name order.

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
    Dir(std::vec::IntoIter<PathBuf>),
    Zip(Box<zipread::Archive>),
}

impl OsvSource {
    fn open(path: &Path) -> Result<(OsvSource, String), ImportError> {
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| ImportError::io(path, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            for f in &files {
                let name = f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                ctx.update(name.as_bytes());
                ctx.update(b"\0");
                ctx.update(sha256_file(f)?.as_bytes());
                ctx.update(b"\n");
            }
            return Ok((
                OsvSource::Dir(files.into_iter()),
                hex(ctx.finish().as_ref()),
            ));
        }
        let sha = sha256_file(path)?;
        let mut head = [0u8; 4];
        let n = File::open(path)
            .and_then(|mut f| f.read(&mut head))
            .map_err(|e| ImportError::io(path, e))?;
        if n == 4 && (head == *b"PK\x03\x04" || head == *b"PK\x05\x06") {
            let a = zipread::Archive::open(path).map_err(|e| ImportError::bad(path, e))?;
            return Ok((OsvSource::Zip(Box::new(a)), sha));
        }
        Ok((OsvSource::File(Some(path.to_owned())), sha))
    }

    /// The next record: where it came from, and its bytes.
    fn next(&mut self, path: &Path) -> Result<Option<(String, Vec<u8>)>, ImportError> {
        match self {
            OsvSource::File(f) => match f.take() {
                None => Ok(None),
                Some(p) => Ok(Some((String::new(), read_record(&p)?))),
            },
            OsvSource::Dir(files) => match files.next() {
                None => Ok(None),
                Some(p) => {
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    Ok(Some((name, read_record(&p)?)))
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

async fn import_osv(
    conn: &mut SqliteConnection,
    path: &Path,
    rec: &mut ImportRecord,
) -> Result<(), ImportError> {
    let (mut source, sha) = OsvSource::open(path)?;
    rec.sha256 = sha;
    insert_record(conn, path, rec).await?;
    let mut batch: Vec<Advisory> = Vec::with_capacity(OSV_BATCH);
    let (mut out_of_scope, mut not_newer, mut skipped_entries) = (0u64, 0u64, 0u64);
    let mut withdrawn = 0u64;
    let mut unparseable = 0u64;
    let mut examples: Vec<String> = Vec::new();
    let mut newest: Option<i64> = None;
    while let Some((name, bytes)) = source.next(path)? {
        let at = |e: osv::OsvError| {
            if name.is_empty() {
                ImportError::bad(path, e)
            } else {
                ImportError::bad(path, format!("{name}: {e}"))
            }
        };
        rec.records += 1;
        match osv::parse(&bytes).map_err(at)? {
            osv::Parsed::OutOfScope { .. } => out_of_scope += 1,
            osv::Parsed::Record {
                advisory,
                unparseable: bad,
                skipped_entries: s,
            } => {
                skipped_entries += s as u64;
                unparseable += bad.len() as u64;
                for b in bad {
                    if examples.len() < 5 {
                        examples.push(format!("{}: {b}", advisory.id));
                    }
                }
                if advisory.withdrawn.is_some() {
                    withdrawn += 1;
                }
                newest = Some(newest.map_or(advisory.modified, |n| n.max(advisory.modified)));
                batch.push(advisory);
                if batch.len() >= OSV_BATCH {
                    flush(conn, path, &mut batch, rec, &mut not_newer).await?;
                }
            }
        }
    }
    flush(conn, path, &mut batch, rec, &mut not_newer).await?;
    if rec.records == 0 {
        return Err(ImportError::bad(path, "no OSV records found"));
    }
    rec.skipped = out_of_scope + not_newer;
    rec.feed_date = newest;
    rec.summary = json!({
        "out_of_scope": out_of_scope,
        "not_newer": not_newer,
        "withdrawn": withdrawn,
        "skipped_entries": skipped_entries,
        "unparseable_versions": unparseable,
        "unparseable_examples": examples,
    });
    Ok(())
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
