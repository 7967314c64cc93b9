//! Scoring and query benchmark (issue 7; not run in CI; `scripts/bench-score`
//! runs it in release after checking free disk).
//!
//! Generates, with bulk SQL into a fresh SQLite store: 200 organisations
//! (1 nation, 9 regions, 190 trusts of uneven size), 1,000,000 assets and
//! 10,000,000 findings (about 85% open). Then measures:
//! * a full re-score of current scores (`Store::refresh_scores` with
//!   `all`: stale-agent check, every organisation's facts, roll-ups, ranks,
//!   today's history), twice;
//! * the league table, `GET /api/v1/orgs?sort=-score&limit=100` and
//!   `?sort=patch_score&limit=10`, and one organisation's page,
//!   `GET /api/v1/orgs/{code}`: through the real axum router in-process
//!   (authentication, query, JSON; no TLS, no socket), p50/p99;
//! * for reference, the history page and the live national per-code view.
//!
//! Usage: `bench_score --dir DIR [--orgs N] [--assets N] [--findings N]
//! [--markdown FILE] [--reuse]`. With `--markdown`, the results replace
//! the text between `<!-- bench-score:begin -->` and
//! `<!-- bench-score:end -->` of FILE.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use sqlx::{Connection, Row};
use tower::ServiceExt;
use trustwatch_server::api::{self, AppState, Limits};
use trustwatch_server::clock::{fmt_time, parse_rfc3339, to_ms, ManualClock};
use trustwatch_server::metrics::Metrics;
use trustwatch_server::pki::Ca;
use trustwatch_server::store::scores::RefreshOptions;
use trustwatch_server::store::{ApiKeyRole, Store};

const NOW: &str = "2026-03-02T12:00:00Z";

struct Args {
    dir: PathBuf,
    orgs: usize,
    assets: u64,
    findings: u64,
    markdown: Option<PathBuf>,
    reuse: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        dir: PathBuf::new(),
        orgs: 200,
        assets: 1_000_000,
        findings: 10_000_000,
        markdown: None,
        reuse: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut val = || it.next().with_context(|| format!("{k} needs a value"));
        match k.as_str() {
            "--dir" => a.dir = PathBuf::from(val()?),
            "--orgs" => a.orgs = val()?.parse()?,
            "--assets" => a.assets = val()?.parse()?,
            "--findings" => a.findings = val()?.parse()?,
            "--markdown" => a.markdown = Some(PathBuf::from(val()?)),
            "--reuse" => a.reuse = true,
            other => bail!("unknown argument {other}"),
        }
    }
    if a.dir.as_os_str().is_empty() {
        bail!("--dir DIR is required");
    }
    if a.orgs < 11 {
        bail!("--orgs must be at least 11 (1 nation, 9 regions, trusts)");
    }
    Ok(a)
}

/// Deterministic sizes of the trusts, summing to `total`.
fn shares(n: usize, total: u64) -> Vec<u64> {
    let w: Vec<u64> = (0..n as u64).map(|i| 20 + (i * 7919) % 180).collect();
    let sum: u64 = w.iter().sum();
    let mut out: Vec<u64> = w.iter().map(|x| x * total / sum).collect();
    let rest = total - out.iter().sum::<u64>();
    for x in out.iter_mut().take(rest as usize) {
        *x += 1;
    }
    out
}

/// (kind, slot, code, category, severity, rank); slot 5 is the rare critical.
const CODES: &[(&str, i64, &str, &str, &str, i64)] = &[
    ("host", 0, "patch.package.vulnerable", "patch", "high", 3),
    (
        "host",
        1,
        "patch.package.vulnerable_unfixed",
        "patch",
        "low",
        1,
    ),
    (
        "host",
        2,
        "patch.kernel.reboot_required",
        "patch",
        "medium",
        2,
    ),
    ("host", 3, "patch.updates.stale", "patch", "medium", 2),
    ("host", 4, "patch.os.eol_soon", "patch", "medium", 2),
    ("host", 5, "patch.os.eol", "patch", "critical", 4),
    ("tls_endpoint", 0, "tls.protocol.tls1_0", "tls", "medium", 2),
    ("tls_endpoint", 1, "tls.cert.expiring_soon", "tls", "low", 1),
    ("tls_endpoint", 2, "tls.protocol.tls1_1", "tls", "medium", 2),
    (
        "tls_endpoint",
        3,
        "tls.cert.self_signed",
        "tls",
        "medium",
        2,
    ),
    ("tls_endpoint", 4, "tls.cipher.weak", "tls", "medium", 2),
    ("tls_endpoint", 5, "tls.cert.expired", "tls", "high", 3),
    (
        "device",
        0,
        "legacy.smb.signing_not_required",
        "legacy",
        "medium",
        2,
    ),
    ("device", 1, "legacy.ssh.outdated", "legacy", "medium", 2),
    ("device", 2, "legacy.ftp.cleartext", "legacy", "medium", 2),
    ("device", 3, "legacy.telnet", "legacy", "high", 3),
    (
        "device",
        4,
        "legacy.snmp.default_community",
        "legacy",
        "high",
        3,
    ),
    ("device", 5, "legacy.smb.v1", "legacy", "critical", 4),
];

