"""The RuntimeControl a game profile gets during readiness and graceful stop."""

from __future__ import annotations

import asyncio
import re

from core.events import LogLines, Subscription
from core.games.base import GameLink
from core.supervisor.runtime_api import RuntimeHandle

__all__ = ["ProcessControl"]


class ProcessControl:
    """A profile's narrow view of one running unit: its pid, console and log lines."""

    def __init__(
        self,
        server_id: int,
        handle: RuntimeHandle,
        lines: Subscription | None,
        link: GameLink | None = None,
    ) -> None:
        self._server_id = server_id
        self._handle = handle
        self._lines = lines
        self.link = link

    @property
    def pid(self) -> int | None:
        return self._handle.pid

    def is_alive(self) -> bool:
        return self._handle.is_alive()

    def write_console(self, line: str) -> None:
        self._handle.write_console(line)

    async def wait_for_line(self, pattern: re.Pattern[str], timeout: float) -> str:
        if self._lines is None:
            raise RuntimeError("no log subscription for readiness")
        async with asyncio.timeout(timeout):
            while True:
                event = await self._lines.get()
                assert isinstance(event, LogLines)
                if event.server_id != self._server_id:
                    continue
                for line in event.lines:
                    if pattern.search(line.text):
                        return line.text
