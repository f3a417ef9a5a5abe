-- As migrations/sqlite/0007_constant_time_pages.sql: what the statistics pages still did in
-- proportion to the traffic of a range, made constant. Triggers keep the list of counted
-- scenes and the per-day sums over all scenes whoever writes `scene_days`, in the writing
-- transaction (row locks on `account_days` order concurrent writers of the same day).

CREATE TABLE counted_scenes (
    scene TEXT PRIMARY KEY
);
INSERT INTO counted_scenes (scene) SELECT DISTINCT scene FROM scene_days;

ALTER TABLE scene_days ADD COLUMN lost_in_1d BIGINT NOT NULL DEFAULT 0;
ALTER TABLE scene_days ADD COLUMN lost_in_7d BIGINT NOT NULL DEFAULT 0;
ALTER TABLE scene_days ADD COLUMN lost_in_30d BIGINT NOT NULL DEFAULT 0;
WITH lost AS (
    SELECT f.scene,
           (f.followed_at + m.utc_offset_seconds) / 86400 AS day,
           COUNT(*) FILTER (WHERE f.unfollowed_at - f.followed_at < 86400) AS in_1d,
           COUNT(*) FILTER (WHERE f.unfollowed_at - f.followed_at < 7 * 86400) AS in_7d,
           COUNT(*) FILTER (WHERE f.unfollowed_at - f.followed_at < 30 * 86400) AS in_30d
    FROM follows AS f, stats_meta AS m
    WHERE f.scene IS NOT NULL AND f.unfollowed_at IS NOT NULL
    GROUP BY 1, 2
)
UPDATE scene_days
SET lost_in_1d = lost.in_1d, lost_in_7d = lost.in_7d, lost_in_30d = lost.in_30d
FROM lost
WHERE scene_days.scene = lost.scene AND scene_days.day = lost.day;

ALTER TABLE account_days ADD COLUMN scans BIGINT NOT NULL DEFAULT 0;
ALTER TABLE account_days ADD COLUMN new_followers BIGINT NOT NULL DEFAULT 0;
ALTER TABLE account_days ADD COLUMN lost BIGINT NOT NULL DEFAULT 0;
INSERT INTO account_days (day, scans, new_followers, lost)
SELECT day, SUM(scans)::BIGINT, SUM(new_followers)::BIGINT, SUM(lost)::BIGINT
FROM scene_days GROUP BY day
ON CONFLICT (day) DO UPDATE SET
    scans = excluded.scans, new_followers = excluded.new_followers, lost = excluded.lost;

CREATE FUNCTION scene_days_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO counted_scenes (scene) VALUES (new.scene) ON CONFLICT DO NOTHING;
    INSERT INTO account_days (day, scans, new_followers, lost)
    VALUES (new.day, new.scans, new.new_followers, new.lost)
    ON CONFLICT (day) DO UPDATE SET
        scans = account_days.scans + excluded.scans,
        new_followers = account_days.new_followers + excluded.new_followers,
        lost = account_days.lost + excluded.lost;
    RETURN NULL;
END;
$$;
CREATE TRIGGER scene_days_add_to_account_days AFTER INSERT ON scene_days
FOR EACH ROW EXECUTE FUNCTION scene_days_inserted();

CREATE FUNCTION scene_days_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE account_days
    SET scans = scans + new.scans - old.scans,
        new_followers = new_followers + new.new_followers - old.new_followers,
        lost = lost + new.lost - old.lost
    WHERE day = new.day;
    RETURN NULL;
END;
$$;
CREATE TRIGGER scene_days_change_account_days AFTER UPDATE OF scans, new_followers, lost
ON scene_days FOR EACH ROW EXECUTE FUNCTION scene_days_updated();

DROP INDEX scene_days_by_day;
