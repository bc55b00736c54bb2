"""Time and ids for the fake Discord.

The clock is injectable (and can be pushed forward) so tests can exercise the 3-second
interaction deadline and the 15-minute token lifetime without waiting for them.
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime

DISCORD_EPOCH_MS = 1_420_070_400_000


class Clock:
    """Monotonic time for deadlines plus wall time for timestamps, both shiftable."""

    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> float:
        """Seconds on a monotonic scale: what deadlines and rate-limit windows use."""
        return time.monotonic() + self._offset

    def wall(self) -> float:
        """Unix seconds (shifted like `now`): what timestamps and snowflakes use."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Jump forward, e.g. past an interaction token's 15 minutes."""
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        self._offset += seconds

    def iso(self) -> str:
        """ISO-8601 timestamp as Discord writes it."""
        return datetime.fromtimestamp(self.wall(), UTC).isoformat()


class Snowflakes:
    """Generates increasing snowflakes whose timestamp part follows the clock."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._counter = itertools.count(1)
        self._last = 0

    def next(self) -> int:
        ms = int(self._clock.wall() * 1000) - DISCORD_EPOCH_MS
        value = (ms << 22) | (1 << 17) | (next(self._counter) & 0xFFF)
        # Keep ids strictly increasing even within one millisecond.
        self._last = max(value, self._last + 1)
        return self._last
