-- The host's Arma 3 mod library (Steam Workshop items) and each server's ordered mod set.
-- Files live under the mods folder (LANGUARD_MODS_DIR, default <data dir>/mods); these rows
-- say what is wanted, which version is installed, and in which order each server loads it.

CREATE TABLE mods (
    id                INTEGER PRIMARY KEY,          -- the Workshop item id (publishedfileid)
    name              TEXT NOT NULL,                -- from the preset or the Workshop title
    folder            TEXT NOT NULL UNIQUE,         -- @cba_a3: the link name in server folders
    position          INTEGER NOT NULL,             -- library order (the default load order)
    size              INTEGER NOT NULL DEFAULT 0,   -- bytes, as the Workshop or SteamCMD says
    time_updated      INTEGER NOT NULL DEFAULT 0,   -- newest time_updated seen on the Workshop
    installed_updated INTEGER,                      -- timeupdated of the copy on disk (NULL: none)
    installed_at      REAL,
    checked_at        REAL,                         -- last Workshop details check
    pinned            INTEGER NOT NULL DEFAULT 0,   -- held: never updated until unpinned
    added_at          REAL NOT NULL
);

CREATE TABLE server_mods (
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    mod_id    INTEGER NOT NULL REFERENCES mods(id) ON DELETE CASCADE,
    role      TEXT NOT NULL CHECK (role IN ('client','server','headless')),
    position  INTEGER NOT NULL,                     -- load order within the server's set
    PRIMARY KEY (server_id, mod_id)
);

CREATE INDEX server_mods_by_mod ON server_mods(mod_id);
