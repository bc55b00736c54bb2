"""BattlEye's live ban list over RCon: read it, add to it, and take out only the ledger's.

The rules the link follows (reference §2.2 and §3): `bans` lists GUID bans then IP bans in
one index space, `removeBan <n>` takes that index and renumbers the entries behind it (so
the list is re-read after every removal), `addBan <GUID|IP> <minutes> <reason>` adds one
(0 minutes is permanent), and `writeBans` writes bans.txt. An entry for a target the ledger
neither holds nor lifted belongs to someone else (made before the bot, in game, with another
tool) and is never removed.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence

from core.errors import InvalidInput, NotSupported
from core.games.arma3_bans import MAX_FOUND
from core.games.arma3_config import ban_target, sanitize_line
from core.games.base import BanKind, GameBan
from core.rcon.battleye_parsers import Ban, parse_bans

__all__ = [
    "REASON_LIMIT",
    "add_ban_command",
    "ban_minutes",
    "ban_target_of",
    "list_bans",
    "remove_ban",
    "sync_bans",
]

_log = logging.getLogger(__name__)

REASON_LIMIT = 120
_MINUTES_SLACK = 2
"""Minutes a game-side ban may differ from ours and still count as the same ban."""
_KINDS = (BanKind.GUID, BanKind.IP)

Run = Callable[[str], Awaitable[str]]
"""Sends one console command and returns the reply (the link's `_run`)."""


def ban_minutes(expires_at: float | None, now: float | None = None) -> int:
    """BattlEye's minutes for a ban: 0 is permanent; a ban about to end still gets 1."""
    if expires_at is None:
        return 0
    left = expires_at - (time.time() if now is None else now)
    if left <= 0:
        raise InvalidInput("that ban has already expired")
    return max(1, math.ceil(left / 60))


def ban_target_of(ban: GameBan) -> str:
    """The GUID or IPv4 address BattlEye takes for a ban; a user-safe error otherwise."""
    if ban.kind not in _KINDS:
        raise NotSupported("Arma 3 bans a BattlEye GUID or an IPv4 address, not a name")
    target = ban_target(ban.value)
    if target is None:
        raise InvalidInput(
            "{value!r} is neither a BattlEye GUID nor an IPv4 address", value=ban.value[:40]
        )
    return target


def add_ban_command(target: str, ban: GameBan, now: float | None = None) -> str:
    reason = sanitize_line(ban.reason, REASON_LIMIT)
    return " ".join(
        p for p in ("addBan", target, str(ban_minutes(ban.expires_at, now)), reason) if p
    )


async def remove_ban(run: Run, ban: GameBan, server: str) -> None:
    """Remove every entry for the ban's GUID/IP, then have BattlEye write bans.txt (which
    is what a start reads), so the file agrees at once."""
    target = ban_target_of(ban)
    removed = False
    for _ in range(100):
        entries = parse_bans(await run("bans"))
        match = next((e for e in entries if e.target.lower() == target), None)
        if match is None:
            break
        await run(f"removeBan {match.index}")
        removed = True
    else:
        _log.warning("%s: ban %s still listed after 100 removals", server, target)
    if removed:
        await run("writeBans")


async def list_bans(run: Run) -> list[GameBan]:
    """The game's ban list: unexpired entries, one per target (the longest), bounded."""
    now = time.time()
    found: dict[str, GameBan] = {}
    for entry in parse_bans(await run("bans")):
        target = entry.target.lower()
        if entry.expired or (target not in found and len(found) >= MAX_FOUND):
            continue
        expires_at = None if entry.minutes_left is None else now + entry.minutes_left * 60
        held = found.get(target)
        if held is None or (
            held.expires_at is not None and (expires_at is None or expires_at > held.expires_at)
        ):
            found[target] = GameBan(BanKind(entry.kind.value), target, expires_at, entry.reason)
    return list(found.values())


async def sync_bans(run: Run, bans: Sequence[GameBan], lifted: Sequence[GameBan]) -> None:
    """Hold every ban in `bans`; drop the `lifted` ones; leave every other entry alone.

    A target in `bans` is the ledger's: its entries are made one, with the ledger's expiry.
    bans.txt is written (`writeBans`) only when something changed.
    """
    now = time.time()
    wanted: dict[str, GameBan] = {}
    for ban in bans:
        if ban.kind in _KINDS and (ban.expires_at is None or ban.expires_at > now):
            wanted[ban_target_of(ban)] = ban
    gone = {
        target
        for ban in lifted
        if ban.kind in _KINDS
        and (target := ban_target(ban.value)) is not None
        and target not in wanted
    }
    present: set[str] = set()
    changed = False
    for _ in range(1000):
        present = set()
        stale = _first_stale(parse_bans(await run("bans")), wanted, gone, present, now)
        if stale is None:
            break
        await run(f"removeBan {stale.index}")
        changed = True
    for target, ban in wanted.items():
        if target not in present:
            await run(add_ban_command(target, ban, now))
            changed = True
    if changed:
        await run("writeBans")


def _first_stale(
    entries: list[Ban], wanted: dict[str, GameBan], gone: set[str], present: set[str], now: float
) -> Ban | None:
    """The first entry to remove: a lifted one, or a duplicate or out-of-date one of a ban
    the ledger holds. Fills `present` with the ledger's targets seen in good order."""
    for entry in entries:
        target = entry.target.lower()
        want = wanted.get(target)
        if want is None:
            if target in gone:
                return entry
            continue  # not the ledger's: never touched
        if target in present or not _same_expiry(entry, want, now):
            return entry
        present.add(target)
    return None


def _same_expiry(entry: Ban, ban: GameBan, now: float) -> bool:
    if entry.expired:
        return False
    if ban.expires_at is None or entry.minutes_left is None:
        return ban.expires_at is None and entry.minutes_left is None
    return abs(entry.minutes_left - ban_minutes(ban.expires_at, now)) <= _MINUTES_SLACK
