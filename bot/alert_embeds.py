"""What each alert says: the embeds `bot.alerts` posts, written in the reader's language.

Why apart from the alert desk: the desk decides when an alert fires (routes, muting,
dedup); these functions only word it, so each alert's text can be read and translated in
one place. Everyone in a channel reads an alert, so `locale` is the guild's preferred
language (None: English). Server names, reasons from the game and log lines are data and
stay as they are, made safe for Discord.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Sequence

import discord

from bot.embeds import Lang, clean_game_text, escape_code, format_bytes, format_uptime
from bot.i18n import error_text, tr
from bot.outbox_plan import FENCE
from bot.relay import clean_lines
from core.errors import LanguardError
from core.events import ServerCrashed, ServerFailed, ServerHung, StorageTrouble

__all__ = [
    "crash_embed",
    "disk_embed",
    "failed_embed",
    "gave_up_embed",
    "host_reachable_embed",
    "host_unreachable_embed",
    "hung_embed",
    "log_block",
    "rcon_lost_embed",
    "rcon_restored_embed",
    "storage_restored_embed",
    "storage_trouble_embed",
    "unwritable_embed",
    "writable_embed",
]

ORANGE = discord.Colour.orange()
RED = discord.Colour.red()
GREEN = discord.Colour.green()
GOLD = discord.Colour.gold()


def log_block(lines: Sequence[str], limit: int = 3800, locale: Lang = None) -> str:
    """The last lines that fit, in a code block nothing inside can close."""
    body: list[str] = []
    size = len(FENCE) * 2 + 2
    for line in reversed(clean_lines(list(lines))):
        line = escape_code(line)
        if size + len(line) + 1 > limit:
            break
        body.append(line)
        size += len(line) + 1
    if not body:
        return f"{FENCE}\n{tr(locale, '(no lines)')}\n{FENCE}"
    return f"{FENCE}\n" + "\n".join(reversed(body)) + f"\n{FENCE}"


def _exit_text(event: ServerCrashed, locale: Lang) -> str:
    if event.oom_killed:
        return tr(locale, "killed: out of memory (raise its memory limit)")
    if event.signal is not None:
        try:
            name = signal.Signals(event.signal).name
        except ValueError:
            name = tr(locale, "unknown")
        return tr(locale, "signal {number} ({name})", number=event.signal, name=name)
    if event.exit_code is not None:
        return tr(locale, "exit code {code}", code=event.exit_code)
    return tr(locale, "exited while the bot was down")


def _held_footer(embed: discord.Embed, held: int, locale: Lang) -> None:
    """How many alerts of this kind the dedup window held back since the last one."""
    if held == 1:
        embed.set_footer(text=tr(locale, "1 more alert of this kind since the last one"))
    elif held:
        text = tr(locale, "{held} more alerts of this kind since the last one", held=held)
        embed.set_footer(text=text)


def _name(server: str) -> str:
    return clean_game_text(server, 100)


def crash_embed(event: ServerCrashed, held: int = 0, locale: Lang = None) -> discord.Embed:
    title = tr(locale, "💥 {name} crashed", name=_name(event.server))
    embed = discord.Embed(title=title, colour=ORANGE)
    lines = log_block(event.last_lines, locale=locale)
    embed.description = f"{tr(locale, 'Last log lines:')}\n{lines}"
    embed.add_field(name=tr(locale, "Exit"), value=_exit_text(event, locale))
    embed.add_field(name=tr(locale, "Ran for"), value=format_uptime(event.uptime_s, locale))
    if event.restart_in_s is not None:
        restart = tr(
            locale,
            "attempt {attempt} of {max}, in {seconds} s (<t:{at}:T>)",
            attempt=event.attempt,
            max=event.max_attempts,
            seconds=f"{event.restart_in_s:g}",
            at=int(time.time() + event.restart_in_s),
        )
    else:
        restart = tr(
            locale,
            "no automatic restart (crash {attempt} of {max})",
            attempt=event.attempt,
            max=event.max_attempts,
        )
    embed.add_field(name=tr(locale, "Auto-restart"), value=restart, inline=False)
    _held_footer(embed, held, locale)
    return embed


def gave_up_embed(
    event: ServerFailed, crash: ServerCrashed | None, held: int, locale: Lang
) -> discord.Embed:
    """The crash loop was given up: why, the last crash, and what to do."""
    title = tr(locale, "🛑 {name}: crash loop, gave up", name=_name(event.server))
    embed = discord.Embed(title=title, colour=RED)
    text = clean_game_text(event.reason, 500)
    if crash is not None:
        text += "\n" + tr(
            locale,
            "Last crash: {exit}, up {uptime}",
            exit=_exit_text(crash, locale),
            uptime=format_uptime(crash.uptime_s, locale),
        )
        text += f"\n{log_block(crash.last_lines, 3000, locale)}"
    embed.description = text
    embed.add_field(name=tr(locale, "Crashes"), value=str(event.crashes))
    next_step = tr(locale, "fix the cause, then `/server start`")
    embed.add_field(name=tr(locale, "Next step"), value=next_step)
    _held_footer(embed, held, locale)
    return embed


def failed_embed(event: ServerFailed, held: int, locale: Lang) -> discord.Embed:
    title = tr(locale, "⚠️ {name} failed to start", name=_name(event.server))
    embed = discord.Embed(title=title, colour=RED)
    embed.description = clean_game_text(event.reason, 1000)
    _held_footer(embed, held, locale)
    return embed


def hung_embed(event: ServerHung, held: int, locale: Lang) -> discord.Embed:
    title = tr(locale, "⏳ {name} hung: restarting it", name=_name(event.server))
    embed = discord.Embed(title=title, colour=GOLD)
    embed.description = clean_game_text(event.reason, 1000)
    _held_footer(embed, held, locale)
    return embed


def rcon_lost_embed(server: str, reason: str, held: int, locale: Lang) -> discord.Embed:
    embed = discord.Embed(
        title=tr(locale, "🔌 {name}: RCon lost", name=_name(server)), colour=ORANGE
    )
    embed.description = clean_game_text(reason, 500) or tr(locale, "the connection dropped")
    _held_footer(embed, held, locale)
    return embed


def rcon_restored_embed(server: str, locale: Lang) -> discord.Embed:
    title = tr(locale, "🔌 {name}: RCon restored", name=_name(server))
    return discord.Embed(title=title, colour=GREEN)


def disk_embed(free: int, total: int, held: int, locale: Lang) -> discord.Embed:
    embed = discord.Embed(title=tr(locale, "💾 Disk nearly full"), colour=RED)
    share = free / total if total else 0.0
    embed.description = tr(
        locale,
        "{free} free of {total} ({share}) where the servers and logs live. Free some "
        "space before a server cannot write.",
        free=format_bytes(free),
        total=format_bytes(total),
        share=f"{share:.1%}",
    )
    _held_footer(embed, held, locale)
    return embed


def storage_restored_embed(locale: Lang) -> discord.Embed:
    embed = discord.Embed(title=tr(locale, "💾 The database is written again"), colour=GREEN)
    embed.description = tr(locale, "Every server's state was saved again; nothing was lost.")
    return embed


def storage_trouble_embed(event: StorageTrouble, held: int, locale: Lang) -> discord.Embed:
    if event.disk_full:
        title = tr(locale, "💾 Disk full")
    else:
        title = tr(locale, "💾 The database cannot be written")
    embed = discord.Embed(title=title, colour=RED)
    embed.description = tr(
        locale,
        "{reason}. The servers keep running and what they do is still tracked; their records "
        "are saved as soon as writes work again. Free some space where the bot keeps its data.",
        reason=clean_game_text(event.reason, 500),
    )
    _held_footer(embed, held, locale)
    return embed


def host_unreachable_embed(
    host: str, reason: LanguardError | str, locale: Lang = None
) -> discord.Embed:
    """A host's engine stopped answering: why (a core error is translated), and what its
    servers show meanwhile (unknown, never crashed; nothing restarted)."""
    why = error_text(locale, reason) if isinstance(reason, LanguardError) else reason
    embed = discord.Embed(title=tr(locale, "🔌 Host {host} unreachable", host=host), colour=RED)
    embed.description = tr(
        locale,
        "{reason}; its servers show unknown until it answers. None of them is restarted "
        "or counted as crashed meanwhile.",
        reason=clean_game_text(why, 500) or tr(locale, "no reason given"),
    )
    return embed


def host_reachable_embed(host: str, down_for_s: float, locale: Lang = None) -> discord.Embed:
    title = tr(
        locale,
        "🔌 Host {host} is back after {duration}",
        host=host,
        duration=format_uptime(down_for_s, locale),
    )
    embed = discord.Embed(title=title, colour=GREEN)
    embed.description = tr(
        locale,
        "Its servers are checked again: one still running is taken back as it is, one that "
        "stopped meanwhile is reported as a crash.",
    )
    return embed


def _kinds(kinds: Sequence[str], locale: Lang) -> str:
    """Channel kinds ("logs", "alerts", "status", "chat") as the reader says them."""
    return "/".join(tr(locale, kind) for kind in kinds)


def unwritable_embed(
    channel_id: int,
    uses: Sequence[tuple[str, Sequence[str]]],
    missing: Sequence[str],
    gone: bool,
    reason: str,
    locale: Lang,
) -> discord.Embed:
    """A bound channel refuses the bot: which, for what (server name, kinds), and why:
    the `missing` permissions (as Discord's settings name them), the channel `gone`, or
    Discord's `reason`."""
    embed = discord.Embed(title=tr(locale, "🚫 I cannot post in a bound channel"), colour=RED)
    shown = ", ".join(
        tr(locale, "{kinds} of **{server}**", kinds=_kinds(kinds, locale), server=_name(server))
        for server, kinds in uses
    )
    if missing:
        why = ", ".join(tr(locale, permission) for permission in missing)
    elif gone:
        why = tr(locale, "the channel no longer exists")
    else:
        why = clean_game_text(reason, 300) or tr(locale, "missing permissions")
    embed.description = tr(
        locale,
        "<#{channel_id}> ({uses}) refuses my messages: {why}. I stopped posting there and "
        "keep only the newest lines. Give my role the missing permissions in that channel, "
        "then bind it again with `/server channels`.",
        channel_id=channel_id,
        uses=shown,
        why=why,
    )
    return embed


def writable_embed(channel_id: int, locale: Lang) -> discord.Embed:
    embed = discord.Embed(title=tr(locale, "✅ I can post in a bound channel again"), colour=GREEN)
    embed.description = tr(
        locale, "<#{channel_id}> takes my messages again; posting resumed.", channel_id=channel_id
    )
    return embed
