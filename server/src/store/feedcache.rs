//! The feed cache: advisory entry lists kept in memory between reports.
//!
//! Reading a host's advisory entries from SQLite (the rows, their JSON
//! ranges, the KEV and EPSS joins) costs far more than matching them: about
//! 330 ms against 3 ms for a 3,000-package Debian host and a 100,000-record
//! feed (`docs/BENCHMARKS.md`). The hosts of a network run the same few
//! releases, so their (ecosystem, package) keys repeat from report to
//! report. The cache keeps, per key, the list [`super::feeds::load_entries`]
//! returned: [`EntryList`]s are immutable and shared, so serving one costs a
//! reference count.
//!
//! Invariants:
//! * Every list in the cache was read at the cache's [`Generation`]: the
//!   number of `feed_imports` rows and the greatest import id. Every feed
//!   import (OSV, KEV, EPSS or EOL) adds its row in the transaction that
//!   changes the feed tables, and nothing else writes them, so the lists of
//!   one generation are exactly what the database holds at it. A load
//!   reads the generation before the lists (so no list is older than its
//!   label).
//! * A load that reads a newer generation than the cache's empties the
//!   cache and adopts its own; a load that reads an older one (a transaction
//!   begun before an import committed) neither reads nor fills it.
//! * The end-of-life releases per OS and the feed ages (both written only
//!   by imports) are kept under the same generation.
//! * Keys without advisories are kept as empty lists: most packages have
//!   none, and they would otherwise be looked up in SQLite every time.
//! * The cache holds at most [`MAX_ENTRIES`] advisory entries (empty lists
//!   count as one); keeping lists that would exceed it empties the cache
//!   first. Simple and bounded: a network's working set (its releases'
//!   packages) is far smaller, so this happens only after feed growth.
//! * The mutex is never held across an `.await`, nor while reading SQLite.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sqlx::{Row, SqliteConnection};

use super::feeds::Keys;
use super::StoreError;
use crate::vuln::eol::EolRelease;
use crate::vuln::matcher::{EntryList, FeedAge};

/// The most advisory entries kept. An entry with its share of the ranges,
/// CVE lists and ids costs about 650 bytes of heap (measured on the
/// `scripts/bench-patch` feed: 15 MiB for the 22,678 entries of a Debian 12
/// host), so the cache stays under about 160 MiB: some ten releases' worth
/// of a network's installed packages. The full Debian, Ubuntu and Alpine
/// feeds would not fit, which is why lists are cached per key as hosts
/// need them.
pub const MAX_ENTRIES: usize = 250_000;

/// The state of the feed tables a list was read at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Generation {
    imports: i64,
    newest: Option<String>,
}

impl Generation {
    /// The generation the connection sees now.
    pub async fn read(conn: &mut SqliteConnection) -> Result<Self, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n, MAX(id) AS newest FROM feed_imports")
            .fetch_one(conn)
            .await?;
        Ok(Generation {
            imports: row.try_get("n")?,
            newest: row.try_get("newest")?,
        })
    }
}

/// Counters of the cache, for `/metrics` and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Keys served from memory.
    pub hits: u64,
    /// Keys read from the database.
    pub misses: u64,
    /// Times the cache was emptied (a newer generation, or full).
    pub resets: u64,
    /// Keys and advisory entries held now.
    pub keys: usize,
    pub entries: usize,
}

#[derive(Default)]
struct Inner {
    generation: Option<Generation>,
    lists: HashMap<(String, String), EntryList>,
    /// End-of-life releases by OS, and the feed ages: few and small, but
    /// read for every report, and of the same generation.
    eol: HashMap<String, Arc<[EolRelease]>>,
    ages: Option<BTreeMap<String, FeedAge>>,
    stats: CacheStats,
}

impl Inner {
    fn reset(&mut self, generation: &Generation) {
        self.generation = Some(generation.clone());
        self.lists.clear();
        self.eol.clear();
        self.ages = None;
        self.stats.keys = 0;
        self.stats.entries = 0;
        self.stats.resets += 1;
    }
}

/// Entry lists by (ecosystem, package); one per store, shared by its clones.
#[derive(Default)]
pub struct FeedCache {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for FeedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedCache")
            .field("stats", &self.stats())
            .finish()
    }
}

/// What one list costs against [`MAX_ENTRIES`].
fn weight(list: &EntryList) -> usize {
    list.len().max(1)
}

impl FeedCache {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update leaves `Inner` consistent between statements, so the
        // state behind a poisoned lock is still sound.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lists of `keys` held for `generation`, and the keys to read.
    pub fn lookup(
        &self,
        generation: &Generation,
        keys: Keys,
    ) -> (HashMap<(String, String), EntryList>, Keys) {
        let mut inner = self.lock();
        match &inner.generation {
            Some(g) if g > generation => {
                let n: usize = keys.values().map(|names| names.len()).sum();
                inner.stats.misses += n as u64;
                return (HashMap::new(), keys);
            }
            Some(g) if g == generation => {}
            _ => inner.reset(generation),
        }
        let mut found = HashMap::new();
        let mut missing = Keys::new();
        for (eco, names) in keys {
            for name in names {
                let key = (eco.clone(), name);
                match inner.lists.get(&key) {
                    Some(list) => {
                        found.insert(key, list.clone());
                    }
                    None => {
                        missing.entry(key.0).or_default().insert(key.1);
                    }
                }
            }
        }
        inner.stats.hits += found.len() as u64;
        inner.stats.misses += missing.values().map(|n| n.len() as u64).sum::<u64>();
        (found, missing)
    }

