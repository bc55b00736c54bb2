"""A container's log stream, delivered exactly once across bot restarts.

The protocol part has no I/O: `FrameDecoder` cuts the multiplexed stream into frames
([ref §5 Multiplexed stream]: `[stream, 0, 0, 0, size uint32 BE]` + payload) and
`ExactlyOnce` drops what a resumed stream repeats. `follow` is the small asyncio part.

The cursor is the dockerd timestamp of the last delivered line and how many delivered lines
carry that very timestamp. `since` is inclusive [ref §5 Endpoint], so a follower resumed with
`since=<last>` sees those lines again and skips exactly `count` of them; timestamps are
assigned by dockerd when it reads the pipe, so two lines can share one.
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from core.docker.client import Engine

__all__ = [
    "ExactlyOnce",
    "Frame",
    "FrameDecoder",
    "LogCursor",
    "LogRecord",
    "follow",
    "parse_timestamp",
]

_log = logging.getLogger(__name__)

_HEADER = struct.Struct(">BxxxL")
_STAMP = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$", re.ASCII
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_FRAME = 1024 * 1024
"""dockerd splits lines at 16 KiB [ref §5]; a bigger frame means the stream is not framed."""


def parse_timestamp(text: str) -> int | None:
    """Nanoseconds since the epoch of an RFC 3339 stamp as dockerd writes it, or None.

    Go's RFC3339Nano drops trailing zeros, so stamps are compared as numbers, never as text.
    """
    match = _STAMP.match(text)
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    try:
        moment = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    if zone == "Z":
        tz = UTC
    else:
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    seconds = (moment.replace(tzinfo=tz) - _EPOCH) // timedelta(seconds=1)
    return seconds * 1_000_000_000 + int((fraction or "").ljust(9, "0"))


@dataclass(frozen=True, slots=True)
class LogCursor:
    """Where delivery stopped: the last delivered stamp (ns) and how many lines had it."""

    nanos: int = 0
    count: int = 0

    def since(self) -> str:
        """The `since` parameter that resumes here: `SECONDS.NANOS` [ref §5 Endpoint]."""
        seconds, nanos = divmod(self.nanos, 1_000_000_000)
        return f"{seconds}.{nanos:09d}"

    def encode(self) -> str:
        """A compact text to store between runs (`nanos:count`)."""
        return f"{self.nanos}:{self.count}"

    @classmethod
    def decode(cls, text: str) -> LogCursor:
        """The stored cursor, or the start of the stream when the text is not one."""
        nanos, _, count = text.partition(":")
        try:
            return cls(max(0, int(nanos)), max(0, int(count)))
        except ValueError:
            return cls()


@dataclass(frozen=True, slots=True)
class Frame:
    stream: int
    """1 = stdout, 2 = stderr (0 = stdin echoed on stdout)."""
    payload: bytes


class FrameDecoder:
    """Feed raw bytes of a Tty=false stream, get whole frames; or raw lines when `tty`."""

    def __init__(self, *, tty: bool = False) -> None:
        self.tty = tty
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer.extend(data)
        if self.tty:
            return self._lines()
        frames: list[Frame] = []
        while len(self._buffer) >= _HEADER.size:
            stream, size = _HEADER.unpack_from(self._buffer)
            if stream > 2 or size > MAX_FRAME:
                raise ValueError("not a multiplexed log stream")
            end = _HEADER.size + size
            if len(self._buffer) < end:
                break
            frames.append(Frame(stream, bytes(self._buffer[_HEADER.size : end])))
            del self._buffer[:end]
        return frames

    def _lines(self) -> list[Frame]:
        frames: list[Frame] = []
        while (cut := self._buffer.find(b"\n")) >= 0:
            frames.append(Frame(1, bytes(self._buffer[: cut + 1])))
            del self._buffer[: cut + 1]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of a frame not complete yet (a stream that ends here lost them)."""
        return len(self._buffer)


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One delivered line; `cursor` is where a resumed stream continues after it."""

    text: str
    stream: int
    nanos: int
    cursor: LogCursor


class ExactlyOnce:
    """Drops the lines a stream resumed at `cursor` repeats, and moves the cursor on."""

    def __init__(self, cursor: LogCursor) -> None:
        self.cursor = cursor
        self._skip = cursor.count

    def accept(self, frame: Frame) -> LogRecord | None:
        stamp, _, rest = frame.payload.partition(b" ")
        nanos = parse_timestamp(stamp.decode("ascii", "replace"))
        if nanos is None:  # every frame is stamped with timestamps=1 [ref §5]
            _log.debug("unstamped log frame dropped: %r", frame.payload[:80])
            return None
        if nanos < self.cursor.nanos:
            return None
        if nanos == self.cursor.nanos:
            if self._skip > 0:
                self._skip -= 1
                return None
            self.cursor = LogCursor(nanos, self.cursor.count + 1)
        else:
            self.cursor = LogCursor(nanos, 1)
            self._skip = 0
        text = rest.decode("utf-8", "replace").rstrip("\r\n")
        return LogRecord(text, frame.stream, nanos, self.cursor)


async def follow(
    engine: Engine, container_id: str, cursor: LogCursor, *, live: bool = True
) -> AsyncGenerator[list[LogRecord]]:
    """The container's lines after `cursor`, each once, in batches (one per network read);
    with `live`, until the stream ends.

    The stream ends at once for a container that is not running [ref §5 Endpoint: follow=1
    on a stopped container], so the caller re-checks its state and follows again after a
    start. A cut stream (engine gone) raises EngineUnreachable.
    """
    params = {"stdout": "1", "stderr": "1", "timestamps": "1", "follow": "1" if live else "0"}
    if cursor.nanos:
        params["since"] = cursor.since()
    info = await engine.request("GET", f"containers/{container_id}/json")
    tty = bool(info.get("Config", {}).get("Tty")) if isinstance(info, dict) else False
    decoder = FrameDecoder(tty=tty)
    gate = ExactlyOnce(cursor)
    async with engine.stream("GET", f"containers/{container_id}/logs", params=params) as resp:
        async for chunk in resp.content.iter_any():
            batch = [r for f in decoder.feed(chunk) if (r := gate.accept(f)) is not None]
            if batch:
                yield batch
