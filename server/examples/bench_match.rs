//! Matching benchmark (`scripts/bench-patch` runs it; not part of CI).
//!
//! Reads an inventory as `match` does, loads from the data dir's store the
//! feed data its first host needs (the same query the server runs for each
//! report and each re-match), then times, in this process:
//! * `load`: [`feeds::load_feed_data`] for that host (SQLite lookups);
//! * `match`: the pure [`match_host`] over that data (no I/O);
//! * `load+match`: both, reading every entry from SQLite, as the server
//!   does for the first report of a release (and `match` does always);
//! * `cached load+match`: both through the store's feed cache, warmed by
//!   one load, as `serve` does per report once the release's packages are
//!   cached (the cache's invariants are in `store/feedcache.rs`);
//! * `match and store`: the cached load, the match and the upsert of the
//!   host's findings in one committed transaction, as `serve` does for a
//!   report (steady state: the findings exist and are updated). This writes
//!   to the data dir: an organisation `BENCH` and the host's findings.
//!
//! Each is run many times after a warm-up; the result is one JSON object on
//! stdout (durations in milliseconds: min, p50, p99, max, mean) with what was
//! matched (packages, source groups, advisory entries evaluated, findings
//! by code, the size of the findings as JSON), so a reader can tell the
//! numbers come from real work.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use serde_json::json;
use sqlx::Connection;
use time::OffsetDateTime;
use trustwatch_common::host::HostAsset;
use trustwatch_server::clock::parse_rfc3339;
use trustwatch_server::feedcmd::read_inventory;
use trustwatch_server::store::feeds::{load_feed_data, load_feed_data_cached};
use trustwatch_server::store::matched::match_and_store;
use trustwatch_server::store::{MatchContext, Store, DB_FILE};
use trustwatch_server::vuln::matcher::{lookups, match_host};
use trustwatch_server::vuln::Policy;

/// Times feed loading and matching for one host inventory.
#[derive(Parser)]
struct Args {
    /// The server data dir holding the imported feeds.
    #[arg(long)]
    data_dir: PathBuf,
    /// An inventory as printed by `trustwatch-agent scan host --format json`.
    #[arg(long)]
    inventory: PathBuf,
    /// Timed iterations of the pure match.
    #[arg(long, default_value_t = 2000)]
    iterations: usize,
    /// Timed iterations of the load and of load+match.
    #[arg(long, default_value_t = 100)]
    load_iterations: usize,
    /// Untimed iterations run first (each of the three loops).
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// The clock of the match (RFC 3339); default now.
    #[arg(long)]
    now: Option<String>,
}

