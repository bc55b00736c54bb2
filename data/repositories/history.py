"""Lifecycle history of each server (transitions, crashes) and the audit trail."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from data.db import Database

__all__ = ["AuditEntry", "AuditRepository", "HistoryEntry", "HistoryRepository"]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    id: int
    server_id: int
    ts: float
    kind: str
    data: dict[str, Any]


class HistoryRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self, server_id: int, kind: str, data: dict[str, Any], ts: float | None = None
    ) -> int:
        return await self._db.execute(
            "INSERT INTO server_events(server_id, ts, kind, data) VALUES (?, ?, ?, ?)",
            (server_id, time.time() if ts is None else ts, kind, json.dumps(data)),
        )

    async def count_since(self, server_id: int, kind: str, since: float) -> int:
        value = await self._db.fetchval(
            "SELECT COUNT(*) FROM server_events WHERE server_id = ? AND kind = ? AND ts >= ?",
            (server_id, kind, since),
        )
        return int(value or 0)

    async def recent(
        self, server_id: int, limit: int = 50, kind: str | None = None
    ) -> list[HistoryEntry]:
        if kind is None:
            rows = await self._db.fetchall(
                "SELECT * FROM server_events WHERE server_id = ? ORDER BY id DESC LIMIT ?",
                (server_id, limit),
            )
        else:
            rows = await self._db.fetchall(
                "SELECT * FROM server_events WHERE server_id = ? AND kind = ?"
                " ORDER BY id DESC LIMIT ?",
                (server_id, kind, limit),
            )
        return [
            HistoryEntry(
                id=int(r["id"]),
                server_id=int(r["server_id"]),
                ts=float(r["ts"]),
                kind=str(r["kind"]),
                data=json.loads(r["data"]),
            )
            for r in rows
        ]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    ts: float
    actor_id: int | None
    actor_name: str
    action: str
    server_id: int | None
    arguments: dict[str, Any]
    result: str
    ok: bool


class AuditRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self,
        *,
        actor_id: int | None,
        actor_name: str,
        action: str,
        server_id: int | None,
        arguments: dict[str, Any],
        result: str,
        ok: bool,
    ) -> int:
        return await self._db.execute(
            "INSERT INTO audit_log(ts, actor_id, actor_name, action, server_id, arguments,"
            " result, ok) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                time.time(),
                actor_id,
                actor_name,
                action,
                server_id,
                json.dumps(arguments),
                result,
                int(ok),
            ),
        )

    async def count(self, server_id: int | None = None) -> int:
        """How many entries `recent` pages through (all, or one server's)."""
        if server_id is None:
            value = await self._db.fetchval("SELECT COUNT(*) FROM audit_log")
        else:
            value = await self._db.fetchval(
                "SELECT COUNT(*) FROM audit_log WHERE server_id = ?", (server_id,)
            )
        return int(value or 0)

    async def recent(
        self, limit: int = 20, server_id: int | None = None, offset: int = 0
    ) -> list[AuditEntry]:
        """Newest first, skipping the `offset` newest."""
        if server_id is None:
            rows = await self._db.fetchall(
                "SELECT * FROM audit_log ORDER BY id DESC LIMIT ? OFFSET ?", (limit, offset)
            )
        else:
            rows = await self._db.fetchall(
                "SELECT * FROM audit_log WHERE server_id = ? ORDER BY id DESC LIMIT ? OFFSET ?",
                (server_id, limit, offset),
            )
        return [
            AuditEntry(
                id=int(r["id"]),
                ts=float(r["ts"]),
                actor_id=None if r["actor_id"] is None else int(r["actor_id"]),
                actor_name=str(r["actor_name"]),
                action=str(r["action"]),
                server_id=None if r["server_id"] is None else int(r["server_id"]),
                arguments=json.loads(r["arguments"]),
                result=str(r["result"]),
                ok=bool(r["ok"]),
            )
            for r in rows
        ]
