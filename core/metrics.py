"""Counters and gauges about the bot and its servers, rendered in Prometheus' text format.

Counters (crashes, restarts, log lines) come from the event bus, so nothing below has to
know it is being measured; gauges (states, RCon round trip, heartbeat, loop lag) are read
when a scrape asks. Per-server entries are dropped when a server is deleted (and any left
for a server the supervisor no longer knows are dropped at the next scrape), so memory
stays bounded by the number of servers.

The text format is small enough to write here rather than add a dependency:
https://prometheus.io/docs/instrumenting/exposition_formats/ (text format 0.0.4).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from core.events import (
    Event,
    EventBus,
    LogLines,
    ServerCrashed,
    ServerStateChanged,
    StorageTrouble,
    Subscription,
)
from core.supervisor.states import ServerState
from core.supervisor.supervisor import Supervisor

__all__ = [
    "CONTENT_TYPE",
    "MetricFamily",
    "Metrics",
    "Sample",
    "escape_label_value",
    "format_value",
    "render",
]

_log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RATE_WINDOW = 60
"""Seconds over which `languard_log_lines_per_second` averages."""

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

Labels = tuple[tuple[str, str], ...]
Collector = Callable[[], Iterable["MetricFamily"]]


# -- the text format ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    labels: Labels
    value: float


@dataclass(slots=True)
class MetricFamily:
    """One metric name with its HELP, TYPE and samples."""

    name: str
    kind: Literal["counter", "gauge"]
    help: str
    samples: list[Sample] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> MetricFamily:
        self.samples.append(Sample(tuple(labels.items()), value))
        return self


def escape_label_value(value: str) -> str:
    """Backslash, double quote and line feed escaped, as the text format requires."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """Go-parsable float: integers without a point, NaN and ±Inf spelled as Prometheus does."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def render(families: Iterable[MetricFamily]) -> str:
    """The exposition text of `families` (names and label names are checked: a bad one is a
    programming error; label values are escaped, they may come from anywhere)."""
    out: list[str] = []
    for family in families:
        if not _NAME.fullmatch(family.name):
            raise ValueError(f"invalid metric name {family.name!r}")
        out.append(f"# HELP {family.name} {_escape_help(family.help)}")
        out.append(f"# TYPE {family.name} {family.kind}")
        for sample in family.samples:
            labels = ""
            if sample.labels:
                parts = []
                for key, value in sample.labels:
                    if not _LABEL.fullmatch(key) or key.startswith("__"):
                        raise ValueError(f"invalid label name {key!r}")
                    parts.append(f'{key}="{escape_label_value(value)}"')
                labels = "{" + ",".join(parts) + "}"
            out.append(f"{family.name}{labels} {format_value(sample.value)}")
    return "\n".join(out) + "\n"


# -- the collector -----------------------------------------------------------------------


@dataclass(slots=True)
class _ServerCounts:
    crashes: int = 0
    restarts_crash: int = 0
    restarts_requested: int = 0
    log_lines: int = 0
    recent: deque[list[int]] = field(default_factory=lambda: deque(maxlen=RATE_WINDOW + 1))
    """[second, lines] buckets of the last RATE_WINDOW seconds."""
    stop_reason: str | None = None
    """The reason of the last move to `stopped`: a start with the same reason is a restart."""


def _probe_database(path: Path, timeout: float) -> None:
    """Take the write lock with a fresh connection and let go: the file can be written."""
    uri = path.resolve().as_uri() + "?mode=rw"
    conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    finally:
        conn.close()


