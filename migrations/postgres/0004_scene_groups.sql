-- As migrations/sqlite/0004_scene_groups.sql: groups staff put scenes in, a scene in at
-- most one group.
CREATE TABLE scene_groups (
    scene      TEXT    PRIMARY KEY,
    group_name TEXT    NOT NULL,
    updated_at BIGINT  NOT NULL
);
CREATE INDEX scene_groups_by_group ON scene_groups (group_name, scene);
