//! The PostgreSQL store: the tables of SQLite's store (`migrations/postgres/`, version for
//! version), on one database that several replicas share. Each write is its own
//! transaction, committed before it returns, so an acknowledgement means the same as on
//! SQLite; what replicas must agree on (one row per push, one ticket per code) rests on the
//! database's unique keys and row locks, not on one process being the only writer.
//!
//! Built a part at a time beside the SQLite store, each part tested against a real server
//! (`store::test_postgres`); `Store` serves from it once every part is there, and until
//! then only the tests open it.
#![cfg_attr(not(test), allow(dead_code))]

mod codes;
mod events;
mod labels;

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use super::{StoreError, migrations};

/// Connections each replica keeps at most: pages and pushes share them.
const MAX_CONNECTIONS: u32 = 16;

/// How long a request waits for a connection before it is answered with an error: a
/// database that went away must not hold requests (and WeChat's 5 s) hostage.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// Handles to the database, cheap to clone and shared by every worker.
#[derive(Clone)]
pub(crate) struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://…`) and migrates it.
    pub(crate) async fn open(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await?;
        migrations::POSTGRES.run(&pool).await?;
        Ok(Self { pool })
    }

    /// Closes the pool.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}
