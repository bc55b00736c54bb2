"""Permission levels and the one pure function that resolves a member's level.

Levels are ordered, each including the ones below it. The guild owner and members with
Discord's Administrator permission are always admin, so a fresh install can be set up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

__all__ = ["Grant", "Level", "resolve_level"]


class Level(IntEnum):
    NONE = 0
    VIEWER = 1
    MODERATOR = 2
    OPERATOR = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Level:
        try:
            level = cls[text.strip().upper()]
        except KeyError:
            raise ValueError("level must be viewer, moderator, operator or admin") from None
        if level is cls.NONE:
            raise ValueError("level must be viewer, moderator, operator or admin")
        return level


@dataclass(frozen=True, slots=True)
class Grant:
    """A role's level, for every server (server_id None) or for one server."""

    role_id: int
    level: Level
    server_id: int | None = None


def resolve_level(
    role_ids: Iterable[int],
    grants: Iterable[Grant],
    *,
    server_id: int | None = None,
    is_owner: bool = False,
    is_administrator: bool = False,
) -> Level:
    """The highest level any of the member's roles has, globally or for `server_id`."""
    if is_owner or is_administrator:
        return Level.ADMIN
    roles = set(role_ids)
    best = Level.NONE
    for grant in grants:
        if grant.role_id not in roles:
            continue
        if grant.server_id is not None and grant.server_id != server_id:
            continue
        best = max(best, grant.level)
    return best
