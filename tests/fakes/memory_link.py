"""An in-memory GameLink, and a fake-game profile that opens one per start.

The link keeps what a game would keep (players, a ban list: `sync_bans` keeps what it is not
told to lift) and records every call, so a test can script players (`join`, `leave`) and
check what the services asked of the game.
`fail` makes chosen methods raise as an unreachable game would (`fail={"probe"}`: a hung game).
`missions` makes `load_mission` work (as on Arma 3) instead of raising NotSupported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from core.errors import NotRunning, NotSupported
from core.events import EventBus, PlayerBanned, PlayerJoined, PlayerKicked, PlayerLeft, RconStatus
from core.games.base import (
    ConfigFile,
    GameBan,
    GameLink,
    OnlinePlayer,
    RuntimeControl,
    ServerContext,
)
from tests.fakes.fake_profile import FakeProfile

__all__ = ["MemoryLink", "MemoryProfile"]


@dataclass
class MemoryLink:
    bus: EventBus
    server_id: int
    server: str
    players_now: dict[str, OnlinePlayer] = field(default_factory=dict)
    bans: dict[tuple[str, str], GameBan] = field(default_factory=dict)
    calls: list[tuple[str, object]] = field(default_factory=list)
    fail: set[str] = field(default_factory=set)
    """Names of methods that raise NotRunning, like a game that does not answer."""
    missions: bool = False
    """Whether `load_mission` is recorded (a game with missions) or raises NotSupported."""
    closed: bool = False
    lifted_seen: list[tuple[GameBan, ...]] = field(default_factory=list)
    """The `lifted` argument of every `sync_bans` call, in order."""

    # -- scripting (what the game would do on its own) -----------------------------------

    def join(self, player: OnlinePlayer, *, publish: bool = True) -> None:
        self.players_now[player.key] = player
        if publish:
            self.bus.publish(
                PlayerJoined(
                    server_id=self.server_id,
                    server=self.server,
                    name=player.name,
                    player_key=player.key,
                    guid=player.guid,
                    ip=player.ip,
                )
            )

    def leave(self, key: str, *, publish: bool = True) -> None:
        player = self.players_now.pop(key)
        if publish:
            self.bus.publish(
                PlayerLeft(
                    server_id=self.server_id,
                    server=self.server,
                    name=player.name,
                    player_key=key,
                    guid=player.guid,
                )
            )

    def of(self, name: str) -> list[object]:
        """The arguments of every call to method `name`, in order."""
        return [args for method, args in self.calls if method == name]

    def _call(self, name: str, args: object) -> None:
        if self.closed:
            raise NotRunning(f"{self.server}: the link is closed")
        self.calls.append((name, args))
        if name in self.fail:
            raise NotRunning(f"{self.server} does not answer")

    # -- GameLink ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return not self.closed

    async def command(self, text: str) -> str:
        self._call("command", text)
        return ""

    async def probe(self) -> None:
        self._call("probe", None)

    async def players(self) -> list[OnlinePlayer]:
        self._call("players", None)
        return list(self.players_now.values())

    async def kick(self, player: OnlinePlayer, reason: str) -> None:
        self._call("kick", (player.key, reason))
        self.bus.publish(
            PlayerKicked(
                server_id=self.server_id,
                server=self.server,
                name=player.name,
                reason=reason,
                player_key=player.key,
                guid=player.guid,
            )
        )
        if player.key in self.players_now:
            self.leave(player.key)

    async def ban(self, player: OnlinePlayer, ban: GameBan) -> None:
        self._call("ban", (player.key, ban))
        self.bans[(ban.kind.value, ban.value)] = ban
        self.bus.publish(
            PlayerBanned(
                server_id=self.server_id,
                server=self.server,
                name=player.name,
                reason=ban.reason,
                player_key=player.key,
                guid=player.guid,
            )
        )
        if player.key in self.players_now:
            self.leave(player.key)

    async def add_ban(self, ban: GameBan) -> None:
        self._call("add_ban", ban)
        self.bans[(ban.kind.value, ban.value)] = ban

    async def remove_ban(self, ban: GameBan) -> None:
        self._call("remove_ban", ban)
        self.bans.pop((ban.kind.value, ban.value), None)

    async def list_bans(self) -> list[GameBan]:
        self._call("list_bans", None)
        return list(self.bans.values())

    async def sync_bans(self, bans: Sequence[GameBan], lifted: Sequence[GameBan] = ()) -> None:
        """Like a game: holds `bans`, loses `lifted` (unless in `bans`), keeps the rest."""
        self._call("sync_bans", tuple(bans))
        self.lifted_seen.append(tuple(lifted))
        wanted = {(b.kind.value, b.value): b for b in bans}
        for ban in lifted:
            self.bans.pop((ban.kind.value, ban.value), None)
        self.bans.update(wanted)

    async def say(self, message: str) -> None:
        self._call("say", message)

    async def load_mission(self, template: str, difficulty: str | None) -> None:
        if not self.missions:
            raise NotSupported("no missions here")
        self._call("load_mission", (template, difficulty))

    async def close(self) -> None:
        self.closed = True


class MemoryProfile(FakeProfile):
    """The fake game under another game's name ("arma3", "minecraft"), with a MemoryLink.

    `links[server]` lists the links opened for a server, newest last; `files_bans[server]`
    the bans each start wrote into the game's files. `missions` is passed to every link.
    """

    def __init__(self, name: str = "fake", *, missions: bool = False) -> None:
        super().__init__()
        self.name = name
        self.missions = missions
        self.links: dict[str, list[MemoryLink]] = {}
        self.files_bans: dict[str, list[tuple[GameBan, ...]]] = {}

    def files(self, ctx: ServerContext) -> Sequence[ConfigFile]:
        self.files_bans.setdefault(ctx.name, []).append(tuple(ctx.bans))
        return super().files(ctx)

    def link(self, server: str) -> MemoryLink:
        return self.links[server][-1]

    def said(self, server: str) -> list[str]:
        """Every message said in game on `server`, over all its links, in order."""
        return [cast(str, m) for link in self.links.get(server, []) for m in link.of("say")]

    async def open_link(
        self, ctx: ServerContext, control: RuntimeControl, bus: EventBus
    ) -> GameLink | None:
        link = MemoryLink(bus, ctx.server_id, ctx.name, missions=self.missions)
        self.links.setdefault(ctx.name, []).append(link)
        bus.publish(RconStatus(server_id=ctx.server_id, server=ctx.name, connected=True))
        return link
