"""Which bans found in a game are new to the ledger, in the ledger's stored form.

A game's ban list (or ban file) holds the bot's bans and others' (made before the bot, in
game, with another tool). The ledger imports the others, so they are listed, kept and
re-applied like its own, and so nothing the bot did not make is ever taken out of a game.
A found ban is already known when the ledger holds an active ban of the same target for
that server, or has lifted one there that the game has yet to lose.

`new_found` is pure (tested on its own, with no database or game behind it);
`import_found` records its answer in the ledger and the audit log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from core.errors import InvalidInput
from core.games.base import BanKind, GameBan
from core.services.audit import SYSTEM, AuditLog
from core.services.ban_targets import clean_text, normalise_target
from data.repositories.bans import Ban, BanRepository, FoundBan

__all__ = ["GAME_AUTHOR", "IMPORT_LIMIT", "import_found", "new_found"]

_log = logging.getLogger(__name__)

IMPORT_LIMIT = 2000
"""Bans imported from one game at a time; the rest (still in the game) come at the next."""
GAME_AUTHOR = "game"
"""The author of an imported ban when the game does not say who made it."""


def _key(kind: BanKind, value: str) -> tuple[BanKind, str]:
    return kind, value.lower()


def _stored(kind: BanKind, value: str) -> str | None:
    try:
        return normalise_target(kind, value[:64])
    except InvalidInput:
        return None


def new_found(
    found: Iterable[GameBan],
    known: Sequence[Ban],
    kinds: frozenset[BanKind],
    now: float,
    limit: int = IMPORT_LIMIT,
) -> list[FoundBan]:
    """The found bans the ledger does not know, one per target (the longest), at most
    `limit`; expired ones, and kinds the server's game does not ban by, are left out.

    `known` is the ledger's active bans for the server plus those lifted there but not yet
    taken out of the game.
    """
    keys = {_key(ban.kind, ban.value) for ban in known}
    fresh: dict[tuple[BanKind, str], FoundBan] = {}
    for ban in found:
        if ban.kind not in kinds or (ban.expires_at is not None and ban.expires_at <= now):
            continue
        value = _stored(ban.kind, ban.value)
        if value is None:
            continue
        key = _key(ban.kind, value)
        alias = _stored(BanKind.UUID, ban.alias) if ban.alias else None
        if key in keys or (alias is not None and _key(BanKind.UUID, alias) in keys):
            continue
        held = fresh.get(key)
        if held is not None:
            if held.expires_at is not None and (
                ban.expires_at is None or ban.expires_at > held.expires_at
            ):
                fresh[key] = _as_found(ban, value)
            continue
        if len(fresh) >= limit:
            break
        fresh[key] = _as_found(ban, value)
    return list(fresh.values())


def _as_found(ban: GameBan, value: str) -> FoundBan:
    return FoundBan(
        kind=ban.kind,
        value=value,
        reason=clean_text(ban.reason[:4000]),
        author_name=clean_text(ban.source[:200], 64) or GAME_AUTHOR,
        expires_at=ban.expires_at,
    )


async def import_found(
    repo: BanRepository,
    audit: AuditLog,
    server: tuple[int, str],
    found: Sequence[GameBan],
    kinds: frozenset[BanKind],
    now: float,
    where: str,
) -> int:
    """Record the bans found in a server's game (`where`: its files, its live list) that the
    ledger does not know, scoped to that server, audited in one entry; returns how many."""
    server_id, name = server
    known = [*await repo.active_for(server_id, kinds, now), *await repo.lifted_on(server_id)]
    fresh = new_found(found, known, kinds, now)
    if not fresh:
        return 0
    await repo.add_found(server_id, fresh, now)
    _log.info("imported %d bans found in %s of %s", len(fresh), where, name)
    await audit.record(
        SYSTEM,
        "bans.import",
        server_id=server_id,
        arguments={"count": len(fresh), "from": where, "values": [f.value for f in fresh[:20]]},
        result=f"imported {len(fresh)} bans found in {where}",
    )
    return len(fresh)
