"""The schedules' run loops: restart warnings and restarts, backups, repeating messages.

A mixin of ScheduleService, which owns the state below; it logs under the service's name.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import math
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from core.backups.layout import BackupKind
from core.cron import CronSchedule, parse_schedule
from core.errors import LanguardError, NotFound
from core.services.audit import SYSTEM, AuditLog
from core.supervisor.server import ManagedServer
from core.supervisor.states import ServerState
from core.supervisor.supervisor import Supervisor
from data.repositories.schedules import ScheduleRecord, ScheduleRepository

if TYPE_CHECKING:
    from core.services.backups import BackupService

__all__ = ["ScheduleRuns", "next_run_after"]

_log = logging.getLogger("core.services.schedule")

WARN_GRACE = 60.0
"""Seconds a warning or message may be late and still be sent; later ones are dropped."""
RUN_GRACE = 300.0
"""Seconds a restart may be late (a suspended host, a blocked loop) before it counts as missed."""
MAX_NAP = 60.0
"""Longest single sleep, so a wall-clock change is noticed within a minute."""
SAY_TIMEOUT = 10.0


def next_run_after(schedule: CronSchedule, after: float) -> float:
    return schedule.next_after(datetime.fromtimestamp(after, UTC)).timestamp()


class ScheduleRuns:
    """One task per schedule, sleeping on the service's clock until its next warning or run."""

    _supervisor: Supervisor
    _schedules: ScheduleRepository
    _audit: AuditLog
    _clock: Callable[[], datetime]
    _sleep: Callable[[float], Awaitable[None]]
    tz: tzinfo
    _loops: dict[int, asyncio.Task[None]]
    _restarts: dict[int, asyncio.Task[None]]
    _warned: set[tuple[int, float, int]]
    _started: bool
    backups: BackupService | None

    if TYPE_CHECKING:

        def in_maintenance(self, server_id: int) -> bool: ...

    def _launch(self, record: ScheduleRecord, *, since: float) -> None:
        if not self._started:
            return
        if record.kind != "message":  # a restart's or a backup's loop
            loop: Coroutine[Any, Any, None] = self._restart_loop(
                record, parse_schedule(record.spec, self.tz), since
            )
        else:
            loop = self._message_loop(record, since)
        self._loops[record.id] = self._spawn(loop, f"schedule-{record.id}", self._loops)

    def _spawn(
        self, coro: Coroutine[Any, Any, None], name: str, registry: dict[int, asyncio.Task[None]]
    ) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)

        def done(task: asyncio.Task[None]) -> None:
            for key, value in builtins.list(registry.items()):
                if value is task:
                    del registry[key]
            if not task.cancelled() and task.exception() is not None:
                _log.error("%s stopped", name, exc_info=task.exception())

        task.add_done_callback(done)
        return task

    async def _restart_loop(
        self, record: ScheduleRecord, schedule: CronSchedule, since: float
    ) -> None:
        cursor = since
        while True:
            run_at = next_run_after(schedule, cursor)
            for minutes in record.warn:
                at = run_at - minutes * 60
                await self._sleep_until(at)
                if self._now() - at <= WARN_GRACE:
                    await self._warn(record, run_at, minutes)
            await self._sleep_until(run_at)
            late = self._now() - run_at
            try:
                await self._schedules.set_last_run(record.id, run_at)
            except sqlite3.Error as exc:  # only the missed-run log line depends on it
                _log.warning("%s schedule #%d: last run not saved: %s", record.kind, record.id, exc)
            if late > RUN_GRACE:
                _log.warning(
                    "%s schedule #%d: the run due at %s was missed (%.0f s late); not replayed",
                    record.kind,
                    record.id,
                    self._at(run_at),
                    late,
                )
            elif record.kind == "backup":
                await self._run_backup(record)
            else:
                await self._run_restart(record)
            cursor = max(run_at, self._now())
            passed = next_run_after(schedule, run_at)
            if passed <= cursor:
                _log.info(
                    "%s schedule #%d: the run due at %s passed meanwhile (a slow "
                    "restart or backup, or a suspended host); not replayed",
                    record.kind,
                    record.id,
                    self._at(passed),
                )

    async def _warn(self, record: ScheduleRecord, run_at: float, minutes: int) -> None:
        key = (record.server_id, run_at, minutes)
        server = self._find(record.server_id)
        if server is None or key in self._warned or self.in_maintenance(record.server_id):
            return  # another schedule of this server already warned for the same restart
        if await self._say(server, f"Server restart in {minutes} minute{'s' * (minutes != 1)}"):
            self._warned = {k for k in self._warned if k[1] > self._now() - 86400}
            self._warned.add(key)

    async def _run_restart(self, record: ScheduleRecord) -> None:
        server = self._find(record.server_id)
        if server is None:
            return
        away = self._supervisor.host_away(server)
        if self.in_maintenance(server.id) or server.state is not ServerState.RUNNING or away:
            why = "in maintenance" if self.in_maintenance(server.id) else server.state.value
            why = "on a host that does not answer" if away else why
            _log.info("restart schedule #%d: %s is %s; skipped", record.id, server.name, why)
            return
        if server.id in self._restarts:
            _log.info("restart schedule #%d: %s is already restarting", record.id, server.name)
            return
        task = self._spawn(self._restart(server, record), f"restart-{server.id}", self._restarts)
        self._restarts[server.id] = task
        # wait without owning it: removing the schedule must not cut a restart in half, and
        # a failure is logged by the task itself
        await asyncio.wait([task])

    async def _restart(self, server: ManagedServer, record: ScheduleRecord) -> None:
        _log.info("restart schedule #%d: restarting %s", record.id, server.name)
        try:
            state = await server.restart(reason="scheduled restart")
        except LanguardError as exc:
            _log.warning("scheduled restart of %s failed: %s", server.name, exc)
            result, ok = str(exc), False
        else:
            result, ok = f"now {state.value}", state is ServerState.RUNNING
        await self._audit.record(
            SYSTEM,
            "schedule.restart.run",
            server_id=server.id,
            arguments={"schedule": record.id},
            result=result,
            ok=ok,
        )

    async def _run_backup(self, record: ScheduleRecord) -> None:
        """Queue the backup and wait for it, so a slow one skips the next run, never doubles."""
        server = self._find(record.server_id)
        if server is None or self.backups is None:
            _log.warning("backup schedule #%d: nothing to back up with; skipped", record.id)
            return
        try:
            job = self.backups.backup(SYSTEM, server.name, kind=BackupKind.SCHEDULED)
            result = await job.result()
        except LanguardError as exc:  # audited by the BackupService; the next run may work
            _log.warning("scheduled backup of %s failed: %s", server.name, exc)
        except Exception:
            _log.exception("scheduled backup of %s failed", server.name)
        else:
            _log.info("backup schedule #%d: %s written", record.id, result.backup.name)

    async def _message_loop(self, record: ScheduleRecord, since: float) -> None:
        interval = record.interval_s or 60.0
        cursor = since
        while True:
            at = record.anchor + (math.floor((cursor - record.anchor) / interval) + 1) * interval
            await self._sleep_until(at)
            now = self._now()
            server = self._find(record.server_id)
            if now - at <= WARN_GRACE and server is not None:
                await self._say(server, record.message)
            cursor = max(at, now - WARN_GRACE)

    async def _say(self, server: ManagedServer, text: str) -> bool:
        link = server.link
        if server.state is not ServerState.RUNNING or link is None:
            _log.debug("%s is not running with a link; not said: %s", server.name, text)
            return False
        try:
            async with asyncio.timeout(SAY_TIMEOUT):
                await link.say(text)
        except Exception as exc:  # the game may not answer; the next one may get through
            _log.warning("saying a scheduled message on %s failed: %s", server.name, exc)
            return False
        return True

    def _find(self, server_id: int) -> ManagedServer | None:
        try:
            return self._supervisor.get(server_id)
        except NotFound:
            return None

    def _now(self) -> float:
        return self._clock().timestamp()

    def _at(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, self.tz)

    async def _sleep_until(self, ts: float) -> None:
        while (remaining := ts - self._now()) > 0:
            await self._sleep(min(remaining, MAX_NAP))
