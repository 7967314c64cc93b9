//! The feed tables (`server/migrations/0002_feeds.sql`): writing imports
//! (always inside the caller's transaction, so an import is atomic), listing
//! them, and loading what the matcher needs for given hosts with index
//! lookups per (ecosystem, package) — never a scan of all advisories.
//!
//! Invariants: `osv_affected` rows exist only with their advisory (cascade
//! on replace); a stored advisory is replaced only by a strictly newer
//! `modified`; `kev` and `epss` hold exactly the last imported catalogue;
//! `eol_releases` holds, per OS, exactly the releases of its last import.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use serde_json::Value;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use trustwatch_common::host::HostAsset;

use super::feedcache::{FeedCache, Generation};
use super::{Store, StoreError};
use crate::vuln::eol::{self, EolDocument, EolError, EolRelease, ExtendedKind};
use crate::vuln::epss::Score;
use crate::vuln::kev::{parse_date, KevEntry};
use crate::vuln::matcher::{
    self, Cve, EntryList, EpssInfo, FeedAge, FeedData, KevInfo, StoredAffected,
};
use crate::vuln::{Advisory, Event, FeedKind, Policy};

/// Rows per multi-row statement (well under SQLite's parameter limit).
const BATCH: usize = 200;
/// Names per `IN (…)` list.
const IN_CHUNK: usize = 400;
/// The settings key of the matching policy.
const POLICY_KEY: &str = "match_policy";

/// One import, as recorded in `feed_imports`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRecord {
    pub id: String,
    pub kind: FeedKind,
    pub source: String,
    pub sha256: String,
    pub records: u64,
    pub stored: u64,
    pub skipped: u64,
    pub feed_date: Option<i64>,
    pub imported_at: i64,
    pub summary: Value,
}

