"""SteamCMD's Workshop record (`appworkshop_107410.acf`, Valve's KeyValues text) and its repair.

SteamCMD trusts this record: when it says an item is installed but the item's folder was
deleted, a later download "succeeds" without restoring anything, or fails with `File Not
Found` (arma-server-web-admin #87, arkmanager PR #216; shared/reference/steamcmd-workshop-
and-headless.md §1.8). The repair Dahlgren's tools use is done here: drop the item from both
`WorkshopItemsInstalled` and `WorkshopItemDetails`, and subtract its size from `SizeOnDisk`.
Both sections carry `timeupdated`, so the file is parsed by braces, never searched by keyword.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from core.fsutil import atomic_write
from core.steam.commands import WORKSHOP_APP_ID

__all__ = [
    "InstalledItem",
    "VdfNode",
    "content_dir",
    "downloads_dir",
    "dump_vdf",
    "forget_items",
    "installed_items",
    "parse_vdf",
    "stale_items",
    "workshop_acf",
]

_log = logging.getLogger(__name__)

VdfNode = dict[str, Union[str, "VdfNode"]]
MAX_ACF_BYTES = 16 * 1024 * 1024
"""A record this large is not SteamCMD's; it is refused rather than read into memory."""
_INSTALLED = "WorkshopItemsInstalled"
_DETAILS = "WorkshopItemDetails"


def workshop_acf(install_dir: Path, app_id: int = WORKSHOP_APP_ID) -> Path:
    return install_dir / "steamapps" / "workshop" / f"appworkshop_{app_id}.acf"


def content_dir(install_dir: Path, item_id: int, app_id: int = WORKSHOP_APP_ID) -> Path:
    return install_dir / "steamapps" / "workshop" / "content" / str(app_id) / str(item_id)


def downloads_dir(install_dir: Path, item_id: int, app_id: int = WORKSHOP_APP_ID) -> Path:
    """Where SteamCMD keeps an unfinished item between attempts (kept: retries resume)."""
    return install_dir / "steamapps" / "workshop" / "downloads" / str(app_id) / str(item_id)


@dataclass(frozen=True, slots=True)
class InstalledItem:
    item_id: int
    size: int
    time_updated: int
    manifest: str


