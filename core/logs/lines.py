"""The value carried for every log line: text, level, byte offset, and a lazily parsed time.

A million of these are made per second on the hot path, so `LogLine` is a plain slots class
built positionally by `map` in `core.logs.parser`; what a whole batch shares (source, file,
the reference clock used to date time-only stamps) lives once in a `LineOrigin`, and the time
is only parsed when someone asks for it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import IntEnum

__all__ = ["LineOrigin", "LogLevel", "LogLine", "TimeParser"]

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
