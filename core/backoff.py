"""One backoff helper for every retry loop: exponential, capped, with jitter."""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Delays base, 2*base, 4*base ... up to `cap`, each scaled by a jitter in [1-j, 1]."""

    def __init__(
        self,
        base: float = 1.0,
        cap: float = 60.0,
        jitter: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        if base <= 0 or cap < base or not 0 <= jitter < 1:
            raise ValueError("need 0 < base <= cap and 0 <= jitter < 1")
        self.base = base
        self.cap = cap
        self.jitter = jitter
        self._rng = rng or random.Random()
        self.attempt = 0

    def peek(self) -> float:
        """The delay the next `next()` would give, without jitter."""
        return float(min(self.cap, self.base * (2.0 ** min(self.attempt, 62))))

    def next(self) -> float:
        delay = self.peek()
        self.attempt += 1
        return delay * (1 - self.jitter * self._rng.random())

    def reset(self) -> None:
        self.attempt = 0
