"""Turn BattlEye console text (`players`, `bans`, `admins`, server messages) into values.

Player names are free text: spaces, parentheses, colons, any script. Every pattern therefore
pins the fixed-format fields at the right end (a greedy name group backs off to the last
place where the rest matches). Nothing here raises on odd input: table lines that do not
parse are skipped (logged at debug level) and an unknown message becomes `RawMessage`.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import TypeAlias

__all__ = [
    "Admin",
    "AdminLogin",
    "Ban",
    "BanKind",
    "BattlEyeMessage",
    "ChatMessage",
    "GuidVerified",
    "KickKind",
    "Player",
    "PlayerConnected",
    "PlayerDisconnected",
    "PlayerGuid",
    "PlayerKicked",
    "RawMessage",
    "RconSay",
    "parse_admins",
    "parse_bans",
    "parse_message",
    "parse_players",
]

_log = logging.getLogger(__name__)

_IP = r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}"
_N = r"([0-9]{1,9})"  # ids, ports, pings, minutes: bounded so int() never balks
_GUID = r"[0-9a-fA-F]{32}"


# --- tables ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Player:
    id: int
    ip: str
    port: int
    ping: int
    guid: str
    verified: bool
    name: str
    lobby: bool


_PLAYER = re.compile(
    rf"^{_N}\s+({_IP}):{_N}\s+(-?[0-9]{{1,9}})\s+({_GUID}|-)\((OK|\?)\)\s?(.*?)( \(Lobby\))?$"
)


def parse_players(text: str) -> list[Player]:
    """Rows of a `players` reply (headers, separator and the total line are skipped)."""
    players = []
    for line in text.splitlines():
        m = _PLAYER.match(line.strip())
        if m is None:
            if line.strip() and not _is_table_chrome(line):
                _log.debug("unparsed players line: %r", line)
            continue
        pid, ip, port, ping, guid, ok, name, lobby = m.groups()
        players.append(
            Player(int(pid), ip, int(port), int(ping), guid, ok == "OK", name, lobby is not None)
        )
    return players


class BanKind(enum.StrEnum):
    GUID = "guid"
    IP = "ip"


@dataclass(frozen=True, slots=True)
class Ban:
    """One ban-list entry. `index` is what `removeBan` takes (one index space for both kinds).

    `minutes_left` is None for a permanent ban; an expired ban still listed (`-`) has
    `expired=True` and `minutes_left=0`.
    """

    index: int
    kind: BanKind
    target: str
    minutes_left: int | None
    expired: bool
    reason: str

    @property
    def permanent(self) -> bool:
        return self.minutes_left is None


_BAN = re.compile(rf"^{_N}\s+({_GUID}|{_IP})\s+(perm|-|[0-9]{{1,9}})(?:\s+(.*))?$")


def parse_bans(text: str) -> list[Ban]:
    """GUID bans then IP bans, each with its index as printed (they share one numbering)."""
    bans = []
    section: BanKind | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("GUID Bans:"):
            section = BanKind.GUID
            continue
        if stripped.startswith("IP Bans:"):
            section = BanKind.IP
            continue
        m = _BAN.match(stripped)
        if m is None:
            if stripped and not _is_table_chrome(stripped):
                _log.debug("unparsed bans line: %r", line)
            continue
        index, target, left, reason = m.groups()
        kind = BanKind.IP if re.fullmatch(_IP, target) else BanKind.GUID
        if section is not None and kind is not section:
            _log.debug("ban %s listed under the %s section", target, section)
        minutes = None if left == "perm" else 0 if left == "-" else int(left)
        bans.append(Ban(int(index), kind, target, minutes, left == "-", reason or ""))
    return bans


@dataclass(frozen=True, slots=True)
class Admin:
    id: int
    ip: str
    port: int


_ADMIN = re.compile(rf"^{_N}\s+({_IP}):{_N}$")


def parse_admins(text: str) -> list[Admin]:
    """Rows of an `admins` reply."""
    admins = []
    for line in text.splitlines():
        m = _ADMIN.match(line.strip())
        if m is None:
            if line.strip() and not _is_table_chrome(line):
                _log.debug("unparsed admins line: %r", line)
            continue
        admins.append(Admin(int(m[1]), m[2], int(m[3])))
    return admins


def _is_table_chrome(line: str) -> bool:
    s = line.strip()
    return s.endswith(":") or s.startswith(("[#]", "---", "(")) or set(s) <= {"-"}


# --- server messages -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdminLogin:
    admin_id: int
    ip: str
    port: int


@dataclass(frozen=True, slots=True)
class PlayerConnected:
    player_id: int
    name: str
    ip: str
    port: int


@dataclass(frozen=True, slots=True)
class PlayerGuid:
    """`- BE GUID: x` (current builds) or `- GUID: x (unverified)` (older builds)."""

    player_id: int
    name: str
    guid: str
    unverified: bool


@dataclass(frozen=True, slots=True)
class GuidVerified:
    player_id: int
    name: str
    guid: str


@dataclass(frozen=True, slots=True)
class PlayerDisconnected:
    player_id: int
    name: str


class KickKind(enum.StrEnum):
    ADMIN_KICK = "admin kick"
    ADMIN_BAN = "admin ban"
    BATTLEYE = "battleye"
    """Any other reason: script restriction, not responding, bad ping ..."""


@dataclass(frozen=True, slots=True)
class PlayerKicked:
    """`reason` is the admin's text for admin kicks and bans, else BattlEye's whole reason."""

    player_id: int
    name: str
    guid: str
    kind: KickKind
    reason: str


@dataclass(frozen=True, slots=True)
class ChatMessage:
    channel: str
    name: str
    text: str


@dataclass(frozen=True, slots=True)
class RconSay:
    """A message an RCon admin sent; `to` is the player's name, or None for Global."""

    admin_id: int
    to: str | None
    text: str


