"""Progress of a SteamCMD job as one number that never goes back, delivered off the read loop.

A job spans several SteamCMD runs (retries) and, for the server, several phases whose own
percentages restart at zero (preallocating, downloading, verifying, committing). Members
see one bar, so the fraction is the maximum seen so far. The callback (a Discord edit, say)
runs in its own task and only ever gets the newest value: a slow edit never stalls the
reading of SteamCMD's pipe, and stale values are skipped rather than queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Literal

__all__ = ["ProgressCallback", "ProgressReporter", "Stage", "SteamProgress"]

_log = logging.getLogger(__name__)

Stage = Literal["preparing", "downloading", "verifying", "installing", "retrying", "done"]
"""A fixed set, so a front end can translate each word."""

_FLUSH_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class SteamProgress:
    fraction: float
    """0.0-1.0 for the whole job; never decreases within a job."""
    stage: Stage
    items_done: int = 0
    items_total: int = 0
    item_id: int | None = None
    """The Workshop item being downloaded, when SteamCMD said which."""
    attempt: int = 1
    retry_in: float | None = None
    """Seconds until the next attempt (stage "retrying")."""


ProgressCallback = Callable[[SteamProgress], Awaitable[None] | None]


class ProgressReporter:
    """Holds the newest progress and hands it to the callback from a task of its own."""

    def __init__(self, callback: ProgressCallback | None, items_total: int = 0) -> None:
        self._callback = callback
        self.current = SteamProgress(0.0, "preparing", items_total=items_total)
        self._sent: SteamProgress | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def update(self, **changes: object) -> SteamProgress:
        """Change fields; `fraction` is kept monotonic and within 0..1."""
        fraction = changes.pop("fraction", None)
        new = replace(self.current, **changes)  # type: ignore[arg-type]
        if isinstance(fraction, int | float):
            new = replace(new, fraction=min(1.0, max(self.current.fraction, float(fraction))))
        if new != self.current:
            self.current = new
            self._kick()
        return new

    def _kick(self) -> None:
        if self._callback is None:
            return
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="steamcmd-progress"
            )

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            progress = self.current
            if progress != self._sent and self._callback is not None:
                self._sent = progress
                try:
                    outcome = self._callback(progress)
                    if inspect.isawaitable(outcome):
                        await outcome
                except Exception:
                    _log.exception("a SteamCMD progress callback failed")
            if self._closing and not self._wake.is_set():
                return

    async def aclose(self) -> None:
        """Deliver the last value (bounded wait), then stop the task."""
        self._closing = True
        if self._task is None:
            return
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=_FLUSH_TIMEOUT)
        except TimeoutError:
            _log.warning("a SteamCMD progress callback did not return; dropped")
        finally:
            if not self._task.done():
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
