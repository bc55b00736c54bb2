"""Bans: a ledger in the database that merges what the games hold and never wipes it.

A ban made through the bot is recorded first, then pushed to every running game in scope.
Bans found in a game that the ledger does not know (made before the bot, in game, or with
another tool) are imported at first sight: from the game's ban files before each start
(and when the bot starts), and from its live list at every sync (each (re)connect, and
each ban made in game). A game loses only what the ledger lifted: a ban removed or expired
here leaves a "lift" for every server in its scope, taken out of that game and then
forgotten; a game-side ban the ledger never saw is never removed.

A game that cannot be reached when a ban changes is synced later (see ban_sync), so a
game that rewrote its ban file loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from core.errors import InvalidInput, NotFound, NotRunning, NotSupported
from core.events import (
    BanChanged,
    EventBus,
    PlayerBanned,
    RconStatus,
    ServerStateChanged,
    Subscription,
)
from core.games.base import BanFiles, BanKind, GameBan, GameLink, OnlinePlayer
from core.parsing import format_duration, parse_duration
from core.services.audit import SYSTEM, Actor, AuditLog
from core.services.ban_import import import_found
from core.services.ban_ledger import BanLedger
from core.services.ban_sync import BanSyncer
from core.services.ban_targets import BanTarget, clean_text, parse_target
from core.supervisor.server import ManagedServer
from core.supervisor.states import RESTING_STATES, ServerState
from core.supervisor.supervisor import Supervisor
from data.db import Database
from data.repositories.bans import Ban, BanOrigin, BanRepository

__all__ = [
    "Ban",
    "BanOrigin",
    "BanService",
]

_log = logging.getLogger(__name__)


class BanService(BanLedger):
    """The ledger's changes, pushed to the games in scope; the reads are in `BanLedger`."""

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
        super().__init__(supervisor, BanRepository(db), clock)
        self._db = db
        self._bus = bus
        self._audit = audit
        self._expiry_interval = expiry_interval
        self._game_timeout = game_timeout
        self._sync_timeout = sync_timeout
        self._syncer = BanSyncer(supervisor, self._sync_one, link_wait=link_wait)
        self._tasks: list[asyncio.Task[None]] = []
        self._sub: Subscription | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Become the supervisor's ban source, import what stopped games' files hold, then
        sync on every (re)connect, start and in-game ban, and expire."""
        self._supervisor.bans_provider = self.bans_for_start
        self._sub = self._bus.subscribe(RconStatus, ServerStateChanged, PlayerBanned)
        self._tasks = [
            asyncio.create_task(self._syncer.watch(self._sub), name="bans-sync-events"),
            asyncio.create_task(self._tick_loop(), name="bans-expiry"),
        ]
        for server in self._supervisor.all():
            if server.state is ServerState.RUNNING:
                self.request_sync(server.id)
            elif server.state in RESTING_STATES:
                await self._import_files(server)

    async def close(self) -> None:
        if self._sub is not None:
            self._sub.close()
        for task in self._tasks:
            task.cancel()
        for result in await asyncio.gather(*self._tasks, return_exceptions=True):
            if isinstance(result, Exception):  # closing goes on: the bot is shutting down
                _log.error("a ban task had failed", exc_info=result)
        self._tasks.clear()
        await self._syncer.close()
        if self._supervisor.bans_provider == self.bans_for_start:
            self._supervisor.bans_provider = None

    # -- queries -------------------------------------------------------------------------

    async def bans_for_start(self, server_id: int) -> list[GameBan]:
        """The supervisor's ban source for a server's context: before a start (no game
        running) first import what the game's ban files hold, then the active bans and the
        lifted ones the files may still hold (`lifted=True`), for the profile to merge."""
        with contextlib.suppress(NotFound):
            server = self._supervisor.get(server_id)
            if server.state in RESTING_STATES:
                await self._import_files(server)
        active = await self.active_for(server_id)
        targets = {(b.kind, b.value.lower()) for b in active}
        lifted = [
            replace(ban.game_ban(), lifted=True)
            for ban in await self._repo.lifted_on(server_id)
            if (ban.kind, ban.value.lower()) not in targets
        ]
        return [*active, *lifted]

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
                raise NotSupported(
                    "{name} is a Minecraft server: it bans IPv4 only", name=server.name
                )
        reason = clean_text(reason)
        now = self._clock()
        async with self._db.transaction():
            scope = None if server is None else server.id
            replaced = await self._repo.same_target(target.kind, target.value, scope, now)
            for old in replaced:
                await self._repo.mark_removed(old.id, now, actor.id, actor.name)
                await self._repo.add_lifts(old.id, self._lift_servers(old))
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
        self._announce("added", ban, actor)
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
        async with self._db.transaction():
            lifted = ban.is_active(now) and await self._repo.mark_removed(
                ban.id, now, actor.id, actor.name
            )
            if lifted:
                await self._repo.add_lifts(ban.id, self._lift_servers(ban))
        if not lifted:
            raise _not_active(ban, now)
        ban = await self.get(ban_id)
        self._announce("removed", ban, actor)
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
            async with self._db.transaction():
                if not await self._repo.mark_expired(due.id, now):
                    continue
                await self._repo.add_lifts(due.id, self._lift_servers(due))
            ban = await self.get(due.id)
            self._announce("expired", ban, SYSTEM)
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

    def _announce(self, action: str, ban: Ban, actor: Actor) -> None:
        self._bus.publish(
            BanChanged(
                server_id=ban.server_id or 0,
                server=ban.server_name or "",
                action=action,
                ban_id=ban.id,
                kind=ban.kind.value,
                value=ban.value,
                reason=ban.reason,
                expires_at=ban.expires_at,
                actor=actor.name,
            )
        )

    # -- games ---------------------------------------------------------------------------

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
            await self._repo.clear_lifts(server.id, [old.id for old in replaced])

        what = f"apply ban #{ban.id}"
        return await self._syncer.on_games(self._in_scope(ban), what, apply, self._game_timeout)

    async def _withdraw(self, ban: Ban) -> tuple[list[str], list[str]]:
        async def lift(server: ManagedServer, link: GameLink) -> None:
            held = await self.active_for(server.id)
            if any(b.kind is ban.kind and b.value.lower() == ban.value.lower() for b in held):
                await link.sync_bans(held, [ban.game_ban()])  # another ban holds the target
            else:
                await link.remove_ban(ban.game_ban())
            await self._repo.clear_lifts(server.id, [ban.id])

        what = f"lift ban #{ban.id}"
        return await self._syncer.on_games(self._in_scope(ban), what, lift, self._game_timeout)

    def pending_servers(self) -> list[str]:
        """Servers whose game missed a ban change and waits for a sync (for a reply's note)."""
        return self._syncer.pending_names()

    # -- importing and syncing -------------------------------------------------------------

    async def _import(self, server: ManagedServer, found: Sequence[GameBan], where: str) -> None:
        """Record the bans found in a server's game that the ledger does not know."""
        kinds = self.kinds_for(server.game)
        target = (server.id, server.name)
        await import_found(self._repo, self._audit, target, found, kinds, self._clock(), where)

    async def _import_files(self, server: ManagedServer) -> None:
        """First sight of a game that is not running: what its ban files hold. A failure is
        logged and the start goes on (the files keep every ban; the next start retries)."""
        profile = server.profile
        if not isinstance(profile, BanFiles):
            return
        try:
            async with self._syncer.lock(server.id):
                folder = self._supervisor.folder_for(server.name)
                found = await asyncio.to_thread(profile.banned_in_files, folder)  # bounded
                await self._import(server, found, "its ban files")
        except Exception:
            _log.exception("importing the ban files of %s failed", server.name)

    async def _sync_one(self, server_id: int, link: GameLink) -> None:
        """Import what the running game holds, then make it hold the ledger's bans and lose
        the lifted ones (and nothing else)."""
        server = self._supervisor.get(server_id)
        async with self._syncer.lock(server_id):
            async with asyncio.timeout(self._sync_timeout):
                await self._import(server, await link.list_bans(), "the game")
                bans = await self.active_for(server_id)
                lifted = await self._repo.lifted_on(server_id)
                await link.sync_bans(bans, [ban.game_ban() for ban in lifted])
            await self._repo.clear_lifts(server_id, [ban.id for ban in lifted])
        _log.info("synced %d bans to %s", len(bans), server.name)

    async def sync_now(self, server_id: int) -> None:
        """A full import and sync of one running game, finished on return (raises on failure)."""
        server = self._supervisor.get(server_id)
        if server.state is not ServerState.RUNNING or server.link is None:
            raise NotRunning("{name} is not running", name=server.name)
        await self._sync_one(server_id, server.link)
        self._syncer.pending.discard(server_id)

    def request_sync(self, server_id: int) -> None:
        """Sync the game's ban list with the ledger as soon as its link is up."""
        self._syncer.request(server_id)

    async def _tick_loop(self) -> None:
        while True:
            try:
                await self.expire_due()
            except Exception:
                _log.exception("expiring bans failed")
            self._syncer.retry_pending()
            await asyncio.sleep(self._expiry_interval)


def _outcome(what: str, applied: Sequence[str], missed: Sequence[str]) -> str:
    parts = [what]
    if applied:
        parts.append("applied on " + ", ".join(applied))
    if missed:
        parts.append("pending on " + ", ".join(missed) + " (synced when reachable)")
    return "; ".join(parts)


def _not_active(ban: Ban, now: float) -> InvalidInput:
    """A lift refused: the ban was lifted, or ran out, before."""
    status = ban.status(now)
    if status == "removed":
        return InvalidInput("ban #{id} is already removed", id=ban.id)
    if status == "expired":
        return InvalidInput("ban #{id} is already expired", id=ban.id)
    return InvalidInput("ban #{id} is already active", id=ban.id)
