"""The manifest of a backup: what it holds, each file's size and SHA-256, written last.

It is also what a restore trusts least: a manifest read from disk is checked field by
field, and every path in it must be a plain relative path (no `/` at the start, no `..`,
nothing under the restore's staging folder), or the whole backup is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from core.backups.layout import RESTORE_DIR, BackupKind

__all__ = ["FORMAT", "ArchiveInfo", "FileRecord", "Manifest", "ManifestError", "safe_path"]

FORMAT = 1
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
MAX_PATH_CHARS = 4096
MAX_NOTE_CHARS = 200
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ManifestError(ValueError):
    """The manifest (or an archive entry) is malformed or unsafe; the text says which."""


def safe_path(name: object) -> str:
    """`name` if it is a safe relative path inside a server folder, else ManifestError."""
    if not isinstance(name, str) or not name or len(name) > MAX_PATH_CHARS:
        raise ManifestError("an entry has no usable name")
    if name.startswith("/") or _CONTROL.search(name):
        raise ManifestError(f"unsafe entry {name[:100]!r}")
    parts = name.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts) or parts[0] == RESTORE_DIR:
        raise ManifestError(f"unsafe entry {name[:100]!r}")
    return "/".join(parts)


@dataclass(frozen=True, slots=True)
class FileRecord:
    path: str
    size: int
    sha256: str
    mode: int = 0o644
    mtime: float = 0.0


@dataclass(frozen=True, slots=True)
class ArchiveInfo:
    name: str
    size: int
    sha256: str
    compression: str


@dataclass(frozen=True, slots=True)
class Manifest:
    server: str
    game: str
    created: float
    kind: BackupKind
    archive: ArchiveInfo
    files: tuple[FileRecord, ...]
    dirs: tuple[str, ...]
    note: str = ""
    cold: bool = False
    excludes: tuple[str, ...] = ()
    """The server's own exclusion globs when it was taken (a restore leaves those alone)."""
    database: str | None = None
    """The database snapshot of the same run, relative to the backup root."""
    skipped_links: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> bytes:
        body = asdict(self)
        body["format"] = FORMAT
        body["kind"] = self.kind.value
        body["extra"] = dict(self.extra)
        return json.dumps(body, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """Parse and check a manifest read from disk (ManifestError when it is not one)."""
        if len(data) > MAX_MANIFEST_BYTES:
            raise ManifestError("the manifest is too large")
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise ManifestError("the manifest is not JSON") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise ManifestError("the manifest has an unknown format")
        try:
            archive = raw["archive"]
            files = tuple(_file(item) for item in raw["files"])
            dirs = tuple(safe_path(d) for d in raw["dirs"])
            manifest = cls(
                server=_text(raw["server"], 64),
                game=_text(raw["game"], 64),
                created=float(raw["created"]),
                kind=BackupKind(raw["kind"]),
                archive=ArchiveInfo(
                    name=_text(archive["name"], 64),
                    size=_count(archive["size"]),
                    sha256=_digest(archive["sha256"]),
                    compression=_text(archive["compression"], 16),
                ),
                files=files,
                dirs=dirs,
                note=_text(raw.get("note", ""), MAX_NOTE_CHARS, empty=True),
                cold=bool(raw.get("cold", False)),
                excludes=tuple(_text(g, 200) for g in raw.get("excludes", ())),
                database=None if raw.get("database") is None else _text(raw["database"], 200),
                skipped_links=_count(raw.get("skipped_links", 0)),
                extra=dict(raw.get("extra") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ManifestError):
                raise
            raise ManifestError("the manifest misses a field or has a wrong one") from None
        if len({f.path for f in files}) != len(files):
            raise ManifestError("the manifest lists a file twice")
        return manifest


def _text(value: object, most: int, *, empty: bool = False) -> str:
    if not isinstance(value, str) or len(value) > most or (not value and not empty):
        raise ManifestError("the manifest has a wrong text field")
    return value


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ManifestError("the manifest has a wrong number")
    return value


def _digest(value: object) -> str:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise ManifestError("the manifest has a wrong checksum")
    return value


def _file(item: object) -> FileRecord:
    if not isinstance(item, dict):
        raise ManifestError("the manifest has a wrong file entry")
    mode = _count(item.get("mode", 0o644)) & 0o777
    return FileRecord(
        path=safe_path(item["path"]),
        size=_count(item["size"]),
        sha256=_digest(item["sha256"]),
        mode=mode,
        mtime=float(item.get("mtime", 0.0)),
    )
