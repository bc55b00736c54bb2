"""Servers: identity, lifecycle state and the process the database knows about."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from core.supervisor.states import ServerState
from data.db import Database

__all__ = ["ProcessRecord", "ServerRecord", "ServerRepository"]


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    """What identifies a live process across bot restarts: pid alone is reused by the OS."""

    pid: int
    create_time: float
    """Seconds from boot to the process start (exact clock ticks on Linux)."""
    cmdline: tuple[str, ...]
    """For display only: it changes at every exec after spawn, so it never decides adoption."""
    started_at: float
    boot_id: str = ""


@dataclass(frozen=True, slots=True)
class ServerRecord:
    id: int
    name: str
    game: str
    state: ServerState
    state_reason: str
    state_changed_at: float
    process: ProcessRecord | None
    created_at: float
    host: str = "local"
    """The host (hosts.toml) the server runs on; `local`: a process on the bot's machine."""


def _record(row: Any) -> ServerRecord:
    process = None
    if row["pid"] is not None:
        process = ProcessRecord(
            pid=int(row["pid"]),
            create_time=float(row["pid_create_time"]),
            cmdline=tuple(json.loads(row["cmdline"] or "[]")),
            started_at=float(row["started_at"] or 0.0),
            boot_id=str(row["boot_id"] or ""),
        )
    return ServerRecord(
        id=int(row["id"]),
        name=str(row["name"]),
        game=str(row["game"]),
        state=ServerState(row["state"]),
        state_reason=str(row["state_reason"]),
        state_changed_at=float(row["state_changed_at"]),
        process=process,
        created_at=float(row["created_at"]),
        host=str(row["host"] or "local"),
    )


class ServerRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, name: str, game: str, host: str = "local") -> ServerRecord:
        now = time.time()
        server_id = await self._db.execute(
            "INSERT INTO servers(name, game, created_at, state_changed_at, host)"
            " VALUES (?, ?, ?, ?, ?)",
            (name, game, now, now, host),
        )
        record = await self.get(server_id)
        assert record is not None
        return record

    async def get(self, server_id: int) -> ServerRecord | None:
        row = await self._db.fetchone(
            "SELECT * FROM servers WHERE id = ? AND archived_at IS NULL", (server_id,)
        )
        return None if row is None else _record(row)

    async def get_by_name(self, name: str) -> ServerRecord | None:
        row = await self._db.fetchone(
            "SELECT * FROM servers WHERE name = ? AND archived_at IS NULL", (name,)
        )
        return None if row is None else _record(row)

    async def list(self) -> list[ServerRecord]:
        rows = await self._db.fetchall(
            "SELECT * FROM servers WHERE archived_at IS NULL ORDER BY name"
        )
        return [_record(row) for row in rows]

    async def set_state(self, server_id: int, state: ServerState, reason: str) -> None:
        await self._db.execute(
            "UPDATE servers SET state = ?, state_reason = ?, state_changed_at = ? WHERE id = ?",
            (state.value, reason, time.time(), server_id),
        )

    async def set_process(self, server_id: int, process: ProcessRecord | None) -> None:
        if process is None:
            await self._db.execute(
                "UPDATE servers SET pid = NULL, pid_create_time = NULL, cmdline = NULL,"
                " started_at = NULL, boot_id = NULL WHERE id = ?",
                (server_id,),
            )
            return
        await self._db.execute(
            "UPDATE servers SET pid = ?, pid_create_time = ?, cmdline = ?, started_at = ?,"
            " boot_id = ? WHERE id = ?",
            (
                process.pid,
                process.create_time,
                json.dumps(list(process.cmdline)),
                process.started_at,
                process.boot_id or None,
                server_id,
            ),
        )

    async def archive(self, server_id: int) -> None:
        """Hide a deleted server but keep its row, so its history and audit stay readable."""
        await self._db.execute(
            "UPDATE servers SET archived_at = ?, name = name || '#' || id WHERE id = ?",
            (time.time(), server_id),
        )
