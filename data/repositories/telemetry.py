"""Log read positions (per consumer) and CPU/RAM samples with retention."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from data.db import Database

__all__ = ["LogOffsetRepository", "MetricSample", "MetricsRepository", "StoredOffset"]


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


class MetricsRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_many(self, samples: Iterable[MetricSample]) -> None:
        await self._db.executemany(
            "INSERT INTO metrics(server_id, ts, cpu_percent, rss_bytes) VALUES (?, ?, ?, ?)",
            [(s.server_id, s.ts, s.cpu_percent, s.rss_bytes) for s in samples],
        )

    async def prune(self, older_than: float) -> int:
        return await self._db.execute_rowcount("DELETE FROM metrics WHERE ts < ?", (older_than,))

    async def latest(self, server_id: int) -> MetricSample | None:
        row = await self._db.fetchone(
            "SELECT * FROM metrics WHERE server_id = ? ORDER BY ts DESC LIMIT 1", (server_id,)
        )
        if row is None:
            return None
        return MetricSample(
            int(row["server_id"]),
            float(row["ts"]),
            float(row["cpu_percent"]),
            int(row["rss_bytes"]),
        )

    async def series(self, server_id: int, since: float) -> list[MetricSample]:
        rows = await self._db.fetchall(
            "SELECT * FROM metrics WHERE server_id = ? AND ts >= ? ORDER BY ts",
            (server_id, since),
        )
        return [
            MetricSample(
                int(r["server_id"]), float(r["ts"]), float(r["cpu_percent"]), int(r["rss_bytes"])
            )
            for r in rows
        ]
