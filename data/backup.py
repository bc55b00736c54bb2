"""Online backups of the database (and the files that go with it) into a dated folder.

The bot may be writing while we copy, so the database is copied with SQLite's backup API
in one step (a consistent snapshot; in WAL mode the writer is not blocked), never with a
file copy. Everything is written into a hidden temporary folder that is renamed into place
only once the copy passed `PRAGMA integrity_check`: a full disk or a crash leaves no
half-written backup that looks complete. Used by `python -m bot backup` and, later, by
scheduled backups.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

__all__ = ["BackupError", "backup_database", "create_backup", "create_backup_async"]

FOLDER_FORMAT = "%Y%m%d-%H%M%S"
_BUSY_TIMEOUT_S = 30.0


class BackupError(Exception):
    """The backup failed and nothing was left behind; the message is one line to act on."""


def backup_database(source: Path, target: Path) -> None:
    """Copy the live database `source` to the new file `target` (0600) and verify it.

    One backup step copies every page under a single read transaction, so the copy is the
    database as of one commit even while another connection writes. The copy is switched
    to a rollback journal so it is one self-contained file.
    """
    if not source.is_file():
        raise BackupError(f"there is no database at {source}; nothing to back up")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    src = sqlite3.connect(source, timeout=_BUSY_TIMEOUT_S)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # pages=-1: all pages in one step, one consistent snapshot
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    finally:
        src.close()
    check = sqlite3.connect(target)
    try:
        rows = check.execute("PRAGMA integrity_check").fetchall()
    finally:
        check.close()
    if [tuple(row) for row in rows] != [("ok",)]:
        first = str(rows[0][0]) if rows else "no answer"
        raise BackupError(f"the copy of {source.name} failed its integrity check: {first}")
    os.chmod(target, 0o600)
    _fsync_file(target)


def create_backup(
    database: Path,
    root: Path,
    *,
    extra_files: Sequence[Path] = (),
    now: datetime | None = None,
) -> Path:
    """Back up `database` and the `extra_files` that exist into `root/<YYYYmmdd-HHMMSS>/`.

    The folder is 0700 and the files 0600. On any error the partial folder is removed and
    `BackupError` says why in one line. Returns the new folder.
    """
    if not database.is_file():
        raise BackupError(f"there is no database at {database}; nothing to back up")
    stamp = (now or datetime.now()).strftime(FOLDER_FORMAT)
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        staging = Path(tempfile.mkdtemp(prefix=f".{stamp}.", suffix=".partial", dir=root))
    except OSError as exc:
        raise BackupError(_describe(exc, root)) from None
    try:
        os.chmod(staging, 0o700)
        backup_database(database, staging / database.name)
        for path in extra_files:
            _copy_private(path, staging / path.name)
        _fsync_dir(staging)
        folder = _publish(staging, root, stamp)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, BackupError):
            raise
        if isinstance(exc, OSError | sqlite3.Error):
            raise BackupError(_describe(exc, root)) from None
        raise
    return folder


async def create_backup_async(
    database: Path,
    root: Path,
    *,
    extra_files: Sequence[Path] = (),
    now: datetime | None = None,
) -> Path:
    """`create_backup` on a worker thread, so the event loop keeps running meanwhile."""
    return await asyncio.to_thread(create_backup, database, root, extra_files=extra_files, now=now)


def _copy_private(source: Path, target: Path) -> None:
    """Copy a small file (the secret key) to a new 0600 file, if it exists."""
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise BackupError(f"cannot read {source}: {exc.strerror or exc}") from None
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _publish(staging: Path, root: Path, stamp: str) -> Path:
    """Rename the finished folder to its dated name (`-2`, `-3`... within one second)."""
    for attempt in range(1, 100):
        folder = root / (stamp if attempt == 1 else f"{stamp}-{attempt}")
        if folder.exists():
            continue
        os.rename(staging, folder)
        _fsync_dir(root)
        return folder
    raise BackupError(f"too many backups named {stamp} in {root}")


def _describe(exc: BaseException, root: Path) -> str:
    text = str(exc).lower()
    if (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)) or any(
        word in text for word in ("disk is full", "too large", "no space")
    ):
        return f"the disk is full at {root}; free some space or use --to another disk"
    if isinstance(exc, PermissionError):
        return f"cannot write to {root}: permission denied"
    if isinstance(exc, FileExistsError | NotADirectoryError):
        return f"cannot write to {root}: it is not a folder"
    if isinstance(exc, sqlite3.Error):
        if getattr(exc, "sqlite_errorname", "").startswith(
            ("SQLITE_IOERR_WRITE", "SQLITE_IOERR_FSYNC")
        ):
            return f"writing to {root} failed (is the disk full?): {exc}"
        return f"the database could not be copied: {exc}"
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"cannot write to {root}: {reason}"


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems refuse fsync on a folder
        _fsync_file(path)