fn i(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Records an import (in the import's transaction).
pub async fn insert_import(
    conn: &mut SqliteConnection,
    r: &ImportRecord,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO feed_imports (id, kind, source, sha256, records, stored, skipped, \
         feed_date, imported_at, summary) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&r.id)
    .bind(r.kind.as_str())
    .bind(&r.source)
    .bind(&r.sha256)
    .bind(i(r.records))
    .bind(i(r.stored))
    .bind(i(r.skipped))
    .bind(r.feed_date)
    .bind(r.imported_at)
    .bind(r.summary.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes a batch of advisories, newer `modified` wins; returns how many
/// were written and how many were not newer than the stored copy.
pub async fn upsert_advisories(
    conn: &mut SqliteConnection,
    batch: &[Advisory],
    import_id: &str,
) -> Result<(u64, u64), StoreError> {
    if batch.is_empty() {
        return Ok((0, 0));
    }
    // Within the batch, the newest copy of an id.
    let mut newest: BTreeMap<&str, &Advisory> = BTreeMap::new();
    for a in batch {
        match newest.get(a.id.as_str()) {
            Some(cur) if cur.modified >= a.modified => {}
            _ => {
                newest.insert(a.id.as_str(), a);
            }
        }
    }
    let mut stored: HashMap<String, i64> = HashMap::new();
    let ids: Vec<&str> = newest.keys().copied().collect();
    for chunk in ids.chunks(IN_CHUNK) {
        let mut q =
            QueryBuilder::<Sqlite>::new("SELECT id, modified FROM osv_advisories WHERE id IN (");
        let mut sep = q.separated(", ");
        for id in chunk {
            sep.push_bind(*id);
        }
        q.push(")");
        for row in q.build().fetch_all(&mut *conn).await? {
            stored.insert(row.try_get("id")?, row.try_get("modified")?);
        }
    }
    let write: Vec<&Advisory> = newest
        .values()
        .copied()
        .filter(|a| stored.get(&a.id).is_none_or(|m| *m < a.modified))
        .collect();
    let unchanged = (batch.len() - write.len()) as u64;
    let replaced: Vec<&str> = write
        .iter()
        .filter(|a| stored.contains_key(&a.id))
        .map(|a| a.id.as_str())
        .collect();
    for chunk in replaced.chunks(IN_CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new("DELETE FROM osv_affected WHERE advisory_id IN (");
        let mut sep = q.separated(", ");
        for id in chunk {
            sep.push_bind(*id);
        }
        q.push(")");
        q.build().execute(&mut *conn).await?;
    }
    let cves: Vec<String> = write
        .iter()
        .map(|a| serde_json::to_string(&a.cves).unwrap_or_else(|_| "[]".into()))
        .collect();
    for (chunk, cves) in write.chunks(BATCH).zip(cves.chunks(BATCH)) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO osv_advisories (id, modified, published, withdrawn, summary, cves, import_id) ",
        );
        q.push_values(chunk.iter().zip(cves), |mut b, (a, c)| {
            b.push_bind(a.id.as_str())
                .push_bind(a.modified)
                .push_bind(a.published)
                .push_bind(a.withdrawn)
                .push_bind(a.summary.as_str())
                .push_bind(c.as_str())
                .push_bind(import_id);
        });
        q.push(
            " ON CONFLICT (id) DO UPDATE SET modified = excluded.modified, \
             published = excluded.published, withdrawn = excluded.withdrawn, \
             summary = excluded.summary, cves = excluded.cves, import_id = excluded.import_id",
        );
        q.build().execute(&mut *conn).await?;
    }
    struct AffRow<'a> {
        id: &'a str,
        seq: i64,
        eco: &'a str,
        raw: &'a str,
        pkg: &'a str,
        ranges: String,
        versions: String,
    }
    let mut rows: Vec<AffRow<'_>> = Vec::new();
    for a in &write {
        for (seq, p) in a.affected.iter().enumerate() {
            rows.push(AffRow {
                id: &a.id,
                seq: seq as i64,
                eco: &p.ecosystem,
                raw: &p.ecosystem_raw,
                pkg: &p.package,
                ranges: serde_json::to_string(&p.ranges).unwrap_or_else(|_| "[]".into()),
                versions: serde_json::to_string(&p.versions).unwrap_or_else(|_| "[]".into()),
            });
        }
    }
    for chunk in rows.chunks(BATCH) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO osv_affected (advisory_id, seq, ecosystem, ecosystem_raw, package, ranges, versions) ",
        );
        q.push_values(chunk, |mut b, r| {
            b.push_bind(r.id)
                .push_bind(r.seq)
                .push_bind(r.eco)
                .push_bind(r.raw)
                .push_bind(r.pkg)
                .push_bind(r.ranges.as_str())
                .push_bind(r.versions.as_str());
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok((write.len() as u64, unchanged))
}

/// Replaces the KEV catalogue.
pub async fn replace_kev(
    conn: &mut SqliteConnection,
    entries: &[KevEntry],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM kev").execute(&mut *conn).await?;
    // Duplicated ids in a catalogue: the last one wins.
    let mut by_cve: BTreeMap<&str, &KevEntry> = BTreeMap::new();
    for e in entries {
        by_cve.insert(&e.cve, e);
    }
    let list: Vec<&KevEntry> = by_cve.into_values().collect();
    for chunk in list.chunks(BATCH) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO kev (cve, date_added, due_date, ransomware, vendor, product, name) ",
        );
        q.push_values(chunk, |mut b, e| {
            b.push_bind(e.cve.as_str())
                .push_bind(e.date_added.as_str())
                .push_bind(e.due_date.as_deref())
                .push_bind(e.ransomware.as_str())
                .push_bind(e.vendor.as_str())
                .push_bind(e.product.as_str())
                .push_bind(e.name.as_str());
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Empties the EPSS table (the start of an EPSS import).
pub async fn clear_epss(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM epss").execute(conn).await?;
    Ok(())
}

/// Writes a batch of EPSS scores (a repeated CVE: the last wins).
pub async fn insert_epss(conn: &mut SqliteConnection, batch: &[Score]) -> Result<(), sqlx::Error> {
    for chunk in batch.chunks(BATCH) {
        let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO epss (cve, score, percentile) ");
        q.push_values(chunk, |mut b, s| {
            b.push_bind(s.cve.as_str())
                .push_bind(s.epss)
                .push_bind(s.percentile);
        });
        q.push(" ON CONFLICT (cve) DO UPDATE SET score = excluded.score, percentile = excluded.percentile");
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Replaces every release of the systems in `releases`.
pub async fn replace_eol(
    conn: &mut SqliteConnection,
    releases: &[EolRelease],
    import_id: &str,
) -> Result<(), sqlx::Error> {
    let oses: BTreeSet<&str> = releases.iter().map(|r| r.os.as_str()).collect();
    for os in oses {
        sqlx::query("DELETE FROM eol_releases WHERE os = $1")
            .bind(os)
            .execute(&mut *conn)
            .await?;
    }
    for r in releases {
        sqlx::query(
            "INSERT INTO eol_releases (os, release, label, release_date, standard_end, \
             extended_end, extended_kind, sources, import_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (os, release) DO UPDATE SET label = excluded.label, \
             release_date = excluded.release_date, standard_end = excluded.standard_end, \
             extended_end = excluded.extended_end, extended_kind = excluded.extended_kind, \
             sources = excluded.sources, import_id = excluded.import_id",
        )
        .bind(&r.os)
        .bind(&r.release)
        .bind(&r.label)
        .bind(r.release_date.map(eol::fmt_date))
        .bind(r.standard_end.map(eol::fmt_date))
        .bind(r.extended_end.map(eol::fmt_date))
        .bind(r.extended_kind.map(|k| k.as_str()))
        .bind(serde_json::to_string(&r.sources).unwrap_or_else(|_| "[]".into()))
        .bind(import_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The shipped end-of-life snapshot, parsed once.
pub fn shipped_eol() -> Result<&'static EolDocument, StoreError> {
    static SHIPPED: OnceLock<Result<EolDocument, EolError>> = OnceLock::new();
    SHIPPED
        .get_or_init(eol::shipped)
        .as_ref()
        .map_err(|e| StoreError::Corrupt(format!("the built-in end-of-life snapshot: {e}")))
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// The (ecosystem, package) keys whose advisories `hosts` need, by ecosystem.
pub type Keys = BTreeMap<String, BTreeSet<String>>;

fn lookup_keys(hosts: &[&HostAsset], policy: &Policy) -> Keys {
    /// Adds one ecosystem's names (sorted, distinct): a bulk build when
    /// the set is new (the usual single host), else inserts.
    fn flush(by_eco: &mut Keys, eco: String, names: Vec<String>) {
        let set = by_eco.entry(eco).or_default();
        if set.is_empty() {
            *set = names.into_iter().collect();
        } else {
            set.extend(names);
        }
    }
    let mut by_eco = Keys::new();
    for h in hosts {
        let mut current: Option<(String, Vec<String>)> = None;
        matcher::add_lookups(h, policy, |eco, name| match &mut current {
            Some((e, names)) if e == eco => names.push(name.to_owned()),
            _ => {
                if let Some((e, names)) = current.take() {
                    flush(&mut by_eco, e, names);
                }
                current = Some((eco.to_owned(), vec![name.to_owned()]));
            }
        });
        if let Some((e, names)) = current {
            flush(&mut by_eco, e, names);
        }
    }
    by_eco
}

/// Loads what the matcher needs for `hosts`, every advisory entry read
/// from the database.
pub async fn load_feed_data(
    conn: &mut SqliteConnection,
    hosts: &[&HostAsset],
    policy: &Policy,
) -> Result<FeedData, StoreError> {
    let lists = load_entries(conn, &lookup_keys(hosts, policy)).await?;
    complete(conn, hosts, lists, None).await
}

/// [`load_feed_data`], taking the entry lists it can from `cache` and
/// keeping there those it reads (see [`FeedCache`] for why that is exact).
pub async fn load_feed_data_cached(
    conn: &mut SqliteConnection,
    hosts: &[&HostAsset],
    policy: &Policy,
    cache: &FeedCache,
) -> Result<FeedData, StoreError> {
    // Read before the lists, so that no list is older than its label.
    let generation = Generation::read(conn).await?;
    let (mut lists, missing) = cache.lookup(&generation, lookup_keys(hosts, policy));
    if !missing.is_empty() {
        let loaded = load_entries(conn, &missing).await?;
        cache.keep(&generation, &loaded);
        lists.extend(loaded);
    }
    complete(conn, hosts, lists, Some((cache, &generation))).await
}

/// One advisory entry as read, before its CVEs are joined with KEV/EPSS.
struct RawEntry {
    key: (String, String),
    advisory_id: String,
    withdrawn: bool,
    /// Index into the advisories' CVE lists.
    cves: usize,
    ecosystem_raw: Arc<str>,
    ranges: Arc<[Vec<Event>]>,
    versions: Arc<[String]>,
}

/// The advisory entries of `keys`, each list in advisory order, KEV and
/// EPSS joined into their CVEs; a key without advisories gets an empty list.
/// Entries with the same ranges, versions or ecosystem text share one
/// parsed copy (the matcher judges shared ranges once).
pub async fn load_entries(
    conn: &mut SqliteConnection,
    keys: &Keys,
) -> Result<HashMap<(String, String), EntryList>, StoreError> {
    let mut raw: Vec<RawEntry> = Vec::new();
    let mut cve_ids: Vec<Vec<String>> = Vec::new();
    let mut cve_index: HashMap<String, usize> = HashMap::new();
    let mut range_lists: HashMap<String, Arc<[Vec<Event>]>> = HashMap::new();
    let mut version_lists: HashMap<String, Arc<[String]>> = HashMap::new();
    let mut eco_texts: HashMap<String, Arc<str>> = HashMap::new();
    for (eco, names) in keys {
        let names: Vec<&String> = names.iter().collect();
        for chunk in names.chunks(IN_CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT a.advisory_id, a.ecosystem_raw, a.package, a.ranges, a.versions, \
                 v.withdrawn, v.cves FROM osv_affected a \
                 JOIN osv_advisories v ON v.id = a.advisory_id WHERE a.ecosystem = ",
            );
            q.push_bind(eco.as_str());
            q.push(" AND a.package IN (");
            let mut sep = q.separated(", ");
            for n in chunk {
                sep.push_bind(n.as_str());
            }
            q.push(") ORDER BY a.advisory_id, a.seq");
            for row in q.build().fetch_all(&mut *conn).await? {
                let id: String = row.try_get("advisory_id")?;
                let text: &str = row.try_get("ranges")?;
                let ranges = match range_lists.get(text) {
                    Some(r) => r.clone(),
                    None => {
                        let r: Vec<Vec<Event>> = serde_json::from_str(text)
                            .map_err(|e| corrupt(&format!("ranges of {id}"), e))?;
                        let r: Arc<[Vec<Event>]> = r.into();
                        range_lists.insert(text.to_owned(), r.clone());
                        r
                    }
                };
                let text: &str = row.try_get("versions")?;
                let versions = match version_lists.get(text) {
                    Some(v) => v.clone(),
                    None => {
                        let v: Vec<String> = serde_json::from_str(text)
                            .map_err(|e| corrupt(&format!("versions of {id}"), e))?;
                        let v: Arc<[String]> = v.into();
                        version_lists.insert(text.to_owned(), v.clone());
                        v
                    }
                };
                let text: &str = row.try_get("ecosystem_raw")?;
                let ecosystem_raw = match eco_texts.get(text) {
                    Some(e) => e.clone(),
                    None => {
                        let e: Arc<str> = text.into();
                        eco_texts.insert(text.to_owned(), e.clone());
                        e
                    }
                };
                let cves = match cve_index.get(&id) {
                    Some(&i) => i,
                    None => {
                        let c: Vec<String> = serde_json::from_str(row.try_get("cves")?)
                            .map_err(|e| corrupt(&format!("cves of {id}"), e))?;
                        cve_ids.push(c);
                        cve_index.insert(id.clone(), cve_ids.len() - 1);
                        cve_ids.len() - 1
                    }
                };
                let withdrawn: Option<i64> = row.try_get("withdrawn")?;
                raw.push(RawEntry {
                    key: (eco.clone(), row.try_get("package")?),
                    advisory_id: id,
                    withdrawn: withdrawn.is_some(),
                    cves,
                    ecosystem_raw,
                    ranges,
                    versions,
                });
            }
        }
    }
    let (kev, epss) = load_enrichment(conn, &cve_ids).await?;
    let joined: Vec<Arc<[Cve]>> = cve_ids
        .into_iter()
        .map(|ids| {
            ids.into_iter()
                .map(|id| Cve {
                    kev: kev.get(&id).cloned(),
                    epss: epss.get(&id).copied(),
                    id,
                })
                .collect()
        })
        .collect();
    let mut lists: HashMap<(String, String), Vec<StoredAffected>> = HashMap::new();
    for r in raw {
        lists.entry(r.key).or_default().push(StoredAffected {
            advisory_id: r.advisory_id,
            withdrawn: r.withdrawn,
            cves: joined[r.cves].clone(),
            ecosystem_raw: r.ecosystem_raw,
            ranges: r.ranges,
            versions: r.versions,
        });
    }
    let mut out: HashMap<(String, String), EntryList> = HashMap::new();
    for (eco, names) in keys {
        for name in names {
            let key = (eco.clone(), name.clone());
            let list = lists.remove(&key).unwrap_or_default();
            out.insert(key, list.into());
        }
    }
    Ok(out)
}

/// KEV entries and EPSS scores of the CVEs in `cve_lists`.
async fn load_enrichment(
    conn: &mut SqliteConnection,
    cve_lists: &[Vec<String>],
) -> Result<(HashMap<String, KevInfo>, HashMap<String, EpssInfo>), StoreError> {
    let mut kev = HashMap::new();
    let mut epss = HashMap::new();
    let cves: BTreeSet<&str> = cve_lists.iter().flatten().map(String::as_str).collect();
    let cves: Vec<&str> = cves.into_iter().collect();
    for chunk in cves.chunks(IN_CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT cve, date_added, ransomware FROM kev WHERE cve IN (",
        );
        let mut sep = q.separated(", ");
        for c in chunk {
            sep.push_bind(*c);
        }
        q.push(")");
        for row in q.build().fetch_all(&mut *conn).await? {
            kev.insert(
                row.try_get("cve")?,
                KevInfo {
                    date_added: row.try_get("date_added")?,
                    ransomware: row.try_get("ransomware")?,
                },
            );
        }
        let mut q =
            QueryBuilder::<Sqlite>::new("SELECT cve, score, percentile FROM epss WHERE cve IN (");
        let mut sep = q.separated(", ");
        for c in chunk {
            sep.push_bind(*c);
        }
        q.push(")");
        for row in q.build().fetch_all(&mut *conn).await? {
            epss.insert(
                row.try_get("cve")?,
                EpssInfo {
                    epss: row.try_get("score")?,
                    percentile: row.try_get("percentile")?,
                },
            );
        }
    }
    Ok((kev, epss))
}

/// [`FeedData`] from entry lists: the non-empty lists, the end-of-life
/// dates of the hosts' systems and the feed ages.
async fn complete(
    conn: &mut SqliteConnection,
    hosts: &[&HostAsset],
    lists: HashMap<(String, String), EntryList>,
    cached: Option<(&FeedCache, &Generation)>,
) -> Result<FeedData, StoreError> {
    let mut data = FeedData {
        affected: lists.into_iter().filter(|(_, l)| !l.is_empty()).collect(),
        ..FeedData::default()
    };
    let oses: BTreeSet<&str> = hosts.iter().map(|h| h.os.id.as_str()).collect();
    for os in oses {
        let releases = match cached.and_then(|(c, g)| c.eol(g, os)) {
            Some(r) => r,
            None => {
                let r: Arc<[EolRelease]> = load_eol(conn, os).await?.into();
                if let Some((c, g)) = cached {
                    c.keep_eol(g, os, &r);
                }
                r
            }
        };
        for r in releases.iter() {
            data.eol
                .insert((r.os.clone(), r.release.clone()), r.clone());
        }
    }
    data.ages = match cached.and_then(|(c, g)| c.ages(g)) {
        Some(a) => a,
        None => {
            let a = feed_ages(conn).await?;
            if let Some((c, g)) = cached {
                c.keep_ages(g, &a);
            }
            a
        }
    };
    Ok(data)
}

/// The end-of-life releases of `os`: those of its last imported file, else
/// the shipped snapshot's.
async fn load_eol(conn: &mut SqliteConnection, os: &str) -> Result<Vec<EolRelease>, StoreError> {
    let rows = sqlx::query(
        "SELECT os, release, label, release_date, standard_end, extended_end, \
         extended_kind, sources FROM eol_releases WHERE os = $1",
    )
    .bind(os)
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok(shipped_eol()?
            .entries
            .iter()
            .filter(|r| r.os == os)
            .cloned()
            .collect());
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let date = |col: &str| -> Result<Option<time::Date>, StoreError> {
            let v: Option<String> = row.try_get(col)?;
            match v {
                None => Ok(None),
                Some(s) => parse_date(&s)
                    .map(Some)
                    .ok_or_else(|| corrupt(&format!("eol_releases.{col}"), &s)),
            }
        };
        let kind: Option<String> = row.try_get("extended_kind")?;
        out.push(EolRelease {
            os: row.try_get("os")?,
            release: row.try_get("release")?,
            label: row.try_get("label")?,
            release_date: date("release_date")?,
            standard_end: date("standard_end")?,
            extended_end: date("extended_end")?,
            extended_kind: kind.as_deref().and_then(ExtendedKind::parse),
            sources: serde_json::from_str(row.try_get("sources")?)
                .map_err(|e| corrupt("eol_releases.sources", e))?,
        });
    }
    Ok(out)
}

/// The latest import of each kind; the shipped snapshot for EOL when no
/// end-of-life file was ever imported.
pub async fn feed_ages(
    conn: &mut SqliteConnection,
) -> Result<BTreeMap<String, FeedAge>, StoreError> {
    let rows = sqlx::query(
        "SELECT kind, source, imported_at, feed_date FROM feed_imports ORDER BY imported_at DESC, id DESC",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut ages = BTreeMap::new();
    for row in rows {
        let kind: String = row.try_get("kind")?;
        if ages.contains_key(&kind) {
            continue;
        }
        ages.insert(
            kind,
            FeedAge {
                source: row.try_get("source")?,
                imported_at: Some(row.try_get("imported_at")?),
                feed_date: row.try_get("feed_date")?,
            },
        );
    }
    if !ages.contains_key(FeedKind::Eol.as_str()) {
        let snap = shipped_eol()?;
        ages.insert(
            FeedKind::Eol.as_str().to_owned(),
            FeedAge {
                source: "shipped".into(),
                imported_at: None,
                feed_date: snap
                    .snapshot_date
                    .map(|d| crate::clock::to_ms(d.midnight().assume_utc())),
            },
        );
    }
    Ok(ages)
}

/// The shipped-snapshot ages, for matching without a store.
pub fn shipped_ages() -> Result<BTreeMap<String, FeedAge>, StoreError> {
    let snap = shipped_eol()?;
    let mut ages = BTreeMap::new();
    ages.insert(
        FeedKind::Eol.as_str().to_owned(),
        FeedAge {
            source: "shipped".into(),
            imported_at: None,
            feed_date: snap
                .snapshot_date
                .map(|d| crate::clock::to_ms(d.midnight().assume_utc())),
        },
    );
    Ok(ages)
}

impl Store {
    /// Every import, newest first.
    pub async fn list_imports(&self) -> Result<Vec<ImportRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, source, sha256, records, stored, skipped, feed_date, imported_at, \
             summary FROM feed_imports ORDER BY imported_at DESC, id DESC",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let kind: String = row.try_get("kind")?;
            let n = |c: &str| -> Result<u64, StoreError> {
                let v: i64 = row.try_get(c)?;
                Ok(u64::try_from(v).unwrap_or(0))
            };
            out.push(ImportRecord {
                id: row.try_get("id")?,
                kind: FeedKind::parse(&kind).ok_or_else(|| corrupt("feed_imports.kind", &kind))?,
                source: row.try_get("source")?,
                sha256: row.try_get("sha256")?,
                records: n("records")?,
                stored: n("stored")?,
                skipped: n("skipped")?,
                feed_date: row.try_get("feed_date")?,
                imported_at: row.try_get("imported_at")?,
                summary: serde_json::from_str(row.try_get("summary")?)
                    .map_err(|e| corrupt("feed_imports.summary", e))?,
            });
        }
        Ok(out)
    }

    /// Records the matching policy processes on this store share.
    pub async fn save_policy(&self, policy: &Policy) -> Result<(), StoreError> {
        let v = serde_json::to_string(policy).map_err(|e| corrupt("policy", e))?;
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(POLICY_KEY)
        .bind(v)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The policy last recorded by `serve`, if any.
    pub async fn saved_policy(&self) -> Result<Option<Policy>, StoreError> {
        let v: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(POLICY_KEY)
            .fetch_optional(self.pool())
            .await?;
        v.map(|s| serde_json::from_str(&s).map_err(|e| corrupt("settings.match_policy", e)))
            .transpose()
    }

    /// How many rows a feed table holds (for summaries and tests).
    pub async fn feed_counts(&self) -> Result<BTreeMap<&'static str, i64>, StoreError> {
        let mut m = BTreeMap::new();
        for t in [
            "osv_advisories",
            "osv_affected",
            "kev",
            "epss",
            "eol_releases",
            "feed_imports",
        ] {
            let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {t}"))
                .fetch_one(self.pool())
                .await?;
            m.insert(t, n);
        }
        Ok(m)
    }
}
