"""Scheduled restarts and messages, and maintenance windows: what must survive a bot restart."""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass
from typing import Any, Literal

from data.db import Database

__all__ = [
    "MaintenanceRecord",
    "MaintenanceRepository",
    "ScheduleKind",
    "ScheduleRecord",
    "ScheduleRepository",
]

ScheduleKind = Literal["restart", "message", "backup"]


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    id: int
    server_id: int
    kind: ScheduleKind
    spec: str
    """A restart's or backup's `at` text (`06:00`, a cron expression), a message's `every`
    text (`30m`)."""
    interval_s: float | None
    warn: tuple[int, ...]
    message: str
    anchor: float
    """Unix time a message repeats from, so its phase survives a restart."""
    created_at: float
    created_by: str
    last_run: float | None
    """Unix time of the last run that came due, done or skipped: what shows a missed run."""


def _schedule(row: Any) -> ScheduleRecord:
    kind: ScheduleKind = row["kind"] if row["kind"] in ("restart", "backup") else "message"
    return ScheduleRecord(
        id=int(row["id"]),
        server_id=int(row["server_id"]),
        kind=kind,
        spec=str(row["spec"]),
        interval_s=None if row["interval_s"] is None else float(row["interval_s"]),
        warn=tuple(int(m) for m in json.loads(row["warn"])),
        message=str(row["message"]),
        anchor=float(row["anchor"]),
        created_at=float(row["created_at"]),
        created_by=str(row["created_by"]),
        last_run=None if row["last_run"] is None else float(row["last_run"]),
    )


class ScheduleRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self,
        *,
        server_id: int,
        kind: ScheduleKind,
        spec: str,
        created_at: float,
        created_by: str,
        interval_s: float | None = None,
        warn: tuple[int, ...] = (),
        message: str = "",
    ) -> ScheduleRecord:
        schedule_id = await self._db.execute(
            "INSERT INTO schedules(server_id, kind, spec, interval_s, warn, message, anchor,"
            " created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                server_id,
                kind,
                spec,
                interval_s,
                json.dumps(list(warn)),
                message,
                created_at,
                created_at,
                created_by,
            ),
        )
        record = await self.get(schedule_id)
        assert record is not None
        return record

    async def get(self, schedule_id: int) -> ScheduleRecord | None:
        row = await self._db.fetchone("SELECT * FROM schedules WHERE id = ?", (schedule_id,))
        return None if row is None else _schedule(row)

    async def list(self, server_id: int | None = None) -> builtins.list[ScheduleRecord]:
        if server_id is None:
            rows = await self._db.fetchall("SELECT * FROM schedules ORDER BY id")
        else:
            rows = await self._db.fetchall(
                "SELECT * FROM schedules WHERE server_id = ? ORDER BY id", (server_id,)
            )
        return [_schedule(row) for row in rows]

    async def count(self, server_id: int) -> int:
        value = await self._db.fetchval(
            "SELECT COUNT(*) FROM schedules WHERE server_id = ?", (server_id,)
        )
        return int(value or 0)

    async def set_last_run(self, schedule_id: int, ts: float) -> None:
        await self._db.execute("UPDATE schedules SET last_run = ? WHERE id = ?", (ts, schedule_id))

    async def delete(self, schedule_id: int) -> bool:
        return (
            await self._db.execute_rowcount("DELETE FROM schedules WHERE id = ?", (schedule_id,))
            > 0
        )

    async def delete_for_server(self, server_id: int) -> int:
        return await self._db.execute_rowcount(
            "DELETE FROM schedules WHERE server_id = ?", (server_id,)
        )


@dataclass(frozen=True, slots=True)
class MaintenanceRecord:
    server_id: int
    started_at: float
    until: float
    started_by: str


def _maintenance(row: Any) -> MaintenanceRecord:
    return MaintenanceRecord(
        server_id=int(row["server_id"]),
        started_at=float(row["started_at"]),
        until=float(row["until"]),
        started_by=str(row["started_by"]),
    )


class MaintenanceRepository:
    """At most one window per server; starting another replaces it."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, record: MaintenanceRecord) -> None:
        await self._db.execute(
            "INSERT INTO maintenance_windows(server_id, started_at, until, started_by)"
            " VALUES (?, ?, ?, ?) ON CONFLICT(server_id) DO UPDATE SET"
            " started_at = excluded.started_at, until = excluded.until,"
            " started_by = excluded.started_by",
            (record.server_id, record.started_at, record.until, record.started_by),
        )

    async def get(self, server_id: int) -> MaintenanceRecord | None:
        row = await self._db.fetchone(
            "SELECT * FROM maintenance_windows WHERE server_id = ?", (server_id,)
        )
        return None if row is None else _maintenance(row)

    async def list(self) -> builtins.list[MaintenanceRecord]:
        rows = await self._db.fetchall("SELECT * FROM maintenance_windows ORDER BY server_id")
        return [_maintenance(row) for row in rows]

    async def delete(self, server_id: int) -> bool:
        return (
            await self._db.execute_rowcount(
                "DELETE FROM maintenance_windows WHERE server_id = ?", (server_id,)
            )
            > 0
        )
