"""One supervised server: its lifecycle state machine driven by commands and by its process.

Every transition goes through `_transition`, which asks the table, then persists and
publishes. Commands (start/stop/kill) hold a per-server lock; the exit watcher and the
restart timer take the same lock, and re-check the generation of the process they were
about, so a late event never acts on a newer process.

What the server says is what the process does: the exit watcher is set before anything
is written, and a write that fails (disk full, database locked) is caught up later by the
RecordKeeper instead of leaving the server half-way through a move.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.backups.layout import RESTORE_DIR
from core.errors import AlreadyRunning, ConfigWriteError, NotRunning, PortInUse, StartRefused
from core.events import (
    EventBus,
    LogLines,
    ServerCrashed,
    ServerFailed,
    ServerStateChanged,
    Subscription,
)
from core.fsutil import atomic_write, is_within
from core.games.base import GameLink, GameProfile, PortNeed, ServerContext
from core.supervisor.control import ProcessControl
from core.supervisor.game_link import LinkKeeper
from core.supervisor.policy import LifecyclePolicy, decide_after_crash
from core.supervisor.ports import check_ports
from core.supervisor.process import ExitStatus, ProcessHandle, ProcessIdentity, adopt, spawn
from core.supervisor.record_keeper import RecordKeeper, Snapshot, StorageErrors
from core.supervisor.server_logs import ServerLogs
from core.supervisor.states import ACTIVE_STATES, RESTING_STATES, ServerState, check_transition
from core.supervisor.strays import MARKER_ENV, find_marked, marker_value, port_holders
from data.db import Database
from data.repositories.history import HistoryRepository
from data.repositories.servers import ProcessRecord, ServerRecord, ServerRepository

__all__ = ["ManagedServer", "ServerDeps"]

_log = logging.getLogger(__name__)

S = ServerState
CONSOLE_LOG = "console.log"
CONSOLE_FIFO = "console.fifo"
CRASH_LOG_LINES = 15
_PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "HOME", "USER", "TMPDIR")
"""The only parts of the bot's environment a game sees: never the token or the secret key."""


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


