"""Minecraft's banned-players.json and banned-ips.json, merged rather than rewritten.

Vanilla's format, kept as it is: a JSON list of objects, `uuid`, `name`, `created`, `source`,
`expires` (`forever` or `yyyy-MM-dd HH:mm:ss Z`) and `reason` for players; `ip` in place of
`uuid` and `name` for addresses. Before a start the bot reads them (bounded) to import the
bans it does not know, then merges the ledger in: it adds the ledger's bans the files lack,
takes out those the ledger lifted, and keeps every other entry exactly as it was, unknown
keys and all. A file that cannot be read (too big, not JSON, not a list) is left alone.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from core.fsutil import is_within
from core.games.base import BanKind, ConfigFile, GameBan
from core.games.minecraft_settings import PLAYER_NAME

__all__ = [
    "BANNED_IPS",
    "BANNED_PLAYERS",
    "MAX_FOUND",
    "found_in_ban_files",
    "merge_ban_files",
    "offline_uuid",
    "read_json_list",
]

_log = logging.getLogger(__name__)

BANNED_PLAYERS = "banned-players.json"
BANNED_IPS = "banned-ips.json"
MAX_JSON = 16 * 1024 * 1024
"""Bytes: a bigger file is neither read nor rewritten."""
MAX_FOUND = 10_000
"""Bans taken from the two files; entries past it stay in the files, unread."""
_DATE = "%Y-%m-%d %H:%M:%S %z"


def offline_uuid(name: str) -> str:
    """The UUID an offline-mode server gives `name` (Java's nameUUIDFromBytes)."""
    digest = hashlib.md5(b"OfflinePlayer:" + name.encode("utf-8"), usedforsecurity=False)
    return str(uuid.UUID(bytes=digest.digest(), version=3))


def read_json_list(path: Path, folder: Path) -> list[Any] | None:
    """A game JSON list, every element as it is ([] when absent; None when it must be left
    alone: unreadable, too big, not a JSON list, or a link leading out of the folder)."""
    try:
        if path.is_symlink() and not is_within(path, folder):
            _log.warning("%s leads out of the server folder; leaving it alone", path.name)
            return None
        with path.open("rb") as file:
            data = file.read(MAX_JSON + 1)
    except FileNotFoundError:
        return []
    except OSError:
        return None
    if len(data) > MAX_JSON:
        _log.warning("%s is larger than %d bytes; leaving it to the game", path.name, MAX_JSON)
        return None
    try:
        entries = json.loads(data or b"[]")
    except (ValueError, RecursionError):
        _log.warning("%s is not valid JSON; leaving it to the game", path.name)
        return None
    return entries if isinstance(entries, list) else None


def _expires(entry: dict[str, Any]) -> float | None:
    """Unix time, None for `forever`; ValueError when it is neither."""
    text = entry.get("expires", "forever")
    if text in (None, "", "forever"):
        return None
    if not isinstance(text, str) or len(text) > 40:
        raise ValueError("not a date")
    return datetime.strptime(text, _DATE).timestamp()


def _uuid(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _ipv4(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 45:
        return None
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    return str(address) if isinstance(address, ipaddress.IPv4Address) else None


def _text(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key, "")
    return value[:1000] if isinstance(value, str) else ""


def _found(entry: Any, now: float) -> GameBan | None:
    """One entry of either file as a ban (None: expired, or not one the bot can hold)."""
    if not isinstance(entry, dict):
        return None
    try:
        expires_at = _expires(entry)
    except ValueError:
        return None
    if expires_at is not None and expires_at <= now:
        return None
    reason, source = _text(entry, "reason"), _text(entry, "source")
    if "ip" in entry:
        ip = _ipv4(entry["ip"])
        return None if ip is None else GameBan(BanKind.IP, ip, expires_at, reason, source=source)
    name, player_uuid = _text(entry, "name"), _uuid(entry.get("uuid"))
    if PLAYER_NAME.fullmatch(name):
        alias = player_uuid or ""
        return GameBan(BanKind.NAME, name, expires_at, reason, alias=alias, source=source)
    if player_uuid is not None:
        return GameBan(BanKind.UUID, player_uuid, expires_at, reason, source=source)
    return None


def found_in_ban_files(folder: Path, *, now: float | None = None) -> list[GameBan]:
    """The unexpired bans in the two files, at most MAX_FOUND (unreadable files skipped)."""
    now = time.time() if now is None else now
    found: list[GameBan] = []
    for name in (BANNED_PLAYERS, BANNED_IPS):
        for entry in read_json_list(folder / name, folder) or []:
            ban = _found(entry, now)
            if ban is None:
                continue
            if len(found) >= MAX_FOUND:
                _log.warning("the ban files hold more than %d bans; reading the first", MAX_FOUND)
                return found
            found.append(ban)
    return found


class _Keys:
    """The ids of a set of bans, to match file entries by UUID, name or address."""

    def __init__(self, bans: Sequence[GameBan]) -> None:
        self.uuids = {u for b in bans if b.kind is BanKind.UUID and (u := _uuid(b.value))}
        self.names = {b.value.lower() for b in bans if b.kind is BanKind.NAME}
        self.ips = {ip for b in bans if b.kind is BanKind.IP and (ip := _ipv4(b.value))}

    def player(self, entry: Any) -> bool:
        if not isinstance(entry, dict):
            return False
        return _uuid(entry.get("uuid")) in self.uuids or _text(entry, "name").lower() in self.names

    def address(self, entry: Any) -> bool:
        return isinstance(entry, dict) and _ipv4(entry.get("ip")) in self.ips


def merge_ban_files(
    folder: Path, bans: Sequence[GameBan], *, offline: bool, now: float | None = None
) -> list[ConfigFile]:
    """The two files with the ledger's `bans` merged in (see the module docstring); only
    the files that change are returned."""
    if not bans:
        return []
    now = time.time() if now is None else now
    active = [b for b in bans if not b.lifted and (b.expires_at is None or b.expires_at > now)]
    held, lifted = _Keys(active), _Keys([b for b in bans if b.lifted])
    out: list[ConfigFile] = []
    players = read_json_list(folder / BANNED_PLAYERS, folder)
    if players is not None:
        kept = [e for e in players if not (lifted.player(e) and not held.player(e))]
        dicts = [e for e in kept if isinstance(e, dict)]
        names = {_text(e, "name").lower() for e in dicts}
        uuids = {str(_uuid(e.get("uuid"))) for e in dicts}
        cache = [
            e
            for e in read_json_list(folder / "usercache.json", folder) or []
            if isinstance(e, dict)
        ]
        added = 0
        for ban in active:
            entry = _player_entry(ban, cache, offline, names, uuids)
            if entry is not None:
                kept.append(entry)
                names.add(entry["name"].lower())
                uuids.add(entry["uuid"].lower())
                added += 1
        if added or len(kept) != len(players):
            out.append(ConfigFile(folder / BANNED_PLAYERS, _dump(kept)))
    addresses = read_json_list(folder / BANNED_IPS, folder)
    if addresses is not None:
        kept = [e for e in addresses if not (lifted.address(e) and not held.address(e))]
        present = {_ipv4(e.get("ip")) for e in kept if isinstance(e, dict)}
        fresh = [
            {"ip": ip, **_ban_fields(b)}
            for b in active
            if b.kind is BanKind.IP and (ip := _ipv4(b.value)) is not None and ip not in present
        ]
        if fresh or len(kept) != len(addresses):
            out.append(ConfigFile(folder / BANNED_IPS, _dump(kept + fresh)))
    return out


def _ban_fields(ban: GameBan) -> dict[str, str]:
    expires = "forever"
    if ban.expires_at is not None:
        expires = time.strftime("%Y-%m-%d %H:%M:%S +0000", time.gmtime(ban.expires_at))
    return {
        "created": time.strftime("%Y-%m-%d %H:%M:%S +0000", time.gmtime()),
        "source": "Languard",
        "expires": expires,
        "reason": ban.reason[:200] or "Banned by an operator.",
    }


def _player_entry(
    ban: GameBan, cache: list[dict[str, Any]], offline: bool, names: set[str], uuids: set[str]
) -> dict[str, str] | None:
    """A banned-players.json entry, or None if already there or its UUID is unknowable.

    `cache` is the game's usercache.json: the name and UUID of everyone who joined.
    """
    if ban.kind is BanKind.UUID:
        key = _uuid(ban.value)
        if key is None or key in uuids:
            return None
        known = (str(e.get("name", "")) for e in cache if str(e.get("uuid", "")).lower() == key)
        return {"uuid": key, "name": next(known, key), **_ban_fields(ban)}
    if ban.kind is not BanKind.NAME or not PLAYER_NAME.fullmatch(ban.value):
        return None
    if ban.value.lower() in names:
        return None
    seen = (
        str(e.get("uuid", "")) for e in cache if str(e.get("name", "")).lower() == ban.value.lower()
    )
    player_uuid = next(seen, "") or (offline_uuid(ban.value) if offline else None)
    if not player_uuid:
        return None  # an online-mode name never seen here: the link bans it once running
    return {"uuid": player_uuid, "name": ban.value, **_ban_fields(ban)}


def _dump(entries: list[Any]) -> bytes:
    return (json.dumps(entries, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
