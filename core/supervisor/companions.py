"""Companion processes of a running server (Arma 3 headless clients), supervised with it.

A headless client connects to its server like a player and does not reconnect by itself
after the server restarts or crashes (LinuxGSM #876; shared/reference/
steamcmd-workshop-and-headless.md §7). So companions live and die with the server: they
start once it is running (ready: its RCon answers), are stopped before it stops (they are
its clients), are killed when it crashes and started again once it runs again. One that
dies while the server runs is started again after a backoff that doubles while it keeps
dying; the first death of such a streak is a warning, the others are not repeated.

Like servers they outlive the bot and are adopted by the next one: they run on the
server's runtime, each carries its own marker (locally
`LANGUARD_COMPANION=<instance>/<server id>/<key>`, never the server's marker, so a server's
adoption never takes a companion for its game), and `companions.json` in the server folder
keeps each one's record (locally pid + start time since boot + boot id, never the command
line).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from signal import SIGKILL, SIGTERM
from typing import TYPE_CHECKING

from core.backoff import Backoff
from core.errors import LanguardError
from core.fsutil import atomic_write
from core.games.base import Companions, CompanionSpec, ServerContext
from core.supervisor.runtime_api import (
    FoundUnit,
    ProcessRecord,
    RunSpec,
    RuntimeHandle,
    wait_exit,
)
from core.supervisor.states import ServerState

if TYPE_CHECKING:
    from core.supervisor.server import ManagedServer

__all__ = ["COMPANIONS_FILE", "CompanionKeeper"]

_log = logging.getLogger(__name__)

COMPANIONS_FILE = "companions.json"
STABLE_AFTER = 60.0
"""Seconds a companion must have run for its next death to start a new streak."""
LOG_KEEP_BYTES = 8 * 1024 * 1024
"""A companion's console.log beyond this is moved to console.log.1 at its next start."""


