"""Names on disk that several modules (and the supervisor) agree on, and nothing else.

A backup is a folder `<root>/<server>/<YYYYmmddTHHMMSSZ>[-n]/` holding the archive
(`files.tar.zst` or `files.tar.gz`) and `manifest.json`, written last: a folder without a
manifest is never listed. Work in progress lives in dot-folders (`.<stamp>.partial-…`,
`.<name>.deleting-…`) that are never listed and are removed by the next run.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum

__all__ = [
    "ARCHIVE_NAMES",
    "DATABASE_FOLDER",
    "MANIFEST",
    "NAME_PATTERN",
    "RESTORE_DIR",
    "BackupKind",
    "Step",
    "stamp_of",
]

MANIFEST = "manifest.json"
ARCHIVE_NAMES = {"zstd": "files.tar.zst", "gzip": "files.tar.gz"}
DATABASE_FOLDER = "_database"
"""Where the database snapshots of each run go, beside the servers' folders (a server
name never starts with `_`)."""
RESTORE_DIR = ".languard-restore"
"""Inside a server's folder while a restore stages and swaps its files. The supervisor
refuses to start a server whose folder holds it, and no backup ever includes it."""
PARTIAL_SUFFIX = ".partial-"
DELETING_SUFFIX = ".deleting-"
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
NAME_PATTERN = re.compile(r"[0-9]{8}T[0-9]{6}Z(?:-[0-9]{1,2})?")
"""A backup's name: its UTC time, and `-2`, `-3`... for several in one second."""


class BackupKind(StrEnum):
    MANUAL = "manual"
    SCHEDULED = "scheduled"
    PRE_RESTORE = "pre-restore"
    """Taken by a restore just before it replaced the files: the state it undid."""


class Step(StrEnum):
    """What a backup or restore job is doing, for progress messages (a front end
    translates the value)."""

    DATABASE = "database"
    PAUSING = "pausing saves"
    STOPPING = "stopping the server"
    COPYING = "copying files"
    RESUMING = "resuming saves"
    STARTING = "starting the server"
    MIRRORING = "copying to the second destination"
    PRUNING = "pruning old backups"
    CHECKING = "checking the backup"
    SAVING_CURRENT = "saving the current state"
    EXTRACTING = "unpacking"
    REPLACING = "replacing files"
    VERIFYING = "verifying the restored files"


def stamp_of(moment: datetime | None = None) -> str:
    """The name part of a backup taken at `moment` (now by default), in UTC."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime(STAMP_FORMAT)
