"""Log read positions, CPU/RAM/player samples, and their history kept small.

Samples stay raw for two days, are then folded into 1-minute rows kept 30 days, and those
into 15-minute rows kept a year (`Retention`). Each fold moves one bounded batch of one
server per transaction: the coarser rows are inserted (merged into a bucket that already
exists) and exactly the finer rows they summarise are deleted, together. A kill -9 at any
moment therefore neither loses nor double-counts a sample, a second pass finds nothing to
do, and the bot's other writes wait at most one batch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import aiosqlite

from data.db import Database

__all__ = [
    "MINUTE_STEP",
    "QUARTER_STEP",
    "CompactReport",
    "LifecycleMark",
    "LogOffsetRepository",
    "MetricSample",
    "MetricsRepository",
    "Retention",
    "SeriesPoint",
    "StoredOffset",
]

DAY = 86400.0
MINUTE_STEP = 60
QUARTER_STEP = 900


@dataclass(frozen=True, slots=True)
class StoredOffset:
    source: str
    consumer: str
    file_id: str
    offset: int


class LogOffsetRepository:
    """Where each reader of a server's logs got to, so a restart neither loses nor repeats."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def save(
        self, server_id: int, source: str, consumer: str, file_id: str, offset: int
    ) -> None:
        await self._db.execute(
            "INSERT INTO log_offsets(server_id, source, consumer, file_id, offset, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(server_id, source, consumer) DO UPDATE SET"
            " file_id = excluded.file_id, offset = excluded.offset,"
            " updated_at = excluded.updated_at",
            (server_id, source, consumer, file_id, offset, time.time()),
        )

    async def load(self, server_id: int) -> list[StoredOffset]:
        rows = await self._db.fetchall(
            "SELECT source, consumer, file_id, offset FROM log_offsets WHERE server_id = ?",
            (server_id,),
        )
        return [
            StoredOffset(str(r["source"]), str(r["consumer"]), str(r["file_id"]), int(r["offset"]))
            for r in rows
        ]


@dataclass(frozen=True, slots=True)
class MetricSample:
    server_id: int
    ts: float
    cpu_percent: float
    rss_bytes: int
    players: int | None = None
    """Players online when sampled; None when the game could not be asked (no link)."""


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each resolution is kept, in seconds."""

    raw: float = 2 * DAY
    minute: float = 30 * DAY
    quarter: float = 365 * DAY
    host: float = 30 * DAY


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One bin of a chart: averages and peaks of the samples that fell into it."""

    ts: float
    samples: int
    cpu_avg: float
    cpu_max: float
    rss_avg: float
    rss_max: float
    players_avg: float | None
    players_max: int | None


@dataclass(frozen=True, slots=True)
class LifecycleMark:
    ts: float
    kind: str
    """`start` (came up), `stop` (stopped) or `crash`."""


@dataclass(slots=True)
class CompactReport:
    folded_raw: int = 0
    """Raw samples folded into 1-minute rows."""
    folded_minutes: int = 0
    """1-minute rows folded into 15-minute rows."""
    dropped: int = 0
    """15-minute rows older than the retention, deleted."""
    host_dropped: int = 0
    batches: int = 0


def _wavg(column: str, weight: str) -> str:
    """The weighted average of a stored bucket and an incoming one, as a whole number."""
    return (
        f"CAST(ROUND(({column} * {weight} + excluded.{column} * excluded.{weight}) * 1.0"
        f" / ({weight} + excluded.{weight})) AS INTEGER)"
    )


_MERGE = f"""
ON CONFLICT(server_id, step, bucket) DO UPDATE SET
    samples = samples + excluded.samples,
    cpu_avg_tenths = {_wavg("cpu_avg_tenths", "samples")},
    cpu_max_tenths = MAX(cpu_max_tenths, excluded.cpu_max_tenths),
    rss_avg_kib = {_wavg("rss_avg_kib", "samples")},
    rss_max_kib = MAX(rss_max_kib, excluded.rss_max_kib),
    players_avg_hundredths = CASE
        WHEN excluded.players_samples = 0 THEN players_avg_hundredths
        WHEN players_samples = 0 THEN excluded.players_avg_hundredths
        ELSE {_wavg("players_avg_hundredths", "players_samples")} END,
    players_samples = players_samples + excluded.players_samples,
    players_max = CASE
        WHEN players_max IS NULL THEN excluded.players_max
        WHEN excluded.players_max IS NULL THEN players_max
        ELSE MAX(players_max, excluded.players_max) END
"""
_COLUMNS = (
    "INSERT INTO metrics_rollup(server_id, step, bucket, samples, cpu_avg_tenths,"
    " cpu_max_tenths, rss_avg_kib, rss_max_kib, players_samples, players_avg_hundredths,"
    " players_max) "
)


