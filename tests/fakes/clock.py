"""A wall clock that moves only when a test says so, for services that take `clock`/`sleep`."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

__all__ = ["FakeClock"]


class FakeClock:
    """`clock()` is the current fake time; `sleep()` wakes when `set()` moves time past it."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        entry = (self.now + timedelta(seconds=seconds), asyncio.get_running_loop().create_future())
        self._sleepers.append(entry)
        try:
            await entry[1]
        finally:
            self._sleepers.remove(entry)

    def set(self, when: datetime) -> None:
        self.now = when
        for deadline, future in self._sleepers:
            if deadline <= when and not future.done():
                future.set_result(None)
