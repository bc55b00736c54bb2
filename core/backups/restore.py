"""Putting a backup back: stage everything, then swap, so a crash leaves old or new files.

The archive is unpacked and checked against its manifest into `<folder>/.languard-restore/
new/` (same disk as the server's files, so each file moves with one rename). Then a
journal is written, and only then are files renamed into place. A crash before the journal
leaves the server's files untouched (the staging is dropped at the next start); a crash
after it is finished at the next start by replaying the journal, which is idempotent
(`recover`). The new files were verified before the first rename, so the replay can only
complete them.

What is replaced: every file the backup holds, and, within the top-level folders and files
the backup holds, every file the backup's rules would have kept but the backup does not
hold (a region file the world grew since). Everything else in the folder (the game
install, mods, logs, excluded paths) is left alone. No path is ever written through a
symbolic link: a link where a folder must be is moved aside first.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from core.backups.archive import Progress, extract_verified, hash_file
from core.backups.layout import RESTORE_DIR
from core.backups.manifest import Manifest, safe_path
from core.backups.selection import rules_for, select
from core.fsutil import atomic_write

__all__ = ["RestorePlan", "apply", "plan", "recover", "stage", "verify_restored"]

JOURNAL = "journal.json"
NEW = "new"
OLD = "old"


@dataclass(frozen=True, slots=True)
class RestorePlan:
    backup: str
    writes: tuple[str, ...]
    dirs: tuple[str, ...]
    deletes: tuple[str, ...]
    stale_dirs: tuple[str, ...]


def staging_of(folder: Path) -> Path:
    return folder / RESTORE_DIR


def stage(folder: Path, backup: Path, manifest: Manifest, progress: Progress) -> None:
    """Unpack and check the backup into the staging folder (which the caller created)."""
    extract_verified(backup, manifest, staging_of(folder) / NEW, progress)


def plan(folder: Path, manifest: Manifest, backup: str) -> RestorePlan:
    """What the swap will do to `folder` (read now, just before the swap)."""
    rules = rules_for(manifest.game, folder, manifest.excludes)
    current = select(folder, rules)
    kept_files = {f.path for f in manifest.files}
    kept_dirs = set(manifest.dirs)
    roots = {p.split("/")[0] for p in (*kept_files, *kept_dirs)}
    deletes = [p for p, _ in current.files if p.split("/")[0] in roots and p not in kept_files]
    stale = [d for d in current.dirs if d.split("/")[0] in roots and d not in kept_dirs]
    return RestorePlan(
        backup=backup,
        writes=tuple(sorted(kept_files)),
        dirs=tuple(sorted(kept_dirs)),
        deletes=tuple(sorted(deletes)),
        stale_dirs=tuple(sorted(stale, key=lambda d: d.count("/"), reverse=True)),
    )


def apply(folder: Path, restore_plan: RestorePlan, progress: Callable[[int, int], None]) -> None:
    """Write the journal, then swap the staged files in (see the module docstring)."""
    atomic_write(
        staging_of(folder) / JOURNAL, json.dumps(asdict(restore_plan)).encode(), mode=0o600
    )
    _replay(folder, restore_plan, progress)


def recover(folder: Path) -> str | None:
    """Finish or drop a restore a crash interrupted; what was done, or None."""
    staging = staging_of(folder)
    if not staging.exists():
        return None
    try:
        raw = json.loads((staging / JOURNAL).read_bytes())
        restore_plan = RestorePlan(
            backup=str(raw["backup"]),
            writes=tuple(safe_path(p) for p in raw["writes"]),
            dirs=tuple(safe_path(p) for p in raw["dirs"]),
            deletes=tuple(safe_path(p) for p in raw["deletes"]),
            stale_dirs=tuple(safe_path(p) for p in raw["stale_dirs"]),
        )
    except FileNotFoundError:
        shutil.rmtree(staging)
        return "dropped an unfinished restore (no file had been replaced)"
    except (OSError, ValueError, KeyError, TypeError):
        shutil.rmtree(staging)
        return "dropped an unfinished restore whose journal is unreadable"
    _replay(folder, restore_plan, lambda done, total: None)
    shutil.rmtree(staging)
    return f"finished the interrupted restore of backup {restore_plan.backup}"


def finish(folder: Path) -> None:
    shutil.rmtree(staging_of(folder), ignore_errors=True)


def verify_restored(
    folder: Path, manifest: Manifest, progress: Callable[[int, int], None]
) -> str | None:
    """The first restored file that differs from the backup, or None when all match."""
    done = 0
    for record in manifest.files:
        try:
            size, sha = hash_file(folder / record.path)
        except OSError:
            return record.path
        if (size, sha) != (record.size, record.sha256):
            return record.path
        done += record.size
        progress(done, manifest.total_bytes)
    return None


# -- the swap ------------------------------------------------------------------------------


def _replay(folder: Path, restore_plan: RestorePlan, progress: Callable[[int, int], None]) -> None:
    staging = staging_of(folder)
    new = staging / NEW
    old = staging / OLD
    old.mkdir(exist_ok=True, mode=0o700)
    for rel in restore_plan.dirs:
        _real_dir(folder, rel, old)
    total = len(restore_plan.writes)
    for index, rel in enumerate(restore_plan.writes, 1):
        source = new / rel
        if os.path.lexists(source):
            parent, _, name = rel.rpartition("/")
            target_dir = _real_dir(folder, parent, old) if parent else folder
            target = target_dir / name
            if target.is_dir() and not target.is_symlink():
                _aside(target, old)
            _move(source, target)
        if index % 64 == 0 or index == total:
            progress(index, total)
    for rel in restore_plan.deletes:
        target = folder / rel
        if _no_links_above(folder, rel) and (target.is_symlink() or target.is_file()):
            target.unlink(missing_ok=True)
    for rel in restore_plan.stale_dirs:
        target = folder / rel
        if _no_links_above(folder, rel) and target.is_dir() and not target.is_symlink():
            with contextlib.suppress(OSError):  # not empty: it holds what the rules keep
                target.rmdir()
    _fsync(folder)


def _no_links_above(folder: Path, rel: str) -> bool:
    current = folder
    for part in rel.split("/")[:-1]:
        current = current / part
        if current.is_symlink() or not current.is_dir():
            return False
    return True


def _real_dir(folder: Path, rel: str, old: Path) -> Path:
    """`folder/rel` as a real folder: missing parts are made, links and files in the way
    are moved aside (never followed), so nothing is written outside the server folder."""
    current = folder
    for part in rel.split("/") if rel else ():
        current = current / part
        if current.is_symlink() or (current.exists() and not current.is_dir()):
            _aside(current, old)
        if not current.exists():
            current.mkdir(mode=0o755)
    return current


def _aside(path: Path, old: Path) -> None:
    holder = Path(tempfile.mkdtemp(dir=old))
    os.rename(path, holder / path.name)


def _move(source: Path, target: Path) -> None:
    try:
        os.replace(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # the target is on another disk (a mount inside the server folder)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        try:
            shutil.copy2(source, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        source.unlink()


def _fsync(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
