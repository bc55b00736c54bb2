"""What the bot must be allowed to do in a channel to serve each kind of binding.

Why it exists: a channel the bot cannot write to swallows a server's logs or alerts without
anyone noticing. `/server channels` checks these before binding anything (and a CLI check can
import `missing_permissions` to do the same offline); the outbox copes when a permission is
taken away later.

What each kind really sends (see bot.outbox, bot.outbox_plan, bot.alerts, bot.status_board):
- logs: code-block messages, and a flood goes out as a `.log` file: Send Messages, Attach Files.
  No embeds (and without Embed Links a URL in a log line is not unfurled, which is fine).
- alerts: embeds (a crash's last lines sit in the embed, not in a file): Embed Links.
- status: one embed message, posted then edited in place: Embed Links, Read Message History.
- chat: plain escaped text, but a chat flood goes out as a `.log` file too: Attach Files.
Every kind needs View Channel and Send Messages, and Read Message History so the bot keeps
its own earlier messages in view (the status message above all).

Permission names are kept in English here (logs, the audit trail and the CLI read them);
what a member reads translates them, as Discord's settings show them in their language.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import discord

from bot.i18n import tr

__all__ = [
    "PERMISSION_NAMES",
    "REQUIRED",
    "ChannelProblem",
    "bot_permissions",
    "check_channels",
    "missing_permissions",
    "refusal_text",
]

PERMISSION_NAMES: dict[str, str] = {
    "view_channel": "View Channel",
    "send_messages": "Send Messages",
    "embed_links": "Embed Links",
    "attach_files": "Attach Files",
    "read_message_history": "Read Message History",
}
"""discord.py's flag names and the names Discord's settings show, in the order we list them."""

_BASE = {"view_channel": True, "send_messages": True, "read_message_history": True}

REQUIRED: dict[str, discord.Permissions] = {
    "logs": discord.Permissions(**_BASE, attach_files=True),
    "alerts": discord.Permissions(**_BASE, embed_links=True),
    "status": discord.Permissions(**_BASE, embed_links=True),
    "chat": discord.Permissions(**_BASE, attach_files=True),
}
"""Per channel kind (`ChannelKind` values), what the bot needs in the channel."""


def missing_permissions(permissions: discord.Permissions, kind: str) -> list[str]:
    """The human names of what `permissions` lacks for a `kind` channel ([] when nothing).

    `kind` is a channel kind ("logs", "alerts", "status", "chat"); ValueError otherwise.
    Administrator counts as every permission, as it does on Discord.
    """
    required = REQUIRED.get(str(kind))
    if required is None:
        raise ValueError(f"unknown channel kind {kind!r} (logs, alerts, status, chat)")
    if permissions.administrator:
        return []
    return [
        name
        for flag, name in PERMISSION_NAMES.items()
        if getattr(required, flag) and not getattr(permissions, flag)
    ]


def bot_permissions(channel: discord.abc.GuildChannel) -> discord.Permissions | None:
    """The bot's permissions in a channel from discord.py's cache (roles and overwrites);
    None when the bot's own member is not cached (nothing can be said then)."""
    me = channel.guild.me
    if me is None:
        return None
    return channel.permissions_for(me)


@dataclass(frozen=True, slots=True)
class ChannelProblem:
    """One channel the bot cannot serve as asked: which kinds, and what it lacks."""

    channel_id: int
    channel_name: str
    kinds: tuple[str, ...]
    missing: tuple[str, ...]


def check_channels(
    wanted: Mapping[str, discord.abc.GuildChannel | None],
) -> list[ChannelProblem]:
    """Problems of the channels about to be bound (kind -> channel), one per channel."""
    by_channel: dict[int, tuple[discord.abc.GuildChannel, list[str], list[str]]] = {}
    for kind, channel in wanted.items():
        if channel is None:
            continue
        permissions = bot_permissions(channel)
        if permissions is None:
            continue
        entry = by_channel.setdefault(channel.id, (channel, [], []))
        lacking = missing_permissions(permissions, kind)
        if lacking:
            entry[1].append(kind)
            entry[2].extend(name for name in lacking if name not in entry[2])
    return [
        ChannelProblem(channel.id, channel.name, tuple(kinds), _ordered(missing))
        for channel, kinds, missing in by_channel.values()
        if missing
    ]


def _ordered(names: Iterable[str]) -> tuple[str, ...]:
    present = set(names)
    return tuple(name for name in PERMISSION_NAMES.values() if name in present)


def refusal_text(
    problems: list[ChannelProblem],
    role_name: str | None = None,
    locale: str | discord.Locale | None = None,
) -> str:
    """The one reply that refuses a binding: each channel, what is missing, how to fix it,
    in the member's `locale`."""
    lines = [tr(locale, "I cannot use these channels, so nothing was changed:")]
    for problem in problems:
        line = tr(
            locale,
            "• #{channel}: {missing} (for {kinds})",
            channel=discord.utils.escape_markdown(problem.channel_name),
            missing=", ".join(tr(locale, name) for name in problem.missing),
            kinds=", ".join(tr(locale, kind) for kind in problem.kinds),
        )
        lines.append(line)
    if role_name:
        who = tr(locale, "the **{role}** role", role=discord.utils.escape_markdown(role_name))
    else:
        who = tr(locale, "my role")
    lines.append(
        tr(
            locale,
            "To fix it, open each channel's settings → Permissions, give {who} these "
            "permissions there, then run `/server channels` again.",
            who=who,
        )
    )
    return "\n".join(lines)
