"""The host machine's CPU and RAM, one row a minute, for the `/host` chart (kept 30 days)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from data.db import Database

__all__ = ["HostMetricsRepository", "HostPoint", "HostSample"]


@dataclass(frozen=True, slots=True)
class HostSample:
    ts: float
    cpu_percent: float
    """Of the whole machine, 0-100."""
    ram_used: int
    ram_total: int


@dataclass(frozen=True, slots=True)
class HostPoint:
    ts: float
    cpu_avg: float
    cpu_max: float
    ram_avg: float
    ram_max: float
    ram_total: float


class HostMetricsRepository:
    """The machine's CPU and RAM, one row a minute, for the /host chart."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, sample: HostSample) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO host_metrics(ts, cpu_percent, ram_used, ram_total)"
            " VALUES (?, ?, ?, ?)",
            (int(sample.ts), sample.cpu_percent, sample.ram_used, sample.ram_total),
        )

    async def history(self, since: float, until: float, step: int) -> list[HostPoint]:
        rows = await self._db.fetchall(
            "SELECT (ts / :step) * :step AS bin, AVG(cpu_percent) AS cpu_avg,"
            " MAX(cpu_percent) AS cpu_max, AVG(ram_used) AS ram_avg, MAX(ram_used) AS ram_max,"
            " MAX(ram_total) AS ram_total FROM host_metrics"
            " WHERE ts >= :since AND ts < :until GROUP BY bin ORDER BY bin",
            {"since": since, "until": until, "step": step},
        )
        return [
            HostPoint(
                ts=float(r["bin"]),
                cpu_avg=float(r["cpu_avg"]),
                cpu_max=float(r["cpu_max"]),
                ram_avg=float(r["ram_avg"]),
                ram_max=float(r["ram_max"]),
                ram_total=float(r["ram_total"]),
            )
            for r in rows
        ]

    async def prune(self, older_than: float, batch_rows: int = 5000) -> int:
        """Delete rows older than `older_than` in bounded batches; how many went."""
        total = 0
        while dropped := await self._db.execute_rowcount(
            "DELETE FROM host_metrics WHERE ts IN"
            " (SELECT ts FROM host_metrics WHERE ts < ? ORDER BY ts LIMIT ?)",
            (older_than, batch_rows),
        ):
            total += dropped
            await asyncio.sleep(0)
        return total
