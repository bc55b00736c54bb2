"""How ledger changes reach running games: one at a time per game, and synced until they do.

Every change to a game's ban list (an add, a lift, a full sync) runs under that game's
lock, so a sync never overwrites a newer add or remove; a game that misses a change is
marked pending and fully synced at the next tick. A sync is also asked for on every
(re)connect of a game's link, when a server comes up, and when a player is banned in game
(so a ban made there is imported). One worker per server runs the syncs one after another,
folding requests that arrive meanwhile into the next run; the sync itself (import, then
apply) is the BanService's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from core.errors import NotFound
from core.events import PlayerBanned, RconStatus, ServerStateChanged, Subscription
from core.games.base import GameLink
from core.supervisor.server import ManagedServer
from core.supervisor.states import ServerState
from core.supervisor.supervisor import Supervisor

__all__ = ["BanSyncer"]

_log = logging.getLogger(__name__)

SyncOne = Callable[[int, GameLink], Awaitable[None]]
Change = Callable[[ManagedServer, GameLink], Awaitable[None]]


class BanSyncer:
    def __init__(
        self,
        supervisor: Supervisor,
        sync_one: SyncOne,
        *,
        link_wait: float = 60.0,
    ) -> None:
        self._supervisor = supervisor
        self._sync_one = sync_one
        self._link_wait = link_wait
        self.pending: set[int] = set()
        """Servers whose game missed a change: a full sync is retried every tick."""
        self._wanted: set[int] = set()
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    def lock(self, server_id: int) -> asyncio.Lock:
        """One change at a time per game, so a sync never overwrites a newer add or remove."""
        return self._locks.setdefault(server_id, asyncio.Lock())

    async def on_games(
        self, servers: Sequence[ManagedServer], what: str, change: Change, timeout: float
    ) -> tuple[list[str], list[str]]:
        """Run `change` on each running game; one that fails is synced later. Returns the
        names of the servers it reached and of those it missed."""
        done: list[str] = []
        missed: list[str] = []
        for server in servers:
            try:
                async with self.lock(server.id):
                    if server.link is None:
                        raise ConnectionError("not connected yet")
                    async with asyncio.timeout(timeout):
                        await change(server, server.link)
            except Exception as exc:  # an unreachable game never loses a change: sync later
                _log.warning(
                    "could not %s on %s (%s); its ban list will be synced again",
                    what,
                    server.name,
                    str(exc) or type(exc).__name__,
                )
                self.pending.add(server.id)
                missed.append(server.name)
            else:
                done.append(server.name)
        return done, missed

    def request(self, server_id: int) -> None:
        """Sync the game's ban list with the ledger as soon as its link is up."""
        self._wanted.add(server_id)
        task = self._tasks.get(server_id)
        if task is None or task.done():
            self._tasks[server_id] = asyncio.create_task(
                self._worker(server_id), name=f"bans-sync-{server_id}"
            )

    def retry_pending(self) -> None:
        for server_id in sorted(self.pending):
            self.request(server_id)

    def pending_names(self) -> list[str]:
        names = []
        for server_id in sorted(self.pending):
            with contextlib.suppress(NotFound):
                names.append(self._supervisor.get(server_id).name)
        return names

    async def watch(self, sub: Subscription) -> None:
        """Ask for a sync on each event that may mean the game's list differs."""
        async for event in sub:
            if (
                (isinstance(event, RconStatus) and event.connected)
                or (isinstance(event, ServerStateChanged) and event.new is ServerState.RUNNING)
                or isinstance(event, PlayerBanned)
            ):
                self.request(event.server_id)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(result, Exception):  # closing goes on: the bot is shutting down
                _log.error("a ban sync had failed", exc_info=result)
        self._tasks.clear()

    async def _worker(self, server_id: int) -> None:
        while server_id in self._wanted:
            self._wanted.discard(server_id)
            link = await self._wait_link(server_id)
            if link is None:
                continue
            try:
                await self._sync_one(server_id, link)
            except Exception as exc:  # retried at the next tick
                _log.warning("syncing the ban list of server %d failed: %s", server_id, exc)
                self.pending.add(server_id)
            else:
                self.pending.discard(server_id)

    async def _wait_link(self, server_id: int) -> GameLink | None:
        deadline = time.monotonic() + self._link_wait
        while True:
            try:
                server = self._supervisor.get(server_id)
            except NotFound:
                self.pending.discard(server_id)
                return None
            if server.state is not ServerState.RUNNING:
                self.pending.discard(server_id)  # its next start merges the ban files
                return None
            if server.link is not None:
                return server.link
            if time.monotonic() >= deadline:
                self.pending.add(server_id)
                return None
            await asyncio.sleep(0.1)
