-- Every code scene-qr created: an inventory (an account holds at most 100,000 permanent
-- codes, ever) and the memory that lets a restart reuse codes instead of spending quota.
CREATE TABLE codes (
    id             INTEGER PRIMARY KEY,
    scene          TEXT    NOT NULL,            -- as scans report it: decimal id or scene_str
    scene_type     TEXT    NOT NULL CHECK (scene_type IN ('id', 'str')),
    kind           TEXT    NOT NULL CHECK (kind IN ('temporary', 'permanent')),
    action_name    TEXT    NOT NULL,
    expire_seconds INTEGER,                     -- lifetime granted, temporary codes only
    ticket         TEXT    NOT NULL,
    url            TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,            -- Unix seconds
    expires_at     INTEGER                      -- Unix seconds, temporary codes only
);
CREATE INDEX codes_by_scene ON codes (scene, scene_type, kind, expire_seconds, expires_at);

-- Names staff give scenes ("Shop 12 counter poster").
CREATE TABLE labels (
    scene      TEXT    PRIMARY KEY,
    label      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Every follow, unfollow and scan WeChat pushed. A retried push (same user, time, event
-- and key) is the same row.
CREATE TABLE scan_events (
    id           INTEGER PRIMARY KEY,
    scene        TEXT,                          -- NULL for plain follows and unfollows
    event        TEXT    NOT NULL CHECK (event IN ('subscribe', 'SCAN', 'unsubscribe')),
    event_key    TEXT    NOT NULL,
    openid       TEXT    NOT NULL,              -- personal data: never shown
    ticket       TEXT,
    new_follower INTEGER NOT NULL,              -- 1: a follow that came from scanning a code
    created_at   INTEGER NOT NULL,              -- WeChat's CreateTime, Unix seconds
    received_at  INTEGER NOT NULL,
    UNIQUE (openid, created_at, event, event_key)
);
CREATE INDEX scan_events_by_scene_time ON scan_events (scene, created_at);
CREATE INDEX scan_events_by_time ON scan_events (created_at);