class Metrics:
    """Counts what the bus reports and reads the supervisor's gauges at scrape time.

    A restart is counted when a server starts again after a crash (`kind="crash"`), or
    starts with the same reason it was just stopped with (`kind="requested"`: /server
    restart, a scheduled restart, a hang).
    """

    def __init__(
        self,
        bus: EventBus,
        supervisor: Supervisor,
        *,
        database: Path | None = None,
        heartbeat_max_age: float = 30.0,
        lag_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._supervisor = supervisor
        self._database = database
        self._heartbeat_max_age = heartbeat_max_age
        self._lag_interval = lag_interval
        self._clock = clock
        self._counts: dict[int, _ServerCounts] = {}
        self._storage_trouble: set[int] = set()
        self._collectors: list[Collector] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._db_probe: asyncio.Future[bool] | None = None
        self._db_failing = False
        self.loop_lag = 0.0
        """Seconds the event loop was late waking the last lag probe."""
        # subscribed at construction, so nothing published after it is missed
        self._sub: Subscription = bus.subscribe(
            ServerStateChanged, ServerCrashed, LogLines, StorageTrouble
        )

    def start(self) -> None:
        if not self._tasks:
            self._tasks.append(asyncio.create_task(self._pump(), name="metrics-events"))
            self._tasks.append(asyncio.create_task(self._lag_loop(), name="metrics-loop-lag"))

    async def close(self) -> None:
        self._sub.close()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def add_collector(self, collector: Collector) -> None:
        """Another source of families (the webhooks, the Discord front end)."""
        self._collectors.append(collector)

    async def forget_server(self, server_id: int) -> None:
        """Drop a deleted server's counters (a ServerService `on_deleted` hook)."""
        self._counts.pop(server_id, None)
        self._storage_trouble.discard(server_id)

    # -- events ----------------------------------------------------------------------------

    async def _pump(self) -> None:
        async for event in self._sub:
            try:
                self.observe(event)
            except Exception:  # a counting bug must never stop the counting
                _log.exception("metrics could not count %r", type(event).__name__)

    def observe(self, event: Event) -> None:
        """Count one event (public so tests can feed events without a loop)."""
        if isinstance(event, StorageTrouble):
            if event.recovered:
                self._storage_trouble.discard(event.server_id)
            else:
                self._storage_trouble.add(event.server_id)
            return
        counts = self._counts.setdefault(event.server_id, _ServerCounts())
        if isinstance(event, ServerCrashed):
            counts.crashes += 1
        elif isinstance(event, LogLines):
            n = len(event.lines)
            counts.log_lines += n
            now = int(self._clock())
            if counts.recent and counts.recent[-1][0] == now:
                counts.recent[-1][1] += n
            else:
                counts.recent.append([now, n])
        elif isinstance(event, ServerStateChanged):
            if event.new is ServerState.STOPPED:
                counts.stop_reason = event.reason
            elif event.new is ServerState.STARTING:
                if event.old is ServerState.CRASHED:
                    counts.restarts_crash += 1
                elif event.old is ServerState.STOPPED and counts.stop_reason == event.reason:
                    counts.restarts_requested += 1
                counts.stop_reason = None

    def _rate(self, counts: _ServerCounts) -> float:
        floor = int(self._clock()) - RATE_WINDOW
        return sum(n for second, n in counts.recent if second > floor) / RATE_WINDOW

    async def _lag_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self._lag_interval)
            self.loop_lag = max(0.0, loop.time() - before - self._lag_interval)

    # -- health ----------------------------------------------------------------------------

    def heartbeat_age(self) -> float | None:
        """Seconds since the supervisor's loop last turned (None before its first turn)."""
        beat = self._supervisor.heartbeat
        return None if beat is None else max(0.0, time.monotonic() - beat)

    def supervisor_alive(self) -> bool:
        age = self.heartbeat_age()
        return age is not None and age <= self._heartbeat_max_age

    @property
    def storage_ok(self) -> bool:
        """No server reported a database write it could not make (and not since recovered)."""
        return not self._storage_trouble

    async def database_writable(self, timeout: float = 2.0) -> bool:
        """Whether the database file takes a write lock within `timeout` s (checked on a
        connection of its own, so a probe never queues behind or holds up the bot's writes).

        Concurrent callers share one probe, so a flood of health checks runs one at a time.
        """
        if self._database is None:
            return False
        if self._db_probe is None or self._db_probe.done():
            self._db_probe = asyncio.ensure_future(self._probe(self._database, timeout))
        return await asyncio.shield(self._db_probe)

    async def _probe(self, path: Path, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout + 2.0):
                await asyncio.to_thread(_probe_database, path, timeout)
        except (sqlite3.Error, OSError, TimeoutError) as exc:
            if not self._db_failing:  # once per episode, not once per scrape
                _log.warning("health: the database cannot be written: %s", exc)
            self._db_failing = True
            return False
        if self._db_failing:
            _log.info("health: the database can be written again")
        self._db_failing = False
        return True

    # -- scrape ----------------------------------------------------------------------------

    def families(self) -> list[MetricFamily]:
        """Every family, core ones first, then the added collectors'."""
        servers = self._supervisor.all()
        known = {server.id for server in servers}
        for gone in [sid for sid in self._counts if sid not in known]:
            del self._counts[gone]
        self._storage_trouble &= known | {0}
        by_state = MetricFamily("languard_servers", "gauge", "Servers in each lifecycle state.")
        for each in ServerState:
            by_state.add(sum(1 for s in servers if s.state is each), state=each.value)
        state = MetricFamily("languard_server_state", "gauge", "1 for the state each server is in.")
        crashes = MetricFamily(
            "languard_server_crashes_total", "counter", "Crashes seen since the bot started."
        )
        restarts = MetricFamily(
            "languard_server_restarts_total",
            "counter",
            "Starts that followed a crash (kind=crash) or a stop for the same reason "
            "(kind=requested: restart command, schedule, hang).",
        )
        lines = MetricFamily(
            "languard_log_lines_total", "counter", "Log lines read since the bot started."
        )
        rate = MetricFamily(
            "languard_log_lines_per_second",
            "gauge",
            f"Log lines per second over the last {RATE_WINDOW} s.",
        )
        rtt = MetricFamily(
            "languard_rcon_round_trip_seconds",
            "gauge",
            "Time the game took to answer the last liveness probe over RCon or console.",
        )
        linked = MetricFamily(
            "languard_rcon_connected", "gauge", "1 while the game's command link is up."
        )
        for server in servers:
            counts = self._counts.get(server.id) or _ServerCounts()
            name = server.name
            state.add(1, server=name, state=server.state.value)
            crashes.add(counts.crashes, server=name)
            restarts.add(counts.restarts_crash, server=name, kind="crash")
            restarts.add(counts.restarts_requested, server=name, kind="requested")
            lines.add(counts.log_lines, server=name)
            rate.add(self._rate(counts), server=name)
            if server.round_trip is not None:
                rtt.add(server.round_trip, server=name)
            link = server.link
            if link is not None:
                linked.add(1 if link.connected else 0, server=name)
        age = self.heartbeat_age()
        health = [
            MetricFamily(
                "languard_supervisor_heartbeat_age_seconds",
                "gauge",
                "Seconds since the supervisor's background loop last ran.",
            ).add(math.inf if age is None else age),
            MetricFamily(
                "languard_event_loop_lag_seconds",
                "gauge",
                "How late the event loop woke a periodic probe.",
            ).add(self.loop_lag),
            MetricFamily(
                "languard_storage_trouble",
                "gauge",
                "1 while a database write failed and has not succeeded since.",
            ).add(0 if self.storage_ok else 1),
        ]
        out: list[MetricFamily] = [
            by_state,
            state,
            crashes,
            restarts,
            lines,
            rate,
            rtt,
            linked,
            *health,
        ]
        for collector in self._collectors:
            try:
                out.extend(collector())
            except Exception:  # one broken source must not take the others down
                _log.exception("a metrics collector failed")
        return out

    def render(self, extra: Sequence[MetricFamily] = ()) -> str:
        return render([*self.families(), *extra])
