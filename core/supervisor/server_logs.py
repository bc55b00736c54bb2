"""The tailers and ring buffer of one server, and where they resume after a bot restart."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from core.events import EventBus
from core.games.base import LogSourceSpec
from core.logs.lines import LogLine
from core.logs.ring import RingBuffer
from core.logs.tailer import LogPosition, LogTailer
from core.logs.watcher import LogWatcher
from data.repositories.telemetry import StoredOffset

__all__ = ["READER", "ServerLogs", "resume_positions"]

_log = logging.getLogger(__name__)

READER = "reader"
"""The consumer name under which the tailer's own read position is saved."""


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


class ServerLogs:
    def __init__(
        self,
        *,
        server_id: int,
        server: str,
        bus: EventBus,
        watcher: LogWatcher,
        ring_lines: int = 5000,
    ) -> None:
        self.server_id = server_id
        self.server = server
        self._bus = bus
        self._watcher = watcher
        self.ring = RingBuffer(ring_lines)
        self._tailers: dict[str, LogTailer] = {}

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
            )
            self._tailers[spec.name] = tailer
            self._watcher.add(tailer)

    def flush(self) -> int:
        """Read everything on disk now; returns how many lines were published."""
        total = 0
        for tailer in self._tailers.values():
            try:
                total += tailer.poll()
            except OSError as exc:
                _log.warning("reading %s log of %s failed: %s", tailer.source, self.server, exc)
        return total

    def positions(self) -> dict[str, LogPosition]:
        return {
            name: tailer.position
            for name, tailer in self._tailers.items()
            if tailer.position.file_id
        }

    def last_lines(self, count: int) -> list[LogLine]:
        return list(self.ring.tail(count))

    def close(self) -> None:
        for tailer in self._tailers.values():
            self._watcher.remove(tailer)
            tailer.close()
        self._tailers.clear()
