"""Containers on one engine: create, start, wait, inspect, signal, list by label, sample.

Thin typed calls over `Engine.request`; what the daemon says comes back as `ContainerState`
(the fields of `State` we act on [ref §4 Inspect]) and `StatsSample`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.docker.client import Engine, EngineRefused
from core.docker.logstream import parse_timestamp
from core.docker.spec import INSTANCE_LABEL, SERVER_LABEL, STARTED_LABEL

__all__ = [
    "ContainerState",
    "StatsSample",
    "create",
    "inspect",
    "kill",
    "list_labelled",
    "path_exists",
    "remove",
    "sample",
    "start",
    "started_at",
    "wait_stopped",
]

NOT_FOUND = 404
CONFLICT = 409
NOT_MODIFIED = 304


@dataclass(frozen=True, slots=True)
class ContainerState:
    id: str
    name: str
    running: bool
    status: str
    """`created`, `running`, `exited`, `dead`... as the engine says."""
    exit_code: int | None
    oom_killed: bool
    pid: int
    started: float | None
    """Unix time of the last start (None: never started)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    image: str = ""
    open_stdin: bool = False

    @property
    def server_id(self) -> int | None:
        try:
            return int(self.labels.get(SERVER_LABEL, ""))
        except ValueError:
            return None

    @property
    def instance(self) -> str:
        return self.labels.get(INSTANCE_LABEL, "")

    @property
    def requested_at(self) -> float | None:
        """When the bot asked for this container's start (its `languard.started` label)."""
        try:
            return float(self.labels[STARTED_LABEL])
        except (KeyError, ValueError):
            return None


def _time(text: Any) -> float | None:
    if not isinstance(text, str) or text.startswith("0001-"):
        return None
    nanos = parse_timestamp(text)
    return None if nanos is None else nanos / 1e9


def _state(info: Mapping[str, Any]) -> ContainerState:
    state = info.get("State") or {}
    config = info.get("Config") or {}
    running = bool(state.get("Running"))
    return ContainerState(
        id=str(info.get("Id", "")),
        name=str(info.get("Name", "")).lstrip("/"),
        running=running,
        status=str(state.get("Status", "")),
        exit_code=None if running else int(state.get("ExitCode", 0)),
        oom_killed=bool(state.get("OOMKilled")),
        pid=int(state.get("Pid") or 0),
        started=_time(state.get("StartedAt")),
        labels=dict(config.get("Labels") or {}),
        image=str(config.get("Image", "")),
        open_stdin=bool(config.get("OpenStdin")),
    )


async def create(engine: Engine, body: Mapping[str, Any], name: str) -> str:
    """Create (not start) a container; its id."""
    answer = await engine.request("POST", "containers/create", params={"name": name}, body=body)
    return str(answer["Id"])


async def path_exists(engine: Engine, container_id: str, path: str) -> bool:
    """Whether `path` exists in the container (image and mounts), started or not [ref §7]."""
    status = await engine.status("HEAD", f"containers/{container_id}/archive", {"path": path})
    if status == NOT_FOUND:
        return False
    if status >= 400:
        raise EngineRefused(engine.host, status, f"cannot look at {path}")
    return True


async def start(engine: Engine, container_id: str) -> None:
    await engine.request("POST", f"containers/{container_id}/start")


async def inspect(engine: Engine, container_id: str) -> ContainerState | None:
    """The container's state, or None when it no longer exists."""
    try:
        info = await engine.request("GET", f"containers/{container_id}/json")
    except EngineRefused as exc:
        if exc.status == NOT_FOUND:
            return None
        raise
    return _state(info)


