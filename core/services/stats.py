"""History and charts: what `/server stats` and the `/host` chart show, and keeping it small.

A cog calls one method (`server_chart`, `host_chart`) and gets PNG bytes and a summary to
word itself. Rendering runs in a worker thread (`asyncio.to_thread`), so the event loop
never waits on matplotlib. The service also samples the host's CPU and RAM once a minute,
and every few minutes folds old samples into coarser rows (`MetricsRepository.compact`,
bounded batches, safe to kill), so a year of history stays a few megabytes per server.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import tzinfo

import psutil

from core.aio import cancel_and_wait
from core.charts import ChartLabels, render_host_chart, render_server_chart
from core.cron import local_zone
from core.errors import InvalidInput
from core.supervisor.supervisor import Supervisor
from data.db import Database
from data.repositories.host_metrics import HostMetricsRepository, HostPoint, HostSample
from data.repositories.telemetry import (
    CompactReport,
    LifecycleMark,
    MetricsRepository,
    Retention,
    SeriesPoint,
)

__all__ = [
    "PERIODS",
    "HostChart",
    "HostSummary",
    "Period",
    "ServerChart",
    "StatsService",
    "StatsSummary",
    "parse_period",
]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Period:
    name: str
    seconds: int
    step: int
    """Seconds per point: about one point per pixel column of the chart (240 to 1008),
    each the average of its samples with their peak kept as a band."""


PERIODS: dict[str, Period] = {
    p.name: p
    for p in (
        Period("1h", 3600, 15),
        Period("24h", 86400, 120),
        Period("7d", 7 * 86400, 600),
        Period("30d", 30 * 86400, 3600),
    )
}


def parse_period(value: str | Period) -> Period:
    """`1h`, `24h`, `7d` or `30d` (the choices the command offers)."""
    if isinstance(value, Period):
        return value
    period = PERIODS.get(value.strip().lower())
    if period is None:
        raise InvalidInput(
            "unknown period {period!r}: choose 1h, 24h, 7d or 30d", period=value[:20]
        )
    return period


@dataclass(frozen=True, slots=True)
class StatsSummary:
    """The numbers beside a server's chart. None: nothing was sampled in the period."""

    period: str
    since: float
    until: float
    samples: int
    players_peak: int | None
    players_avg: float | None
    cpu_avg: float | None
    cpu_peak: float | None
    ram_avg: float | None
    """Bytes."""
    ram_peak: float | None
    starts: int
    stops: int
    crashes: int


@dataclass(frozen=True, slots=True)
class ServerChart:
    server: str
    png: bytes
    summary: StatsSummary


@dataclass(frozen=True, slots=True)
class HostSummary:
    period: str
    since: float
    until: float
    points: int
    cpu_avg: float | None
    cpu_peak: float | None
    ram_avg: float | None
    ram_peak: float | None
    ram_total: float | None


@dataclass(frozen=True, slots=True)
class HostChart:
    png: bytes
    summary: HostSummary


