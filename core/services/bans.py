"""Bans: recorded in the database first, then pushed to every running game in scope.

The database is the source of truth. A game that cannot be reached when a ban changes is
marked for a full `sync_bans` (retried every expiry tick), and every (re)connect of a game's
link and every start syncs it again, so a game that rewrote its ban file loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from core.errors import InvalidInput, NotFound, NotSupported
from core.events import EventBus, RconStatus, ServerStateChanged, Subscription
from core.games.base import BanKind, GameBan, GameLink, OnlinePlayer
from core.parsing import format_duration, parse_duration
from core.services.audit import SYSTEM, Actor, AuditLog
from core.services.ban_targets import (
    GAME_BAN_KINDS,
    KIND_TITLES,
    BanTarget,
    clean_text,
    parse_target,
)
from core.supervisor.server import ManagedServer
from core.supervisor.states import ServerState
from core.supervisor.supervisor import Supervisor
from data.db import Database
from data.repositories.bans import Ban, BanRepository

__all__ = [
    "Ban",
    "BanService",
]

_log = logging.getLogger(__name__)


class BanService:
    def __init__(
        self,
        supervisor: Supervisor,
        db: Database,
        bus: EventBus,
        audit: AuditLog,
        *,
        clock: Callable[[], float] = time.time,
        expiry_interval: float = 30.0,
        link_wait: float = 60.0,
        game_timeout: float = 10.0,
        sync_timeout: float = 60.0,
    ) -> None:
        self._supervisor = supervisor
        self._db = db
        self._bus = bus
        self._audit = audit
        self._repo = BanRepository(db)
        self._clock = clock
        self._expiry_interval = expiry_interval
        self._link_wait = link_wait
        self._game_timeout = game_timeout
        self._sync_timeout = sync_timeout
        self._locks: dict[int, asyncio.Lock] = {}
        self._pending: set[int] = set()
        """Servers whose game missed a change: a full sync is retried every tick."""
        self._wanted: set[int] = set()
        self._sync_tasks: dict[int, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._sub: Subscription | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Become the supervisor's ban source, then sync on every (re)connect and expire."""
        self._supervisor.bans_provider = self.active_for
        self._sub = self._bus.subscribe(RconStatus, ServerStateChanged)
        self._tasks = [
            asyncio.create_task(self._watch(self._sub), name="bans-sync-events"),
            asyncio.create_task(self._tick_loop(), name="bans-expiry"),
        ]
        for server in self._supervisor.all():
            if server.state is ServerState.RUNNING:
                self.request_sync(server.id)

    async def close(self) -> None:
        if self._sub is not None:
            self._sub.close()
        tasks = [*self._tasks, *self._sync_tasks.values()]
        for task in tasks:
            task.cancel()
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(result, Exception):  # closing goes on: the bot is shutting down
                _log.error("a ban task had failed", exc_info=result)
        self._tasks.clear()
        self._sync_tasks.clear()
        if self._supervisor.bans_provider == self.active_for:
            self._supervisor.bans_provider = None

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
            raise NotFound(f"there is no ban #{ban_id}; `/bans list` shows them")
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

    # -- changes -------------------------------------------------------------------------

    async def add(
        self,
        actor: Actor,
        target: str,
        duration: str,
        reason: str,
        server_name: str | None = None,
    ) -> Ban:
        """`/bans add`: ban an id on one server or all, now and at every later start."""
        server = self._supervisor.by_name(server_name) if server_name else None
        hex_as = BanKind.GUID
        if server is not None:
            kinds = self.kinds_for(server.game)
            hex_as = BanKind.UUID if BanKind.UUID in kinds and BanKind.GUID not in kinds else hex_as
        parsed = parse_target(target, hex_as=hex_as)
        seconds = parse_duration(duration, allow_permanent=True)
        return await self.create(actor, parsed, seconds, reason, server)

    async def create(
        self,
        actor: Actor,
        target: BanTarget,
        seconds: float | None,
        reason: str,
        server: ManagedServer | None,
        *,
        action: str = "bans.add",
        online: tuple[int, OnlinePlayer] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Ban:
        """Record a ban (replacing an active one of the same target and scope), then apply it.

        `online` names a player to ban through `link.ban` (which also kicks) on that server.
        """
        if server is not None:
            self._check_kind(server, target.kind)
            if target.kind is BanKind.IP and server.game == "minecraft" and ":" in target.value:
                raise NotSupported(f"{server.name} is a Minecraft server: it bans IPv4 only")
        reason = clean_text(reason)
        now = self._clock()
        async with self._db.transaction():
            scope = None if server is None else server.id
            replaced = await self._repo.same_target(target.kind, target.value, scope, now)
            for old in replaced:
                await self._repo.mark_removed(old.id, now, actor.id, actor.name)
            ban_id = await self._repo.add(
                kind=target.kind,
                value=target.value,
                server_id=scope,
                reason=reason,
                author_id=actor.id,
                author_name=actor.name,
                created_at=now,
                expires_at=None if seconds is None else now + seconds,
            )
        ban = await self.get(ban_id)
        applied, missed = await self._apply(ban, replaced, online)
        await self._audit.record(
            actor,
            action,
            server_id=ban.server_id,
            arguments={
                **(details or {}),
                "ban": ban.id,
                "kind": ban.kind.value,
                "value": ban.value,
                "duration": "perm" if seconds is None else format_duration(seconds),
                "reason": reason,
                "scope": ban.server_name or "all servers",
                "replaces": [old.id for old in replaced],
            },
            result=_outcome(f"ban #{ban.id}", applied, missed),
        )
        return ban

    async def remove(self, actor: Actor, ban_id: int) -> Ban:
        """Lift a ban in the database and in every running game it applied to."""
        ban = await self.get(ban_id)
        now = self._clock()
        if not ban.is_active(now) or not await self._repo.mark_removed(
            ban.id, now, actor.id, actor.name
        ):
            raise InvalidInput(f"ban #{ban.id} is already {ban.status(now)}")
        ban = await self.get(ban_id)
        applied, missed = await self._withdraw(ban)
        await self._audit.record(
            actor,
            "bans.remove",
            server_id=ban.server_id,
            arguments={"ban": ban.id, "kind": ban.kind.value, "value": ban.value},
            result=_outcome(f"removed ban #{ban.id}", applied, missed),
        )
        return ban

    async def expire_due(self) -> list[Ban]:
        """Mark temporary bans whose time is up as expired and lift them in running games."""
        expired: list[Ban] = []
        now = self._clock()
        for due in await self._repo.due(now):
            if not await self._repo.mark_expired(due.id, now):
                continue
            ban = await self.get(due.id)
            expired.append(ban)
            applied, missed = await self._withdraw(ban)
            await self._audit.record(
                SYSTEM,
                "bans.expire",
                server_id=ban.server_id,
                arguments={"ban": ban.id, "kind": ban.kind.value, "value": ban.value},
                result=_outcome(f"ban #{ban.id} expired", applied, missed),
            )
        return expired

    # -- games ---------------------------------------------------------------------------

    def _check_kind(self, server: ManagedServer, kind: BanKind) -> None:
        kinds = self.kinds_for(server.game)
        if not kinds:
            raise NotSupported(f"{server.name} ({server.game}) has no ban list")
        if kind not in kinds:
            takes = " or ".join(sorted(KIND_TITLES[k] for k in kinds))
            raise NotSupported(
                f"{server.name} is a {server.game} server: it bans by {takes}, "
                f"not by {KIND_TITLES[kind]}"
            )

    def _in_scope(self, ban: Ban) -> list[ManagedServer]:
        """Running servers the ban applies to (those whose game knows its kind)."""
        if ban.server_id is not None:
            try:
                servers = [self._supervisor.get(ban.server_id)]
            except NotFound:
                return []
        else:
            servers = self._supervisor.all()
        return [
            s
            for s in servers
            if s.state is ServerState.RUNNING and ban.kind in self.kinds_for(s.game)
        ]

    async def _apply(
        self, ban: Ban, replaced: Sequence[Ban], online: tuple[int, OnlinePlayer] | None
    ) -> tuple[list[str], list[str]]:
        async def apply(server: ManagedServer, link: GameLink) -> None:
            for old in replaced:
                await link.remove_ban(old.game_ban())
            if online is not None and online[0] == server.id:
                await link.ban(online[1], ban.game_ban())
            else:
                await link.add_ban(ban.game_ban())

        return await self._on_games(ban, "apply", apply)

    async def _withdraw(self, ban: Ban) -> tuple[list[str], list[str]]:
        async def lift(server: ManagedServer, link: GameLink) -> None:
            held = await self.active_for(server.id)
            if any(b.kind is ban.kind and b.value.lower() == ban.value.lower() for b in held):
                await link.sync_bans(held)  # another ban holds the same target here
            else:
                await link.remove_ban(ban.game_ban())

        return await self._on_games(ban, "lift", lift)

    async def _on_games(
        self, ban: Ban, what: str, change: Callable[[ManagedServer, GameLink], Awaitable[None]]
    ) -> tuple[list[str], list[str]]:
        """Run `change` on each running game in scope; a game that fails is synced later."""
        done: list[str] = []
        missed: list[str] = []
        for server in self._in_scope(ban):
            try:
                async with self._game_lock(server.id):
                    if server.link is None:
                        raise ConnectionError("not connected yet")
                    async with asyncio.timeout(self._game_timeout):
                        await change(server, server.link)
            except Exception as exc:  # an unreachable game never loses a change: sync later
                _log.warning(
                    "could not %s ban #%d on %s (%s); its ban list will be synced again",
                    what,
                    ban.id,
                    server.name,
                    str(exc) or type(exc).__name__,
                )
                self._pending.add(server.id)
                missed.append(server.name)
            else:
                done.append(server.name)
        return done, missed

    def _game_lock(self, server_id: int) -> asyncio.Lock:
        """One change at a time per game, so a sync never overwrites a newer add or remove."""
        return self._locks.setdefault(server_id, asyncio.Lock())

    def pending_servers(self) -> list[str]:
        """Servers whose game missed a ban change and waits for a sync (for a reply's note)."""
        names = []
        for server_id in sorted(self._pending):
            with contextlib.suppress(NotFound):
                names.append(self._supervisor.get(server_id).name)
        return names

    # -- syncing -------------------------------------------------------------------------

    def request_sync(self, server_id: int) -> None:
        """Make the game's ban list equal the database's, as soon as its link is up."""
        self._wanted.add(server_id)
        task = self._sync_tasks.get(server_id)
        if task is None or task.done():
            self._sync_tasks[server_id] = asyncio.create_task(
                self._sync_worker(server_id), name=f"bans-sync-{server_id}"
            )

    async def _sync_worker(self, server_id: int) -> None:
        while server_id in self._wanted:
            self._wanted.discard(server_id)
            link = await self._wait_link(server_id)
            if link is None:
                continue
            try:
                async with self._game_lock(server_id):
                    bans = await self.active_for(server_id)
                    async with asyncio.timeout(self._sync_timeout):
                        await link.sync_bans(bans)
            except Exception as exc:  # retried at the next tick
                _log.warning("syncing the ban list of server %d failed: %s", server_id, exc)
                self._pending.add(server_id)
            else:
                _log.info("synced %d bans to server %d", len(bans), server_id)
                self._pending.discard(server_id)

    async def _wait_link(self, server_id: int) -> GameLink | None:
        deadline = time.monotonic() + self._link_wait
        while True:
            try:
                server = self._supervisor.get(server_id)
            except NotFound:
                self._pending.discard(server_id)
                return None
            if server.state is not ServerState.RUNNING:
                self._pending.discard(server_id)  # its next start writes the ban file
                return None
            if server.link is not None:
                return server.link
            if time.monotonic() >= deadline:
                self._pending.add(server_id)
                return None
            await asyncio.sleep(0.1)

    async def _watch(self, sub: Subscription) -> None:
        async for event in sub:
            if (isinstance(event, RconStatus) and event.connected) or (
                isinstance(event, ServerStateChanged) and event.new is ServerState.RUNNING
            ):
                self.request_sync(event.server_id)

    async def _tick_loop(self) -> None:
        while True:
            try:
                await self.expire_due()
            except Exception:
                _log.exception("expiring bans failed")
            for server_id in sorted(self._pending):
                self.request_sync(server_id)
            await asyncio.sleep(self._expiry_interval)

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


def _outlasts(ban: Ban, other: Ban) -> bool:
    if other.expires_at is None:
        return False
    return ban.expires_at is None or ban.expires_at > other.expires_at


def _outcome(what: str, applied: Sequence[str], missed: Sequence[str]) -> str:
    parts = [what]
    if applied:
        parts.append("applied on " + ", ".join(applied))
    if missed:
        parts.append("pending on " + ", ".join(missed) + " (synced when reachable)")
    return "; ".join(parts)
