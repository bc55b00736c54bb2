"""The recent lines of one server, for `/logs tail` and `/logs search` without touching disk.

Lines arrive in batches of thousands, so the buffer stores the batches themselves (one
append per batch, no per-line work on the hot path) and trims whole batches, or the front
of the oldest one, to stay within `max_lines` lines and roughly `max_bytes` bytes of text.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from core.logs.lines import LineBatch, LogLine

__all__ = ["RingBuffer"]


class RingBuffer:
    """The last `max_lines` lines (fewer if their text passes about `max_bytes`), oldest first."""

    def __init__(self, max_lines: int = 5000, max_bytes: int = 8 * 1024 * 1024) -> None:
        if max_lines < 1 or max_bytes < 1:
            raise ValueError("max_lines and max_bytes must be positive")
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self._batches: deque[tuple[LineBatch, int]] = deque()
        self._lines = 0
        self._bytes = 0

    def __len__(self) -> int:
        return self._lines

    @property
    def approx_bytes(self) -> int:
        """Bytes of text held, as estimated from the batches' byte sizes."""
        return self._bytes

    def append(self, line: LogLine) -> None:
        self.extend(LineBatch.of((line,)))

    def extend(self, lines: Sequence[LogLine], nbytes: int | None = None) -> None:
        """Add lines in file order; a `LineBatch` is kept by reference (so never mutate it).

        `nbytes` is the batch's size in the file, when known (else the text is measured).
        """
        batch = lines if isinstance(lines, LineBatch) else LineBatch.of(lines)
        count = len(batch)
        if not count:
            return
        if nbytes is None:
            nbytes = sum(map(len, batch.texts)) + count
        self._batches.append((batch, nbytes))
        self._lines += count
        self._bytes += nbytes
        self._evict()

    def clear(self) -> None:
        self._batches.clear()
        self._lines = 0
        self._bytes = 0

    def _evict(self) -> None:
        batches = self._batches
        while len(batches) > 1 and (
            self._lines - len(batches[0][0]) >= self.max_lines or self._bytes > self.max_bytes
        ):
            old, size = batches.popleft()
            self._lines -= len(old)
            self._bytes -= size
        excess = self._lines - self.max_lines
        if self._bytes > self.max_bytes:  # a single batch bigger than the byte budget
            old, size = batches[0]
            keep = max(1, len(old) * self.max_bytes // size)
            excess = max(excess, len(old) - keep)
        if excess > 0:
            old, size = batches[0]
            kept = old[excess:]
            kept_size = size * len(kept) // len(old)
            batches[0] = (kept, kept_size)
            self._lines -= excess
            self._bytes += kept_size - size

    def tail(self, n: int) -> list[LogLine]:
        """The last `n` lines, oldest first (the order to print them in)."""
        parts: list[LineBatch] = []
        for batch, _size in reversed(self._batches):
            if n <= 0:
                break
            parts.append(batch[-n:])
            n -= len(parts[-1])
        return [line for part in reversed(parts) for line in part]

    def search(self, text: str, limit: int = 20) -> list[LogLine]:
        """Up to `limit` lines containing `text` (case-insensitive), NEWEST first.

        Newest first because the question is usually "what just happened"; reverse the
        result to print it in file order.
        """
        needle = text.casefold()
        out: list[LogLine] = []
        if limit <= 0:
            return out
        for batch, _size in reversed(self._batches):
            texts = batch.texts
            for index in range(len(texts) - 1, -1, -1):
                if needle in texts[index].casefold():
                    out.append(batch[index])
                    if len(out) >= limit:
                        return out
        return out

    def __repr__(self) -> str:
        return f"<RingBuffer lines={self._lines}/{self.max_lines} bytes~{self._bytes}>"
