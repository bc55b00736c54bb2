"""BattlEye's bans.txt, merged rather than rewritten: the bans someone else made stay.

The file (reference §3): one ban a line, `<GUID-or-IP> <expiry> <reason>`, the GUID 32 hex
characters, the IP an IPv4 address, the expiry a Unix time or `-1` for never. BattlEye
reads it at start and ignores lines it cannot read, and so do we: a line that is not a
ban (a comment, an IPv6 address, binary junk, a line from some other tool) is kept exactly
as it was, byte for byte. The file is hostile input: it is read only up to a size cap (a
bigger one is left untouched), and only a bounded number of bans is taken from it.

At a start the ledger's bans are merged in: a line for a target the ledger holds is kept
when it agrees with the ledger (same expiry) and otherwise replaced by the ledger's line; a
line for a target the ledger lifted is dropped; every other line is kept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from core.fsutil import is_within
from core.games.arma3_config import BanLine, ban_target, render_bans_txt
from core.games.base import BanKind, GameBan

__all__ = [
    "MAX_BANS_TXT",
    "MAX_FOUND",
    "found_in_bans_txt",
    "merge_bans_txt",
    "parse_ban_line",
    "read_bans_txt",
]

_log = logging.getLogger(__name__)

MAX_BANS_TXT = 8 * 1024 * 1024
"""Bytes: a bigger bans.txt is neither read nor rewritten (BattlEye still loads it)."""
MAX_FOUND = 10_000
"""Bans taken from one file; the lines past it stay in the file, unread."""
_SAME_EXPIRY = 120.0
"""Seconds two expiries may differ and still be the same ban (BattlEye counts minutes)."""
_KINDS = (BanKind.GUID, BanKind.IP)


def read_bans_txt(path: Path, folder: Path) -> bytes | None:
    """The file's bytes (b"" when absent), or None when it must be left alone: too big,
    unreadable, or a link that leads out of the server folder."""
    try:
        if path.is_symlink() and not is_within(path, folder):
            _log.warning("%s leads out of the server folder; leaving it alone", path)
            return None
        size = path.stat().st_size
        if size > MAX_BANS_TXT:
            _log.warning(
                "%s is %d bytes (more than %d); leaving it as it is", path, size, MAX_BANS_TXT
            )
            return None
        with path.open("rb") as file:
            return file.read(MAX_BANS_TXT + 1)[:MAX_BANS_TXT]
    except FileNotFoundError:
        return b""
    except OSError as exc:
        _log.warning("cannot read %s (%s); leaving it as it is", path, exc.strerror or exc)
        return None


def parse_ban_line(raw: bytes) -> BanLine | None:
    """One line as a ban, or None when it is not one (it is then kept as it is)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    fields = text.split(None, 2)
    if len(fields) < 2:
        return None
    target = ban_target(fields[0]) if len(fields[0]) <= 64 else None
    expiry = fields[1]
    digits = expiry[1:] if expiry.startswith("-") else expiry
    if target is None or not (digits.isascii() and digits.isdigit()) or len(digits) > 12:
        return None
    expires = int(expiry)
    if expires < 0 and expires != -1:
        return None
    return BanLine(target, expires, fields[2].strip() if len(fields) > 2 else "")


def _lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def found_in_bans_txt(data: bytes, *, now: float | None = None) -> list[GameBan]:
    """The unexpired bans in the file, one per target (the longest), at most MAX_FOUND."""
    now = time.time() if now is None else now
    found: dict[str, GameBan] = {}
    for raw in _lines(data):
        line = parse_ban_line(raw)
        if line is None or (line.expires != -1 and line.expires <= now):
            continue
        expires_at = None if line.expires == -1 else float(line.expires)
        kind = BanKind.IP if "." in line.target else BanKind.GUID
        ban = GameBan(kind, line.target, expires_at, line.reason)
        held = found.get(line.target)
        if held is None:
            if len(found) >= MAX_FOUND:
                _log.warning("bans.txt holds more than %d bans; reading the first", MAX_FOUND)
                break
            found[line.target] = ban
        elif held.expires_at is not None and (expires_at is None or expires_at > held.expires_at):
            found[line.target] = ban
    return list(found.values())


def merge_bans_txt(
    data: bytes, bans: Sequence[GameBan], *, now: float | None = None
) -> bytes | None:
    """The file with the ledger's `bans` merged in (see the module docstring), or None when
    nothing changes (the file is then not written at all)."""
    now = time.time() if now is None else now
    active: dict[str, GameBan] = {}
    lifted: set[str] = set()
    for ban in bans:
        target = ban_target(ban.value) if ban.kind in _KINDS else None
        if target is None:
            continue
        if ban.lifted:
            lifted.add(target)
        elif ban.expires_at is None or ban.expires_at > now:
            held = active.get(target)
            if held is None or (
                held.expires_at is not None
                and (ban.expires_at is None or ban.expires_at > held.expires_at)
            ):
                active[target] = ban
    lifted -= set(active)
    lines = _lines(data)
    kept: list[bytes] = []
    placed: set[str] = set()
    for raw in lines:
        line = parse_ban_line(raw)
        if line is None:
            kept.append(raw)
        elif line.target in active:
            if line.target not in placed and _agrees(line, active[line.target]):
                kept.append(raw)
                placed.add(line.target)
        elif line.target not in lifted:
            kept.append(raw)
    missing = [
        BanLine(target, -1 if ban.expires_at is None else int(ban.expires_at), ban.reason)
        for target, ban in active.items()
        if target not in placed
    ]
    if not missing and len(kept) == len(lines):
        return None
    return b"".join(line + b"\n" for line in kept) + render_bans_txt(missing, now=now).encode()


def _agrees(line: BanLine, ban: GameBan) -> bool:
    if ban.expires_at is None or line.expires == -1:
        return ban.expires_at is None and line.expires == -1
    return abs(line.expires - ban.expires_at) <= _SAME_EXPIRY
