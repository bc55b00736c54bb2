"""One look for every answer: colours by state, escaped game text, code blocks for logs.

The few words these helpers add (a state's name, "+3 more", "2 days") go through the
catalogue: each helper takes the reader's `locale` (None: English).
"""

from __future__ import annotations

import datetime as dt
import re

import discord

from bot.i18n import tr
from core.services.server_views import ActionResult, ServerStatus
from core.supervisor.states import ServerState

__all__ = [
    "STATE_COLOURS",
    "STATE_ICONS",
    "UNKNOWN_ICON",
    "Lang",
    "clean_game_text",
    "code_block",
    "error_embed",
    "escape_code",
    "fit_lines",
    "fold_names",
    "format_bytes",
    "format_uptime",
    "info_embed",
    "ok_embed",
    "result_embed",
    "server_status_embed",
    "shown_colour",
    "shown_icon",
    "shown_state",
    "sparkline",
    "state_text",
    "strip_terminal",
]

Lang = str | discord.Locale | None
"""Whose language a text is in: `interaction.locale`, a guild's, or None for English."""

STATE_COLOURS = {
    ServerState.RUNNING: discord.Colour.green(),
    ServerState.STARTING: discord.Colour.gold(),
    ServerState.STOPPING: discord.Colour.gold(),
    ServerState.STOPPED: discord.Colour.light_grey(),
    ServerState.CRASHED: discord.Colour.orange(),
    ServerState.FAILED: discord.Colour.red(),
}
STATE_ICONS = {
    ServerState.RUNNING: "🟢",
    ServerState.STARTING: "🟡",
    ServerState.STOPPING: "🟡",
    ServerState.STOPPED: "⚪",
    ServerState.CRASHED: "🟠",
    ServerState.FAILED: "🔴",
}
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_TICKS = re.compile(r"`(?=`)")
SPARK_BLOCKS = "▁▂▃▄▅▆▇█"
FIELD_LIMIT = 1024
"""Discord's limit for an embed field's value."""


def state_text(locale: Lang, state: ServerState) -> str:
    """A state's name as the reader says it (every state is in the catalogue)."""
    return tr(locale, state.value)


UNKNOWN_ICON = "❔"


def shown_state(locale: Lang, state: ServerState, host_unreachable: bool = False) -> str:
    """The state to show: "unknown (host unreachable)" while a server's host does not answer,
    since its last known state (running, say) may no longer be true and is never a crash."""
    if host_unreachable:
        return tr(locale, "unknown (host unreachable)")
    return state_text(locale, state)


def shown_icon(state: ServerState, host_unreachable: bool = False) -> str:
    return UNKNOWN_ICON if host_unreachable else STATE_ICONS.get(state, "")


def shown_colour(state: ServerState, host_unreachable: bool = False) -> discord.Colour:
    if host_unreachable:
        return discord.Colour.dark_grey()
    return STATE_COLOURS.get(state, discord.Colour.default())


def more_text(count: int, locale: Lang = None) -> str:
    """What stands for the names left out of a folded list."""
    return tr(locale, "+{count} more", count=count)


def strip_terminal(text: str) -> str:
    """Text without ANSI escapes (colours, titles) or control characters."""
    return _CONTROL.sub("", _ANSI.sub("", text))


def escape_code(line: str) -> str:
    """A line that cannot close a code block: a zero-width space between backticks."""
    return _TICKS.sub("`\u200b", line) if "``" in line else line


def clean_game_text(text: str, limit: int = 1000) -> str:
    """Game text made safe for Discord: no ANSI, no control chars, no markdown, no pings."""
    text = strip_terminal(text)
    text = discord.utils.escape_mentions(discord.utils.escape_markdown(text))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def code_block(lines: list[str], limit: int = 1900, *, locale: Lang = None) -> str:
    """Lines in a code block that fits Discord's limit (oldest lines dropped first)."""
    body: list[str] = []
    size = 8
    for line in reversed(lines):
        line = escape_code(strip_terminal(line))
        if size + len(line) + 1 > limit:
            break
        body.append(line)
        size += len(line) + 1
    if not body:
        return "```\n" + tr(locale, "(no lines)") + "\n```"
    return "```\n" + "\n".join(reversed(body)) + "\n```"


def fit_lines(lines: list[str], limit: int = 4000, *, locale: Lang = None) -> str:
    """Lines joined to fit an embed description (4,096 characters); the rest are counted."""
    kept: list[str] = []
    size = 0
    for index, line in enumerate(lines):
        more = tr(locale, "… and {count} more", count=len(lines) - index)
        if size + len(line) + 1 + len(more) > limit:
            kept.append(more)
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(kept)


def ok_embed(title: str, description: str = "") -> discord.Embed:
    return discord.Embed(title=title, description=description, colour=discord.Colour.green())


