"""One paginator for every list the bot shows: pages of at most N entries that always fit an
embed, Previous / Next buttons only the invoker can press, the total always in view.

Entries come from a `PageSource`: `ListSource` for lists already in memory (a live player
list, the servers), `QuerySource` for lists the database pages (`LIMIT`/`OFFSET` plus a
`COUNT`: bans, player history, the audit trail), so nothing is loaded in full and nothing
is cut silently. A page holds at most `per_page` entries, and fewer when they would not fit
the description's `DESCRIPTION_BUDGET`; an entry longer than the whole budget is clipped.

The view is short-lived (`PAGE_TIMEOUT`): on timeout its buttons are disabled with one edit;
a message deleted (or an ephemeral whose token expired) meanwhile is not an error.

Everything on it is in the invoker's language (`Paginator(locale=interaction.locale)`): the
buttons, "page 2 of 3", and the total, whose noun takes the plural by that language's rule
(`Noun`, `takes_plural`: French counts "0 ban", English "0 bans").
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import discord

from bot.checks import guard_guild, member_level
from bot.embeds import error_embed
from bot.i18n import error_text, tr
from core.errors import LanguardError
from core.permissions import Level

__all__ = [
    "DESCRIPTION_BUDGET",
    "PAGE_TIMEOUT",
    "ListSource",
    "Noun",
    "PageSource",
    "Paginator",
    "QuerySource",
    "fit_entries",
    "plan_pages",
    "send_pages",
    "takes_plural",
]

_log = logging.getLogger(__name__)

PAGE_TIMEOUT = 180.0
"""Seconds without a press before the buttons are disabled (tests patch it shorter)."""
DESCRIPTION_BUDGET = 4000
"""Characters of entries (and note) per page: under Discord's 4,096 for a description, and
with a title ≤ 256 and a short footer far under the 6,000 of a whole embed."""
TITLE_LIMIT = 256

# ----- what users read, in their language ------------------------------------------------------

PLURAL_RULES: dict[str, Callable[[int], bool]] = {
    "fr": lambda n: abs(n) >= 2,  # French: "0 ban", "1 ban", "2 bans"
}
"""Which counts take the plural form, by language; English's rule (all but 1) otherwise."""


def takes_plural(locale: str | discord.Locale | None, count: int) -> bool:
    """True when `count` things take the plural form in `locale`'s language."""
    code = locale.value if isinstance(locale, discord.Locale) else str(locale or "")
    rule = PLURAL_RULES.get(code.split("-", 1)[0].lower())
    return rule(count) if rule is not None else count != 1


def page_label(locale: str | discord.Locale | None, number: int, pages: int) -> str:
    return tr(locale, "page {number} of {pages}", number=number, pages=pages)


def footer_text(locale: str | discord.Locale | None, counted: str, number: int, pages: int) -> str:
    return counted if pages <= 1 else f"{counted} · {page_label(locale, number, pages)}"


def not_yours(locale: str | discord.Locale | None, name: str) -> str:
    return tr(locale, "Only {name} can page this.", name=name)


def level_lost(locale: str | discord.Locale | None, level: Level) -> str:
    return tr(locale, "You need the **{level}** level to page this.", level=tr(locale, level.label))


def failed_text(locale: str | discord.Locale | None) -> str:
    return tr(locale, "This page could not be shown; run the command again.")


@dataclass(frozen=True, slots=True)
class Noun:
    """How the total is counted, in the reader's language. Both forms come translated, with
    a `{count}` field: `Noun(tr(loc, "{count} ban"), tr(loc, "{count} bans"), loc)`; the
    language's rule picks one (`takes_plural`): English "1 ban, 0 bans", French "0 ban,
    1 ban, 2 bans". A form without `{count}` is a bare word: the number goes before it."""

    one: str
    many: str
    locale: str | discord.Locale | None = None

    def count(self, total: int) -> str:
        form = self.many if takes_plural(self.locale, total) else self.one
        if "{count}" not in form:
            return f"{total} {form}"
        return form.replace("{count}", str(total))


# ----- sources ---------------------------------------------------------------------------------


class PageSource(Protocol):
    """Entries rendered as text, fetched a window at a time."""

    per_page: int
    separator: str

    async def fetch(self, offset: int, limit: int) -> tuple[int, Sequence[str]]:
        """(the total number of entries, up to `limit` rendered entries from `offset`)."""
        ...


class ListSource:
    """A list already in memory (bounded by nature: players online, servers, grants)."""

    def __init__(self, entries: Sequence[str], per_page: int, separator: str = "\n") -> None:
        self.entries = list(entries)
        self.per_page = per_page
        self.separator = separator

    async def fetch(self, offset: int, limit: int) -> tuple[int, Sequence[str]]:
        return len(self.entries), self.entries[offset : offset + limit]


