"""The tailers and ring buffer of one server, where they resume after a bot restart, and
what outlives the bot: tail and search served from the files, and rotation of console.log.

Every reader of a log's bytes other than the tailers (a rotation cutting the head, a tail
or search reading the files in a thread, a flush) holds `_io`, so no reader ever sees the
bytes move under it. The tailers themselves are frozen by the rotation around the cut.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from core.events import EventBus
from core.games.base import LogSourceSpec
from core.logs import history
from core.logs.history import SEARCH_SCAN_BYTES, Segment
from core.logs.lines import LogLine
from core.logs.ring import RingBuffer
from core.logs.rotation import RotationPolicy, rotate_log, rotated_paths
from core.logs.rotation_state import held_start
from core.logs.tailer import LogPosition, LogTailer
from core.logs.watcher import LogWatcher
from data.repositories.telemetry import StoredOffset

__all__ = ["READER", "SEARCH_SCAN_BYTES", "ServerLogs", "resume_positions", "rotation_floor"]

_log = logging.getLogger(__name__)

READER = "reader"
"""The consumer name under which the tailer's own read position is saved."""
FLUSH_SLICE = 1024 * 1024
"""Bytes a flush reads per tailer before it lets the loop run (subscribers drain)."""


def resume_positions(stored: Iterable[StoredOffset]) -> dict[str, LogPosition]:
    """Per source, resume at the lowest position any consumer still needs in the reader's file.

    A consumer that commits its own cursor (e.g. a channel outbox) may lag the reader after
    a hard kill; re-reading from its cursor lets it catch up, and `LogLines.after()` lets
    every other consumer skip what it already had.
    """
    by_source: dict[str, list[StoredOffset]] = {}
    for item in stored:
        by_source.setdefault(item.source, []).append(item)
    positions: dict[str, LogPosition] = {}
    for source, items in by_source.items():
        reader = next((i for i in items if i.consumer == READER), None)
        if reader is None:
            base = min(items, key=lambda i: i.offset)
            positions[source] = LogPosition(base.file_id, base.offset)
            continue
        lowest = min(i.offset for i in items if i.file_id == reader.file_id)
        positions[source] = LogPosition(reader.file_id, lowest)
    return positions


def rotation_floor(
    stored: Iterable[StoredOffset], source: str, file_id: str, max_lag: int
) -> int | None:
    """Where a rotation may cut up to: the lowest *committed* position of `file_id`.

    The reader's saved position must be there (else None: nothing is known to be safe).
    A consumer more than `max_lag` bytes behind the reader is not waited for: it stopped
    keeping up, and would otherwise hold the file forever.
    """
    items = [i for i in stored if i.source == source and i.file_id == file_id]
    reader = next((i.offset for i in items if i.consumer == READER), None)
    if reader is None:
        return None
    return min(i.offset for i in items if i.offset >= reader - max_lag)


