-- Languard schema, version 1: servers, their settings and secrets, lifecycle history,
-- the audit trail, log positions and metrics.

CREATE TABLE servers (
    id               INTEGER PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    game             TEXT NOT NULL,
    created_at       REAL NOT NULL,
    state            TEXT NOT NULL DEFAULT 'stopped'
                     CHECK (state IN ('stopped','starting','running','stopping','crashed','failed')),
    state_reason     TEXT NOT NULL DEFAULT '',
    state_changed_at REAL NOT NULL,
    pid              INTEGER,
    pid_create_time  REAL,
    cmdline          TEXT,          -- JSON array, the argv the process was started with
    started_at       REAL,          -- wall clock of the current process start
    archived_at      REAL
);

CREATE TABLE server_settings (
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,        -- JSON
    PRIMARY KEY (server_id, key)
);

CREATE TABLE secrets (
    server_id  INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    ciphertext BLOB NOT NULL,       -- Fernet token, never plain text
    PRIMARY KEY (server_id, key)
);

CREATE TABLE server_events (
    id        INTEGER PRIMARY KEY,
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    ts        REAL NOT NULL,
    kind      TEXT NOT NULL,        -- 'transition', 'crash', 'failed', ...
    data      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX server_events_by_server ON server_events(server_id, kind, ts);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    ts         REAL NOT NULL,
    actor_id   INTEGER,
    actor_name TEXT NOT NULL DEFAULT '',
    action     TEXT NOT NULL,
    server_id  INTEGER REFERENCES servers(id) ON DELETE SET NULL,
    arguments  TEXT NOT NULL DEFAULT '{}',
    result     TEXT NOT NULL DEFAULT '',
    ok         INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX audit_log_by_ts ON audit_log(ts);

CREATE TABLE log_offsets (
    server_id  INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    source     TEXT NOT NULL,
    consumer   TEXT NOT NULL,       -- 'reader' for the tailer itself, else a consumer name
    file_id    TEXT NOT NULL,
    offset     INTEGER NOT NULL CHECK (offset >= 0),
    updated_at REAL NOT NULL,
    PRIMARY KEY (server_id, source, consumer)
);

CREATE TABLE metrics (
    server_id   INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    ts          REAL NOT NULL,
    cpu_percent REAL NOT NULL,
    rss_bytes   INTEGER NOT NULL
);
CREATE INDEX metrics_by_server ON metrics(server_id, ts);
