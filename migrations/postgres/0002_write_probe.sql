-- As migrations/sqlite/0002_write_probe.sql: one row a writer rewrites while database
-- writes are failing, to find out by itself when they work again.
CREATE TABLE write_probe (
    id        BIGINT PRIMARY KEY CHECK (id = 1),
    probed_at BIGINT NOT NULL
);