/// min, p50, p99, max and mean of `samples`, in milliseconds.
fn stats(mut samples: Vec<Duration>) -> serde_json::Value {
    samples.sort();
    let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    let at = |q: f64| {
        // Nearest-rank percentile; `samples` is non-empty (checked by main).
        let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        samples[rank - 1]
    };
    let total: Duration = samples.iter().sum();
    let mean = total / u32::try_from(samples.len()).unwrap_or(u32::MAX);
    json!({
        "n": samples.len(),
        "min_ms": ms(samples[0]),
        "p50_ms": ms(at(0.50)),
        "p99_ms": ms(at(0.99)),
        "max_ms": ms(samples[samples.len() - 1]),
        "mean_ms": ms(mean),
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.iterations == 0 || args.load_iterations == 0 {
        bail!("--iterations and --load-iterations must be at least 1");
    }
    let now = match &args.now {
        Some(s) => parse_rfc3339(s).with_context(|| format!("--now {s:?}"))?,
        None => OffsetDateTime::now_utc(),
    };
    if !args.data_dir.join(DB_FILE).exists() {
        bail!(
            "{}: no database (import a feed first)",
            args.data_dir.display()
        );
    }
    let (assets, _) = read_inventory(&args.inventory)?;
    let host = assets
        .iter()
        .find_map(HostAsset::from_asset)
        .context("the inventory has no readable host asset")?;
    let policy = Policy::default();

    let store = Store::open_in(&args.data_dir).await?;
    let mut conn = store.pool().acquire().await?;

    let mut load = Vec::with_capacity(args.load_iterations);
    for i in 0..args.warmup + args.load_iterations {
        let t = Instant::now();
        let d = load_feed_data(&mut conn, &[&host], &policy).await?;
        let e = t.elapsed();
        black_box(&d);
        if i >= args.warmup {
            load.push(e);
        }
    }

    let data = load_feed_data(&mut conn, &[&host], &policy).await?;
    let mut matching = Vec::with_capacity(args.iterations);
    let mut outcome = None;
    for i in 0..args.warmup + args.iterations {
        let t = Instant::now();
        let o = match_host(black_box(&host), black_box(&data), now, &policy);
        let e = t.elapsed();
        if i >= args.warmup {
            matching.push(e);
        }
        outcome = Some(black_box(o));
    }
    let outcome = outcome.context("no match ran")?;

    let mut both = Vec::with_capacity(args.load_iterations);
    for i in 0..args.warmup + args.load_iterations {
        let t = Instant::now();
        let d = load_feed_data(&mut conn, &[&host], &policy).await?;
        let o = match_host(&host, &d, now, &policy);
        let e = t.elapsed();
        black_box(&o);
        if i >= args.warmup {
            both.push(e);
        }
    }
    // Warm the cache once, then time what a report costs with it.
    let cache = store.feed_cache();
    load_feed_data_cached(&mut conn, &[&host], &policy, cache).await?;
    let mut cached = Vec::with_capacity(args.iterations);
    for i in 0..args.warmup + args.iterations {
        let t = Instant::now();
        let d = load_feed_data_cached(&mut conn, &[&host], &policy, cache).await?;
        let o = match_host(&host, &d, now, &policy);
        let e = t.elapsed();
        black_box(&o);
        if i >= args.warmup {
            cached.push(e);
        }
    }
    sqlx::query("INSERT OR IGNORE INTO orgs (code, name, created_at) VALUES ('BENCH', 'bench', 0)")
        .execute(&mut *conn)
        .await?;
    let ctx = MatchContext { now, policy };
    let mut stored = Vec::with_capacity(args.load_iterations);
    let mut stored_findings = 0;
    for i in 0..args.warmup + args.load_iterations {
        let t = Instant::now();
        let mut tx = conn.begin().await?;
        let seen = 1_000 + i64::try_from(i)?;
        stored_findings =
            match_and_store(&mut tx, cache, "BENCH", &host, "bench", seen, &ctx).await?;
        tx.commit().await?;
        let e = t.elapsed();
        if i >= args.warmup {
            stored.push(e);
        }
    }
    let cache_stats = cache.stats();
    if cache_stats.resets != 1 {
        bail!("the feed cache was emptied during the run: {cache_stats:?}");
    }
    drop(conn);
    store.close().await;

    let mut by_code: BTreeMap<String, usize> = BTreeMap::new();
    for f in &outcome.findings {
        *by_code.entry(f.code.to_string()).or_default() += 1;
    }
    let entries: usize = data.affected.values().map(|l| l.len()).sum();
    let evidence_bytes = serde_json::to_vec(&outcome.findings)?.len();
    let report = json!({
        "host": host.id,
        "os": format!("{} {}", host.os.id, host.os.version_id),
        "packages": host.packages.len(),
        "lookups": lookups(&host, &policy).len(),
        "packages_with_advisories": data.affected.len(),
        "advisory_entries": entries,
        "findings": outcome.findings.len(),
        "findings_by_code": by_code,
        "findings_json_bytes": evidence_bytes,
        "skipped_ranges": outcome.skipped_ranges,
        "notes": outcome.notes.len(),
        "load": stats(load),
        "match": stats(matching),
        "load_and_match": stats(both),
        "cached_load_and_match": stats(cached),
        "match_and_store": stats(stored),
        "stored_findings": stored_findings,
        "cache": {"keys": cache_stats.keys, "entries": cache_stats.entries,
                  "hits": cache_stats.hits, "misses": cache_stats.misses},
    });
    println!("{report}");
    Ok(())
}
