//! Whether this replica reaches its database, as the watch of the settings version finds out
//! every second: an outage becomes one log line when it begins and one when it ends, and
//! `/healthz` reports it even while no write is being refused.

use std::sync::{Arc, Mutex};

use time::OffsetDateTime;

/// Since when, and why, the database cannot be reached.
#[derive(Debug, Clone)]
pub(crate) struct Unreachable {
    pub(crate) since: OffsetDateTime,
    pub(crate) reason: String,
}

#[derive(Clone, Default)]
pub(crate) struct Reachability {
    /// A std mutex: held to swap a value, never across an `.await`.
    unreachable: Arc<Mutex<Option<Unreachable>>>,
}

impl Reachability {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Unreachable>> {
        // Nothing can be left half-written under this lock: recover it after a panic.
        self.unreachable
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The database could not be reached, for `reason`.
    pub(crate) fn lost(&self, reason: &str) {
        let mut unreachable = self.lock();
        if unreachable.is_none() {
            log::error!(
                "the database cannot be reached: {reason}. Pages of codes already made are \
                 still served; pushes are answered with an error (WeChat retries them) and \
                 saves are refused until it is back"
            );
            *unreachable = Some(Unreachable {
                since: OffsetDateTime::now_utc(),
                reason: reason.to_string(),
            });
        }
    }

    /// The database answered.
    pub(crate) fn reached(&self) {
        if let Some(outage) = self.lock().take() {
            let seconds = (OffsetDateTime::now_utc() - outage.since).whole_seconds();
            log::warn!("the database can be reached again after {seconds} s");
        }
    }

    pub(crate) fn outage(&self) -> Option<Unreachable> {
        self.lock().clone()
    }
}

/// Whether `error` means the database is out of reach (as opposed to a statement it
/// refused): no connection in time, a connection broken, the server shutting down (SQLSTATE
/// classes 08 and 57P), or a new connection refused: by a database closed to connections
/// for maintenance (55000, `ALLOW_CONNECTIONS false`), dropped (3D000), or no longer
/// accepting the credentials (class 28).
pub(crate) fn is_connection_error(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database) => database.code().is_some_and(|code| {
            ["08", "57P", "28"]
                .iter()
                .any(|class| code.starts_with(class))
                || code == "55000"
                || code == "3D000"
        }),
        _ => false,
    }
}
