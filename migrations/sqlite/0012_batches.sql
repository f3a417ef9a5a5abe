-- Batches of codes staff asked for at once (a CSV file, a pattern): a job that survives a
-- restart. Its rows are the codes to make, in order; a row's outcome is written as soon
-- as its code is recorded, so a batch resumed after a restart goes on from the first row
-- without one.
CREATE TABLE batches (
    id           TEXT    PRIMARY KEY,
    created_at   BIGINT  NOT NULL,              -- Unix seconds
    state        TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'done', 'stopped')),
    total        BIGINT  NOT NULL,
    stop_reason  TEXT,                          -- why a stopped batch stopped, for staff
    runner       TEXT,                          -- the process working on it
    runner_until BIGINT                         -- its lease, Unix milliseconds
);
CREATE INDEX batches_unfinished ON batches (created_at) WHERE state IN ('queued', 'running');

CREATE TABLE batch_rows (
    batch_id       TEXT    NOT NULL REFERENCES batches (id),
    position       BIGINT  NOT NULL,            -- from 0, in the order given
    scene          TEXT    NOT NULL,
    scene_type     TEXT    NOT NULL CHECK (scene_type IN ('id', 'str')),
    kind           TEXT    NOT NULL CHECK (kind IN ('temporary', 'permanent')),
    expire_seconds BIGINT,                      -- temporary codes only
    label          TEXT,
    group_name     TEXT,
    outcome        TEXT    CHECK (outcome IN ('created', 'reused', 'failed')),
    url            TEXT,                        -- what the code encodes, once made
    expires_at     BIGINT,                      -- Unix seconds, temporary codes only
    errcode        BIGINT,                      -- WeChat's, for a failed row
    message        TEXT,                        -- for a failed row
    PRIMARY KEY (batch_id, position)
);

-- Permanent codes by scene, for the count of the account's 100,000 used (the New batch page,
-- the status page): at most 100,000 entries to count, however many temporary codes the
-- inventory holds.
CREATE INDEX codes_permanent ON codes (scene_type, scene) WHERE kind = 'permanent';
