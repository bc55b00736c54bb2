"""The hosts servers run on, as `/host` lists them: reachable or not, and what they report.

Why a registry: the front end, placement and alerts all need the same answer to "is host B
there, and how much room has it", and one place must decide when it changed, so that an
engine going away raises exactly one `HostUnreachable` (and its return one `HostReachable`)
however many servers live there. What a host reports comes from a probe: the Docker
runtime gives one per engine (engine version, CPUs, memory, disk, our containers); `local`
has a psutil probe here. A probe that fails or hangs past its timeout means unreachable,
with a reason that names no secret.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import psutil

from core.errors import LanguardError, NotFound
from core.events import EventBus, HostReachable, HostUnreachable
from core.hosts.facts import HostFacts
from core.hosts.loading import HostTable
from core.hosts.model import HostSpec
from core.hosts.placement import HostRoom, Placement, pick_host
from core.hosts.queue import StartQueue

__all__ = [
    "HostDown",
    "HostFacts",
    "HostProbe",
    "HostRegistry",
    "HostState",
    "HostStatus",
    "LocalProbe",
]

_log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
DEFAULT_MISSES = 2
_AUTOCOMPLETE = 25


class HostDown(LanguardError):
    """Why a host did not answer; a probe raises it with a reason fit to show."""


class HostState(StrEnum):
    UNKNOWN = "unknown"
    """Not probed yet."""
    REACHABLE = "reachable"
    UNREACHABLE = "unreachable"


class HostProbe(Protocol):
    """Ask one host how it is; raise (ideally HostDown) when it does not answer."""

    async def __call__(self, host: HostSpec) -> HostFacts: ...


@dataclass(frozen=True, slots=True)
class HostStatus:
    spec: HostSpec
    state: HostState = HostState.UNKNOWN
    facts: HostFacts | None = None
    """The last report; kept while unreachable, so `/host` can show what it was."""
    problem: LanguardError | None = None
    """Why it is unreachable (None otherwise)."""
    since: float | None = None
    """When (registry clock) the host entered its state."""
    checked_at: float | None = None
    misses: int = 0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def reachable(self) -> bool:
        return self.state is HostState.REACHABLE


class LocalProbe:
    """The machine the bot runs on: psutil's CPUs and memory, the data folder's disk, and
    the running servers a callable counts (the supervisor knows them)."""

    def __init__(self, data_dir: Path, running: Callable[[], int] = lambda: 0) -> None:
        self._data_dir = data_dir
        self._running = running

    async def __call__(self, host: HostSpec) -> HostFacts:
        memory = psutil.virtual_memory()
        disk_total: int | None = None
        disk_free: int | None = None
        try:
            disk = psutil.disk_usage(os.fspath(self._data_dir))
            disk_total, disk_free = int(disk.total), int(disk.free)
        except OSError:
            _log.debug("no disk usage for %s", self._data_dir)
        return HostFacts(
            cpus=psutil.cpu_count() or 1,
            memory_total=int(memory.total),
            memory_available=int(memory.available),
            disk_total=disk_total,
            disk_free=disk_free,
            running_servers=self._running(),
        )


def _reason(exc: BaseException, timeout: float) -> LanguardError:
    """A reason to show: a probe's own core error, else the kind of failure only (a
    library's text can carry a URL with a user name, or a certificate path)."""
    if isinstance(exc, LanguardError):
        return exc
    if isinstance(exc, TimeoutError):
        return HostDown("no answer within {seconds:g} s", seconds=timeout)
    return HostDown("the probe failed ({kind})", kind=type(exc).__name__)


