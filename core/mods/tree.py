"""A lowercase tree per mod: real folders with lowercase names, symlinks to the files.

The Linux server wants lowercase folder and file names (`addons`, pbo names; reference §4.2,
BI wiki "Case sensitivity & Mods"). Renaming inside the Workshop folder breaks SteamCMD's
later updates (arma-server-web-admin #178, Dahlgren PR #40), so SteamCMD's copy is never
touched: next to it, `<trees>/<id>/` mirrors it with every name lowercased, each file a
symlink to the Workshop file (no copy, any file system). It is rebuilt after each download
into a fresh folder and swapped in, so the server links (`modset/@name` → the tree) never
see a half-built tree. Symlinks inside the Workshop item are skipped, never followed: an
item cannot make the tree reach outside it. Two names that only differ in case merge
(folders) or keep the first one (files), which is logged.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from core.mods.model import ModError

__all__ = ["MAX_DEPTH", "MAX_ENTRIES", "TreeReport", "build_tree", "remove_tree"]

_log = logging.getLogger(__name__)

MAX_ENTRIES = 200_000
"""Files and folders in one mod; the largest public mods hold a few thousand."""
MAX_DEPTH = 32


@dataclass(frozen=True, slots=True)
class TreeReport:
    files: int
    folders: int
    clashes: tuple[str, ...]
    """Lowercased paths that two names of the item fell on (the first one kept)."""


def build_tree(source: Path, dest: Path) -> TreeReport:
    """Mirror `source` (a Workshop item) into `dest` with lowercase names; `dest` is replaced."""
    source = source.resolve()
    if not source.is_dir():
        raise ModError("the downloaded files of this mod are missing; download it again")
    fresh = dest.with_name(f".{dest.name}.new")
    old = dest.with_name(f".{dest.name}.old")
    for leftover in (fresh, old):
        remove_tree(leftover)
    fresh.mkdir(parents=True)
    files = folders = 0
    clashes: list[str] = []
    stack: list[tuple[Path, Path, int]] = [(source, fresh, 0)]
    try:
        while stack:
            src_dir, out_dir, depth = stack.pop()
            with os.scandir(src_dir) as entries:
                listed = sorted(entries, key=lambda e: e.name)
            below: list[tuple[Path, Path, int]] = []
            for entry in listed:
                if files + folders >= MAX_ENTRIES:
                    raise ModError("this mod holds more than {most} files", most=MAX_ENTRIES)
                target = out_dir / entry.name.lower()
                rel = target.relative_to(fresh).as_posix()
                if entry.is_symlink():
                    continue  # never followed (see the module docstring)
                if entry.is_dir(follow_symlinks=False):
                    if depth + 1 > MAX_DEPTH:
                        continue
                    if target.is_symlink():
                        clashes.append(rel)
                        continue
                    if not target.exists():
                        target.mkdir()
                        folders += 1
                    below.append((Path(entry.path), target, depth + 1))
                elif entry.is_file(follow_symlinks=False):
                    if target.exists() or target.is_symlink():
                        clashes.append(rel)
                        continue
                    target.symlink_to(entry.path)
                    files += 1
            stack.extend(reversed(below))  # depth first, in name order: "first" is stable
    except BaseException:
        remove_tree(fresh)
        raise
    if dest.exists() or dest.is_symlink():
        os.replace(dest, old)
    os.replace(fresh, dest)
    remove_tree(old)
    if clashes:
        _log.warning(
            "mod %s: %d name(s) differ only in case; kept the first: %s",
            source.name,
            len(clashes),
            ", ".join(clashes[:5]),
        )
    return TreeReport(files, folders, tuple(clashes))


def remove_tree(path: Path) -> None:
    """Remove a tree of ours (folders and symlinks only: the Workshop files stay)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
