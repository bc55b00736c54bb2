"""The mod library (Workshop items) and each server's ordered mod set (migration 0011).

Rows say what is wanted and which version is on disk; the files themselves are under the
mods folder and in each server folder (core/mods). A server with no rows has no managed
set: its free-text `mods` setting applies alone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from data.db import Database

__all__ = ["ModRepository", "SetRow", "StoredMod"]


@dataclass(frozen=True, slots=True)
class StoredMod:
    id: int
    name: str
    folder: str
    position: int
    size: int
    time_updated: int
    installed_updated: int | None
    installed_at: float | None
    checked_at: float | None
    pinned: bool
    added_at: float

    @property
    def installed(self) -> bool:
        return self.installed_updated is not None

    @property
    def update_available(self) -> bool:
        """The Workshop has a newer version than the copy on disk."""
        return self.installed_updated is not None and self.time_updated > self.installed_updated


@dataclass(frozen=True, slots=True)
class SetRow:
    """One mod of a server's set, in load order."""

    mod: StoredMod
    role: str
    position: int


def _mod(row: Any, prefix: str = "") -> StoredMod:
    def get(key: str) -> Any:
        return row[prefix + key]

    installed = get("installed_updated")
    return StoredMod(
        id=int(get("id")),
        name=str(get("name")),
        folder=str(get("folder")),
        position=int(get("position")),
        size=int(get("size")),
        time_updated=int(get("time_updated")),
        installed_updated=None if installed is None else int(installed),
        installed_at=get("installed_at"),
        checked_at=get("checked_at"),
        pinned=bool(get("pinned")),
        added_at=float(get("added_at")),
    )


class ModRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- the library ---------------------------------------------------------------------

    async def get(self, mod_id: int) -> StoredMod | None:
        row = await self._db.fetchone("SELECT * FROM mods WHERE id = ?", (mod_id,))
        return None if row is None else _mod(row)

    async def all(self) -> list[StoredMod]:
        rows = await self._db.fetchall("SELECT * FROM mods ORDER BY position, id")
        return [_mod(row) for row in rows]

    async def folders(self) -> set[str]:
        rows = await self._db.fetchall("SELECT folder FROM mods")
        return {str(row[0]) for row in rows}

    async def add(
        self, mod_id: int, name: str, folder: str, *, size: int = 0, time_updated: int = 0
    ) -> StoredMod:
        """Append a mod at the end of the library order."""
        async with self._db.transaction():
            last = await self._db.fetchval("SELECT MAX(position) FROM mods")
            await self._db.execute(
                "INSERT INTO mods(id, name, folder, position, size, time_updated, added_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (mod_id, name, folder, (last or 0) + 1, size, time_updated, time.time()),
            )
        stored = await self.get(mod_id)
        assert stored is not None
        return stored

    async def set_details(
        self, mod_id: int, *, size: int, time_updated: int, name: str | None = None
    ) -> None:
        """What the Workshop says now (a time_updated never goes backwards)."""
        await self._db.execute(
            "UPDATE mods SET size = CASE WHEN ? > 0 THEN ? ELSE size END,"
            " time_updated = MAX(time_updated, ?), checked_at = ?,"
            " name = COALESCE(?, name) WHERE id = ?",
            (size, size, time_updated, time.time(), name, mod_id),
        )

    async def set_installed(self, mod_id: int, *, time_updated: int, size: int) -> None:
        await self._db.execute(
            "UPDATE mods SET installed_updated = ?, installed_at = ?,"
            " time_updated = MAX(time_updated, ?), size = CASE WHEN ? > 0 THEN ? ELSE size END"
            " WHERE id = ?",
            (time_updated, time.time(), time_updated, size, size, mod_id),
        )

    async def set_pinned(self, mod_id: int, pinned: bool) -> None:
        await self._db.execute("UPDATE mods SET pinned = ? WHERE id = ?", (int(pinned), mod_id))

    async def remove(self, mod_id: int) -> None:
        """Forget a mod; it leaves every server set with it (ON DELETE CASCADE)."""
        await self._db.execute("DELETE FROM mods WHERE id = ?", (mod_id,))

    async def set_order(self, mod_ids: Sequence[int]) -> None:
        """The whole library order, first to last."""
        async with self._db.transaction():
            for position, mod_id in enumerate(mod_ids, start=1):
                await self._db.execute(
                    "UPDATE mods SET position = ? WHERE id = ?", (position, mod_id)
                )

    # -- server sets ---------------------------------------------------------------------

    async def server_set(self, server_id: int) -> list[SetRow]:
        rows = await self._db.fetchall(
            "SELECT m.*, s.role AS set_role, s.position AS set_position"
            " FROM server_mods s JOIN mods m ON m.id = s.mod_id"
            " WHERE s.server_id = ? ORDER BY s.position, m.id",
            (server_id,),
        )
        return [SetRow(_mod(row), str(row["set_role"]), int(row["set_position"])) for row in rows]

    async def replace_set(self, server_id: int, entries: Sequence[tuple[int, str]]) -> None:
        """The server's whole set, in load order: (mod id, role) pairs."""
        async with self._db.transaction():
            await self._db.execute("DELETE FROM server_mods WHERE server_id = ?", (server_id,))
            for position, (mod_id, role) in enumerate(entries, start=1):
                await self._db.execute(
                    "INSERT INTO server_mods(server_id, mod_id, role, position)"
                    " VALUES (?, ?, ?, ?)",
                    (server_id, mod_id, role, position),
                )

    async def users(self) -> dict[int, list[int]]:
        """For each mod, the live servers whose set has it (archived servers left out)."""
        rows = await self._db.fetchall(
            "SELECT s.mod_id, s.server_id FROM server_mods s"
            " JOIN servers v ON v.id = s.server_id WHERE v.archived_at IS NULL"
            " ORDER BY s.mod_id, v.name"
        )
        found: dict[int, list[int]] = {}
        for row in rows:
            found.setdefault(int(row[0]), []).append(int(row[1]))
        return found

    async def servers_using(self, mod_id: int) -> list[int]:
        return (await self.users()).get(mod_id, [])

    async def servers_with_sets(self) -> list[int]:
        rows = await self._db.fetchall(
            "SELECT DISTINCT s.server_id FROM server_mods s"
            " JOIN servers v ON v.id = s.server_id WHERE v.archived_at IS NULL"
        )
        return sorted(int(row[0]) for row in rows)
