"""One asyncio task that polls every log tailer of the bot.

One task instead of one per file, and adaptive: after a round that found data it polls again
in `active_interval` (20 ms), and each empty round doubles the wait up to `idle_interval`
(0.8 s), so 100 idle logs cost a couple of syscalls each per second. A busy log is read in
slices of `slice_bytes` with a yield to the loop between rounds, so a large backlog neither
blocks the bot nor piles every line into subscriber queues at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from core.backoff import Backoff
from core.logs.tailer import LogTailer

__all__ = ["LogWatcher"]

_log = logging.getLogger(__name__)


class LogWatcher:
    """Polls the registered tailers from a single task; add and remove them at any time."""

    def __init__(
        self,
        *,
        active_interval: float = 0.02,
        idle_interval: float = 0.8,
        slice_bytes: int = 1024 * 1024,
        round_seconds: float = 0.05,
    ) -> None:
        self.active_interval = active_interval
        self.idle_interval = idle_interval
        self.slice_bytes = slice_bytes
        self.round_seconds = round_seconds
        """A round that has read this long stops; the next one starts with the tailer after."""
        self._next = 0
        self._tailers: dict[int, LogTailer] = {}
        self._errors: dict[int, str] = {}
        self._backoff = Backoff(base=active_interval, cap=idle_interval, jitter=0.0)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0
        """Poll rounds run so far (for tests and metrics)."""

    @property
    def tailers(self) -> tuple[LogTailer, ...]:
        return tuple(self._tailers.values())

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def add(self, tailer: LogTailer) -> None:
        """Start polling `tailer` (on the next round, which comes at once)."""
        self._tailers[id(tailer)] = tailer
        self.wake()

    def remove(self, tailer: LogTailer) -> None:
        """Stop polling `tailer`; closing it is the caller's business (it may be re-added)."""
        self._tailers.pop(id(tailer), None)
        self._errors.pop(id(tailer), None)

    def wake(self) -> None:
        """Poll now instead of after the idle wait (e.g. right after a server started)."""
        self._backoff.reset()
        self._wake.set()

    def start(self) -> None:
        """Start the polling task on the running loop; stop it with `await stop()`."""
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="log-watcher")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def poll_round(self) -> tuple[int, bool]:
        """Poll the tailers once each; returns (lines published, whether one is still behind).

        With many busy logs (catching up after a restart) the round stops after
        `round_seconds` and reports itself behind, so the loop is never held for long; the
        next round starts where this one stopped, so no log waits on the others for ever.
        """
        self.rounds += 1
        items = tuple(self._tailers.items())
        lines = 0
        behind = False
        deadline = time.perf_counter() + self.round_seconds
        first = self._next % len(items) if items else 0
        for step in range(len(items)):
            key, tailer = items[(first + step) % len(items)]
            try:
                lines += tailer.poll(self.slice_bytes)
            except Exception as exc:
                self._report(key, tailer, exc)
            else:
                if key in self._errors:
                    del self._errors[key]
                    _log.info("%s/%s: log readable again", tailer.server, tailer.source)
                behind = behind or not tailer.caught_up
            busy = lines or behind  # idle polls are cheap: only reading ends a round early
            if busy and step + 1 < len(items) and time.perf_counter() > deadline:
                self._next = first + step + 1
                return lines, True
        self._next = first
        return lines, behind

    def _report(self, key: int, tailer: LogTailer, exc: Exception) -> None:
        """Log a failing tailer once per distinct error, not on every round."""
        text = f"{type(exc).__name__}: {exc}"
        if self._errors.get(key) != text:
            self._errors[key] = text
            _log.warning(
                "%s/%s: cannot read log %s", tailer.server, tailer.source, tailer.path, exc_info=exc
            )

    async def flush(self, timeout: float = 30.0) -> int:
        """Publish everything currently on disk; returns the lines published on the way.

        Done when a round finds no line and every tailer is at its end (an unfinished last
        line stays pending). Raises TimeoutError if writers keep it busy past `timeout`.
        """
        deadline = time.monotonic() + timeout
        total = 0
        while True:
            lines, behind = self.poll_round()
            total += lines
            if not lines and not behind:
                return total
            if time.monotonic() > deadline:
                raise TimeoutError(f"logs still growing after {timeout:.1f}s")
            await asyncio.sleep(0)

    async def _run(self) -> None:
        while True:
            try:
                lines, behind = self.poll_round()
            except Exception:
                _log.exception("log watcher round failed")
                lines, behind = 0, False
            if behind:
                await asyncio.sleep(0)  # let subscribers drain, then keep reading
                continue
            if lines:
                self._backoff.reset()
                delay = self.active_interval
            else:
                delay = self._backoff.next()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def __repr__(self) -> str:
        return f"<LogWatcher tailers={len(self._tailers)} running={self.running}>"
