//! Channel statistics: scans, new followers, unique users and lost followers per scene,
//! and over a [`Scope`]: all scenes, one, or a group's.
//!
//! Everything comes from the aggregates the writer keeps per scene and day (see
//! `aggregates` and `user_sets`), never from the raw events, so a page costs the same
//! however many events are stored. Openids are counted, never returned.

use std::collections::HashMap;

use futures_util::TryStreamExt;
use serde::Serialize;

use super::user_sets::{PART_REGISTERS, Sketch, union_size};
use super::{Store, StoreError, aggregates};
use crate::domain::TimeRange;

/// One scene's line in the statistics.
#[derive(Debug, Clone, Serialize)]
pub struct SceneStats {
    pub scene: String,
    pub label: Option<String>,
    /// The group staff put the scene in, if any.
    pub group: Option<String>,
    /// Kinds of the codes created for the scene: `temporary`, `permanent`, both, or none
    /// (a scene scanned from a code made elsewhere).
    pub kinds: Vec<String>,
    /// Scans of the scene's codes, by followers and by new followers alike.
    pub scans: i64,
    /// Follows that came from scanning the scene's codes.
    pub new_followers: i64,
    /// Distinct users who scanned; `None` until counted. Counting is the costly part of a
    /// line (the union of the scene's day sets, which grow with its scans), so a page counts
    /// only the lines it shows ([`Store::count_unique_users`]).
    pub unique_users: Option<i64>,
    /// Of the new followers, those who unfollowed since (before following again).
    pub lost: i64,
    /// Time of the last scan in the range, Unix seconds.
    pub last_scan: Option<i64>,
}

/// A line of [`Store::scene_stats`] as either backend returns it.
#[derive(sqlx::FromRow)]
struct SceneRecord {
    scene: String,
    label: Option<String>,
    group_name: Option<String>,
    /// The kinds of its codes, comma-separated.
    kinds: Option<String>,
    scans: i64,
    new_followers: i64,
    lost: i64,
    last_scan: Option<i64>,
}

impl From<SceneRecord> for SceneStats {
    fn from(record: SceneRecord) -> Self {
        SceneStats {
            scene: record.scene,
            label: record.label,
            group: record.group_name,
            kinds: record
                .kinds
                .map(|k| k.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
            scans: record.scans,
            new_followers: record.new_followers,
            unique_users: None,
            lost: record.lost,
            last_scan: record.last_scan,
        }
    }
}

/// Totals over a range.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Totals {
    pub scans: i64,
    pub new_followers: i64,
    pub unique_users: i64,
    /// Whether `unique_users` is an estimate (over all scenes; a scene's is exact).
    #[serde(skip)]
    pub unique_users_estimated: bool,
    /// Of the new followers, those who unfollowed since (before following again).
    pub lost: i64,
    /// Follows that did not come from a code.
    pub other_follows: i64,
    pub unfollows: i64,
}

/// Up to how many scans a range may have for the totals' unique users to be counted
/// exactly: the scenes' day sets then hold at most that many users together (a user is in a
/// scene's day set for a scan of that day), whose union costs a few milliseconds, where a
/// busy account's month (millions) would cost a second, and the sketches answer instead.
/// Scans bound the work without reading the sets: summing their sizes read every set's
/// bytes (stored in the rows), which grew with the events stored.
const EXACT_UNION_LIMIT: i64 = 100_000;

/// How many scenes' unique users [`Store::count_unique_users`] reads in one query: a page's
/// 50 lines in one, and the CSV streams its lines this many at a time.
pub const FEW_SCENES: usize = 200;

/// The day sets of the rows a query groups, concatenated into one blob (or `NULL` for no
/// row), on SQLite and on PostgreSQL. SQLite's `group_concat` treats a blob as text and
/// keeps its bytes as they are; the cast gives a blob back.
const USERS_CONCATENATED: (&str, &str) = (
    "CAST(group_concat(users, '') AS BLOB)",
    "string_agg(users, ''::bytea)",
);