class ManagedServer:
    def __init__(
        self, record: ServerRecord, profile: GameProfile, logs: ServerLogs, deps: ServerDeps
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
        self.handle: ProcessHandle | None = None
        self.generation = 0
        self._stopping_generation = -1
        self._lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._restart_task: asyncio.Task[None] | None = None
        self._ready_task: asyncio.Task[None] | None = None
        self._last_manual_start = 0.0
        self._crash_times: collections.deque[float] = collections.deque(maxlen=200)
        self._links = LinkKeeper(self)
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

    # -- state ---------------------------------------------------------------------------

    def _snapshot(self) -> Snapshot:
        handle = self.handle
        return Snapshot(self.state, self.state_reason, None if handle is None else _record(handle))

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
                raise _already(self.name, self.state)
            self._last_manual_start = time.time()
            await self.keeper.event("manual_start", {})
            self._cancel_restart()
            await self._start_locked(reason)
        if wait:
            policy = await self.deps.policy(self.id)
            await self.wait_settled(policy.start_timeout + policy.stop_timeout + 5)
        return self.state

    async def _start_locked(self, reason: str) -> None:
        profile = self.profile
        ctx = await self.deps.context(self.id, self.name)
        if ctx.unreadable_secrets:
            raise _unreadable(self.name, ctx.unreadable_secrets)
        if (ctx.folder / RESTORE_DIR).exists():  # a restore is swapping its files
            raise StartRefused(
                "`{name}` is being restored from a backup; start it once the restore is done",
                name=self.name,
            )
        profile.check_executable()
        # a game of ours may still run with its record lost: take it back, never start twice
        if await self._adopt_stray(ctx, reason):
            return
        try:
            check_ports(profile.ports(ctx))
        except PortInUse as exc:
            raise await _who_holds(exc, profile.ports(ctx)) from None
        ctx.folder.mkdir(parents=True, exist_ok=True)
        for config in profile.files(ctx):
            if not is_within(config.path, ctx.folder):
                raise ConfigWriteError(
                    "refusing to write {name} outside the server", name=config.path.name
                )
            try:
                atomic_write(config.path, config.content, mode=0o600 if config.secret else 0o644)
            except OSError as exc:
                raise ConfigWriteError(
                    "cannot write {name}: {reason}",
                    name=config.path.name,
                    reason=exc.strerror or exc,
                ) from None
        profile.prepare(ctx)
        spec = profile.launch(ctx)
        await self.logs.flush()  # publish any backlog before readiness listens
        env = {key: os.environ[key] for key in _PASSED_ENV if key in os.environ}
        env.update(spec.env)
        env[MARKER_ENV] = self.marker
        await self._transition(S.STARTING, reason, strict=True)
        lines = self.deps.bus.subscribe(LogLines)
        try:
            handle = spawn(
                spec.argv,
                cwd=spec.cwd,
                log_path=ctx.folder / CONSOLE_LOG,
                env=env,
                console_path=ctx.folder / CONSOLE_FIFO if spec.console else None,
            )
        except OSError as exc:
            lines.close()
            await self._transition(S.FAILED, f"could not start the process: {exc.strerror}")
            raise StartRefused(
                "{name} could not be started: {strerror}", name=self.name, strerror=exc.strerror
            ) from None
        await self._attach(handle)
        self._await_ready_later(handle, ctx, lines)

    def _await_ready_later(
        self, handle: ProcessHandle, ctx: ServerContext, lines: Subscription
    ) -> None:
        task = self.spawn_task(self._await_ready(handle, ctx, lines, self.generation), "ready")
        # a stop may cancel the task before it ever runs: the subscription must still go
        task.add_done_callback(lambda _: lines.close())
        self._ready_task = task

    async def _attach(self, handle: ProcessHandle) -> None:
        """Own this process: its exit is watched before anything is written about it."""
        self.generation += 1
        self.handle = handle
        exited = handle.watch()
        self.spawn_task(self._on_exit(handle, exited, self.generation), "exit")
        await self.keeper.process(_record(handle))

    async def _adopt_stray(self, ctx: ServerContext, reason: str) -> bool:
        """A live process carrying this server's marker while we think it rests: adopt it."""
        handle = await self._find_stray(ctx)
        if handle is None:
            return False
        await self._transition(S.STARTING, f"{reason}: found it already running", strict=True)
        await self._attach(handle)
        await self._transition(S.RUNNING, f"adopted pid {handle.pid}, already running")
        self._links.start(handle, self.generation)
        return True

    async def _find_stray(
        self, ctx: ServerContext, found: Sequence[ProcessIdentity] | None = None
    ) -> ProcessHandle | None:
        if found is None:
            found = await asyncio.to_thread(find_marked, self.deps.instance, self.id)
        started_at = self._record.process.started_at if self._record.process else time.time()
        for identity in found:
            handle = adopt(identity, console_path=_console(ctx), started_at=started_at)
            if handle is not None:
                _log.warning("%s: found its game running as pid %d", self.name, handle.pid)
                return handle
        return None

    async def _await_ready(
        self, handle: ProcessHandle, ctx: ServerContext, lines: Subscription, generation: int
    ) -> None:
        policy = await self.deps.policy(self.id)
        try:
            async with asyncio.timeout(policy.start_timeout):
                await self.profile.wait_ready(ctx, ProcessControl(self.id, handle, lines))
        except TimeoutError:
            await self._fail_start(generation, f"not ready after {policy.start_timeout:g} s")
            return
        except Exception as exc:  # a profile's probe failing must not leave it starting
            _log.warning("readiness of %s failed: %s", self.name, exc)
            await self._fail_start(generation, f"readiness check failed: {exc}")
            return
        finally:
            lines.close()
        async with self._lock:
            if self.generation == generation and self.state is S.STARTING:
                await self._transition(S.RUNNING, "ready")
                self._links.start(handle, generation)

    async def _fail_start(self, generation: int, reason: str) -> None:
        async with self._lock:
            if self.generation != generation or self.state is not S.STARTING:
                return
            handle = self.handle
            self._stopping_generation = generation
            if handle is not None:
                handle.signal_group(signal.SIGKILL)
                await self._wait_exit(handle, 10.0)
            await self._release_process()
            await self._transition(S.FAILED, reason, expected=False)
            self.deps.bus.publish(
                ServerFailed(server_id=self.id, server=self.name, reason=reason, crashes=0)
            )

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
                stray = await self._find_stray(ctx)
                if stray is not None:
                    await self._take_over(stray, ready=False)
                elif self.state in RESTING_STATES and self.state is not S.STOPPED:
                    self._cancel_restart()
                    await self._transition(S.STOPPED, reason or "stop requested")
                    return self.state
                elif self.state in ACTIVE_STATES:
                    self._cancel_ready()
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
        policy = await self.deps.policy(self.id)
        if kill:
            handle.signal_group(signal.SIGKILL)
        else:
            ctx = await self.deps.context(self.id, self.name)
            await self._graceful(handle, ctx, policy)
        if not await self._wait_exit(handle, 10.0):
            _log.error("%s (pid %d) survived SIGKILL", self.name, handle.pid)
        await self._release_process()
        await self._transition(S.STOPPED, reason)

    async def _graceful(
        self, handle: ProcessHandle, ctx: ServerContext, policy: LifecyclePolicy
    ) -> None:
        deadline = time.monotonic() + policy.stop_timeout
        try:
            async with asyncio.timeout(policy.stop_timeout):
                await self.profile.graceful_stop(
                    ctx, ProcessControl(self.id, handle, None, self.link)
                )
        except Exception as exc:  # the game may not answer; escalation follows
            _log.info("graceful stop of %s did not complete: %s", self.name, exc)
        if await self._wait_exit(handle, max(0.0, deadline - time.monotonic())):
            return
        _log.info("%s ignored the graceful stop; sending SIGTERM", self.name)
        handle.signal_group(signal.SIGTERM)
        if await self._wait_exit(handle, policy.term_timeout):
            return
        _log.warning("%s ignored SIGTERM; sending SIGKILL", self.name)
        handle.signal_group(signal.SIGKILL)

    @staticmethod
    async def _wait_exit(handle: ProcessHandle, timeout: float) -> bool:
        exited = handle.watch()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(exited)
        except TimeoutError:
            return False
        return True

    async def _release_process(self) -> None:
        """The process is gone: let go of it, kill what it left behind, record that."""
        await self._links.close()
        if self.handle is not None:
            self.handle.close()
        self.handle = None
        await self.logs.flush()
        await self._sweep_strays()
        await self.keeper.process(None)

    async def _sweep_strays(self) -> None:
        """Kill processes of this server that outlived its main one (they hold its ports)."""
        for identity in await asyncio.to_thread(find_marked, self.deps.instance, self.id):
            handle = adopt(identity, console_path=None, started_at=time.time())
            if handle is not None and handle.signal_group(signal.SIGKILL):
                _log.warning("%s: killed pid %d left behind by its game", self.name, handle.pid)
                await self._wait_exit(handle, 5.0)
                handle.close()

    async def restart(self, reason: str = "restart requested") -> ServerState:
        if self.state in ACTIVE_STATES:
            with contextlib.suppress(NotRunning):
                await self.stop(reason=reason)
        return await self.start(reason=reason)

    def _cancel_ready(self) -> None:
        if self._ready_task is not None:
            self._ready_task.cancel()
            self._ready_task = None

    # -- crashes -------------------------------------------------------------------------

    async def _on_exit(
        self, handle: ProcessHandle, exited: asyncio.Future[ExitStatus], generation: int
    ) -> None:
        try:
            status = await exited
        except asyncio.CancelledError:
            return
        if self._stopping_generation == generation:
            return  # stop() or a failed start owns this exit
        async with self._lock:
            if self.generation != generation or self.state not in (S.STARTING, S.RUNNING):
                return
            await self._handle_crash(handle.uptime(), status)

    async def _handle_crash(self, uptime: float, status: ExitStatus) -> None:
        self._cancel_ready()
        await self._release_process()
        last = tuple(line.text for line in self.logs.last_lines(CRASH_LOG_LINES))
        now = time.time()
        self._crash_times.append(now)
        await self.keeper.event(
            "crash",
            {"exit_code": status.exit_code, "signal": status.signal, "uptime": uptime},
            ts=now,
        )
        policy = await self.deps.policy(self.id)
        since = max(now - policy.crash_window, self._last_manual_start)
        crashes = await self._count_crashes(since)
        decision = decide_after_crash(policy, crashes, paused=self.paused)
        why = status.describe()
        await self._transition(S.CRASHED, why, expected=False)
        reason = f"gave up after {crashes} crashes in {policy.crash_window:g} s ({why})"
        if decision.give_up:
            await self._transition(S.FAILED, reason, expected=False)
        self.deps.bus.publish(
            ServerCrashed(
                server_id=self.id,
                server=self.name,
                exit_code=status.exit_code,
                signal=status.signal,
                uptime_s=uptime,
                last_lines=last,
                attempt=decision.attempt,
                max_attempts=decision.max_attempts,
                restart_in_s=decision.restart_in,
            )
        )
        if decision.give_up:
            self.deps.bus.publish(
                ServerFailed(server_id=self.id, server=self.name, reason=reason, crashes=crashes)
            )
        elif decision.restart_in is not None:
            self._schedule_restart(decision.restart_in)

    async def _count_crashes(self, since: float) -> int:
        """Crashes since `since`: the database's count, or ours if it lost some writes."""
        remembered = sum(1 for ts in self._crash_times if ts >= since)
        try:
            stored = await self.deps.history.count_since(self.id, "crash", since)
        except StorageErrors:
            stored = 0
        return max(stored, remembered)

    def _schedule_restart(self, delay: float) -> None:
        self._cancel_restart()
        self._restart_task = self.spawn_task(self._restart_after(delay), "restart")

    def _cancel_restart(self) -> None:
        task, self._restart_task = self._restart_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _restart_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        async with self._lock:
            if self.state is not S.CRASHED or self.paused:
                return
            try:
                await self._start_locked("automatic restart after a crash")
            except StartRefused as exc:
                _log.warning("automatic restart of %s refused: %s", self.name, exc)
                if self.state is S.CRASHED:
                    await self._transition(S.FAILED, f"restart refused: {exc}", expected=False)
                    self.deps.bus.publish(
                        ServerFailed(
                            server_id=self.id, server=self.name, reason=str(exc), crashes=0
                        )
                    )

    # -- adoption ------------------------------------------------------------------------

    async def resume(self, found: Sequence[ProcessIdentity] = ()) -> str:
        """Take up where a previous bot left this server; returns what was done (for logs).

        `found` holds the live processes carrying this server's marker (one scan of /proc
        for all servers): the recorded identity is tried first, then these, so a game whose
        pid never reached the database is adopted too, whatever state the row says.
        """
        async with self._lock:
            record = self._record
            ctx = await self.deps.context(self.id, self.name)
            handle = None
            if record.process is not None and self.state in ACTIVE_STATES:
                handle = adopt(
                    _identity(record.process),
                    console_path=_console(ctx),
                    started_at=record.process.started_at,
                )
            if handle is None:
                handle = await self._find_stray(ctx, found)
            if handle is not None:
                await self._take_over(handle, ready=True)
                return f"adopted pid {handle.pid}"
            if self.state is S.STOPPING:
                await self._release_process()
                await self._transition(S.STOPPED, "stopped while the bot was down")
                return "stopped while the bot was down"
            if self.state in ACTIVE_STATES:
                started = record.process.started_at if record.process else time.time()
                await self._handle_crash(max(0.0, time.time() - started), ExitStatus(None, None))
                return "exited while the bot was down"
            if record.process is not None:
                await self.keeper.process(None)
            if self.state is S.CRASHED and not self.paused:
                policy = await self.deps.policy(self.id)
                self._schedule_restart(policy.backoff_base)
                return "restart scheduled"
            return "nothing to do"

    async def _take_over(self, handle: ProcessHandle, *, ready: bool) -> None:
        """Own a live process found at start-up or by its marker, from whatever state."""
        if self.state in RESTING_STATES:
            self._cancel_restart()
            await self._transition(S.STARTING, f"found its game running (pid {handle.pid})")
            await self._attach(handle)
            await self._transition(S.RUNNING, f"adopted pid {handle.pid}")
            self._links.start(handle, self.generation)
            return
        await self._attach(handle)
        if self.state is S.STARTING and ready:
            ctx = await self.deps.context(self.id, self.name)
            self._await_ready_later(handle, ctx, self.deps.bus.subscribe(LogLines))
        elif self.state is S.STARTING:
            await self._transition(S.RUNNING, f"adopted pid {handle.pid}")
            self._links.start(handle, self.generation)
        elif self.state is S.STOPPING:
            self.spawn_task(self._finish_stop(), "stop")
        else:
            self._links.start(handle, self.generation)

    async def _finish_stop(self) -> None:
        async with self._lock:
            if self.state is not S.STOPPING or self.handle is None:
                return
            handle = self.handle
            self._stopping_generation = self.generation
            policy = await self.deps.policy(self.id)
            ctx = await self.deps.context(self.id, self.name)
            await self._graceful(handle, ctx, policy)
            await self._wait_exit(handle, 10.0)
            await self._release_process()
            await self._transition(S.STOPPED, "stopped")

    # -- teardown ------------------------------------------------------------------------

    async def detach(self) -> None:
        """Let go of the process without stopping it: the bot is shutting down."""
        await self._links.close()
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


def _record(handle: ProcessHandle) -> ProcessRecord:
    identity = handle.identity
    return ProcessRecord(
        identity.pid, identity.create_time, identity.cmdline, handle.started_at, identity.boot_id
    )


def _identity(record: ProcessRecord) -> ProcessIdentity:
    return ProcessIdentity(record.pid, record.create_time, record.cmdline, record.boot_id)


def _console(ctx: ServerContext) -> Path | None:
    console = ctx.folder / CONSOLE_FIFO
    return console if console.exists() else None


def _already(name: str, state: ServerState) -> AlreadyRunning:
    if state is S.STARTING:
        return AlreadyRunning("{name} is already starting", name=name)
    if state is S.STOPPING:
        return AlreadyRunning("{name} is already stopping", name=name)
    return AlreadyRunning("{name} is already running", name=name)


def _unreadable(server: str, keys: Sequence[str]) -> StartRefused:
    return StartRefused(
        "{server} cannot start: its stored {names} cannot be decrypted with this bot's key "
        "(was LANGUARD_SECRET_KEY or secret.key changed?). Set it again with /server set, "
        "or restore the old key.",
        server=server,
        names=", ".join(keys),
    )


async def _who_holds(exc: PortInUse, needs: Sequence[PortNeed]) -> PortInUse:
    """The same refusal, naming the process that holds the port when we can see it."""
    wanted = [n for n in needs if n.port == exc.port and n.protocol == exc.protocol]
    holders = await asyncio.to_thread(port_holders, wanted)
    if not holders:
        return exc
    return PortInUse(exc.port, exc.protocol, holders[0].name, holders[0].pid)
