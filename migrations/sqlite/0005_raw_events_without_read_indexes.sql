-- The statistics pages read the aggregates of 0003, never `scan_events` by scene or by time:
-- these two indexes only cost every stored event two more B-tree inserts (about a third of
-- the time of storing it) and a quarter of the database's size. What still reads the raw
-- events reads them by user (the unique index) or all of them (`scene-qr stats rebuild`).
DROP INDEX scan_events_by_scene_time;
DROP INDEX scan_events_by_time;