class StatsService:
    """`sample_interval` is the supervisor's (a hole longer than a few of them is drawn as
    a gap); `tz` is the zone of the time axis (the host's, like schedules)."""

    def __init__(
        self,
        supervisor: Supervisor,
        db: Database,
        *,
        tz: tzinfo | None = None,
        clock: Callable[[], float] = time.time,
        retention: Retention | None = None,
        sample_interval: float = 15.0,
        host_interval: float = 60.0,
        compact_interval: float = 600.0,
        batch_rows: int = 5000,
    ) -> None:
        self._supervisor = supervisor
        self.metrics = MetricsRepository(db)
        self.host_metrics = HostMetricsRepository(db)
        self.tz = tz or local_zone()
        self._clock = clock
        self.retention = retention or Retention()
        self._sample_interval = sample_interval
        self._host_interval = host_interval
        self._compact_interval = compact_interval
        self._batch_rows = batch_rows
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(psutil.cpu_percent, None)  # the first call only starts a count
        self._tasks = [
            asyncio.create_task(self._host_loop(), name="host-metrics"),
            asyncio.create_task(self._compact_loop(), name="history-compaction"),
        ]

    async def close(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks.clear()

    # -- charts --------------------------------------------------------------------------

    async def server_chart(
        self, server_name: str, period: str | Period, labels: ChartLabels | None = None
    ) -> ServerChart:
        """A server's players, CPU and RAM over the period, with its starts, stops and
        crashes: PNG bytes, and the numbers for the embed. Raises NotFound, InvalidInput."""
        chosen = parse_period(period)
        server = self._supervisor.by_name(server_name)
        until = self._clock()
        since = until - chosen.seconds
        points = await self.metrics.history(server.id, since, until, chosen.step)
        marks = await self.metrics.marks(server.id, since, until)
        png = await asyncio.to_thread(
            render_server_chart,
            points,
            marks,
            since=since,
            until=until,
            step=self._gap_step(chosen),
            tz=self.tz,
            labels=labels,
        )
        return ServerChart(server.name, png, _summary(chosen, since, until, points, marks))

    async def host_chart(
        self, period: str | Period = "24h", labels: ChartLabels | None = None
    ) -> HostChart:
        """The machine's CPU and RAM over the period (sampled once a minute)."""
        chosen = parse_period(period)
        until = self._clock()
        since = until - chosen.seconds
        step = max(chosen.step, math.ceil(self._host_interval))
        points = await self.host_metrics.history(since, until, step)
        png = await asyncio.to_thread(
            render_host_chart,
            points,
            since=since,
            until=until,
            step=step,
            tz=self.tz,
            labels=labels,
        )
        return HostChart(png, _host_summary(chosen, since, until, points))

    def _gap_step(self, period: Period) -> int:
        return max(period.step, math.ceil(self._sample_interval))

    # -- upkeep --------------------------------------------------------------------------

    async def sample_host(self) -> HostSample:
        """Read and store the machine's CPU and RAM now."""
        sample = await asyncio.to_thread(_read_host, self._clock())
        await self.host_metrics.add(sample)
        return sample

    async def compact(self) -> CompactReport:
        """One full pass: fold aged samples, drop what is past a year and old host rows."""
        now = self._clock()
        report = await self.metrics.compact(
            now, self.retention, batch_rows=self._batch_rows, pause=_breathe
        )
        report.host_dropped = await self.host_metrics.prune(
            now - self.retention.host, self._batch_rows
        )
        return report

    async def _host_loop(self) -> None:
        while True:
            await asyncio.sleep(self._host_interval)
            try:
                await self.sample_host()
            except Exception:
                _log.exception("sampling the host failed")

    async def _compact_loop(self) -> None:
        delay = min(60.0, self._compact_interval)  # not in the rush of start-up
        while True:
            await asyncio.sleep(delay)
            delay = self._compact_interval
            started = time.monotonic()
            try:
                report = await self.compact()
            except Exception:
                _log.exception("compacting the history failed; trying again later")
                continue
            if report.batches:
                _log.info("history compacted in %.1f s: %s", time.monotonic() - started, report)


async def _breathe() -> None:
    """Between two batches: let the bot's own writes have the database."""
    await asyncio.sleep(0.01)


def _read_host(now: float) -> HostSample:
    memory = psutil.virtual_memory()
    return HostSample(
        ts=now,
        cpu_percent=float(psutil.cpu_percent(None)),
        ram_used=int(memory.total - memory.available),
        ram_total=int(memory.total),
    )


def _summary(
    period: Period,
    since: float,
    until: float,
    points: Sequence[SeriesPoint],
    marks: Sequence[LifecycleMark],
) -> StatsSummary:
    samples = sum(p.samples for p in points)
    counted = [p for p in points if p.players_avg is not None]
    weight = sum(p.samples for p in counted)
    peaks = [p.players_max for p in points if p.players_max is not None]
    return StatsSummary(
        period=period.name,
        since=since,
        until=until,
        samples=samples,
        players_peak=max(peaks) if peaks else None,
        players_avg=(
            sum((p.players_avg or 0.0) * p.samples for p in counted) / weight if weight else None
        ),
        cpu_avg=sum(p.cpu_avg * p.samples for p in points) / samples if samples else None,
        cpu_peak=max((p.cpu_max for p in points), default=None),
        ram_avg=sum(p.rss_avg * p.samples for p in points) / samples if samples else None,
        ram_peak=max((p.rss_max for p in points), default=None),
        starts=sum(1 for m in marks if m.kind == "start"),
        stops=sum(1 for m in marks if m.kind == "stop"),
        crashes=sum(1 for m in marks if m.kind == "crash"),
    )


def _host_summary(
    period: Period, since: float, until: float, points: Sequence[HostPoint]
) -> HostSummary:
    count = len(points)
    return HostSummary(
        period=period.name,
        since=since,
        until=until,
        points=count,
        cpu_avg=sum(p.cpu_avg for p in points) / count if count else None,
        cpu_peak=max((p.cpu_max for p in points), default=None),
        ram_avg=sum(p.ram_avg for p in points) / count if count else None,
        ram_peak=max((p.ram_max for p in points), default=None),
        ram_total=max((p.ram_total for p in points), default=None),
    )
