//! The database: SQLite through sqlx, migrated at start-up.
//!
//! Every write goes through one connection owned by [`writer`] (SQLite has one writer at
//! a time anyway, and a single writer never waits on its own lock), which commits
//! concurrent writes together so that each acknowledgement is durable without one disk
//! flush per write. Reads use a small pool of their own, which WAL mode lets run beside
//! the writer, and which keeps serving while writes fail.

/// Runs `$body` with `$pool` bound to the reader's own pool (`&SqlitePool` or `&PgPool`):
/// a query written once compiles once for each backend, typed for it.
macro_rules! on_reader {
    ($reader:expr, |$pool:ident| $body:expr) => {
        match $reader {
            $crate::store::Reader::Sqlite($pool) => $body,
            $crate::store::Reader::Postgres($pool) => $body,
        }
    };
}

mod aggregates;
pub mod batches;
pub mod codes;
pub mod labels;
pub mod migrations;
mod postgres;
pub mod stats;
#[cfg(test)]
pub(crate) mod test_postgres;
mod user_sets;
pub mod writer;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, SqlitePool};
use time::UtcOffset;

pub(crate) use postgres::TokenShare;
use postgres::{PgStore, Pushes};
pub use writer::{Outage, Stored, WriteFailure, WriteHealth, WriterTask};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The write was not committed; the writer has logged why.
    #[error("the database could not save this: {0}")]
    Write(#[from] WriteFailure),
    #[error("the database writer has stopped")]
    WriterStopped,
}

impl StoreError {
    /// Whether this is a write that did not reach the disk (as opposed to a failed read).
    pub fn is_write(&self) -> bool {
        matches!(self, StoreError::Write(_) | StoreError::WriterStopped)
    }

    /// Whether the database could not be reached at all (PostgreSQL gone or refusing
    /// connections), rather than failing a statement.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, StoreError::Database(e) if postgres::is_connection_error(e))
    }
}

/// How long a write waits for a lock held by another process before it fails. Short: a
/// push waiting on a lock must still be answered within WeChat's 5 seconds, and a failed
/// write is retried (by WeChat, or by whoever saves) on a fresh connection.
const WRITE_BUSY_TIMEOUT: Duration = Duration::from_millis(2500);

/// Each reader's page cache, in KiB as SQLite's `cache_size` takes it when negative: 64 MiB,
/// 256 MiB for the four readers at most (SQLite's default is 2 MiB).
const READER_CACHE_KIB: i64 = 64 * 1024;

