"""Following one log of one server across appends, truncation, new files and bot restarts.

A tailer owns an open descriptor on the file it reads, so the file's inode cannot be reused
while it is followed, and a renamed or deleted file (Minecraft rolling latest.log) can still
be drained to its end. Positions are `(file_id, offset)` (see `core.logs.files`). Whenever
the file's size or mtime changed, its first bytes and the 64 bytes before the read position
are checked too, so a truncation is seen even when the file has grown past the old offset
again (it gets a new file_id and is read from 0). An idle poll costs one fstat and `locate`.

Choices, documented here because a caller cannot see them:

* A saved position whose file is no longer the located one is finished first if a file with
  that id is still in the located file's folder (an old Arma RPT); otherwise the located file
  starts at 0 and whatever was appended to the lost file after the saved offset is gone.
* When `locate` names a different file, the current one is read to its end, its unfinished
  last line is published as a line, and then the new file is read from offset 0.
* A line longer than `max_line_bytes` is published in pieces of that size (cut on a UTF-8
  boundary), so memory stays bounded; the cut depends only on the bytes, not on timing.
* A `rotatable` file may lose its head to `core.logs.rotation`; offsets stay logical.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from core.events import EventBus, LogLines
from core.logs.files import (
    NOWHERE,
    OPEN_FLAGS,
    TAIL,
    LogPosition,
    find_saved,
    head_of,
    is_same_file,
    make_id,
    newest_file,
    parse_id,
    position_at_end,
)
from core.logs.lines import LineBatch, LineOrigin
from core.logs.parser import make_origin, parse_block, parse_piece
from core.logs.ring import RingBuffer
from core.logs.rotation_state import Layout, RotationTarget, recover_layout
from core.logs.tail_checks import first_line_after, replaced_in_place

__all__ = ["LogPosition", "LogTailer", "newest_file", "position_at_end"]

_log = logging.getLogger(__name__)

_NEVER_ROTATED = Layout(0, 0, (0, 0))


class LogTailer:
    """One log source of one server; `poll()` publishes what is new as `LogLines` batches.

    Offsets are logical: for a file Languard rotated (`rotatable`), `_shift` bytes were
    collapsed away and the bytes before physical `_hole` were punched, so physical =
    logical - shift, and `_head` describes the first bytes still held (at `_hole`).
    """

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
        rotatable: bool = False,
    ) -> None:
        if chunk_size < 1 or max_line_bytes < chunk_size:
            raise ValueError("need 1 <= chunk_size <= max_line_bytes")
        self.server_id = server_id
        self.server = server
        self.source = source
        self.rotatable = rotatable
        """Languard owns this file (a game's stdout) and may cut its head."""
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
        self._shift = 0
        self._hole = 0
        self._retired = ""
        self._offset = 0
        self._read_pos = 0
        self._pending = b""
        self._mtime: float | None = None
        self._budget = 0
        self._links = 1
        self._seen_mtime = -1
        self._last = b""
        self._frozen = False
        self.caught_up = False
        """True after a poll that reached the end of the file with no other file to go to."""

    @property
    def position(self) -> LogPosition:
        """The position after the last published batch (the saved start until the first read)."""
        if self._file_id:
            return LogPosition(self._file_id, self._offset)
        return self._start or NOWHERE

    @property
    def held_from(self) -> int:
        """The physical offset of the first byte the current file still holds."""
        return self._hole

    def poll(self, max_bytes: int | None = None) -> int:
        """Read and publish what is on disk now; returns the number of lines published.

        With `max_bytes`, stop after about that many bytes (at least one chunk) so one busy
        log cannot hold the event loop; `caught_up` then stays False.
        """
        if self._frozen:  # a rotation is cutting the file: it resumes right after
            self.caught_up = True
            return 0
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

    # --- rotation -----------------------------------------------------------------------

    def rotation_target(self) -> RotationTarget | None:
        """The file to rotate (with a descriptor of its own), when this tailer may rotate it."""
        fd = self._fd
        if not self.rotatable or fd is None or not self._file_id or self._head is None:
            return None
        if self.path is None or self._links == 0:
            return None
        own = os.dup(fd)
        layout = Layout(self._shift, self._hole, self._head)
        return RotationTarget(self.path, own, self._file_id, layout, os.fstat(own).st_size)

    def rotation_target_id(self) -> str:
        return self._file_id if self._fd is not None else ""

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """No reading while the file's bytes move (polls return at once, caught up)."""
        self._frozen = True
        try:
            yield
        finally:
            self._frozen = False

    def rebase(self, layout: Layout) -> None:
        """The head was cut: the same bytes now sit at other physical offsets."""
        self._shift, self._hole, self._head = layout.shift, layout.hole, layout.head
        self._seen_mtime = -1
        held = max(0, self._read_pos - layout.first)  # the tail check needs bytes still held
        self._last = self._last[len(self._last) - min(held, len(self._last)) :]

    # --- opening ------------------------------------------------------------------------

    def _open_first(self) -> bool:
        path = self._locate()
        if path is None:
            return False
        try:
            fd = os.open(path, OPEN_FLAGS)
        except FileNotFoundError:
            return False
        start, self._start = self._start, None
        if start is not None:
            st = os.fstat(fd)
            layout = recover_layout(path, fd, st, start.file_id) if self.rotatable else None
            if layout is None and is_same_file(fd, st, start.file_id):
                layout = _NEVER_ROTATED
            if layout is not None and st.st_size + layout.shift >= start.offset:
                offset = start.offset
                if offset < layout.first:
                    offset = first_line_after(fd, layout, self._max_line)
                    _log.warning(
                        "%s/%s: bytes %d-%d were rotated out of %s before they were read",
                        self.server,
                        self.source,
                        start.offset,
                        offset,
                        path,
                    )
                self._adopt(path, fd, offset, start.file_id, layout if layout.first else None)
                return True
            old = find_saved(path.parent, start)
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
            return os.open(path, OPEN_FLAGS)
        except FileNotFoundError:
            return None

    def _orphaned(self, located: Path | None) -> bool:
        """Our file was deleted and nothing replaces it: keep no deleted inode alive."""
        if self._fd is None or self._links > 0:
            return False
        return located is None or not located.exists()

    def _adopt(
        self, path: Path, fd: int, offset: int, file_id: str, layout: Layout | None = None
    ) -> None:
        st = os.fstat(fd)
        self._fd = fd
        self._inode = (st.st_dev, st.st_ino)
        self.path = path
        self._file_id = file_id
        if layout is not None:
            self._shift, self._hole, self._head = layout.shift, layout.hole, layout.head
        else:
            parsed = parse_id(file_id)
            self._shift = self._hole = 0
            self._head = None if parsed is None else (parsed[2], parsed[3])
        self._offset = self._read_pos = offset
        self._pending = b""
        self._seen_mtime = -1
        keep = max(0, min(offset - self._shift - self._hole, TAIL))
        self._last = os.pread(fd, keep, offset - self._shift - keep)

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
        size = st.st_size + self._shift
        if bounded and size == self._read_pos and st.st_mtime_ns == self._seen_mtime:
            return 0  # idle: the common case costs one fstat
        self._seen_mtime = st.st_mtime_ns
        if replaced_in_place(
            fd, size, self._read_pos, self._shift, self._hole, self._head, self._last
        ):
            count += self._restart_truncated()
        while not bounded or self._budget > 0:
            data = os.pread(fd, self._chunk, self._read_pos - self._shift)
            if not data:
                break
            self._read_pos += len(data)
            self._budget -= len(data)
            self._last = data[-TAIL:] if len(data) >= TAIL else (self._last + data)[-TAIL:]
            self._mtime = os.fstat(fd).st_mtime
            count += self._consume(data)
        return count

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
        self._shift = self._hole = 0
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
        self._shift = self._hole = 0
        self._head = head_of(fd, st.st_size)
        file_id = make_id(st, self._head)
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
