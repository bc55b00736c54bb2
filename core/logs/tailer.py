"""Following one log of one server across appends, truncation, new files and bot restarts.

A tailer owns an open descriptor on the file it reads, so the file's inode cannot be reused
while it is followed, and a file that is renamed or deleted (Minecraft rotating latest.log)
can still be drained to its end. Positions are `(file_id, offset)`: the id names the device,
the inode and a checksum of the file's first bytes (up to 4 KiB), so a replaced file or an
inode reused while the bot was down is told apart from "the same file". Whenever the file's
size or mtime changed, its first bytes and the 64 bytes before the read position are checked
too, so a truncation is seen even when the file has grown past the old offset again (it gets
a new file_id and is read from 0). An idle poll costs one fstat, plus the `locate` call.

Choices, documented here because a caller cannot see them:

* A saved position whose file is no longer the located one is finished first if a file with
  that id is still in the located file's folder (an old Arma RPT); otherwise the located file
  starts at 0 and whatever was appended to the lost file after the saved offset is gone.
* When `locate` names a different file, the current one is read to its end, its unfinished
  last line is published as a line, and then the new file is read from offset 0. Lines
  written to the old file after that moment are not read.
* A line longer than `max_line_bytes` is published in pieces of that size (cut on a UTF-8
  boundary), so memory stays bounded; the cut depends only on the bytes, not on timing.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.events import EventBus, LogLines
from core.logs.lines import LineBatch, LineOrigin
from core.logs.parser import make_origin, parse_block, parse_piece
from core.logs.ring import RingBuffer

__all__ = ["LogPosition", "LogTailer", "newest_file", "position_at_end"]

_log = logging.getLogger(__name__)

_HEAD = 4096
"""Bytes at the start of a file whose checksum goes into its id."""
_TAIL = 64
"""Bytes before the read position that must still be there for a file to be unchanged."""
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True, slots=True)
class LogPosition:
    """Where reading resumes: `offset` bytes into the file named by `file_id` ("" = none yet)."""

    file_id: str
    offset: int


_NOWHERE = LogPosition("", 0)


def _head_of(fd: int, size: int) -> tuple[int, int]:
    head = os.pread(fd, min(size, _HEAD), 0)
    return len(head), zlib.crc32(head)


def _parse_id(file_id: str) -> tuple[int, int, int, int] | None:
    """(dev, ino, head length, head crc) of an id, ignoring a truncation generation suffix."""
    try:
        dev, ino, length, crc = file_id.split("/", 1)[0].split(":")
        return int(dev), int(ino), int(length), int(crc, 16)
    except ValueError:
        return None


def _is_same_file(fd: int, st: os.stat_result, file_id: str) -> bool:
    """Whether the open file is the one `file_id` names: same inode and same first bytes."""
    parsed = _parse_id(file_id)
    if parsed is None:
        return False
    dev, ino, length, crc = parsed
    if (st.st_dev, st.st_ino) != (dev, ino) or st.st_size < length:
        return False
    return _head_of(fd, length) == (length, crc)


def newest_file(directory: Path, pattern: str) -> Path | None:
    """The file in `directory` matching the glob `pattern` whose name sorts last.

    Arma names each RPT `arma3server_x64_YYYY-MM-DD_HH-MM-SS.rpt`, so the last name is the
    latest start, found without a stat per file (this runs on every idle poll).
    """
    best: str | None = None
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                name = entry.name
                newer = best is None or name > best
                if newer and fnmatch.fnmatchcase(name, pattern) and entry.is_file():
                    best = name
    except (FileNotFoundError, NotADirectoryError):
        return None
    return None if best is None else directory / best


def position_at_end(path: Path) -> LogPosition:
    """A position just past the last complete line of `path`, to follow only what comes next."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        return _NOWHERE
    try:
        st = os.fstat(fd)
        end = st.st_size
        while end > 0:
            start = max(0, end - 65536)
            found = os.pread(fd, end - start, start).rfind(b"\n")
            if found >= 0:
                end = start + found + 1
                break
            end = start
        if end == 0:
            return _NOWHERE
        length, crc = _head_of(fd, st.st_size)
        return LogPosition(f"{st.st_dev}:{st.st_ino}:{length}:{crc:08x}", end)
    finally:
        os.close(fd)