fn uuid_for(i: u64) -> String {
    format!("0190b000-0000-7000-8000-{i:012x}")
}

async fn generate(store: &Store, a: &Args) -> anyhow::Result<()> {
    let now = to_ms(parse_rfc3339(NOW)?);
    let mut conn = store.pool().acquire().await?;
    sqlx::query("PRAGMA synchronous = OFF")
        .execute(&mut *conn)
        .await?;
    for idx in [
        "findings_by_org_status",
        "findings_by_code",
        "findings_by_agent",
        "findings_by_asset_collector",
        "findings_score",
        "assets_by_kind",
    ] {
        sqlx::query(&format!("DROP INDEX IF EXISTS {idx}"))
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("CREATE TEMP TABLE bench_codes (kind TEXT, slot INTEGER, code TEXT, category TEXT, severity TEXT, rank INTEGER, PRIMARY KEY (kind, slot))")
        .execute(&mut *conn)
        .await?;
    for (kind, slot, code, cat, sev, rank) in CODES {
        sqlx::query("INSERT INTO bench_codes VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(kind)
            .bind(slot)
            .bind(code)
            .bind(cat)
            .bind(sev)
            .bind(rank)
            .execute(&mut *conn)
            .await?;
    }
    let trusts = a.orgs - 10;
    let mut tx = conn.begin().await?;
    sqlx::query(
        "INSERT INTO orgs (code, name, parent, created_at) VALUES ('NAT', 'Nation', NULL, $1)",
    )
    .bind(now)
    .execute(&mut *tx)
    .await?;
    for r in 1..=9 {
        sqlx::query("INSERT INTO orgs (code, name, parent, created_at) VALUES ($1, $2, 'NAT', $3)")
            .bind(format!("R{r:02}"))
            .bind(format!("Region {r}"))
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    for t in 0..trusts {
        sqlx::query("INSERT INTO orgs (code, name, parent, created_at) VALUES ($1, $2, $3, $4)")
            .bind(format!("T{t:03}"))
            .bind(format!("Trust {t}"))
            .bind(format!("R{:02}", t % 9 + 1))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        for g in 0..2u64 {
            let i = t as u64 * 2 + g;
            // Every 25th agent has been silent for three days.
            let last = if i.is_multiple_of(25) {
                now - 3 * 86_400_000
            } else {
                now - 3_600_000
            };
            sqlx::query("INSERT INTO agents (id, org, hostname, cert_serial, enrolled_at, last_seen) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(uuid_for(i))
                .bind(format!("T{t:03}"))
                .bind(format!("agent{g}"))
                .bind(format!("{i:x}"))
                .bind(now - 90 * 86_400_000)
                .bind(last)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    let asset_shares = shares(trusts, a.assets);
    // Findings per asset vary between trusts (2..=18 on average), scaled to the total.
    let weights: Vec<u64> = (0..trusts as u64)
        .map(|t| asset_shares[t as usize] * (2 + (t * 37) % 17))
        .collect();
    let wsum: u64 = weights.iter().sum();
    let mut finding_shares: Vec<u64> = weights.iter().map(|w| w * a.findings / wsum).collect();
    let rest = a.findings - finding_shares.iter().sum::<u64>();
    for x in finding_shares.iter_mut().take(rest as usize) {
        *x += 1;
    }
    let started = Instant::now();
    for t in 0..trusts {
        let org = format!("T{t:03}");
        let n_assets = asset_shares[t] as i64;
        let n_findings = finding_shares[t] as i64;
        // One trust in five may have the rare criticals (SMBv1, EOL OS,
        // expired certificates); one in seven KEV-listed vulnerabilities.
        let rare = i64::from(t.is_multiple_of(5));
        let kev = i64::from(t.is_multiple_of(7));
        let mut tx = conn.begin().await?;
        sqlx::query(
            "INSERT INTO assets (org, kind, id, first_seen, last_seen, agent_id, details) \
             WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < $2) \
             SELECT $1, k, CASE k WHEN 'host' THEN 'h' || i WHEN 'tls_endpoint' THEN 'e' || i || ':443' \
               ELSE '10.' || (i / 65536 % 256) || '.' || (i / 256 % 256) || '.' || (i % 256) END, \
               $3 - (i % 30) * 86400000, $3 - 3600000, $4, '{}' \
             FROM (SELECT i, CASE WHEN i % 10 < 4 THEN 'host' WHEN i % 10 < 6 THEN 'tls_endpoint' \
               ELSE 'device' END AS k FROM s)",
        )
        .bind(&org)
        .bind(n_assets)
        .bind(now)
        .bind(uuid_for(t as u64 * 2))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO findings (org, asset_kind, asset_id, code, subject, severity, severity_rank, \
               category, title, evidence, status, first_seen, last_seen, resolved_at, reopened, \
               agent_id, collector) \
             WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < $2), \
             f AS (SELECT i, i * $3 / $2 AS a, (i * 2654435761) % 1000 AS h FROM s), \
             g AS (SELECT i, a, h, CASE WHEN a % 10 < 4 THEN 'host' WHEN a % 10 < 6 THEN 'tls_endpoint' \
               ELSE 'device' END AS k, CASE WHEN h < 400 THEN 0 WHEN h < 550 THEN 1 WHEN h < 750 THEN 2 \
               WHEN h < 900 THEN 3 WHEN h < 998 OR $4 = 0 THEN 4 ELSE 5 END AS slot FROM f) \
             SELECT $1, g.k, CASE g.k WHEN 'host' THEN 'h' || a WHEN 'tls_endpoint' THEN 'e' || a || ':443' \
               ELSE '10.' || (a / 65536 % 256) || '.' || (a / 256 % 256) || '.' || (a % 256) END, \
               c.code, 'p' || i, \
               CASE WHEN c.slot = 0 AND c.kind = 'host' AND $5 = 1 AND h % 97 = 0 THEN 'critical' ELSE c.severity END, \
               CASE WHEN c.slot = 0 AND c.kind = 'host' AND $5 = 1 AND h % 97 = 0 THEN 4 ELSE c.rank END, \
               c.category, 'bench ' || c.code, \
               CASE WHEN c.slot = 0 AND c.kind = 'host' THEN \
                 CASE WHEN $5 = 1 AND h % 97 = 0 THEN '{\"kev\":{\"listed\":true}}' ELSE '{\"kev\":{\"listed\":false}}' END \
               ELSE '{\"bench\":true}' END, \
               CASE WHEN (i * 40503) % 100 < 15 THEN 'resolved' ELSE 'open' END, \
               $6 - (h % 60) * 86400000, $6 - 3600000, \
               CASE WHEN (i * 40503) % 100 < 15 THEN $6 - 7200000 END, 0, $7, \
               CASE c.category WHEN 'patch' THEN 'host' WHEN 'tls' THEN 'tls' ELSE 'network' END \
             FROM g JOIN bench_codes c ON c.kind = g.k AND c.slot = g.slot",
        )
        .bind(&org)
        .bind(n_findings)
        .bind(n_assets)
        .bind(rare)
        .bind(kev)
        .bind(now)
        .bind(uuid_for(t as u64 * 2))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if t % 20 == 19 {
            eprintln!(
                "  {} of {trusts} trusts generated ({:.0}s)",
                t + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!("rebuilding indexes");
    let started = Instant::now();
    for ddl in [
        "CREATE INDEX findings_by_org_status ON findings (org, status)",
        "CREATE INDEX findings_by_code ON findings (code, status, org)",
        "CREATE INDEX findings_by_agent ON findings (agent_id, status)",
        "CREATE INDEX findings_by_asset_collector ON findings (org, asset_kind, asset_id, collector, status)",
        "CREATE INDEX findings_score ON findings (org, status, category, severity_rank, asset_kind, asset_id, code)",
        "CREATE INDEX assets_by_kind ON assets (kind, org, id)",
    ] {
        sqlx::query(ddl).execute(&mut *conn).await?;
    }
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut *conn)
        .await?;
    eprintln!("  indexes in {:.0}s", started.elapsed().as_secs_f64());
    Ok(())
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

async fn timed_gets(
    router: &axum::Router,
    key: &str,
    paths: &[String],
) -> anyhow::Result<(f64, f64, usize)> {
    let mut times = Vec::with_capacity(paths.len());
    let mut bytes = 0;
    for p in paths {
        let req = Request::get(p.as_str())
            .header("authorization", format!("Bearer {key}"))
            .body(Body::empty())?;
        let t = Instant::now();
        let resp = router.clone().oneshot(req).await?;
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 64 << 20).await?;
        times.push(t.elapsed());
        if status != StatusCode::OK {
            bail!("{p}: {status} {}", String::from_utf8_lossy(&body));
        }
        bytes = body.len();
    }
    times.sort();
    Ok((pct(&times, 0.5), pct(&times, 0.99), bytes))
}

fn replace_block(path: &PathBuf, text: &str) -> anyhow::Result<()> {
    let doc = std::fs::read_to_string(path)?;
    let (b, e) = ("<!-- bench-score:begin -->", "<!-- bench-score:end -->");
    let (Some(i), Some(j)) = (doc.find(b), doc.find(e)) else {
        bail!("{} has no bench-score markers", path.display());
    };
    if j < i {
        bail!("bench-score markers out of order");
    }
    let out = format!("{}{b}\n{}\n{}", &doc[..i], text.trim_end(), &doc[j..]);
    std::fs::write(path, out)?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let now = parse_rfc3339(NOW)?;
    let store = Store::open_in(&a.dir).await?;
    let have: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orgs")
        .fetch_one(store.pool())
        .await?;
    let mut gen_secs = None;
    if have == 0 {
        eprintln!(
            "generating {} organisations, {} assets, {} findings in {}",
            a.orgs,
            a.assets,
            a.findings,
            a.dir.display()
        );
        let t = Instant::now();
        generate(&store, &a).await?;
        gen_secs = Some(t.elapsed().as_secs_f64());
    } else if !a.reuse {
        bail!("{} already holds a store (pass --reuse)", a.dir.display());
    }
    let counts = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM orgs) AS o, (SELECT COUNT(*) FROM assets) AS a, \
         (SELECT COUNT(*) FROM findings) AS f, \
         (SELECT COUNT(*) FROM findings WHERE status = 'open') AS open",
    )
    .fetch_one(store.pool())
    .await?;
    let (n_orgs, n_assets, n_findings, n_open): (i64, i64, i64, i64) = (
        counts.try_get("o")?,
        counts.try_get("a")?,
        counts.try_get("f")?,
        counts.try_get("open")?,
    );
    let db_bytes = std::fs::metadata(a.dir.join("trustwatch.db"))?.len();
    eprintln!(
        "store: {n_orgs} orgs, {n_assets} assets, {n_findings} findings ({n_open} open), {:.1} GiB",
        db_bytes as f64 / (1u64 << 30) as f64
    );

    let plan: Vec<String> = sqlx::query(
        "EXPLAIN QUERY PLAN SELECT category, severity_rank, asset_kind, asset_id, COUNT(*) \
         FROM findings WHERE org = 'T001' AND status = 'open' \
         GROUP BY category, severity_rank, asset_kind, asset_id",
    )
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(|r| r.try_get::<String, _>("detail"))
    .collect::<Result<_, _>>()?;
    eprintln!("facts plan: {}", plan.join(" | "));

    let opts = RefreshOptions {
        all: true,
        ..RefreshOptions::default()
    };
    let mut rescore = Vec::new();
    for run in 1..=2 {
        let t = Instant::now();
        let s = store.refresh_scores(now, &opts).await?;
        let secs = t.elapsed().as_secs_f64();
        eprintln!(
            "full re-score {run}: {secs:.1}s ({} computed, {} written, {} stale raised)",
            s.computed, s.written, s.stale_raised
        );
        rescore.push(secs);
    }

    let trusts: Vec<String> =
        sqlx::query_scalar("SELECT code FROM orgs WHERE code LIKE 'T%' ORDER BY code")
            .fetch_all(store.pool())
            .await?;
    let pick = |i: usize| &trusts[(i * 7919) % trusts.len()];
    // Steady state: one organisation's findings changed since the last refresh.
    let mut one = Vec::new();
    for i in 0..9 {
        sqlx::query(
            "INSERT INTO score_dirty (org, gen) VALUES ($1, 1) \
             ON CONFLICT (org) DO UPDATE SET gen = score_dirty.gen + 1",
        )
        .bind(pick(i))
        .execute(store.pool())
        .await?;
        let t = Instant::now();
        let s = store
            .refresh_scores(now, &RefreshOptions::default())
            .await?;
        one.push(t.elapsed());
        if s.computed != 1 {
            bail!("expected one organisation recomputed, got {}", s.computed);
        }
    }
    one.sort();

    let clock = Arc::new(ManualClock::new(now));
    let state = AppState {
        store: store.clone(),
        ca: Arc::new(Ca::generate(now)?),
        clock,
        metrics: Arc::new(Metrics::default()),
        limits: Limits {
            max_body_bytes: 8 << 20,
            max_decompressed_bytes: 64 << 20,
        },
        policy: Default::default(),
    };
    let router = api::router(state);
    let mut out = Vec::new();
    trustwatch_server::admin::apikey_create(
        &store,
        &trustwatch_server::clock::SystemClock::system(),
        ApiKeyRole::National,
        None,
        &mut out,
    )
    .await?;
    let key = String::from_utf8(out)?
        .lines()
        .last()
        .context("no key printed")?
        .to_owned();
    let n = 1000;
    // Warm-up.
    timed_gets(
        &router,
        &key,
        &vec!["/api/v1/orgs?sort=-score&limit=100".to_owned(); 20],
    )
    .await?;
    let league = timed_gets(
        &router,
        &key,
        &vec!["/api/v1/orgs?sort=-score&limit=100".to_owned(); n],
    )
    .await?;
    let worst = timed_gets(
        &router,
        &key,
        &vec!["/api/v1/orgs?sort=patch_score&limit=10".to_owned(); n],
    )
    .await?;
    let page_paths: Vec<String> = (0..n)
        .map(|i| format!("/api/v1/orgs/{}", pick(i)))
        .collect();
    let page = timed_gets(&router, &key, &page_paths).await?;
    let hist_paths: Vec<String> = (0..n)
        .map(|i| format!("/api/v1/orgs/{}/history", pick(i)))
        .collect();
    let hist = timed_gets(&router, &key, &hist_paths).await?;
    let nat = timed_gets(
        &router,
        &key,
        &vec!["/api/v1/findings?code=legacy.smb.v1".to_owned(); 20],
    )
    .await?;

    let rows = [
        (
            "full re-score of current scores (run 1, run 2)",
            format!("{:.1} s, {:.1} s", rescore[0], rescore[1]),
            "≤ 60 s",
        ),
        (
            "refresh after one trust changed (median of 9)",
            format!("{:.2} s", pct(&one, 0.5) / 1000.0),
            "—",
        ),
        (
            "league table `GET /api/v1/orgs?sort=-score&limit=100` p50 / p99",
            format!("{:.2} ms / {:.2} ms", league.0, league.1),
            "p99 ≤ 50 ms",
        ),
        (
            "worst 10 by patch score `?sort=patch_score&limit=10` p50 / p99",
            format!("{:.2} ms / {:.2} ms", worst.0, worst.1),
            "p99 ≤ 50 ms",
        ),
        (
            "one organisation's page `GET /api/v1/orgs/{code}` p50 / p99",
            format!("{:.2} ms / {:.2} ms", page.0, page.1),
            "p99 ≤ 50 ms",
        ),
        (
            "its history `GET /api/v1/orgs/{code}/history` p50 / p99",
            format!("{:.2} ms / {:.2} ms", hist.0, hist.1),
            "—",
        ),
        (
            "national view `GET /api/v1/findings?code=legacy.smb.v1` (live aggregation) p50 / p99",
            format!("{:.0} ms / {:.0} ms", nat.0, nat.1),
            "—",
        ),
    ];
    let mut md = String::new();
    md.push_str(&format!(
        "Run of `scripts/bench-score` at {} ({} build; SQLite, WAL, `synchronous=FULL`).\n\
         Store: {n_orgs} organisations (1 nation, 9 regions, {} trusts), {n_assets} assets, \
         {n_findings} findings ({n_open} open), {:.1} GiB{}. Queries go through the real axum \
         router in-process (API-key lookup, SQL, JSON; no TLS or socket), {n} requests each \
         (20 for the national view), sequentially.\n\n",
        fmt_time(time::OffsetDateTime::now_utc()),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        n_orgs - 10,
        db_bytes as f64 / (1u64 << 30) as f64,
        gen_secs
            .map(|s| format!(", generated in {s:.0} s"))
            .unwrap_or_default(),
    ));
    md.push_str("| measure | result | target |\n|---|---|---|\n");
    for (m, r, t) in &rows {
        md.push_str(&format!("| {m} | {r} | {t} |\n"));
    }
    md.push_str(&format!(
        "\nA re-score reads each organisation's open findings through the covering index \
         `findings_score` (plan: `{}`); the league table and organisation page read the \
         precomputed `org_scores` rows and never aggregate findings. Response sizes: league \
         page {} bytes, organisation page {} bytes.\n",
        plan.join("; "),
        league.2,
        page.2
    ));
    println!("{md}");
    if let Some(p) = &a.markdown {
        replace_block(p, &md)?;
        eprintln!("wrote {}", p.display());
    }
    store.close().await;
    Ok(())
}