class QuerySource:
    """A list the service pages: `fetch(offset, limit)` runs one LIMIT/OFFSET query and a
    COUNT each time a page is shown, so a page is as fresh as the press."""

    def __init__(
        self,
        fetch: Callable[[int, int], Awaitable[tuple[int, Sequence[str]]]],
        per_page: int,
        separator: str = "\n",
    ) -> None:
        self._fetch = fetch
        self.per_page = per_page
        self.separator = separator

    async def fetch(self, offset: int, limit: int) -> tuple[int, Sequence[str]]:
        return await self._fetch(offset, limit)


# ----- fitting entries into pages --------------------------------------------------------------


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def fit_entries(entries: Sequence[str], separator: str, budget: int) -> list[str]:
    """The leading entries that fit `budget` characters joined by `separator`: at least one
    (clipped to the budget when it alone is too long) when there is any."""
    kept: list[str] = []
    size = 0
    for entry in entries:
        extra = len(separator) if kept else 0
        if not kept:
            entry = _clip(entry, budget)
        if kept and size + extra + len(entry) > budget:
            break
        kept.append(entry)
        size += extra + len(entry)
    return kept


def plan_pages(entries: Sequence[str], per_page: int, separator: str, budget: int) -> list[int]:
    """Where each page starts: at most `per_page` entries, fewer when they would not fit."""
    starts = [0]
    offset = 0
    while True:
        shown = len(fit_entries(entries[offset : offset + per_page], separator, budget))
        offset += shown
        if shown == 0 or offset >= len(entries):
            return starts
        starts.append(offset)


# ----- the view --------------------------------------------------------------------------------