class ServerLogs:
    def __init__(
        self,
        *,
        server_id: int,
        server: str,
        bus: EventBus,
        watcher: LogWatcher,
        ring_lines: int = 5000,
        rotation: RotationPolicy | None = None,
    ) -> None:
        self.server_id = server_id
        self.server = server
        self._bus = bus
        self._watcher = watcher
        self.rotation = rotation or RotationPolicy()
        self.ring = RingBuffer(ring_lines)
        self._tailers: dict[str, LogTailer] = {}
        self._specs: dict[str, LogSourceSpec] = {}
        self._io = asyncio.Lock()
        self._rotation: asyncio.Future[int] | None = None

    def attach(
        self, specs: Sequence[LogSourceSpec], positions: dict[str, LogPosition] | None = None
    ) -> None:
        """Tail these sources (replacing any tailer of the same name)."""
        positions = positions or {}
        for spec in specs:
            old = self._tailers.pop(spec.name, None)
            start = positions.get(spec.name)
            if old is not None:
                self._watcher.remove(old)
                old.close()
                if start is None and old.position.file_id:
                    start = old.position
            tailer = LogTailer(
                server_id=self.server_id,
                server=self.server,
                source=spec.name,
                locate=spec.locate,
                bus=self._bus,
                start=start,
                ring=self.ring,
                rotatable=spec.rotate,
            )
            self._tailers[spec.name] = tailer
            self._specs[spec.name] = spec
            self._watcher.add(tailer)

    async def flush(self) -> int:
        """Publish everything on disk now; returns how many lines were published.

        Reads `FLUSH_SLICE` bytes per tailer at a time and yields to the loop in between,
        so a large backlog neither stalls the bot nor piles up in subscribers' queues.
        """
        total = 0
        async with self._io:
            while True:
                behind = False
                for tailer in tuple(self._tailers.values()):
                    try:
                        total += tailer.poll(FLUSH_SLICE)
                    except OSError as exc:
                        _log.warning(
                            "reading %s log of %s failed: %s", tailer.source, self.server, exc
                        )
                        continue
                    behind = behind or not tailer.caught_up
                if not behind:
                    return total
                await asyncio.sleep(0)

    def positions(self) -> dict[str, LogPosition]:
        return {
            name: tailer.position
            for name, tailer in self._tailers.items()
            if tailer.position.file_id
        }

    def last_lines(self, count: int) -> list[LogLine]:
        return list(self.ring.tail(count))

    # --- history from disk ------------------------------------------------------------

    async def tail(self, count: int) -> list[str]:
        """The last `count` lines: from the ring when it holds that many, else from disk."""
        cached = [line.text for line in self.ring.tail(count)]
        if len(cached) >= count:
            return cached
        async with self._io:
            segments = await asyncio.to_thread(self._segments)
            lines = await asyncio.to_thread(history.tail, segments, count) if segments else []
        return lines if len(lines) > len(cached) else cached

    async def search(self, text: str, limit: int) -> tuple[list[str], bool]:
        """Up to `limit` newest lines holding `text` (case-insensitive), oldest first, and
        whether every line on disk was searched (False: only the newest `SEARCH_SCAN_BYTES`)."""
        cached = [line.text for line in reversed(self.ring.search(text, limit))]
        if len(cached) >= limit:
            return cached, True
        async with self._io:
            segments = await asyncio.to_thread(self._segments)
            if not segments:
                return cached, True
            found, complete = await asyncio.to_thread(
                history.search, segments, text, limit, max_scan=SEARCH_SCAN_BYTES
            )
        return (found, complete) if len(found) >= len(cached) else (cached, complete)

    def _segments(self) -> list[Segment]:
        """The history of the source written last (Arma: the console, or this start's RPT)."""
        newest: tuple[float, Path, LogTailer] | None = None
        for name, tailer in tuple(self._tailers.items()):
            path = tailer.path or self._specs[name].locate()  # not opened yet: a new bot
            if path is None:
                continue
            try:
                mtime = os.stat(path).st_mtime
            except OSError:
                continue
            if newest is None or mtime > newest[0]:
                newest = (mtime, path, tailer)
        if newest is None:
            return []
        _, path, tailer = newest
        if not tailer.rotatable:
            return [Segment(path)]
        start = tailer.held_from if tailer.path == path else held_start(path)
        older = [Segment(p) for p in reversed(rotated_paths(path, self.rotation.keep))]
        return [*older, Segment(path, start)]

    # --- rotation -----------------------------------------------------------------------

    def due_for_rotation(self) -> list[tuple[str, str]]:
        """(source, file id) of each rotatable log holding more than `max_bytes` now."""
        due: list[tuple[str, str]] = []
        for name, tailer in self._tailers.items():
            if not tailer.rotatable or tailer.path is None or not tailer.position.file_id:
                continue
            try:
                held = os.stat(tailer.path).st_size - tailer.held_from
            except OSError:
                continue
            if held > self.rotation.max_bytes:
                due.append((name, tailer.position.file_id))
        return due

    async def rotate(self, source: str, floor: int) -> int:
        """Cut the head of `source`'s file up to the committed `floor`; returns bytes cut.

        The rotation runs to its end even if the caller is cancelled (bot shutting down):
        its threads would go on anyway, and the tailer must learn the new layout. A flush
        waits for it (both hold `_io`).
        """
        tailer = self._tailers.get(source)
        if tailer is None:
            return 0
        task = asyncio.ensure_future(self._rotate(tailer, floor))
        self._rotation = task
        return await asyncio.shield(task)

    async def _rotate(self, tailer: LogTailer, floor: int) -> int:
        async with self._io:
            try:
                return await rotate_log(tailer, floor, self.rotation)
            except OSError as exc:
                _log.warning(
                    "rotating the %s log of %s failed: %s", tailer.source, self.server, exc
                )
                return 0

    def close(self) -> None:
        for tailer in self._tailers.values():
            self._watcher.remove(tailer)
            tailer.close()
        self._tailers.clear()
        self._specs.clear()
