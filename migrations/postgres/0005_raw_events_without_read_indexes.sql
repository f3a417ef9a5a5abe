-- As migrations/sqlite/0005_raw_events_without_read_indexes.sql: the statistics read the
-- aggregates, never the raw events by scene or by time.
DROP INDEX scan_events_by_scene_time;
DROP INDEX scan_events_by_time;