class LogTailer:
    """One log source of one server; `poll()` publishes what is new as `LogLines` batches."""

    def __init__(
        self,
        server_id: int,
        server: str,
        source: str,
        locate: Callable[[], Path | None],
        bus: EventBus,
        *,
        start: LogPosition | None = None,
        ring: RingBuffer | None = None,
        chunk_size: int = 256 * 1024,
        max_line_bytes: int = 1024 * 1024,
    ) -> None:
        if chunk_size < 1 or max_line_bytes < chunk_size:
            raise ValueError("need 1 <= chunk_size <= max_line_bytes")
        self.server_id = server_id
        self.server = server
        self.source = source
        self._locate = locate
        self._bus = bus
        self._ring = ring
        self._chunk = chunk_size
        self._max_line = max_line_bytes
        self._start = start if start is not None and start.file_id else None
        self._fd: int | None = None
        self._inode: tuple[int, int] | None = None
        self.path: Path | None = None
        """The file being read, as located (it may since have been renamed or deleted)."""
        self._file_id = ""
        self._head: tuple[int, int] | None = None
        self._retired = ""
        self._offset = 0
        self._read_pos = 0
        self._pending = b""
        self._mtime: float | None = None
        self._budget = 0
        self._links = 1
        self._seen_mtime = -1
        self._last = b""
        self.caught_up = False
        """True after a poll that reached the end of the file with no other file to go to."""

    @property
    def position(self) -> LogPosition:
        """The position after the last published batch (the saved start until the first read)."""
        if self._file_id:
            return LogPosition(self._file_id, self._offset)
        return self._start or _NOWHERE

    def poll(self, max_bytes: int | None = None) -> int:
        """Read and publish what is on disk now; returns the number of lines published.

        With `max_bytes`, stop after about that many bytes (at least one chunk) so one busy
        log cannot hold the event loop; `caught_up` then stays False.
        """
        self._budget = sys.maxsize if max_bytes is None else max(max_bytes, self._chunk)
        self.caught_up = False
        if self._fd is None and not self._open_first():
            self.caught_up = True
            return 0
        count = 0
        while True:
            count += self._read(bounded=True)
            if self._budget <= 0:
                return count
            path = self._locate()
            fd = None if path is None else self._open_if_other(path)
            if path is None or fd is None:
                if self._orphaned(path):
                    count += self._abandon()
                self.caught_up = True
                return count
            count += self._abandon()
            self._adopt(path, fd, 0, "")

    def close(self) -> None:
        """Let go of the file; an unfinished last line is not published (a restart re-reads it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._inode = None

    # --- opening ------------------------------------------------------------------------

    def _open_first(self) -> bool:
        path = self._locate()
        if path is None:
            return False
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except FileNotFoundError:
            return False
        start, self._start = self._start, None
        if start is not None:
            st = os.fstat(fd)
            if _is_same_file(fd, st, start.file_id) and st.st_size >= start.offset:
                self._adopt(path, fd, start.offset, start.file_id)
                return True
            old = self._find_saved(path.parent, start)
            if old is not None:
                os.close(fd)
                _log.info("%s/%s: finishing %s before %s", self.server, self.source, old[0], path)
                self._adopt(old[0], old[1], start.offset, start.file_id)
                return True
            _log.info(
                "%s/%s: saved file %s is gone or shorter; reading %s from the start",
                self.server,
                self.source,
                start.file_id,
                path,
            )
            self._retired = start.file_id
        self._adopt(path, fd, 0, "")
        return True

    def _find_saved(self, directory: Path, start: LogPosition) -> tuple[Path, int] | None:
        """The file of a saved position, if it still sits in `directory` under any name."""
        parsed = _parse_id(start.file_id)
        if parsed is None:
            return None
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.inode() != parsed[1] or not entry.is_file(follow_symlinks=False):
                        continue
                    fd = os.open(entry.path, _OPEN_FLAGS)
                    try:
                        st = os.fstat(fd)
                        if _is_same_file(fd, st, start.file_id) and st.st_size >= start.offset:
                            return Path(entry.path), fd
                    except OSError:
                        os.close(fd)
                        raise
                    os.close(fd)
        except OSError as exc:
            _log.debug("looking for %s in %s: %s", start.file_id, directory, exc)
        return None

    def _open_if_other(self, path: Path) -> int | None:
        """A descriptor on the located file when it is not the file being read."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        if (st.st_dev, st.st_ino) == self._inode:
            self.path = path
            return None
        try:
            return os.open(path, _OPEN_FLAGS)
        except FileNotFoundError:
            return None

    def _orphaned(self, located: Path | None) -> bool:
        """Our file was deleted and nothing replaces it: keep no deleted inode alive."""
        if self._fd is None or self._links > 0:
            return False
        return located is None or not located.exists()

    def _adopt(self, path: Path, fd: int, offset: int, file_id: str) -> None:
        st = os.fstat(fd)
        self._fd = fd
        self._inode = (st.st_dev, st.st_ino)
        self.path = path
        self._file_id = file_id
        parsed = _parse_id(file_id)
        self._head = None if parsed is None else (parsed[2], parsed[3])
        self._offset = self._read_pos = offset
        self._pending = b""
        self._seen_mtime = -1
        self._last = os.pread(fd, min(offset, _TAIL), offset - min(offset, _TAIL))

    def _abandon(self) -> int:
        """Read the current file to its very end, publish its unfinished line, close it."""
        count = self._read(bounded=False) + self._flush_partial()
        self.close()
        return count

    # --- reading ------------------------------------------------------------------------

    def _read(self, *, bounded: bool) -> int:
        fd = self._fd
        assert fd is not None
        count = 0
        st = os.fstat(fd)
        self._links = st.st_nlink
        if bounded and st.st_size == self._read_pos and st.st_mtime_ns == self._seen_mtime:
            return 0  # idle: the common case costs one fstat
        self._seen_mtime = st.st_mtime_ns
        if self._replaced_in_place(fd, st.st_size):
            count += self._restart_truncated()
        while not bounded or self._budget > 0:
            data = os.pread(fd, self._chunk, self._read_pos)
            if not data:
                break
            self._read_pos += len(data)
            self._budget -= len(data)
            self._last = data[-_TAIL:] if len(data) >= _TAIL else (self._last + data)[-_TAIL:]
            self._mtime = os.fstat(fd).st_mtime
            count += self._consume(data)
        return count

    def _replaced_in_place(self, fd: int, size: int) -> bool:
        """Truncated, or rewritten: the first bytes or the last bytes read are not there now.

        Catches a copy-truncate even when the new content has already grown past our offset;
        only a rewrite identical in both places goes unseen (and then it changed nothing).
        """
        if size < self._read_pos:
            return True
        head = self._head
        if head is not None and (size < head[0] or _head_of(fd, head[0]) != head):
            return True
        last = self._last
        return bool(last) and os.pread(fd, len(last), self._read_pos - len(last)) != last

    def _restart_truncated(self) -> int:
        _log.info(
            "%s/%s: %s was truncated; reading it from the start",
            self.server,
            self.source,
            self.path,
        )
        count = self._flush_partial()
        self._retired = self._file_id
        self._file_id = ""
        self._head = None
        self._offset = self._read_pos = 0
        self._last = b""
        return count

    def _consume(self, data: bytes) -> int:
        buf = self._pending + data if self._pending else data
        count = 0
        limit = self._max_line
        while len(buf) > limit and buf.find(b"\n", 0, limit + 1) < 0:
            cut = limit
            while cut > limit - 3 and (buf[cut] & 0xC0) == 0x80:
                cut -= 1  # do not split a UTF-8 sequence
            count += self._publish(parse_piece(buf[:cut], self._offset, self._origin()), cut)
            buf = buf[cut:]
        cut = buf.rfind(b"\n") + 1
        if cut:
            block = buf if cut == len(buf) else buf[:cut]
            count += self._publish(parse_block(block, self._offset, self._origin()), cut)
            buf = buf[cut:]
        self._pending = buf
        return count

    def _flush_partial(self) -> int:
        pending, self._pending = self._pending, b""
        if not pending:
            return 0
        return self._publish(parse_piece(pending, self._offset, self._origin()), len(pending))

    def _origin(self) -> LineOrigin:
        if not self._file_id:
            self._file_id = self._new_id()
        return make_origin(self.source, self._file_id, self._mtime)

    def _new_id(self) -> str:
        fd = self._fd
        assert fd is not None
        st = os.fstat(fd)
        self._head = _head_of(fd, st.st_size)
        file_id = f"{st.st_dev}:{st.st_ino}:{self._head[0]}:{self._head[1]:08x}"
        retired, _, generation = self._retired.partition("/")
        if retired == file_id:  # same inode and first bytes after a truncation: still new
            file_id = f"{file_id}/{int(generation or 0) + 1}"
        return file_id

    def _publish(self, lines: LineBatch, nbytes: int) -> int:
        start = self._offset
        self._offset += nbytes
        if self._ring is not None:
            self._ring.extend(lines, nbytes)
        self._bus.publish(
            LogLines(
                server_id=self.server_id,
                server=self.server,
                source=self.source,
                file_id=self._file_id,
                lines=lines,
                start_offset=start,
                end_offset=self._offset,
            )
        )
        return len(lines)

    def __repr__(self) -> str:
        return f"<LogTailer {self.server}/{self.source} {self.path} at {self.position}>"
