"""One supervised server: its lifecycle state machine driven by commands and by its process.

Every transition goes through `_transition`, which asks the table, then persists and
publishes. Commands (start/stop/kill) hold a per-server lock; the exit watcher and the
restart timer take the same lock, and re-check the generation of the process they were
about, so a late event never acts on a newer process.

What the server says is what the process does: the exit watcher is set before anything
is written, and a write that fails (disk full, database locked) is caught up later by the
RecordKeeper instead of leaving the server half-way through a move.

Parts kept apart by subject share this class's lock and internals: crashes.py (exit,
crash, restart), adoption.py (taking back a running game), game_link.py (the command
channel), companions.py (processes that run beside the server: Arma 3 headless clients).

What runs the game is the server's `GameRuntime` (core.supervisor.runtime_api): local
processes or a container host. Nothing here knows which.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from signal import SIGKILL, SIGTERM

from core.errors import NotRunning, StartRefused
from core.events import EventBus, LogLines, ServerStateChanged
from core.games.base import GameLink, GameProfile, ServerContext
from core.supervisor import adoption, readiness
from core.supervisor.companions import CompanionKeeper
from core.supervisor.control import ProcessControl
from core.supervisor.crashes import CrashKeeper
from core.supervisor.game_link import LinkKeeper
from core.supervisor.launching import already_active, check_startable, limits_of
from core.supervisor.local_runtime import CONSOLE_LOG
from core.supervisor.policy import LifecyclePolicy
from core.supervisor.record_keeper import RecordKeeper, Snapshot, StorageErrors
from core.supervisor.runtime_api import (
    FoundUnit,
    GameRuntime,
    RunSpec,
    RuntimeHandle,
    UnitRef,
    wait_exit,
)
from core.supervisor.server_logs import ServerLogs
from core.supervisor.states import ACTIVE_STATES, RESTING_STATES, ServerState, check_transition
from core.supervisor.strays import marker_value
from data.db import Database
from data.repositories.history import HistoryRepository
from data.repositories.servers import ServerRecord, ServerRepository

__all__ = ["ManagedServer", "ServerDeps"]

_log = logging.getLogger(__name__)

S = ServerState


@dataclass
class ServerDeps:
    """What every ManagedServer shares with the supervisor."""

    bus: EventBus
    db: Database
    servers: ServerRepository
    history: HistoryRepository
    context: Callable[[int, str], Awaitable[ServerContext]]
    policy: Callable[[int], Awaitable[LifecyclePolicy]]
    instance: str
    """This installation's id in every game's marker (see core.supervisor.strays)."""
    folder: Callable[[str], Path]
    """A server's folder from its name."""


