"""Bans: the bot's ledger. Every ban in it reaches the games in its scope; bans found in a
game are imported into it (origin `game`); a game loses only what the ledger lifted."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core.games.base import BanKind, GameBan
from data.db import Database

__all__ = ["Ban", "BanOrigin", "BanRepository", "FoundBan"]


class BanOrigin(StrEnum):
    LANGUARD = "languard"
    """Made through the bot."""
    GAME = "game"
    """Found in a game (its ban file or list) and imported: made before the bot, in game,
    or with another tool."""


_ACTIVE = (
    "b.removed_at IS NULL AND b.expired_at IS NULL AND (b.expires_at IS NULL OR b.expires_at > ?)"
)
_SELECT = "SELECT b.*, s.name AS server_name FROM bans b LEFT JOIN servers s ON s.id = b.server_id"


@dataclass(frozen=True, slots=True)
class Ban:
    id: int
    kind: BanKind
    value: str
    server_id: int | None
    """None: the ban applies to every server whose game knows its kind."""
    server_name: str | None
    reason: str
    author_id: int | None
    author_name: str
    created_at: float
    expires_at: float | None
    """None: permanent."""
    expired_at: float | None
    removed_at: float | None
    removed_by_id: int | None
    removed_by_name: str | None
    origin: BanOrigin = BanOrigin.LANGUARD

    def is_active(self, now: float) -> bool:
        """In force: neither removed nor expired (by the loop or by the clock)."""
        return (
            self.removed_at is None
            and self.expired_at is None
            and (self.expires_at is None or self.expires_at > now)
        )

    def status(self, now: float) -> str:
        """`active`, `expired` or `removed`: what a list shows next to the ban."""
        if self.removed_at is not None:
            return "removed"
        return "active" if self.is_active(now) else "expired"

    def game_ban(self) -> GameBan:
        return GameBan(self.kind, self.value, self.expires_at, self.reason)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _ban(row: Any) -> Ban:
    return Ban(
        id=int(row["id"]),
        kind=BanKind(row["kind"]),
        value=str(row["value"]),
        server_id=_opt_int(row["server_id"]),
        server_name=None if row["server_name"] is None else str(row["server_name"]),
        reason=str(row["reason"]),
        author_id=_opt_int(row["author_id"]),
        author_name=str(row["author_name"]),
        created_at=float(row["created_at"]),
        expires_at=_opt_float(row["expires_at"]),
        expired_at=_opt_float(row["expired_at"]),
        removed_at=_opt_float(row["removed_at"]),
        removed_by_id=_opt_int(row["removed_by_id"]),
        removed_by_name=None if row["removed_by_name"] is None else str(row["removed_by_name"]),
        origin=BanOrigin(row["origin"]),
    )


def _list_filter(server_id: int | None, include_expired: bool, now: float) -> tuple[str, list[Any]]:
    """The WHERE clause (and its parameters) shared by listing and counting bans."""
    where: list[str] = []
    params: list[Any] = []
    if server_id is not None:
        where.append("(b.server_id = ? OR b.server_id IS NULL)")
        params.append(server_id)
    if not include_expired:
        where.append(_ACTIVE)
        params.append(now)
    return (f" WHERE {' AND '.join(where)}" if where else ""), params


@dataclass(frozen=True, slots=True)
class FoundBan:
    """A ban found in a game, to import: stored form, scoped to the server it was found on."""

    kind: BanKind
    value: str
    reason: str
    author_name: str
    expires_at: float | None


class BanRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self,
        *,
        kind: BanKind,
        value: str,
        server_id: int | None,
        reason: str,
        author_id: int | None,
        author_name: str,
        created_at: float,
        expires_at: float | None,
        origin: BanOrigin = BanOrigin.LANGUARD,
    ) -> int:
        return await self._db.execute(
            "INSERT INTO bans(kind, value, server_id, reason, author_id, author_name,"
            " created_at, expires_at, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                kind.value,
                value,
                server_id,
                reason,
                author_id,
                author_name,
                created_at,
                expires_at,
                origin.value,
            ),
        )

    async def add_found(self, server_id: int, found: Sequence[FoundBan], at: float) -> None:
        """Import bans found in a server's game (origin `game`, scoped to that server)."""
        await self._db.executemany(
            "INSERT INTO bans(kind, value, server_id, reason, author_id, author_name,"
            " created_at, expires_at, origin) VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?)",
            [
                (
                    f.kind.value,
                    f.value,
                    server_id,
                    f.reason,
                    f.author_name,
                    at,
                    f.expires_at,
                    BanOrigin.GAME.value,
                )
                for f in found
            ],
        )

    # -- lifts: what a game still has to lose ---------------------------------------------

    async def add_lifts(self, ban_id: int, server_ids: Iterable[int]) -> None:
        await self._db.executemany(
            "INSERT OR IGNORE INTO ban_lifts(ban_id, server_id) VALUES (?, ?)",
            [(ban_id, server_id) for server_id in server_ids],
        )

    async def lifted_on(self, server_id: int) -> list[Ban]:
        """Bans lifted in the ledger that this server's game may still hold, oldest first."""
        rows = await self._db.fetchall(
            f"{_SELECT} JOIN ban_lifts l ON l.ban_id = b.id WHERE l.server_id = ? ORDER BY b.id",
            (server_id,),
        )
        return [_ban(row) for row in rows]

    async def clear_lifts(self, server_id: int, ban_ids: Iterable[int]) -> None:
        """The game no longer holds these: nothing more to remove."""
        await self._db.executemany(
            "DELETE FROM ban_lifts WHERE ban_id = ? AND server_id = ?",
            [(ban_id, server_id) for ban_id in ban_ids],
        )

    async def get(self, ban_id: int) -> Ban | None:
        row = await self._db.fetchone(f"{_SELECT} WHERE b.id = ?", (ban_id,))
        return None if row is None else _ban(row)

    async def same_target(
        self, kind: BanKind, value: str, server_id: int | None, now: float
    ) -> list[Ban]:
        """Active bans of the same target and scope (a new ban replaces them)."""
        rows = await self._db.fetchall(
            f"{_SELECT} WHERE {_ACTIVE} AND b.kind = ? AND lower(b.value) = lower(?)"
            " AND b.server_id IS ?",
            (now, kind.value, value, server_id),
        )
        return [_ban(row) for row in rows]

    async def list_bans(
        self,
        server_id: int | None,
        *,
        include_expired: bool,
        now: float,
        limit: int,
        offset: int = 0,
    ) -> list[Ban]:
        """Newest first; with a server, its own bans and the ones for every server."""
        clause, params = _list_filter(server_id, include_expired, now)
        rows = await self._db.fetchall(
            f"{_SELECT}{clause} ORDER BY b.id DESC LIMIT ? OFFSET ?", (*params, limit, offset)
        )
        return [_ban(row) for row in rows]

    async def count_bans(self, server_id: int | None, *, include_expired: bool, now: float) -> int:
        """How many bans `list_bans` would page through (for "45 bans · page 1 of 2")."""
        clause, params = _list_filter(server_id, include_expired, now)
        value = await self._db.fetchval(f"SELECT COUNT(*) FROM bans b{clause}", tuple(params))
        return int(value or 0)

    async def active_for(self, server_id: int, kinds: frozenset[BanKind], now: float) -> list[Ban]:
        """Bans in force on one server, of the kinds its game understands, oldest first."""
        if not kinds:
            return []
        marks = ", ".join("?" for _ in kinds)
        rows = await self._db.fetchall(
            f"{_SELECT} WHERE {_ACTIVE} AND (b.server_id = ? OR b.server_id IS NULL)"
            f" AND b.kind IN ({marks}) ORDER BY b.id",
            (now, server_id, *sorted(k.value for k in kinds)),
        )
        return [_ban(row) for row in rows]

    async def due(self, now: float) -> list[Ban]:
        """Temporary bans whose time has come but that are not yet marked expired."""
        rows = await self._db.fetchall(
            f"{_SELECT} WHERE b.removed_at IS NULL AND b.expired_at IS NULL"
            " AND b.expires_at IS NOT NULL AND b.expires_at <= ? ORDER BY b.id",
            (now,),
        )
        return [_ban(row) for row in rows]

    async def mark_expired(self, ban_id: int, at: float) -> bool:
        count = await self._db.execute_rowcount(
            "UPDATE bans SET expired_at = ? WHERE id = ? AND expired_at IS NULL"
            " AND removed_at IS NULL",
            (at, ban_id),
        )
        return count > 0

    async def mark_removed(self, ban_id: int, at: float, by_id: int | None, by_name: str) -> bool:
        count = await self._db.execute_rowcount(
            "UPDATE bans SET removed_at = ?, removed_by_id = ?, removed_by_name = ?"
            " WHERE id = ? AND removed_at IS NULL AND expired_at IS NULL",
            (at, by_id, by_name, ban_id),
        )
        return count > 0

    async def game_of(self, server_id: int) -> str | None:
        """The game of a server, read from the database (the supervisor may not know it yet)."""
        value = await self._db.fetchval("SELECT game FROM servers WHERE id = ?", (server_id,))
        return None if value is None else str(value)
