//! The single writer: every write to the database (scan events, new codes, scene settings), with
//! group commit, on one connection that is thrown away after any failed write.
//!
//! Each write waits for its own transaction to be committed before its caller answers
//! (`success` to WeChat, a page to staff); writes that arrive while a commit is under way
//! go together into the next transaction. One flush to disk then covers many writes,
//! which is what lets a durable callback keep up with a burst of scans, and a cold start
//! create thousands of codes without queuing behind one fsync each.
//!
//! Why a failed write costs the connection: after some failures (SQLITE_FULL among them)
//! SQLite rolls the transaction back by itself, and a client library that still counts it
//! as open turns the next `BEGIN` into a `SAVEPOINT` inside a transaction that never ends;
//! every later "commit" then returns OK while nothing reaches the disk. So transactions
//! here are plain `BEGIN IMMEDIATE` … `COMMIT` statements (a `BEGIN` inside an open
//! transaction is an error, never a savepoint), and after any error the connection is
//! closed, which rolls back whatever it held, and the next batch opens a new one.
//!
//! A commit is also checked to have gone to the database file the service was started
//! on: a connection keeps writing into a file that was deleted or replaced under it, and
//! those writes vanish at the next start. So after each commit the path must still name
//! the file the connection opened, and a new connection never creates a missing file.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use foldhash::{HashMap, HashMapExt};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Row, SqliteConnection};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use super::labels::LabelCache;
use crate::domain::{AccountEvent, CodeRequest, SceneKey, SettingsChange, Ticket};

/// Most writes in one transaction: bounds the wait of the last one in a batch.
const MAX_BATCH: usize = 512;
/// Writes waiting for the writer before new ones wait for room.
const QUEUE: usize = 8_192;
/// While writes fail, how often the writer tries a write of its own when none comes: a
/// service taken out of rotation by its failing /healthz gets no pushes to try with.
const PROBE_EVERY: Duration = Duration::from_secs(2);

/// Whether a write added or changed a row, or repeated an event already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New,
    Duplicate,
}

/// Why a write was not committed. Shared by every write of the failed batch, hence the
/// `Arc`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteFailure {
    #[error(transparent)]
    Database(Arc<sqlx::Error>),
    #[error(
        "the database file {} was removed or replaced while in use; restore it, or restart \
         scene-qr to create a new one",
        .0.display()
    )]
    FileReplaced(Arc<Path>),
}

impl From<sqlx::Error> for WriteFailure {
    fn from(e: sqlx::Error) -> Self {
        WriteFailure::Database(Arc::new(e))
    }
}

/// A committed write's outcome, or why it was not committed (already logged once per
/// outage by the writer).
type Outcome = Result<Stored, WriteFailure>;

pub(super) enum Job {
    Event {
        event: AccountEvent,
        received_at: i64,
        done: oneshot::Sender<Outcome>,
    },
    /// Events brought in bulk (`scene-qr import-events`), each written exactly as a pushed
    /// one, all in one transaction; answered with one outcome per event, in order.
    Events {
        events: Vec<AccountEvent>,
        received_at: i64,
        done: oneshot::Sender<Result<Vec<Stored>, WriteFailure>>,
    },
    /// Events brought in bulk with no server running (`import-events --server-stopped`):
    /// stored, each once, as [`Job::Events`] stores them, but not counted; the same
    /// transaction marks the statistics to be computed again from the raw events (the
    /// import does so at its end, and any start does so if it never gets there).
    /// Answered with the number of events stored.
    UncountedEvents {
        events: Vec<AccountEvent>,
        received_at: i64,
        done: oneshot::Sender<Result<u64, WriteFailure>>,
    },
    /// A new code for the inventory: its page is shown once this is committed, so that a
    /// restart never creates a code again that the inventory should have remembered.
    Code {
        code: CodeRequest,
        ticket: Ticket,
        done: oneshot::Sender<Outcome>,
    },
    /// A scene's label and group, each set, removed or kept.
    SceneSettings {
        scene: SceneKey,
        change: SettingsChange,
        done: oneshot::Sender<Outcome>,
    },
    /// Every statistics aggregate computed again from the raw events.
    RebuildStatistics { done: oneshot::Sender<Outcome> },
    /// A batch of codes stored, a row's outcome, or the batch's state.
    Batch {
        write: super::batches::BatchWrite,
        done: oneshot::Sender<Outcome>,
    },
}

