"""The backup folders of each server, in the backup root and the optional second destination.

Everything is written under a dot-name and renamed into place once complete (the manifest
last), and deleted by renaming it out of sight first, so a crash or a full disk never
leaves a half-written or half-deleted backup that lists. Those dot-folders are removed by
`clean_leftovers` before the next run. The second destination is a mounted path: its root
must already exist (it is never created, or an unmounted disk would fill the root disk).
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from core.backups.layout import (
    DELETING_SUFFIX,
    MANIFEST,
    NAME_PATTERN,
    PARTIAL_SUFFIX,
    BackupKind,
)
from core.backups.manifest import Manifest, ManifestError
from core.backups.retention import RetentionPolicy, to_prune
from core.fsutil import atomic_write

__all__ = ["BackupInfo", "BackupStore", "is_disk_full", "prune_database_snapshots"]

_log = logging.getLogger(__name__)

_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_CACHE_MOST = 4096


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _FULL


@dataclass(frozen=True, slots=True)
class BackupInfo:
    """One listed backup, as `/backup list` shows it."""

    server: str
    name: str
    created: float
    kind: BackupKind
    note: str
    cold: bool
    size: int
    """Bytes on disk (archive and manifest)."""
    files: int
    data_bytes: int
    """Bytes of the files it holds, uncompressed."""
    compression: str
    database: str | None
    mirrored: bool = False


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class BackupStore:
    def __init__(self, root: Path, mirror: Path | None = None) -> None:
        self.root = root
        self.mirror = mirror
        self._cache: dict[tuple[str, int, int], BackupInfo] = {}

    def folder(self, server: str, root: Path | None = None) -> Path:
        return (root or self.root) / server

    # -- writing ---------------------------------------------------------------------------

    def staging(self, server: str, stamp: str) -> Path:
        """A new private dot-folder to write a backup into."""
        folder = self.folder(server)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return Path(tempfile.mkdtemp(prefix=f".{stamp}{PARTIAL_SUFFIX}", dir=folder))

    @staticmethod
    def write_manifest(staging: Path, manifest: Manifest) -> None:
        atomic_write(staging / MANIFEST, manifest.to_json(), mode=0o600)

    @staticmethod
    def publish(staging: Path, stamp: str) -> str:
        """Rename a complete staging folder to its name (`-2`... within one second)."""
        for attempt in range(1, 100):
            name = stamp if attempt == 1 else f"{stamp}-{attempt}"
            try:
                os.rename(staging, staging.parent / name)
            except OSError as exc:
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    continue
                raise
            _fsync_dir(staging.parent)
            return name
        raise FileExistsError(errno.EEXIST, "too many backups in one second", stamp)

    def copy_to_mirror(self, server: str, name: str) -> None:
        """Copy a published backup to the second destination (OSError when it cannot)."""
        if self.mirror is None:
            return
        if not self.mirror.is_dir():
            raise FileNotFoundError(errno.ENOENT, "the second destination is not mounted")
        target_dir = self.folder(server, self.mirror)
        target_dir.mkdir(exist_ok=True, mode=0o700)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}{PARTIAL_SUFFIX}", dir=target_dir))
        try:
            source = self.folder(server) / name
            for item in sorted(source.iterdir(), key=lambda p: p.name == MANIFEST):
                shutil.copyfile(item, staging / item.name)  # the manifest last
                fd = os.open(staging / item.name, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.chmod(staging / item.name, 0o600)
            os.rename(staging, target_dir / name)
            _fsync_dir(target_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    # -- reading ---------------------------------------------------------------------------

    def _roots(self) -> list[Path]:
        roots = [self.root]
        if self.mirror is not None and self.mirror.is_dir():
            roots.append(self.mirror)
        return roots

    def load(self, server: str, name: str, root: Path | None = None) -> tuple[Path, Manifest]:
        """The folder and checked manifest of a listed backup (FileNotFoundError when
        there is none by that name, ManifestError when its manifest is damaged)."""
        if not NAME_PATTERN.fullmatch(name):
            raise FileNotFoundError(errno.ENOENT, "no such backup", name)
        folder = self.folder(server, root) / name
        with (folder / MANIFEST).open("rb") as handle:
            return folder, Manifest.from_json(handle.read())

    def list(self, server: str, root: Path | None = None) -> list[BackupInfo]:
        """Complete backups of `server`, newest first (damaged manifests are skipped)."""
        folder = self.folder(server, root)
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return []
        mirrored = set()
        if root is None and self.mirror is not None and self.mirror.is_dir():
            mirrored = {b.name for b in self.list(server, self.mirror)}
        found: list[BackupInfo] = []
        for entry in entries:
            if not NAME_PATTERN.fullmatch(entry.name) or not entry.is_dir(follow_symlinks=False):
                continue
            info = self._info(server, Path(entry.path))
            if info is not None:
                if info.name in mirrored:
                    info = replace(info, mirrored=True)
                found.append(info)
        return sorted(found, key=lambda b: (b.created, b.name), reverse=True)

    def _info(self, server: str, folder: Path) -> BackupInfo | None:
        try:
            stat = (folder / MANIFEST).stat()
        except OSError:
            return None  # no manifest: never listed
        key = (str(folder), stat.st_mtime_ns, stat.st_size)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        try:
            manifest = Manifest.from_json((folder / MANIFEST).read_bytes())
            size = stat.st_size + (folder / manifest.archive.name).stat().st_size
        except (OSError, ManifestError) as exc:
            _log.warning("backup %s of %s is damaged: %s", folder.name, server, exc)
            return None
        info = BackupInfo(
            server=server,
            name=folder.name,
            created=manifest.created,
            kind=manifest.kind,
            note=manifest.note,
            cold=manifest.cold,
            size=size,
            files=len(manifest.files),
            data_bytes=manifest.total_bytes,
            compression=manifest.archive.compression,
            database=manifest.database,
        )
        if len(self._cache) >= _CACHE_MOST:
            self._cache.clear()
        self._cache[key] = info
        return info

    # -- removing --------------------------------------------------------------------------

    def delete(self, server: str, name: str) -> bool:
        """Remove a backup from both destinations; False when neither had it."""
        if not NAME_PATTERN.fullmatch(name):
            return False
        found = False
        for root in self._roots():
            folder = self.folder(server, root)
            source = folder / name
            if not source.is_dir():
                continue
            found = _remove(folder, name) or found
        return found

    def clean_leftovers(self, server: str) -> int:
        """Remove what crashed or failed runs left (never a listed backup)."""
        removed = 0
        for root in self._roots():
            try:
                entries = list(os.scandir(self.folder(server, root)))
            except OSError:
                continue
            for entry in entries:
                if entry.name.startswith(".") and (
                    PARTIAL_SUFFIX in entry.name or DELETING_SUFFIX in entry.name
                ):
                    shutil.rmtree(entry.path, ignore_errors=True)
                    removed += 1
        return removed

    def prune(
        self, server: str, policy: RetentionPolicy, now: float, protect: frozenset[str]
    ) -> builtins.list[str]:
        """Apply the retention policy in both destinations; the names deleted."""
        deleted: builtins.list[str] = []
        for root in self._roots():
            listed = [(b.name, b.created) for b in self.list(server, root)]
            for name in to_prune(listed, policy, now, protect):
                if _remove(self.folder(server, root), name) and name not in deleted:
                    deleted.append(name)
        return deleted


def _remove(folder: Path, name: str) -> bool:
    """Rename a backup out of the list at once, then delete it (False: already gone)."""
    doomed = Path(tempfile.mkdtemp(prefix=f".{name}{DELETING_SUFFIX}", dir=folder))
    try:
        os.rename(folder / name, doomed / name)
    except FileNotFoundError:
        found = False
    else:
        _fsync_dir(folder)
        found = True
    shutil.rmtree(doomed, ignore_errors=True)
    return found


_DB_NAME = re.compile(r"([0-9]{8}-[0-9]{6})(?:-[0-9]{1,2})?")


def prune_database_snapshots(folder: Path, policy: RetentionPolicy, now: float) -> list[str]:
    """Apply the retention policy to the dated database snapshots of `data.backup`."""
    try:
        names = [e.name for e in os.scandir(folder) if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []
    dated: list[tuple[str, float]] = []
    for name in names:
        if name.startswith(".") and name.endswith(".partial"):  # a crashed data.backup run
            shutil.rmtree(folder / name, ignore_errors=True)
        match = _DB_NAME.fullmatch(name)
        if match is not None:
            created = datetime.strptime(match[1], "%Y%m%d-%H%M%S").timestamp()  # local time
            dated.append((name, created))
    doomed = to_prune(dated, policy, now)
    for name in doomed:
        shutil.rmtree(folder / name, ignore_errors=True)
    return doomed
