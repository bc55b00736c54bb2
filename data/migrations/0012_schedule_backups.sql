-- Scheduled backups (`/schedule backup`): a third kind of schedule, timed like a restart
-- (`06:00` or a cron expression) but with no warnings. SQLite cannot change a CHECK
-- constraint in place, so the table is rebuilt with the same columns and rows.

CREATE TABLE schedules_new (
    id         INTEGER PRIMARY KEY,
    server_id  INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('restart', 'message', 'backup')),
    spec       TEXT NOT NULL,          -- restart, backup: `06:00` or a cron expression; message: `30m`
    interval_s REAL CHECK (interval_s IS NULL OR interval_s >= 60),   -- messages only
    warn       TEXT NOT NULL DEFAULT '[]',   -- JSON minutes before a restart, descending
    message    TEXT NOT NULL DEFAULT '',
    anchor     REAL NOT NULL,          -- unix time a message repeats from (its creation)
    created_at REAL NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    last_run   REAL,                   -- unix time of the last run that came due (done or skipped)
    CHECK ((kind = 'message') = (interval_s IS NOT NULL))
);
INSERT INTO schedules_new(id, server_id, kind, spec, interval_s, warn, message, anchor,
                          created_at, created_by, last_run)
    SELECT id, server_id, kind, spec, interval_s, warn, message, anchor,
           created_at, created_by, last_run
    FROM schedules;
DROP TABLE schedules;
ALTER TABLE schedules_new RENAME TO schedules;
CREATE INDEX schedules_by_server ON schedules(server_id);
