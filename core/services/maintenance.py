"""Maintenance windows: alerts muted and auto-restart paused for a while, per server.

Kept apart from the schedules because a window is its own small state machine (stored,
timed, ended on time or early) that the ScheduleService owns and only asks "is this server
in maintenance?". The window runs on the schedule's clock, so tests move time for both.

Maintenance sets `ManagedServer.paused` (crashes are recorded, not restarted) until its end
time, which is stored, so a bot restart keeps it; alert code asks `in_maintenance`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any

from core.errors import InvalidInput, NotFound
from core.events import MaintenanceChanged
from core.services.audit import SYSTEM, Actor, AuditLog
from core.supervisor.server import ManagedServer
from core.supervisor.supervisor import Supervisor
from data.db import Database
from data.repositories.schedules import MaintenanceRecord, MaintenanceRepository

__all__ = ["MAX_MAINTENANCE_MINUTES", "MaintenanceWindows"]

_log = logging.getLogger(__name__)

MAX_MAINTENANCE_MINUTES = 7 * 24 * 60


class MaintenanceWindows:
    """The servers' maintenance windows, stored and ended on time by a task each.

    `now`, `at` and `sleep_until` are the owner's clock: a timestamp now, a timestamp as a
    datetime in the owner's zone, and a sleep until a timestamp.
    """

    def __init__(
        self,
        supervisor: Supervisor,
        db: Database,
        audit: AuditLog,
        *,
        now: Callable[[], float],
        at: Callable[[float], datetime],
        sleep_until: Callable[[float], Awaitable[None]],
        on_change: Callable[[MaintenanceChanged], None] | None = None,
    ) -> None:
        self._supervisor = supervisor
        self._repo = MaintenanceRepository(db)
        self._audit = audit
        self._now = now
        self._at = at
        self._sleep_until = sleep_until
        self._on_change = on_change
        self._until: dict[int, float] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._loaded = False
        self._started = False

    # -- lifecycle -----------------------------------------------------------------------

    async def load(self) -> None:
        """Read the stored windows, dropping those that ended while the bot was down."""
        if self._loaded:
            return
        now = self._now()
        for window in await self._repo.list():
            if window.until <= now:
                await self._repo.delete(window.server_id)
                _log.info("maintenance of server %d ended while the bot was down", window.server_id)
            else:
                self._until[window.server_id] = window.until
        self._loaded = True

    def start(self) -> None:
        """Pause the servers in maintenance and time each window's end."""
        if self._started:
            return
        self._started = True
        for server_id, until in list(self._until.items()):
            self._open(server_id, until)

    async def close(self) -> None:
        """Stop the window timers; the windows stay stored for the next start."""
        self._started = False
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- windows -------------------------------------------------------------------------

    async def begin(self, actor: Actor, server: ManagedServer, minutes: int) -> datetime:
        """Mute alerts and pause auto-restart for `minutes`; returns when it ends."""
        if isinstance(minutes, bool) or not isinstance(minutes, int):
            raise InvalidInput("give the maintenance length as a whole number of minutes")
        if not 1 <= minutes <= MAX_MAINTENANCE_MINUTES:
            raise InvalidInput(
                "maintenance lasts 1 to {MAX_MAINTENANCE_MINUTES} minutes (a week)",
                MAX_MAINTENANCE_MINUTES=MAX_MAINTENANCE_MINUTES,
            )
        now = self._now()
        until = now + minutes * 60
        await self._repo.put(MaintenanceRecord(server.id, now, until, actor.name[:100]))
        self._until[server.id] = until
        self._open(server.id, until)
        ends = self._at(until)
        await self._audit.record(
            actor,
            "maintenance.start",
            server_id=server.id,
            arguments={"minutes": minutes},
            result=f"until {ends.isoformat(timespec='minutes')}",
        )
        self._notify(
            MaintenanceChanged(
                server_id=server.id, server=server.name, active=True, until=ends, reason="started"
            )
        )
        return ends

    async def end(
        self, server_id: int, *, actor: Actor = SYSTEM, reason: str = "ended early"
    ) -> bool:
        """End a window now; False if the server has none."""
        known = self._until.pop(server_id, None) is not None
        self._close(server_id)
        deleted = await self._repo.delete(server_id)
        if not (known or deleted):
            return False
        server = self._find(server_id)
        if server is not None:
            server.paused = False
        await self._audit.record(actor, "maintenance.end", server_id=server_id, result=reason)
        name = server.name if server is not None else f"#{server_id}"
        self._notify(
            MaintenanceChanged(
                server_id=server_id, server=name, active=False, until=None, reason=reason
            )
        )
        _log.info("maintenance of %s %s", name, reason)
        return True

    def until(self, server_id: int) -> datetime | None:
        """When the server's window ends; None when it is not in maintenance."""
        until = self._until.get(server_id)
        return None if until is None or until <= self._now() else self._at(until)

    async def forget(self, server_id: int) -> None:
        """Drop a deleted server's window, without audit or notice."""
        self._close(server_id)
        self._until.pop(server_id, None)
        await self._repo.delete(server_id)

    # -- timers --------------------------------------------------------------------------

    def _open(self, server_id: int, until: float) -> None:
        self._close(server_id)
        server = self._find(server_id)
        if server is not None:
            server.paused = True
        if self._started:
            self._tasks[server_id] = self._spawn(
                self._window(server_id, until), f"maintenance-{server_id}"
            )

    def _close(self, server_id: int) -> None:
        task = self._tasks.pop(server_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _window(self, server_id: int, until: float) -> None:
        await self._sleep_until(until)
        if self._until.get(server_id) == until:
            await self.end(server_id, reason="ended on time")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)

        def done(task: asyncio.Task[None]) -> None:
            for key, value in list(self._tasks.items()):
                if value is task:
                    del self._tasks[key]
            if not task.cancelled() and task.exception() is not None:
                _log.error("%s stopped", name, exc_info=task.exception())

        task.add_done_callback(done)
        return task

    def _notify(self, change: MaintenanceChanged) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change(change)
        except Exception:
            _log.exception("maintenance listener failed")

    def _find(self, server_id: int) -> ManagedServer | None:
        try:
            return self._supervisor.get(server_id)
        except NotFound:
            return None
