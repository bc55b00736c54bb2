"""Per-server settings as JSON values, and encrypted secrets kept apart from them."""

from __future__ import annotations

import json
from typing import Any

from data.db import Database

__all__ = ["SecretRepository", "SettingsRepository"]


class SettingsRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_all(self, server_id: int) -> dict[str, Any]:
        rows = await self._db.fetchall(
            "SELECT key, value FROM server_settings WHERE server_id = ?", (server_id,)
        )
        return {str(row["key"]): json.loads(row["value"]) for row in rows}

    async def set(self, server_id: int, key: str, value: Any) -> None:
        await self._db.execute(
            "INSERT INTO server_settings(server_id, key, value) VALUES (?, ?, ?)"
            " ON CONFLICT(server_id, key) DO UPDATE SET value = excluded.value",
            (server_id, key, json.dumps(value)),
        )

    async def set_many(self, server_id: int, values: dict[str, Any]) -> None:
        async with self._db.transaction():
            for key, value in values.items():
                await self.set(server_id, key, value)

    async def delete(self, server_id: int, key: str) -> None:
        await self._db.execute(
            "DELETE FROM server_settings WHERE server_id = ? AND key = ?", (server_id, key)
        )


class SecretRepository:
    """Stores ciphertext only; encryption happens in `core.secrets.SecretBox`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, server_id: int, key: str, ciphertext: bytes) -> None:
        await self._db.execute(
            "INSERT INTO secrets(server_id, key, ciphertext) VALUES (?, ?, ?)"
            " ON CONFLICT(server_id, key) DO UPDATE SET ciphertext = excluded.ciphertext",
            (server_id, key, ciphertext),
        )

    async def get(self, server_id: int, key: str) -> bytes | None:
        value = await self._db.fetchval(
            "SELECT ciphertext FROM secrets WHERE server_id = ? AND key = ?", (server_id, key)
        )
        return None if value is None else bytes(value)

    async def keys(self, server_id: int) -> list[str]:
        rows = await self._db.fetchall(
            "SELECT key FROM secrets WHERE server_id = ? ORDER BY key", (server_id,)
        )
        return [str(row["key"]) for row in rows]

    async def delete(self, server_id: int, key: str) -> None:
        await self._db.execute(
            "DELETE FROM secrets WHERE server_id = ? AND key = ?", (server_id, key)
        )
