"""A server folder's managed mods: `modset/@name` links, `modset/modset.json`, and `keys/`.

The game runs in the server folder, so `-mod=` holds paths relative to it (reference §4.1):
`modset/@cba_a3` is a link to the mod's lowercase tree (core/mods/tree.py). The manifest
lists the set in load order with each mod's role; the launch arguments of the server and
of its headless clients are read from it (`launch_mods`), so what runs is what the folder
says even while the database is busy. `write_modset` is the only writer (the service calls
it whenever a set, a download or the library changes); `clear_modset` gives the folder
back to the free-text `mods` setting.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.fsutil import atomic_write
from core.mods.keys import KeySync, release_keys, sync_keys
from core.mods.model import FOLDER, LaunchMods, ModError, ModsNotReady, Role

__all__ = [
    "MANIFEST",
    "MODSET_DIR",
    "ModsetEntry",
    "ModsetReport",
    "clear_modset",
    "launch_mods",
    "write_modset",
]

_log = logging.getLogger(__name__)

MODSET_DIR = "modset"
MANIFEST = "modset.json"
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_SET = 500


@dataclass(frozen=True, slots=True)
class ModsetEntry:
    item_id: int
    name: str
    folder: str
    """`@cba_a3`: the link name (checked against `model.FOLDER`)."""
    role: Role
    tree: Path
    """The mod's lowercase tree (may not exist yet: the mod is not downloaded)."""
    source: Path
    """SteamCMD's copy, where the keys are looked for."""


@dataclass(frozen=True, slots=True)
class ModsetReport:
    linked: tuple[str, ...]
    missing: tuple[str, ...]
    """Names of mods of the set that are not downloaded yet (the server will not start)."""
    keys: KeySync


def _manifest_path(folder: Path) -> Path:
    return folder / MODSET_DIR / MANIFEST


def write_modset(
    folder: Path, entries: Sequence[ModsetEntry], *, base_keys: Path | None
) -> ModsetReport:
    """Make the server folder hold exactly this set: links, manifest and keys."""
    if len(entries) > MAX_SET:
        raise ModError("a server may load at most {most} mods", most=MAX_SET)
    modset = folder / MODSET_DIR
    if modset.is_symlink():  # never write through a link into someone else's folder
        modset.unlink()
    modset.mkdir(parents=True, exist_ok=True)
    names = {entry.folder for entry in entries}
    for entry in entries:
        if not FOLDER.fullmatch(entry.folder):
            raise ModError("{folder!r} is not a mod folder name", folder=entry.folder[:60])
    for old in modset.iterdir():  # links of mods that left the set
        if old.name == MANIFEST or old.name in names or old.name.startswith("."):
            continue
        if old.is_symlink():
            old.unlink()
        else:
            _log.warning("%s: left %s alone (not a link of ours)", folder.name, old.name)
    linked: list[str] = []
    missing: list[str] = []
    for entry in entries:
        link = modset / entry.folder
        if link.exists() and not link.is_symlink():
            raise ModError(
                "the server folder holds a folder modset/{folder} of its own; move it away",
                folder=entry.folder,
            )
        if entry.tree.is_dir():
            if not (link.is_symlink() and os.readlink(link) == str(entry.tree)):
                link.unlink(missing_ok=True)
                link.symlink_to(entry.tree, target_is_directory=True)
            linked.append(entry.folder)
        else:
            link.unlink(missing_ok=True)
            missing.append(entry.name)
    manifest = {
        "version": 1,
        "mods": [
            {
                "id": entry.item_id,
                "name": entry.name,
                "path": f"{MODSET_DIR}/{entry.folder}",
                "role": entry.role.value,
            }
            for entry in entries
        ],
    }
    atomic_write(_manifest_path(folder), json.dumps(manifest, indent=1).encode())
    keyed = [
        (entry.item_id, entry.source)
        for entry in entries
        if entry.role is not Role.SERVER and entry.tree.is_dir() and entry.source.is_dir()
    ]  # server-only mods are not sent to clients: they need no key (§4.4)
    keys = sync_keys(folder / "keys", keyed, base_keys)
    return ModsetReport(tuple(linked), tuple(missing), keys)


def clear_modset(folder: Path) -> bool:
    """Forget the managed set of a folder (links, manifest, keys it put); True if it had one."""
    modset = folder / MODSET_DIR
    had = _manifest_path(folder).is_file()
    if modset.is_dir() and not modset.is_symlink():
        for entry in modset.iterdir():
            if entry.is_symlink() or entry.name == MANIFEST:
                entry.unlink()
        with contextlib.suppress(OSError):
            modset.rmdir()
    if had:
        release_keys(folder / "keys")
    return had


def _damaged() -> ModError:
    return ModError("the mod set of this server is damaged; set it again with `/server mods`")


def launch_mods(folder: Path) -> LaunchMods | None:
    """The server's managed mods in load order, or None when it has no managed set.

    Raises `ModsNotReady` when a mod of the set is not downloaded (its link is missing).
    """
    path = _manifest_path(folder)
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise _damaged()
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        raise _damaged() from None
    if not isinstance(raw, dict) or not isinstance(raw.get("mods"), list):
        raise _damaged()
    entries: list[tuple[str, Role]] = []
    missing: list[str] = []
    for item in raw["mods"][:MAX_SET]:
        if not isinstance(item, dict):
            raise _damaged()
        rel = str(item.get("path", ""))
        prefix, _, name = rel.partition("/")
        if prefix != MODSET_DIR or not FOLDER.fullmatch(name):
            raise _damaged()
        try:
            role = Role(str(item.get("role")))
        except ValueError:
            raise _damaged() from None
        if not (folder / rel).is_dir():
            missing.append(str(item.get("name") or name)[:100])
        entries.append((rel, role))
    if missing:
        raise ModsNotReady(
            "these mods are not downloaded yet: {mods}; download them with `/mods update` "
            "or take them out with `/server mods`",
            mods=", ".join(missing[:10]),
        )
    return LaunchMods(tuple(entries))
