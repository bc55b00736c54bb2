"""Live status embeds: one persistent message per (server, channel), edited in place.

The message id is stored, so a restarted bot edits the same message; if someone deleted
it, the edit answers 404 and a new one is posted (and stored). Edits go through the
channel's outbox like everything else, are made when something shown changed (at once
for state changes, at the interval for players and CPU/RAM), and never when nothing did:
uptime is shown as a Discord timestamp the client counts up by itself.

Each message carries Start / Stop / Restart buttons (bot.status_buttons); the ones that make
no sense in the shown state are disabled, and they are redrawn with every edit. Everyone in
the channel reads it, so it speaks its guild's language (`locale_for`), not a member's; a
guild that changes language gets the message redrawn at its next refresh.

The "last hour" sparkline comes from `PlayerSamples`, a bounded in-memory ring fed by this
board's own refreshes: nothing stores player counts over time yet (issue 13's chart will), so
after a bot restart the line starts again from empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import discord

from bot.embeds import (
    Lang,
    clean_game_text,
    fold_names,
    format_bytes,
    shown_colour,
    shown_state,
    sparkline,
)
from bot.i18n import tr
from bot.outbox import Outbox
from bot.outbox_plan import OutMessage
from bot.outbox_types import MessageGone
from bot.status_buttons import lifecycle_view
from core.errors import NotFound
from core.events import Event
from core.services.channels import ChannelService
from core.services.servers import ServerService
from core.supervisor.states import ServerState

__all__ = ["PlayerSamples", "StatusBoard", "StatusView", "status_embed", "status_message"]

_log = logging.getLogger(__name__)


def _no_locale(channel_id: int) -> Lang:
    """English everywhere: for a board built without a client to ask."""
    return None


class PlayerSamples:
    """Recent player counts per server: at most `capacity` samples each, none older than
    `window` seconds, shown as the peak of each of `buckets` slices of the window. Slices
    are aligned to the clock, so the line shifts once a slice, not at every refresh."""

    def __init__(
        self,
        *,
        window: float = 3600.0,
        buckets: int = 12,
        capacity: int = 720,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window = window
        self.buckets = buckets
        self.capacity = capacity
        self._clock = clock
        self._samples: dict[int, deque[tuple[float, int]]] = {}

    def add(self, server_id: int, count: int) -> None:
        ring = self._samples.setdefault(server_id, deque(maxlen=self.capacity))
        ring.append((self._clock(), max(0, count)))

    def forget(self, server_id: int) -> None:
        self._samples.pop(server_id, None)

    def line(self, server_id: int) -> tuple[int, ...]:
        """Peak count per slice, from the first slice with a sample to the current one; a
        slice without samples repeats the one before (nothing changed, nothing was seen)."""
        ring = self._samples.get(server_id)
        now = self._clock()
        while ring and ring[0][0] < now - self.window:
            ring.popleft()
        if not ring:
            return ()
        width = self.window / self.buckets
        current = int(now // width)
        peaks: dict[int, int] = {}
        for at, count in ring:
            index = int(at // width)
            peaks[index] = max(peaks.get(index, 0), count)
        values: list[int] = []
        for index in range(max(min(peaks), current - self.buckets + 1), current + 1):
            values.append(peaks.get(index, values[-1] if values else 0))
        return tuple(values)


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
    activity: tuple[int, ...] = ()
    """Peak player counts over the last hour (PlayerSamples.line)."""
    host_unreachable: bool = False  # shown "unknown (host unreachable)", never running


def status_embed(view: StatusView, updated: float, locale: Lang = None) -> discord.Embed:
    """The embed, in the channel's language: state, address (a code span: one tap copies
    it), mission, players with their escaped names folded to the field limit, uptime as a
    relative timestamp (true without edits), the last hour's player counts, CPU/RAM."""
    colour = shown_colour(view.state, view.host_unreachable)
    embed = discord.Embed(title=clean_game_text(view.name, 100), colour=colour)
    state = f"**{shown_state(locale, view.state, view.host_unreachable)}**"
    if view.paused:
        state += " · " + tr(locale, "maintenance")
    if view.state in (ServerState.CRASHED, ServerState.FAILED) and view.reason:
        state += f"\n{clean_game_text(view.reason, 300)}"
    embed.description = state
    address = f"`{view.address.replace('`', '')}`"[:1024]
    embed.add_field(name=tr(locale, "Address"), value=address)
    if view.mission:
        embed.add_field(name=tr(locale, "Mission / map"), value=clean_game_text(view.mission, 200))
    if view.state is ServerState.RUNNING and not view.host_unreachable:
        online = "?" if view.players_online is None else str(view.players_online)
        players = f"{online}/{view.players_max}" if view.players_max else online
        if view.player_names:
            room = 1024 - len(players) - 1
            players += "\n" + fold_names(view.player_names, room, locale=locale)
        embed.add_field(name=tr(locale, "Players"), value=players, inline=False)
    if view.up_since is not None:
        since = datetime.fromtimestamp(view.up_since, UTC)
        embed.add_field(name=tr(locale, "Up since"), value=discord.utils.format_dt(since, "R"))
    if view.activity:
        line = sparkline(view.activity, view.players_max)
        peak = tr(locale, "{line} (peak {peak})", line=line, peak=max(view.activity))
        embed.add_field(name=tr(locale, "Last hour"), value=peak)
    if view.cpu_percent is not None:
        embed.add_field(
            name=tr(locale, "CPU / RAM"),
            value=f"{view.cpu_percent}% · {format_bytes(view.rss_bytes)}",
        )
    embed.set_footer(text=tr(locale, "{game} · last change", game=view.game))
    embed.timestamp = datetime.fromtimestamp(updated, UTC)
    return embed


