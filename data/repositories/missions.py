"""Mission files per server: the files in its mission folder, and a row for each.

The folder is the truth for which files exist; the rows remember who uploaded what and
cache each file's SHA-256 (keyed by size and mtime). `reconcile` brings them in step, so
a file copied in or deleted by hand shows up correctly.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import errno
import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import InvalidInput
from core.games.mission_names import mission_terrain
from data.db import Database

__all__ = ["MissionFiles", "MissionRecord", "MissionRepository"]

_log = logging.getLogger(__name__)

SPACE_MARGIN = 64 * 1024 * 1024
"""Free space an upload must leave on the disk."""
STALE_TEMP_AGE = 86400.0
"""Temp files older than this were left by a killed bot and are removed when scanning."""
TEMP_PREFIXES = (".download-", ".upload-")
TEMP_SUFFIX = ".part"


@dataclass(frozen=True, slots=True)
class MissionRecord:
    server_id: int
    filename: str
    sha256: str
    size: int
    terrain: str
    mtime_ns: int
    uploaded_by_id: int | None
    uploaded_by: str
    """Display name of the uploader; "" for a file found on disk."""
    uploaded_at: float


def _record(row: Any) -> MissionRecord:
    return MissionRecord(
        server_id=int(row["server_id"]),
        filename=str(row["filename"]),
        sha256=str(row["sha256"]),
        size=int(row["size"]),
        terrain=str(row["terrain"]),
        mtime_ns=int(row["mtime_ns"]),
        uploaded_by_id=None if row["uploaded_by_id"] is None else int(row["uploaded_by_id"]),
        uploaded_by=str(row["uploaded_by"]),
        uploaded_at=float(row["uploaded_at"]),
    )


class MissionRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list(self, server_id: int) -> list[MissionRecord]:
        rows = await self._db.fetchall(
            "SELECT * FROM missions WHERE server_id = ? ORDER BY filename", (server_id,)
        )
        return [_record(row) for row in rows]

    async def get(self, server_id: int, filename: str) -> MissionRecord | None:
        row = await self._db.fetchone(
            "SELECT * FROM missions WHERE server_id = ? AND filename = ?", (server_id, filename)
        )
        return None if row is None else _record(row)

    async def put(self, record: MissionRecord) -> None:
        """Insert or replace the row for (server, filename)."""
        await self._db.execute(
            "INSERT INTO missions(server_id, filename, sha256, size, terrain, mtime_ns,"
            " uploaded_by_id, uploaded_by, uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(server_id, filename) DO UPDATE SET sha256 = excluded.sha256,"
            " size = excluded.size, terrain = excluded.terrain, mtime_ns = excluded.mtime_ns,"
            " uploaded_by_id = excluded.uploaded_by_id, uploaded_by = excluded.uploaded_by,"
            " uploaded_at = excluded.uploaded_at",
            (
                record.server_id,
                record.filename,
                record.sha256,
                record.size,
                record.terrain,
                record.mtime_ns,
                record.uploaded_by_id,
                record.uploaded_by,
                record.uploaded_at,
            ),
        )

    async def sync(
        self, server_id: int, upserts: Iterable[MissionRecord], gone: Iterable[str]
    ) -> None:
        """Apply one reconciliation in one transaction: changed rows in, vanished rows out."""
        async with self._db.transaction():
            for record in upserts:
                await self.put(record)
            for filename in gone:
                await self.delete(server_id, filename)

    async def delete(self, server_id: int, filename: str) -> None:
        await self._db.execute(
            "DELETE FROM missions WHERE server_id = ? AND filename = ?", (server_id, filename)
        )

    async def reconcile(self, server_id: int, files: MissionFiles) -> builtins.list[MissionRecord]:
        """The rows for exactly the files in the folder; re-hash only files that moved."""
        found = await asyncio.to_thread(files.scan)
        known = {r.filename: r for r in await self.list(server_id)}
        current: list[MissionRecord] = []
        changed: list[MissionRecord] = []
        for name, size, mtime_ns in found:
            old = known.get(name)
            if old is not None and old.size == size and old.mtime_ns == mtime_ns:
                current.append(old)
                continue
            try:
                digest = await asyncio.to_thread(files.sha256, name)
            except OSError as exc:
                _log.warning("cannot read mission file %s: %s", name, exc)
                continue
            kept = old if old is not None and old.sha256 == digest else None
            record = MissionRecord(
                server_id=server_id,
                filename=name,
                sha256=digest,
                size=size,
                terrain=mission_terrain(name),
                mtime_ns=mtime_ns,
                uploaded_by_id=kept.uploaded_by_id if kept else None,
                uploaded_by=kept.uploaded_by if kept else "",
                uploaded_at=kept.uploaded_at if kept else time.time(),
            )
            changed.append(record)
            current.append(record)
        present = {r.filename for r in current}
        gone = [name for name in known if name not in present]
        if changed or gone:
            await self.sync(server_id, changed, gone)
        return sorted(current, key=lambda r: r.filename.casefold())


class MissionFiles:
    """One server's mission folder. Blocking calls: run them through `asyncio.to_thread`.

    New files arrive as temp files in the folder itself (same file system, so the final
    rename is atomic) and are renamed into place only after validation.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def create(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def scan(self) -> list[tuple[str, int, int]]:
        """(name, size, mtime_ns) of each mission file; stale temp files are removed."""
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return []
        found: list[tuple[str, int, int]] = []
        now = time.time()
        for entry in entries:
            try:
                if entry.name.startswith(TEMP_PREFIXES) and entry.name.endswith(TEMP_SUFFIX):
                    if now - entry.stat().st_mtime > STALE_TEMP_AGE:
                        os.unlink(entry.path)
                    continue
                if _listable(entry.name) and entry.is_file():
                    st = entry.stat()
                    found.append((entry.name, st.st_size, st.st_mtime_ns))
            except OSError as exc:
                _log.warning("skipping %s in %s: %s", entry.name, self.folder, exc)
        return found

    def write_temp(self, data: bytes) -> Path:
        """`data` in a new fsynced temp file in the folder; nothing left on failure."""
        self.create()
        if shutil.disk_usage(self.folder).free < len(data) + SPACE_MARGIN:
            raise InvalidInput("there is not enough free disk space for this mission")
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIXES[1], suffix=TEMP_SUFFIX, dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise InvalidInput("there is not enough free disk space for this mission") from exc
            raise
        return Path(name)

    def commit(self, tmp: Path, name: str) -> int:
        """Rename the validated `tmp` to `name` atomically (replacing it); its mtime_ns."""
        final = self.folder / name
        if final.parent != self.folder or tmp.parent != self.folder:
            raise ValueError(f"{name!r} is not a plain name in {self.folder}")
        if final.is_dir():
            raise InvalidInput("a folder named {name} is in the way; ask the operator", name=name)
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
        dir_fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return final.stat().st_mtime_ns

    def discard(self, tmp: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.folder / name)

    def sha256(self, name: str) -> str:
        digest = hashlib.sha256()
        with (self.folder / name).open("rb") as stream:
            while chunk := stream.read(1024 * 1024):
                digest.update(chunk)
        return digest.hexdigest()


def _listable(name: str) -> bool:
    """A mission file as Arma sees one: `something.terrain.pbo`, not hidden."""
    return (
        name.lower().endswith(".pbo")
        and not name.startswith(".")
        and "." in name[:-4]
        and len(name) <= 255
        and name.isprintable()
    )
