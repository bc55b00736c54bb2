"""The values carried for log lines: `LogLine`, and `LineBatch`, the lines of one read.

A million lines a second pass through here. A million tracked objects a second would cost
more in the garbage collector than in the making (each survives long enough to be promoted,
and every promotion brings a full collection nearer), so a batch stores its lines as columns
(texts, levels, end offsets) and makes a `LogLine` only when one is asked for; what a batch
shares (source, file, the reference clock for time-only stamps) lives once in a
`LineOrigin`, and a line's time is parsed only when someone reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from enum import IntEnum
from itertools import repeat
from typing import overload

__all__ = ["LineBatch", "LineOrigin", "LogLevel", "LogLine", "TimeParser"]

TimeParser = Callable[[str, float | None], datetime | None]
"""`(text, reference_unix_time) -> time`; the reference dates stamps that carry no date."""


class LogLevel(IntEnum):
    """Ordered, so `line.level >= LogLevel.WARNING` picks what deserves attention."""

    DEBUG = 10
    INFO = 20
    WARNING = 30
    ERROR = 40


class LineOrigin:
    """What every line of one batch shares, stored once instead of once per line."""

    __slots__ = ("file_id", "parse_time", "reference", "source")

    def __init__(
        self,
        source: str,
        file_id: str,
        reference: float | None,
        parse_time: TimeParser,
    ) -> None:
        self.source = source
        self.file_id = file_id
        self.reference = reference
        """Unix time no line of the batch can be later than (the file's mtime after the read)."""
        self.parse_time = parse_time

    def __repr__(self) -> str:
        return f"<LineOrigin {self.source} {self.file_id}>"


class LogLine:
    """One complete line of a log file.

    `text` has no trailing newline or CR; `end` is the byte offset just past this line's
    newline in its file (consumers resume with `LogLines.after(cursor)`); `time` is parsed
    on first access and cached.
    """

    __slots__ = ("_time", "end", "level", "origin", "text")

    text: str
    level: LogLevel
    end: int
    origin: LineOrigin | None
    _time: datetime | None

    def __init__(
        self,
        text: str,
        level: LogLevel = LogLevel.INFO,
        end: int = 0,
        origin: LineOrigin | None = None,
    ) -> None:
        self.text = text
        self.level = level
        self.end = end
        self.origin = origin

    @property
    def time(self) -> datetime | None:
        """The line's timestamp (timezone-aware), or None for untimestamped lines."""
        try:
            return self._time
        except AttributeError:
            origin = self.origin
            value = None if origin is None else origin.parse_time(self.text, origin.reference)
            self._time = value
            return value

    @property
    def source(self) -> str:
        """The log source name ("console", "rpt", ...) or "" for a line made by hand."""
        origin = self.origin
        return "" if origin is None else origin.source

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LogLine):
            return NotImplemented
        return self.text == other.text and self.level == other.level and self.end == other.end

    def __hash__(self) -> int:
        return hash((self.text, self.level, self.end))

    def __repr__(self) -> str:
        return f"LogLine({self.text!r}, {self.level.name}, end={self.end})"


class LineBatch(Sequence[LogLine]):
    """Lines of one read in file order, stored as columns; indexing makes the `LogLine`.

    `texts`, `levels` and `ends` are public for bulk consumers (`"\\n".join(batch.texts)`,
    `batch.levels.count(LogLevel.ERROR)`); treat them as read-only. Each access makes a new
    `LogLine`, so keep the object if you read its `time` more than once.
    """

    __slots__ = ("ends", "levels", "origin", "texts")

    def __init__(
        self,
        texts: list[str],
        levels: list[LogLevel],
        ends: list[int],
        origin: LineOrigin | None = None,
    ) -> None:
        self.texts = texts
        self.levels = levels
        self.ends = ends
        self.origin = origin

    @classmethod
    def of(cls, lines: Iterable[LogLine]) -> LineBatch:
        """A batch of existing lines (they should share one origin: the first one's is kept)."""
        items = list(lines)
        origin = items[0].origin if items else None
        return cls(
            [line.text for line in items],
            [line.level for line in items],
            [line.end for line in items],
            origin,
        )

    def __len__(self) -> int:
        return len(self.texts)

    @overload
    def __getitem__(self, index: int) -> LogLine: ...

    @overload
    def __getitem__(self, index: slice) -> LineBatch: ...

    def __getitem__(self, index: int | slice) -> LogLine | LineBatch:
        if isinstance(index, slice):
            return LineBatch(self.texts[index], self.levels[index], self.ends[index], self.origin)
        return LogLine(self.texts[index], self.levels[index], self.ends[index], self.origin)

    def __iter__(self) -> Iterator[LogLine]:
        return map(LogLine, self.texts, self.levels, self.ends, repeat(self.origin))

    def __reversed__(self) -> Iterator[LogLine]:
        return map(
            LogLine,
            reversed(self.texts),
            reversed(self.levels),
            reversed(self.ends),
            repeat(self.origin),
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LineBatch):
            return (self.texts, self.levels, self.ends) == (other.texts, other.levels, other.ends)
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<LineBatch {len(self.texts)} lines ending at {self.ends[-1] if self.ends else 0}>"
