"""Channel bindings (which Discord channel gets what of a server), the audit channel of each
guild, and the live status messages.

Options are stored as JSON so a kind can grow a knob without a migration. Channel cursors
(log offsets saved under the consumer `channel:<id>`) belong to a binding: when the binding
goes, its cursors go too, or the supervisor would keep re-reading logs for a channel that
no longer exists.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from data.db import Database

__all__ = ["BindingRepository", "StatusMessage", "StoredBinding"]


@dataclass(frozen=True, slots=True)
class StoredBinding:
    server_id: int
    kind: str
    channel_id: int
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StatusMessage:
    server_id: int
    channel_id: int
    message_id: int


def _options(raw: Any) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


class BindingRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Several changes as one (the calls inside join it)."""
        async with self._db.transaction():
            yield

    # -- bindings ----------------------------------------------------------------------

    async def set(
        self, server_id: int, kind: str, channel_id: int, options: dict[str, Any]
    ) -> None:
        await self._db.execute(
            "INSERT INTO channel_bindings(server_id, kind, channel_id, options)"
            " VALUES (?, ?, ?, ?) ON CONFLICT(server_id, kind) DO UPDATE SET"
            " channel_id = excluded.channel_id, options = excluded.options",
            (server_id, kind, channel_id, json.dumps(options, sort_keys=True)),
        )

    async def delete(self, server_id: int, kind: str) -> bool:
        count = await self._db.execute_rowcount(
            "DELETE FROM channel_bindings WHERE server_id = ? AND kind = ?", (server_id, kind)
        )
        return count > 0

    async def get(self, server_id: int, kind: str) -> StoredBinding | None:
        row = await self._db.fetchone(
            "SELECT * FROM channel_bindings WHERE server_id = ? AND kind = ?", (server_id, kind)
        )
        return None if row is None else self._binding(row)

    async def bindings(self, server_id: int | None = None) -> list[StoredBinding]:
        if server_id is None:
            rows = await self._db.fetchall(
                "SELECT * FROM channel_bindings ORDER BY server_id, kind"
            )
        else:
            rows = await self._db.fetchall(
                "SELECT * FROM channel_bindings WHERE server_id = ? ORDER BY kind", (server_id,)
            )
        return [self._binding(row) for row in rows]

    @staticmethod
    def _binding(row: Any) -> StoredBinding:
        return StoredBinding(
            int(row["server_id"]),
            str(row["kind"]),
            int(row["channel_id"]),
            _options(row["options"]),
        )

    async def forget_cursors(self, server_id: int, consumer: str) -> int:
        """Drop a consumer's saved log positions (its channel no longer streams this server)."""
        return await self._db.execute_rowcount(
            "DELETE FROM log_offsets WHERE server_id = ? AND consumer = ?", (server_id, consumer)
        )

    # -- the audit channel (one per guild, not per server) ------------------------------

    async def audit_channels(self) -> dict[int, int]:
        """guild id → the channel that mirrors the audit log there."""
        rows = await self._db.fetchall(
            "SELECT guild_id, channel_id FROM audit_channels ORDER BY guild_id"
        )
        return {int(r["guild_id"]): int(r["channel_id"]) for r in rows}

    async def set_audit_channel(self, guild_id: int, channel_id: int) -> None:
        await self._db.execute(
            "INSERT INTO audit_channels(guild_id, channel_id) VALUES (?, ?)"
            " ON CONFLICT(guild_id) DO UPDATE SET channel_id = excluded.channel_id",
            (guild_id, channel_id),
        )

    async def delete_audit_channel(self, guild_id: int) -> bool:
        count = await self._db.execute_rowcount(
            "DELETE FROM audit_channels WHERE guild_id = ?", (guild_id,)
        )
        return count > 0

    # -- status messages ---------------------------------------------------------------

    async def status_messages(self) -> list[StatusMessage]:
        rows = await self._db.fetchall(
            "SELECT server_id, channel_id, message_id FROM status_messages"
            " ORDER BY server_id, channel_id"
        )
        return [
            StatusMessage(int(r["server_id"]), int(r["channel_id"]), int(r["message_id"]))
            for r in rows
        ]

    async def set_status_message(self, server_id: int, channel_id: int, message_id: int) -> None:
        await self._db.execute(
            "INSERT INTO status_messages(server_id, channel_id, message_id) VALUES (?, ?, ?)"
            " ON CONFLICT(server_id, channel_id) DO UPDATE SET message_id = excluded.message_id",
            (server_id, channel_id, message_id),
        )

    async def delete_status_message(self, server_id: int, channel_id: int) -> bool:
        count = await self._db.execute_rowcount(
            "DELETE FROM status_messages WHERE server_id = ? AND channel_id = ?",
            (server_id, channel_id),
        )
        return count > 0