class CompanionKeeper:
    """The companions of one server: started, watched, restarted, stopped, adopted."""

    def __init__(self, server: ManagedServer) -> None:
        self._server = server
        self._members: dict[str, RuntimeHandle] = {}
        self._wanted: tuple[str, ...] = ()
        self._active = False
        """True from the server's `running` until it stops: only then is a death restarted."""
        self._lock = asyncio.Lock()
        self._ensure_task: asyncio.Task[None] | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        """Per key: its exit watcher, or the timer that starts it again."""
        self._backoffs: dict[str, Backoff] = {}
        self._backoff = (1.0, 60.0)
        """The server's own `backoff_base` and `backoff_cap`, read at each ensure."""
        self._failing: set[str] = set()
        self._folder: Path | None = None
        self._save_lock = asyncio.Lock()

    @property
    def supported(self) -> bool:
        return isinstance(self._server.profile, Companions)

    def counts(self) -> tuple[int, int]:
        """(running, wanted): `wanted` is 0 while the server does not run."""
        alive = sum(1 for handle in self._members.values() if handle.is_alive())
        return alive, len(self._wanted)

    def pids(self) -> list[int]:
        return [h.pid for h in self._members.values() if h.pid is not None]

    # -- start -------------------------------------------------------------------------------

    def ensure_later(self, *, scan: bool = True) -> None:
        """Bring the companions in line with the running server, off the caller's path."""
        if not self.supported:
            return
        if self._ensure_task is None or self._ensure_task.done():
            self._ensure_task = self._server.spawn_task(self.ensure(scan=scan), "companions")

    async def ensure(self, *, scan: bool = True) -> None:
        """Start the missing companions and stop the surplus (the setting went down).
        `scan` first takes back marked ones this keeper does not know (a lost record)."""
        server = self._server
        profile = server.profile
        if not isinstance(profile, Companions):
            return
        async with self._lock:
            if server.state is not ServerState.RUNNING:
                return
            ctx = await server.deps.context(server.id, server.name)
            self._folder = ctx.folder
            try:
                specs = {spec.key: spec for spec in profile.companions(ctx)}
            except LanguardError as exc:
                _log.warning("%s: its companions cannot start: %s", server.name, exc)
                return
            policy = await server.deps.policy(server.id)
            self._backoff = (policy.backoff_base, max(policy.backoff_base, policy.backoff_cap))
            self._active = True
            self._wanted = tuple(specs)
            if scan:
                await self._take_found(await self._survey())
            surplus = [key for key in self._members if key not in specs]
            await asyncio.gather(*(self._stop_member(key, kill=False) for key in surplus))
            for key, spec in specs.items():
                if key not in self._members and key not in self._tasks:
                    await self._start_member(spec, ctx)
            await self._save()

    async def _survey(self) -> Mapping[str, Sequence[FoundUnit]]:
        """This server's marked companions by key, as its runtime sees them now."""
        server = self._server
        survey = await server.runtime.survey(server.deps.instance, servers=False)
        return survey.companions.get(server.id, {})

    async def _start_member(self, spec: CompanionSpec, ctx: ServerContext) -> None:
        server = self._server
        unit = server.unit(spec.key)
        try:
            await server.runtime.prepare(unit, files=spec.files)
            spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            _keep_log_small(spec.log_path)
            run = RunSpec(unit, spec.launch.argv, spec.launch.cwd, spec.log_path, spec.launch.env)
            handle = await server.runtime.start(run)
        except (LanguardError, OSError) as exc:
            self._died(spec.key, f"could not start: {exc}", uptime=0.0)
            return
        _log.info("%s: companion %s started (%s)", server.name, spec.key, handle.describe())
        self._attach(spec.key, handle)

    def _attach(self, key: str, handle: RuntimeHandle) -> None:
        self._members[key] = handle
        self._tasks[key] = self._server.spawn_task(self._watch(key, handle), f"companion-{key}")

    async def _watch(self, key: str, handle: RuntimeHandle) -> None:
        status = await asyncio.shield(handle.watch())  # cancelling us must not cancel it
        if self._members.get(key) is not handle:
            return  # stopped or replaced on purpose
        del self._members[key]
        self._tasks.pop(key, None)
        handle.close()
        await self._save()
        self._died(key, status.describe(), uptime=handle.uptime())

    def _died(self, key: str, why: str, *, uptime: float) -> None:
        """Start it again after a backoff, if the server still runs; one warning a streak."""
        server = self._server
        if not self._active or server.state is not ServerState.RUNNING:
            return
        backoff = self._backoffs.setdefault(key, Backoff(*self._backoff))
        if uptime >= STABLE_AFTER:
            backoff.reset()
            self._failing.discard(key)
        delay = backoff.next()
        level = logging.INFO if key in self._failing else logging.WARNING
        self._failing.add(key)
        _log.log(
            level, "%s: companion %s %s; restarting it in %.1f s", server.name, key, why, delay
        )
        self._tasks[key] = server.spawn_task(self._start_after(key, delay), f"companion-{key}")

    async def _start_after(self, key: str, delay: float) -> None:
        await asyncio.sleep(delay)
        self._tasks.pop(key, None)
        server = self._server
        profile = server.profile
        if not isinstance(profile, Companions):
            return
        async with self._lock:
            if not self._active or server.state is not ServerState.RUNNING:
                return
            if key in self._members:
                return
            ctx = await server.deps.context(server.id, server.name)
            try:
                spec = next((s for s in profile.companions(ctx) if s.key == key), None)
            except LanguardError as exc:
                _log.warning("%s: companion %s cannot start: %s", server.name, key, exc)
                return
            if spec is not None:
                await self._start_member(spec, ctx)
                await self._save()

    # -- stop --------------------------------------------------------------------------------

    async def stop_all(self, *, kill: bool = False, sweep: bool = True) -> None:
        """Stop every companion (TERM, then KILL after `term_timeout`; `kill`: KILL now).
        `sweep` also stops marked ones this keeper does not know (a game taken back)."""
        if not self.supported:
            return
        self._active = False
        self._wanted = ()
        ensure, self._ensure_task = self._ensure_task, None
        if ensure is not None and ensure is not asyncio.current_task():
            ensure.cancel()
        async with self._lock:
            if sweep:
                await self._take_found(await self._survey())
            for task in self._tasks.values():
                task.cancel()
            self._tasks.clear()
            keys = list(self._members)
            await asyncio.gather(*(self._stop_member(key, kill=kill) for key in keys))
            self._failing.clear()
            self._backoffs.clear()
            await self._save()

    async def _stop_member(self, key: str, *, kill: bool) -> None:
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()  # its exit is ours now: not a death to restart
        handle = self._members.get(key)
        if handle is None:
            return
        try:
            if kill:
                await handle.signal(SIGKILL)
            else:
                policy = await self._server.deps.policy(self._server.id)
                await handle.signal(SIGTERM)
                if not await wait_exit(handle, policy.term_timeout):
                    _log.info("%s: companion %s ignored SIGTERM", self._server.name, key)
                    await handle.signal(SIGKILL)
            if not await wait_exit(handle, 5.0):
                _log.error(
                    "%s: companion %s (%s) survived SIGKILL",
                    self._server.name,
                    key,
                    handle.describe(),
                )
                return  # still ours: counted, and stopped again by the next stop
        finally:
            if not handle.is_alive() and self._members.get(key) is handle:
                del self._members[key]
                handle.close()

    def detach(self) -> None:
        """Let go without stopping anything: the bot is closing (its tasks are cancelled)."""
        self._active = False
        for handle in self._members.values():
            handle.close()
        self._members.clear()
        self._tasks.clear()

    # -- adoption ----------------------------------------------------------------------------

    async def adopt(self, found: Mapping[str, Sequence[FoundUnit]] | None = None) -> None:
        """Take back the companions a previous bot left: the recorded ones first, then the
        marked ones (`found`; None looks now). A second one for a key is killed."""
        if not self.supported:
            return
        server = self._server
        async with self._lock:
            ctx = await server.deps.context(server.id, server.name)
            self._folder = ctx.folder
            for key, record in _load(ctx.folder / COMPANIONS_FILE).items():
                handle = await server.runtime.adopt(server.unit(key), record)
                if handle is not None and key not in self._members:
                    _log.info("%s: companion %s adopted (%s)", server.name, key, handle.describe())
                    self._attach(key, handle)
            await self._take_found(await self._survey() if found is None else found)

    async def _take_found(self, found: Mapping[str, Sequence[FoundUnit]]) -> None:
        server = self._server
        known = {handle.ident for handle in self._members.values()}
        for key, items in found.items():
            fresh = [item for item in items if item.ident not in known]
            if not fresh:
                continue
            handles = await server.runtime.find(server.unit(key), fresh, started_at=time.time())
            for handle in handles:
                if key not in self._members:
                    _log.warning("%s: found companion %s (%s)", server.name, key, handle.describe())
                    self._attach(key, handle)
                    known.add(handle.ident)
                    continue
                _log.warning(
                    "%s: killing a second companion %s (%s)", server.name, key, handle.describe()
                )
                await handle.signal(SIGKILL)
                await wait_exit(handle, 5.0)
                handle.close()

    async def _save(self) -> None:
        """Record who runs now (pid, start time since boot, boot id: no command line)."""
        if self._folder is None:
            return
        path = self._folder / COMPANIONS_FILE
        async with self._save_lock:  # one write at a time, so the last state is the one kept
            kept = ((key, handle.record()) for key, handle in self._members.items())
            records = {
                key: {
                    "pid": record.pid,
                    "create_time": record.create_time,
                    "boot_id": record.boot_id,
                    "started_at": record.started_at,
                }
                for key, record in kept
                if record is not None
            }
            try:
                if records:
                    data = json.dumps(records, sort_keys=True).encode()
                    await asyncio.to_thread(atomic_write, path, data, mode=0o600)
                else:
                    await asyncio.to_thread(path.unlink, missing_ok=True)
            except OSError as exc:  # the marker still finds them; a full disk stops nothing
                _log.warning("%s: cannot record its companions: %s", self._server.name, exc)


def _load(path: Path) -> dict[str, ProcessRecord]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    records: dict[str, ProcessRecord] = {}
    if not isinstance(raw, dict):
        return records
    for key, item in raw.items():
        try:
            records[str(key)] = ProcessRecord(
                pid=int(item["pid"]),
                create_time=float(item["create_time"]),
                cmdline=(),
                started_at=float(item["started_at"]),
                boot_id=str(item.get("boot_id") or ""),
            )
        except (KeyError, TypeError, ValueError):
            continue
    return records


def _keep_log_small(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.stat().st_size > LOG_KEEP_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))