/// What a committed job wrote: one outcome, one per event, or how many events it added.
enum Written {
    One(Stored),
    Each(Vec<Stored>),
    Added(u64),
}

impl Written {
    /// A single event's outcome; for many, whether any was added.
    fn one(self) -> Stored {
        match self {
            Written::One(stored) => stored,
            Written::Each(each) if each.contains(&Stored::New) => Stored::New,
            Written::Each(_) | Written::Added(0) => Stored::Duplicate,
            Written::Added(_) => Stored::New,
        }
    }

    fn each(self) -> Vec<Stored> {
        match self {
            Written::Each(each) => each,
            Written::One(stored) => vec![stored],
            Written::Added(added) => vec![Stored::New; usize::try_from(added).unwrap_or(0)],
        }
    }

    fn added(self) -> u64 {
        match self {
            Written::Added(added) => added,
            Written::Each(each) => each.iter().filter(|s| **s == Stored::New).count() as u64,
            Written::One(stored) => u64::from(stored == Stored::New),
        }
    }
}

impl Job {
    /// A pushed event and when it was received.
    fn pushed(&self) -> Option<(&AccountEvent, i64)> {
        match self {
            Job::Event {
                event, received_at, ..
            } => Some((event, *received_at)),
            _ => None,
        }
    }

    fn answer(self, outcome: Result<Written, WriteFailure>) {
        // The caller may have given up waiting (the callback's deadline); the write
        // stands all the same, and WeChat's retry will find it stored.
        match self {
            Job::Events { done, .. } => {
                let _ = done.send(outcome.map(Written::each));
            }
            Job::UncountedEvents { done, .. } => {
                let _ = done.send(outcome.map(Written::added));
            }
            Job::Event { done, .. }
            | Job::Code { done, .. }
            | Job::SceneSettings { done, .. }
            | Job::Batch { done, .. }
            | Job::RebuildStatistics { done } => {
                let _ = done.send(outcome.map(Written::one));
            }
        }
    }
}

/// The sending side, inside every [`super::Store`].
#[derive(Clone)]
pub(super) struct Jobs(mpsc::Sender<Job>);

impl Jobs {
    /// Whether the writer has stopped taking writes (after `finish`, or had it died).
    pub(super) fn closed(&self) -> bool {
        self.0.is_closed()
    }

    /// Queues a write built around `done`, and waits until it is committed.
    pub(super) async fn write<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, WriteFailure>>) -> Job,
    ) -> Result<T, StoreError> {
        let (done, outcome) = oneshot::channel();
        self.0
            .send(job(done))
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        match outcome.await {
            Ok(Ok(stored)) => Ok(stored),
            Ok(Err(reason)) => Err(StoreError::Write(reason)),
            Err(_) => Err(StoreError::WriterStopped),
        }
    }
}

/// Whether writes are reaching the disk: what `/healthz` reports.
#[derive(Default)]
pub struct WriteHealth {
    outage: Mutex<Option<Outage>>,
}

/// Writes failing since `since`.
#[derive(Debug, Clone)]
pub struct Outage {
    pub since: OffsetDateTime,
    /// Why the first write failed: the cause, where later failures may only be its
    /// consequences ("unable to open database file" after the file was removed).
    pub reason: String,
    /// Why the latest write failed.
    pub latest: String,
    /// Writes refused since it began.
    pub refused: u64,
}

impl WriteHealth {
    /// The current outage, if writes are failing.
    pub fn outage(&self) -> Option<Outage> {
        self.lock().clone()
    }

