"""Role grants (permission levels) and small key/value bot state."""

from __future__ import annotations

import time

from core.permissions import Grant, Level
from data.db import Database

__all__ = ["BotStateRepository", "GrantRepository"]


class GrantRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def set(
        self, guild_id: int, role_id: int, level: Level, server_id: int | None, granted_by: int
    ) -> None:
        await self._db.execute(
            "INSERT INTO role_grants(guild_id, role_id, server_key, level, granted_by, granted_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(guild_id, role_id, server_key) DO UPDATE SET"
            " level = excluded.level, granted_by = excluded.granted_by,"
            " granted_at = excluded.granted_at",
            (guild_id, role_id, server_id or 0, int(level), granted_by, time.time()),
        )

    async def delete(self, guild_id: int, role_id: int, server_id: int | None) -> bool:
        count = await self._db.execute_rowcount(
            "DELETE FROM role_grants WHERE guild_id = ? AND role_id = ? AND server_key = ?",
            (guild_id, role_id, server_id or 0),
        )
        return count > 0

    async def for_guild(self, guild_id: int) -> list[Grant]:
        rows = await self._db.fetchall(
            "SELECT role_id, level, server_key FROM role_grants WHERE guild_id = ?"
            " ORDER BY level DESC, role_id",
            (guild_id,),
        )
        return [
            Grant(int(r["role_id"]), Level(int(r["level"])), int(r["server_key"]) or None)
            for r in rows
        ]


class BotStateRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, key: str) -> str | None:
        value = await self._db.fetchval("SELECT value FROM bot_state WHERE key = ?", (key,))
        return None if value is None else str(value)

    async def set(self, key: str, value: str) -> None:
        await self._db.execute(
            "INSERT INTO bot_state(key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
