"""Checks a tailer makes on the bytes of the file it follows: was the file rewritten in place
under it, and where does the first whole line start once a rotation cut the file's head.

Apart from the tailer because these only read a descriptor at the offsets they are given;
the tailer keeps the positions and decides what to do about the answer.
"""

from __future__ import annotations

import os

from core.logs.files import head_of
from core.logs.rotation_state import Layout

__all__ = ["first_line_after", "replaced_in_place"]


def replaced_in_place(
    fd: int,
    size: int,
    read_pos: int,
    shift: int,
    hole: int,
    head: tuple[int, int] | None,
    last: bytes,
) -> bool:
    """Truncated, or rewritten: the first bytes or the last bytes read are not there now.

    Catches a copy-truncate even when the new content has already grown past our offset;
    only a rewrite identical in both places goes unseen (and then it changed nothing).
    `size` and `read_pos` are logical; `shift`, `hole` and `head` are the file's layout
    (see `core.logs.tailer.LogTailer`), `last` the bytes read just before `read_pos`.
    """
    if size < read_pos:
        return True
    held = size - shift
    if head is not None and (held < hole + head[0] or head_of(fd, head[0], hole) != head):
        return True
    at = read_pos - shift - len(last)
    return bool(last) and os.pread(fd, len(last), at) != last


def first_line_after(fd: int, layout: Layout, max_line: int) -> int:
    """The logical offset of the first line that starts in what the file still holds."""
    data = os.pread(fd, max_line, layout.hole)
    cut = data.find(b"\n") + 1
    return layout.first + (cut or len(data))