def info_embed(title: str, description: str = "") -> discord.Embed:
    return discord.Embed(title=title, description=description, colour=discord.Colour.blurple())


def error_embed(description: str) -> discord.Embed:
    return discord.Embed(description=f"⚠️ {description}", colour=discord.Colour.red())


def format_uptime(seconds: float | None, locale: Lang = None) -> str:
    """`2 days, 3:04:05` (English as Python writes a timedelta), in the reader's language."""
    if seconds is None:
        return "—"
    days, rest = divmod(int(seconds), 86400)
    clock = str(dt.timedelta(seconds=rest))
    if days <= 0:
        return clock
    if days == 1:
        return tr(locale, "1 day, {clock}", clock=clock)
    return tr(locale, "{days} days, {clock}", days=days, clock=clock)


def format_bytes(count: float | None) -> str:
    if count is None:
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def fold_names(
    names: list[str] | tuple[str, ...], limit: int = FIELD_LIMIT, *, locale: Lang = None
) -> str:
    """Escaped names, comma-separated, as many as fit in `limit` characters; the rest are
    counted ("+N more"), so a full server never breaks the field limit."""
    cleaned = [clean_game_text(name, 40) for name in names]
    for shown in range(len(cleaned), -1, -1):
        text = ", ".join(cleaned[:shown])
        left = len(cleaned) - shown
        if left:
            more = more_text(left, locale)
            text = f"{text} {more}" if text else more
        if len(text) <= limit:
            return text
    return more_text(len(cleaned), locale)[:limit]


def sparkline(values: list[int] | tuple[int, ...], top: int | None = None) -> str:
    """One block character per value (▁ for zero, █ for `top`, the highest value when no
    `top` is given): a glance at how busy a server was, small enough for an embed field."""
    if not values:
        return ""
    high = max(top or 0, *values, 1)
    last = len(SPARK_BLOCKS) - 1
    return "".join(SPARK_BLOCKS[min(last, max(0, round(v * last / high)))] for v in values)


# -- servers, as `/server status` and the lifecycle commands and buttons answer -------------


def result_embed(result: ActionResult, locale: Lang) -> discord.Embed:
    """How a start, stop, restart or kill ended (the same for a command and a button)."""
    icon = "✅" if result.ok else "⚠️"
    text = (
        icon
        + " "
        + tr(
            locale,
            "**{name}** is **{state}**",
            name=result.name,
            state=state_text(locale, result.state),
        )
    )
    if result.reason:
        text += f" — {clean_game_text(result.reason, 300)}"
    return discord.Embed(description=text, colour=STATE_COLOURS.get(result.state))


def server_status_embed(status: ServerStatus, locale: Lang) -> discord.Embed:
    """`/server status`: state, game, address, uptime, players, mission, CPU and RAM."""
    away = status.host_unreachable
    reason = f" — {clean_game_text(status.state_reason, 200)}" if status.state_reason else ""
    if away:  # the last known reason ("adopted …") would read as if it were current
        reason = " — " + tr(locale, "host {host} does not answer", host=status.host)
    embed = discord.Embed(
        title=f"{shown_icon(status.state, away)} {status.name}",
        description=f"**{shown_state(locale, status.state, away)}**{reason}",
        colour=shown_colour(status.state, away),
    )
    embed.add_field(name=tr(locale, "Game"), value=status.game)
    if status.host != "local":
        embed.add_field(name=tr(locale, "Host"), value=status.host)
    embed.add_field(name=tr(locale, "Address"), value=f"`{status.address}`")
    uptime = None if away else status.uptime
    embed.add_field(name=tr(locale, "Uptime"), value=format_uptime(uptime, locale))
    if status.players_online is not None:
        most = f"/{status.players_max}" if status.players_max else ""
        names = ", ".join(clean_game_text(n, 32) for n in status.player_names[:20])
        embed.add_field(
            name=tr(locale, "Players"),
            value=f"{status.players_online}{most}" + (f"\n{names}" if names else ""),
            inline=False,
        )
    if status.mission:
        embed.add_field(name=tr(locale, "Mission"), value=clean_game_text(status.mission, 100))
    if status.headless is not None:
        running, wanted = status.headless
        embed.add_field(name=tr(locale, "Headless clients"), value=f"{running}/{wanted}")
    if status.cpu_percent is not None:
        embed.add_field(name=tr(locale, "CPU"), value=f"{status.cpu_percent:.0f}%")
    if status.rss_bytes is not None:
        embed.add_field(name=tr(locale, "RAM"), value=format_bytes(status.rss_bytes))
    if status.paused:
        embed.set_footer(text=tr(locale, "Maintenance: alerts muted, auto-restart paused"))
    return embed
