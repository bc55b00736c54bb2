"""Typed events on an in-process bus: the only way information travels up.

The supervisor, tailers and RCon clients publish; the bot (and tests) subscribe. `publish`
never blocks and never drops: every subscription has its own unbounded queue, so a slow
reader costs memory, not lines.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from core.supervisor.states import ServerState

if TYPE_CHECKING:
    from core.logs.lines import LogLine

__all__ = [
    "AuditRecorded",
    "BanChanged",
    "Chat",
    "Event",
    "EventBus",
    "HostReachable",
    "HostUnreachable",
    "LogLines",
    "MaintenanceChanged",
    "PlayerBanned",
    "PlayerJoined",
    "PlayerKicked",
    "PlayerLeft",
    "RconStatus",
    "ServerCrashed",
    "ServerFailed",
    "ServerHung",
    "ServerMetrics",
    "ServerStateChanged",
    "StorageTrouble",
    "Subscription",
]

_log = logging.getLogger(__name__)

E = TypeVar("E", bound="Event")


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every event; `server_id` is 0 for host-wide events."""

    server_id: int
    server: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerStateChanged(Event):
    old: ServerState
    new: ServerState
    reason: str = ""
    expected: bool = True
    """False when the move was not asked for (a crash, a hang)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerCrashed(Event):
    exit_code: int | None
    signal: int | None
    uptime_s: float
    last_lines: tuple[str, ...]
    attempt: int
    max_attempts: int
    restart_in_s: float | None
    """None when no restart follows (auto-restart off, or the loop was given up)."""
    oom_killed: bool = False
    """The kernel killed it for lack of memory (a container's `OOMKilled`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerFailed(Event):
    reason: str
    crashes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerMetrics(Event):
    cpu_percent: float
    rss_bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RconStatus(Event):
    connected: bool
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class MaintenanceChanged(Event):
    """A maintenance window started or ended (alerts are muted while it is active)."""

    active: bool
    until: datetime | None
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerHung(Event):
    """The process is alive but the game stopped answering; a restart follows."""

    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageTrouble(Event):
    """The database could not be written (or can be again, `recovered`).

    The server keeps doing what it does; its row is rewritten once writes work again.
    """

    reason: str
    disk_full: bool = False
    recovered: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class HostUnreachable(Event):
    """A host's engine stopped answering (server_id 0). Its servers are "unknown (host
    unreachable)", never crashed: they may well still run, and are reconciled on return."""

    host: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HostReachable(Event):
    """A host that was unreachable answers again (server_id 0); `down_for_s` is how long
    it was away, as the registry saw it."""

    host: str
    down_for_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayerJoined(Event):
    name: str
    player_key: str = ""
    """The game's handle for the player (BattlEye slot number, Minecraft name)."""
    guid: str | None = None
    ip: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayerLeft(Event):
    name: str
    player_key: str = ""
    guid: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayerKicked(Event):
    name: str
    reason: str
    player_key: str = ""
    guid: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayerBanned(Event):
    name: str
    reason: str
    player_key: str = ""
    guid: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BanChanged(Event):
    """A ban in the bot's database was added, removed or expired (server_id 0: all servers).

    Unlike `PlayerBanned` (what a game reports), this is the bot's own record changing,
    whoever made it: `/bans`, `/players ban`, expiry."""

    action: str
    """"added", "removed" or "expired"."""
    ban_id: int
    kind: str
    value: str
    reason: str
    expires_at: float | None = None
    actor: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecorded(Event):
    """A row was added to the audit log (`server` is empty: the audit knows ids only).

    Lets a front end mirror the audit somewhere (a Discord channel) without polling it;
    `arguments` are already masked, as stored."""

    entry_id: int
    actor_id: int | None
    actor_name: str
    action: str
    arguments: tuple[tuple[str, str], ...]
    result: str
    ok: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Chat(Event):
    channel: str
    """Global, Side, Command... for Arma 3; "chat" for Minecraft."""
    author: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LogLines(Event):
    """A batch of complete lines read from one log file, in file order.

    `start_offset`/`end_offset` are byte offsets in the file named by `file_id`; a consumer
    that keeps its own cursor skips what it has with `after(cursor)`.
    """

    source: str
    file_id: str
    lines: Sequence[LogLine]
    start_offset: int
    end_offset: int

    def after(self, cursor: int) -> Sequence[LogLine]:
        """The lines that end past `cursor` (all of them when the cursor is behind the batch)."""
        if cursor <= self.start_offset:
            return self.lines
        if cursor >= self.end_offset:
            return ()
        return [line for line in self.lines if line.end > cursor]


class Subscription:
    """An async iterator over the events of the chosen types, in publish order."""

    def __init__(self, bus: EventBus, types: tuple[type[Event], ...]) -> None:
        self._bus = bus
        self.types = types
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.closed = False

    def _offer(self, event: Event) -> None:
        if not self.closed and isinstance(event, self.types):
            self._queue.put_nowait(event)

    async def get(self, timeout: float | None = None) -> Event:
        """The next event; TimeoutError after `timeout` s, StopAsyncIteration once closed."""
        item = await asyncio.wait_for(self._queue.get(), timeout)
        if item is None:
            raise StopAsyncIteration
        return item

    def get_nowait(self) -> Event | None:
        try:
            item = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None
        return item

    def pending(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._bus._remove(self)
            self._queue.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        return await self.get()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass
class EventBus:
    """Fan-out of events to subscriptions; publishing is synchronous and cheap."""

    _subscriptions: list[Subscription] = field(default_factory=list)

    def subscribe(self, *types: type[Event]) -> Subscription:
        sub = Subscription(self, types or (Event,))
        self._subscriptions.append(sub)
        return sub

    def publish(self, event: Event) -> None:
        for sub in tuple(self._subscriptions):
            sub._offer(event)

    def _remove(self, sub: Subscription) -> None:
        try:
            self._subscriptions.remove(sub)
        except ValueError:
            _log.debug("subscription already removed")

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    def __repr__(self) -> str:
        return f"<EventBus subscribers={len(self._subscriptions)}>"