    /// Keeps `lists`, read at `generation`, unless the cache has moved on.
    pub fn keep(&self, generation: &Generation, lists: &HashMap<(String, String), EntryList>) {
        let mut inner = self.lock();
        if inner.generation.as_ref() != Some(generation) {
            return;
        }
        let adding: usize = lists.values().map(weight).sum();
        if adding > MAX_ENTRIES {
            return;
        }
        if inner.stats.entries + adding > MAX_ENTRIES {
            inner.reset(generation);
        }
        for (key, list) in lists {
            let w = weight(list);
            if let Some(old) = inner.lists.insert(key.clone(), list.clone()) {
                inner.stats.entries -= weight(&old);
            } else {
                inner.stats.keys += 1;
            }
            inner.stats.entries += w;
        }
    }

    /// The end-of-life releases of `os` held for `generation`.
    pub fn eol(&self, generation: &Generation, os: &str) -> Option<Arc<[EolRelease]>> {
        let inner = self.lock();
        if inner.generation.as_ref() != Some(generation) {
            return None;
        }
        inner.eol.get(os).cloned()
    }

    pub fn keep_eol(&self, generation: &Generation, os: &str, releases: &Arc<[EolRelease]>) {
        let mut inner = self.lock();
        if inner.generation.as_ref() == Some(generation) {
            inner.eol.insert(os.to_owned(), releases.clone());
        }
    }

    /// The feed ages held for `generation`.
    pub fn ages(&self, generation: &Generation) -> Option<BTreeMap<String, FeedAge>> {
        let inner = self.lock();
        if inner.generation.as_ref() != Some(generation) {
            return None;
        }
        inner.ages.clone()
    }

    pub fn keep_ages(&self, generation: &Generation, ages: &BTreeMap<String, FeedAge>) {
        let mut inner = self.lock();
        if inner.generation.as_ref() == Some(generation) {
            inner.ages = Some(ages.clone());
        }
    }

    pub fn stats(&self) -> CacheStats {
        self.lock().stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn generation(imports: i64, newest: &str) -> Generation {
        Generation {
            imports,
            newest: Some(newest.into()),
        }
    }

    fn keys(names: &[&str]) -> Keys {
        let mut k = Keys::new();
        k.insert(
            "Debian:12".into(),
            names
                .iter()
                .map(|n| (*n).to_owned())
                .collect::<BTreeSet<_>>(),
        );
        k
    }

    fn empty_lists(names: &[&str]) -> HashMap<(String, String), EntryList> {
        names
            .iter()
            .map(|n| {
                (
                    ("Debian:12".to_owned(), (*n).to_owned()),
                    Arc::from(Vec::new()),
                )
            })
            .collect()
    }

    #[test]
    fn kept_lists_are_served_at_the_same_generation_only() {
        let c = FeedCache::default();
        let g1 = generation(1, "a");
        let (found, missing) = c.lookup(&g1, keys(&["openssl", "zlib"]));
        assert!(found.is_empty());
        assert_eq!(missing, keys(&["openssl", "zlib"]));
        c.keep(&g1, &empty_lists(&["openssl", "zlib"]));

        let (found, missing) = c.lookup(&g1, keys(&["openssl", "curl"]));
        assert_eq!(found.len(), 1);
        assert!(found.contains_key(&("Debian:12".to_owned(), "openssl".to_owned())));
        assert_eq!(missing, keys(&["curl"]));

        // An import happened: nothing of before is served.
        let g2 = generation(2, "b");
        let (found, missing) = c.lookup(&g2, keys(&["openssl", "zlib"]));
        assert!(found.is_empty());
        assert_eq!(missing, keys(&["openssl", "zlib"]));
        assert_eq!(c.stats().keys, 0);
        assert_eq!(c.stats().resets, 2);
    }

    #[test]
    fn a_load_older_than_the_cache_neither_reads_nor_fills_it() {
        let c = FeedCache::default();
        let (old, new) = (generation(1, "a"), generation(2, "b"));
        c.lookup(&new, keys(&["openssl"]));
        c.keep(&new, &empty_lists(&["openssl"]));
        let (found, missing) = c.lookup(&old, keys(&["openssl"]));
        assert!(found.is_empty());
        assert_eq!(missing, keys(&["openssl"]));
        c.keep(&old, &empty_lists(&["zlib"]));
        let s = c.stats();
        assert_eq!((s.keys, s.resets), (1, 1));
        let (found, _) = c.lookup(&new, keys(&["openssl", "zlib"]));
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn the_cache_is_emptied_rather_than_grown_past_its_bound() {
        let c = FeedCache::default();
        let g = generation(1, "a");
        c.lookup(&g, Keys::new());
        let names: Vec<String> = (0..3).map(|i| format!("p{i}")).collect();
        let big = |name: &str, n: usize| {
            let mut m = HashMap::new();
            let list: EntryList = Arc::from(vec![entry(); n]);
            m.insert(("Debian:12".to_owned(), name.to_owned()), list);
            m
        };
        c.keep(&g, &big(&names[0], MAX_ENTRIES / 2));
        c.keep(&g, &big(&names[1], MAX_ENTRIES / 2));
        assert_eq!(c.stats().entries, MAX_ENTRIES);
        c.keep(&g, &big(&names[2], 1));
        let s = c.stats();
        assert_eq!((s.keys, s.entries), (1, 1));
        // A single load larger than the bound is not kept at all.
        c.keep(&g, &big("huge", MAX_ENTRIES + 1));
        assert_eq!(c.stats().entries, 1);
    }

    fn entry() -> crate::vuln::matcher::StoredAffected {
        crate::vuln::matcher::StoredAffected {
            advisory_id: "DSA-1".into(),
            withdrawn: false,
            cves: Arc::from(Vec::new()),
            ecosystem_raw: "Debian:12".into(),
            ranges: Arc::from(Vec::new()),
            versions: Arc::from(Vec::new()),
        }
    }
}