def status_message(
    server_id: int, view: StatusView, updated: float, locale: Lang = None
) -> OutMessage:
    """The embed with the server's Start / Stop / Restart buttons for its current state."""
    return OutMessage(
        embed=status_embed(view, updated, locale),
        view=lifecycle_view(server_id, view.state, locale),
    )


@dataclass(eq=False)
class _Board:
    server_id: int
    channel_id: int
    message_id: int | None
    view: StatusView | None = None
    changed_at: float = 0.0
    locale: Lang = None
    """The language the message was last drawn in (a guild may change it)."""


class StatusBoard:
    def __init__(
        self,
        servers: ServerService,
        repository: ChannelService,
        outbox_for: Callable[[int], Outbox],
        *,
        interval: float = 60.0,
        locale_for: Callable[[int], Lang] = _no_locale,
    ) -> None:
        """`locale_for(channel_id)`: the language of a channel's posts (its guild's)."""
        self._servers = servers
        self._locale_for = locale_for
        self._repo = repository
        self._outbox_for = outbox_for
        self.interval = interval
        self._boards: dict[tuple[int, int], _Board] = {}
        self.samples = PlayerSamples()
        self._dirty: set[int] = set()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._posting: dict[tuple[int, int], asyncio.Task[int]] = {}
        """Messages being posted, per (server, channel)."""

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
        key = (server_id, channel_id)
        board = self._boards.get(key)
        if board is not None and board.message_id is not None:
            return board.message_id
        pending = self._posting.get(key)
        if pending is not None:  # two rebinds in a row must not post two messages
            return await asyncio.shield(pending)
        return await self.post(server_id, channel_id)

    async def post(self, server_id: int, channel_id: int) -> int:
        """Post a fresh status message (the previous one in that channel is deleted)."""
        key = (server_id, channel_id)
        pending = self._posting.get(key)
        if pending is not None:  # let it land, so it is the one deleted below
            with contextlib.suppress(Exception):
                await asyncio.shield(pending)
        old = self._boards.get(key)
        board = _Board(server_id, channel_id, None)
        self._boards[key] = board
        outbox = self._outbox_for(channel_id)
        if old is not None and old.message_id is not None:
            outbox.delete(old.message_id).add_done_callback(_quiet)
        return await asyncio.shield(self._start_create(board, outbox))

    def _start_create(self, board: _Board, outbox: Outbox) -> asyncio.Task[int]:
        """Post the board's message in a task that is known while it runs (see `ensure`)."""
        key = (board.server_id, board.channel_id)
        task = asyncio.ensure_future(self._create(board, outbox))
        self._posting[key] = task
        self._tasks.add(task)

        def done(finished: asyncio.Future[int]) -> None:
            self._tasks.discard(task)
            if self._posting.get(key) is task:
                del self._posting[key]

        task.add_done_callback(done)
        return task

    async def _create(self, board: _Board, outbox: Outbox) -> int:
        view = await self.snapshot(board.server_id)
        board.view, board.changed_at = view, time.time()
        board.locale = locale = self._locale_for(board.channel_id)
        message = status_message(board.server_id, view, board.changed_at, locale)
        message_id = await outbox.post(message)
        # stored before it is known here: a `sync` meanwhile (a second rebind) drops a board
        # with a message id but no stored row, and this one would then never be edited
        await self._repo.set_status_message(board.server_id, board.channel_id, message_id)
        board.message_id = message_id
        return message_id

    def forget(self, server_id: int, channel_id: int) -> None:
        self._boards.pop((server_id, channel_id), None)
        if not any(b.server_id == server_id for b in self._boards.values()):
            self.samples.forget(server_id)

    # -- updating ------------------------------------------------------------------------

    def touch(self, event: Event) -> None:
        """Something shown changed (state, players, a host: id 0): refresh its boards soon."""
        everyone = {b.server_id for b in self._boards.values()} if not event.server_id else ()
        self._dirty.update(everyone or (event.server_id,))
        self._wake.set()

    async def run(self) -> None:
        next_full = time.monotonic()
        while True:
            now = time.monotonic()
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
            # arrives as the wait completes, and the hub's close would then wait a whole
            # interval for this task
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_full - now)):
                    await self._wake.wait()
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
        locale = self._locale_for(board.channel_id)
        if view == board.view and locale == board.locale:
            return
        board.view, board.changed_at, board.locale = view, time.time(), locale
        future = self._outbox_for(board.channel_id).edit(
            board.message_id, status_message(board.server_id, view, board.changed_at, locale)
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
            task = self._start_create(board, self._outbox_for(board.channel_id))
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
        name = self._servers.ref_by_id(server_id).name
        status = await self._servers.status(name)
        running = status.state is ServerState.RUNNING and not status.host_unreachable
        rss = status.rss_bytes
        if status.state is not ServerState.RUNNING:
            self.samples.add(server_id, 0)
        elif running and status.players_online is not None:
            self.samples.add(server_id, status.players_online)
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
            up_since=int(status.started_at) if running and status.started_at else None,
            address=status.address,
            cpu_percent=None if status.cpu_percent is None else round(status.cpu_percent),
            rss_bytes=None if rss is None else round(rss / 2**20) * 2**20,
            activity=self.samples.line(server_id),
            host_unreachable=status.host_unreachable,
        )


def _quiet(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        _log.warning("a status message request failed: %s", future.exception())
