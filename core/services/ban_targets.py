"""What a ban is aimed at: typed ids (GUID, UUID, name, IP), read and put in stored form.

Kept apart from the BanService because it is pure validation, shared by the ban and player
services and tested on its own, with no database or game behind it.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
import uuid
from dataclasses import dataclass

from core.errors import InvalidInput
from core.games.base import BanKind

__all__ = [
    "GAME_BAN_KINDS",
    "KIND_TITLES",
    "MAX_TEXT",
    "BanTarget",
    "clean_text",
    "normalise_target",
    "parse_target",
]

MAX_TEXT = 200
GAME_BAN_KINDS: dict[str, frozenset[BanKind]] = {
    "arma3": frozenset({BanKind.GUID, BanKind.IP}),
    "minecraft": frozenset({BanKind.NAME, BanKind.UUID, BanKind.IP}),
}
"""What each game's ban list understands; a profile may override it with `ban_kinds`."""

KIND_TITLES = {
    BanKind.GUID: "BattlEye GUID",
    BanKind.IP: "IP address",
    BanKind.NAME: "Minecraft name",
    BanKind.UUID: "Minecraft UUID",
}
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_UUID_DASHED = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_MC_NAME = re.compile(r"[A-Za-z0-9_]{3,16}")
_PREFIXES = {kind.value: kind for kind in BanKind}


def clean_text(text: str, limit: int = MAX_TEXT) -> str:
    """One line of plain text for a game: no control or invisible characters, capped.

    Reasons and messages end up inside RCon commands and ban files, where a newline or a
    control character could end the command or the line early.
    """
    kept: list[str] = []
    for char in text:
        category = unicodedata.category(char)
        if category == "Cc" or category in ("Zl", "Zp"):
            kept.append(" ")
        elif not category.startswith("C"):
            kept.append(char)
    return " ".join("".join(kept).split())[:limit].rstrip()


@dataclass(frozen=True, slots=True)
class BanTarget:
    kind: BanKind
    value: str


def normalise_target(kind: BanKind, text: str) -> str:
    """The stored form of a value of a known kind; InvalidInput says what was expected."""
    value = text.strip()
    if kind is BanKind.GUID and _HEX32.fullmatch(value):
        return value.lower()
    if kind is BanKind.UUID and (_HEX32.fullmatch(value) or _UUID_DASHED.fullmatch(value)):
        return str(uuid.UUID(value))
    if kind is BanKind.NAME and _MC_NAME.fullmatch(value):
        return value
    if kind is BanKind.IP:
        address = _ip(value)
        if address is not None:
            return address
    raise _kind_help(kind)


def _kind_help(kind: BanKind) -> InvalidInput:
    """What a value of `kind` looks like."""
    if kind is BanKind.GUID:
        return InvalidInput("a BattlEye GUID is 32 hexadecimal characters (0-9, a-f)")
    if kind is BanKind.UUID:
        return InvalidInput("a Minecraft UUID is 32 hex characters, with or without dashes")
    if kind is BanKind.NAME:
        return InvalidInput("a Minecraft name is 3 to 16 letters, digits or underscores")
    return InvalidInput("write an IP address like 203.0.113.7 or 2001:db8::1 (no port, no range)")


def _target_help() -> InvalidInput:
    return InvalidInput(
        "write a BattlEye GUID (32 hex characters), an IP address, a Minecraft name or UUID; "
        "force the kind with a prefix like `uuid:` or `name:`"
    )


def _ip(text: str) -> str | None:
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if not text or "/" in text or "%" in text:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return None if address.is_unspecified else str(address)


def parse_target(text: str, *, hex_as: BanKind = BanKind.GUID) -> BanTarget:
    """A typed id: `kind:value`, or guessed (32 hex chars are a GUID unless `hex_as` says)."""
    raw = text.strip()
    if not raw or len(raw) > 64:
        raise _target_help()
    prefix, sep, rest = raw.partition(":")
    if sep and prefix.lower() in _PREFIXES:
        kind = _PREFIXES[prefix.lower()]
        return BanTarget(kind, normalise_target(kind, rest))
    if _HEX32.fullmatch(raw):
        return BanTarget(hex_as, normalise_target(hex_as, raw))
    if _UUID_DASHED.fullmatch(raw):
        return BanTarget(BanKind.UUID, normalise_target(BanKind.UUID, raw))
    address = _ip(raw)
    if address is not None:
        return BanTarget(BanKind.IP, address)
    if _MC_NAME.fullmatch(raw):
        return BanTarget(BanKind.NAME, raw)
    raise _target_help()