class ManagedServer:
    def __init__(
        self,
        record: ServerRecord,
        profile: GameProfile,
        logs: ServerLogs,
        deps: ServerDeps,
        runtime: GameRuntime,
    ) -> None:
        self.id = record.id
        self.name = record.name
        self.game = record.game
        self.profile = profile
        self.logs = logs
        self.deps = deps
        self.state = record.state
        self.state_reason = record.state_reason
        self._record = record
        self.runtime = runtime
        """What runs the game: local processes or a container host."""
        self.handle: RuntimeHandle | None = None
        self.generation = 0
        self._stopping_generation = -1
        self._lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready_task: asyncio.Task[None] | None = None
        self._links = LinkKeeper(self)
        self.crashes = CrashKeeper(self)
        self.companions = CompanionKeeper(self)
        """Processes that live and die with the running server (Arma 3 headless clients)."""
        self.keeper = RecordKeeper(
            server_id=record.id,
            server=record.name,
            db=deps.db,
            servers=deps.servers,
            history=deps.history,
            bus=deps.bus,
            snapshot=self._snapshot,
        )
        self.paused = False
        """True during maintenance: crashes are recorded but not restarted."""

    @property
    def link(self) -> GameLink | None:
        """The game's command channel while running (RCon or console), else None."""
        return self._links.link

    @property
    def round_trip(self) -> float | None:
        """Seconds the game took to answer the last liveness probe (None: not measured)."""
        return self._links.round_trip

    @property
    def marker(self) -> str:
        return marker_value(self.deps.instance, self.id)

    def unit(self, companion: str | None = None) -> UnitRef:
        """The server's game (or one of its companions) as its runtime names it."""
        folder = self.deps.folder(self.name)
        return UnitRef(self.deps.instance, self.id, self.name, folder, companion)

    # -- state ---------------------------------------------------------------------------

    def _snapshot(self) -> Snapshot:
        handle = self.handle
        process = None if handle is None else handle.record()
        return Snapshot(self.state, self.state_reason, process)

    async def _transition(
        self, new: ServerState, reason: str, *, expected: bool = True, strict: bool = False
    ) -> None:
        """Move to `new`. Strict moves are persisted first and raise if that fails (they
        are about to cause an effect); the others record a truth that already happened."""
        old = self.state
        check_transition(old, new)
        if strict:
            try:
                await self.keeper.strict_transition(old, new, reason)
            except StorageErrors as exc:
                raise StartRefused(
                    "{name} was not started: the database cannot be written ({exc})",
                    name=self.name,
                    exc=exc,
                ) from None
        self.state = new
        self.state_reason = reason
        if not strict:
            await self.keeper.transition(old, new, reason)
        self.deps.bus.publish(
            ServerStateChanged(
                server_id=self.id,
                server=self.name,
                old=old,
                new=new,
                reason=reason,
                expected=expected,
            )
        )
        async with self._changed:
            self._changed.notify_all()
        if new is S.RUNNING:  # however it got there: ready, adopted, found running
            self.companions.ensure_later()

    async def wait_settled(self, timeout: float) -> ServerState:
        """Wait until the server is out of `starting`/`stopping` (or the timeout passes)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: self.state not in (S.STARTING, S.STOPPING))
        return self.state

    def spawn_task(self, coro: Awaitable[None], name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        task.set_name(f"{self.name}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error(
                "task %s of %s failed", task.get_name(), self.name, exc_info=task.exception()
            )

    # -- start -------------------------------------------------------------------------

    async def start(self, *, wait: bool = True, reason: str = "start requested") -> ServerState:
        """Start the server; refuses with StartRefused (state unchanged) when it cannot."""
        async with self._lock:
            if self.state in ACTIVE_STATES:
                raise already_active(self.name, self.state)
            self.crashes.last_manual_start = time.time()
            await self.keeper.event("manual_start", {})
            self.crashes.cancel_restart()
            await self._start_locked(reason)
        if wait:
            policy = await self.deps.policy(self.id)
            await self.wait_settled(policy.start_timeout + policy.stop_timeout + 5)
        return self.state

    async def _start_locked(self, reason: str) -> None:
        profile = self.profile
        ctx = await self.deps.context(self.id, self.name)
        check_startable(ctx)
        # a game of ours may still run with its record lost: take it back, never start twice
        if await adoption.adopt_stray(self, ctx, reason):
            return
        unit = self.unit()
        # in two steps, so the checks refuse before the profile renders any file
        await self.runtime.prepare(
            unit, check_executable=profile.check_executable, ports=profile.ports(ctx)
        )
        await self.runtime.prepare(unit, files=profile.files(ctx))
        profile.prepare(ctx)
        launch = profile.launch(ctx)
        spec = RunSpec(
            unit,
            launch.argv,
            launch.cwd,
            ctx.folder / CONSOLE_LOG,
            env=launch.env,
            console=launch.console,
            limits=limits_of(ctx.settings),
        )
        await self.logs.flush()  # publish any backlog before readiness listens
        await self._transition(S.STARTING, reason, strict=True)
        lines = self.deps.bus.subscribe(LogLines)
        try:
            handle = await self.runtime.start(spec)
        except OSError as exc:
            lines.close()
            await self._transition(S.FAILED, f"could not start the process: {exc.strerror}")
            raise StartRefused(
                "{name} could not be started: {strerror}", name=self.name, strerror=exc.strerror
            ) from None
        await self._attach(handle)
        readiness.await_ready_later(self, handle, ctx, lines)

    async def _attach(self, handle: RuntimeHandle) -> None:
        """Own this unit: its exit is watched before anything is written about it."""
        self.generation += 1
        self.handle = handle
        exited = handle.watch()
        self.spawn_task(self.crashes.on_exit(handle, exited, self.generation), "exit")
        await self.keeper.process(handle.record())

    # -- stop --------------------------------------------------------------------------

    async def stop(self, *, kill: bool = False, reason: str | None = None) -> ServerState:
        """Graceful stop (the game's way, then TERM, then KILL), or KILL at once.

        A game of ours that runs while the record says otherwise is taken back first, so a
        stop or kill always acts on the real process; a server in `starting`/`stopping`
        with no process at all settles to `stopped` instead of refusing forever.
        """
        async with self._lock:
            if self.handle is None:
                ctx = await self.deps.context(self.id, self.name)
                stray = await adoption.find_stray(self, ctx)
                if stray is not None:
                    await adoption.take_over(self, stray, ready=False)
                elif self.state in RESTING_STATES and self.state is not S.STOPPED:
                    self.crashes.cancel_restart()
                    await self._transition(S.STOPPED, reason or "stop requested")
                    return self.state
                elif self.state in ACTIVE_STATES:
                    self._cancel_ready()
                    await self.companions.stop_all(kill=True)
                    await self._transition(S.STOPPED, "no process was running")
                    return self.state
                else:
                    raise NotRunning("{name} is not running", name=self.name)
            if self.state is S.STOPPING:
                raise NotRunning("{name} is already stopping", name=self.name)
            await self._stop_locked(kill=kill, reason=reason or ("killed" if kill else "stopped"))
        return self.state

    async def _stop_locked(self, *, kill: bool, reason: str) -> None:
        handle = self.handle
        assert handle is not None
        self._stopping_generation = self.generation
        self._cancel_ready()
        await self._transition(S.STOPPING, reason)
        await self.companions.stop_all(kill=kill)  # before the server: they are its clients
        policy = await self.deps.policy(self.id)
        if kill:
            await handle.signal(SIGKILL)
        else:
            ctx = await self.deps.context(self.id, self.name)
            await self._graceful(handle, ctx, policy)
        if not await wait_exit(handle, 10.0):
            _log.error("%s (%s) survived SIGKILL", self.name, handle.describe())
        await self._release_process()
        await self._transition(S.STOPPED, reason)

    async def _graceful(
        self, handle: RuntimeHandle, ctx: ServerContext, policy: LifecyclePolicy
    ) -> None:
        deadline = time.monotonic() + policy.stop_timeout
        try:
            async with asyncio.timeout(policy.stop_timeout):
                await self.profile.graceful_stop(
                    ctx, ProcessControl(self.id, handle, None, self.link)
                )
        except Exception as exc:  # the game may not answer; escalation follows
            _log.info("graceful stop of %s did not complete: %s", self.name, exc)
        if await wait_exit(handle, max(0.0, deadline - time.monotonic())):
            return
        _log.info("%s ignored the graceful stop; sending SIGTERM", self.name)
        await handle.signal(SIGTERM)
        if await wait_exit(handle, policy.term_timeout):
            return
        _log.warning("%s ignored SIGTERM; sending SIGKILL", self.name)
        await handle.signal(SIGKILL)

    async def _release_process(self) -> None:
        """The unit is gone: let go of it, kill what it left behind, record that."""
        await self._links.close()
        if self.handle is not None:
            self.handle.close()
        self.handle = None
        await self.logs.flush()
        await self.runtime.sweep(self.unit())
        await self.keeper.process(None)

    async def restart(self, reason: str = "restart requested") -> ServerState:
        if self.state in ACTIVE_STATES:
            with contextlib.suppress(NotRunning):
                await self.stop(reason=reason)
        return await self.start(reason=reason)

    def _cancel_ready(self) -> None:
        if self._ready_task is not None:
            self._ready_task.cancel()
            self._ready_task = None

    # -- adoption ------------------------------------------------------------------------

    async def resume(
        self,
        found: Sequence[FoundUnit] = (),
        companions: Mapping[str, Sequence[FoundUnit]] | None = None,
    ) -> str:
        """Take up where a previous bot left this server (see core.supervisor.adoption)."""
        return await adoption.resume(self, found, companions)

    # -- teardown ------------------------------------------------------------------------

    async def detach(self) -> None:
        """Let go of the process without stopping it: the bot is shutting down."""
        await self._links.close()
        self.companions.detach()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.keeper.flush()
        if self.handle is not None:
            self.handle.close()
        self.logs.close()

    def uptime(self) -> float | None:
        return None if self.handle is None else self.handle.uptime()