/// The same for sketch parts' registers.
const REGISTERS_CONCATENATED: (&str, &str) = (
    "CAST(group_concat(registers, '') AS BLOB)",
    "string_agg(registers, ''::bytea)",
);

/// The number of distinct users in `sets`, day sets concatenated.
fn users_in(sets: Option<&[u8]>) -> i64 {
    let users = union_size(sets);
    i64::try_from(users).unwrap_or(i64::MAX)
}

/// Of the new followers of a range who followed at least N days ago, the share still
/// following N days after they followed; `None` when none followed that long ago.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CohortRetention {
    pub d1: Option<f64>,
    pub d7: Option<f64>,
    pub d30: Option<f64>,
}

/// One day's counts: scans and new followers of the day, and how many of that day's new
/// followers were lost since.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayCounts {
    pub scans: i64,
    pub new_followers: i64,
    pub lost: i64,
}

/// The scenes a total counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    All,
    Scene(&'a str),
    /// The scenes of the group of this name.
    Group(&'a str),
}

impl<'a> Scope<'a> {
    /// The condition on a `scene` column that keeps the scope's scenes, written with the
    /// scope's value as parameter `$n` (bound by [`Scope::bind`], the query's last): a
    /// query of its own for each scope, rather than one with `($3 IS NULL OR scene = $3)`,
    /// which keeps SQLite off the scene indexes.
    fn condition(self, n: usize) -> String {
        match self {
            Scope::All => "scene IS NOT NULL".to_string(),
            Scope::Scene(_) => format!("scene = ${n}"),
            Scope::Group(_) => {
                format!("scene IN (SELECT scene FROM scene_groups WHERE group_name = ${n})")
            }
        }
    }

    /// Binds the scope's value to `query`, as its last parameter: all scenes have none
    /// (their condition names no parameter, and PostgreSQL refuses a parameter too many).
    fn bind<'q, DB, O>(
        self,
        query: sqlx::query::QueryAs<'q, DB, O, <DB as sqlx::Database>::Arguments<'q>>,
    ) -> sqlx::query::QueryAs<'q, DB, O, <DB as sqlx::Database>::Arguments<'q>>
    where
        DB: sqlx::Database,
        &'a str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        'a: 'q,
    {
        match self.value() {
            Some(value) => query.bind(value),
            None => query,
        }
    }

    /// The scope's day counts of a range of days `[$1, $2)`, as the `FROM` and `WHERE` of
    /// a query of `day`, `scans`, `new_followers` and `lost`: over every scene, the sums
    /// kept per day (a row a day); else the scope's scenes' days, through the primary key by
    /// scene.
    fn day_counts(self) -> String {
        match self {
            Scope::All => "account_days WHERE day >= $1 AND day < $2".to_string(),
            scope => format!(
                "scene_days WHERE day >= $1 AND day < $2 AND {}",
                scope.condition(3)
            ),
        }
    }

    /// The value of the scope's parameter (none for all scenes, whose condition leaves it out).
    fn value(self) -> Option<&'a str> {
        match self {
            Scope::All => None,
            Scope::Scene(value) | Scope::Group(value) => Some(value),
        }
    }
}

/// Retained new followers and their share, from the counts.
pub fn retention(new_followers: i64, lost: i64) -> (i64, Option<f64>) {
    let retained = new_followers - lost;
    let share = (new_followers > 0).then(|| retained as f64 / new_followers as f64);
    (retained, share)
}

