"""The outbox's vocabulary: what a sender raises, the sender itself, streams, requests and
the configuration.

Kept apart from `bot.outbox` (the worker) so the line buffers (`bot.outbox_buffer`), the
unwritable-channel handling (`bot.outbox_unwritable`) and the channel hub can share these
types without importing the worker; import them from here.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from bot.outbox_plan import OutMessage

__all__ = [
    "ChannelUnavailable",
    "Delivered",
    "FileTooLarge",
    "MessageGone",
    "OutboxConfig",
    "Rejected",
    "Request",
    "RetryAfter",
    "Sender",
    "Stream",
    "Transient",
    "Trouble",
]

Delivered = Callable[[str, int], Awaitable[None]]
"""`(tag, end)`: every line up to byte offset `end` of the file `tag` is on Discord."""


# -- what a sender raises ------------------------------------------------------------------


class RetryAfter(Exception):
    """Rate limited: nothing may go to the channel for `after` seconds."""

    def __init__(self, after: float) -> None:
        super().__init__(f"retry after {after:.3f} s")
        self.after = after


class Transient(Exception):
    """A server error or network failure: retry with backoff."""


class ChannelUnavailable(Exception):
    """The channel is gone or closed to us (403, unknown channel): stop, retry much later."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        """Discord's error code: 50001 Missing Access, 50013 Missing Permissions, 10003..."""


class MessageGone(Exception):
    """The message to edit or delete no longer exists."""


class Rejected(Exception):
    """Discord refused the payload itself (400): retrying the same thing cannot help."""


class FileTooLarge(Rejected):
    """The attachment was over the upload cap: send smaller files."""


# -- the sender ----------------------------------------------------------------------------


class Sender(Protocol):
    """One channel's REST calls; failures are raised as the exceptions above."""

    async def send(self, message: OutMessage) -> int: ...

    async def edit(self, message_id: int, message: OutMessage) -> None: ...

    async def delete(self, message_id: int) -> None: ...


@dataclass(eq=False)
class Trouble:
    """One episode of a channel the bot cannot post to, and what it cost."""

    reason: str
    code: int | None
    since: float
    dropped: dict[str, int] = field(default_factory=dict)
    """Lines dropped per stream noun ("lines", "messages") while it lasted."""
    dropped_requests: int = 0

    @property
    def dropped_lines(self) -> int:
        return sum(self.dropped.values())


# -- streams and their buffers -------------------------------------------------------------


@dataclass(eq=False)
class Stream:
    """One flow of lines into a channel (a server's log source, a server's chat)."""

    key: str
    title: str
    """Shown before the lines when a channel carries several streams (already escaped)."""
    filename: str
    """Base name of the `.log` file a flood goes out as (safe characters only)."""
    code: bool = True
    """Lines go in a code block (logs) or as plain, already escaped text (chat)."""
    noun: str = "lines"
    """What the lines are: "lines", "messages" or "entries" (each has its wording)."""
    on_delivered: Delivered | None = None
    label: Callable[[str | None], str] | None = None
    """The title in a reader's language (a locale code), for a title that holds words and
    not only names; None when `title` is all names."""

    def heading(self, locale: str | None) -> str:
        """The title shown before the lines, in the channel's language."""
        return self.title if self.label is None else self.label(locale)


@dataclass(eq=False)
class Request:
    """A send, edit or delete waiting its turn; its futures hear the message id."""

    kind: Literal["send", "edit", "delete"]
    message: OutMessage
    message_id: int = 0
    futures: list[asyncio.Future[int]] = field(default_factory=list)


@dataclass(frozen=True)
class OutboxConfig:
    max_chars: int = 2000
    rate_limit: int = 5
    rate_per: float = 5.0
    rate_margin: float = 0.05
    linger: float = 1.0
    """How long the first pending line waits for company before it goes out."""
    mark_linger: float = 5.0
    """How long a cursor move with no line to show (filtered out) waits to be saved."""
    flood_seconds: float = 3.0
    """A backlog larger than this many seconds of messages goes out as a file."""
    max_file_bytes: int = 8 * 1024 * 1024
    retry_base: float = 1.0
    retry_cap: float = 60.0
    unwritable_retry: float = 600.0
    """How long a channel that refused us (403, unknown channel) rests before one more try."""
    unwritable_max_lines: int = 10_000
    """Lines kept per stream while the channel is unwritable (older ones are dropped)."""
    unwritable_max_requests: int = 20
    """Requests (alerts, status edits) kept while the channel is unwritable."""

    @property
    def flood_chars(self) -> int:
        messages = max(1, math.ceil(self.flood_seconds * self.rate_limit / self.rate_per))
        return messages * self.max_chars
