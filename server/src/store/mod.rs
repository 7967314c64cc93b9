//! The store: one SQLite file, `<data dir>/trustwatch.db`, shared by `serve`
//! and the admin commands (WAL, `synchronous=FULL`, foreign keys on, a busy
//! timeout so a writer waits for another instead of failing). The schema is
//! in `server/migrations/` and embedded in the binary; every open runs any
//! pending migration.
//!
//! Invariants of the schema:
//! * Every timestamp is unix milliseconds (UTC) in a BIGINT column.
//! * Secrets (enrolment tokens, API keys) exist only as lowercase hex
//!   SHA-256 of the full secret text; the secret itself is never stored.
//! * An enrolment token's `uses_left` only decreases, and only in the same
//!   transaction that inserts the agent it enrolled.
//! * `reports.report_id` is unique: a report is stored at most once, and its
//!   assets and findings are written in the same transaction as its row.
//! * Assets are keyed by (org, kind, id); findings by (org, asset kind,
//!   asset id, code, subject). `first_seen`/`last_seen` of both are report
//!   `collected_at` instants; `last_seen` never moves backwards and an older
//!   report never overwrites what a newer one said.
//! * A finding is `open` (then `resolved_at` is NULL) or `resolved` (then
//!   `resolved_at` is the `collected_at` of the report that lacked it).
//! * Every row that belongs to an organisation carries its `org` code, and
//!   every query of the API filters on it.
//! * Feeds (OSV, KEV, EPSS, end-of-life) are not per organisation; their
//!   invariants are in [`feeds`]. Findings of collector `match` are the
//!   server's own, kept by [`matched`].
//! * Scores, their history and the stale-agent findings (collector
//!   `server`) are derived data, kept by [`scores`].
//! * Scheduled reports' "last fired" slots are kept by [`schedules`]
//!   (claimed by compare-and-set, so replicas never fire twice), dashboard
//!   sessions (hashes only) by [`sessions`]; [`views`] holds the read
//!   queries of reports and the dashboard.
//!
//! The SQL is kept portable to PostgreSQL: plain types, `ON CONFLICT`
//! upserts, `RETURNING`, and [`sqlx::QueryBuilder`] for dynamic queries.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub mod admin;
pub mod feedcache;
pub mod feeds;
pub mod ingest;
pub mod matched;
pub mod query;
pub mod schedules;
pub mod scores;
pub mod sessions;
pub mod views;

pub use admin::{AgentRow, ApiKeyRole, OrgRow, TokenRejection};
pub use ingest::{IngestOutcome, MatchContext, Received, ReportRows};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "trustwatch.db";
/// How long a statement waits for another writer before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Store failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open database {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("stored data is not what this version expects: {0}")]
    Corrupt(String),
    #[error("organisation {0} already exists")]
    OrgExists(String),
    #[error("organisation {0} does not exist")]
    OrgNotFound(String),
    #[error("agent {0} does not exist")]
    AgentNotFound(String),
}

/// A handle on the database (cheap to clone); its clones share one feed
/// cache.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    feed_cache: std::sync::Arc<feedcache::FeedCache>,
}

impl Store {
    /// Opens (creating if needed, the directory with mode 0700)
    /// `<data_dir>/trustwatch.db` and migrates it.
    pub async fn open_in(data_dir: &Path) -> Result<Self, StoreError> {
        if !data_dir.exists() {
            // Private to the service account: it holds the CA key.
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(data_dir)
                .map_err(|source| StoreError::DataDir {
                    path: data_dir.to_owned(),
                    source,
                })?;
        }
        Self::open(&data_dir.join(DB_FILE)).await
    }

    /// Opens (creating if needed) a database file and migrates it.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|source| StoreError::Open {
                path: path.to_owned(),
                source,
            })?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await
            .map_err(|source| StoreError::Open {
                path: path.to_owned(),
                source,
            })?;
        MIGRATOR.run(&pool).await?;
        Ok(Store {
            pool,
            feed_cache: Default::default(),
        })
    }

    /// The advisory entry lists kept between reports.
    pub fn feed_cache(&self) -> &feedcache::FeedCache {
        &self.feed_cache
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A trivial query, for `/healthz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Waits for checked-out connections and closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// True when a database error is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// True when a database error is a foreign-key violation.
pub(crate) fn is_fk_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}
