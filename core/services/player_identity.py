"""What a player's identity is made of, made safe to store and to search by: ids, IP
addresses and names as the games report them, and what a history query means.

Apart from the service because these are pure functions of what a game reports, used both
when a sighting is recorded and when the history is searched.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import uuid

from core.errors import InvalidInput
from core.games.base import BanKind, OnlinePlayer
from core.services.ban_targets import normalise_target
from data.repositories.players import PlayerMatch

__all__ = ["MAX_NAME", "history_match", "norm_id", "norm_ip", "normalised", "same_person"]

MAX_NAME = 256
"""Names are kept verbatim, but a game (or a forged event) cannot make a row huge."""
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_UUID_DASHED = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def same_person(a: OnlinePlayer, b: OnlinePlayer) -> bool:
    return a.name == b.name and (a.guid is None or b.guid is None or a.guid == b.guid)


def history_match(query: str) -> PlayerMatch:
    """What a history query means: a GUID/UUID, an IP address, or (part of) a name."""
    text = query.strip()
    if not text or len(text) > 64:
        raise InvalidInput("search by a name (or part of one), a GUID, a UUID or an IP address")
    if _HEX32.fullmatch(text):
        return PlayerMatch.guids([text.lower(), str(uuid.UUID(text))])
    if _UUID_DASHED.fullmatch(text):
        return PlayerMatch.guids([str(uuid.UUID(text))])
    address = norm_ip(text)
    if address is not None:
        return PlayerMatch.ip(address)
    return PlayerMatch.name(text)


def norm_id(value: str | None, kind: BanKind) -> str | None:
    if not value:
        return None
    try:
        return normalise_target(kind, value)
    except InvalidInput:
        return None


def norm_ip(text: str | None) -> str | None:
    """An address as stored, from `1.2.3.4`, `1.2.3.4:2304`, `[::1]:25565` or `::1`."""
    if not text:
        return None
    value = text.strip()
    if value.startswith("[") and "]" in value:
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def normalised(player: OnlinePlayer, game: str) -> OnlinePlayer:
    """What the games report, made safe to store: the name is kept as it is (only capped)."""
    kind = BanKind.UUID if game == "minecraft" else BanKind.GUID
    guid = norm_id(player.guid, kind) or norm_id(player.guid, BanKind.UUID)
    return dataclasses.replace(
        player,
        key=player.key[:MAX_NAME] or player.name[:MAX_NAME],
        name=player.name[:MAX_NAME],
        guid=guid,
        ip=norm_ip(player.ip),
    )