/// The read side of the database: a pool of either backend.
#[derive(Clone)]
pub(crate) enum Reader {
    Sqlite(SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Reader {
    /// `sqlite` or `postgres`, whichever is this reader's dialect: for the few statements
    /// the two backends spell differently.
    fn sql(&self, sqlite: &'static str, postgres: &'static str) -> &'static str {
        match self {
            Reader::Sqlite(_) => sqlite,
            Reader::Postgres(_) => postgres,
        }
    }

    async fn close(&self) {
        on_reader!(self, |pool| pool.close().await);
    }
}

/// Handles to the database, cheap to clone and shared by every worker.
#[derive(Clone)]
pub struct Store {
    reader: Reader,
    writes: Writes,
    health: Arc<WriteHealth>,
    /// Labels as last read or written, and their generation.
    labels: labels::LabelCache,
    /// The UTC offset statistics count days in.
    utc_offset: UtcOffset,
    /// The same, in seconds.
    offset_seconds: i64,
    /// This process among those sharing the database: the holder of its claims.
    instance: String,
    /// The count of permanent codes, as last read (see `codes::PERMANENT_USED_FRESH_FOR`).
    permanent_used: codes::PermanentUsed,
}

impl Store {
    /// Opens (creating it when missing) and migrates the database at `url`
    /// (`sqlite://PATH` or `sqlite::memory:`), and starts its writer on the current
    /// actix runtime. Stop the writer with [`WriterTask::finish`] before [`Store::close`].
    ///
    /// Statistics count days in `utc_offset`. Aggregates computed under another offset,
    /// or not yet computed (the first start after the upgrade that added them), are
    /// computed again from the raw events before anything is served.
    pub async fn open(url: &str, utc_offset: UtcOffset) -> Result<(Self, WriterTask), StoreError> {
        if is_postgres(url) {
            return Self::open_postgres(url, utc_offset).await;
        }
        let offset_seconds = i64::from(utc_offset.whole_seconds());
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before it returns, so an acknowledged push survives
            // a power cut, not only a crash of this process.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(WRITE_BUSY_TIMEOUT);
        let reader_options = options.clone().read_only(true);
        // The writer's statement journals (the pages a many-row INSERT changed, kept to
        // undo that statement alone) in memory rather than in a temporary file: they are
        // a few MB at most and never needed after a crash, and writing them to a file
        // was a large part of the time of writing many events.
        let options = options.pragma("temp_store", "memory");
        // A page cache of 32 MiB for the writer (SQLite's default is 2 MiB): each event
        // touches pages all over the indexes by user (its own row, the user's follows and
        // earlier events), and with the default cache a large import spent a fifth of its
        // time reading them again (bench/README.md).
        let options = options.pragma("cache_size", "-32768");
        let mut connection = options.connect().await?;
        migrations::SQLITE.run(&mut connection).await?;
        if aggregates::counted_offset(&mut connection).await? != Some(offset_seconds) {
            let started = std::time::Instant::now();
            sqlx::raw_sql("BEGIN IMMEDIATE")
                .execute(&mut connection)
                .await?;
            aggregates::rebuild(&mut connection, offset_seconds).await?;
            sqlx::raw_sql("COMMIT").execute(&mut connection).await?;
            log::info!(
                "statistics computed from the stored events for UTC offset {utc_offset} in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        // A statistics page reads megabytes of day sets: with SQLite's 2 MiB cache every
        // page of them came through a read() again on every request (20 ms of the 50
        // busiest scenes' 12 MB at ten million events). A larger cache keeps them. Not a
        // memory-mapped file, which would have been cheaper still: a read error or a file
        // truncated under a mapping is SIGBUS, a crash, where read() returns an error a page
        // can answer with.
        let reader_options = reader_options.pragma("cache_size", format!("-{READER_CACHE_KIB}"));
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(reader_options)
            .await?;
        let health = Arc::new(WriteHealth::default());
        let labels = labels::LabelCache::default();
        let (jobs, writer_task) = WriterTask::start(
            connection,
            options,
            health.clone(),
            labels.clone(),
            offset_seconds,
        );
        let store = Self {
            reader: Reader::Sqlite(reader),
            writes: Writes::Sqlite(jobs),
            health,
            labels,
            utc_offset,
            offset_seconds,
            instance: new_instance(),
            permanent_used: codes::PermanentUsed::default(),
        };
        Ok((store, writer_task))
    }

    /// Connects to the PostgreSQL database at `url`, migrates it and computes its
    /// aggregates if needed ([`PgStore::open`]).
    async fn open_postgres(
        url: &str,
        utc_offset: UtcOffset,
    ) -> Result<(Self, WriterTask), StoreError> {
        let database = PgStore::open(url, utc_offset).await?;
        let labels = labels::LabelCache::default();
        let (stop_pushes, pushes_stopped) = tokio::sync::oneshot::channel();
        let (pushes, batching) = Pushes::start(database.clone(), pushes_stopped);
        let batching = actix_web::rt::spawn(batching);
        let store = Self {
            reader: Reader::Postgres(database.pool().clone()),
            writes: Writes::Postgres(database.clone(), pushes),
            health: Arc::new(WriteHealth::default()),
            labels: labels.clone(),
            utc_offset,
            offset_seconds: i64::from(utc_offset.whole_seconds()),
            instance: new_instance(),
            permanent_used: codes::PermanentUsed::default(),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let watch = database.watch_settings(stopped, move || {
            let labels = labels.clone();
            async move { labels.changed_elsewhere().await }
        });
        let watching = actix_web::rt::spawn(watch);
        let tasks = vec![(batching, stop_pushes), (watching, stop)];
        Ok((store, WriterTask::others(tasks)))
    }

    /// Runs a write on PostgreSQL, recording in the write health whether it was
    /// committed: one log line when writes start failing and one when they work again.
    async fn postgres_write<T>(
        &self,
        write: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match write.await {
            Ok(written) => {
                self.health.succeeded();
                Ok(written)
            }
            Err(StoreError::Database(e)) => {
                self.health.failed(1, &e.to_string());
                Err(StoreError::Write(WriteFailure::Database(Arc::new(e))))
            }
            Err(e) => {
                self.health.failed(1, &e.to_string());
                Err(e)
            }
        }
    }

    /// The UTC offset the statistics count days in: pages show days in no other.
    pub fn utc_offset(&self) -> UtcOffset {
        self.utc_offset
    }

    /// Computes every statistics aggregate again from the raw events (`scene-qr stats
    /// rebuild`); returns once committed. Other writes wait meanwhile.
    pub async fn rebuild_statistics(&self) -> Result<(), StoreError> {
        match &self.writes {
            Writes::Sqlite(jobs) => jobs
                .write(|done| writer::Job::RebuildStatistics { done })
                .await
                .map(|_| ()),
            Writes::Postgres(database, _) => {
                self.postgres_write(database.rebuild_statistics()).await
            }
        }
    }

    /// Stores a pushed event; returns once it is committed to disk.
    pub async fn store_event(
        &self,
        event: crate::domain::AccountEvent,
    ) -> Result<Stored, StoreError> {
        let jobs = match &self.writes {
            Writes::Sqlite(jobs) => jobs,
            Writes::Postgres(_, pushes) => {
                return self.postgres_write(pushes.store(event)).await;
            }
        };
        let received_at = unix_now();
        jobs.write(|done| writer::Job::Event {
            event,
            received_at,
            done,
        })
        .await
    }

    /// Stores events brought in bulk (an import), each as [`Store::store_event`] stores a
    /// pushed one, in one transaction; returns once it is committed, with one outcome per
    /// event, in order. An event repeated within `events` is stored once, as a retried
    /// push is.
    pub async fn store_events(
        &self,
        events: Vec<crate::domain::AccountEvent>,
    ) -> Result<Vec<Stored>, StoreError> {
        let jobs = match &self.writes {
            Writes::Sqlite(jobs) => jobs,
            Writes::Postgres(database, _) => {
                return self.postgres_write(database.store_events(&events)).await;
            }
        };
        let received_at = unix_now();
        jobs.write(|done| writer::Job::Events {
            events,
            received_at,
            done,
        })
        .await
    }

    /// Stores events brought in bulk while no server runs on the database, each as
    /// [`Store::store_events`] would, in one transaction, without counting them in the
    /// statistics: those are marked in the same transaction to be computed again from
    /// the raw events, by [`Store::rebuild_statistics`] or at the next start, whichever
    /// comes first. Returns how many events were stored (the others were duplicates).
    /// PostgreSQL counts them as it stores them, as [`Store::store_events`] does.
    pub async fn store_uncounted_events(
        &self,
        events: Vec<crate::domain::AccountEvent>,
    ) -> Result<u64, StoreError> {
        let jobs = match &self.writes {
            Writes::Sqlite(jobs) => jobs,
            Writes::Postgres(database, _) => {
                let stored = self.postgres_write(database.store_events(&events)).await?;
                let new = stored.iter().filter(|s| matches!(s, Stored::New)).count();
                return Ok(u64::try_from(new).unwrap_or(u64::MAX));
            }
        };
        let received_at = unix_now();
        jobs.write(|done| writer::Job::UncountedEvents {
            events,
            received_at,
            done,
        })
        .await
    }

    /// About how many events are stored (the highest row id: exact unless rows were
    /// deleted). An import with no server running uses it to choose between counting its
    /// events as it stores them and computing the statistics again at its end.
    pub async fn stored_events_estimate(&self) -> Result<u64, StoreError> {
        let highest: Option<i64> = on_reader!(&self.reader, |pool| {
            sqlx::query_scalar("SELECT MAX(id) FROM scan_events")
                .fetch_one(pool)
                .await?
        });
        Ok(highest.map_or(0, |id| u64::try_from(id).unwrap_or(0)))
    }

    /// When the latest stored event was received (Unix seconds): pushes, and events
    /// imported, by the time of their import.
    pub async fn last_event_received_at(&self) -> Result<Option<i64>, StoreError> {
        let latest: Option<i64> = on_reader!(&self.reader, |pool| {
            sqlx::query_scalar("SELECT received_at FROM scan_events ORDER BY id DESC LIMIT 1")
                .fetch_optional(pool)
                .await?
        });
        Ok(latest)
    }

    /// Whether writes are failing right now, and since when.
    pub fn write_outage(&self) -> Option<Outage> {
        let closed = match &self.writes {
            Writes::Sqlite(jobs) => jobs.closed(),
            Writes::Postgres(_, pushes) => pushes.closed(),
        };
        if closed {
            let reason = "the database writer has stopped".to_string();
            return Some(Outage {
                since: time::OffsetDateTime::now_utc(),
                latest: reason.clone(),
                reason,
                refused: 0,
            });
        }
        if let Some(outage) = self.health.outage() {
            return Some(outage);
        }
        let Writes::Postgres(database, _) = &self.writes else {
            return None;
        };
        database.unreachable().map(|unreachable| {
            let reason = format!("the database cannot be reached: {}", unreachable.reason);
            Outage {
                since: unreachable.since,
                latest: reason.clone(),
                reason,
                refused: 0,
            }
        })
    }

    /// Changes with every label change.
    pub fn label_generation(&self) -> u64 {
        self.labels.generation()
    }

    /// Where replicas sharing this database keep the access token of `appid`: `None` on
    /// SQLite, whose one process keeps its token in memory.
    pub(crate) fn token_share(&self, appid: &str) -> Option<TokenShare> {
        match &self.writes {
            Writes::Postgres(database, _) => Some(TokenShare::new(
                database.pool().clone(),
                appid,
                &self.instance,
            )),
            Writes::Sqlite(_) => None,
        }
    }

    /// Closes the read pool (SQLite's writer closes its own connection when it finishes).
    pub async fn close(&self) {
        self.reader.close().await;
    }
}

/// Where writes go.
#[derive(Clone)]
enum Writes {
    /// To SQLite's one writer, which commits concurrent writes together.
    Sqlite(writer::Jobs),
    /// To PostgreSQL, each write a transaction of its own.
    Postgres(PgStore, Pushes),
}

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `url` as it may be shown in a message or a log line: any password in it replaced by
/// `***` (`postgres://user:PASSWORD@host/db`, or a `password=` parameter).
pub fn redacted_url(url: &str) -> String {
    let (mut shown, query) = match url.split_once('?') {
        Some((base, query)) => (base.to_string(), Some(query)),
        None => (url.to_string(), None),
    };
    if let Some(start) = shown.find("://").map(|at| at + 3) {
        let authority_end = shown[start..]
            .find('/')
            .map_or(shown.len(), |end| start + end);
        if let Some(at) = shown[start..authority_end].rfind('@').map(|at| start + at)
            && let Some(colon) = shown[start..at].find(':').map(|colon| start + colon)
        {
            shown.replace_range(colon + 1..at, "***");
        }
    }
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}=***"),
                _ => pair.to_string(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&pairs.join("&"));
    }
    shown
}

/// A name for this process, unique among those sharing a database.
fn new_instance() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Now, in Unix milliseconds.
pub fn unix_now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    i64::try_from(now).unwrap_or(i64::MAX)
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::redacted_url;

    #[test]
    fn a_database_url_is_shown_without_its_password() {
        let cases = [
            ("sqlite://scene-qr.db", "sqlite://scene-qr.db"),
            (
                "sqlite:///var/lib/scene-qr/a@b.db",
                "sqlite:///var/lib/scene-qr/a@b.db",
            ),
            (
                "postgres://scene:s3cr%40t:x@db.internal:5432/scene",
                "postgres://scene:***@db.internal:5432/scene",
            ),
            ("postgres://scene@db/scene", "postgres://scene@db/scene"),
            (
                "postgresql://db/scene?user=scene&password=hunter2&sslmode=require",
                "postgresql://db/scene?user=scene&password=***&sslmode=require",
            ),
        ];
        for (url, shown) in cases {
            assert_eq!(redacted_url(url), shown, "{url}");
        }
    }
}
