-- Mission files (Arma 3 .pbo) stored in each server's mpmissions folder. The folder is the
-- truth for what exists; these rows remember who uploaded what and cache each file's hash
-- (keyed by size and mtime, so listing does not re-read unchanged files).

CREATE TABLE missions (
    server_id      INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    filename       TEXT NOT NULL,       -- e.g. co10_Escape.Altis.pbo, no folder part
    sha256         TEXT NOT NULL,       -- of the whole file, to spot the same mission twice
    size           INTEGER NOT NULL CHECK (size >= 0),
    terrain        TEXT NOT NULL,       -- Altis, from missionName.terrainName.pbo
    mtime_ns       INTEGER NOT NULL,    -- the file's mtime when it was hashed
    uploaded_by_id INTEGER,             -- Discord user id; NULL for the system or a file found on disk
    uploaded_by    TEXT NOT NULL DEFAULT '',
    uploaded_at    REAL NOT NULL,
    PRIMARY KEY (server_id, filename)
);
CREATE INDEX missions_by_hash ON missions(server_id, sha256);
