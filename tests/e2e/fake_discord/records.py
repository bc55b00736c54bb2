"""What the fake saw: requests, interaction callbacks, command syncs. Tests assert on these."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .bodies import Upload

T = TypeVar("T")


@dataclass(eq=False)
class RequestRecord:
    """One HTTP request: when it arrived and how the fake answered."""

    method: str
    path: str
    query: dict[str, str]
    arrived_at: float
    payload: Any = None
    uploads: dict[int, Upload] = field(default_factory=dict)
    route: str = ""
    status: int = 0
    error_code: int | None = None
    rate_limited: bool = False
    chaos: bool = False
    channel_id: int | None = None


@dataclass(eq=False)
class CallbackRecord:
    """One POST to /interactions/{id}/{token}/callback, accepted or not."""

    interaction_id: int
    type: int
    data: dict[str, Any]
    uploads: dict[int, Upload]
    arrived_at: float
    age: float
    status: int = 0
    error_code: int | None = None
    message_id: int | None = None

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300

    @property
    def ephemeral(self) -> bool:
        return bool(int(self.data.get("flags") or 0) & 64)


@dataclass(frozen=True)
class SyncRecord:
    """A bulk overwrite of application commands (what `tree.sync()` sends)."""

    guild_id: int | None
    names: tuple[str, ...]
    at: float


@dataclass(frozen=True)
class GatewayConnection:
    """A websocket connection: its query string and what the client sent."""

    query: dict[str, str]
    at: float


class Notifier:
    """Wakes waiters whenever the fake's records change; waits are always bounded."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], T | None], timeout: float, what: str) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"fake discord: no {what} within {timeout:.1f}s")
            event = self._event
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                continue