    fn failing(&self) -> bool {
        self.lock().is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Outage>> {
        // A panic while holding this lock cannot leave the value half-written: recover it.
        self.outage
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One line when an outage begins and one when it ends, not one per write: a full
    /// disk under a stream of pushes would otherwise fill the log as well.
    pub(super) fn failed(&self, writes: usize, reason: &str) {
        let mut outage = self.lock();
        match outage.as_mut() {
            Some(outage) => {
                outage.refused += writes as u64;
                outage.latest = reason.to_string();
                log::debug!("{writes} more writes refused: {reason}");
            }
            None => {
                log::error!(
                    "database writes are failing: {reason}. Pushes are answered with an error \
                     (WeChat retries them) and saves are refused until a write succeeds again"
                );
                *outage = Some(Outage {
                    since: OffsetDateTime::now_utc(),
                    reason: reason.to_string(),
                    latest: reason.to_string(),
                    refused: writes as u64,
                });
            }
        }
    }

    pub(super) fn succeeded(&self) {
        if let Some(outage) = self.lock().take() {
            let seconds = (OffsetDateTime::now_utc() - outage.since).whole_seconds();
            log::warn!(
                "database writes work again after {seconds} s; {} writes were refused meanwhile",
                outage.refused
            );
        }
    }
}

/// The running writer. It ends after [`WriterTask::finish`], once the writes already
/// queued are committed (or refused). PostgreSQL has none: each write is a transaction of
/// the pool's, committed before it returns.
pub struct WriterTask {
    running: Vec<(actix_web::rt::task::JoinHandle<()>, oneshot::Sender<()>)>,
}

impl WriterTask {
    /// Starts the writer on the current actix/tokio runtime, on `connection` (already
    /// migrated); it opens new connections with `options` after failures.
    pub(super) fn start(
        connection: SqliteConnection,
        options: SqliteConnectOptions,
        health: Arc<WriteHealth>,
        labels: LabelCache,
        offset_seconds: i64,
    ) -> (Jobs, Self) {
        let (jobs, receiver) = mpsc::channel(QUEUE);
        let (stop, stopped) = oneshot::channel();
        let file = FileIdentity::of(options.get_filename());
        let writer = Writer {
            // Created at start-up when missing; a file that disappears later is an outage
            // for an operator to see, not a new empty database to acknowledge scans into.
            options: options.create_if_missing(false),
            connection: Some((connection, file)),
            health,
            labels,
            offset_seconds,
        };
        let handle = actix_web::rt::spawn(writer.run(receiver, stopped));
        let running = vec![(handle, stop)];
        (Jobs(jobs), Self { running })
    }

    /// Other tasks in the writer's place, each stopped the same way: PostgreSQL's
    /// batching of pushes, and its watch of settings saved by other replicas.
    pub(super) fn others(
        running: Vec<(actix_web::rt::task::JoinHandle<()>, oneshot::Sender<()>)>,
    ) -> Self {
        Self { running }
    }

    /// Refuses new writes, commits those queued, and waits (at most `limit`) for the end.
    pub async fn finish(self, limit: std::time::Duration) {
        let mut handles = Vec::with_capacity(self.running.len());
        for (handle, stop) in self.running {
            let _ = stop.send(());
            handles.push(handle);
        }
        let all = futures_util::future::join_all(handles);
        if actix_web::rt::time::timeout(limit, all).await.is_err() {
            log::error!("the database writer did not finish within {limit:?}");
        }
    }
}

struct Writer {
    options: SqliteConnectOptions,
    /// With the file it opened; `None` after a failure, until the next batch opens a new
    /// one.
    connection: Option<(SqliteConnection, Option<FileIdentity>)>,
    health: Arc<WriteHealth>,
    /// Updated here, in commit order, before the save is answered: two saves of one label
    /// answered on two workers would otherwise reach the cache in either order, and a
    /// save whose request went away would never reach it.
    labels: LabelCache,
    /// The UTC offset the statistics count days in.
    offset_seconds: i64,
}

/// Which file a path names (device and inode). `None` for a database with no file
/// (`sqlite::memory:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    device: u64,
    inode: u64,
}

impl FileIdentity {
    fn of(path: &Path) -> Option<Self> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(Self {
            device: metadata.dev(),
            inode: metadata.ino(),
        })
    }
}