@dataclass(frozen=True, slots=True)
class RawMessage:
    text: str


BattlEyeMessage: TypeAlias = (
    AdminLogin
    | PlayerConnected
    | PlayerGuid
    | GuidVerified
    | PlayerDisconnected
    | PlayerKicked
    | ChatMessage
    | RconSay
    | RawMessage
)

_ADMIN_LOGIN = re.compile(rf"^RCon admin #{_N} \(({_IP}):{_N}\) logged in$")
_CONNECTED = re.compile(rf"^Player #{_N} (.+) \(({_IP}):{_N}\) connected$")
_BE_GUID = re.compile(rf"^Player #{_N} (.+) - BE GUID: ({_GUID})$")
_OLD_GUID = re.compile(rf"^Player #{_N} (.+) - GUID: ({_GUID}) \(unverified\)$")
_VERIFIED = re.compile(rf"^Verified GUID \(({_GUID})\) of player #{_N} (.+)$")
_DISCONNECTED = re.compile(rf"^Player #{_N} (.+) disconnected$")
_KICKED = re.compile(
    rf"^Player #{_N} (.+) \(({_GUID}|-|\?)\) has been kicked by BattlEye: (.*)$", re.DOTALL
)
_ADMIN_REASON = re.compile(r"^Admin (Kick|Ban)(?: \((.*)\))?$")
_RCON_SAY = re.compile(rf"^RCon admin #{_N}: \((Global|To .+?)\) (.*)$", re.DOTALL)
_CHANNELS = "Global|Side|Command|Group|Vehicle|Direct|Lobby|Unknown"
_CHAT = re.compile(rf"^\(({_CHANNELS})\) (.+)$", re.DOTALL)


def parse_message(text: str, *, names: Collection[str] = ()) -> BattlEyeMessage:
    """Classify one server message; anything unknown comes back as `RawMessage`.

    Chat (`(Global) name: text`) and private RCon says are ambiguous when a name holds `: `
    or `) `; pass the current player `names` to resolve that. Without them the split is at
    the first separator, as chat text holds colons more often than names do.
    """
    try:
        return _parse_message(text, names)
    except (ValueError, IndexError) as exc:  # a defect here must not break the message feed
        _log.debug("could not parse message %r: %s", text, exc)
        return RawMessage(text)


def _parse_message(text: str, names: Collection[str]) -> BattlEyeMessage:
    if text.startswith("RCon admin #"):
        if m := _ADMIN_LOGIN.match(text):
            return AdminLogin(int(m[1]), m[2], int(m[3]))
        if m := _RCON_SAY.match(text):
            return _rcon_say(int(m[1]), text[m.start(2) :], names)
    elif text.startswith("Player #"):
        if m := _KICKED.match(text):
            return _kicked(int(m[1]), m[2], m[3], m[4])
        if m := _CONNECTED.match(text):
            return PlayerConnected(int(m[1]), m[2], m[3], int(m[4]))
        if m := _BE_GUID.match(text):
            return PlayerGuid(int(m[1]), m[2], m[3], unverified=False)
        if m := _OLD_GUID.match(text):
            return PlayerGuid(int(m[1]), m[2], m[3], unverified=True)
        if m := _DISCONNECTED.match(text):
            return PlayerDisconnected(int(m[1]), m[2])
    elif text.startswith("Verified GUID ("):
        if m := _VERIFIED.match(text):
            return GuidVerified(int(m[2]), m[3], m[1])
    elif text.startswith("(") and (m := _CHAT.match(text)):
        name, said = _split_name(m[2], ": ", names)
        if name is not None:
            return ChatMessage(m[1], name, said)
    return RawMessage(text)


def _kicked(player_id: int, name: str, guid: str, reason: str) -> PlayerKicked:
    m = _ADMIN_REASON.match(reason)
    if m is None:
        return PlayerKicked(player_id, name, guid, KickKind.BATTLEYE, reason)
    kind = KickKind.ADMIN_KICK if m[1] == "Kick" else KickKind.ADMIN_BAN
    return PlayerKicked(player_id, name, guid, kind, m[2] or "")


def _rcon_say(admin_id: int, rest: str, names: Collection[str]) -> BattlEyeMessage:
    """`rest` is `Global) text` or `To <name>) text`."""
    if rest.startswith("Global) "):
        return RconSay(admin_id, None, rest[8:])
    name, said = _split_name(rest[3:], ") ", names)
    if name is None:
        return RawMessage(f"RCon admin #{admin_id}: ({rest}")
    return RconSay(admin_id, name, said)


def _split_name(rest: str, sep: str, names: Collection[str]) -> tuple[str | None, str]:
    """Split `name<sep>text`, preferring the longest known name that fits."""
    known = [n for n in names if rest.startswith(n + sep)]
    if known:
        name = max(known, key=len)
        return name, rest[len(name) + len(sep) :]
    name, found, said = rest.partition(sep)
    if not found or not name:
        return None, rest
    return name, said
