"""What a rotated log looks like now, kept beside it so a restarted bot can trust it.

Rotating cuts the consumed head off the live file (see `core.logs.rotation`). Offsets stay
*logical*: a line keeps the offset it had before the cut, so every saved position (the
reader's, each channel's) stays valid with no database rewrite. What maps logical to
physical is a `Layout`, stored as JSON in `<log>.rotation`:

* `shift`: bytes collapsed away (physical = logical - shift);
* `hole`: the physical offset of the first byte still held (after a punched prefix);
* `head`: (length, crc) of the first bytes still held, at `hole`; this replaces the
  checksum of the file id, which described bytes that are gone.

Before each cut the planned layout is written as `pending`; after it, as `now`. A bot killed
between the two finds the file matching one of them, checking `now` first: the planner only
cuts where the two cannot both match (see `core.logs.rotation.plan_cut`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.fsutil import atomic_write
from core.logs.files import head_of, parse_id

__all__ = [
    "Layout",
    "RotationState",
    "RotationTarget",
    "collapse",
    "discard_state",
    "held_start",
    "load_state",
    "logical_size",
    "punch",
    "recover_layout",
    "save_state",
    "state_path",
]

_log = logging.getLogger(__name__)

_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_FALLOC_FL_COLLAPSE_RANGE = 0x08
_UNSUPPORTED = frozenset({errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL, errno.ENOTTY})


@dataclass(frozen=True, slots=True)
class Layout:
    shift: int
    hole: int
    head: tuple[int, int]

    @property
    def first(self) -> int:
        """The logical offset of the first byte still in the file."""
        return self.shift + self.hole

    def to_json(self) -> dict[str, Any]:
        return {"shift": self.shift, "hole": self.hole, "head": list(self.head)}

    @classmethod
    def from_json(cls, data: Any) -> Layout:
        head = data["head"]
        return cls(int(data["shift"]), int(data["hole"]), (int(head[0]), int(head[1])))


@dataclass(frozen=True, slots=True)
class RotationState:
    file_id: str
    now: Layout
    pending: Layout | None = None


@dataclass(frozen=True, slots=True)
class RotationTarget:
    """What the rotator needs of the file a tailer reads; `fd` is the rotator's to close."""

    path: Path
    fd: int
    file_id: str
    layout: Layout
    size: int
    """Physical size when asked."""


def state_path(path: Path) -> Path:
    return path.with_name(path.name + ".rotation")


def load_state(path: Path) -> RotationState | None:
    """The state kept beside `path`, or None (never rotated, or unreadable: then unused)."""
    try:
        data = json.loads(state_path(path).read_bytes())
        pending = data.get("pending")
        return RotationState(
            str(data["file_id"]),
            Layout.from_json(data["now"]),
            None if pending is None else Layout.from_json(pending),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        _log.warning("ignoring the unreadable rotation state of %s: %s", path, exc)
        return None


def save_state(path: Path, state: RotationState) -> None:
    """Write the state durably (temp file, fsync, rename) before anything relies on it."""
    data = {
        "file_id": state.file_id,
        "now": state.now.to_json(),
        "pending": None if state.pending is None else state.pending.to_json(),
    }
    atomic_write(state_path(path), json.dumps(data).encode(), mode=0o640)


def _matches(fd: int, size: int, layout: Layout) -> bool:
    length, crc = layout.head
    if size < layout.hole + length:
        return False
    return head_of(fd, length, layout.hole) == (length, crc)


def recover_layout(path: Path, fd: int, st: os.stat_result, file_id: str) -> Layout | None:
    """The layout of the open file `file_id` names, if `path`'s state says it was rotated.

    None when there is no state, it belongs to another file, or the file matches neither
    layout (rewritten by someone else): the caller then treats the file as unknown.
    """
    state = load_state(path)
    parsed = parse_id(file_id)
    if state is None or parsed is None or state.file_id != file_id:
        return None
    if (st.st_dev, st.st_ino) != parsed[:2]:
        return None
    for layout in (state.now, state.pending):
        if layout is not None and _matches(fd, st.st_size, layout):
            return layout
    return None


# --- cutting ------------------------------------------------------------------------------


def _fallocate() -> Any:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.fallocate
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
    function.restype = ctypes.c_int
    return function


_FALLOCATE = _fallocate()


def _call(fd: int, mode: int, offset: int, length: int) -> bool:
    """fallocate(2); False when this filesystem (or platform) does not do `mode`."""
    if _FALLOCATE is None:
        return False
    if _FALLOCATE(fd, mode, offset, length) == 0:
        return True
    err = ctypes.get_errno()
    if err in _UNSUPPORTED:
        return False
    raise OSError(err, os.strerror(err))


def collapse(fd: int, length: int) -> bool:
    """Remove the first `length` bytes (block-aligned) in place: atomic against an O_APPEND
    writer, which keeps writing at the new end (ext4, xfs)."""
    return _call(fd, _FALLOC_FL_COLLAPSE_RANGE, 0, length)


def punch(fd: int, offset: int, length: int) -> bool:
    """Free the blocks of a range without moving anything (ext4, xfs, btrfs, tmpfs)."""
    return _call(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length)


def discard_state(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        state_path(path).unlink()


def logical_size(path: Path) -> int:
    """How many bytes were ever written to `path` (its size plus what rotation collapsed)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    try:
        st = os.fstat(fd)
        state = load_state(path)
        if state is None:
            return st.st_size
        layout = recover_layout(path, fd, st, state.file_id)
        return st.st_size + (0 if layout is None else layout.shift)
    finally:
        os.close(fd)


def held_start(path: Path) -> int:
    """The physical offset of the first byte `path` still holds (after a punched head)."""
    state = load_state(path)
    if state is None:
        return 0
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    try:
        layout = recover_layout(path, fd, os.fstat(fd), state.file_id)
        return 0 if layout is None else layout.hole
    finally:
        os.close(fd)
