"""One bot per data folder: two would both start, stop and adopt the same game servers.

An advisory `flock` on a file in the data folder; the kernel drops it when the holder dies,
even by SIGKILL, so a crash never leaves a stale lock. The holder's pid is written into
the file so the second bot can say who holds it. The descriptor is close-on-exec (Python's
default), so a game server started by the bot never inherits the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

__all__ = ["LOCK_FILE_NAME", "InstanceLock", "InstanceLocked"]

LOCK_FILE_NAME = "languard.lock"


class InstanceLocked(Exception):
    """Another process holds the lock; `pid` is its pid when it could be read."""

    def __init__(self, path: Path, pid: int | None) -> None:
        self.path = path
        self.pid = pid
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(f"another Languard ({holder}) is already running on {path.parent}")


class InstanceLock:
    """`with InstanceLock(data_dir):` holds the lock for the block (or `acquire`/`release`)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock at once or raise InstanceLocked (never waits)."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise InstanceLocked(self.path, pid) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except OSError:
            pass  # a full disk: the lock still holds, only the pid is not shown to others
        self._fd = fd

    def release(self) -> None:
        """Let go (the file stays: removing it would race a bot that just opened it)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the only descriptor drops the flock

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and len(text) < 12 else None
