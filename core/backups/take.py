"""Taking one backup of a server's files: select, archive, then manifest and publish.

Split in two so the caller can let the game write again (Minecraft's `save-on`) as soon as
the files are read: `copy_files` does the reading and leaves a staging folder without a
manifest; `publish` writes the manifest last and renames the folder into the list. Both
run on a worker thread; neither knows about the game or the supervisor.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from core.backups.archive import Progress, write_archive
from core.backups.layout import ARCHIVE_NAMES, BackupKind
from core.backups.manifest import Manifest
from core.backups.selection import rules_for, select
from core.backups.store import BackupStore

__all__ = ["Staged", "TakeRequest", "copy_files", "discard", "publish"]


@dataclass(frozen=True, slots=True)
class TakeRequest:
    server: str
    game: str
    folder: Path
    stamp: str
    created: float
    kind: BackupKind
    note: str = ""
    cold: bool = False
    excludes: tuple[str, ...] = ()
    database: str | None = None
    compression: str = "gzip"


@dataclass(frozen=True, slots=True)
class Staged:
    """A backup whose files are written but that is not listed yet."""

    staging: Path
    manifest: Manifest


def copy_files(store: BackupStore, request: TakeRequest, progress: Progress) -> Staged:
    """Archive the server's files into a new staging folder (removed again on failure)."""
    rules = rules_for(request.game, request.folder, request.excludes)
    selection = select(request.folder, rules)
    staging = store.staging(request.server, request.stamp)
    try:
        target = staging / ARCHIVE_NAMES[request.compression]
        archive, records = write_archive(
            request.folder,
            selection.dirs,
            selection.files,
            target,
            request.compression,
            progress,
        )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    manifest = Manifest(
        server=request.server,
        game=request.game,
        created=request.created,
        kind=request.kind,
        archive=archive,
        files=records,
        dirs=selection.dirs,
        note=request.note,
        cold=request.cold,
        excludes=request.excludes,
        database=request.database,
        skipped_links=selection.skipped_links,
    )
    return Staged(staging, manifest)


def publish(store: BackupStore, staged: Staged, stamp: str) -> str:
    """Write the manifest (last) and rename the folder into the list; its name."""
    try:
        store.write_manifest(staged.staging, staged.manifest)
        return store.publish(staged.staging, stamp)
    except BaseException:
        shutil.rmtree(staged.staging, ignore_errors=True)
        raise


def discard(staged: Staged) -> None:
    shutil.rmtree(staged.staging, ignore_errors=True)