impl Store {
    /// Whether any event was ever counted for `scene` (one row of `counted_scenes`).
    pub async fn scene_is_counted(&self, scene: &str) -> Result<bool, StoreError> {
        // COUNT: a BIGINT on both backends (a bare `1` is an INTEGER on PostgreSQL), and at
        // most 1 here, `scene` being the key.
        let counted: i64 = on_reader!(&self.reader, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM counted_scenes WHERE scene = $1")
                .bind(scene)
                .fetch_one(pool)
                .await?
        });
        Ok(counted > 0)
    }

    /// Every scene that has a code, a label, a group or a scan in the range, with its
    /// numbers but for unique users (left `None`): these come from `scene_days`, scene after
    /// scene in `counted_scenes`' order (CROSS JOIN keeps SQLite to that order, in which each
    /// scene's days of the range are one search of the primary key and come grouped), so
    /// they cost the same however many events are stored.
    pub async fn scene_stats(&self, range: TimeRange) -> Result<Vec<SceneStats>, StoreError> {
        // The scenes in two halves at once, on two readers: summing a month of day counts
        // for thousands of scenes is most of a page's time, and the machine has more than
        // one core.
        let middle: Option<String> = on_reader!(&self.reader, |pool| {
            sqlx::query_scalar(
                "SELECT scene FROM counted_scenes ORDER BY scene
                 LIMIT 1 OFFSET (SELECT COUNT(*) / 2 FROM counted_scenes)",
            )
            .fetch_optional(pool)
            .await?
        });
        let Some(middle) = middle else {
            return self.scene_stats_between(range, (None, None)).await;
        };
        let (mut lines, upper) = futures_util::future::try_join(
            self.scene_stats_between(range, (None, Some(&middle))),
            self.scene_stats_between(range, (Some(&middle), None)),
        )
        .await?;
        lines.extend(upper);
        Ok(lines)
    }

    /// [`Store::scene_stats`] of the scenes from `first` (included) to `end` (left out),
    /// `None` for no bound.
    async fn scene_stats_between(
        &self,
        range: TimeRange,
        (first, end): (Option<&str>, Option<&str>),
    ) -> Result<Vec<SceneStats>, StoreError> {
        let (from_day, to_day) = self.days(range);
        // The kinds of code are grouped once and joined: a subquery per scene cost a
        // look-up in `codes` for each of thousands of lines. SQLite's CROSS JOIN keeps it
        // walking `counted_scenes` first; PostgreSQL plans the join itself.
        let sql = format!(
            "WITH counts AS (
                 SELECT s.scene,
                        CAST(SUM(d.scans) AS BIGINT) AS scans,
                        CAST(SUM(d.new_followers) AS BIGINT) AS new_followers,
                        CAST(SUM(d.lost) AS BIGINT) AS lost,
                        MAX(d.last_scan) AS last_scan
                 FROM counted_scenes AS s {join} scene_days AS d
                     ON d.scene = s.scene AND d.day >= $1 AND d.day < $2
                 WHERE ($3 IS NULL OR s.scene >= $3) AND ($4 IS NULL OR s.scene < $4)
                 GROUP BY s.scene
             ),
             kinds AS (
                 SELECT scene, string_agg(kind, ',' ORDER BY kind) AS kinds
                 FROM (SELECT DISTINCT scene, kind FROM codes) AS scene_kinds
                 GROUP BY scene
             ),
             scenes AS (
                 SELECT scene FROM counts WHERE scans > 0 OR lost > 0
                 UNION SELECT scene FROM codes
                 UNION SELECT scene FROM labels
                 UNION SELECT scene FROM scene_groups
             )
             SELECT s.scene,
                    l.label,
                    g.group_name,
                    k.kinds,
                    COALESCE(c.scans, 0) AS scans,
                    COALESCE(c.new_followers, 0) AS new_followers,
                    COALESCE(c.lost, 0) AS lost,
                    c.last_scan
             FROM scenes s
             LEFT JOIN counts c ON c.scene = s.scene
             LEFT JOIN kinds k ON k.scene = s.scene
             LEFT JOIN labels l ON l.scene = s.scene
             LEFT JOIN scene_groups g ON g.scene = s.scene
             WHERE ($3 IS NULL OR s.scene >= $3) AND ($4 IS NULL OR s.scene < $4)",
            join = self.reader.sql("CROSS JOIN", "JOIN"),
        );
        let records: Vec<SceneRecord> = on_reader!(&self.reader, |pool| {
            sqlx::query_as(&sql)
                .bind(from_day)
                .bind(to_day)
                .bind(first)
                .bind(end)
                .fetch_all(pool)
                .await?
        });
        Ok(records.into_iter().map(SceneStats::from).collect())
    }

    /// Counts the unique users of each of `lines` over the range, [`FEW_SCENES`] lines a
    /// query, each through the index by scene and over its own days only.
    pub async fn count_unique_users(
        &self,
        range: TimeRange,
        lines: &mut [SceneStats],
    ) -> Result<(), StoreError> {
        for chunk in lines.chunks_mut(FEW_SCENES) {
            // Two halves at once, on two readers and two threads: a page of the busiest
            // scenes reads and counts megabytes of day sets, and the machine has more than
            // one core. Every other line to each, so that a page sorted by traffic splits
            // evenly.
            let half = |first: usize| -> Vec<&str> {
                chunk
                    .iter()
                    .skip(first)
                    .step_by(2)
                    .map(|line| line.scene.as_str())
                    .collect()
            };
            let (evens, odds) = (half(0), half(1));
            let (mut users, odd_users) = futures_util::future::try_join(
                self.unique_users_of_scenes(range, &evens),
                self.unique_users_of_scenes(range, &odds),
            )
            .await?;
            users.extend(odd_users);
            for line in chunk {
                line.unique_users = Some(users.get(&line.scene).copied().unwrap_or(0));
            }
        }
        Ok(())
    }

    /// Totals over the range, of the scope's scenes.
    pub async fn totals(&self, range: TimeRange, scope: Scope<'_>) -> Result<Totals, StoreError> {
        let (from_day, to_day) = self.days(range);
        let counts_sql = format!(
            "SELECT CAST(COALESCE(SUM(scans), 0) AS BIGINT),
                    CAST(COALESCE(SUM(new_followers), 0) AS BIGINT),
                    CAST(COALESCE(SUM(lost), 0) AS BIGINT)
             FROM {}",
            scope.day_counts()
        );
        let (scans, new_followers, lost): (i64, i64, i64) = on_reader!(&self.reader, |pool| {
            scope
                .bind(sqlx::query_as(&counts_sql).bind(from_day).bind(to_day))
                .fetch_one(pool)
                .await?
        });
        let counts = DayCounts {
            scans,
            new_followers,
            lost,
        };
        self.totals_of(range, scope, counts).await
    }

    /// Totals over the range of the scope's scenes, whose scans, new followers and lost
    /// followers over the range are `counts`: summed by a caller that holds the scenes'
    /// lines already, which saves a pass over the range's counts.
    pub async fn totals_of(
        &self,
        range: TimeRange,
        scope: Scope<'_>,
        counts: DayCounts,
    ) -> Result<Totals, StoreError> {
        let (from_day, to_day) = self.days(range);
        let scans = counts.scans;
        let (unique_users, unique_users_estimated) = match scope {
            Scope::All => self.unique_users_of_all(range, scans).await?,
            scope => (self.unique_users_of(range, scope).await?, false),
        };
        // Follows not from a code and unfollows belong to no scene.
        let (other_follows, unfollows) = match scope {
            Scope::Scene(_) | Scope::Group(_) => (0, 0),
            Scope::All => {
                on_reader!(&self.reader, |pool| {
                    sqlx::query_as::<_, (i64, i64)>(
                        "SELECT CAST(COALESCE(SUM(other_follows), 0) AS BIGINT),
                                CAST(COALESCE(SUM(unfollows), 0) AS BIGINT)
                         FROM account_days WHERE day >= $1 AND day < $2",
                    )
                    .bind(from_day)
                    .bind(to_day)
                    .fetch_one(pool)
                    .await?
                })
            }
        };
        Ok(Totals {
            scans,
            new_followers: counts.new_followers,
            unique_users,
            unique_users_estimated,
            lost: counts.lost,
            other_follows,
            unfollows,
        })
    }

    /// Distinct users who scanned over the range, per group: `None` for the scenes in no
    /// group. A user who scanned two scenes of a group counts once for it.
    pub async fn group_unique_users(
        &self,
        range: TimeRange,
    ) -> Result<Vec<(Option<String>, i64)>, StoreError> {
        let (from_day, to_day) = self.days(range);
        let mut sets: HashMap<Option<String>, Vec<Vec<u8>>> = HashMap::new();
        on_reader!(&self.reader, |pool| {
            let mut rows = sqlx::query_as::<_, (Option<String>, Vec<u8>)>(
                "SELECT g.group_name, u.users
                 FROM scene_day_users u LEFT JOIN scene_groups g ON g.scene = u.scene
                 WHERE u.day >= $1 AND u.day < $2",
            )
            .bind(from_day)
            .bind(to_day)
            .fetch(pool);
            while let Some((group, users)) = rows.try_next().await? {
                sets.entry(group).or_default().push(users);
            }
        });
        Ok(sets
            .into_iter()
            .map(|(group, days)| {
                let users = union_size(days.iter().map(Vec::as_slice));
                (group, i64::try_from(users).unwrap_or(i64::MAX))
            })
            .collect())
    }

    /// D1, D7 and D30 retention of the new followers of the range from the scope's scenes,
    /// as of `now` (Unix seconds). For a scene or a group: over all scenes it would read
    /// every scene's days and every follow of a day, and no page asks for it.
    pub async fn cohort_retention(
        &self,
        range: TimeRange,
        scope: Scope<'_>,
        now: i64,
    ) -> Result<CohortRetention, StoreError> {
        let mut shares = [None; 3];
        for (share, days) in shares.iter_mut().zip(aggregates::RETENTION_DAYS) {
            let (followed, lost) = self.cohort_losses(range, scope, days, now).await?;
            *share = retention(followed, lost).1;
        }
        let [d1, d7, d30] = shares;
        Ok(CohortRetention { d1, d7, d30 })
    }

    /// Of the scope's new followers of the range who followed at least `days` days before
    /// `now`, how many there are and how many were lost within `days` days of following.
    /// The days that ended by then are summed from `scene_days`; only the follows of the
    /// day `days` days before `now`, part of which is too recent, are read one by one.
    async fn cohort_losses(
        &self,
        range: TimeRange,
        scope: Scope<'_>,
        days: i64,
        now: i64,
    ) -> Result<(i64, i64), StoreError> {
        let window = days * aggregates::SECONDS_PER_DAY;
        let latest_follow = now - window;
        let (from_day, to_day) = self.days(range);
        let cut_day = aggregates::day_of(latest_follow, self.offset_seconds);
        let whole_days_sql = format!(
            "SELECT CAST(COALESCE(SUM(new_followers), 0) AS BIGINT),
                    CAST(COALESCE(SUM(lost_in_{days}d), 0) AS BIGINT)
             FROM scene_days WHERE day >= $1 AND day < $2 AND {}",
            scope.condition(3)
        );
        let whole_days_end = to_day.min(cut_day);
        let (mut followed, mut lost): (i64, i64) = on_reader!(&self.reader, |pool| {
            scope
                .bind(
                    sqlx::query_as(&whole_days_sql)
                        .bind(from_day)
                        .bind(whole_days_end),
                )
                .fetch_one(pool)
                .await?
        });
        let cut_day_starts = cut_day * aggregates::SECONDS_PER_DAY - self.offset_seconds;
        let (first, last) = (
            range.from.max(cut_day_starts),
            (range.to - 1).min(latest_follow),
        );
        if first <= last {
            let follows_sql = format!(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE unfollowed_at - followed_at < $3)
                 FROM follows WHERE followed_at >= $1 AND followed_at <= $2 AND {}",
                scope.condition(4)
            );
            let (cut_followed, cut_lost): (i64, i64) = on_reader!(&self.reader, |pool| {
                scope
                    .bind(
                        sqlx::query_as(&follows_sql)
                            .bind(first)
                            .bind(last)
                            .bind(window),
                    )
                    .fetch_one(pool)
                    .await?
            });
            followed += cut_followed;
            lost += cut_lost;
        }
        Ok((followed, lost))
    }

    /// Each of `scenes`' unique users over the range (scenes without scans left out), read
    /// through the index by scene. Each scene's day sets come back as one row, concatenated
    /// by SQLite (group_concat keeps a blob's bytes): handing over a row costs sqlx a few
    /// microseconds, more than SQLite spends reading it, and a scene has a set a day.
    async fn unique_users_of_scenes(
        &self,
        range: TimeRange,
        scenes: &[&str],
    ) -> Result<HashMap<String, i64>, StoreError> {
        if scenes.is_empty() {
            return Ok(HashMap::new());
        }
        let (from_day, to_day) = self.days(range);
        // At most FEW_SCENES parameters, well under SQLite's limit (32,766).
        let placeholders = (3..scenes.len() + 3)
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT scene, {} AS users FROM scene_day_users
             WHERE scene IN ({placeholders}) AND day >= $1 AND day < $2
             GROUP BY scene",
            self.reader.sql(USERS_CONCATENATED.0, USERS_CONCATENATED.1)
        );
        let sets: Vec<(String, Option<Vec<u8>>)> = on_reader!(&self.reader, |pool| {
            let mut query = sqlx::query_as(&sql).bind(from_day).bind(to_day);
            for scene in scenes {
                query = query.bind(*scene);
            }
            query.fetch_all(pool).await?
        });
        // Counting is the costly part (milliseconds for a busy scene), on a thread of its
        // own so that the other half's counting runs beside it.
        let counted = tokio::task::spawn_blocking(move || {
            sets.into_iter()
                .map(|(scene, users)| (scene, users_in(users.as_deref())))
                .collect()
        })
        .await
        .map_err(|_| sqlx::Error::WorkerCrashed)?;
        Ok(counted)
    }

    /// The unique users of the scope's scenes over the range, exact: the union of their
    /// days' sets, read as one row (see [`USERS_CONCATENATED`]).
    async fn unique_users_of(&self, range: TimeRange, scope: Scope<'_>) -> Result<i64, StoreError> {
        let (from_day, to_day) = self.days(range);
        let sql = format!(
            "SELECT {} FROM scene_day_users WHERE day >= $1 AND day < $2 AND {}",
            self.reader.sql(USERS_CONCATENATED.0, USERS_CONCATENATED.1),
            scope.condition(3)
        );
        let (users,): (Option<Vec<u8>>,) = on_reader!(&self.reader, |pool| {
            scope
                .bind(sqlx::query_as(&sql).bind(from_day).bind(to_day))
                .fetch_one(pool)
                .await?
        });
        Ok(users_in(users.as_deref()))
    }

    /// Unique users over all scenes in the range, which had `scans` scans, and whether that
    /// is an estimate: exact up to [`EXACT_UNION_LIMIT`] scans (an account's first months),
    /// estimated from the days' sketches beyond.
    async fn unique_users_of_all(
        &self,
        range: TimeRange,
        scans: i64,
    ) -> Result<(i64, bool), StoreError> {
        if scans <= EXACT_UNION_LIMIT {
            Ok((self.unique_users_of(range, Scope::All).await?, false))
        } else {
            Ok((self.unique_users_estimate(range).await?, true))
        }
    }

    /// Unique users over all scenes in the range, estimated from the days' sketches.
    async fn unique_users_estimate(&self, range: TimeRange) -> Result<i64, StoreError> {
        let (from_day, to_day) = self.days(range);
        // A row per part, its days' registers concatenated (each day's part is
        // PART_REGISTERS bytes): 64 rows for sqlx to hand over instead of 64 a day.
        let sql = format!(
            "SELECT part, {} FROM day_users WHERE day >= $1 AND day < $2 GROUP BY part",
            self.reader
                .sql(REGISTERS_CONCATENATED.0, REGISTERS_CONCATENATED.1)
        );
        let parts: Vec<(i64, Option<Vec<u8>>)> = on_reader!(&self.reader, |pool| {
            sqlx::query_as(&sql)
                .bind(from_day)
                .bind(to_day)
                .fetch_all(pool)
                .await?
        });
        let mut sketch = Sketch::default();
        for (part, days) in &parts {
            let part = usize::try_from(*part).unwrap_or(usize::MAX);
            for registers in days.as_deref().unwrap_or_default().chunks(PART_REGISTERS) {
                sketch.merge_part(part, registers);
            }
        }
        Ok(i64::try_from(sketch.estimate()).unwrap_or(i64::MAX))
    }

    /// The day numbers of the aggregates a range covers: `[from, to)`.
    fn days(&self, range: TimeRange) -> (i64, i64) {
        (
            aggregates::day_of(range.from, self.offset_seconds),
            aggregates::day_of(range.to, self.offset_seconds),
        )
    }

    /// Scans, new followers and lost followers per day, of the scope's scenes:
    /// `(day number, counts)` for the days that have any, where day `n` starts at Unix
    /// time `n * 86400 - offset` in the store's offset.
    pub async fn daily_counts(
        &self,
        range: TimeRange,
        scope: Scope<'_>,
    ) -> Result<Vec<(i64, DayCounts)>, StoreError> {
        let (from_day, to_day) = self.days(range);
        let sql = format!(
            "SELECT day, CAST(SUM(scans) AS BIGINT), CAST(SUM(new_followers) AS BIGINT),
                    CAST(SUM(lost) AS BIGINT)
             FROM {}
             GROUP BY day HAVING SUM(scans) > 0 OR SUM(lost) > 0 ORDER BY day",
            scope.day_counts()
        );
        let rows: Vec<(i64, i64, i64, i64)> = on_reader!(&self.reader, |pool| {
            scope
                .bind(sqlx::query_as(&sql).bind(from_day).bind(to_day))
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(day, scans, new_followers, lost)| {
                let counts = DayCounts {
                    scans,
                    new_followers,
                    lost,
                };
                (day, counts)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use time::UtcOffset;

    use super::*;
    use crate::domain::{AccountEvent, EventKind, SceneKey};

    #[actix_web::test]
    async fn the_totals_unique_users_are_exact_while_small_and_the_sketch_agrees() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("users.db").display());
        let (store, _writer) = Store::open(&url, UtcOffset::UTC).await.unwrap();
        let day0 = 946_684_800;
        for n in 0..300 {
            let scene = SceneKey::parse(&format!("s{}", n % 7)).unwrap();
            let event = AccountEvent {
                kind: EventKind::Scan,
                // 120 users, some scanning several scenes on several days.
                openid: format!("user{}", n % 120),
                created_at: day0 + (n % 5) * 86_400 + n,
                event_key: scene.to_string(),
                scene: Some(scene),
                ticket: None,
            };
            store.store_event(event).await.unwrap();
        }
        let range = TimeRange {
            from: day0,
            to: day0 + 10 * 86_400,
        };

        let exact = store.unique_users_of_all(range, 300).await.unwrap();
        let estimate = store.unique_users_estimate(range).await.unwrap();

        assert_eq!(exact, (120, false));
        assert!((estimate - 120).abs() <= 2, "{estimate}");
    }
}
