"""The read side of the ban service: one ban, the bans a game must hold, pages of the
ledger, and the servers a ban reaches.

Apart from `BanService` (which extends it with the changes, the games' I/O and the syncing)
because none of this writes or talks to a game: it reads the ledger and the supervisor.
"""

from __future__ import annotations

from collections.abc import Callable

from core.errors import NotFound, NotSupported
from core.games.base import BanKind, GameBan
from core.paging import Page, window
from core.services.ban_targets import GAME_BAN_KINDS, KIND_TITLES
from core.supervisor.server import ManagedServer
from core.supervisor.states import ServerState
from core.supervisor.supervisor import Supervisor
from data.repositories.bans import Ban, BanRepository

__all__ = ["BanLedger"]


class BanLedger:
    """What the ledger holds and whom each ban reaches; `BanService` is the one to build."""

    def __init__(
        self, supervisor: Supervisor, repo: BanRepository, clock: Callable[[], float]
    ) -> None:
        self._supervisor = supervisor
        self._repo = repo
        self._clock = clock

    # -- queries -------------------------------------------------------------------------

    def kinds_for(self, game: str) -> frozenset[BanKind]:
        profile = self._supervisor.profiles.get(game) if game in self._supervisor.profiles else None
        declared = getattr(profile, "ban_kinds", None)
        if isinstance(declared, frozenset):
            return frozenset(BanKind(k) for k in declared)
        return GAME_BAN_KINDS.get(game, frozenset())

    async def get(self, ban_id: int) -> Ban:
        ban = await self._repo.get(ban_id)
        if ban is None:
            raise NotFound("there is no ban #{ban_id}; `/bans list` shows them", ban_id=ban_id)
        return ban

    async def active_for(self, server_id: int) -> list[GameBan]:
        """The bans a server's game must hold now: one entry per target, the longest wins."""
        game = await self._repo.game_of(server_id)
        if game is None:
            return []
        chosen: dict[tuple[BanKind, str], Ban] = {}
        for ban in await self._repo.active_for(server_id, self.kinds_for(game), self._clock()):
            key = (ban.kind, ban.value.lower())
            held = chosen.get(key)
            if held is None or _outlasts(ban, held):
                chosen[key] = ban
        return [ban.game_ban() for ban in chosen.values()]

    # -- reach ---------------------------------------------------------------------------

    def _check_kind(self, server: ManagedServer, kind: BanKind) -> None:
        kinds = self.kinds_for(server.game)
        if not kinds:
            raise NotSupported(
                "{name} ({game}) has no ban list", name=server.name, game=server.game
            )
        if kind not in kinds:
            takes = " or ".join(sorted(KIND_TITLES[k] for k in kinds))
            raise _wrong_kind(server.name, server.game, takes, kind)

    def _scope(self, ban: Ban) -> list[ManagedServer]:
        """Servers the ban applies to (those whose game knows its kind)."""
        if ban.server_id is not None:
            try:
                servers = [self._supervisor.get(ban.server_id)]
            except NotFound:
                return []
        else:
            servers = self._supervisor.all()
        return [s for s in servers if ban.kind in self.kinds_for(s.game)]

    def _in_scope(self, ban: Ban) -> list[ManagedServer]:
        """Running servers the ban applies to."""
        return [s for s in self._scope(ban) if s.state is ServerState.RUNNING]

    def _lift_servers(self, ban: Ban) -> list[int]:
        """Every server whose game may hold a ban being lifted: it is taken out of each."""
        return [s.id for s in self._scope(ban)]

    # -- listing (last: the name shadows the builtin inside the class) -------------------

    async def list(
        self, server_name: str | None = None, include_expired: bool = False, limit: int = 100
    ) -> list[Ban]:
        """Newest first; for a server, its own bans and the ones for every server."""
        server_id = None if server_name is None else self._supervisor.by_name(server_name).id
        return await self._repo.list_bans(
            server_id,
            include_expired=include_expired,
            now=self._clock(),
            limit=max(1, min(limit, 500)),
        )

    async def page(
        self,
        server_name: str | None,
        offset: int,
        limit: int,
        include_expired: bool = False,
    ) -> Page[Ban]:
        """One page of what `list` lists (newest first) and how many there are in all, so
        `/bans list` pages through every ban without loading them all."""
        server_id = None if server_name is None else self._supervisor.by_name(server_name).id
        offset, limit = window(offset, limit)
        now = self._clock()
        total = await self._repo.count_bans(server_id, include_expired=include_expired, now=now)
        items = await self._repo.list_bans(
            server_id, include_expired=include_expired, now=now, limit=limit, offset=offset
        )
        return Page(total, offset, items)


def _outlasts(ban: Ban, other: Ban) -> bool:
    if other.expires_at is None:
        return False
    return ban.expires_at is None or ban.expires_at > other.expires_at


def _wrong_kind(name: str, game: str, takes: str, kind: BanKind) -> NotSupported:
    """A ban whose kind of id the server's game cannot hold; `takes` names those it can."""
    if kind is BanKind.GUID:
        return NotSupported(
            "{name} is a {game} server: it bans by {takes}, not by BattlEye GUID",
            name=name,
            game=game,
            takes=takes,
        )
    if kind is BanKind.IP:
        return NotSupported(
            "{name} is a {game} server: it bans by {takes}, not by IP address",
            name=name,
            game=game,
            takes=takes,
        )
    if kind is BanKind.NAME:
        return NotSupported(
            "{name} is a {game} server: it bans by {takes}, not by Minecraft name",
            name=name,
            game=game,
            takes=takes,
        )
    return NotSupported(
        "{name} is a {game} server: it bans by {takes}, not by Minecraft UUID",
        name=name,
        game=game,
        takes=takes,
    )
