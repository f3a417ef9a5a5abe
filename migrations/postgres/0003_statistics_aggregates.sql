-- As migrations/sqlite/0003_statistics_aggregates.sql: statistics answered from aggregates
-- kept as events are stored; `scan_events` stays the truth and `scene-qr stats rebuild`
-- recomputes all of this from it (so does the first start, while `stats_meta` is empty).

-- One row per follow (a `subscribe` event): from which scene, and the user's first unfollow
-- after it and before their next follow, if any.
CREATE TABLE follows (
    event_id      BIGINT  PRIMARY KEY,          -- the subscribe's scan_events.id
    openid        TEXT    NOT NULL,             -- personal data: never shown
    followed_at   BIGINT  NOT NULL,             -- Unix seconds
    scene         TEXT,                         -- NULL: a follow that did not come from a code
    unfollowed_at BIGINT                        -- NULL: still following
);
CREATE INDEX follows_by_user ON follows (openid, followed_at);
CREATE INDEX follows_by_scene ON follows (scene, followed_at);

-- Per scene and day (in the offset of `stats_meta`): scans, follows from the scene's codes,
-- and how many of that day's follows were lost since.
CREATE TABLE scene_days (
    scene         TEXT    NOT NULL,
    day           BIGINT  NOT NULL,             -- days since 1970-01-01 in the offset
    scans         BIGINT  NOT NULL DEFAULT 0,
    new_followers BIGINT  NOT NULL DEFAULT 0,
    lost          BIGINT  NOT NULL DEFAULT 0,
    last_scan     BIGINT,                       -- Unix seconds
    PRIMARY KEY (scene, day)
);
CREATE INDEX scene_days_by_day ON scene_days (day, scene, scans, new_followers, lost, last_scan);

-- Per day, what belongs to no scene: follows not from a code, and unfollows.
CREATE TABLE account_days (
    day           BIGINT  PRIMARY KEY,
    other_follows BIGINT  NOT NULL DEFAULT 0,
    unfollows     BIGINT  NOT NULL DEFAULT 0
);

-- Who scanned: per scene and day the exact set of users (sorted 64-bit hashes of their
-- openids, 8 bytes each), and per day a HyperLogLog sketch in 64 rows of 256 registers.
-- See src/store/user_sets.rs.
CREATE TABLE scene_day_users (
    day           BIGINT  NOT NULL,
    scene         TEXT    NOT NULL,
    users         BYTEA   NOT NULL,
    PRIMARY KEY (day, scene)
);
CREATE INDEX scene_day_users_by_scene ON scene_day_users (scene, day);

CREATE TABLE day_users (
    day           BIGINT  NOT NULL,
    part          BIGINT  NOT NULL,             -- registers part * 256 to part * 256 + 255
    registers     BYTEA   NOT NULL,
    PRIMARY KEY (day, part)
);

-- What the aggregates were computed under: the day boundaries move with the offset.
CREATE TABLE stats_meta (
    id                 BIGINT PRIMARY KEY CHECK (id = 1),
    utc_offset_seconds BIGINT NOT NULL
);
