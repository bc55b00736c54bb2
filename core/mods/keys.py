"""A server's own `keys/` folder: the game's `a3.bikey` and every key of its mods.

Reference §4.3: with `verifySignatures = 2` a client's PBOs must match a `.bikey` in the
server's `keys/`; keys sit anywhere in a mod (`keys/`, `Keys/`, `key/`, the root, deeper:
AMPTemplates #1243, FAST #99, Flaxs #109), so the whole mod is searched. Keys under an
`optionals/` folder are left out: copying them lets clients join with optional PBOs the
admin did not choose (FASTER #151). Keys are read only at server start. Several servers
sharing one `keys/` with different mod sets clash (FASTER #34): each server gets a real
`keys/` folder of its own instead of the link to the install's one.

What this module put there is listed in `keys/.languard-keys.json`, so the keys of a mod
that left the set are removed and a key the admin dropped in by hand is left alone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.fsutil import atomic_write

__all__ = ["RECORD", "KeySync", "find_keys", "release_keys", "sync_keys"]

_log = logging.getLogger(__name__)

RECORD = ".languard-keys.json"
BASE_KEY = "a3.bikey"
MAX_KEY_BYTES = 64 * 1024
"""A .bikey is a few hundred bytes; a larger file is not one."""
MAX_KEYS_PER_MOD = 100
MAX_DEPTH = 32
_OPTIONAL_DIRS = frozenset({"optionals", "optional"})
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


@dataclass(frozen=True, slots=True)
class KeySync:
    added: tuple[str, ...]
    removed: tuple[str, ...]
    kept: tuple[str, ...]


def find_keys(mod_root: Path) -> list[Path]:
    """Every `*.bikey` (any case) in a mod, symlinks not followed, `optionals/` left out."""
    found: list[Path] = []
    stack: list[tuple[Path, int]] = [(mod_root, 0)]
    while stack and len(found) < MAX_KEYS_PER_MOD:
        folder, depth = stack.pop()
        try:
            with os.scandir(folder) as entries:
                listed = sorted(entries, key=lambda e: e.name)
        except OSError:
            continue
        for entry in listed:
            if entry.is_symlink():
                continue
            if entry.is_dir(follow_symlinks=False):
                if depth < MAX_DEPTH and entry.name.lower() not in _OPTIONAL_DIRS:
                    stack.append((Path(entry.path), depth + 1))
            elif entry.name.lower().endswith(".bikey") and entry.is_file(follow_symlinks=False):
                found.append(Path(entry.path))
    return sorted(found)[:MAX_KEYS_PER_MOD]


def _read_key(path: Path) -> bytes | None:
    try:
        if path.stat().st_size > MAX_KEY_BYTES:
            _log.warning("skipping %s: too large for a .bikey", path.name)
            return None
        return path.read_bytes()
    except OSError as exc:
        _log.warning("cannot read key %s: %s", path.name, exc)
        return None


def _key_name(name: str) -> str:
    stem = _UNSAFE.sub("_", name[: -len(".bikey")]).strip("._") or "key"
    return f"{stem[:100]}.bikey"


def _recorded(keys_dir: Path) -> set[str]:
    try:
        raw = json.loads((keys_dir / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    if not isinstance(raw, list):
        return set()
    return {name for name in raw if isinstance(name, str) and _key_name(name) == name}


def _own_folder(keys_dir: Path) -> None:
    """Replace a link to a shared keys folder (the install's) by a real folder."""
    if keys_dir.is_symlink():
        keys_dir.unlink()
    keys_dir.mkdir(parents=True, exist_ok=True)


def sync_keys(keys_dir: Path, mods: Sequence[tuple[int, Path]], base_keys: Path | None) -> KeySync:
    """Make `keys_dir` hold `a3.bikey` (from `base_keys`, the install's keys folder) and the
    keys of `mods` ((Workshop id, item folder) pairs, in load order), and none of the keys
    it put there before for mods no longer given."""
    _own_folder(keys_dir)
    wanted: dict[str, bytes] = {}
    if base_keys is not None:
        base = _read_key(base_keys / BASE_KEY) if (base_keys / BASE_KEY).is_file() else None
        if base is not None:
            wanted[BASE_KEY] = base
    for item_id, root in mods:
        for path in find_keys(root):
            data = _read_key(path)
            if data is None:
                continue
            name = _key_name(path.name)
            if name in wanted and wanted[name] != data:
                name = _key_name(f"{item_id}_{path.name}")  # same name, another key
            wanted.setdefault(name, data)
    before = _recorded(keys_dir)
    removed = sorted(name for name in before - wanted.keys())
    for name in removed:
        (keys_dir / name).unlink(missing_ok=True)
    added: list[str] = []
    for name, data in wanted.items():
        path = keys_dir / name
        if path.is_symlink():
            path.unlink()
        try:
            same = path.is_file() and path.read_bytes() == data
        except OSError:
            same = False
        if not same:
            atomic_write(path, data)
            added.append(name)
    atomic_write(keys_dir / RECORD, json.dumps(sorted(wanted)).encode())
    kept = sorted(set(wanted) - set(added))
    return KeySync(tuple(sorted(added)), tuple(removed), tuple(kept))


def release_keys(keys_dir: Path) -> list[str]:
    """Take out every key this module put in `keys_dir`; an emptied folder is removed, so
    the next start links the install's `keys/` again (a server without a managed set)."""
    if keys_dir.is_symlink() or not keys_dir.is_dir():
        return []
    removed = sorted(_recorded(keys_dir))
    for name in removed:
        (keys_dir / name).unlink(missing_ok=True)
    (keys_dir / RECORD).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # the admin's own keys are there: the folder stays
        keys_dir.rmdir()
    return removed