class Paginator(discord.ui.View):
    """Pages of a `PageSource` for the member who ran the command (and, when `level` is
    given, only while they still hold it: a button applies the command's own level).

    `locale` is the invoker's (`interaction.locale`): only they can turn the pages, so the
    buttons and footer stay in their language; `title`, `empty` and `note` come translated."""

    def __init__(
        self,
        source: PageSource,
        *,
        owner: discord.abc.User,
        title: str,
        noun: Noun,
        empty: str,
        note: str = "",
        level: Level | None = None,
        server_id: int | None = None,
        colour: discord.Colour | None = None,
        locale: str | discord.Locale | None = None,
    ) -> None:
        super().__init__(timeout=PAGE_TIMEOUT)
        self.locale = locale
        self.previous_button.label = tr(locale, "Previous")
        self.next_button.label = tr(locale, "Next")
        self.page_button.label = page_label(locale, 1, 1)
        self.source = source
        self.owner_id = owner.id
        self.owner_name = getattr(owner, "display_name", None) or str(owner)
        self.title = _clip(title, TITLE_LIMIT)
        self.noun = noun
        self.empty = empty
        self.note = note
        self.level = level
        self.server_id = server_id
        self.colour = colour or discord.Colour.blurple()
        self.index = 0
        self.total = 0
        self._shown = 0
        self._starts = [0]
        self._planned = False
        self._lock = asyncio.Lock()
        self._interaction: discord.Interaction[Any] | None = None
        self._timed_out = False

    # -- pages -------------------------------------------------------------------------------

    @property
    def budget(self) -> int:
        return DESCRIPTION_BUDGET - (len(self.note) + 2 if self.note else 0)

    @property
    def page_count(self) -> int:
        """Exact for a list in memory; for a queried list, the pages seen so far plus what
        the rest needs at `per_page` a page (it grows only if a later page is split by size)."""
        if self._planned:
            return len(self._starts)
        rest = max(0, self.total - self._starts[self.index] - self._shown)
        return self.index + 1 + math.ceil(rest / max(1, self.source.per_page))

    async def start(self) -> discord.Embed:
        """The first page (plans every page when the list is in memory)."""
        if isinstance(self.source, ListSource):
            src = self.source
            self._starts = plan_pages(src.entries, src.per_page, src.separator, self.budget)
            self._planned = True
        return await self._show(0)

    async def _show(self, index: int) -> discord.Embed:
        index = max(0, min(index, len(self._starts) - 1))
        start = self._starts[index]
        total, entries = await self.source.fetch(start, self.source.per_page)
        if not entries and start > 0:  # the list shrank under us: back to the first page
            index, start = 0, 0
            del self._starts[1:]
            self._planned = False
            total, entries = await self.source.fetch(0, self.source.per_page)
        kept = fit_entries(entries, self.source.separator, self.budget)
        self.index, self.total, self._shown = index, total, len(kept)
        if not self._planned:
            del self._starts[index + 1 :]
            if start + len(kept) < total and kept:
                self._starts.append(start + len(kept))
        self._update_buttons()
        body = self.source.separator.join(kept) if kept else self.empty
        if self.note:
            body = f"{body}\n\n{self.note}"
        embed = discord.Embed(title=self.title, description=body, colour=self.colour)
        counted = self.noun.count(total)
        embed.set_footer(text=footer_text(self.locale, counted, index + 1, self.page_count))
        return embed

    def _update_buttons(self) -> None:
        last = self.index + 1 >= len(self._starts)
        self.previous_button.disabled = self.index == 0 or self._timed_out
        self.next_button.disabled = last or self._timed_out
        self.page_button.label = page_label(self.locale, self.index + 1, self.page_count)

    # -- who may press -----------------------------------------------------------------------

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        # discord.py answers nothing when this returns False: every refusal answers here;
        # a refusal is in the language of whoever pressed
        if not await guard_guild(interaction):
            return False
        locale = interaction.locale
        if interaction.user.id != self.owner_id:
            refusal = not_yours(locale, self.owner_name)
            await interaction.response.send_message(refusal, ephemeral=True)
            return False
        if self.level is not None and await member_level(interaction, self.server_id) < self.level:
            await interaction.response.send_message(level_lost(locale, self.level), ephemeral=True)
            return False
        return True

    async def on_error(
        self, interaction: discord.Interaction[Any], error: Exception, item: discord.ui.Item[Any]
    ) -> None:
        if isinstance(error, LanguardError):
            text = error_text(self.locale, error)
        else:
            text = failed_text(self.locale)
            _log.error("paging %r failed", self.title, exc_info=error)
        try:
            if interaction.response.is_done():
                await interaction.followup.send(embed=error_embed(text), ephemeral=True)
            else:
                await interaction.response.send_message(embed=error_embed(text), ephemeral=True)
        except discord.HTTPException:
            pass

    # -- buttons -----------------------------------------------------------------------------

    async def _turn(self, interaction: discord.Interaction[Any], step: int) -> None:
        async with self._lock:
            embed = await self._show(self.index + step)
        self._interaction = interaction  # its token is the freshest for the timeout's edit
        await interaction.response.edit_message(embed=embed, view=self)

    # labels are set per view, in the invoker's language (see __init__)
    @discord.ui.button(style=discord.ButtonStyle.secondary, emoji="◀️")
    async def previous_button(
        self, interaction: discord.Interaction[Any], button: discord.ui.Button[Paginator]
    ) -> None:
        await self._turn(interaction, -1)

    @discord.ui.button(label="1/1", style=discord.ButtonStyle.secondary, disabled=True)
    async def page_button(
        self, interaction: discord.Interaction[Any], button: discord.ui.Button[Paginator]
    ) -> None:  # a label, never enabled
        await interaction.response.defer()

    @discord.ui.button(style=discord.ButtonStyle.secondary, emoji="▶️")
    async def next_button(
        self, interaction: discord.Interaction[Any], button: discord.ui.Button[Paginator]
    ) -> None:
        await self._turn(interaction, +1)

    # -- the end -----------------------------------------------------------------------------

    def bind(self, interaction: discord.Interaction[Any]) -> None:
        """Remember the interaction whose message this view is on (for the timeout's edit)."""
        if self._interaction is None:
            self._interaction = interaction

    async def on_timeout(self) -> None:
        """Disable the buttons with one edit; a message gone meanwhile (deleted, dismissed,
        or its token expired) is simply left as it is."""
        if self._timed_out:
            return
        self._timed_out = True
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True
        interaction = self._interaction
        if interaction is None:
            return
        try:
            await interaction.edit_original_response(view=self)
        except (discord.HTTPException, OSError) as exc:
            _log.debug("paginator %r: buttons left as they were (%s)", self.title, exc)


async def send_pages(
    interaction: discord.Interaction[Any], view: Paginator, *, ephemeral: bool
) -> None:
    """Answer (or fill the deferred answer) with the first page; buttons only when there
    is more than one page."""
    embed = await view.start()
    paged = view.page_count > 1
    if not paged:
        view.stop()
    if interaction.response.is_done():
        if paged:
            await interaction.followup.send(embed=embed, view=view, ephemeral=ephemeral, wait=True)
        else:
            await interaction.followup.send(embed=embed, ephemeral=ephemeral)
    elif paged:
        await interaction.response.send_message(embed=embed, view=view, ephemeral=ephemeral)
    else:
        await interaction.response.send_message(embed=embed, ephemeral=ephemeral)
    if paged:
        view.bind(interaction)
