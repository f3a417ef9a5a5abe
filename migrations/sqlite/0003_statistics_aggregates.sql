-- Statistics answered from aggregates kept as events are stored, not by recounting every
-- event ever stored. `scan_events` stays the truth: `scene-qr stats rebuild` recomputes
-- all of this from it, and so does the first start after this migration (the offset row of
-- `stats_meta` is missing until then).

-- One row per follow (a `subscribe` event): from which scene, and the user's first unfollow
-- after it and before their next follow, if any. "Lost" and the cohort retentions are read
-- from here.
CREATE TABLE follows (
    event_id      INTEGER PRIMARY KEY,          -- the subscribe's scan_events.id
    openid        TEXT    NOT NULL,             -- personal data: never shown
    followed_at   INTEGER NOT NULL,             -- Unix seconds
    scene         TEXT,                         -- NULL: a follow that did not come from a code
    unfollowed_at INTEGER                       -- NULL: still following
);
CREATE INDEX follows_by_user ON follows (openid, followed_at);
CREATE INDEX follows_by_scene ON follows (scene, followed_at);

-- Per scene and day (in the offset of `stats_meta`): scans, follows from the scene's codes,
-- and how many of that day's follows were lost since (counted on the follow's day, the
-- cohort, whenever the unfollow came).
CREATE TABLE scene_days (
    scene         TEXT    NOT NULL,
    day           INTEGER NOT NULL,             -- days since 1970-01-01 in the offset
    scans         INTEGER NOT NULL DEFAULT 0,
    new_followers INTEGER NOT NULL DEFAULT 0,
    lost          INTEGER NOT NULL DEFAULT 0,
    last_scan     INTEGER,                      -- Unix seconds
    PRIMARY KEY (scene, day)
) WITHOUT ROWID;
-- Ranges over all scenes read this index alone.
CREATE INDEX scene_days_by_day ON scene_days (day, scene, scans, new_followers, lost, last_scan);

-- Per day, what belongs to no scene: follows not from a code, and unfollows.
CREATE TABLE account_days (
    day           INTEGER PRIMARY KEY,
    other_follows INTEGER NOT NULL DEFAULT 0,
    unfollows     INTEGER NOT NULL DEFAULT 0
);

-- Who scanned: per scene and day the exact set of users (sorted 64-bit hashes of their
-- openids, 8 bytes each), and per day a HyperLogLog sketch of every user who scanned any
-- scene (16,384 one-byte registers, in 64 rows of 256 so that a scan rewrites one small row,
-- not 16 KiB). See src/store/user_sets.rs.
CREATE TABLE scene_day_users (
    day           INTEGER NOT NULL,
    scene         TEXT    NOT NULL,
    users         BLOB    NOT NULL,
    PRIMARY KEY (day, scene)
) WITHOUT ROWID;
CREATE INDEX scene_day_users_by_scene ON scene_day_users (scene, day);

CREATE TABLE day_users (
    day           INTEGER NOT NULL,
    part          INTEGER NOT NULL,             -- registers part * 256 to part * 256 + 255
    registers     BLOB    NOT NULL,
    PRIMARY KEY (day, part)
) WITHOUT ROWID;

-- What the aggregates were computed under: the day boundaries move with the offset.
CREATE TABLE stats_meta (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    utc_offset_seconds INTEGER NOT NULL
);
