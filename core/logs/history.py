"""`/logs tail` and `/logs search` from the files on disk, newest first, in bounded memory.

A log's history is a chain of segments, oldest first: the rotated copies `console.log.<n>`
.. `console.log.1`, then the live file from the first byte it still holds. Read together
they are one byte stream (a line cut by a rotation continues in the next segment). They are
read backwards in chunks of `chunk` bytes, so a tail of 20 lines reads a few KiB of a 50 MB
file; a search reads at most `max_scan` bytes. Both are blocking: call them in a thread.
The unfinished last line of the live file is left out (it is still being written).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.logs.files import OPEN_FLAGS

__all__ = ["SEARCH_SCAN_BYTES", "Segment", "read_backwards", "search", "tail"]

CHUNK = 256 * 1024
SEARCH_SCAN_BYTES = 64 * 1024 * 1024
"""A search reads at most this much of the newest log, so it answers within seconds."""
MAX_LINE = 64 * 1024
"""A longer line is shown by its last `MAX_LINE` bytes (memory stays bounded)."""


@dataclass(frozen=True, slots=True)
class Segment:
    path: Path
    start: int = 0
    """The physical offset of the first byte that belongs to the stream."""


def read_backwards(
    segments: Sequence[Segment], *, chunk: int = CHUNK, max_scan: int | None = None
) -> Iterator[list[bytes]]:
    """Blocks of complete lines (without newlines), newest block first, each in file order.

    At most `max_scan` bytes are read (all when None); missing segments are skipped.
    """
    budget = max_scan
    carry: bytes | None = None  # the first line seen so far (it may start in older bytes)
    for segment in reversed(segments):
        try:
            fd = os.open(segment.path, OPEN_FLAGS)
        except FileNotFoundError:
            continue
        try:
            pos = os.fstat(fd).st_size
            while pos > segment.start:
                if budget is not None and budget <= 0:
                    return
                step = min(chunk, pos - segment.start)
                if budget is not None:
                    step = min(step, budget)
                    budget -= step
                pos -= step
                data = os.pread(fd, step, pos)
                if carry is None:  # still in the unfinished last line: not a line yet
                    data = data[: data.rfind(b"\n") + 1]
                    if not data:
                        continue
                else:
                    data += carry + b"\n"
                first = data.find(b"\n")
                carry = data[:first][-MAX_LINE:]
                lines = data[first + 1 :].split(b"\n")
                lines.pop()  # after the final newline
                if lines:
                    yield lines
        finally:
            os.close(fd)
    if carry is not None:  # the very first line of the stream
        yield [carry]


def _text(raw: bytes) -> str:
    return raw[-MAX_LINE:].decode("utf-8", "replace").rstrip("\r")


def tail(segments: Sequence[Segment], count: int) -> list[str]:
    """The last `count` complete lines, oldest first."""
    found: list[bytes] = []
    for block in read_backwards(segments):
        found.extend(reversed(block[-(count - len(found)) :]))
        if len(found) >= count:
            break
    return [_text(raw) for raw in reversed(found)]


def search(
    segments: Sequence[Segment], needle: str, limit: int, *, max_scan: int
) -> tuple[list[str], bool]:
    """Up to `limit` newest lines containing `needle` (case-insensitive), oldest first, and
    whether the search is complete: False when it stopped at `max_scan` bytes with fewer
    than `limit` lines found."""
    wanted = needle.casefold()
    found: list[str] = []
    for block in read_backwards(segments, max_scan=max_scan):
        text = b"\n".join(block).decode("utf-8", "replace")
        if wanted not in text.casefold():
            continue  # one test per block: most blocks hold no match
        for raw in reversed(block):
            line = _text(raw)
            if wanted in line.casefold():
                found.append(line)
                if len(found) >= limit:
                    return found[::-1], True
    return found[::-1], _stream_size(segments) <= max_scan


def _stream_size(segments: Sequence[Segment]) -> int:
    total = 0
    for segment in segments:
        try:
            total += max(0, segment.path.stat().st_size - segment.start)
        except FileNotFoundError:
            continue
    return total
