//! Channel statistics: scans, new followers and unique users per scene.
//!
//! Everything is counted from `scan_events` in SQL; openids are counted, never returned.

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError};
use crate::domain::TimeRange;

/// One scene's line in the statistics.
#[derive(Debug, Clone, Serialize)]
pub struct SceneStats {
    pub scene: String,
    pub label: Option<String>,
    /// Kinds of the codes created for the scene: `temporary`, `permanent`, both, or none
    /// (a scene scanned from a code made elsewhere).
    pub kinds: Vec<String>,
    /// Scans of the scene's codes, by followers and by new followers alike.
    pub scans: i64,
    /// Follows that came from scanning the scene's codes.
    pub new_followers: i64,
    /// Distinct users who scanned.
    pub unique_users: i64,
    /// Time of the last scan in the range, Unix seconds.
    pub last_scan: Option<i64>,
}

/// Totals over a range.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Totals {
    pub scans: i64,
    pub new_followers: i64,
    pub unique_users: i64,
    /// Follows that did not come from a code.
    pub other_follows: i64,
    pub unfollows: i64,
}

impl Store {
    /// Every scene that has a code, a label or a scan in the range, with its numbers.
    pub async fn scene_stats(&self, range: TimeRange) -> Result<Vec<SceneStats>, StoreError> {
        let rows = sqlx::query(
            "WITH counts AS (
                 SELECT scene,
                        COUNT(*) AS scans,
                        SUM(new_follower) AS new_followers,
                        COUNT(DISTINCT openid) AS unique_users,
                        MAX(created_at) AS last_scan
                 FROM scan_events
                 WHERE scene IS NOT NULL AND created_at >= ?1 AND created_at < ?2
                 GROUP BY scene
             ),
             scenes AS (
                 SELECT scene FROM counts
                 UNION SELECT scene FROM codes
                 UNION SELECT scene FROM labels
             )
             SELECT s.scene,
                    l.label,
                    (SELECT group_concat(kind) FROM
                        (SELECT DISTINCT kind FROM codes WHERE codes.scene = s.scene ORDER BY kind))
                        AS kinds,
                    COALESCE(c.scans, 0) AS scans,
                    COALESCE(c.new_followers, 0) AS new_followers,
                    COALESCE(c.unique_users, 0) AS unique_users,
                    c.last_scan
             FROM scenes s
             LEFT JOIN counts c ON c.scene = s.scene
             LEFT JOIN labels l ON l.scene = s.scene",
        )
        .bind(range.from)
        .bind(range.to)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let kinds: Option<String> = row.try_get("kinds")?;
                Ok(SceneStats {
                    scene: row.try_get("scene")?,
                    label: row.try_get("label")?,
                    kinds: kinds
                        .map(|k| k.split(',').map(str::to_string).collect())
                        .unwrap_or_default(),
                    scans: row.try_get("scans")?,
                    new_followers: row.try_get("new_followers")?,
                    unique_users: row.try_get("unique_users")?,
                    last_scan: row.try_get("last_scan")?,
                })
            })
            .collect()
    }

    /// Totals over the range, for one scene or for all.
    pub async fn totals(
        &self,
        range: TimeRange,
        scene: Option<&str>,
    ) -> Result<Totals, StoreError> {
        let row = sqlx::query(
            "SELECT
                 COALESCE(SUM(scene IS NOT NULL), 0) AS scans,
                 COALESCE(SUM(new_follower), 0) AS new_followers,
                 COUNT(DISTINCT CASE WHEN scene IS NOT NULL THEN openid END) AS unique_users,
                 COALESCE(SUM(scene IS NULL AND event = 'subscribe'), 0) AS other_follows,
                 COALESCE(SUM(event = 'unsubscribe'), 0) AS unfollows
             FROM scan_events
             WHERE created_at >= ?1 AND created_at < ?2 AND (?3 IS NULL OR scene = ?3)",
        )
        .bind(range.from)
        .bind(range.to)
        .bind(scene)
        .fetch_one(&self.reader)
        .await?;
        Ok(Totals {
            scans: row.try_get("scans")?,
            new_followers: row.try_get("new_followers")?,
            unique_users: row.try_get("unique_users")?,
            other_follows: row.try_get("other_follows")?,
            unfollows: row.try_get("unfollows")?,
        })
    }

    /// Scans per day, for one scene or for all: `(day number, scans)` for the days that
    /// have any, where day `n` starts at Unix time `n * 86400 - offset_seconds`.
    pub async fn daily_scans(
        &self,
        range: TimeRange,
        offset_seconds: i64,
        scene: Option<&str>,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT (created_at + ?3) / 86400 AS day, COUNT(*) AS scans
             FROM scan_events
             WHERE scene IS NOT NULL AND created_at >= ?1 AND created_at < ?2
               AND (?4 IS NULL OR scene = ?4)
             GROUP BY day ORDER BY day",
        )
        .bind(range.from)
        .bind(range.to)
        .bind(offset_seconds)
        .bind(scene)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("day")?, row.try_get("scans")?)))
            .collect()
    }
}
