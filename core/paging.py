"""One page of a long list: the entries asked for plus the total, so a front end can page
through everything without the service loading (or silently dropping) the rest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["MAX_PAGE", "Page", "window"]

T = TypeVar("T")

MAX_PAGE = 100
"""The most entries one page query returns, whatever the caller asks."""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """`items` start at entry `offset` (0-based) of `total` matching entries."""

    total: int
    offset: int
    items: Sequence[T]


def window(offset: int, limit: int, most: int = MAX_PAGE) -> tuple[int, int]:
    """A safe (offset, limit): offset ≥ 0, 1 ≤ limit ≤ `most` (input comes from buttons)."""
    return max(0, offset), max(1, min(limit, most))
