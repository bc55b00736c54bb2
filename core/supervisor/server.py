"""One supervised server: its lifecycle state machine driven by commands and by its process.

Every transition goes through `_transition`, which asks the table, persists, then
publishes. Commands (start/stop/kill) hold a per-server lock; the exit watcher and the
restart timer take the same lock, and re-check the generation of the process they were
about, so a late event never acts on a newer process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from core.backoff import Backoff
from core.errors import AlreadyRunning, ConfigWriteError, NotRunning, StartRefused
from core.events import (
    EventBus,
    LogLines,
    ServerCrashed,
    ServerFailed,
    ServerHung,
    ServerStateChanged,
    Subscription,
)
from core.fsutil import atomic_write, is_within
from core.games.base import GameLink, GameProfile, ServerContext
from core.supervisor.policy import LifecyclePolicy, decide_after_crash
from core.supervisor.ports import check_ports
from core.supervisor.process import ExitStatus, ProcessHandle, ProcessIdentity, adopt, spawn
from core.supervisor.server_logs import ServerLogs
from core.supervisor.states import ACTIVE_STATES, ServerState, check_transition
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
    servers: ServerRepository
    history: HistoryRepository
    context: Callable[[int, str], Awaitable[ServerContext]]
    policy: Callable[[int], Awaitable[LifecyclePolicy]]


class _Control:
    """The RuntimeControl a profile gets during readiness and graceful stop."""

    def __init__(
        self,
        server_id: int,
        handle: ProcessHandle,
        lines: Subscription | None,
        link: GameLink | None = None,
    ) -> None:
        self._server_id = server_id
        self._handle = handle
        self._lines = lines
        self.link = link

    @property
    def pid(self) -> int:
        return self._handle.pid

    def is_alive(self) -> bool:
        return self._handle.is_alive()

    def write_console(self, line: str) -> None:
        self._handle.write_console(line)

    async def wait_for_line(self, pattern: re.Pattern[str], timeout: float) -> str:
        if self._lines is None:
            raise RuntimeError("no log subscription for readiness")
        async with asyncio.timeout(timeout):
            while True:
                event = await self._lines.get()
                assert isinstance(event, LogLines)
                if event.server_id != self._server_id:
                    continue
                for line in event.lines:
                    if pattern.search(line.text):
                        return line.text


class ManagedServer:
    def __init__(
        self, record: ServerRecord, profile: GameProfile, logs: ServerLogs, deps: ServerDeps
    ) -> None:
        self.id = record.id
        self.name = record.name
        self.game = record.game
        self.profile = profile
        self.logs = logs
        self._deps = deps
        self.state = record.state
        self.state_reason = record.state_reason
        self._record = record
        self.handle: ProcessHandle | None = None
        self._generation = 0
        self._stopping_generation = -1
        self._lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._restart_task: asyncio.Task[None] | None = None
        self._ready_task: asyncio.Task[None] | None = None
        self._last_manual_start = 0.0
        self.link: GameLink | None = None
        """The game's command channel while running (RCon or console), else None."""
        self._link_task: asyncio.Task[None] | None = None
        self.paused = False
        """True during maintenance: crashes are recorded but not restarted."""

    # -- state ---------------------------------------------------------------------------

    async def _transition(self, new: ServerState, reason: str, *, expected: bool = True) -> None:
        old = self.state
        check_transition(old, new)
        await self._deps.servers.set_state(self.id, new, reason)
        await self._deps.history.add(
            self.id, "transition", {"old": old.value, "new": new.value, "reason": reason}
        )
        self.state = new
        self.state_reason = reason
        self._deps.bus.publish(
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

    def _spawn_task(self, coro: Awaitable[None], name: str) -> asyncio.Task[None]:
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
                raise AlreadyRunning(f"{self.name} is already {self.state.value}")
            self._last_manual_start = time.time()
            await self._deps.history.add(self.id, "manual_start", {})
            self._cancel_restart()
            await self._start_locked(reason)
        if wait:
            policy = await self._deps.policy(self.id)
            await self.wait_settled(policy.start_timeout + policy.stop_timeout + 5)
        return self.state

    async def _start_locked(self, reason: str) -> int:
        profile = self.profile
        ctx = await self._deps.context(self.id, self.name)
        profile.check_executable()
        check_ports(profile.ports(ctx))
        ctx.folder.mkdir(parents=True, exist_ok=True)
        for config in profile.files(ctx):
            if not is_within(config.path, ctx.folder):
                raise ConfigWriteError(f"refusing to write {config.path.name} outside the server")
            try:
                atomic_write(config.path, config.content, mode=0o600 if config.secret else 0o644)
            except OSError as exc:
                raise ConfigWriteError(
                    f"cannot write {config.path.name}: {exc.strerror or exc}"
                ) from None
        profile.prepare(ctx)
        spec = profile.launch(ctx)
        self.logs.flush()  # publish any backlog before readiness listens
        lines = self._deps.bus.subscribe(LogLines)
        env = {key: os.environ[key] for key in _PASSED_ENV if key in os.environ}
        env.update(spec.env)
        await self._transition(S.STARTING, reason)
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
            raise StartRefused(f"{self.name} could not be started: {exc.strerror}") from None
        await self._attach(handle, ctx)
        self._ready_task = self._spawn_task(
            self._await_ready(handle, ctx, lines, self._generation), "ready"
        )
        return self._generation

    async def _attach(self, handle: ProcessHandle, ctx: ServerContext) -> None:
        self._generation += 1
        self.handle = handle
        await self._deps.servers.set_process(
            self.id,
            ProcessRecord(
                handle.pid, handle.identity.create_time, handle.identity.cmdline, handle.started_at
            ),
        )
        exited = handle.watch()
        self._spawn_task(self._on_exit(handle, exited, self._generation), "exit")

    async def _await_ready(
        self, handle: ProcessHandle, ctx: ServerContext, lines: Subscription, generation: int
    ) -> None:
        policy = await self._deps.policy(self.id)
        try:
            async with asyncio.timeout(policy.start_timeout):
                await self.profile.wait_ready(ctx, _Control(self.id, handle, lines))
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
            if self._generation == generation and self.state is S.STARTING:
                await self._transition(S.RUNNING, "ready")
                self._start_link(handle, generation)

    async def _fail_start(self, generation: int, reason: str) -> None:
        async with self._lock:
            if self._generation != generation or self.state is not S.STARTING:
                return
            handle = self.handle
            self._stopping_generation = generation
            if handle is not None:
                handle.signal_group(signal.SIGKILL)
                await self._wait_exit(handle, 10.0)
            await self._release_process()
            await self._transition(S.FAILED, reason, expected=False)
            self._deps.bus.publish(
                ServerFailed(server_id=self.id, server=self.name, reason=reason, crashes=0)
            )

    # -- stop --------------------------------------------------------------------------

    async def stop(self, *, kill: bool = False, reason: str | None = None) -> ServerState:
        """Graceful stop (the game's way, then TERM, then KILL), or KILL at once."""
        async with self._lock:
            if self.state in (S.CRASHED, S.FAILED):
                self._cancel_restart()
                await self._transition(S.STOPPED, reason or "stop requested")
                return self.state
            if self.state not in ACTIVE_STATES or self.handle is None:
                raise NotRunning(f"{self.name} is not running")
            if self.state is S.STOPPING:
                raise NotRunning(f"{self.name} is already stopping")
            await self._stop_locked(kill=kill, reason=reason or ("killed" if kill else "stopped"))
        return self.state

    async def _stop_locked(self, *, kill: bool, reason: str) -> None:
        handle = self.handle
        assert handle is not None
        self._stopping_generation = self._generation
        if self._ready_task is not None:
            self._ready_task.cancel()
        await self._transition(S.STOPPING, reason)
        policy = await self._deps.policy(self.id)
        if kill:
            handle.signal_group(signal.SIGKILL)
        else:
            ctx = await self._deps.context(self.id, self.name)
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
                await self.profile.graceful_stop(ctx, _Control(self.id, handle, None, self.link))
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
        await self._close_link()
        if self.handle is not None:
            self.handle.close()
        self.handle = None
        self.logs.flush()
        await self._deps.servers.set_process(self.id, None)

    async def restart(self, reason: str = "restart requested") -> ServerState:
        if self.state in ACTIVE_STATES:
            with contextlib.suppress(NotRunning):
                await self.stop(reason=reason)
        return await self.start(reason=reason)

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
            if self._generation != generation or self.state not in (S.STARTING, S.RUNNING):
                return
            await self._handle_crash(handle, status)

    async def _handle_crash(self, handle: ProcessHandle, status: ExitStatus) -> None:
        uptime = handle.uptime()
        if self._ready_task is not None:
            self._ready_task.cancel()
        await self._release_process()
        last = tuple(line.text for line in self.logs.last_lines(CRASH_LOG_LINES))
        now = time.time()
        await self._deps.history.add(
            self.id,
            "crash",
            {"exit_code": status.exit_code, "signal": status.signal, "uptime": uptime},
            ts=now,
        )
        policy = await self._deps.policy(self.id)
        since = max(now - policy.crash_window, self._last_manual_start)
        crashes = await self._deps.history.count_since(self.id, "crash", since)
        decision = decide_after_crash(policy, crashes, paused=self.paused)
        why = status.describe()
        await self._transition(S.CRASHED, why, expected=False)
        reason = f"gave up after {crashes} crashes in {policy.crash_window:g} s ({why})"
        if decision.give_up:
            await self._transition(S.FAILED, reason, expected=False)
        self._deps.bus.publish(
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
            self._deps.bus.publish(
                ServerFailed(server_id=self.id, server=self.name, reason=reason, crashes=crashes)
            )
        elif decision.restart_in is not None:
            self._schedule_restart(decision.restart_in)

    def _schedule_restart(self, delay: float) -> None:
        self._cancel_restart()
        self._restart_task = self._spawn_task(self._restart_after(delay), "restart")

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
                    self._deps.bus.publish(
                        ServerFailed(
                            server_id=self.id, server=self.name, reason=str(exc), crashes=0
                        )
                    )

    # -- game link and liveness ------------------------------------------------------------

    def _start_link(self, handle: ProcessHandle, generation: int) -> None:
        self._link_task = self._spawn_task(self._run_link(handle, generation), "link")

    async def _run_link(self, handle: ProcessHandle, generation: int) -> None:
        """Open the game's link (retrying while it runs), then probe liveness at an interval."""
        backoff = Backoff(base=1.0, cap=30.0)
        ctx = await self._deps.context(self.id, self.name)
        while self.link is None:
            if self._generation != generation or self.state is not S.RUNNING:
                return
            try:
                link = await self.profile.open_link(
                    ctx, _Control(self.id, handle, None), self._deps.bus
                )
            except Exception as exc:  # the game may still be coming up: retry, never give up
                _log.info("link to %s not open yet: %s", self.name, exc)
                await asyncio.sleep(backoff.next())
                continue
            if link is None:
                return
            self.link = link
        await self._probe_liveness(handle, generation)

    async def _probe_liveness(self, handle: ProcessHandle, generation: int) -> None:
        failures = 0
        while True:
            policy = await self._deps.policy(self.id)
            if policy.liveness_interval <= 0:
                return
            await asyncio.sleep(policy.liveness_interval)
            link = self.link
            if link is None or self._generation != generation or self.state is not S.RUNNING:
                return
            try:
                async with asyncio.timeout(max(policy.liveness_interval, 5.0)):
                    await link.probe()
            except Exception as exc:  # any failure to answer counts
                failures += 1
                _log.warning(
                    "%s did not answer the liveness probe (%d/%d): %s",
                    self.name,
                    failures,
                    policy.liveness_failures,
                    exc,
                )
            else:
                failures = 0
                continue
            if failures >= policy.liveness_failures and handle.is_alive() and not self.paused:
                reason = f"hung: no answer to {failures} liveness probes in a row"
                self._deps.bus.publish(
                    ServerHung(server_id=self.id, server=self.name, reason=reason)
                )
                self._link_task = None  # restart closes the link; do not cancel ourselves
                self._spawn_task(self._restart_hung(reason), "hang-restart")
                return

    async def _restart_hung(self, reason: str) -> None:
        try:
            await self.restart(reason=reason)
        except StartRefused as exc:
            _log.warning("restart of hung %s refused: %s", self.name, exc)

    async def _close_link(self) -> None:
        task, self._link_task = self._link_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        link, self.link = self.link, None
        if link is not None:
            try:
                await link.close()
            except Exception as exc:  # closing must never block a stop
                _log.debug("closing the link of %s failed: %s", self.name, exc)

    # -- adoption ------------------------------------------------------------------------

    async def resume(self) -> str:
        """Take up where a previous bot left this server; returns what was done (for logs)."""
        async with self._lock:
            record = self._record
            ctx = await self._deps.context(self.id, self.name)
            if record.process is not None and self.state in ACTIVE_STATES:
                identity = ProcessIdentity(
                    record.process.pid, record.process.create_time, record.process.cmdline
                )
                console = ctx.folder / CONSOLE_FIFO
                handle = adopt(
                    identity,
                    console_path=console if console.exists() else None,
                    started_at=record.process.started_at,
                )
                if handle is not None:
                    await self._attach(handle, ctx)
                    if self.state is S.STARTING:
                        lines = self._deps.bus.subscribe(LogLines)
                        self._ready_task = self._spawn_task(
                            self._await_ready(handle, ctx, lines, self._generation), "ready"
                        )
                    elif self.state is S.STOPPING:
                        self._spawn_task(self._finish_stop(), "stop")
                    else:
                        self._start_link(handle, self._generation)
                    return f"adopted pid {handle.pid}"
                gone = ProcessHandle(identity, started_at=record.process.started_at)
                if self.state is S.STOPPING:
                    await self._release_process()
                    await self._transition(S.STOPPED, "stopped while the bot was down")
                    return "stopped while the bot was down"
                await self._handle_crash(gone, ExitStatus(None, None))
                return "exited while the bot was down"
            if record.process is not None:
                await self._deps.servers.set_process(self.id, None)
            if self.state is S.CRASHED and not self.paused:
                policy = await self._deps.policy(self.id)
                self._schedule_restart(policy.backoff_base)
                return "restart scheduled"
            return "nothing to do"

    async def _finish_stop(self) -> None:
        async with self._lock:
            if self.state is not S.STOPPING or self.handle is None:
                return
            handle = self.handle
            self._stopping_generation = self._generation
            policy = await self._deps.policy(self.id)
            ctx = await self._deps.context(self.id, self.name)
            await self._graceful(handle, ctx, policy)
            await self._wait_exit(handle, 10.0)
            await self._release_process()
            await self._transition(S.STOPPED, "stopped")

    # -- teardown ------------------------------------------------------------------------

    async def detach(self) -> None:
        """Let go of the process without stopping it: the bot is shutting down."""
        await self._close_link()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.handle is not None:
            self.handle.close()
        self.logs.close()

    def uptime(self) -> float | None:
        return None if self.handle is None else self.handle.uptime()
