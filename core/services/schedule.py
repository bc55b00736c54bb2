"""Scheduled restarts, repeating in-game messages and maintenance windows.

Each schedule runs as one task that sleeps until its next warning or run on an injectable
wall clock, so tests move time instead of waiting. Runs are planned from "now": a run that
came due while the bot was down, or while the host slept, is skipped with one log line and
never replayed, and warnings that are already stale are dropped rather than sent late.

A restart schedule restarts a *running* server only: a stopped or crashed server is left
alone (a schedule is not a way to start servers), and so is a server in maintenance (no
warnings either). Repeating messages are said whenever the server runs with a link.
The maintenance windows themselves are kept by `core.services.maintenance`; this service
owns them and answers for them (`start_maintenance`, `in_maintenance`, ...).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING

from core.cron import local_zone, parse_schedule
from core.errors import InvalidInput, NotFound
from core.events import MaintenanceChanged
from core.parsing import format_duration, parse_duration, parse_minutes_list
from core.services.audit import SYSTEM, Actor, AuditLog
from core.services.maintenance import MaintenanceWindows
from core.services.schedule_rules import check_gap, parse_entry_id, sanitize_message
from core.services.schedule_runs import ScheduleRuns, next_run_after
from core.supervisor.server import ManagedServer
from core.supervisor.supervisor import Supervisor
from data.db import Database
from data.repositories.schedules import ScheduleKind, ScheduleRecord, ScheduleRepository

if TYPE_CHECKING:
    from core.services.backups import BackupService

__all__ = ["MaintenanceChanged", "ScheduleEntry", "ScheduleService", "system_clock"]

_log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]

MAX_SCHEDULES_PER_SERVER = 20
MAX_WARN_MINUTES = 180
LABEL_CHARS = 100
DRAIN_TIMEOUT = 60.0


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ScheduleEntry:
    """A schedule as the front end shows it."""

    id: int
    server_id: int
    server: str
    kind: ScheduleKind
    spec: str
    """`daily at 06:00` / the cron expression for restarts, `30m` for messages."""
    warn: tuple[int, ...]
    message: str
    created_by: str
    next_run: datetime
    """In the schedule's zone (the host's by default)."""


class ScheduleService(ScheduleRuns):
    def __init__(
        self,
        supervisor: Supervisor,
        db: Database,
        audit: AuditLog,
        *,
        clock: Clock = system_clock,
        sleep: Sleep = asyncio.sleep,
        tz: tzinfo | None = None,
        on_maintenance: Callable[[MaintenanceChanged], None] | None = None,
    ) -> None:
        self._supervisor = supervisor
        self._schedules = ScheduleRepository(db)
        self._audit = audit
        self._clock = clock
        self._sleep = sleep
        self.tz = tz or local_zone()
        self._maintenance = MaintenanceWindows(
            supervisor,
            db,
            audit,
            now=self._now,
            at=self._at,
            sleep_until=self._sleep_until,
            on_change=on_maintenance,
        )
        self._loops: dict[int, asyncio.Task[None]] = {}
        self._restarts: dict[int, asyncio.Task[None]] = {}
        self._warned: set[tuple[int, float, int]] = set()
        self._started = False
        self.backups: BackupService | None = None
        """What a backup schedule runs (set by the runtime once the BackupService exists)."""

    # -- lifecycle -----------------------------------------------------------------------

    async def load(self) -> None:
        """Read the maintenance windows; call before `Supervisor.start()` so that crash
        alerts raised while servers are re-adopted already see `in_maintenance`."""
        await self._maintenance.load()

    async def start(self) -> None:
        """Apply maintenance to the supervised servers and start every schedule from now."""
        if self._started:
            return
        await self.load()
        self._started = True
        self._maintenance.start()
        now = self._now()
        for record in await self._schedules.list():
            if self._find(record.server_id) is None:
                _log.warning(
                    "schedule #%d: server %d is not supervised; not run",
                    record.id,
                    record.server_id,
                )
                continue
            try:
                if record.kind != "message":
                    await self._note_missed(record, now)
                self._launch(record, since=now)
            except InvalidInput as exc:  # stored before a rule was tightened: keep the rest
                _log.error("schedule #%d cannot run: %s", record.id, exc)

    async def close(self) -> None:
        """Stop every loop; a restart under way is given DRAIN_TIMEOUT s to finish."""
        self._started = False
        tasks = builtins.list(self._loops.values())
        self._loops.clear()
        for task in tasks:
            task.cancel()
        await self._maintenance.close()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        running = builtins.list(self._restarts.values())
        if running:
            _, pending = await asyncio.wait(running, timeout=DRAIN_TIMEOUT)
            for task in pending:
                _log.warning("a scheduled restart did not finish before shutdown; cancelled")
                task.cancel()

    # -- adding and removing ---------------------------------------------------------------

    async def add_restart(
        self, actor: Actor, server_name: str, at: str, warn: str = "15,5,1"
    ) -> ScheduleEntry:
        """Restart the server at `at`, warning players `warn` minutes before."""
        server = self._server_named(server_name)
        schedule = parse_schedule(at, self.tz)
        minutes = tuple(parse_minutes_list(warn, maximum=MAX_WARN_MINUTES))
        check_gap(schedule, minutes)
        await self._check_room(server)
        record = await self._schedules.add(
            server_id=server.id,
            kind="restart",
            spec=schedule.text,
            warn=minutes,
            created_at=self._now(),
            created_by=actor.name[:100],
        )
        await self._audit.record(
            actor,
            "schedule.restart.add",
            server_id=server.id,
            arguments={"at": schedule.text, "warn": builtins.list(minutes)},
            result=f"schedule #{record.id}",
        )
        self._launch(record, since=record.created_at)
        return self._entry(record, server)

    async def add_message(
        self, actor: Actor, server_name: str, every: str, message: str
    ) -> ScheduleEntry:
        """Say `message` in game every `every` (at least a minute) while the server runs."""
        server = self._server_named(server_name)
        seconds = parse_duration(every, minimum=60, maximum=7 * 86400)
        assert seconds is not None
        text = sanitize_message(message)
        await self._check_room(server)
        record = await self._schedules.add(
            server_id=server.id,
            kind="message",
            spec=format_duration(seconds),
            interval_s=seconds,
            message=text,
            created_at=self._now(),
            created_by=actor.name[:100],
        )
        await self._audit.record(
            actor,
            "schedule.message.add",
            server_id=server.id,
            arguments={"every": record.spec, "message": text},
            result=f"schedule #{record.id}",
        )
        self._launch(record, since=record.created_at)
        return self._entry(record, server)

    async def add_backup(self, actor: Actor, server_name: str, when: str) -> ScheduleEntry:
        """Back the server up at `when` (in any state: a stopped server's files count too)."""
        server = self._server_named(server_name)
        schedule = parse_schedule(when, self.tz)
        check_gap(schedule, (), backup=True)
        await self._check_room(server)
        record = await self._schedules.add(
            server_id=server.id,
            kind="backup",
            spec=schedule.text,
            created_at=self._now(),
            created_by=actor.name[:100],
        )
        await self._audit.record(
            actor,
            "schedule.backup.add",
            server_id=server.id,
            arguments={"when": schedule.text},
            result=f"schedule #{record.id}",
        )
        self._launch(record, since=record.created_at)
        return self._entry(record, server)

    async def remove(self, actor: Actor, entry_id: int | str) -> ScheduleEntry:
        """Delete a schedule (`12` or `#12`, as autocomplete sends it); returns what it was."""
        schedule_id = parse_entry_id(entry_id)
        record = await self._schedules.get(schedule_id)
        server = None if record is None else self._find(record.server_id)
        if record is None or server is None:
            raise NotFound(
                "there is no schedule #{schedule_id}; `/schedule list` shows them",
                schedule_id=schedule_id,
            )
        entry = self._entry(record, server)
        task = self._loops.pop(record.id, None)
        if task is not None:
            task.cancel()  # a restart already under way finishes on its own
        await self._schedules.delete(record.id)
        await self._audit.record(
            actor,
            "schedule.remove",
            server_id=server.id,
            arguments={"schedule": record.id, "kind": record.kind, "spec": record.spec},
        )
        return entry

    async def forget_server(self, server_id: int) -> None:
        """Drop a deleted server's schedules and window (the ServerService audits the delete)."""
        for record in await self._schedules.list(server_id):
            task = self._loops.pop(record.id, None)
            if task is not None:
                task.cancel()
        await self._schedules.delete_for_server(server_id)
        await self._maintenance.forget(server_id)

    # -- reading -------------------------------------------------------------------------

    async def list(self, server_name: str | None = None) -> builtins.list[ScheduleEntry]:
        """Schedules (of one server, or all), soonest first."""
        server_id = None if server_name is None else self._server_named(server_name).id
        entries = []
        for record in await self._schedules.list(server_id):
            server = self._find(record.server_id)
            if server is not None:
                entries.append(self._entry(record, server))
        return sorted(entries, key=lambda e: (e.next_run.timestamp(), e.id))

    def describe(self, entry: ScheduleEntry) -> str:
        """A one-line label (autocomplete choices allow 100 characters)."""
        when = entry.next_run.astimezone(self.tz).strftime("%a %H:%M")
        if entry.kind != "message":
            label = f"#{entry.id} {entry.server} · {entry.kind} {entry.spec} · next {when}"
        else:
            label = f"#{entry.id} {entry.server} · every {entry.spec}: {entry.message}"
        return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"

    # -- maintenance -----------------------------------------------------------------------

    async def start_maintenance(self, actor: Actor, server_name: str, minutes: int) -> datetime:
        """Mute alerts and pause auto-restart for `minutes`; returns when it ends."""
        server = self._server_named(server_name)
        return await self._maintenance.begin(actor, server, minutes)

    async def end_maintenance(
        self, server_id: int, *, actor: Actor = SYSTEM, reason: str = "ended early"
    ) -> bool:
        """End a window now (the ServerService calls this on `/server start`); False if none."""
        return await self._maintenance.end(server_id, actor=actor, reason=reason)

    def in_maintenance(self, server_id: int) -> bool:
        """True while alerts for this server are muted."""
        return self.maintenance_until(server_id) is not None

    def maintenance_until(self, server_id: int) -> datetime | None:
        return self._maintenance.until(server_id)

    # -- helpers ---------------------------------------------------------------------------

    async def _note_missed(self, record: ScheduleRecord, now: float) -> None:
        due = next_run_after(
            parse_schedule(record.spec, self.tz), record.last_run or record.created_at
        )
        if due < now:
            _log.warning(
                "%s schedule #%d: the run due at %s was missed while the bot was down; "
                "not replayed",
                record.kind,
                record.id,
                self._at(due),
            )
            await self._schedules.set_last_run(record.id, now)

    def _entry(self, record: ScheduleRecord, server: ManagedServer) -> ScheduleEntry:
        now = self._now()
        if record.kind != "message":
            schedule = parse_schedule(record.spec, self.tz)
            spec, next_run = schedule.describe(), next_run_after(schedule, now)
        else:
            interval = record.interval_s or 60.0
            steps = math.floor((now - record.anchor) / interval) + 1
            spec, next_run = record.spec, record.anchor + steps * interval
        return ScheduleEntry(
            id=record.id,
            server_id=record.server_id,
            server=server.name,
            kind=record.kind,
            spec=spec,
            warn=record.warn,
            message=record.message,
            created_by=record.created_by,
            next_run=self._at(next_run),
        )

    async def _check_room(self, server: ManagedServer) -> None:
        if await self._schedules.count(server.id) >= MAX_SCHEDULES_PER_SERVER:
            raise InvalidInput(
                "{name} already has {MAX_SCHEDULES_PER_SERVER} schedules; remove one "
                "with `/schedule remove` first",
                name=server.name,
                MAX_SCHEDULES_PER_SERVER=MAX_SCHEDULES_PER_SERVER,
            )

    def _server_named(self, name: str) -> ManagedServer:
        cleaned = name.strip() if isinstance(name, str) else ""
        if not cleaned or len(cleaned) > 64:
            raise InvalidInput("name a server from the list (`/server list`)")
        return self._supervisor.by_name(cleaned)
