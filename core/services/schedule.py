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
import dataclasses
import logging
import math
import sqlite3
import unicodedata
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from core.backups.layout import BackupKind
from core.cron import CronSchedule, local_zone, parse_schedule
from core.errors import InvalidInput, LanguardError, NotFound
from core.events import MaintenanceChanged
from core.parsing import format_duration, parse_duration, parse_minutes_list
from core.services.audit import SYSTEM, Actor, AuditLog
from core.services.maintenance import MaintenanceWindows
from core.supervisor.server import ManagedServer
from core.supervisor.states import ServerState
from core.supervisor.supervisor import Supervisor
from data.db import Database
from data.repositories.schedules import ScheduleKind, ScheduleRecord, ScheduleRepository

if TYPE_CHECKING:
    from core.services.backups import BackupService

__all__ = [
    "MaintenanceChanged",
    "ScheduleEntry",
    "ScheduleService",
    "sanitize_message",
    "system_clock",
]

_log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]

MAX_SCHEDULES_PER_SERVER = 20
MAX_MESSAGE_CHARS = 200
MAX_WARN_MINUTES = 180
MIN_RESTART_GAP_MINUTES = 10
MIN_BACKUP_GAP_MINUTES = 60
"""Scheduled backups at most hourly: more only fills the disk (retention keeps a count)."""
LABEL_CHARS = 100
WARN_GRACE = 60.0
"""Seconds a warning or message may be late and still be sent; later ones are dropped."""
RUN_GRACE = 300.0
"""Seconds a restart may be late (a suspended host, a blocked loop) before it counts as missed."""
MAX_NAP = 60.0
"""Longest single sleep, so a wall-clock change is noticed within a minute."""
SAY_TIMEOUT = 10.0
DRAIN_TIMEOUT = 60.0
_INVISIBLE = frozenset("\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


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


def sanitize_message(text: str) -> str:
    """One line of plain text for the game: controls and direction overrides removed."""
    if not isinstance(text, str):
        raise InvalidInput("the message must be text")
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if char.isspace() or category in ("Cc", "Zl", "Zp"):
            kept.append(" ")
        elif category not in ("Cs", "Co", "Cn") and char not in _INVISIBLE:
            kept.append(char)
    cleaned = " ".join("".join(kept).split())
    if not cleaned:
        raise InvalidInput("the message is empty; write the text players should see")
    if len(cleaned) > MAX_MESSAGE_CHARS:
        raise InvalidInput(
            "the message is {length} characters; keep it to {MAX_MESSAGE_CHARS}",
            length=len(cleaned),
            MAX_MESSAGE_CHARS=MAX_MESSAGE_CHARS,
        )
    return cleaned


class ScheduleService:
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
        _check_gap(schedule, minutes)
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
        _check_gap(schedule, (), backup=True)
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
        schedule_id = _entry_id(entry_id)
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

    # -- the loops -----------------------------------------------------------------------

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
            run_at = _next_run(schedule, cursor)
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
            passed = _next_run(schedule, run_at)
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
        if self.in_maintenance(server.id) or server.state is not ServerState.RUNNING:
            why = "in maintenance" if self.in_maintenance(server.id) else server.state.value
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

    # -- helpers ---------------------------------------------------------------------------

    async def _note_missed(self, record: ScheduleRecord, now: float) -> None:
        due = _next_run(parse_schedule(record.spec, self.tz), record.last_run or record.created_at)
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
            spec, next_run = schedule.describe(), _next_run(schedule, now)
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


def _next_run(schedule: CronSchedule, after: float) -> float:
    return schedule.next_after(datetime.fromtimestamp(after, UTC)).timestamp()


def _check_gap(schedule: CronSchedule, warn: tuple[int, ...], *, backup: bool = False) -> None:
    """Refuse restarts closer together than 10 minutes or than the earliest warning, and
    backups closer than an hour."""
    need = max(MIN_RESTART_GAP_MINUTES, (warn[0] + 1) if warn else 0)
    if backup:
        need = MIN_BACKUP_GAP_MINUTES
    probe = dataclasses.replace(schedule, tz=UTC)
    start = datetime(2024, 1, 25, tzinfo=UTC)  # two weeks across a month's end
    previous: datetime | None = None
    for count, run in enumerate(probe.runs(start)):
        if run - start > timedelta(days=15) or count > 3000:
            return
        if previous is not None and run - previous < timedelta(minutes=need):
            gap = int((run - previous).total_seconds() // 60)
            if backup:
                raise InvalidInput(
                    "backups would come {gap} minute(s) apart; leave at least {need} "
                    "minutes between them",
                    gap=gap,
                    need=need,
                )
            if gap == 1:
                raise InvalidInput(
                    "restarts would come 1 minute apart; leave at least {need} "
                    "minutes between them (more than the earliest warning)",
                    need=need,
                )
            raise InvalidInput(
                "restarts would come {gap} minutes apart; leave at least {need} "
                "minutes between them (more than the earliest warning)",
                gap=gap,
                need=need,
            )
        previous = run


def _entry_id(value: int | str) -> int:
    text = str(value).strip().lstrip("#")
    if isinstance(value, bool) or not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise InvalidInput("pick a schedule from the list (`/schedule list` shows their numbers)")
    return int(text)
