-- History kept small (issue 13): the player count with every sample, the samples folded
-- into coarser rows as they age, and the host's own CPU and RAM.
--
-- metrics (raw, one row per 15 s)   kept 2 days, then folded into
-- metrics_rollup step 60  (1 min)   kept 30 days, then folded into
-- metrics_rollup step 900 (15 min)  kept 365 days.
-- A fold inserts the coarser rows and deletes the finer ones in one transaction, so a
-- killed bot neither loses nor double-counts a sample.

ALTER TABLE metrics ADD COLUMN players INTEGER;  -- NULL: the count was not known (no link)

-- Whole numbers in small units keep a row near 40 bytes (REAL columns take 8 bytes each):
-- CPU in tenths of a percent of one core, memory in KiB, the player average in hundredths.
CREATE TABLE metrics_rollup (
    server_id        INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    step             INTEGER NOT NULL CHECK (step IN (60, 900)),
    bucket           INTEGER NOT NULL,  -- unix seconds of the bucket's start, a multiple of step
    samples          INTEGER NOT NULL CHECK (samples > 0),
    cpu_avg_tenths   INTEGER NOT NULL,
    cpu_max_tenths   INTEGER NOT NULL,
    rss_avg_kib      INTEGER NOT NULL,
    rss_max_kib      INTEGER NOT NULL,
    players_samples  INTEGER NOT NULL DEFAULT 0,  -- samples that knew the player count
    players_avg_hundredths INTEGER,               -- NULL when players_samples = 0
    players_max      INTEGER,
    PRIMARY KEY (server_id, step, bucket)
) WITHOUT ROWID;

-- The machine itself, one row a minute (the /host chart), kept 30 days.
CREATE TABLE host_metrics (
    ts          INTEGER PRIMARY KEY,  -- unix seconds
    cpu_percent REAL NOT NULL,        -- of the whole machine, 0-100
    ram_used    INTEGER NOT NULL,     -- bytes (total minus available)
    ram_total   INTEGER NOT NULL
);
