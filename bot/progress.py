"""Long work shows its steps: a deferred reply edited as the server moves through states.

Also what the lifecycle commands and the status buttons both say (titles, the question
before stopping a server with players on it), so the two read alike in every language.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import discord

from bot.embeds import Lang, state_text
from bot.i18n import tr
from core.events import EventBus, ServerStateChanged
from core.supervisor.states import ServerState

__all__ = ["action_title", "follow_states", "players_question", "step_text"]

_log = logging.getLogger(__name__)

T = TypeVar("T")

_ICONS = {
    ServerState.STARTING: "⏳",
    ServerState.RUNNING: "✅",
    ServerState.STOPPING: "⏳",
    ServerState.STOPPED: "⏹️",
    ServerState.CRASHED: "💥",
    ServerState.FAILED: "❌",
}
_UNDER_WAY = frozenset({ServerState.STARTING, ServerState.STOPPING})


def step_text(locale: Lang, state: ServerState) -> str:
    """One step of the progress line: `⏳ starting…`, `✅ running`."""
    text = f"{_ICONS.get(state, '•')} {state_text(locale, state)}"
    return text + "…" if state in _UNDER_WAY else text


def action_title(locale: Lang, action: str, name: str) -> str:
    """The title of a lifecycle reply: `Starting alpha`."""
    if action == "start":
        return tr(locale, "Starting {name}", name=name)
    if action == "stop":
        return tr(locale, "Stopping {name}", name=name)
    if action == "restart":
        return tr(locale, "Restarting {name}", name=name)
    raise ValueError(f"unknown action {action!r}")


def players_question(locale: Lang, action: str, name: str, online: int) -> str:
    """Asked before a stop or restart would throw players out."""
    if action == "restart":
        return tr(
            locale,
            "**{name}** has {online} player(s) online. Restart it anyway?",
            name=name,
            online=online,
        )
    return tr(
        locale,
        "**{name}** has {online} player(s) online. Stop it anyway?",
        name=name,
        online=online,
    )


async def follow_states(
    interaction: discord.Interaction[Any],
    bus: EventBus,
    server_id: int,
    work: Awaitable[T],
    *,
    title: str,
    show: Callable[[str], Awaitable[None]] | None = None,
) -> T:
    """Run `work`, editing the (deferred) reply with each state the server passes through,
    in the language of whoever asked; `show` edits instead when the reply has its own
    route (a queued start's, which may outlive the interaction's token)."""
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
            steps.append(step_text(interaction.locale, event.new))
            text = f"**{title}**: " + " → ".join(steps)
            try:
                if show is not None:
                    await show(text)
                else:
                    await interaction.edit_original_response(content=text)
            except discord.HTTPException as exc:  # progress is a courtesy; the work goes on
                _log.debug("progress edit failed: %s", exc)
        return await task
