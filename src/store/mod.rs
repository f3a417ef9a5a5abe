//! The database: SQLite through sqlx, migrated at start-up.
//!
//! Writes go through one connection (SQLite has one writer at a time anyway, and a single
//! writer never waits on its own lock); reads use a small pool of their own, which WAL
//! mode lets run beside the writer. Scan events and new codes go through
//! [`writer::StoreWriter`], which commits concurrent writes together, so that each
//! acknowledgement is durable without one disk flush per write.

pub mod codes;
pub mod labels;
pub mod stats;
pub mod writer;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use writer::{StoreWriter, Stored, WriterTask};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("storing the event failed: {0}")]
    Write(String),
    #[error("the event writer has stopped")]
    WriterStopped,
}

/// Handles to the database, cheap to clone and shared by every worker.
#[derive(Clone)]
pub struct Store {
    reader: SqlitePool,
    writer: SqlitePool,
    /// Labels as last read or written: every code page shows its scene's label, and this
    /// keeps that off the database. Only this process writes labels, so it stays exact.
    labels: moka::future::Cache<String, Option<String>>,
    /// Bumped by every label change, so that pages rendered with an old label are redone.
    label_generation: Arc<AtomicU64>,
}

impl Store {
    /// Opens (creating it when missing) and migrates the database at `url`
    /// (`sqlite://PATH` or `sqlite::memory:`).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before it returns, so an acknowledged push survives
            // a power cut, not only a crash of this process.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self {
            reader,
            writer,
            labels: moka::future::Cache::new(100_000),
            label_generation: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Changes with every label change.
    pub fn label_generation(&self) -> u64 {
        self.label_generation.load(Ordering::Acquire)
    }

    /// Closes both pools, after the last write has finished.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
