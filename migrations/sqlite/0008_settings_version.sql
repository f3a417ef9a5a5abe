-- A number every save of a scene's settings (label, group) increases, in the saving
-- transaction. Each replica on a shared database reads it every second and, when it moved,
-- forgets the settings it keeps in memory, so that a label saved on one replica shows on
-- every replica's pages within about a second.
CREATE TABLE settings_version (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO settings_version (id, version) VALUES (1, 0);
