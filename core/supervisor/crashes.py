"""What a server's unexpected exit leads to: the crash record, the alert, the restart.

A part of ManagedServer kept apart by subject (it shares the server's lock and
internals): the exit watcher, the crash count within the window (the database's or our
own if writes were lost), and the backoff timer that restarts a crashed server.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import TYPE_CHECKING

from core.errors import StartRefused
from core.events import ServerCrashed, ServerFailed
from core.supervisor.policy import decide_after_crash
from core.supervisor.record_keeper import StorageErrors
from core.supervisor.runtime_api import ExitStatus, RuntimeHandle
from core.supervisor.states import ServerState

if TYPE_CHECKING:
    from core.supervisor.server import ManagedServer

__all__ = ["CRASH_LOG_LINES", "CrashKeeper"]

_log = logging.getLogger(__name__)

S = ServerState
CRASH_LOG_LINES = 15


class CrashKeeper:
    """One server's crashes: recorded, published, and restarted per its policy."""

    def __init__(self, server: ManagedServer) -> None:
        self._server = server
        self.times: collections.deque[float] = collections.deque(maxlen=200)
        self.last_manual_start = 0.0
        """A manual start resets the count: only crashes after it count."""
        self._restart_task: asyncio.Task[None] | None = None

    async def on_exit(
        self, handle: RuntimeHandle, exited: asyncio.Future[ExitStatus], generation: int
    ) -> None:
        server = self._server
        try:
            status = await exited
        except asyncio.CancelledError:
            return
        if server._stopping_generation == generation:
            return  # stop() or a failed start owns this exit
        async with server._lock:
            if server.generation != generation or server.state not in (S.STARTING, S.RUNNING):
                return
            await self.handle(handle.uptime(), status)

    async def handle(self, uptime: float, status: ExitStatus) -> None:
        """The process is gone without being asked: record, alert, restart or give up.
        The caller holds the server's lock."""
        server = self._server
        server._cancel_ready()
        await server.companions.stop_all(kill=True)  # they never reconnect by themselves
        await server._release_process()
        last = tuple(line.text for line in server.logs.last_lines(CRASH_LOG_LINES))
        now = time.time()
        self.times.append(now)
        await server.keeper.event(
            "crash",
            {"exit_code": status.exit_code, "signal": status.signal, "uptime": uptime},
            ts=now,
        )
        policy = await server.deps.policy(server.id)
        since = max(now - policy.crash_window, self.last_manual_start)
        crashes = await self.count(since)
        decision = decide_after_crash(policy, crashes, paused=server.paused)
        why = status.describe()
        await server._transition(S.CRASHED, why, expected=False)
        reason = f"gave up after {crashes} crashes in {policy.crash_window:g} s ({why})"
        if decision.give_up:
            await server._transition(S.FAILED, reason, expected=False)
        server.deps.bus.publish(
            ServerCrashed(
                server_id=server.id,
                server=server.name,
                exit_code=status.exit_code,
                signal=status.signal,
                uptime_s=uptime,
                last_lines=last,
                attempt=decision.attempt,
                max_attempts=decision.max_attempts,
                restart_in_s=decision.restart_in,
                oom_killed=status.oom_killed,
            )
        )
        if decision.give_up:
            server.deps.bus.publish(
                ServerFailed(
                    server_id=server.id, server=server.name, reason=reason, crashes=crashes
                )
            )
        elif decision.restart_in is not None:
            self.schedule_restart(decision.restart_in)

    async def count(self, since: float) -> int:
        """Crashes since `since`: the database's count, or ours if it lost some writes."""
        remembered = sum(1 for ts in self.times if ts >= since)
        try:
            stored = await self._server.deps.history.count_since(self._server.id, "crash", since)
        except StorageErrors:
            stored = 0
        return max(stored, remembered)

    def schedule_restart(self, delay: float) -> None:
        self.cancel_restart()
        self._restart_task = self._server.spawn_task(self._restart_after(delay), "restart")

    def cancel_restart(self) -> None:
        task, self._restart_task = self._restart_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _restart_after(self, delay: float) -> None:
        server = self._server
        await asyncio.sleep(delay)
        async with server._lock:
            if server.state is not S.CRASHED or server.paused:
                return
            try:
                await server._start_locked("automatic restart after a crash")
            except StartRefused as exc:
                _log.warning("automatic restart of %s refused: %s", server.name, exc)
                if server.state is S.CRASHED:
                    await server._transition(S.FAILED, f"restart refused: {exc}", expected=False)
                    server.deps.bus.publish(
                        ServerFailed(
                            server_id=server.id, server=server.name, reason=str(exc), crashes=0
                        )
                    )
