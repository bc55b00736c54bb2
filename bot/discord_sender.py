"""One Discord channel's REST calls for its outbox, through discord.py, with discord.py's
errors mapped to the outbox's: what to wait for, retry, or give up on.

Apart from the channel hub (`bot.channels`) because this is the only code that turns an
outbox's message into a request, and it needs nothing of the bus or the bindings.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Awaitable
from typing import Any, TypeVar

import aiohttp
import discord

from bot.outbox_plan import OutMessage
from bot.outbox_types import (
    ChannelUnavailable,
    FileTooLarge,
    MessageGone,
    Rejected,
    RetryAfter,
    Transient,
)

__all__ = [
    "CLOSED_TO_US",
    "REQUEST_TOO_LARGE",
    "UNKNOWN_CHANNEL",
    "UNKNOWN_MESSAGE",
    "DiscordSender",
]

T = TypeVar("T")
UNKNOWN_MESSAGE = 10008
UNKNOWN_CHANNEL = 10003
CLOSED_TO_US = frozenset({0, 50001, 50013})
"""403 codes that close a channel to the bot: Missing Access, Missing Permissions (0: none)."""
REQUEST_TOO_LARGE = 40005


def _retry_after(exc: discord.HTTPException) -> float:
    headers = getattr(exc.response, "headers", None) or {}
    for name in ("X-RateLimit-Reset-After", "Retry-After"):
        with contextlib.suppress(TypeError, ValueError):
            if headers.get(name) is not None:
                return max(0.0, float(headers[name]))
    return 1.0


async def _mapped(call: Awaitable[T]) -> T:
    """discord.py's errors as the outbox's: what to wait for, retry, or give up on."""
    try:
        return await call
    except discord.RateLimited as exc:
        raise RetryAfter(exc.retry_after) from exc
    except discord.NotFound as exc:
        if exc.code == UNKNOWN_MESSAGE:
            raise MessageGone(str(exc)) from exc
        raise ChannelUnavailable(str(exc), exc.code) from exc
    except discord.Forbidden as exc:
        if exc.code not in CLOSED_TO_US:  # e.g. 50005: about this message, not the channel
            raise Rejected(str(exc)) from exc
        raise ChannelUnavailable(str(exc), exc.code) from exc
    except discord.HTTPException as exc:
        if exc.status == 429:
            raise RetryAfter(_retry_after(exc)) from exc
        if exc.status == 413 or exc.code == REQUEST_TOO_LARGE:
            raise FileTooLarge(str(exc)) from exc
        if exc.status >= 500:
            raise Transient(str(exc)) from exc
        raise Rejected(str(exc)) from exc
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise Transient(f"{type(exc).__name__}: {exc}") from exc


def _mentions(message: OutMessage) -> discord.AllowedMentions:
    if message.mention_role:
        return discord.AllowedMentions(
            everyone=False, users=False, roles=[discord.Object(message.mention_role)]
        )
    return discord.AllowedMentions.none()


class DiscordSender:
    """One channel's REST calls through discord.py (no cache needed: a partial channel)."""

    def __init__(self, client: discord.Client, channel_id: int) -> None:
        self._client = client
        self.channel_id = channel_id

    def _channel(self) -> discord.PartialMessageable:
        return self._client.get_partial_messageable(self.channel_id)

    async def send(self, message: OutMessage) -> int:
        kwargs: dict[str, Any] = {"allowed_mentions": _mentions(message)}
        if message.content is not None:
            kwargs["content"] = message.content
        if message.embed is not None:
            kwargs["embed"] = message.embed
        if message.file is not None:
            kwargs["file"] = discord.File(io.BytesIO(message.file.data), message.file.filename)
        if message.view is not None:
            kwargs["view"] = message.view
        sent = await _mapped(self._channel().send(**kwargs))
        return sent.id

    async def edit(self, message_id: int, message: OutMessage) -> None:
        partial = self._channel().get_partial_message(message_id)
        extra: dict[str, Any] = {} if message.view is None else {"view": message.view}
        await _mapped(
            partial.edit(
                content=message.content,
                embed=message.embed,
                allowed_mentions=_mentions(message),
                **extra,
            )
        )

    async def delete(self, message_id: int) -> None:
        await _mapped(self._channel().get_partial_message(message_id).delete())
