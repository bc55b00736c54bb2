"""What the Minecraft link types to ban and pardon on a running server: the reason players
see, the replies that mean it worked, the IPv4 addresses the game accepts, and the name a
UUID ban needs (Minecraft's commands address players by name only).

Apart from the link because these are pure functions of a ban and the game's files; the
link only runs the commands they shape.
"""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import UTC, datetime
from pathlib import Path

from core.errors import InvalidInput
from core.games.base import GameBan
from core.games.minecraft_settings import clean_text

__all__ = ["BAN_IP_OK", "BAN_OK", "ban_reason", "ipv4", "ipv4_or_none", "name_in_files"]

_NAME_FILES = ("usercache.json", "banned-players.json")

BAN_OK = ("Banned ", "Nothing changed")
BAN_IP_OK = ("Banned IP ", "Nothing changed")


def ban_reason(ban: GameBan) -> str:
    """The reason players see; Minecraft has no end date, so a temporary ban names it."""
    reason = clean_text(ban.reason, 150)
    if ban.expires_at is not None:
        until = datetime.fromtimestamp(ban.expires_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        reason = f"{reason} (until {until})".strip()
    return reason


def ipv4_or_none(value: str) -> str | None:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    return str(address) if isinstance(address, ipaddress.IPv4Address) else None


def ipv4(value: str) -> str:
    address = ipv4_or_none(value)
    if address is None:
        raise InvalidInput(
            "Minecraft bans IPv4 addresses only, not {value!r}",
            value=clean_text(value, 45),
        )
    return address


def name_in_files(folder: Path, uuid: str) -> str | None:
    """The name of a UUID from the game's usercache or ban file (None when neither has it)."""
    for file_name in _NAME_FILES:
        try:
            entries = json.loads((folder / file_name).read_bytes()[: 4 * 1024 * 1024])
        except (OSError, ValueError):
            continue
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or str(entry.get("uuid", "")).lower() != uuid.lower():
                continue
            name = str(entry.get("name", ""))
            if re.fullmatch(r"[A-Za-z0-9_]{1,16}", name):
                return name
    return None