@dataclass(frozen=True, slots=True)
class _Fold:
    """Moving one resolution into the next: which rows, and the SQL for one batch."""

    step: int
    first: str
    nth: str
    insert: str
    delete: str


_RAW_FOLD = _Fold(
    step=MINUTE_STEP,
    first="SELECT MIN(ts) FROM metrics WHERE server_id = ? AND ts < ?",
    nth="SELECT ts FROM metrics WHERE server_id = ? AND ts < ? ORDER BY ts LIMIT 1 OFFSET ?",
    insert=_COLUMNS
    + """SELECT server_id, 60, CAST(ts / 60 AS INTEGER) * 60 AS b, COUNT(*),
        CAST(ROUND(AVG(cpu_percent) * 10) AS INTEGER),
        CAST(ROUND(MAX(cpu_percent) * 10) AS INTEGER),
        CAST(ROUND(AVG(rss_bytes) / 1024.0) AS INTEGER),
        CAST(ROUND(MAX(rss_bytes) / 1024.0) AS INTEGER),
        COUNT(players), CAST(ROUND(AVG(players) * 100) AS INTEGER), MAX(players)
    FROM metrics WHERE server_id = ? AND ts < ? GROUP BY b"""
    + _MERGE,
    delete="DELETE FROM metrics WHERE server_id = ? AND ts < ?",
)
_MINUTE_FOLD = _Fold(
    step=QUARTER_STEP,
    first="SELECT MIN(bucket) FROM metrics_rollup WHERE server_id = ? AND step = 60 AND bucket < ?",
    nth="SELECT bucket FROM metrics_rollup WHERE server_id = ? AND step = 60 AND bucket < ?"
    " ORDER BY bucket LIMIT 1 OFFSET ?",
    insert=_COLUMNS
    + """SELECT server_id, 900, (bucket / 900) * 900 AS b, SUM(samples),
        CAST(ROUND(SUM(cpu_avg_tenths * samples) * 1.0 / SUM(samples)) AS INTEGER),
        MAX(cpu_max_tenths),
        CAST(ROUND(SUM(rss_avg_kib * samples) * 1.0 / SUM(samples)) AS INTEGER),
        MAX(rss_max_kib),
        SUM(players_samples),
        CAST(ROUND(SUM(players_avg_hundredths * players_samples) * 1.0
            / NULLIF(SUM(players_samples), 0)) AS INTEGER),
        MAX(players_max)
    FROM metrics_rollup WHERE server_id = ? AND step = 60 AND bucket < ? GROUP BY b"""
    + _MERGE,
    delete="DELETE FROM metrics_rollup WHERE server_id = ? AND step = 60 AND bucket < ?",
)

_SERIES = """
WITH src(t, n, cpu_sum, cpu_max, rss_sum, rss_max, pn, p_sum, p_max) AS (
    SELECT ts, 1, cpu_percent, cpu_percent, rss_bytes, rss_bytes,
        players IS NOT NULL, players, players
    FROM metrics WHERE server_id = :sid AND ts >= :since AND ts < :until
    UNION ALL
    SELECT bucket, samples, cpu_avg_tenths * samples / 10.0, cpu_max_tenths / 10.0,
        rss_avg_kib * samples * 1024.0, rss_max_kib * 1024.0,
        players_samples, players_avg_hundredths * players_samples / 100.0, players_max
    FROM metrics_rollup WHERE server_id = :sid AND bucket >= :since AND bucket < :until
)
SELECT CAST(t / :step AS INTEGER) * :step AS bin, SUM(n) AS n,
    SUM(cpu_sum) * 1.0 / SUM(n) AS cpu_avg, MAX(cpu_max) AS cpu_max,
    SUM(rss_sum) * 1.0 / SUM(n) AS rss_avg, MAX(rss_max) AS rss_max,
    SUM(p_sum) * 1.0 / NULLIF(SUM(pn), 0) AS p_avg, MAX(p_max) AS p_max
FROM src GROUP BY bin ORDER BY bin
"""

_MARKS = """
SELECT ts, CASE
        WHEN kind = 'crash' THEN 'crash'
        WHEN json_extract(data, '$.new') = 'running' THEN 'start'
        ELSE 'stop' END AS mark
FROM server_events
WHERE server_id = ? AND ts >= ? AND ts < ? AND (kind = 'crash'
    OR (kind = 'transition' AND json_extract(data, '$.new') IN ('running', 'stopped')))
ORDER BY ts DESC LIMIT ?
"""


async def _no_pause() -> None:
    await asyncio.sleep(0)


class MetricsRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_many(self, samples: Iterable[MetricSample]) -> None:
        await self._db.executemany(
            "INSERT INTO metrics(server_id, ts, cpu_percent, rss_bytes, players)"
            " VALUES (?, ?, ?, ?, ?)",
            [(s.server_id, s.ts, s.cpu_percent, s.rss_bytes, s.players) for s in samples],
        )

    async def prune(self, older_than: float) -> int:
        """Delete raw samples outright (no history kept): for a bot without compaction."""
        return await self._db.execute_rowcount("DELETE FROM metrics WHERE ts < ?", (older_than,))

    async def latest(self, server_id: int) -> MetricSample | None:
        row = await self._db.fetchone(
            "SELECT * FROM metrics WHERE server_id = ? ORDER BY ts DESC LIMIT 1", (server_id,)
        )
        return None if row is None else _sample(row)

    async def series(self, server_id: int, since: float) -> list[MetricSample]:
        """The raw samples since `since` (the last two days at most)."""
        rows = await self._db.fetchall(
            "SELECT * FROM metrics WHERE server_id = ? AND ts >= ? ORDER BY ts",
            (server_id, since),
        )
        return [_sample(r) for r in rows]

    async def history(
        self, server_id: int, since: float, until: float, step: int
    ) -> list[SeriesPoint]:
        """Bins of `step` seconds over every resolution, weighted by the samples in each."""
        rows = await self._db.fetchall(
            _SERIES, {"sid": server_id, "since": since, "until": until, "step": step}
        )
        return [
            SeriesPoint(
                ts=float(r["bin"]),
                samples=int(r["n"]),
                cpu_avg=float(r["cpu_avg"]),
                cpu_max=float(r["cpu_max"]),
                rss_avg=float(r["rss_avg"]),
                rss_max=float(r["rss_max"]),
                players_avg=None if r["p_avg"] is None else float(r["p_avg"]),
                players_max=None if r["p_max"] is None else int(r["p_max"]),
            )
            for r in rows
        ]

    async def marks(
        self, server_id: int, since: float, until: float, limit: int = 500
    ) -> list[LifecycleMark]:
        """Starts, stops and crashes in the window (the newest `limit`), oldest first."""
        rows = await self._db.fetchall(_MARKS, (server_id, since, until, limit))
        return [LifecycleMark(float(r["ts"]), str(r["mark"])) for r in reversed(rows)]

    # -- compaction ----------------------------------------------------------------------

    async def compact(
        self,
        now: float,
        retention: Retention,
        *,
        batch_rows: int = 5000,
        pause: Callable[[], Awaitable[None]] = _no_pause,
    ) -> CompactReport:
        """Fold what aged out of each resolution and drop what aged out of the last one.

        Safe to run at any time and to interrupt: every batch is its own transaction,
        and `pause` runs between batches so the bot's other work gets the database.
        """
        report = CompactReport()
        ids = [int(r[0]) for r in await self._db.fetchall("SELECT id FROM servers")]
        steps = (
            (_RAW_FOLD, _floor(now - retention.raw, MINUTE_STEP), "folded_raw"),
            (_MINUTE_FOLD, _floor(now - retention.minute, QUARTER_STEP), "folded_minutes"),
        )
        for fold, cutoff, counter in steps:
            for server_id in ids:
                while moved := await self._fold_batch(fold, server_id, cutoff, batch_rows):
                    setattr(report, counter, getattr(report, counter) + moved)
                    report.batches += 1
                    await pause()
        oldest = _floor(now - retention.quarter, QUARTER_STEP)
        for server_id in ids:
            while dropped := await self._db.execute_rowcount(
                "DELETE FROM metrics_rollup WHERE server_id = ? AND step = 900 AND bucket IN"
                " (SELECT bucket FROM metrics_rollup WHERE server_id = ? AND step = 900"
                " AND bucket < ? ORDER BY bucket LIMIT ?)",
                (server_id, server_id, oldest, batch_rows),
            ):
                report.dropped += dropped
                report.batches += 1
                await pause()
        return report

    async def _fold_batch(self, fold: _Fold, server_id: int, cutoff: int, batch_rows: int) -> int:
        """Fold at most about `batch_rows` of the oldest rows before `cutoff`; 0 when none.

        The batch ends on a bucket boundary, so a bucket is summarised from all its rows at
        once (the merge in the INSERT still keeps a late row exact).
        """
        async with self._db.transaction():
            first = await self._db.fetchval(fold.first, (server_id, cutoff))
            if first is None:
                return 0
            end = cutoff
            nth = await self._db.fetchval(fold.nth, (server_id, cutoff, batch_rows))
            if nth is not None:
                after_first = _floor(float(first), fold.step) + fold.step
                end = min(cutoff, max(_floor(float(nth), fold.step), after_first))
            await self._db.execute(fold.insert, (server_id, end))
            return await self._db.execute_rowcount(fold.delete, (server_id, end))


def _floor(ts: float, step: int) -> int:
    return int(ts // step) * step


def _sample(r: aiosqlite.Row) -> MetricSample:
    players = r["players"]
    return MetricSample(
        int(r["server_id"]),
        float(r["ts"]),
        float(r["cpu_percent"]),
        int(r["rss_bytes"]),
        None if players is None else int(players),
    )
