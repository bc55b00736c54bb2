"""Copies a container's log stream into the server's console.log on the bot's side, once.

Tailers, saved offsets, rotation, `/logs` and alerts all read `RunSpec.log_path`; a
container's lines land there through this copier. Exactly once, even across `kill -9` of
the bot: before each batch is appended, a small state file beside the log records the
cursor before the batch, the batch itself and the container it came from. At start the
copier looks at the end of the log: the batch's complete lines found there were delivered
(k of them), so it resumes at the recorded cursor and skips k more. A batch is at most
`BATCH_BYTES`; the state file is replaced by rename (no fsync: this guards against the bot
dying, not the machine).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from core.backoff import Backoff
from core.docker import containers
from core.docker.client import Engine, EngineRefused, EngineUnreachable
from core.docker.logstream import LogCursor, follow

__all__ = ["BATCH_BYTES", "LogCopier", "cursor_path", "resume_point"]

_log = logging.getLogger(__name__)

BATCH_BYTES = 64 * 1024


def cursor_path(log_path: Path) -> Path:
    return log_path.with_name(f".{log_path.name}.docker-cursor")


@dataclass(frozen=True, slots=True)
class _Saved:
    container: str
    cursor: LogCursor
    batch: bytes
    inode: int = 0
    size: int = -1
    """The log's inode and size just before the batch was appended."""


def _load(path: Path) -> _Saved | None:
    try:
        raw = json.loads(path.read_text("utf-8"))
        return _Saved(
            str(raw["container"]),
            LogCursor.decode(str(raw["cursor"])),
            base64.b64decode(raw.get("batch", "")),
            int(raw.get("inode", 0)),
            int(raw.get("size", -1)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save(path: Path, saved: _Saved) -> None:
    data = {
        "container": saved.container,
        "cursor": saved.cursor.encode(),
        "batch": base64.b64encode(saved.batch).decode("ascii"),
        "inode": saved.inode,
        "size": saved.size,
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data), "utf-8")
    os.replace(tmp, path)


def _tail(log_path: Path, size: int) -> bytes:
    try:
        with open(log_path, "rb") as log:
            end = log.seek(0, os.SEEK_END)
            log.seek(max(0, end - size))
            return log.read()
    except OSError:
        return b""


def resume_point(log_path: Path, container: str) -> tuple[LogCursor, int]:
    """(cursor, lines to skip after it) for a copier of `container` into `log_path`.

    The log's size tells how much of the last batch went in; when it cannot (the log was
    rotated meanwhile), the batch's complete lines found at the log's end do. A line cut
    by the kill is cut off the log, so the line is appended again whole.
    """
    saved = _load(cursor_path(log_path))
    if saved is None or saved.container != container:
        return LogCursor(), 0
    if not saved.batch:
        return saved.cursor, 0
    try:
        st = os.stat(log_path)
    except OSError:
        return saved.cursor, 0
    grown = st.st_size - saved.size
    if st.st_ino == saved.inode and 0 <= grown <= len(saved.batch):
        whole = saved.batch.rfind(b"\n", 0, grown) + 1
        if whole < grown:
            os.truncate(log_path, saved.size + whole)
        return saved.cursor, saved.batch[:whole].count(b"\n")
    tail = _tail(log_path, len(saved.batch))
    ends = [i + 1 for i, byte in enumerate(saved.batch) if byte == 0x0A]
    for k in range(len(ends), 0, -1):
        if tail.endswith(saved.batch[: ends[k - 1]]):
            return saved.cursor, k
    return saved.cursor, 0


class LogCopier:
    """Follows one container's log into `log_path` until it stopped and all was copied."""

    def __init__(
        self,
        engine: Engine,
        container: str,
        log_path: Path,
    ) -> None:
        self.engine = engine
        self.container = container
        self.log_path = log_path
        self.delivered = 0
        """Lines appended by this copier (tests and benchmarks read it)."""
        self._cursor, self._skip = resume_point(log_path, container)
        self._task: asyncio.Task[None] | None = None
        self.finished = asyncio.Event()
        """Set once the container stopped and its last line is in the log."""

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"docker-logs-{self.container[:12]}"
            )

    async def stop(self) -> None:
        """Stop copying now (the bot is going away); the next copier resumes exactly."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def drained(self, timeout: float) -> bool:
        """Wait for the copy of a stopped container to end; False after `timeout`."""
        try:
            async with asyncio.timeout(timeout):
                await self.finished.wait()
        except TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        backoff = Backoff(base=0.2, cap=5.0)
        try:
            while True:
                try:
                    await self._copy_once()
                    state = await containers.inspect(self.engine, self.container)
                except EngineUnreachable:
                    await asyncio.sleep(backoff.next())
                    continue
                except EngineRefused as exc:
                    _log.warning("logs of %s: %s", self.container[:12], exc)
                    state = None
                backoff.reset()
                if state is None or not state.running:
                    return  # the stream of a stopped container ends after its last line
        finally:
            self.finished.set()

    async def _copy_once(self) -> None:
        stream = follow(self.engine, self.container, self._cursor)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        try:
            async for records in stream:
                if self._skip > 0:
                    skipped, records = records[: self._skip], records[self._skip :]
                    self._skip -= len(skipped)
                    self._cursor = skipped[-1].cursor
                batch = bytearray()
                before = self._cursor
                for record in records:
                    batch.extend(record.text.encode("utf-8") + b"\n")
                    if len(batch) >= BATCH_BYTES:
                        self._append(fd, before, bytes(batch))
                        batch.clear()
                        before = record.cursor
                if batch:
                    self._append(fd, before, bytes(batch))
                if records:
                    self._cursor = records[-1].cursor
        finally:
            os.close(fd)
            with contextlib.suppress(Exception):
                await stream.aclose()

    def _append(self, fd: int, before: LogCursor, batch: bytes) -> None:
        st = os.fstat(fd)
        saved = _Saved(self.container, before, batch, st.st_ino, st.st_size)
        _save(cursor_path(self.log_path), saved)
        view = memoryview(batch)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        self.delivered += batch.count(b"\n")
