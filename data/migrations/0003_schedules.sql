-- Scheduled restarts, repeating in-game messages, and maintenance windows.

CREATE TABLE schedules (
    id         INTEGER PRIMARY KEY,
    server_id  INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('restart', 'message')),
    spec       TEXT NOT NULL,          -- restart: `06:00` or a cron expression; message: `30m`
    interval_s REAL CHECK (interval_s IS NULL OR interval_s >= 60),   -- messages only
    warn       TEXT NOT NULL DEFAULT '[]',   -- JSON minutes before a restart, descending
    message    TEXT NOT NULL DEFAULT '',
    anchor     REAL NOT NULL,          -- unix time a message repeats from (its creation)
    created_at REAL NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    last_run   REAL,                   -- unix time of the last run that came due (done or skipped)
    CHECK ((kind = 'message') = (interval_s IS NOT NULL))
);
CREATE INDEX schedules_by_server ON schedules(server_id);

CREATE TABLE maintenance_windows (
    server_id  INTEGER PRIMARY KEY REFERENCES servers(id) ON DELETE CASCADE,
    started_at REAL NOT NULL,
    until      REAL NOT NULL CHECK (until > started_at),
    started_by TEXT NOT NULL DEFAULT ''
);
