-- Groups staff put scenes in ("East region", "Spring campaign"): channels of several scenes,
-- counted together on /stats. A scene is in at most one group, hence the scene as the key.
CREATE TABLE scene_groups (
    scene      TEXT    PRIMARY KEY,
    group_name TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
-- A group's scenes, for its totals.
CREATE INDEX scene_groups_by_group ON scene_groups (group_name, scene);
