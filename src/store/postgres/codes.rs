//! Adding to the inventory of created codes on PostgreSQL, with SQLite's statement
//! (`store::codes`); reads go through `Store`'s reader, the same queries for both.

use super::PgStore;
use crate::domain::{CodeRequest, Ticket};
use crate::store::StoreError;
use crate::store::codes::{INSERT_CODE, RELEASE_CLAIM, bind_code};

impl PgStore {
    /// Adds a newly created code to the inventory and ends `holder`'s claim of it, in one
    /// transaction; returns once it is committed.
    pub(crate) async fn record_code(
        &self,
        code: &CodeRequest,
        ticket: &Ticket,
        holder: &str,
    ) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        bind_code(sqlx::query(INSERT_CODE), code, ticket)
            .execute(&mut *transaction)
            .await?;
        sqlx::query(RELEASE_CLAIM)
            .bind(code.query_string())
            .bind(holder)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use crate::domain::{CodeRequest, Kind, Lifetime, Ticket};
    use crate::store::Store;
    use crate::store::codes::Claim;
    use crate::store::test_postgres::fresh_database;

    fn code(query: &str) -> CodeRequest {
        CodeRequest::from_query(query, Lifetime::new(604_800).unwrap()).unwrap()
    }

    fn ticket(name: &str, lifetime: Option<u32>, age_seconds: i64) -> Ticket {
        let created_at = OffsetDateTime::now_utc() - time::Duration::seconds(age_seconds);
        Ticket {
            ticket: name.into(),
            url: format!("https://weixin.qq.com/q/{name}"),
            expire_seconds: lifetime,
            created_at: created_at.replace_nanosecond(0).unwrap(),
            expires_at: lifetime.map(|l| {
                (created_at + time::Duration::seconds(l.into()))
                    .replace_nanosecond(0)
                    .unwrap()
            }),
        }
    }

    #[actix_web::test]
    async fn the_inventory_keeps_codes_and_gives_back_the_live_ones() {
        let Some(url) = fresh_database("postgres inventory").await else {
            return;
        };
        let (store, _writer) = Store::open(&url, time::UtcOffset::UTC).await.unwrap();
        let poster = code("scene_str=poster&permanent=true");
        let first = ticket("first", None, 0);
        store.record_code(&poster, &first).await.unwrap();
        store
            .record_code(&poster, &ticket("second", None, 0))
            .await
            .unwrap();
        let week = code("scene_id=7&expire_seconds=604800");
        let live = ticket("live", Some(604_800), 60);
        store.record_code(&week, &live).await.unwrap();
        let hour = code("scene_id=8&expire_seconds=3600");
        store
            .record_code(&hour, &ticket("expired", Some(3_600), 7_200))
            .await
            .unwrap();

        // The first permanent code of a scene is the one it keeps.
        let Claim::Recorded(kept) = store.claim_code(&poster).await.unwrap() else {
            panic!("the poster's permanent code is recorded");
        };
        assert_eq!(
            (
                kept.ticket,
                kept.url,
                kept.expire_seconds,
                kept.created_at,
                kept.expires_at
            ),
            (first.ticket, first.url, None, first.created_at, None)
        );
        let other = code("scene_str=other&permanent=true");
        let claim = store.claim_code(&other).await.unwrap();
        assert!(matches!(claim, Claim::Ours), "{claim:?}");

        let mut codes = store.live_codes().await.unwrap();
        codes.sort_by(|a, b| a.0.cmp(&b.0));
        let names: Vec<(&CodeRequest, &str)> =
            codes.iter().map(|(c, t)| (c, t.ticket.as_str())).collect();
        // The cache takes them in order, a later one replacing an earlier one of the same
        // code: the poster's last entry must be its first ticket.
        let poster_last = store
            .live_codes()
            .await
            .unwrap()
            .into_iter()
            .rfind(|(c, _)| *c == poster)
            .map(|(_, t)| t.ticket);
        assert_eq!(poster_last.as_deref(), Some("first"));
        assert!(names.contains(&(&week, "live")), "{names:?}");
        assert!(!names.iter().any(|(_, t)| *t == "expired"), "{names:?}");
        assert!(matches!(week.kind, Kind::Temporary(_)));

        let listed = store.codes_for_scene("7").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].action_name, "QR_SCENE");
        assert_eq!(listed[0].expire_seconds, Some(604_800));
        assert_eq!(store.codes_for_scene("poster").await.unwrap().len(), 2);
    }
}
