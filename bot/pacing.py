"""Request pacing for Discord: a per-channel window and the bot-wide budget.

Why it exists apart from the outbox: how many requests may go out, and when, is a small
clock-driven rule (at most `limit` per `per` seconds, plus waiting out a 429's window) that
can be tested with a fake clock and no Discord at all. The outbox asks a `ChannelPacer`
before every request to its channel and the one `GlobalPacer` every outbox shares.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

__all__ = ["ChannelPacer", "Clock", "GlobalPacer"]

Clock = Callable[[], float]
"""Seconds on a monotonic clock (`time.monotonic` unless a test passes its own)."""


class ChannelPacer:
    """At most `limit` requests per `per` seconds, counted from each response (conservative:
    a response comes after the request arrived), and nothing before a 429's window ends."""

    def __init__(
        self, limit: int = 5, per: float = 5.0, margin: float = 0.05, clock: Clock = time.monotonic
    ) -> None:
        self.limit = limit
        self.per = per
        self.margin = margin
        self._clock = clock
        self._stamps: deque[float] = deque()
        self.blocked_until = 0.0

    def delay(self) -> float:
        """Seconds to wait before the next request may go (0.0: now)."""
        now = self._clock()
        window = self.per + self.margin
        while self._stamps and now - self._stamps[0] >= window:
            self._stamps.popleft()
        wait = self.blocked_until - now
        if len(self._stamps) >= self.limit:
            wait = max(wait, self._stamps[-self.limit] + window - now)
        return max(0.0, wait)

    def note(self) -> None:
        """Count a request whose response just came back."""
        self._stamps.append(self._clock())

    def block(self, seconds: float) -> None:
        """Hold every request for `seconds` (a 429's window, a backoff), plus the margin."""
        self.blocked_until = max(self.blocked_until, self._clock() + seconds + self.margin)


class GlobalPacer:
    """The bot-wide request budget (Discord allows 50/s; keep a margin for interactions)."""

    def __init__(self, rate: int = 40, per: float = 1.0, clock: Clock = time.monotonic) -> None:
        self._pacer = ChannelPacer(rate, per, 0.0, clock)

    async def acquire(self) -> None:
        """Wait for room in the budget, then take one request's share of it."""
        wait = self._pacer.delay()
        while wait > 0:
            await asyncio.sleep(wait)
            wait = self._pacer.delay()
        self._pacer.note()
