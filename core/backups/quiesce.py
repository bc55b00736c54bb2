"""A consistent copy of a running Minecraft world: saving paused around the copy.

`save-off` stops the game writing its world, `save-all flush` writes everything it holds
and waits for the disk, and `save-on` lets it write again. The commands go through the
server's game link (RCON or console), never a socket of our own. `save-on` is sent however
the copy ends, unless saving was already off before (an admin's choice, left as it was).

Over the console a command's reply is whatever the game logs within a short quiet time,
and a big world takes longer than that to flush, so "Saved the game" is also awaited in
the server's log lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from core.errors import LanguardError
from core.events import EventBus, LogLines, Subscription
from core.games.base import GameLink

__all__ = ["SAVED", "saving_paused"]

_log = logging.getLogger(__name__)

SAVED = "Saved the game"
ALREADY_OFF = "Saving is already turned off"


async def _wait_saved(lines: Subscription, server_id: int, deadline: float) -> bool:
    while (left := deadline - time.monotonic()) > 0:
        try:
            event = await lines.get(timeout=left)
        except (TimeoutError, StopAsyncIteration):
            return False
        if (
            isinstance(event, LogLines)
            and event.server_id == server_id
            and any(SAVED in line.text for line in event.lines)
        ):
            return True
    return False


@contextlib.asynccontextmanager
async def saving_paused(
    link: GameLink, bus: EventBus, server_id: int, server: str, timeout: float = 120.0
) -> AsyncIterator[None]:
    """Inside the block the game neither writes nor holds unsaved world data."""
    lines = bus.subscribe(LogLines)
    resume = True
    try:
        try:
            reply = await link.command("save-off")
            resume = ALREADY_OFF not in reply
            deadline = time.monotonic() + timeout
            reply = await link.command("save-all flush")
            if SAVED not in reply and not await _wait_saved(lines, server_id, deadline):
                raise LanguardError(
                    "`{server}` did not confirm `save-all flush` within {timeout:g} s; "
                    "the backup was not taken",
                    server=server,
                    timeout=timeout,
                )
        finally:
            lines.close()
        yield
    finally:
        if resume:
            await _resume(link, server)


async def _resume(link: GameLink, server: str) -> None:
    for attempt in range(3):
        try:
            await link.command("save-on")
            return
        except (LanguardError, OSError, TimeoutError) as exc:
            _log.warning("%s: save-on failed (try %d): %s", server, attempt + 1, exc)
            await asyncio.sleep(0.5 * (attempt + 1))
    _log.error("%s: saving could not be turned back on; run `save-on` in its console", server)