class HostRegistry:
    """Every declared host and its last known state; `refresh()` probes them all at once."""

    def __init__(
        self,
        table: HostTable,
        probe: HostProbe,
        bus: EventBus,
        *,
        local_probe: HostProbe | None = None,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = DEFAULT_TIMEOUT,
        misses: int = DEFAULT_MISSES,
    ) -> None:
        if misses < 1:
            raise ValueError("misses must be at least 1")
        self.table = table
        self._probe = probe
        self._local_probe: HostProbe = local_probe or LocalProbe(Path("."))
        self._bus = bus
        self._clock = clock
        self.timeout = timeout
        self.misses = misses
        self._status = {spec.name: HostStatus(spec) for spec in table}

    def statuses(self) -> list[HostStatus]:
        """Every host in declaration order (`local` first)."""
        return [self._status[spec.name] for spec in self.table]

    def status(self, name: str) -> HostStatus:
        try:
            return self._status[name]
        except KeyError:
            raise NotFound("no host named {name}", name=name) from None

    def names(self, prefix: str = "") -> list[str]:
        """Host names starting with `prefix` (case-insensitive), for autocomplete."""
        start = prefix.strip().lower()
        return [name for name in self.table.names() if name.startswith(start)][:_AUTOCOMPLETE]

    def is_reachable(self, name: str) -> bool:
        return self.status(name).reachable

    async def refresh(self, names: Collection[str] | None = None) -> list[HostStatus]:
        """Probe the hosts (all, or `names`) concurrently, each bounded by the timeout;
        publish one event per host whose reachability changed."""
        specs = [spec for spec in self.table if names is None or spec.name in names]
        results = await asyncio.gather(*(self._probe_one(spec) for spec in specs))
        return [self._record(spec, result) for spec, result in zip(specs, results, strict=True)]

    async def _probe_one(self, spec: HostSpec) -> HostFacts | LanguardError:
        probe = self._local_probe if spec.is_local else self._probe
        try:
            async with asyncio.timeout(self.timeout):
                return await probe(spec)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure of a probe means unreachable
            _log.debug("probe of host %s failed: %r", spec.name, exc)
            return _reason(exc, self.timeout)

    def _record(self, spec: HostSpec, result: HostFacts | LanguardError) -> HostStatus:
        now = self._clock()
        old = self._status.get(spec.name, HostStatus(spec))
        if isinstance(result, HostFacts):
            new = HostStatus(spec, HostState.REACHABLE, result, None, old.since, now, 0)
            if old.state is not HostState.REACHABLE:
                new = replace(new, since=now)
            if old.state is HostState.UNREACHABLE:
                down = now - old.since if old.since is not None else 0.0
                _log.warning("host %s is reachable again after %.0f s", spec.name, down)
                self._bus.publish(
                    HostReachable(server_id=0, server="", host=spec.name, down_for_s=down)
                )
        else:
            misses = old.misses + 1
            going = old.state is HostState.UNKNOWN or (
                old.state is HostState.REACHABLE and misses >= self.misses
            )
            if going:
                new = HostStatus(spec, HostState.UNREACHABLE, old.facts, result, now, now, misses)
                _log.warning("host %s is unreachable: %s", spec.name, result)
                self._bus.publish(
                    HostUnreachable(server_id=0, server="", host=spec.name, reason=str(result))
                )
            elif old.state is HostState.UNREACHABLE:
                new = replace(old, problem=result, checked_at=now, misses=misses)
            else:
                # one miss of a reachable host is a blip until `misses` in a row say otherwise
                new = replace(old, checked_at=now, misses=misses)
        self._status[spec.name] = new
        return new

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        """Refresh every `interval` seconds until `stop` is set (a background task)."""
        while not stop.is_set():
            await self.refresh()
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                continue

    def rooms(self, queue: StartQueue, local_games: Collection[str]) -> list[HostRoom]:
        """A placement snapshot: capacity from the file, places held and queued from the
        start queue, free memory from the last report."""
        rooms = []
        for status in self.statuses():
            spec = status.spec
            try:
                usage = queue.usage(spec.name)
                servers, reserved, queued = usage.servers, usage.memory, usage.queued
            except NotFound:
                servers, reserved, queued = 0, 0, 0
            facts = status.facts
            available = None if facts is None else facts.memory_available
            if available is None and facts is not None and facts.memory_total:
                # an engine reports its total only: what our servers reserved is taken
                available = max(0, facts.memory_total - reserved)
            reachable = status.reachable or (spec.is_local and status.state is HostState.UNKNOWN)
            rooms.append(
                HostRoom(
                    name=spec.name,
                    games=frozenset(local_games) if spec.is_local else frozenset(spec.images),
                    reachable=reachable,
                    servers=servers,
                    max_servers=spec.capacity.servers,
                    memory_reserved=reserved,
                    memory_capacity=spec.capacity.memory,
                    memory_available=available,
                    queued=queued,
                )
            )
        return rooms

    def place(
        self, game: str, queue: StartQueue, local_games: Collection[str], memory: int = 0
    ) -> Placement:
        """The host for a new server of `game` when the member named none."""
        return pick_host(self.rooms(queue, local_games), game, memory)

    def unreachable(self) -> Sequence[str]:
        return [status.name for status in self.statuses() if status.state is HostState.UNREACHABLE]
