//! Storing pushed and imported events on PostgreSQL, where several replicas write at once:
//! the unique key of a push makes a push delivered to two replicas one row. Writes of events
//! take turns on the event writers' lock (their counting must), and each batch also takes its
//! rows' locks in the order of that key, so that no other writer of those rows can wait for
//! it in a cycle.

use std::collections::HashMap;

use super::PgStore;
use crate::domain::AccountEvent;
use crate::store::aggregates;
use crate::store::{StoreError, Stored, unix_now};

/// SQLSTATE of a deadlock PostgreSQL broke by failing one of the transactions.
const DEADLOCK_DETECTED: &str = "40P01";

/// The batch's rows, one array per column, inserted in the order of the unique key; those
/// stored already (by any replica, or earlier in the batch) are skipped, and the others
/// come back with their ids.
const INSERT_EVENTS: &str = "
    INSERT INTO scan_events
        (scene, event, event_key, openid, ticket, new_follower, created_at, received_at)
    SELECT scene, event, event_key, openid, ticket, new_follower, created_at, $9
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],
                $7::bigint[], $8::bigint[])
         AS e(scene, event, event_key, openid, ticket, new_follower, created_at, position)
    ORDER BY position
    ON CONFLICT (openid, created_at, event, event_key) DO NOTHING
    RETURNING openid, created_at, event, event_key, id";

/// A batch's columns, in the order of the unique key.
#[derive(Default)]
struct Columns<'a> {
    scene: Vec<Option<&'a str>>,
    event: Vec<&'a str>,
    event_key: Vec<&'a str>,
    openid: Vec<&'a str>,
    ticket: Vec<Option<&'a str>>,
    new_follower: Vec<i64>,
    created_at: Vec<i64>,
    position: Vec<i64>,
}

impl<'a> Columns<'a> {
    fn of(events: &[&'a AccountEvent]) -> Self {
        let mut columns = Columns::default();
        for (position, event) in (0..).zip(events) {
            columns.scene.push(event.scene.as_deref());
            columns.event.push(event.kind.as_str());
            columns.event_key.push(&event.event_key);
            columns.openid.push(&event.openid);
            columns.ticket.push(event.ticket.as_deref());
            columns
                .new_follower
                .push(i64::from(event.is_new_follower()));
            columns.created_at.push(event.created_at);
            columns.position.push(position);
        }
        columns
    }
}

impl PgStore {
    /// Stores events, pushed or imported, in one transaction; returns once it is committed,
    /// with one outcome per event, in order: `New` for the one delivery of a push that
    /// became its row, whichever replica received it, `Duplicate` for every other.
    pub(crate) async fn store_events(
        &self,
        events: &[AccountEvent],
    ) -> Result<Vec<Stored>, StoreError> {
        match self.insert_events(events).await {
            // Another replica's batch took a lock this one needed while holding one it
            // needs: only possible when a batch's order differs from the key's (it never
            // should), and worth one more try, not a loop.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(DEADLOCK_DETECTED) => {
                log::warn!(
                    "storing {} events met a deadlock; trying once more",
                    events.len()
                );
                Ok(self.insert_events(events).await?)
            }
            outcome => Ok(outcome?),
        }
    }

    async fn insert_events(&self, events: &[AccountEvent]) -> Result<Vec<Stored>, sqlx::Error> {
        let mut sorted: Vec<&AccountEvent> = events.iter().collect();
        sorted.sort_by(|a, b| a.identity().cmp(&b.identity()));
        let columns = Columns::of(&sorted);
        let mut transaction = self.begin_event_write().await?;
        let rows: Vec<(String, i64, String, String, i64)> = sqlx::query_as(INSERT_EVENTS)
            .bind(&columns.scene)
            .bind(&columns.event)
            .bind(&columns.event_key)
            .bind(&columns.openid)
            .bind(&columns.ticket)
            .bind(&columns.new_follower)
            .bind(&columns.created_at)
            .bind(&columns.position)
            .bind(unix_now())
            .fetch_all(&mut *transaction)
            .await?;
        // An event is new if its row came back; of equal events, only the first.
        let mut added: HashMap<(&str, i64, &str, &str), i64> = rows
            .iter()
            .map(|(openid, at, event, key, id)| {
                ((openid.as_str(), *at, event.as_str(), key.as_str()), *id)
            })
            .collect();
        let mut new = Vec::with_capacity(added.len());
        let outcomes = events
            .iter()
            .map(|event| match added.remove(&event.identity()) {
                Some(id) => {
                    new.push((id, event));
                    Stored::New
                }
                None => Stored::Duplicate,
            })
            .collect();
        // In the same transaction: a committed event is a counted event.
        aggregates::count_events(&mut *transaction, &new, self.offset_seconds).await?;
        transaction.commit().await?;
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventKind, SceneKey};
    use crate::store::test_postgres::fresh_database;

    fn scan(user: usize, at: i64) -> AccountEvent {
        AccountEvent {
            kind: EventKind::Scan,
            openid: format!("o-user-{user}"),
            created_at: at,
            event_key: "12".into(),
            scene: SceneKey::parse("12").ok(),
            ticket: Some("t".into()),
        }
    }

    #[actix_web::test]
    async fn pushes_delivered_to_several_replicas_are_stored_once_without_deadlock() {
        let Some(url) = fresh_database("postgres events").await else {
            return;
        };
        let replicas = futures_util::future::try_join_all(
            (0..3).map(|_| PgStore::open(&url, time::UtcOffset::UTC)),
        )
        .await
        .unwrap();
        // 6,000 pushes, each delivered to every replica, in a different order on each (one
        // backwards), in batches of 3,000 at once: the rows' locks are taken in key order
        // whatever order a batch arrives in.
        let pushes: Vec<AccountEvent> = (0..6_000)
            .map(|n| scan(n, 1_700_000_000 + n as i64))
            .collect();
        let mut orders = vec![pushes.clone(), pushes.iter().rev().cloned().collect()];
        orders.push(
            pushes
                .iter()
                .skip(3_000)
                .chain(&pushes[..3_000])
                .cloned()
                .collect(),
        );
        let outcomes = futures_util::future::try_join_all(replicas.iter().zip(&orders).flat_map(
            |(replica, order)| {
                order
                    .chunks(3_000)
                    .map(move |batch| replica.store_events(batch))
            },
        ))
        .await
        .unwrap();

        let new = outcomes
            .iter()
            .flatten()
            .filter(|o| matches!(o, Stored::New))
            .count();
        assert_eq!(new, 6_000, "each push is new on exactly one replica");
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM scan_events")
            .fetch_one(&replicas[0].pool)
            .await
            .unwrap();
        assert_eq!(rows, 6_000);
        // A retry within one batch is one row too.
        let again = replicas[1]
            .store_events(&[scan(1000, 1), scan(1000, 1)])
            .await
            .unwrap();
        assert!(
            matches!(again[..], [Stored::New, Stored::Duplicate]),
            "{again:?}"
        );
    }
}
