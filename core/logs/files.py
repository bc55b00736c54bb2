"""How a log file is named across restarts: positions, file ids, and finding the newest file.

A file id is `dev:ino:head length:head crc`, the inode plus a checksum of the file's first
bytes (up to 4 KiB), so a replaced file, or an inode reused while the bot was down, is told
apart from "the same file". A `/n` suffix marks the n-th rewrite of one inode with the same
first bytes (a truncation). A file Languard rotates keeps the id it had before its head was
cut; `core.logs.rotation` remembers what its head is now.
"""

from __future__ import annotations

import fnmatch
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "HEAD",
    "NOWHERE",
    "OPEN_FLAGS",
    "TAIL",
    "LogPosition",
    "find_saved",
    "head_of",
    "is_same_file",
    "make_id",
    "newest_file",
    "parse_id",
    "position_at_end",
]

HEAD = 4096
"""Bytes at the start of a file whose checksum goes into its id."""
TAIL = 64
"""Bytes before the read position that must still be there for a file to be unchanged."""
OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True, slots=True)
class LogPosition:
    """Where reading resumes: `offset` bytes into the file named by `file_id` ("" = none yet).

    For a rotated file the offset counts the bytes rotated away too, so it never moves
    backwards and stays valid across a rotation.
    """

    file_id: str
    offset: int


NOWHERE = LogPosition("", 0)


def head_of(fd: int, size: int, at: int = 0) -> tuple[int, int]:
    """(length, crc32) of up to `size` bytes at `at` (the first bytes still in the file)."""
    head = os.pread(fd, min(size, HEAD), at)
    return len(head), zlib.crc32(head)


def make_id(st: os.stat_result, head: tuple[int, int]) -> str:
    return f"{st.st_dev}:{st.st_ino}:{head[0]}:{head[1]:08x}"


def parse_id(file_id: str) -> tuple[int, int, int, int] | None:
    """(dev, ino, head length, head crc) of an id, ignoring a truncation generation suffix."""
    try:
        dev, ino, length, crc = file_id.split("/", 1)[0].split(":")
        return int(dev), int(ino), int(length), int(crc, 16)
    except ValueError:
        return None


def is_same_file(fd: int, st: os.stat_result, file_id: str) -> bool:
    """Whether the open file is the one `file_id` names: same inode and same first bytes."""
    parsed = parse_id(file_id)
    if parsed is None:
        return False
    dev, ino, length, crc = parsed
    if (st.st_dev, st.st_ino) != (dev, ino) or st.st_size < length:
        return False
    return head_of(fd, length) == (length, crc)


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
    """A position just past the last complete line of `path`, to follow only what comes next.

    Meant for files Languard never rotated (the offset is a plain byte offset).
    """
    try:
        fd = os.open(path, OPEN_FLAGS)
    except FileNotFoundError:
        return NOWHERE
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
            return NOWHERE
        return LogPosition(make_id(st, head_of(fd, st.st_size)), end)
    finally:
        os.close(fd)


def find_saved(directory: Path, start: LogPosition) -> tuple[Path, int] | None:
    """The file of a saved position, if it still sits in `directory` under any name (an old
    RPT); returns it with an open descriptor, the caller's to close."""
    parsed = parse_id(start.file_id)
    if parsed is None:
        return None
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.inode() != parsed[1] or not entry.is_file(follow_symlinks=False):
                    continue
                fd = os.open(entry.path, OPEN_FLAGS)
                try:
                    st = os.fstat(fd)
                    if is_same_file(fd, st, start.file_id) and st.st_size >= start.offset:
                        return Path(entry.path), fd
                except OSError:
                    os.close(fd)
                    raise
                os.close(fd)
    except OSError:
        return None
    return None
