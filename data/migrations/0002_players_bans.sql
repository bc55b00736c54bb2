-- Languard schema, version 2: bans (the source of truth the games are synced from) and
-- player history (identities, names and addresses seen, sessions).

CREATE TABLE bans (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('guid','ip','name','uuid')),
    value           TEXT NOT NULL,          -- normalised: lower-case GUID/UUID, compressed IP
    server_id       INTEGER REFERENCES servers(id) ON DELETE CASCADE,  -- NULL: every server
    reason          TEXT NOT NULL DEFAULT '',
    author_id       INTEGER,
    author_name     TEXT NOT NULL DEFAULT '',
    created_at      REAL NOT NULL,
    expires_at      REAL,                   -- NULL: permanent
    expired_at      REAL,                   -- set by the expiry loop
    removed_at      REAL,
    removed_by_id   INTEGER,
    removed_by_name TEXT
);
CREATE INDEX bans_active ON bans(server_id) WHERE expired_at IS NULL AND removed_at IS NULL;
CREATE INDEX bans_by_target ON bans(kind, value);

CREATE TABLE players (
    id         INTEGER PRIMARY KEY,
    game       TEXT NOT NULL,
    guid       TEXT,                        -- BattlEye GUID / Minecraft UUID; NULL until known
    last_name  TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen  REAL NOT NULL,
    UNIQUE (game, guid)
);
CREATE INDEX players_by_last_seen ON players(last_seen);

CREATE TABLE player_names (
    player_id  INTEGER NOT NULL REFERENCES players(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,               -- verbatim, as the game reported it
    name_fold  TEXT NOT NULL,               -- casefolded copy for case-insensitive search
    first_seen REAL NOT NULL,
    last_seen  REAL NOT NULL,
    PRIMARY KEY (player_id, name)
);
CREATE INDEX player_names_by_fold ON player_names(name_fold);

CREATE TABLE player_ips (
    player_id  INTEGER NOT NULL REFERENCES players(id) ON DELETE CASCADE,
    ip         TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen  REAL NOT NULL,
    PRIMARY KEY (player_id, ip)
);
CREATE INDEX player_ips_by_ip ON player_ips(ip);

CREATE TABLE player_sessions (
    id        INTEGER PRIMARY KEY,
    player_id INTEGER NOT NULL REFERENCES players(id) ON DELETE CASCADE,
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    name      TEXT NOT NULL,
    joined_at REAL NOT NULL,
    left_at   REAL                          -- NULL while the session is open
);
CREATE INDEX player_sessions_by_player ON player_sessions(player_id, joined_at);
CREATE INDEX player_sessions_open ON player_sessions(server_id) WHERE left_at IS NULL;