def _tokens(text: str) -> list[tuple[str, bool]]:
    """(token, is_word) pairs; `{` and `}` come unquoted; `//` comments and `[$X]` conditions go."""
    out: list[tuple[str, bool]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif ch in "{}":
            out.append((ch, False))
            i += 1
        elif ch == '"':
            i += 1
            chars: list[str] = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                    chars.append({"n": "\n", "t": "\t"}.get(text[i], text[i]))
                else:
                    chars.append(text[i])
                i += 1
            if i >= n:
                raise ValueError("unterminated string")
            out.append(("".join(chars), True))
            i += 1
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in '{}"':
                i += 1
            word = text[start:i]
            if not (word.startswith("[") and word.endswith("]")):
                out.append((word, True))
    return out


def parse_vdf(text: str) -> VdfNode:
    """KeyValues text as nested dicts (a later duplicate key wins); ValueError if malformed."""
    tokens = _tokens(text)
    stack: list[VdfNode] = [{}]
    i = 0
    while i < len(tokens):
        token, is_word = tokens[i]
        if token == "}" and not is_word:
            if len(stack) == 1:
                raise ValueError("unbalanced '}'")
            stack.pop()
            i += 1
            continue
        if not is_word or i + 1 >= len(tokens):
            raise ValueError("a key without a value")
        value, value_is_word = tokens[i + 1]
        if value_is_word:
            stack[-1][token] = value
        elif value == "{":
            child: VdfNode = {}
            stack[-1][token] = child
            stack.append(child)
        else:
            raise ValueError("a key followed by '}'")
        i += 2
    if len(stack) != 1:
        raise ValueError("unbalanced '{'")
    return stack[0]


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dump_vdf(node: VdfNode, indent: int = 0) -> str:
    """KeyValues text in SteamCMD's own layout (tabs, a brace per line)."""
    pad = "\t" * indent
    lines: list[str] = []
    for key, value in node.items():
        if isinstance(value, dict):
            lines += [f"{pad}{_quote(key)}", f"{pad}{{", dump_vdf(value, indent + 1), f"{pad}}}"]
        else:
            lines.append(f"{pad}{_quote(key)}\t\t{_quote(value)}")
    return "\n".join(line for line in lines if line)


def _get(node: VdfNode, key: str) -> str | VdfNode | None:
    """KeyValues keys are case-insensitive."""
    for name, value in node.items():
        if name.lower() == key.lower():
            return value
    return None


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _read(path: Path) -> tuple[VdfNode, VdfNode] | None:
    """(file root, the AppWorkshop section), or None when there is no record."""
    try:
        if path.stat().st_size > MAX_ACF_BYTES:
            raise ValueError("record too large")
        text = path.read_text("utf-8", errors="replace")
    except FileNotFoundError:
        return None
    root = parse_vdf(text)
    section = next((value for value in root.values() if isinstance(value, dict)), None)
    if section is None:
        raise ValueError("no section")
    return root, section


def installed_items(install_dir: Path, app_id: int = WORKSHOP_APP_ID) -> dict[int, InstalledItem]:
    """What the record says is installed (empty when there is no readable record)."""
    try:
        read = _read(workshop_acf(install_dir, app_id))
    except (OSError, ValueError) as exc:
        _log.warning("unreadable Workshop record for app %d: %s", app_id, exc)
        return {}
    if read is None:
        return {}
    installed = _get(read[1], _INSTALLED)
    items: dict[int, InstalledItem] = {}
    if isinstance(installed, dict):
        for key, value in installed.items():
            if key.isdigit() and isinstance(value, dict):
                items[int(key)] = InstalledItem(
                    int(key),
                    _int(_get(value, "size")),
                    _int(_get(value, "timeupdated")),
                    str(_get(value, "manifest") or ""),
                )
    return items


def stale_items(
    install_dir: Path, item_ids: list[int] | None = None, app_id: int = WORKSHOP_APP_ID
) -> list[int]:
    """Items the record calls installed whose folder is gone (of `item_ids`, or all)."""
    recorded = installed_items(install_dir, app_id)
    wanted = recorded if item_ids is None else [i for i in item_ids if i in recorded]
    return sorted(i for i in wanted if not content_dir(install_dir, i, app_id).is_dir())


def forget_items(
    install_dir: Path, item_ids: list[int], app_id: int = WORKSHOP_APP_ID
) -> list[int]:
    """Drop items from the record so SteamCMD downloads them again; returns those dropped.

    An unreadable record is moved aside whole (arkmanager's repair): SteamCMD writes a new one.
    """
    path = workshop_acf(install_dir, app_id)
    try:
        read = _read(path)
    except (OSError, ValueError) as exc:
        aside = path.with_name(f"{path.name}.broken-{int(time.time())}")
        _log.warning("Workshop record unreadable (%s); moved aside to %s", exc, aside.name)
        os.replace(path, aside)
        return list(item_ids)
    if read is None:
        return []
    root, section = read
    dropped: list[int] = []
    freed = 0
    for table_name in (_INSTALLED, _DETAILS):
        table = _get(section, table_name)
        if not isinstance(table, dict):
            continue
        for item_id in item_ids:
            entry = table.pop(str(item_id), None)
            if entry is None:
                continue
            if item_id not in dropped:
                dropped.append(item_id)
            if table_name == _INSTALLED and isinstance(entry, dict):
                freed += _int(_get(entry, "size"))
    if not dropped:
        return []
    for key in list(section):
        if key.lower() == "sizeondisk":
            section[key] = str(max(0, _int(section[key]) - freed))
    atomic_write(path, (dump_vdf(root) + "\n").encode("utf-8"))
    _log.info("Workshop record repaired: forgot items %s", ", ".join(map(str, dropped)))
    return dropped