async def wait_stopped(engine: Engine, container_id: str) -> ContainerState | None:
    """Block until the container is not running, then inspect it (exit code, OOMKilled).

    `condition=not-running` returns at once for a stopped container [ref §4 Wait]. The
    headers come at once and the body at the exit, so this has no timeout: a daemon that
    dies cuts the body, which raises EngineUnreachable.
    """
    try:
        async with engine.stream(
            "POST", f"containers/{container_id}/wait", params={"condition": "not-running"}
        ) as response:
            await response.read()
    except EngineRefused as exc:
        if exc.status == NOT_FOUND:
            return None
        raise
    return await inspect(engine, container_id)


async def kill(engine: Engine, container_id: str, signal: str = "SIGKILL") -> bool:
    """Send `signal`; False when the container was not running (409) or is gone (404).

    Not `stop?signal=`: that parameter came with API 1.42 and 20.10 drops it [ref §1]."""
    try:
        await engine.request("POST", f"containers/{container_id}/kill", params={"signal": signal})
    except EngineRefused as exc:
        if exc.status in (NOT_FOUND, CONFLICT):
            return False
        raise
    return True


async def remove(engine: Engine, container_id: str, *, force: bool = False) -> None:
    """Delete the container (its log files go with it [ref §5 Log drivers]); gone is fine."""
    params = {"force": "1"} if force else {}
    try:
        await engine.request("DELETE", f"containers/{container_id}", params=params)
    except EngineRefused as exc:
        if exc.status != NOT_FOUND:
            raise


async def list_labelled(
    engine: Engine, filters: Mapping[str, list[str]], *, everything: bool = True
) -> list[ContainerState]:
    """Containers matching label `filters` (all states, or running only), oldest first."""
    params = {"filters": json.dumps(dict(filters)), "all": "1" if everything else "0"}
    listed = await engine.request("GET", "containers/json", params=params)
    states = []
    for item in listed or []:
        info = await inspect(engine, str(item["Id"]))
        if info is not None:
            states.append(info)
    states.sort(key=lambda s: (s.started or 0.0, s.id))
    return states


@dataclass(frozen=True, slots=True)
class StatsSample:
    """Cumulative CPU counters (ns) and memory in use, at one moment."""

    cpu_total: int
    system_total: int
    online_cpus: int
    memory: int
    taken: float

    def cpu_percent(self, before: StatsSample | None) -> float:
        """CPU since `before`, in percent of one core, as `docker stats` shows [ref §9]."""
        if before is None:
            return 0.0
        cpu = self.cpu_total - before.cpu_total
        system = self.system_total - before.system_total
        if cpu <= 0 or system <= 0:
            return 0.0
        return cpu / system * self.online_cpus * 100.0


def _memory(stats: Mapping[str, Any]) -> int:
    memory = stats.get("memory_stats") or {}
    usage = int(memory.get("usage") or 0)
    detail = memory.get("stats") or {}
    # cgroup v1 counts the page cache in usage; v2 names the reclaimable part differently
    cache = detail.get("total_inactive_file", detail.get("inactive_file", detail.get("cache")))
    return max(0, usage - int(cache or 0))


async def sample(engine: Engine, container_id: str) -> StatsSample | None:
    """One immediate sample (`one-shot=1`, API 1.41: no second of waiting [ref §9])."""
    try:
        stats = await engine.request(
            "GET",
            f"containers/{container_id}/stats",
            params={"stream": "0", "one-shot": "1"},
        )
    except EngineRefused as exc:
        if exc.status == NOT_FOUND:
            return None
        raise
    if not isinstance(stats, dict):
        return None
    cpu = stats.get("cpu_stats") or {}
    usage = cpu.get("cpu_usage") or {}
    online = int(cpu.get("online_cpus") or len(usage.get("percpu_usage") or ()) or 1)
    return StatsSample(
        cpu_total=int(usage.get("total_usage") or 0),
        system_total=int(cpu.get("system_cpu_usage") or 0),
        online_cpus=online,
        memory=_memory(stats),
        taken=time.monotonic(),
    )


def started_at(state: ContainerState) -> float:
    """The start time to report: the bot's own request time when labelled, else the engine's."""
    return state.requested_at or state.started or time.time()
