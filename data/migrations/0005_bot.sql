-- What the Discord front end keeps: role grants, channel bindings, status messages and
-- small bot state (such as the hash of the last synced command tree).

CREATE TABLE role_grants (
    guild_id   INTEGER NOT NULL,
    role_id    INTEGER NOT NULL,
    server_key INTEGER NOT NULL DEFAULT 0,   -- 0 = every server, else servers.id
    level      INTEGER NOT NULL CHECK (level BETWEEN 1 AND 4),
    granted_by INTEGER,
    granted_at REAL NOT NULL,
    PRIMARY KEY (guild_id, role_id, server_key)
);

CREATE TABLE channel_bindings (
    server_id  INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('logs','alerts','status','chat')),
    channel_id INTEGER NOT NULL,
    options    TEXT NOT NULL DEFAULT '{}',   -- JSON, e.g. {"filter": "warnings"}
    PRIMARY KEY (server_id, kind)
);

CREATE TABLE status_messages (
    server_id  INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    channel_id INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    PRIMARY KEY (server_id, channel_id)
);

CREATE TABLE bot_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
