"""The game's command channel while a server runs, and the liveness probe over it."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from core.backoff import Backoff
from core.errors import StartRefused
from core.events import ServerHung
from core.games.base import GameLink
from core.supervisor.control import ProcessControl
from core.supervisor.runtime_api import RuntimeHandle
from core.supervisor.states import ServerState

if TYPE_CHECKING:
    from core.supervisor.server import ManagedServer

__all__ = ["LinkKeeper"]

_log = logging.getLogger(__name__)


class LinkKeeper:
    """Opens the link once the server runs (retrying while it runs) and probes liveness."""

    def __init__(self, server: ManagedServer) -> None:
        self._server = server
        self.link: GameLink | None = None
        self.round_trip: float | None = None
        """Seconds the last liveness probe took to be answered (None: none answered yet)."""
        self._task: asyncio.Task[None] | None = None

    def start(self, handle: RuntimeHandle, generation: int) -> None:
        self._task = self._server.spawn_task(self._run(handle, generation), "link")

    def _current(self, generation: int) -> bool:
        server = self._server
        return server.generation == generation and server.state is ServerState.RUNNING

    async def _run(self, handle: RuntimeHandle, generation: int) -> None:
        server = self._server
        backoff = Backoff(base=1.0, cap=30.0)
        ctx = await server.deps.context(server.id, server.name)
        while self.link is None:
            if not self._current(generation):
                return
            try:
                link = await server.profile.open_link(
                    ctx, ProcessControl(server.id, handle, None), server.deps.bus
                )
            except Exception as exc:  # the game may still be coming up: retry, never give up
                _log.info("link to %s not open yet: %s", server.name, exc)
                await asyncio.sleep(backoff.next())
                continue
            if link is None:
                return
            self.link = link
        await self._probe(handle, generation)

    async def _probe(self, handle: RuntimeHandle, generation: int) -> None:
        server = self._server
        failures = 0
        while True:
            policy = await server.deps.policy(server.id)
            if policy.liveness_interval <= 0:
                return
            await asyncio.sleep(policy.liveness_interval)
            link = self.link
            if link is None or not self._current(generation):
                return
            sent = time.monotonic()
            try:
                async with asyncio.timeout(max(policy.liveness_interval, 5.0)):
                    await link.probe()
            except Exception as exc:  # any failure to answer counts
                self.round_trip = None
                failures += 1
                _log.warning(
                    "%s did not answer the liveness probe (%d/%d): %s",
                    server.name,
                    failures,
                    policy.liveness_failures,
                    exc,
                )
            else:
                self.round_trip = time.monotonic() - sent
                failures = 0
                continue
            if failures >= policy.liveness_failures and handle.is_alive() and not server.paused:
                reason = f"hung: no answer to {failures} liveness probes in a row"
                server.deps.bus.publish(
                    ServerHung(server_id=server.id, server=server.name, reason=reason)
                )
                self._task = None  # the restart closes the link; do not cancel ourselves
                server.spawn_task(self._restart_hung(reason), "hang-restart")
                return

    async def _restart_hung(self, reason: str) -> None:
        try:
            await self._server.restart(reason=reason)
        except StartRefused as exc:
            _log.warning("restart of hung %s refused: %s", self._server.name, exc)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        link, self.link = self.link, None
        self.round_trip = None
        if link is not None:
            try:
                await link.close()
            except Exception as exc:  # closing must never block a stop
                _log.debug("closing the link of %s failed: %s", self._server.name, exc)