impl Writer {
    async fn run(mut self, mut jobs: mpsc::Receiver<Job>, mut stop: oneshot::Receiver<()>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut stopping = false;
        loop {
            let failing = self.health.failing();
            tokio::select! {
                received = jobs.recv_many(&mut batch, MAX_BATCH) => {
                    if received == 0 {
                        break;
                    }
                    self.write(&mut batch).await;
                }
                // An empty batch: the probe write alone (see `commit`).
                _ = tokio::time::sleep(PROBE_EVERY), if failing => {
                    self.write(&mut batch).await;
                }
                asked = &mut stop, if !stopping => {
                    // Only `finish` stops the writer: a dropped handle leaves it running
                    // for as long as there are senders.
                    if asked.is_ok() {
                        // Senders now fail at once; what is queued is still received.
                        jobs.close();
                    }
                    stopping = true;
                }
            }
        }
        if let Some((connection, _)) = self.connection.take()
            && let Err(e) = connection.close().await
        {
            log::warn!("closing the database writer's connection: {e}");
        }
    }

    /// Commits `batch` in one transaction and answers each write.
    async fn write(&mut self, batch: &mut Vec<Job>) {
        match self.commit(batch).await {
            Ok(outcomes) => {
                self.health.succeeded();
                for job in batch.iter() {
                    if let Job::SceneSettings { scene, change, .. } = job
                        && let Some(label) = super::labels::changed_label(change)
                    {
                        self.labels.saved(scene, label).await;
                    }
                }
                for (job, stored) in batch.drain(..).zip(outcomes) {
                    job.answer(Ok(stored));
                }
            }
            Err(e) => {
                // Whatever the failure left in the connection (a transaction SQLite rolled
                // back, or one still open), no later write may run inside it.
                if let Some((connection, _)) = self.connection.take() {
                    let _ = connection.close().await;
                }
                self.health.failed(batch.len(), &e.to_string());
                for job in batch.drain(..) {
                    job.answer(Err(e.clone()));
                }
            }
        }
    }

    async fn commit(&mut self, batch: &[Job]) -> Result<Vec<Written>, WriteFailure> {
        let path = self.options.get_filename();
        let (connection, opened) = match &mut self.connection {
            Some(connection) => connection,
            None => {
                // The file named before and after opening, so that a file swapped in between
                // is not taken for the one opened.
                let before = FileIdentity::of(path);
                let connection = self.options.connect().await?;
                let after = FileIdentity::of(path);
                if before != after {
                    let _ = connection.close().await;
                    return Err(replaced(path));
                }
                self.connection.insert((connection, after))
            }
        };
        // IMMEDIATE: take the write lock now (waiting at most the busy timeout), not at
        // the first insert. A plain statement, so that inside a transaction left open it
        // fails instead of nesting.
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut *connection)
            .await?;
        // The batch's pushed events in one statement, before its other writes: a statement
        // per push would be a round trip to SQLite's thread each.
        let pushed: Vec<(&AccountEvent, i64)> = batch.iter().filter_map(Job::pushed).collect();
        let mut pushed = write_events(connection, &pushed, self.offset_seconds)
            .await?
            .into_iter();
        let mut outcomes = Vec::with_capacity(batch.len());
        for job in batch {
            outcomes.push(write_one(connection, job, &mut pushed, self.offset_seconds).await?);
        }
        if batch.is_empty() {
            // A probe (see `PROBE_EVERY`): a real write, so that it needs what writes need.
            sqlx::query(
                "INSERT INTO write_probe (id, probed_at) VALUES (1, ?)
                 ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at",
            )
            .bind(OffsetDateTime::now_utc().unix_timestamp())
            .execute(&mut *connection)
            .await?;
        }
        // Only a COMMIT that returns OK ends the transaction; anything else throws the
        // connection away (see `write`), so no write is acknowledged unless it is on disk.
        sqlx::raw_sql("COMMIT").execute(&mut *connection).await?;
        if opened.is_some() && FileIdentity::of(path) != *opened {
            return Err(replaced(path));
        }
        Ok(outcomes)
    }
}

