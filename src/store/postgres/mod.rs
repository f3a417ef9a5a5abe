//! The PostgreSQL store: the tables of SQLite's store (`migrations/postgres/`, version for
//! version), on one database that several replicas share. Each write is its own
//! transaction, committed before it returns, so an acknowledgement means the same as on
//! SQLite; what replicas must agree on (one row per push, one ticket per code) rests on the
//! database's unique keys and row locks, not on one process being the only writer.
//!
//! `Store` writes through it and reads through its pool with the queries both backends
//! share; each part is tested against a real server (`store::test_postgres`).

mod aggregate_tables;
mod codes;
mod events;
mod pushes;

mod labels;
mod reachability;
mod tokens;

pub(crate) use pushes::Pushes;
pub(crate) use reachability::{Unreachable, is_connection_error};
pub(crate) use tokens::TokenShare;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};
use sqlx::{PgPool, Postgres, Transaction};
use time::UtcOffset;
use tokio::sync::oneshot;

use super::labels::SETTINGS_VERSION;
use super::{StoreError, aggregates, migrations};

/// How often a replica looks for settings saved by others: a label saved on one replica
/// shows on every replica's pages within this and a page's render.
const SETTINGS_POLL: Duration = Duration::from_secs(1);

/// Connections each replica keeps at most: pages and pushes share them.
const MAX_CONNECTIONS: u32 = 16;

/// How long a request waits for a connection before it is answered with an error: a
/// database that went away must not hold requests (and WeChat's 5 s) hostage.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// Handles to the database, cheap to clone and shared by every worker.
#[derive(Clone)]
pub(crate) struct PgStore {
    pool: PgPool,
    /// The UTC offset statistics count days in, in seconds.
    offset_seconds: i64,
    reachability: reachability::Reachability,
}

/// The transaction-scoped advisory lock that every write of events holds: counting events
/// reads and rewrites rows of aggregates (a user's follows, a scene's day set) that another
/// replica's events may change too, and one writer at a time across replicas keeps the
/// rules of SQLite's single writer. Held for the transaction's milliseconds only.
const EVENT_WRITERS_LOCK: i64 = 0x5343_454e_4551_5201;

impl PgStore {
    /// Connects to the database at `url` (`postgres://…`) and migrates it. Statistics
    /// count days in `utc_offset`; aggregates computed under another offset, or not yet
    /// computed, are computed again from the raw events first (by one replica: the others
    /// wait for its lock, then find them done).
    pub(crate) async fn open(url: &str, utc_offset: UtcOffset) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse()?;
        // One connection first, for its error: the pool's would only say it timed out
        // waiting, where this says why (refused, unknown host, bad password).
        options.connect().await?.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        migrations::POSTGRES.run(&pool).await?;
        let store = Self {
            pool,
            offset_seconds: i64::from(utc_offset.whole_seconds()),
            reachability: reachability::Reachability::default(),
        };
        let mut transaction = store.begin_event_write().await?;
        let counted: Option<i64> = sqlx::query_scalar(aggregates::COUNTED_OFFSET)
            .fetch_optional(&mut *transaction)
            .await?;
        if counted != Some(store.offset_seconds) {
            aggregates::rebuild(&mut *transaction, store.offset_seconds).await?;
        }
        transaction.commit().await?;
        Ok(store)
    }

    /// A transaction that holds [`EVENT_WRITERS_LOCK`].
    async fn begin_event_write(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let mut transaction = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(EVENT_WRITERS_LOCK)
            .execute(&mut *transaction)
            .await?;
        Ok(transaction)
    }

    /// Computes every statistics aggregate again from the raw events; returns once
    /// committed. Other replicas' writes of events wait meanwhile.
    pub(crate) async fn rebuild_statistics(&self) -> Result<(), StoreError> {
        let mut transaction = self.begin_event_write().await?;
        aggregates::rebuild(&mut *transaction, self.offset_seconds).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Watches the settings version every [`SETTINGS_POLL`] until `stop`, and calls
    /// `changed` (awaited) whenever another replica saved settings. A read that cannot reach
    /// the database begins an outage (one log line, and `/healthz` says so) that the next
    /// read to succeed ends; a failed read is tried again at the next poll.
    pub(crate) async fn watch_settings<F, Fut>(self, mut stop: oneshot::Receiver<()>, changed: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut seen: Option<i64> = None;
        loop {
            let version: Result<i64, sqlx::Error> = sqlx::query_scalar(SETTINGS_VERSION)
                .fetch_one(&self.pool)
                .await;
            match version {
                Ok(version) => {
                    self.reachability.reached();
                    if seen.is_some_and(|seen| seen != version) {
                        changed().await;
                    }
                    seen = Some(version);
                }
                Err(e) if is_connection_error(&e) => self.reachability.lost(&e.to_string()),
                Err(_) => {}
            }
            tokio::select! {
                _ = tokio::time::sleep(SETTINGS_POLL) => {}
                _ = &mut stop => return,
            }
        }
    }

    /// Since when the database cannot be reached, if it cannot.
    pub(crate) fn unreachable(&self) -> Option<Unreachable> {
        self.reachability.outage()
    }

    /// The pool, which reads share.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }
}
