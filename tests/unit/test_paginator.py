"""The paginator's page planning: at most N entries a page, never more than fits an embed."""

from __future__ import annotations

import warnings

with warnings.catch_warnings():  # discord.py imports the deprecated stdlib audioop
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    from bot.i18n import tr
    from bot.paginator import (
        DESCRIPTION_BUDGET,
        ListSource,
        Noun,
        fit_entries,
        footer_text,
        plan_pages,
        takes_plural,
    )
from core.paging import window


def test_pages_hold_at_most_per_page_entries() -> None:
    entries = [f"ban {n}" for n in range(45)]
    assert plan_pages(entries, 25, "\n", DESCRIPTION_BUDGET) == [0, 25]
    assert plan_pages(entries[:25], 25, "\n", DESCRIPTION_BUDGET) == [0]
    assert plan_pages([], 25, "\n", DESCRIPTION_BUDGET) == [0]


def test_pages_are_split_by_size_too() -> None:
    entries = ["x" * 300] * 25  # 25 fit the count, but 7,500 characters do not fit 4,000
    starts = plan_pages(entries, 25, "\n", DESCRIPTION_BUDGET)
    assert starts == [0, 13]  # 13 x 300 + 12 separators = 3,912 ≤ 4,000
    for begin, end in zip(starts, [*starts[1:], len(entries)], strict=True):
        assert len("\n".join(entries[begin:end])) <= DESCRIPTION_BUDGET


def test_an_entry_longer_than_a_page_is_clipped_not_lost() -> None:
    kept = fit_entries(["y" * 10_000, "short"], "\n", 100)
    assert kept == ["y" * 99 + "…"]
    assert plan_pages(["y" * 10_000, "short"], 25, "\n", 100) == [0, 1]


def test_separator_counts_toward_the_budget() -> None:
    assert fit_entries(["a" * 50, "b" * 50], "\n\n", 101) == ["a" * 50]
    assert fit_entries(["a" * 50, "b" * 50], "\n\n", 102) == ["a" * 50, "b" * 50]


async def test_list_source_slices() -> None:
    source = ListSource([str(n) for n in range(7)], 3)
    assert await source.fetch(3, 3) == (7, ["3", "4", "5"])
    assert await source.fetch(6, 3) == (7, ["6"])


def test_totals_are_always_shown() -> None:
    bans = Noun("{count} ban", "{count} bans")
    assert footer_text(None, bans.count(45), 1, 2) == "45 bans · page 1 of 2"
    assert footer_text("en-US", bans.count(1), 1, 1) == "1 ban"
    assert footer_text(None, bans.count(0), 1, 1) == "0 bans"
    assert Noun("ban", "bans").count(2) == "2 bans"  # a bare word: the number goes first


def test_french_counts_and_pages() -> None:
    """French says "0 ban" and "1 ban" (singular up to one), and "page 2 sur 3"."""
    bans = Noun(tr("fr", "{count} ban"), tr("fr", "{count} bans"), "fr")
    assert [bans.count(n) for n in (0, 1, 2)] == ["0 ban", "1 ban", "2 bans"]
    entries = Noun(tr("fr", "{count} entry"), tr("fr", "{count} entries"), "fr")
    assert footer_text("fr", entries.count(0), 1, 1) == "0 entrée"
    assert footer_text("fr", entries.count(45), 2, 3) == "45 entrées · page 2 sur 3"
    assert takes_plural("fr-CA", 1) is False and takes_plural("en-GB", 0) is True


def test_window_bounds_what_a_button_can_ask() -> None:
    assert window(-5, 0) == (0, 1)
    assert window(10, 10_000) == (10, 100)
    assert window(10, 30, 25) == (10, 25)