fn replaced(path: &Path) -> WriteFailure {
    WriteFailure::FileReplaced(path.into())
}

/// Writes `job`; a pushed event's outcome is the next of `pushed`, the outcomes of the
/// batch's pushed events, written together already.
async fn write_one(
    connection: &mut SqliteConnection,
    job: &Job,
    pushed: &mut impl Iterator<Item = Stored>,
    offset_seconds: i64,
) -> Result<Written, sqlx::Error> {
    match job {
        Job::Event { .. } => pushed
            .next()
            .map(Written::One)
            .ok_or_else(|| sqlx::Error::Protocol("no outcome for a pushed event".into())),
        Job::Events {
            events,
            received_at,
            ..
        } => {
            let events: Vec<_> = events.iter().map(|e| (e, *received_at)).collect();
            Ok(Written::Each(
                write_events(connection, &events, offset_seconds).await?,
            ))
        }
        Job::UncountedEvents {
            events,
            received_at,
            ..
        } => Ok(Written::Added(
            write_uncounted_events(connection, events, *received_at).await?,
        )),
        Job::Code { code, ticket, .. } => {
            super::codes::insert_code(connection, code, ticket).await?;
            Ok(Written::One(Stored::New))
        }
        Job::SceneSettings { scene, change, .. } => {
            super::labels::write_settings::<sqlx::Sqlite>(connection, scene, change).await?;
            Ok(Written::One(Stored::New))
        }
        Job::RebuildStatistics { .. } => {
            super::aggregates::rebuild(connection, offset_seconds).await?;
            Ok(Written::One(Stored::New))
        }
        Job::Batch { write, .. } => {
            super::batches::write_batch::<sqlx::Sqlite>(connection, write).await?;
            Ok(Written::One(Stored::New))
        }
    }
}

/// Rows in one `INSERT` at most (8 values each; SQLite binds up to 32,766). Each
/// statement is one trip to the thread sqlx runs the connection on, and a trip per event
/// cost more than storing the event: two thread switches, each a wait for a core when
/// the machine is busy.
const EVENTS_PER_INSERT: usize = 512;

/// The `INSERT` of 1, 2, 4, ... [`EVENTS_PER_INSERT`] events: a few texts, each
/// prepared once and then reused from the connection's statement cache.
static INSERT_EVENTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut texts = Vec::new();
    let mut rows = 1;
    while rows <= EVENTS_PER_INSERT {
        texts.push(insert_events(
            rows,
            "RETURNING openid, created_at, event, event_key, id",
        ));
        rows *= 2;
    }
    texts
});

