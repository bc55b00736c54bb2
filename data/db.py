"""The one SQLite database: a long-lived aiosqlite connection that owns all writes.

WAL so readers never wait on the writer, foreign keys on, a busy timeout for other
processes (a second bot by mistake, the sqlite3 shell). Transactions are `BEGIN IMMEDIATE`
behind a lock, so two coroutines never interleave statements inside one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

__all__ = ["Database", "MigrationError", "is_busy", "is_disk_full"]

_log = logging.getLogger(__name__)

Params = Sequence[Any] | dict[str, Any]


class MigrationError(Exception):
    """A migration failed; it was rolled back and stays pending."""


_BUSY_RETRY_DELAYS = (0.05, 0.2, 0.5, 1.0)
"""Waits between tries of a busy BEGIN, on top of SQLite's own busy timeout."""
_BUSY_CODES = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED
_FULL_CODE = 13  # SQLITE_FULL


def is_busy(exc: BaseException) -> bool:
    """A transient error: another connection holds the lock; trying again may succeed."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return int(code) & 0xFF in _BUSY_CODES
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def is_disk_full(exc: BaseException) -> bool:
    """SQLite's SQLITE_FULL or the OS's ENOSPC: the disk (or a quota) is full."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and int(code) & 0xFF == _FULL_CODE:
        return True
    return "disk is full" in str(exc).lower()


async def _uncancellable(awaitable: Awaitable[Any]) -> Any:
    """Await to the end even if the caller is cancelled, then re-raise the cancellation.

    aiosqlite runs statements on its own thread in order; a cancelled await does not stop
    the statement, it only stops us from knowing when it finished.
    """
    future = asyncio.ensure_future(awaitable)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(future)
        except asyncio.CancelledError:
            if future.done():
                raise
            cancelled = True
            continue
        if cancelled:
            raise asyncio.CancelledError
        return result


def _split_statements(script: str) -> list[str]:
    """Split a SQL script into whole statements (triggers included), keeping their text."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in buffer.splitlines()
    ):
        raise MigrationError("the script ends with an incomplete statement")
    return statements


class Database:
    """An open database; use `Database.open(path)` and `close()`."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._lock = asyncio.Lock()
        self._in_tx: asyncio.Task[Any] | None = None

    @classmethod
    async def open(cls, path: Path, *, migrate: bool = True) -> Database:
        path.parent.mkdir(parents=True, exist_ok=True)
        _private_files(path)
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA busy_timeout=5000")
        await conn.execute("PRAGMA synchronous=NORMAL")
        db = cls(conn, path)
        if migrate:
            await db.migrate()
        return db

    async def close(self) -> None:
        await self._conn.close()

    # -- transactions -------------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Database]:
        """`BEGIN IMMEDIATE` ... `COMMIT`, or `ROLLBACK` on any exception.

        Re-entrant within the same task, so a repository call inside a caller's
        transaction joins it instead of deadlocking. A busy or locked database is retried
        at BEGIN with backoff. BEGIN, COMMIT and ROLLBACK run to completion even when the
        caller is cancelled, and the connection is never left inside a transaction once
        the lock is released (the next caller's BEGIN would fail, or worse, run without one).
        """
        task = asyncio.current_task()
        if self._in_tx is not None and self._in_tx is task:
            yield self
            return
        async with self._lock:
            await self._begin()
            self._in_tx = task
            try:
                yield self
            except BaseException:
                await self._settle("ROLLBACK")
                raise
            else:
                await self._settle("COMMIT")
            finally:
                self._in_tx = None
                if self._conn.in_transaction:  # a failed COMMIT may leave it open
                    await self._settle("ROLLBACK")

    async def _begin(self) -> None:
        delays = iter(_BUSY_RETRY_DELAYS)
        while True:
            try:
                await _uncancellable(self._conn.execute("BEGIN IMMEDIATE"))
            except asyncio.CancelledError:
                if self._conn.in_transaction:
                    await _uncancellable(self._conn.execute("ROLLBACK"))
                raise
            except sqlite3.OperationalError as exc:
                delay = next(delays, None)
                if not is_busy(exc) or delay is None:
                    raise
                _log.warning("database busy at BEGIN (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            return

    async def _settle(self, statement: str) -> None:
        """COMMIT or ROLLBACK, finished even if we are cancelled meanwhile."""
        if statement == "ROLLBACK" and not self._conn.in_transaction:
            return
        try:
            await _uncancellable(self._conn.execute(statement))
        except sqlite3.Error:
            if statement == "COMMIT":
                raise
            _log.warning("ROLLBACK failed; the connection state is left to SQLite")

    def _owned(self) -> bool:
        return self._in_tx is not None and self._in_tx is asyncio.current_task()

    # -- statements ---------------------------------------------------------------------

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one write statement (in its own transaction unless inside one); return lastrowid."""
        if self._owned():
            cursor = await self._conn.execute(sql, params)
            return cursor.lastrowid or 0
        async with self.transaction():
            cursor = await self._conn.execute(sql, params)
            return cursor.lastrowid or 0

    async def execute_rowcount(self, sql: str, params: Params = ()) -> int:
        """Run one write statement and return how many rows it touched."""
        async with self.transaction():
            cursor = await self._conn.execute(sql, params)
            return cursor.rowcount

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        async with self.transaction():
            await self._conn.executemany(sql, rows)

    async def fetchone(self, sql: str, params: Params = ()) -> aiosqlite.Row | None:
        async with self._conn.execute(sql, params) as cursor:
            row: aiosqlite.Row | None = await cursor.fetchone()
            return row

    async def fetchall(self, sql: str, params: Params = ()) -> list[aiosqlite.Row]:
        async with self._conn.execute(sql, params) as cursor:
            rows = await cursor.fetchall()
            return list(rows)

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    # -- migrations ---------------------------------------------------------------------

    async def migrate(self, folder: Path | None = None) -> list[str]:
        """Apply pending numbered migrations, each with its bookkeeping row in one transaction."""
        await self._conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (datetime('now')))"
        )
        applied = {row[0] for row in await self.fetchall("SELECT name FROM schema_migrations")}
        done: list[str] = []
        for name, script in _migration_scripts(folder):
            if name in applied:
                continue
            try:
                async with self.transaction():
                    for statement in _split_statements(script):
                        await self._conn.execute(statement)
                    await self._conn.execute(
                        "INSERT INTO schema_migrations(name) VALUES (?)", (name,)
                    )
            except sqlite3.Error as exc:
                raise MigrationError(f"migration {name} failed: {exc}") from exc
            _log.info("applied migration %s", name)
            done.append(name)
        return done


def _private_files(path: Path) -> None:
    """The database holds player IPs and the audit log: owner-only, -wal and -shm too.

    SQLite creates -wal and -shm with the mode of the database file, so creating the file
    0600 before SQLite opens it covers them; existing files are tightened.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(f"{path}{suffix}", 0o600)


def _migration_scripts(folder: Path | None) -> list[tuple[str, str]]:
    if folder is not None:
        files = sorted(p for p in folder.iterdir() if p.suffix == ".sql")
        return [(p.name, p.read_text("utf-8")) for p in files]
    package = resources.files("data") / "migrations"
    entries = sorted(
        (entry for entry in package.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    return [(entry.name, entry.read_text("utf-8")) for entry in entries]
