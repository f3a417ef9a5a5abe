-- What the statistics pages still did in proportion to the traffic of a range, made
-- constant (measured at ten million events, 2,000 scenes).

-- Every scene that has counts, in order. `/stats` sums each scene's days of a range: read
-- through `scene_days_by_day`, the 60,000 rows of a month had to be sorted by scene (a
-- temporary B-tree, 50 of the page's 70 ms); walking this list and seeking each scene's
-- days in the primary key reads them already grouped (25 ms), and reads no day outside the
-- range. The trigger keeps it whoever inserts into `scene_days`, at no cost to a write
-- that only updates a scene's day.
CREATE TABLE counted_scenes (
    scene TEXT PRIMARY KEY
) WITHOUT ROWID;
INSERT INTO counted_scenes (scene) SELECT DISTINCT scene FROM scene_days;
CREATE TRIGGER scene_days_list_their_scene AFTER INSERT ON scene_days
BEGIN
    INSERT INTO counted_scenes (scene) VALUES (new.scene) ON CONFLICT DO NOTHING;
END;

-- Of a day's new followers, those lost within 1, 7 and 30 days of following (unfollowed
-- less than 86,400 x N seconds after): cohort retention (D1/D7/D30) sums them over the
-- range's whole days and reads single follows only for the day that is N days before now,
-- instead of every follow of the range (which a busy scene has by the thousand).
ALTER TABLE scene_days ADD COLUMN lost_in_1d INTEGER NOT NULL DEFAULT 0;
ALTER TABLE scene_days ADD COLUMN lost_in_7d INTEGER NOT NULL DEFAULT 0;
ALTER TABLE scene_days ADD COLUMN lost_in_30d INTEGER NOT NULL DEFAULT 0;
WITH lost AS (
    SELECT f.scene,
           (f.followed_at + m.utc_offset_seconds) / 86400 AS day,
           SUM(f.unfollowed_at - f.followed_at < 86400) AS in_1d,
           SUM(f.unfollowed_at - f.followed_at < 7 * 86400) AS in_7d,
           SUM(f.unfollowed_at - f.followed_at < 30 * 86400) AS in_30d
    FROM follows AS f, stats_meta AS m
    WHERE f.scene IS NOT NULL AND f.unfollowed_at IS NOT NULL
    GROUP BY 1, 2
)
UPDATE scene_days
SET lost_in_1d = lost.in_1d, lost_in_7d = lost.in_7d, lost_in_30d = lost.in_30d
FROM lost
WHERE scene_days.scene = lost.scene AND scene_days.day = lost.day;

-- Every scene's scans, new followers and lost followers per day, summed: the chart of
-- `/stats` over all scenes read the 60,000 rows of a month's scene days to sum them by
-- day (15 ms), where these are 30 rows. Triggers keep the sums whoever writes
-- `scene_days` (the writer's upserts fire the insert or the update trigger); only
-- `scene-qr stats rebuild` deletes scene days, and it empties `account_days` with them.
ALTER TABLE account_days ADD COLUMN scans INTEGER NOT NULL DEFAULT 0;
ALTER TABLE account_days ADD COLUMN new_followers INTEGER NOT NULL DEFAULT 0;
ALTER TABLE account_days ADD COLUMN lost INTEGER NOT NULL DEFAULT 0;
INSERT INTO account_days (day, scans, new_followers, lost)
SELECT day, SUM(scans), SUM(new_followers), SUM(lost) FROM scene_days GROUP BY day
ON CONFLICT (day) DO UPDATE SET
    scans = excluded.scans, new_followers = excluded.new_followers, lost = excluded.lost;
CREATE TRIGGER scene_days_add_to_account_days AFTER INSERT ON scene_days
BEGIN
    INSERT INTO account_days (day, scans, new_followers, lost)
    VALUES (new.day, new.scans, new.new_followers, new.lost)
    ON CONFLICT (day) DO UPDATE SET
        scans = scans + excluded.scans,
        new_followers = new_followers + excluded.new_followers,
        lost = lost + excluded.lost;
END;
CREATE TRIGGER scene_days_change_account_days AFTER UPDATE OF scans, new_followers, lost
ON scene_days
BEGIN
    UPDATE account_days
    SET scans = scans + new.scans - old.scans,
        new_followers = new_followers + new.new_followers - old.new_followers,
        lost = lost + new.lost - old.lost
    WHERE day = new.day;
END;

-- With those sums, nothing reads every scene's days by day any more (a scene's or a
-- group's days are read by scene), and this index only cost each write a second B-tree
-- update per scene day: it covers the counts, which every scan changes.
DROP INDEX scene_days_by_day;
