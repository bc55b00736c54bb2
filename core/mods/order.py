"""Load order: the order of `-mod=` is the order the game loads mods in (reference §4.5).

The convention is CBA first, then frameworks (ACE), then what depends on them; compat and
patch mods after what they patch (Flaxs #127, ASM #155). An admin rarely wants to retype a
whole modpack to move one mod, so `reorder` takes only the mods to arrange: they get the
given order among the places they already hold, and every other mod stays where it is.
`reorder([cba, ace, rhs, compat], [rhs, ace])` → `[cba, rhs, ace, compat]`.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

from core.errors import InvalidInput

__all__ = ["move", "reorder"]

T = TypeVar("T", bound=Hashable)


def reorder(current: Sequence[T], wanted: Sequence[T]) -> list[T]:
    """`wanted` (each at most once, all in `current`) takes the slots those items hold."""
    if len(set(wanted)) != len(wanted):
        raise InvalidInput("each mod may be named once in an order")
    present = set(current)
    unknown = [item for item in wanted if item not in present]
    if unknown:
        raise InvalidInput("{item} is not in this list of mods", item=str(unknown[0]))
    chosen = set(wanted)
    queue = iter(wanted)
    return [next(queue) if item in chosen else item for item in current]


def move(current: Sequence[T], item: T, position: int) -> list[T]:
    """`item` to the 1-based `position` (clamped), the others keeping their order."""
    if item not in current:
        raise InvalidInput("{item} is not in this list of mods", item=str(item))
    rest = [other for other in current if other != item]
    index = max(0, min(len(rest), position - 1))
    return [*rest[:index], item, *rest[index:]]
