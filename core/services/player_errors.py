"""The refusals of a player lookup that list who is online, so a member can pick again.

Apart from the service because each keeps one literal template per case (each needs its
own translation) and they only format what the lookup found.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.errors import InvalidInput, NotFound
from core.games.base import OnlinePlayer

__all__ = ["MAX_LISTED", "AmbiguousPlayer", "UnknownPlayer"]

MAX_LISTED = 10


def _listing(players: Sequence[OnlinePlayer]) -> tuple[str, int]:
    """The first players as `name (#key), ...`, and how many more there are."""
    shown = ", ".join(f"{p.name} (#{p.key})" for p in players[:MAX_LISTED])
    return shown, max(0, len(players) - MAX_LISTED)


class AmbiguousPlayer(InvalidInput):
    """Several online players match; `candidates` lets the front end offer them."""

    def __init__(self, query: str, candidates: Sequence[OnlinePlayer]) -> None:
        self.candidates = tuple(candidates)
        listing, more = _listing(candidates)
        if more:
            super().__init__(
                "{count} players match {query!r}: {listing} and {more} more; "
                "pick one from the list or give their number",
                count=len(candidates),
                query=query,
                listing=listing,
                more=more,
            )
        else:
            super().__init__(
                "{count} players match {query!r}: {listing}; "
                "pick one from the list or give their number",
                count=len(candidates),
                query=query,
                listing=listing,
            )


class UnknownPlayer(NotFound):
    """Nobody online matches; `candidates` are the players who are online."""

    def __init__(self, server: str, query: str, candidates: Sequence[OnlinePlayer]) -> None:
        self.candidates = tuple(candidates)
        listing, more = _listing(candidates)
        if more:
            super().__init__(
                "no player {query!r} on {server}; online now: {listing} and {more} more",
                query=query,
                server=server,
                listing=listing,
                more=more,
            )
        elif candidates:
            super().__init__(
                "no player {query!r} on {server}; online now: {listing}",
                query=query,
                server=server,
                listing=listing,
            )
        else:
            super().__init__(
                "no player {query!r} on {server}; nobody is online", query=query, server=server
            )
