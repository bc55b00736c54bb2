"""Players: the live list of each running server, moderation (kick, ban, say), and history.

The live list follows the game's join/leave events and is reconciled with `link.players()`
on every poll and every `online()` call, so a lost event costs at most one poll interval.
Every sighting is written to the history (identities, names, IPs, sessions).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from core.errors import InvalidInput, LanguardError, NotFound, NotRunning, NotSupported
from core.events import EventBus, PlayerJoined, PlayerLeft, ServerStateChanged, Subscription
from core.games.base import BanKind, GameLink, OnlinePlayer
from core.paging import Page, window
from core.parsing import parse_duration
from core.services.audit import Actor, AuditLog
from core.services.ban_targets import BanTarget, clean_text, normalise_target
from core.services.bans import Ban, BanService
from core.services.player_errors import AmbiguousPlayer, UnknownPlayer
from core.services.player_identity import history_match, norm_id, normalised, same_person
from core.supervisor.server import ManagedServer
from core.supervisor.states import ServerState
from core.supervisor.supervisor import Supervisor
from data.db import Database
from data.repositories.players import PlayerHistory, PlayerRepository

__all__ = ["PlayerService"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Live:
    player: OnlinePlayer
    player_id: int
    session_id: int


class PlayerService:
    def __init__(
        self,
        supervisor: Supervisor,
        db: Database,
        bus: EventBus,
        audit: AuditLog,
        bans: BanService,
        *,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 30.0,
        game_timeout: float = 10.0,
    ) -> None:
        self._supervisor = supervisor
        self._db = db
        self._bus = bus
        self._audit = audit
        self._bans = bans
        self._repo = PlayerRepository(db)
        self._clock = clock
        self._poll_interval = poll_interval
        self._game_timeout = game_timeout
        self._live: dict[int, dict[str, _Live]] = {}
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._sub: Subscription | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Close sessions a previous run left open, then follow events and poll."""
        closed = await self._repo.close_open()
        if closed:
            _log.info("closed %d player sessions left open by the previous run", closed)
        self._sub = self._bus.subscribe(PlayerJoined, PlayerLeft, ServerStateChanged)
        self._tasks = [
            asyncio.create_task(self._watch(self._sub), name="players-events"),
            asyncio.create_task(self._poll_loop(), name="players-poll"),
        ]

    async def close(self) -> None:
        """Stop following; open sessions stay open (the games keep running)."""
        if self._sub is not None:
            self._sub.close()
        for task in self._tasks:
            task.cancel()
        for result in await asyncio.gather(*self._tasks, return_exceptions=True):
            if isinstance(result, Exception):  # closing goes on: the bot is shutting down
                _log.error("a player task had failed", exc_info=result)
        self._tasks.clear()

    # -- the live list -------------------------------------------------------------------

    def known_online(self, server_name: str) -> list[OnlinePlayer]:
        """The last known list, without asking the game: cheap enough for autocomplete."""
        for server in self._supervisor.all():
            if server.name == server_name and server.state is ServerState.RUNNING:
                return [entry.player for entry in self._live.get(server.id, {}).values()]
        return []

    async def online(self, server_name: str) -> list[OnlinePlayer]:
        """Players on a running server, asked of the game now (the last known list if the
        game does not answer); empty when the server is not running."""
        server = self._supervisor.by_name(server_name)
        if server.state is not ServerState.RUNNING:
            return []
        link = server.link
        if link is None:
            return self.known_online(server.name)
        try:
            async with asyncio.timeout(self._game_timeout):
                players = await link.players()
        except (LanguardError, TimeoutError) as exc:
            _log.warning("players of %s: the game did not answer (%s)", server.name, exc)
            return self.known_online(server.name)
        await self._reconcile(server, players)
        live = self._live.get(server.id, {})
        return [live[p.key].player if p.key in live else p for p in players]

    async def find_online(self, server_name: str, query: str) -> OnlinePlayer:
        """One online player by number/key, GUID, exact name, then case-insensitive prefix."""
        wanted = query.strip()
        if not wanted:
            raise InvalidInput("name a player: their name, the start of it, or their number")
        server = self._supervisor.by_name(server_name)
        if server.state is not ServerState.RUNNING:
            raise NotRunning("{name} is not running, so nobody is online", name=server.name)
        players = await self.online(server.name)
        folded = wanted.casefold()
        tiers: Iterable[Callable[[OnlinePlayer], bool]] = (
            lambda p: p.key == wanted or p.key == wanted.removeprefix("#"),
            lambda p: p.guid is not None and p.guid.lower() == wanted.lower(),
            lambda p: p.name == wanted,
            lambda p: p.name.casefold() == folded,
            lambda p: p.name.casefold().startswith(folded),
        )
        for matches in tiers:
            found = [p for p in players if matches(p)]
            if len(found) == 1:
                return found[0]
            if found:
                raise AmbiguousPlayer(wanted, found)
        raise UnknownPlayer(server.name, wanted, players)

    # -- moderation ----------------------------------------------------------------------

    async def kick(
        self, actor: Actor, server_name: str, player: str, reason: str = ""
    ) -> OnlinePlayer:
        server, link = self._linked(server_name)
        target = await self.find_online(server.name, player)
        reason = clean_text(reason)
        arguments = {"player": target.name, "key": target.key, "guid": target.guid}
        await self._tell_game(
            actor,
            "players.kick",
            server,
            {**arguments, "reason": reason},
            link.kick(target, reason),
        )
        return target

    async def ban(
        self,
        actor: Actor,
        server_name: str,
        player: str,
        duration: str,
        reason: str = "",
        *,
        all_servers: bool = False,
    ) -> Ban:
        """Ban an online player: recorded first, then banned (and kicked) through the link."""
        server, _ = self._linked(server_name)
        seconds = parse_duration(duration, allow_permanent=True)
        target = await self.find_online(server.name, player)
        return await self._bans.create(
            actor,
            self._ban_target(server, target),
            seconds,
            reason,
            None if all_servers else server,
            action="players.ban",
            online=(server.id, target),
            details={"player": target.name, "key": target.key, "server": server.name},
        )

    def _ban_target(self, server: ManagedServer, player: OnlinePlayer) -> BanTarget:
        kinds = self._bans.kinds_for(server.game)
        if BanKind.GUID in kinds:
            guid = norm_id(player.guid, BanKind.GUID)
            if guid is None:
                raise InvalidInput(
                    "the BattlEye GUID of {name} is not known yet (BattlEye checks it a few "
                    "seconds after they join); try again in a moment, or ban their IP with "
                    "`/bans add`",
                    name=player.name,
                )
            return BanTarget(BanKind.GUID, guid)
        uuid_value = norm_id(player.guid, BanKind.UUID) if BanKind.UUID in kinds else None
        if uuid_value is not None:
            return BanTarget(BanKind.UUID, uuid_value)
        if BanKind.NAME in kinds:
            return BanTarget(BanKind.NAME, normalise_target(BanKind.NAME, player.name))
        raise NotSupported(
            "{name} ({game}) cannot ban a player", name=server.name, game=server.game
        )

    async def say(self, actor: Actor, server_name: str, message: str) -> str:
        """A message to everyone in game; returns the text as it was sent."""
        text = clean_text(message)
        if not text:
            raise InvalidInput("the message is empty")
        server, link = self._linked(server_name)
        await self._tell_game(actor, "players.say", server, {"message": text}, link.say(text))
        return text

    def _linked(self, server_name: str) -> tuple[ManagedServer, GameLink]:
        server = self._supervisor.by_name(server_name)
        if server.state is not ServerState.RUNNING:
            raise NotRunning(
                "{name} is not running; start it with `/server start`", name=server.name
            )
        if server.link is None:
            raise NotRunning(
                "{name} is running but not connected yet; try in a moment", name=server.name
            )
        return server, server.link

    async def _tell_game(
        self,
        actor: Actor,
        action: str,
        server: ManagedServer,
        arguments: Mapping[str, object],
        call: Awaitable[None],
    ) -> None:
        """Run one command on the game and audit it, whether it worked or not."""
        try:
            async with asyncio.timeout(self._game_timeout):
                await call
        except (LanguardError, TimeoutError) as exc:
            error = (
                exc
                if isinstance(exc, LanguardError)
                else NotRunning("{name} did not answer in time; try again", name=server.name)
            )
            await self._audit.record(
                actor, action, server_id=server.id, arguments=arguments, result=str(error), ok=False
            )
            raise error from None
        await self._audit.record(actor, action, server_id=server.id, arguments=arguments)

    # -- history -------------------------------------------------------------------------

    async def history(self, query: str, limit: int = 10) -> list[PlayerHistory]:
        """Players by (part of) a name they used, their GUID/UUID, or an IP they came from."""
        return await self._repo.search(history_match(query), max(1, min(limit, 25)))

    async def history_page(self, query: str, offset: int, limit: int) -> Page[PlayerHistory]:
        """One page of `history`'s matches and how many there are in all, so `/players
        history` pages through every match without loading them all."""
        match = history_match(query)
        offset, limit = window(offset, limit, 25)
        total = await self._repo.count(match)
        return Page(total, offset, await self._repo.search(match, limit, offset))

    # -- following the games -------------------------------------------------------------

    async def _watch(self, sub: Subscription) -> None:
        async for event in sub:
            try:
                if isinstance(event, PlayerJoined):
                    await self._joined(event)
                elif isinstance(event, PlayerLeft):
                    await self._left(event)
                elif isinstance(event, ServerStateChanged) and event.new is not ServerState.RUNNING:
                    await self._clear(event.server_id)
            except Exception:  # one bad event must not stop the history
                _log.exception("recording %s failed", type(event).__name__)

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            for server in self._supervisor.all():
                link = server.link
                if server.state is not ServerState.RUNNING or link is None:
                    continue
                try:
                    async with asyncio.timeout(self._game_timeout):
                        players = await link.players()
                    await self._reconcile(server, players)
                except (LanguardError, TimeoutError) as exc:
                    _log.info("polling the players of %s failed: %s", server.name, exc)
                except Exception:
                    _log.exception("polling the players of %s failed", server.name)

    async def _joined(self, event: PlayerJoined) -> None:
        try:
            server = self._supervisor.get(event.server_id)
        except NotFound:
            return
        if server.state is not ServerState.RUNNING:
            return  # a late event: the server's sessions were closed when it stopped
        player = OnlinePlayer(
            key=event.player_key or event.name, name=event.name, guid=event.guid, ip=event.ip
        )
        async with self._lock:
            await self._see(server, player, self._clock())

    async def _left(self, event: PlayerLeft) -> None:
        async with self._lock:
            live = self._live.get(event.server_id, {})
            key = event.player_key or next(
                (k for k, e in live.items() if e.player.name == event.name), ""
            )
            entry = live.pop(key, None)
            if entry is not None:
                await self._repo.close_session(entry.session_id, self._clock())

    async def _clear(self, server_id: int) -> None:
        async with self._lock:
            live = self._live.pop(server_id, {})
            now = self._clock()
            async with self._db.transaction():
                for entry in live.values():
                    await self._repo.close_session(entry.session_id, now)
                await self._repo.close_open(server_id)

    async def _reconcile(self, server: ManagedServer, players: Sequence[OnlinePlayer]) -> None:
        async with self._lock:
            if server.state is not ServerState.RUNNING:
                return
            now = self._clock()
            live = self._live.setdefault(server.id, {})
            async with self._db.transaction():
                for player in players:
                    await self._see(server, player, now)
                keys = {p.key for p in players}
                for key in [k for k in live if k not in keys]:
                    await self._repo.close_session(live.pop(key).session_id, now)

    async def _see(self, server: ManagedServer, seen: OnlinePlayer, now: float) -> None:
        """Record a sighting (under the lock): open, continue, or replace a session."""
        live = self._live.setdefault(server.id, {})
        player = normalised(seen, server.game)
        current = live.get(player.key)
        async with self._db.transaction():
            if current is not None and not same_person(current.player, player):
                await self._repo.close_session(current.session_id, now)
                current = None
            if current is None:
                player_id = await self._repo.identify(server.game, player.guid, player.name, now)
                session_id = await self._repo.open_session(player_id, server.id, player.name, now)
            else:
                player_id, session_id = current.player_id, current.session_id
                if player.guid is not None and current.player.guid is None:
                    player_id = await self._repo.attach_guid(player_id, player.guid, now)
                player = dataclasses.replace(
                    player,
                    guid=player.guid or current.player.guid,
                    ip=player.ip or current.player.ip,
                )
            await self._repo.seen(player_id, player.name, player.ip, now)
        live[player.key] = _Live(player, player_id, session_id)