/// Stores events, pushed or imported: the one place that says what storing an event
/// means. Each becomes a row unless the same push (user, time, event and key) is stored
/// already, by an earlier write or earlier in `events` (WeChat's retries); the outcomes
/// say which, one per event, in order.
async fn write_events(
    connection: &mut SqliteConnection,
    events: &[(&AccountEvent, i64)],
    offset_seconds: i64,
) -> Result<Vec<Stored>, sqlx::Error> {
    let mut outcomes = Vec::with_capacity(events.len());
    // The events stored now, with their rows' ids.
    let mut new = Vec::with_capacity(events.len());
    let mut rest = events;
    while !rest.is_empty() {
        let size = rest.len().min(EVENTS_PER_INSERT);
        // Down to a power of two: the statement texts there are.
        let (group, later) = rest.split_at(1 << size.ilog2());
        let text = INSERT_EVENTS
            .get(group.len().ilog2() as usize)
            .ok_or_else(|| {
                sqlx::Error::Protocol(format!("no INSERT text for {} events", group.len()))
            })?;
        let mut insert = sqlx::query(text);
        for (event, received_at) in group {
            insert = bind_event(insert, event, *received_at);
        }
        let rows = insert.fetch_all(&mut *connection).await?;
        // The rows added; an event is new if its row is among them, and only the first
        // of two equal events in a group can be.
        let mut added = HashMap::with_capacity(rows.len());
        for row in &rows {
            added.insert(
                (
                    row.try_get::<&str, _>(0)?,
                    row.try_get::<i64, _>(1)?,
                    row.try_get::<&str, _>(2)?,
                    row.try_get::<&str, _>(3)?,
                ),
                row.try_get::<i64, _>(4)?,
            );
        }
        for (e, _) in group {
            match added.remove(&e.identity()) {
                Some(id) => {
                    new.push((id, *e));
                    outcomes.push(Stored::New);
                }
                None => outcomes.push(Stored::Duplicate),
            }
        }
        rest = later;
    }
    // In the same transaction: a committed event is a counted event.
    super::aggregates::count_events(connection, &new, offset_seconds).await?;
    Ok(outcomes)
}

/// Binds an event's row of `scan_events`, in the column order of both group `INSERT`s:
/// (scene, event, event_key, openid, ticket, new_follower, created_at, received_at).
fn bind_event<'q>(
    insert: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    event: &'q AccountEvent,
    received_at: i64,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    insert
        .bind(event.scene.as_deref())
        .bind(event.kind.as_str())
        .bind(&event.event_key)
        .bind(&event.openid)
        .bind(&event.ticket)
        .bind(event.is_new_follower())
        .bind(event.created_at)
        .bind(received_at)
}

/// Rows in one `INSERT` of [`write_uncounted_events`]: the most that SQLite's 32,766
/// parameters allow at 8 a row. Nothing is returned, so each statement costs one trip to
/// SQLite's thread, and fewer, larger ones cost less.
const UNCOUNTED_PER_INSERT: usize = 4_000;

/// The `INSERT` of [`UNCOUNTED_PER_INSERT`] events, the one statement text that a long
/// import reuses from the connection's cache (a last, shorter group gets its own).
static INSERT_UNCOUNTED: LazyLock<String> =
    LazyLock::new(|| insert_events(UNCOUNTED_PER_INSERT, ""));

/// The `INSERT` of `rows` events, each bound by [`bind_event`], that skips those stored
/// already (the unique key of a push), followed by `returning`.
fn insert_events(rows: usize, returning: &str) -> String {
    let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; rows].join(", ");
    format!(
        "INSERT INTO scan_events
             (scene, event, event_key, openid, ticket, new_follower, created_at, received_at)
         VALUES {values}
         ON CONFLICT (openid, created_at, event, event_key) DO NOTHING
         {returning}"
    )
}

