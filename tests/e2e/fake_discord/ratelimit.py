"""Rate limits: a per-channel message-create bucket and random 429s.

A 429 carries what Discord (behind Cloudflare) sends: `retry_after` in the JSON body,
`X-RateLimit-*` and `Retry-After` headers, and a `Via` header. discord.py retries a
429 only when `Via` is present; `send_via=False` shows the other path.

With `announce=True` successful creates carry the bucket headers too, so discord.py
waits before the limit by itself; with `announce=False` it learns only from the 429
(which is how the retry path gets exercised).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from .clock import Clock
from .records import RequestRecord

# Requests arriving this close before the window's reset count as after it: asyncio may
# wake a sleeper up to a clock tick early, and Discord itself rounds to milliseconds.
RESET_TOLERANCE = 0.005


@dataclass
class LimitRule:
    limit: int
    per: float
    announce: bool = True


@dataclass
class Window:
    started: float
    reset_at: float
    count: int = 0
    saw_429: bool = False


@dataclass(frozen=True)
class LimitedHit:
    """A message-create that arrived while its channel's bucket was exhausted."""

    channel_id: int
    arrived_at: float
    reset_at: float
    retry_after: float
    after_429: bool  # the client had already been told (a 429) in this window
    request: RequestRecord


@dataclass(frozen=True)
class Decision:
    allowed: bool
    headers: dict[str, str]
    retry_after: float = 0.0


@dataclass
class Chaos:
    rate: float
    retry_after: float
    rng: random.Random
    match: Callable[[str, str], bool]


class RateLimits:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._rules: dict[int | None, LimitRule] = {}
        self._windows: dict[int, Window] = {}
        self.hits: list[LimitedHit] = []
        self.send_via = True
        self.chaos: Chaos | None = None
        # Requests answered 429 by `random_429` (kept after it is switched off).
        self.chaos_hits: list[RequestRecord] = []

    # ----- configuration ----------------------------------------------------------------

    def limit_channel_messages(
        self, channel_id: int | None, *, limit: int = 5, per: float = 5.0, announce: bool = True
    ) -> None:
        """Limit POST /channels/{id}/messages; `channel_id=None` sets the default for all."""
        if limit < 1 or per <= 0:
            raise ValueError("limit must be >= 1 and per > 0")
        self._rules[channel_id] = LimitRule(limit, per, announce)
        if channel_id is None:
            self._windows.clear()
        else:
            self._windows.pop(channel_id, None)

    def random_429(
        self,
        rate: float,
        *,
        retry_after: float = 0.05,
        seed: int = 0,
        match: Callable[[str, str], bool] | None = None,
    ) -> None:
        """Answer a fraction of API requests with 429 (before routing); rate=0 turns it off.

        `match(method, path)` picks the requests eligible; the default spares interaction
        callbacks (whose 3-second deadline a retry could miss) and login.
        """
        if rate <= 0:
            self.chaos = None
            return
        self.chaos = Chaos(rate, retry_after, random.Random(seed), match or _default_chaos_match)

    # ----- decisions --------------------------------------------------------------------

    def roll_chaos(self, method: str, path: str, record: RequestRecord) -> float | None:
        chaos = self.chaos
        if chaos is None or not chaos.match(method, path):
            return None
        if chaos.rng.random() >= chaos.rate:
            return None
        self.chaos_hits.append(record)
        return chaos.retry_after

    def check_message_create(self, channel_id: int, record: RequestRecord) -> Decision:
        rule = self._rules.get(channel_id) or self._rules.get(None)
        if rule is None:
            return Decision(True, {})
        now = self._clock.now()
        window = self._windows.get(channel_id)
        if window is None or now >= window.reset_at - RESET_TOLERANCE:
            window = Window(started=now, reset_at=now + rule.per)
            self._windows[channel_id] = window
        bucket = f"fake-channel-messages-{rule.limit}-{rule.per:g}"
        if window.count >= rule.limit:
            retry_after = _ceil_ms(window.reset_at - now)
            self.hits.append(
                LimitedHit(channel_id, now, window.reset_at, retry_after, window.saw_429, record)
            )
            window.saw_429 = True
            return Decision(False, self.headers_for_429(rule, retry_after, bucket), retry_after)
        window.count += 1
        headers: dict[str, str] = {}
        if rule.announce:
            reset_after = _ceil_ms(window.reset_at - now)
            headers = {
                "X-RateLimit-Limit": str(rule.limit),
                "X-RateLimit-Remaining": str(rule.limit - window.count),
                "X-RateLimit-Reset": f"{self._clock.wall() + reset_after:.3f}",
                "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                "X-RateLimit-Bucket": bucket,
            }
        return Decision(True, headers)

    def headers_for_429(
        self, rule: LimitRule | None, retry_after: float, bucket: str
    ) -> dict[str, str]:
        headers = {
            "Retry-After": str(math.ceil(retry_after)),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
            "X-RateLimit-Reset": f"{self._clock.wall() + retry_after:.3f}",
            "X-RateLimit-Bucket": bucket,
            "X-RateLimit-Scope": "user",
        }
        if rule is not None:
            headers["X-RateLimit-Limit"] = str(rule.limit)
        if self.send_via:
            headers["Via"] = "1.1 google"
        return headers

    # ----- queries for tests ------------------------------------------------------------

    def limited_hits(self, channel_id: int | None = None) -> list[LimitedHit]:
        return [h for h in self.hits if channel_id is None or h.channel_id == channel_id]

    def violations(self, channel_id: int | None = None) -> list[LimitedHit]:
        """Requests sent into a window after a 429 had already said to wait: client bugs."""
        return [h for h in self.limited_hits(channel_id) if h.after_429]


def _ceil_ms(seconds: float) -> float:
    return max(0.001, math.ceil(seconds * 1000) / 1000)


def _default_chaos_match(method: str, path: str) -> bool:
    return not path.endswith("/callback") and not path.endswith("/users/@me")
