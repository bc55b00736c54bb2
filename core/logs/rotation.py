"""Rotating a game's console.log by size while the game keeps it open, losing nothing.

The game holds console.log as its stdout with O_APPEND, so a rename would not redirect it
and a truncate would race its writes. Instead the head that every reader already has is cut
off in place:

1. plan: the cut ends at a block boundary at or before the *committed* floor (no consumer
   still needs a byte before it), where the old and new first bytes differ (see below);
2. copy the head to `console.log.1` (older copies move up to `.keep`, the oldest is
   dropped), fsync;
3. write the planned layout as `pending` beside the log (`core.logs.rotation_state`);
4. cut: `fallocate(FALLOC_FL_COLLAPSE_RANGE)` (ext4, xfs) removes the head atomically with
   respect to the writer's appends; where it is missing, `FALLOC_FL_PUNCH_HOLE` frees the
   head's blocks without moving anything (the apparent size keeps growing, the disk use
   does not); where neither exists, nothing is rotated (logged once);
5. write the layout as `now`; the tailer takes it (it was frozen for steps 4-5).

Offsets are logical (a line keeps its offset), so no saved position changes. A bot killed
at any step restarts correctly: before 4 the file matches the old layout (an extra copy
may sit in `.1`: a duplicate on disk, never in delivery); after 4 it matches `pending`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from core.logs.files import HEAD, head_of
from core.logs.rotation_state import (
    Layout,
    RotationState,
    collapse,
    punch,
    save_state,
)

if TYPE_CHECKING:
    from core.logs.tailer import LogTailer

__all__ = ["RotationPolicy", "cut_mode", "plan_cut", "rotate_log", "rotated_paths"]

_log = logging.getLogger(__name__)

CutMode = Literal["collapse", "punch"]
_COPY_STEP = 8 * 1024 * 1024
_MODES: dict[int, CutMode | None] = {}


@dataclass(frozen=True, slots=True)
class RotationPolicy:
    max_bytes: int = 50 * 1024 * 1024
    """Rotate once the live file holds more than this."""
    keep: int = 5
    """Rotated copies kept (`console.log.1` newest .. `console.log.<keep>`); 0 keeps none."""


def rotated_paths(path: Path, keep: int) -> list[Path]:
    """`path.1` .. `path.<keep>`, newest first (whether they exist or not)."""
    return [path.with_name(f"{path.name}.{n}") for n in range(1, keep + 1)]


def cut_mode(directory: Path, block: int) -> CutMode | None:
    """How files in `directory` can lose their head: tried once per filesystem on a scratch
    file, so a failed cut never leaves a copy behind for nothing."""
    dev = os.stat(directory).st_dev
    if dev in _MODES:
        return _MODES[dev]
    fd, name = tempfile.mkstemp(prefix=".languard-probe.", dir=directory)
    try:
        os.write(fd, b"\0" * (2 * block) + b"\n")
        mode: CutMode | None = None
        if collapse(fd, block):
            mode = "collapse"
        elif punch(fd, 0, block):
            mode = "punch"
    finally:
        os.close(fd)
        os.unlink(name)
    if mode is None:
        _log.warning("the filesystem of %s cannot cut a file's head: logs there grow", directory)
    _MODES[dev] = mode
    return mode


def plan_cut(
    fd: int, size: int, layout: Layout, floor: int, block: int, mode: CutMode
) -> int | None:
    """The physical end of the head to cut, or None.

    Block-aligned, at or before `floor` (logical), leaving at least one byte (collapse must
    not reach the end). After the cut, the current head must not be found where a restarted
    bot would look for it (the bytes that slide into its place after a collapse; zeros
    after a punch), so the `now`-then-`pending` check of the recovery cannot be fooled;
    repetitive content moves the cut back a block at a time.
    """
    length, crc = layout.head
    if crc == zlib.crc32(bytes(length)):
        return None  # a head of zeros would look punched
    end = (floor - layout.shift) // block * block
    for _ in range(16):
        if end <= layout.hole or end >= size:
            return None
        if mode == "punch":
            return end
        slid = end + layout.hole
        if slid + length <= size and head_of(fd, length, slid) != layout.head:
            return end
        end -= block
    return None


def _copy(fd: int, start: int, end: int, dest: Path) -> None:
    """Bytes [start, end) of `fd` into `dest` (temp file, fsync, rename)."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
    try:
        pos = start
        while pos < end:
            count = min(_COPY_STEP, end - pos)
            try:
                done = os.copy_file_range(fd, out, count, pos)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                    raise
                done = os.write(out, os.pread(fd, min(count, 1024 * 1024), pos))
            if done <= 0:
                raise OSError(errno.EIO, f"short copy of the log head at {pos}")
            pos += done
        os.fsync(out)
    except BaseException:
        os.close(out)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    os.close(out)
    os.replace(tmp, dest)


def _keep_head(path: Path, fd: int, start: int, end: int, keep: int) -> None:
    """Copy the head into `path.1`, moving older copies up and dropping the oldest."""
    names = rotated_paths(path, keep)
    newest = path.with_name(f".{path.name}.new")
    _copy(fd, start, end, newest)
    for older, newer in zip(reversed(names[1:]), reversed(names[:-1]), strict=True):
        with contextlib.suppress(FileNotFoundError):
            os.replace(newer, older)
    os.replace(newest, names[0])
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _cut(path: Path, fd: int, file_id: str, old: Layout, new: Layout, mode: CutMode) -> bool:
    """Steps 3-5: pending, cut, now. False (state unchanged) when the cut was refused."""
    save_state(path, RotationState(file_id, old, new))
    if mode == "collapse":
        done = collapse(fd, new.shift - old.shift)
    else:
        done = punch(fd, old.hole, new.hole - old.hole)
    save_state(path, RotationState(file_id, new if done else old))
    return done


def _writable(fd: int) -> int:
    """A writable descriptor on the very inode `fd` reads (even if it was renamed since)."""
    return os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_CLOEXEC)


async def rotate_log(tailer: LogTailer, floor: int, policy: RotationPolicy) -> int:
    """Cut what the tailer's file holds before the committed `floor`; returns bytes cut.

    Runs the copy and the cut in threads; the tailer is frozen only around the cut. The
    caller serialises this with every other reader of the file's bytes.
    """
    target = tailer.rotation_target()
    if target is None or target.size - target.layout.hole <= policy.max_bytes:
        return 0
    path, layout, fd = target.path, target.layout, target.fd
    try:
        block = max(os.fstat(target.fd).st_blksize, 512)
        mode = await asyncio.to_thread(cut_mode, path.parent, block)
        end = None if mode is None else plan_cut(fd, target.size, layout, floor, block, mode)
        if mode is None or end is None:
            return 0
        if policy.keep > 0:
            await asyncio.to_thread(_keep_head, path, target.fd, layout.hole, end, policy.keep)
        head = head_of(target.fd, HEAD, end)
        if mode == "collapse":
            new = Layout(layout.shift + end, 0, head)
        else:
            new = Layout(layout.shift, end, head)
        done = False
        writer = _writable(target.fd)
        try:
            with tailer.frozen():
                if tailer.rotation_target_id() != target.file_id:
                    return 0  # the tailer moved on to another file meanwhile
                done = await asyncio.to_thread(
                    _cut, path, writer, target.file_id, layout, new, mode
                )
                if done:
                    tailer.rebase(new)
        finally:
            os.close(writer)
    finally:
        os.close(target.fd)
    if not done:
        return 0
    _log.info("%s: rotated %d bytes of %s (%s)", tailer.server, end - layout.hole, path, mode)
    return end - layout.hole
