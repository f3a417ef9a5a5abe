-- One row the writer rewrites while database writes are failing, to find out by itself
-- when they work again (a full disk freed, a lock released), with no push or save needed.
CREATE TABLE write_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    probed_at INTEGER NOT NULL
);
