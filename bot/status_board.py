"""Live status embeds: one persistent message per (server, channel), edited in place.

The message id is stored, so a restarted bot edits the same message; if someone deleted
it, the edit answers 404 and a new one is posted (and stored). Edits go through the
channel's outbox like everything else, are made when something shown changed (at once
for state changes, at the interval for players and CPU/RAM), and never when nothing did:
uptime is shown as a Discord timestamp the client counts up by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import discord

from bot.embeds import STATE_COLOURS, clean_game_text, format_bytes
from bot.outbox import MessageGone, Outbox
from bot.outbox_plan import OutMessage
from core.errors import NotFound
from core.events import Event
from core.services.servers import ServerService
from core.supervisor.states import ServerState
from core.supervisor.supervisor import Supervisor
from data.repositories.bindings import BindingRepository

__all__ = ["StatusBoard", "StatusView", "status_embed"]

_log = logging.getLogger(__name__)

MAX_NAMES = 40


@dataclass(frozen=True, slots=True)
class StatusView:
    """What a status embed shows; equal views mean no edit."""

    name: str
    game: str
    state: ServerState
    reason: str
    paused: bool
    mission: str | None
    players_online: int | None
    players_max: int | None
    player_names: tuple[str, ...]
    up_since: int | None
    address: str
    cpu_percent: int | None
    rss_bytes: int | None


def status_embed(view: StatusView, updated: float) -> discord.Embed:
    colour = STATE_COLOURS.get(view.state, discord.Colour.light_grey())
    name = clean_game_text(view.name, 100)
    embed = discord.Embed(title=f"{name}", colour=colour)
    state = f"**{view.state.value}**"
    if view.paused:
        state += " · maintenance"
    if view.state in (ServerState.CRASHED, ServerState.FAILED) and view.reason:
        state += f"\n{clean_game_text(view.reason, 300)}"
    embed.description = state
    if view.mission:
        embed.add_field(name="Mission", value=clean_game_text(view.mission, 200))
    if view.state is ServerState.RUNNING:
        online = "?" if view.players_online is None else str(view.players_online)
        players = f"{online}/{view.players_max}" if view.players_max else online
        if view.player_names:
            names = ", ".join(clean_game_text(n, 40) for n in view.player_names[:MAX_NAMES])
            more = len(view.player_names) - MAX_NAMES
            players += f"\n{names}" + (f" and {more} more" if more > 0 else "")
        embed.add_field(name="Players", value=players[:1024], inline=False)
    if view.up_since is not None:
        embed.add_field(name="Up since", value=f"<t:{view.up_since}:R>")
    embed.add_field(name="Address", value=f"`{view.address}`")
    if view.cpu_percent is not None:
        embed.add_field(
            name="CPU / RAM", value=f"{view.cpu_percent}% · {format_bytes(view.rss_bytes)}"
        )
    embed.set_footer(text=f"{view.game} · last change")
    embed.timestamp = datetime.fromtimestamp(updated, UTC)
    return embed


@dataclass(eq=False)
class _Board:
    server_id: int
    channel_id: int
    message_id: int | None
    view: StatusView | None = None
    changed_at: float = 0.0


class StatusBoard:
    def __init__(
        self,
        supervisor: Supervisor,
        servers: ServerService,
        repository: BindingRepository,
        outbox_for: Callable[[int], Outbox],
        *,
        interval: float = 60.0,
    ) -> None:
        self._sup = supervisor
        self._servers = servers
        self._repo = repository
        self._outbox_for = outbox_for
        self.interval = interval
        self._boards: dict[tuple[int, int], _Board] = {}
        self._dirty: set[int] = set()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    async def load(self) -> None:
        """The stored messages; the first refresh edits each of them (or recreates it)."""
        for stored in await self._repo.status_messages():
            key = (stored.server_id, stored.channel_id)
            self._boards.setdefault(
                key, _Board(stored.server_id, stored.channel_id, stored.message_id)
            )
            self._dirty.add(stored.server_id)
        self._wake.set()

    async def sync(self) -> None:
        """Drop boards whose stored row is gone (their binding moved or was removed)."""
        stored = {(s.server_id, s.channel_id) for s in await self._repo.status_messages()}
        for key, board in list(self._boards.items()):
            if key not in stored and board.message_id is not None:
                del self._boards[key]

    def boards(self) -> list[tuple[int, int, int | None]]:
        return [(b.server_id, b.channel_id, b.message_id) for b in self._boards.values()]

    # -- placing -------------------------------------------------------------------------

    async def ensure(self, server_id: int, channel_id: int) -> int:
        """The status message of this server in this channel, posted if there is none."""
        board = self._boards.get((server_id, channel_id))
        if board is not None and board.message_id is not None:
            return board.message_id
        return await self.post(server_id, channel_id)

    async def post(self, server_id: int, channel_id: int) -> int:
        """Post a fresh status message (the previous one in that channel is deleted)."""
        key = (server_id, channel_id)
        old = self._boards.get(key)
        board = _Board(server_id, channel_id, None)
        self._boards[key] = board
        outbox = self._outbox_for(channel_id)
        if old is not None and old.message_id is not None:
            outbox.delete(old.message_id).add_done_callback(_quiet)
        return await self._create(board, outbox)

    async def _create(self, board: _Board, outbox: Outbox) -> int:
        view = await self.snapshot(board.server_id)
        board.view, board.changed_at = view, time.time()
        message_id = await outbox.post(OutMessage(embed=status_embed(view, board.changed_at)))
        board.message_id = message_id
        await self._repo.set_status_message(board.server_id, board.channel_id, message_id)
        return message_id

    def forget(self, server_id: int, channel_id: int) -> None:
        self._boards.pop((server_id, channel_id), None)

    # -- updating ------------------------------------------------------------------------

    def touch(self, event: Event) -> None:
        """Something shown changed (state, players): refresh this server's boards soon."""
        self._dirty.add(event.server_id)
        self._wake.set()

    async def run(self) -> None:
        next_full = time.monotonic()
        while True:
            now = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_full - now))
            self._wake.clear()
            full = time.monotonic() >= next_full
            if full:
                next_full = time.monotonic() + self.interval
            dirty, self._dirty = self._dirty, set()
            await self.refresh_all(None if full else dirty)

    async def refresh_all(self, servers: set[int] | None = None) -> None:
        """Refresh every board (or those of `servers`); unchanged ones are not edited."""
        for board in list(self._boards.values()):
            if servers is None or board.server_id in servers:
                try:
                    await self.refresh(board)
                except Exception:  # one broken board must not stop the others
                    _log.exception("refreshing the status of server %d failed", board.server_id)

    async def refresh(self, board: _Board) -> None:
        if board.message_id is None:
            return  # being posted
        try:
            view = await self.snapshot(board.server_id)
        except NotFound:
            self.forget(board.server_id, board.channel_id)
            return
        if view == board.view:
            return
        board.view, board.changed_at = view, time.time()
        future = self._outbox_for(board.channel_id).edit(
            board.message_id, OutMessage(embed=status_embed(view, board.changed_at))
        )
        future.add_done_callback(lambda f: self._edited(board, f))

    def _edited(self, board: _Board, future: asyncio.Future[int]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if (
            isinstance(error, MessageGone)
            and self._boards.get((board.server_id, board.channel_id)) is board
        ):
            _log.info("status message of server %d was deleted; posting it again", board.server_id)
            board.message_id = None
            task = asyncio.create_task(self._create(board, self._outbox_for(board.channel_id)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(_quiet)
        elif error is not None:
            board.view = None  # try again at the next refresh
            _log.warning("editing the status of server %d failed: %s", board.server_id, error)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- what is shown -------------------------------------------------------------------

    async def snapshot(self, server_id: int) -> StatusView:
        server = self._sup.get(server_id)
        status = await self._servers.status(server.name)
        running = status.state is ServerState.RUNNING
        handle = server.handle
        rss = status.rss_bytes
        return StatusView(
            name=status.name,
            game=status.game,
            state=status.state,
            reason=status.state_reason,
            paused=status.paused,
            mission=status.mission,
            players_online=status.players_online,
            players_max=status.players_max,
            player_names=tuple(sorted(status.player_names)),
            up_since=int(handle.started_at) if running and handle is not None else None,
            address=status.address,
            cpu_percent=None if status.cpu_percent is None else round(status.cpu_percent),
            rss_bytes=None if rss is None else round(rss / 2**20) * 2**20,
        )


def _quiet(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        _log.warning("a status message request failed: %s", future.exception())
