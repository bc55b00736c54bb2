"""Long work shows its steps: a deferred reply edited as the server moves through states."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

import discord

from core.events import EventBus, ServerStateChanged

__all__ = ["follow_states"]

_log = logging.getLogger(__name__)

T = TypeVar("T")

_ICONS = {
    "starting": "⏳ starting…",
    "running": "✅ running",
    "stopping": "⏳ stopping…",
    "stopped": "⏹️ stopped",
    "crashed": "💥 crashed",
    "failed": "❌ failed",
}


async def follow_states(
    interaction: discord.Interaction[Any],
    bus: EventBus,
    server_id: int,
    work: Awaitable[T],
    *,
    title: str,
) -> T:
    """Run `work`, editing the (deferred) reply with each state the server passes through."""
    steps: list[str] = []
    with bus.subscribe(ServerStateChanged) as changes:
        task: asyncio.Future[T] = asyncio.ensure_future(work)
        while not task.done():
            getter: asyncio.Future[Any] = asyncio.ensure_future(changes.get())
            waiting: set[asyncio.Future[Any]] = {task, getter}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await getter
                break
            event = getter.result()
            if not isinstance(event, ServerStateChanged) or event.server_id != server_id:
                continue
            steps.append(_ICONS.get(event.new.value, event.new.value))
            try:
                await interaction.edit_original_response(
                    content=f"**{title}**: " + " → ".join(steps)
                )
            except discord.HTTPException as exc:  # progress is a courtesy; the work goes on
                _log.debug("progress edit failed: %s", exc)
        return await task
