"""`/host` beyond the bot's own machine: one embed per other host of hosts.toml.

Why apart from the cog: what a host shows (reachable or why not, engine, CPUs, memory,
disk, its servers, the starts waiting in its queue) and how many hosts fit in one message
are plain rendering, tested without Discord. Discord takes 10 embeds a message and 6,000
characters across them; the machine embed of `local` comes first, the others follow while
they fit, and one last embed counts (and names) the hosts left out.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import discord

from bot.embeds import Lang, clean_game_text, fold_names, format_bytes
from bot.i18n import error_text, tr
from core.services.hosts import HostState, HostStatus

__all__ = ["HostCard", "fit_host_embeds", "host_embed", "waiting_text", "wall_since"]

MAX_EMBEDS = 10
"""Discord's limit of embeds in one message."""
MAX_TOTAL = 6000
"""Discord's limit of characters across all the embeds of one message."""
MORE_ROOM = 420
"""What the closing "+N more hosts" embed may take."""
NAMES_ROOM = 300
"""The servers (running, waiting) named in one field, before "+N more"."""

_ICONS = {HostState.REACHABLE: "🟢", HostState.UNREACHABLE: "🔌", HostState.UNKNOWN: "❔"}
_COLOURS = {
    HostState.REACHABLE: discord.Colour.green(),
    HostState.UNREACHABLE: discord.Colour.red(),
    HostState.UNKNOWN: discord.Colour.light_grey(),
}


@dataclass(frozen=True, slots=True)
class HostCard:
    """One host as `/host` shows it: its status and what the fleet knows of it."""

    status: HostStatus
    running: Sequence[str] = ()
    """Names of the servers running there (as the supervisor knows them)."""
    waiting: Sequence[str] = ()
    """Names of the servers whose start waits in its queue, head first."""
    since: float | None = None
    """Wall-clock time (epoch seconds) it entered its state; None when not known."""


def _not_reported(locale: Lang) -> str:
    return tr(locale, "not reported")


def _share(free: int | None, total: int | None, locale: Lang) -> str:
    if total is None or total <= 0:
        return _not_reported(locale)
    if free is None:
        return tr(locale, "{total} (free: not reported)", total=format_bytes(total))
    return tr(locale, "{free} free of {total}", free=format_bytes(free), total=format_bytes(total))


def _state_line(card: HostCard, locale: Lang) -> str:
    status = card.status
    when = f"<t:{int(card.since)}:R>" if card.since is not None else None
    if status.state is HostState.REACHABLE:
        if when is None:
            return tr(locale, "reachable")
        return tr(locale, "reachable since {when}", when=when)
    if status.state is HostState.UNKNOWN:
        return tr(locale, "not probed yet")
    problem = status.problem
    why = error_text(locale, problem) if problem is not None else tr(locale, "no reason given")
    why = clean_game_text(why, 300)
    if when is None:
        return tr(locale, "unreachable: {reason}", reason=why)
    return tr(locale, "unreachable since {when}: {reason}", when=when, reason=why)


def waiting_text(names: Sequence[str], locale: Lang) -> str:
    """The starts waiting in a host's queue: how many, then their servers, head first."""
    if not names:
        return tr(locale, "none")
    listed = fold_names(list(names), NAMES_ROOM, locale=locale)
    return tr(locale, "{count}: {names}", count=len(names), names=listed)


def host_embed(card: HostCard, locale: Lang = None) -> discord.Embed:
    """One host other than `local`: never its endpoint or TLS files (an endpoint can name
    a user, a file path says where the keys are), only what a member may read."""
    status = card.status
    embed = discord.Embed(
        title=f"{_ICONS[status.state]} {status.name}",
        description=f"**{_state_line(card, locale)}**",
        colour=_COLOURS[status.state],
    )
    facts = status.facts
    if facts is not None and facts.engine_version:
        engine = tr(
            locale,
            "Docker {version} · API {api}",
            version=clean_game_text(facts.engine_version, 40),
            api=clean_game_text(facts.api_version or "?", 20),
        )
    else:
        engine = _not_reported(locale)
    embed.add_field(name=tr(locale, "Engine"), value=engine)
    embed.add_field(
        name=tr(locale, "CPUs"), value=str(facts.cpus) if facts else _not_reported(locale)
    )
    memory = _share(facts.memory_available, facts.memory_total, locale) if facts else None
    embed.add_field(name=tr(locale, "Memory"), value=memory or _not_reported(locale))
    disk = _share(facts.disk_free, facts.disk_total, locale) if facts else None
    embed.add_field(name=tr(locale, "Disk"), value=disk or _not_reported(locale))
    games = ", ".join(sorted(status.spec.images)) or tr(locale, "none")
    embed.add_field(name=tr(locale, "Games"), value=games[:200])
    running = fold_names(list(card.running), NAMES_ROOM, locale=locale) if card.running else None
    # on a host away they may have stopped meanwhile: never call them running then
    if status.state is HostState.UNREACHABLE:
        servers = tr(locale, "Servers (state unknown)")
    else:
        servers = tr(locale, "Running servers")
    embed.add_field(name=servers, value=running or tr(locale, "none"))
    embed.add_field(name=tr(locale, "Waiting to start"), value=waiting_text(card.waiting, locale))
    if status.state is HostState.UNREACHABLE and facts is not None:
        embed.set_footer(text=tr(locale, "Figures from its last answer"))
    return embed


def _more_embed(cards: Sequence[HostCard], locale: Lang) -> discord.Embed:
    names = [f"{_ICONS[c.status.state]} {c.status.name}" for c in cards]
    title = tr(locale, "+{count} more hosts", count=len(cards))
    text = fold_names(names, MORE_ROOM - len(title) - 10, locale=locale)
    return discord.Embed(title=title, description=text, colour=discord.Colour.light_grey())


def fit_host_embeds(
    cards: Sequence[HostCard], locale: Lang, *, used_embeds: int = 1, used_chars: int = 0
) -> list[discord.Embed]:
    """The embeds of `cards` that fit in one message beside `used_embeds` embeds of
    `used_chars` characters (the machine embed), and, when some do not, one more that
    counts and names them."""
    room = MAX_EMBEDS - used_embeds
    out: list[discord.Embed] = []
    used = used_chars
    for index, card in enumerate(cards):
        embed = host_embed(card, locale)
        size = used + len(embed)
        last = index == len(cards) - 1
        fits_last = last and len(out) + 1 <= room and size <= MAX_TOTAL
        fits_more = not last and len(out) + 2 <= room and size + MORE_ROOM <= MAX_TOTAL
        if not (fits_last or fits_more):
            break
        out.append(embed)
        used = size
    left = cards[len(out) :]
    if left and len(out) < room:
        out.append(_more_embed(left, locale))
    return out


def wall_since(
    status: HostStatus, now: float | None = None, clock: float | None = None
) -> float | None:
    """When a host entered its state, in epoch seconds: the registry keeps it on the
    monotonic clock (immune to clock changes), Discord's timestamps want wall time."""
    if status.since is None:
        return None
    wall = time.time() if now is None else now
    mono = time.monotonic() if clock is None else clock
    return wall - max(0.0, mono - status.since)
