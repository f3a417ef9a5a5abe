-- As migrations/sqlite/0006_follows_by_scene_covering.sql: cohort retention reads a
-- scene's follows of a range with each one's first unfollow, from the index alone.
DROP INDEX follows_by_scene;
CREATE INDEX follows_by_scene ON follows (scene, followed_at, unfollowed_at);
