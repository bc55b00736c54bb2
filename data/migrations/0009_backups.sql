-- Per-server backup settings; a NULL column means "the operator's default"
-- (LANGUARD_BACKUP_KEEP, LANGUARD_BACKUP_MAX_AGE_DAYS).

CREATE TABLE backup_policies (
    server_id  INTEGER PRIMARY KEY REFERENCES servers(id) ON DELETE CASCADE,
    keep       INTEGER,                 -- how many backups to keep at most
    max_age    REAL,                    -- seconds; older backups are pruned
    excludes   TEXT NOT NULL DEFAULT '[]'  -- JSON list of exclusion globs
);
