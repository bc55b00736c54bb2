"""One look for every answer: colours by state, escaped game text, code blocks for logs."""

from __future__ import annotations

import datetime as dt
import re

import discord

from core.supervisor.states import ServerState

__all__ = [
    "STATE_COLOURS",
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
    "sparkline",
    "strip_terminal",
]

STATE_COLOURS = {
    ServerState.RUNNING: discord.Colour.green(),
    ServerState.STARTING: discord.Colour.gold(),
    ServerState.STOPPING: discord.Colour.gold(),
    ServerState.STOPPED: discord.Colour.light_grey(),
    ServerState.CRASHED: discord.Colour.orange(),
    ServerState.FAILED: discord.Colour.red(),
}
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_TICKS = re.compile(r"`(?=`)")
SPARK_BLOCKS = "▁▂▃▄▅▆▇█"
FIELD_LIMIT = 1024
"""Discord's limit for an embed field's value."""


def more_text(count: int) -> str:
    """What stands for the names left out of a folded list."""
    return f"+{count} more"


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


def code_block(lines: list[str], limit: int = 1900) -> str:
    """Lines in a code block that fits Discord's limit (oldest lines dropped first)."""
    body: list[str] = []
    size = 8
    for line in reversed(lines):
        line = escape_code(strip_terminal(line))
        if size + len(line) + 1 > limit:
            break
        body.append(line)
        size += len(line) + 1
    return "```\n" + "\n".join(reversed(body)) + "\n```" if body else "```\n(no lines)\n```"


def fit_lines(lines: list[str], limit: int = 4000) -> str:
    """Lines joined to fit an embed description (4,096 characters); the rest are counted."""
    kept: list[str] = []
    size = 0
    for index, line in enumerate(lines):
        more = f"… and {len(lines) - index} more"
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


def format_uptime(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return str(dt.timedelta(seconds=int(seconds)))


def format_bytes(count: float | None) -> str:
    if count is None:
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def fold_names(names: list[str] | tuple[str, ...], limit: int = FIELD_LIMIT) -> str:
    """Escaped names, comma-separated, as many as fit in `limit` characters; the rest are
    counted ("+N more"), so a full server never breaks the field limit."""
    cleaned = [clean_game_text(name, 40) for name in names]
    for shown in range(len(cleaned), -1, -1):
        text = ", ".join(cleaned[:shown])
        left = len(cleaned) - shown
        if left:
            text = f"{text} {more_text(left)}" if text else more_text(left)
        if len(text) <= limit:
            return text
    return more_text(len(cleaned))[:limit]


def sparkline(values: list[int] | tuple[int, ...], top: int | None = None) -> str:
    """One block character per value (▁ for zero, █ for `top`, the highest value when no
    `top` is given): a glance at how busy a server was, small enough for an embed field."""
    if not values:
        return ""
    high = max(top or 0, *values, 1)
    last = len(SPARK_BLOCKS) - 1
    return "".join(SPARK_BLOCKS[min(last, max(0, round(v * last / high)))] for v in values)
