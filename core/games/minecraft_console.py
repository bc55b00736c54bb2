"""The console as a command channel: a command written to the game's stdin, its reply read
back from the console log (the game prints a console command's answer there and nowhere else).

Apart from the link (`core.games.minecraft_link`) because the link reads the console log
anyway, for events; it offers each reply line to the waiter this channel sets, one command at
a time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

from core.errors import LanguardError, NotRunning
from core.games.base import RuntimeControl
from core.logs.rotation_state import logical_size

__all__ = ["ConsoleUnavailable", "MinecraftConsole", "ReplyWaiter", "one_line"]


def one_line(lines: list[str]) -> bool:
    return bool(lines)


class ReplyWaiter:
    """The reply lines of one console command, collected as the console log grows."""

    def __init__(self, after: int, complete: Callable[[list[str]], bool] | None) -> None:
        self.after = after
        self.complete = complete
        self.lines: list[str] = []
        self.first = asyncio.Event()
        self.done = asyncio.Event()

    def offer(self, text: str) -> None:
        if self.done.is_set():
            return
        self.lines.append(text)
        self.first.set()
        if self.complete is not None and self.complete(self.lines):
            self.done.set()


class ConsoleUnavailable(NotRunning):
    """The console cannot be written (the game's stdin is gone): RCON may still answer."""


class MinecraftConsole:
    """One command at a time over the game's stdin; `waiter` collects its reply meanwhile."""

    def __init__(self, server: str, folder: Path, control: RuntimeControl) -> None:
        self.server = server
        self._folder = folder
        self._control = control
        self.waiter: ReplyWaiter | None = None
        """The command in flight's reply, offered each console line the link reads."""
        self._lock = asyncio.Lock()

    def _size(self) -> int:
        """Bytes ever written to console.log: line ends are logical offsets (rotation)."""
        return logical_size(self._folder / "console.log")

    async def run(
        self,
        text: str,
        complete: Callable[[list[str]], bool] | None,
        *,
        timeout: float,
        reply_wait: float,
        quiet: float,
    ) -> str:
        """Write `text`; return its reply lines once `complete` accepts them (None, for a raw
        command: whatever comes within `reply_wait`, and `quiet` seconds after that)."""
        async with self._lock:
            waiter = ReplyWaiter(self._size(), complete)
            self.waiter = waiter
            try:
                try:
                    self._control.write_console(text)
                except (OSError, ValueError) as exc:
                    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                    raise ConsoleUnavailable(
                        "{server}: the console cannot be written ({reason})",
                        server=self.server,
                        reason=reason,
                    ) from None
                if complete is None:  # a raw command: whatever comes, briefly
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(min(timeout, reply_wait)):
                            await waiter.first.wait()
                    if waiter.first.is_set():
                        await asyncio.sleep(quiet)
                    return "\n".join(waiter.lines)
                try:
                    async with asyncio.timeout(timeout):
                        await waiter.done.wait()
                except TimeoutError:
                    head = text.split(" ", 1)[0][:32]
                    raise LanguardError(
                        "{server} did not answer `{head}` on the console within {timeout:g} s",
                        server=self.server,
                        head=head,
                        timeout=timeout,
                    ) from None
                return "\n".join(waiter.lines)
            finally:
                self.waiter = None
