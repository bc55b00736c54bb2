"""Player history: who played (by GUID/UUID when known), under which names, from which
addresses, and when. Names are stored verbatim; every query takes them as parameters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from data.db import Database

__all__ = [
    "PlayerHistory",
    "PlayerMatch",
    "PlayerRecord",
    "PlayerRepository",
    "SeenValue",
    "SessionRecord",
    "like_escape",
]

MAX_NAMES = 20
MAX_SESSIONS = 10


def like_escape(text: str) -> str:
    """Make `text` match literally inside a LIKE pattern written with `ESCAPE '\\'`."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True, slots=True)
class PlayerRecord:
    id: int
    game: str
    guid: str | None
    """BattlEye GUID or Minecraft UUID; None while the game has not told it."""
    last_name: str
    first_seen: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class SeenValue:
    """A name or an IP a player used, and when."""

    value: str
    first_seen: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: int
    server_id: int
    server_name: str | None
    name: str
    joined_at: float
    left_at: float | None
    """None while the player is still on the server."""


@dataclass(frozen=True, slots=True)
class PlayerHistory:
    player: PlayerRecord
    names: tuple[SeenValue, ...]
    ips: tuple[SeenValue, ...]
    sessions: tuple[SessionRecord, ...]
    """The most recent first."""


@dataclass(frozen=True, slots=True)
class PlayerMatch:
    """Which players a history search means: a WHERE clause on `players` and its
    parameters (values are always parameters, never part of the SQL text)."""

    where: str
    params: tuple[Any, ...]

    @classmethod
    def guids(cls, guids: Sequence[str]) -> PlayerMatch:
        marks = ", ".join("?" for _ in guids)
        return cls(f"guid IN ({marks})", tuple(guids))

    @classmethod
    def ip(cls, ip: str) -> PlayerMatch:
        return cls("id IN (SELECT player_id FROM player_ips WHERE ip = ?)", (ip,))

    @classmethod
    def name(cls, fragment: str) -> PlayerMatch:
        """A name containing `fragment` (case-insensitive, taken literally)."""
        pattern = f"%{like_escape(fragment.casefold())}%"
        return cls(
            "id IN (SELECT player_id FROM player_names WHERE name_fold LIKE ? ESCAPE '\\')",
            (pattern,),
        )


def _player(row: Any) -> PlayerRecord:
    return PlayerRecord(
        id=int(row["id"]),
        game=str(row["game"]),
        guid=None if row["guid"] is None else str(row["guid"]),
        last_name=str(row["last_name"]),
        first_seen=float(row["first_seen"]),
        last_seen=float(row["last_seen"]),
    )


class PlayerRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- identities ----------------------------------------------------------------------

    async def identify(self, game: str, guid: str | None, name: str, now: float) -> int:
        """The player's id: by GUID/UUID when known, else the GUID-less player of that name."""
        async with self._db.transaction():
            if guid is not None:
                found = await self._db.fetchval(
                    "SELECT id FROM players WHERE game = ? AND guid = ?", (game, guid)
                )
            else:
                found = await self._db.fetchval(
                    "SELECT p.id FROM players p JOIN player_names n ON n.player_id = p.id"
                    " WHERE p.game = ? AND p.guid IS NULL AND n.name = ?"
                    " ORDER BY p.last_seen DESC LIMIT 1",
                    (game, name),
                )
            if found is not None:
                return int(found)
            return await self._db.execute(
                "INSERT INTO players(game, guid, last_name, first_seen, last_seen)"
                " VALUES (?, ?, ?, ?, ?)",
                (game, guid, name, now, now),
            )

    async def attach_guid(self, player_id: int, guid: str, now: float) -> int:
        """The GUID of a player became known: set it, or merge into the player who has it."""
        async with self._db.transaction():
            row = await self._db.fetchone(
                "SELECT game, guid, last_name FROM players WHERE id = ?", (player_id,)
            )
            if row is None or row["guid"] == guid:
                return player_id
            other = await self._db.fetchval(
                "SELECT id FROM players WHERE game = ? AND guid = ?", (row["game"], guid)
            )
            if other is None and row["guid"] is None:
                await self._db.execute(
                    "UPDATE players SET guid = ? WHERE id = ?", (guid, player_id)
                )
                return player_id
            if other is None:
                return await self.identify(str(row["game"]), guid, str(row["last_name"]), now)
            if row["guid"] is None:
                await self._merge(player_id, int(other))
            return int(other)

    async def _merge(self, source: int, target: int) -> None:
        for table, column in (("player_names", "name"), ("player_ips", "ip")):
            extra = ", name_fold" if table == "player_names" else ""
            await self._db.execute(
                f"INSERT INTO {table}(player_id, {column}{extra}, first_seen, last_seen)"
                f" SELECT ?, {column}{extra}, first_seen, last_seen FROM {table}"
                f" WHERE player_id = ? ON CONFLICT(player_id, {column}) DO UPDATE SET"
                " first_seen = min(first_seen, excluded.first_seen),"
                " last_seen = max(last_seen, excluded.last_seen)",
                (target, source),
            )
        await self._db.execute(
            "UPDATE player_sessions SET player_id = ? WHERE player_id = ?", (target, source)
        )
        await self._db.execute(
            "UPDATE players SET"
            " first_seen = min(first_seen, (SELECT first_seen FROM players WHERE id = ?)),"
            " last_seen = max(last_seen, (SELECT last_seen FROM players WHERE id = ?))"
            " WHERE id = ?",
            (source, source, target),
        )
        await self._db.execute("DELETE FROM players WHERE id = ?", (source,))

    async def seen(self, player_id: int, name: str, ip: str | None, now: float) -> None:
        """The player is on a server now, under this name, from this address."""
        async with self._db.transaction():
            await self._db.execute(
                "UPDATE players SET last_name = ?, last_seen = max(last_seen, ?) WHERE id = ?",
                (name, now, player_id),
            )
            await self._db.execute(
                "INSERT INTO player_names(player_id, name, name_fold, first_seen, last_seen)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(player_id, name) DO UPDATE SET"
                " last_seen = max(last_seen, excluded.last_seen)",
                (player_id, name, name.casefold(), now, now),
            )
            if ip is not None:
                await self._db.execute(
                    "INSERT INTO player_ips(player_id, ip, first_seen, last_seen)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT(player_id, ip) DO UPDATE SET"
                    " last_seen = max(last_seen, excluded.last_seen)",
                    (player_id, ip, now, now),
                )

    # -- sessions ------------------------------------------------------------------------

    async def open_session(self, player_id: int, server_id: int, name: str, now: float) -> int:
        return await self._db.execute(
            "INSERT INTO player_sessions(player_id, server_id, name, joined_at)"
            " VALUES (?, ?, ?, ?)",
            (player_id, server_id, name, now),
        )

    async def close_session(self, session_id: int, now: float) -> None:
        await self._db.execute(
            "UPDATE player_sessions SET left_at = max(joined_at, ?)"
            " WHERE id = ? AND left_at IS NULL",
            (now, session_id),
        )

    async def close_open(self, server_id: int | None = None) -> int:
        """End sessions left open (the bot stopped): at the player's last sighting."""
        sql = (
            "UPDATE player_sessions SET left_at = max(joined_at,"
            " (SELECT last_seen FROM players p WHERE p.id = player_sessions.player_id))"
            " WHERE left_at IS NULL"
        )
        if server_id is None:
            return await self._db.execute_rowcount(sql)
        return await self._db.execute_rowcount(sql + " AND server_id = ?", (server_id,))

    # -- search --------------------------------------------------------------------------

    async def by_guids(self, guids: Sequence[str], limit: int) -> list[PlayerHistory]:
        return await self.search(PlayerMatch.guids(guids), limit)

    async def by_ip(self, ip: str, limit: int) -> list[PlayerHistory]:
        return await self.search(PlayerMatch.ip(ip), limit)

    async def by_name(self, fragment: str, limit: int) -> list[PlayerHistory]:
        """Players who ever used a name containing `fragment` (case-insensitive, literal)."""
        return await self.search(PlayerMatch.name(fragment), limit)

    async def search(self, match: PlayerMatch, limit: int, offset: int = 0) -> list[PlayerHistory]:
        """The matching players, most recently seen first, skipping the first `offset`."""
        rows = await self._db.fetchall(
            f"SELECT * FROM players WHERE {match.where}"
            " ORDER BY last_seen DESC, id DESC LIMIT ? OFFSET ?",
            (*match.params, limit, offset),
        )
        return [await self.history(_player(row)) for row in rows]

    async def count(self, match: PlayerMatch) -> int:
        """How many players `search` pages through."""
        value = await self._db.fetchval(
            f"SELECT COUNT(*) FROM players WHERE {match.where}", match.params
        )
        return int(value or 0)

    async def get(self, player_id: int) -> PlayerRecord | None:
        row = await self._db.fetchone("SELECT * FROM players WHERE id = ?", (player_id,))
        return None if row is None else _player(row)

    async def history(self, player: PlayerRecord) -> PlayerHistory:
        names = await self._db.fetchall(
            "SELECT name, first_seen, last_seen FROM player_names WHERE player_id = ?"
            " ORDER BY last_seen DESC LIMIT ?",
            (player.id, MAX_NAMES),
        )
        ips = await self._db.fetchall(
            "SELECT ip, first_seen, last_seen FROM player_ips WHERE player_id = ?"
            " ORDER BY last_seen DESC LIMIT ?",
            (player.id, MAX_NAMES),
        )
        sessions = await self._db.fetchall(
            "SELECT ps.*, s.name AS server_name FROM player_sessions ps"
            " LEFT JOIN servers s ON s.id = ps.server_id WHERE ps.player_id = ?"
            " ORDER BY ps.joined_at DESC, ps.id DESC LIMIT ?",
            (player.id, MAX_SESSIONS),
        )
        return PlayerHistory(
            player=player,
            names=tuple(SeenValue(str(r[0]), float(r[1]), float(r[2])) for r in names),
            ips=tuple(SeenValue(str(r[0]), float(r[1]), float(r[2])) for r in ips),
            sessions=tuple(
                SessionRecord(
                    id=int(r["id"]),
                    server_id=int(r["server_id"]),
                    server_name=None if r["server_name"] is None else str(r["server_name"]),
                    name=str(r["name"]),
                    joined_at=float(r["joined_at"]),
                    left_at=None if r["left_at"] is None else float(r["left_at"]),
                )
                for r in sessions
            ),
        )