/// Stores events as [`write_events`] does, each unless the same push is stored already
/// (by an earlier write or earlier in `events`), without counting them: the statistics
/// are marked, in the same transaction, to be computed again from all raw events. Returns
/// how many were stored. Only an import with no server running writes this way: a
/// server's pages would show the statistics without these events until they are
/// recomputed.
async fn write_uncounted_events(
    connection: &mut SqliteConnection,
    events: &[AccountEvent],
    received_at: i64,
) -> Result<u64, sqlx::Error> {
    // The offset row missing is what makes the next start (or `stats rebuild`, or the
    // import's own end) compute every aggregate again: a crash anywhere after this commit
    // leaves statistics that will be made whole before anything is served from them.
    sqlx::query("DELETE FROM stats_meta")
        .execute(&mut *connection)
        .await?;
    let mut added = 0;
    for group in events.chunks(UNCOUNTED_PER_INSERT) {
        let shorter;
        let text = if group.len() == UNCOUNTED_PER_INSERT {
            INSERT_UNCOUNTED.as_str()
        } else {
            shorter = insert_events(group.len(), "");
            shorter.as_str()
        };
        let mut insert = sqlx::query(text);
        for event in group {
            insert = bind_event(insert, event, received_at);
        }
        added += insert.execute(&mut *connection).await?.rows_affected();
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::str::FromStr;

    use sqlx::sqlite::SqliteJournalMode;

    use super::*;
    use crate::domain::EventKind;

    fn scan(openid: &str) -> AccountEvent {
        AccountEvent {
            kind: EventKind::Scan,
            openid: openid.to_string(),
            created_at: 946_771_200,
            event_key: "door".into(),
            scene: SceneKey::parse("door").ok(),
            ticket: None,
        }
    }

    #[actix_web::test]
    async fn events_in_bulk_are_stored_once_each_whether_pushed_imported_or_repeated() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bulk.db").display());
        let (store, _writer) = crate::store::Store::open(&url, time::UtcOffset::UTC)
            .await
            .unwrap();

        let pushed = store.store_event(scan("ann")).await.unwrap();
        let first = store
            .store_events(vec![scan("bob"), scan("ann"), scan("bob"), scan("cy")])
            .await
            .unwrap();
        let again = store
            .store_events(vec![scan("cy"), scan("dee")])
            .await
            .unwrap();

        use Stored::{Duplicate, New};
        assert_eq!(pushed, New);
        assert_eq!(first, [New, Duplicate, Duplicate, New]);
        assert_eq!(again, [Duplicate, New]);
        let reader = sqlx::SqlitePool::connect(&url).await.unwrap();
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM scan_events")
            .fetch_one(&reader)
            .await
            .unwrap();
        assert_eq!(rows, 4);
    }

    /// SQLite refuses to grow a database past `max_page_count` with SQLITE_FULL, so this
    /// runs everywhere, without root. It fails inserts, not commits: the failing commit on
    /// a really full disk (after which SQLite rolls back by itself) is the fault test
    /// `tests/faults/disk_full.rs`, which needs root to mount a small disk.
    #[actix_web::test]
    async fn after_the_database_is_full_only_committed_writes_are_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("full.db").display());
        let options = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .pragma("max_page_count", "40");
        let mut connection = options.connect().await.unwrap();
        crate::store::migrations::SQLITE
            .run(&mut connection)
            .await
            .unwrap();
        let health = Arc::new(WriteHealth::default());
        let (jobs, _writer) = WriterTask::start(
            connection,
            options,
            health.clone(),
            LabelCache::default(),
            0,
        );

        let mut acknowledged = HashSet::new();
        let mut refused = 0;
        // Rows of ~500 bytes: 40 pages of 4 KiB hold a few hundred; 1,500 overflow them.
        for i in 0..1_500 {
            let openid = format!("{i:0>500}");
            match jobs
                .write(|done| Job::Event {
                    event: scan(&openid),
                    received_at: 0,
                    done,
                })
                .await
            {
                Ok(_) => {
                    acknowledged.insert(openid);
                }
                Err(_) => refused += 1,
            }
        }
        let outage = health.outage();

        let reader = sqlx::SqlitePool::connect(&url).await.unwrap();
        let stored: HashSet<String> = sqlx::query_scalar("SELECT openid FROM scan_events")
            .fetch_all(&reader)
            .await
            .unwrap()
            .into_iter()
            .collect();
        assert!(
            refused > 100,
            "the database never filled: {refused} refused"
        );
        assert!(outage.is_some_and(|o| o.reason.contains("full")));
        let lost: Vec<_> = acknowledged.difference(&stored).collect();
        assert!(
            lost.is_empty(),
            "{} acknowledged and not stored",
            lost.len()
        );
    }
}
