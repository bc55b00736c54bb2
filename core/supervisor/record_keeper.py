"""A server's row in the database, kept equal to what the server really does.

A write can fail: the disk is full, another program holds the database locked past every
retry. What the process does must never depend on that: the exit watcher is already set,
the state in memory is the truth, and the keeper rewrites the whole row (state, reason,
process) in the background until it succeeds. One `StorageTrouble` event announces the
trouble and one its end, so an alert goes out once, not per write.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from core.backoff import Backoff
from core.events import EventBus, StorageTrouble
from core.supervisor.states import ServerState
from data.db import Database, is_disk_full
from data.repositories.history import HistoryRepository
from data.repositories.servers import ProcessRecord, ServerRepository

__all__ = ["RecordKeeper", "Snapshot", "StorageErrors"]

_log = logging.getLogger(__name__)

StorageErrors = (sqlite3.Error, OSError)
"""What a failed write raises: SQLite's errors (busy, full, I/O) and the OS's (ENOSPC)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything of a server's row that must match reality."""

    state: ServerState
    reason: str
    process: ProcessRecord | None


class RecordKeeper:
    def __init__(
        self,
        *,
        server_id: int,
        server: str,
        db: Database,
        servers: ServerRepository,
        history: HistoryRepository,
        bus: EventBus,
        snapshot: Callable[[], Snapshot],
        retry: Backoff | None = None,
    ) -> None:
        self._id = server_id
        self._name = server
        self._db = db
        self._servers = servers
        self._history = history
        self._bus = bus
        self._snapshot = snapshot
        self._backoff = retry or Backoff(base=0.5, cap=10.0)
        self._retry_task: asyncio.Task[None] | None = None
        self.behind = False
        """True while the row in the database is older than the truth in memory."""

    # -- writes ----------------------------------------------------------------------------

    async def transition(self, old: ServerState, new: ServerState, reason: str) -> bool:
        """Persist a move: the state and its history row in one transaction."""

        async def write() -> None:
            async with self._db.transaction():
                await self._servers.set_state(self._id, new, reason)
                await self._history.add(
                    self._id, "transition", {"old": old.value, "new": new.value, "reason": reason}
                )

        return await self._attempt(write, f"state {new.value}")

    async def strict_transition(self, old: ServerState, new: ServerState, reason: str) -> None:
        """Persist a move or raise: for moves that are about to cause an effect (a start)."""
        async with self._db.transaction():
            await self._servers.set_state(self._id, new, reason)
            await self._history.add(
                self._id, "transition", {"old": old.value, "new": new.value, "reason": reason}
            )

    async def process(self, record: ProcessRecord | None) -> bool:
        return await self._attempt(
            lambda: self._servers.set_process(self._id, record), "process record"
        )

    async def event(self, kind: str, data: dict[str, Any], ts: float | None = None) -> bool:
        return await self._attempt(lambda: self._history.add(self._id, kind, data, ts), kind)

    async def _attempt(self, write: Callable[[], Awaitable[Any]], what: str) -> bool:
        """Run one write; on failure, remember the row is behind and catch up later."""
        if self.behind:
            self._schedule_catch_up()
        try:
            await write()
        except StorageErrors as exc:
            self._fell_behind(exc, what)
            return False
        return True

    # -- falling behind and catching up ------------------------------------------------------

    def _fell_behind(self, exc: BaseException, what: str) -> None:
        full = is_disk_full(exc)
        reason = "the disk is full" if full else f"the database cannot be written ({exc})"
        _log.error("%s: saving the %s failed: %s", self._name, what, exc)
        if not self.behind:
            self.behind = True
            self._bus.publish(
                StorageTrouble(server_id=self._id, server=self._name, reason=reason, disk_full=full)
            )
        self._schedule_catch_up()

    def _schedule_catch_up(self) -> None:
        if self._retry_task is None or self._retry_task.done():
            self._retry_task = asyncio.get_running_loop().create_task(
                self._catch_up(), name=f"{self._name}:catch-up"
            )

    async def _catch_up(self) -> None:
        while self.behind:
            await asyncio.sleep(self._backoff.next())
            if await self.write_snapshot():
                self.behind = False
                self._backoff.reset()
                _log.info("%s: the database is written again", self._name)
                self._bus.publish(
                    StorageTrouble(
                        server_id=self._id,
                        server=self._name,
                        reason="the database is written again",
                        recovered=True,
                    )
                )

    async def write_snapshot(self) -> bool:
        """Rewrite the whole row from the truth in memory; False if it still fails."""
        snap = self._snapshot()
        try:
            async with self._db.transaction():
                await self._servers.set_state(self._id, snap.state, snap.reason)
                await self._servers.set_process(self._id, snap.process)
        except StorageErrors as exc:
            _log.debug("%s: catching up the row failed again: %s", self._name, exc)
            return False
        return True

    def close(self) -> None:
        task, self._retry_task = self._retry_task, None
        if task is not None:
            task.cancel()

    async def flush(self) -> None:
        """One last try to save the row (the bot is closing); a failure is only logged."""
        self.close()
        if self.behind and await self.write_snapshot():
            self.behind = False
