"""/help: the commands a member may use at their level, grouped, in one embed.

Read from the bot's own command tree and the level `require` recorded on each command, so a
new command shows up (at the right level) the day it is added. Names and descriptions are
looked up in the catalogue the way `LanguardTranslator` looks them up at sync, so a French
member reads `/serveur démarrer` with its French description, as their client shows it.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import discord
from discord import app_commands

from bot.checks import command_level
from bot.i18n import catalogue, tr
from core.permissions import Level

__all__ = [
    "EMBED_LIMIT",
    "FIELD_LIMIT",
    "MAX_FIELDS",
    "HelpEntry",
    "bot_version",
    "help_embed",
    "help_entries",
    "shown_name",
    "visible_entries",
]

EMBED_LIMIT = 6000
"""Discord's limit for all the text of one embed (title, description, fields, footer)."""
FIELD_LIMIT = 1024
"""Discord's limit for one field's value."""
MAX_FIELDS = 25
FIELD_NAME_LIMIT = 256

Locale: TypeAlias = str | discord.Locale | None
"""The reader's language (`interaction.locale`); None is English."""


@dataclass(frozen=True, slots=True)
class HelpEntry:
    """One command as /help lists it."""

    group: str
    """The top-level group (`server`), or "" for a command outside any group."""
    group_description: str
    name: str
    """The qualified name, as typed after the slash (`server start`)."""
    description: str
    level: Level
    names_a_server: bool
    """It takes a `server` option, so a level granted on one server is enough there."""


def bot_version() -> str | None:
    """The installed package's version (what the operator runs); None when not installed."""
    try:
        return importlib.metadata.version("languard")
    except importlib.metadata.PackageNotFoundError:
        return None


def help_entries(tree: app_commands.CommandTree[Any]) -> list[HelpEntry]:
    """Every slash command of the tree (global registration, in the order the cogs were
    loaded), with the level `require` recorded on it."""
    entries = []
    for command in tree.walk_commands():
        if not isinstance(command, app_commands.Command):
            continue
        root = command.root_parent
        entries.append(
            HelpEntry(
                group=root.name if root is not None else "",
                group_description=root.description if root is not None else "",
                name=command.qualified_name,
                description=command.description,
                level=command_level(command),
                names_a_server=any(p.name == "server" for p in command.parameters),
            )
        )
    return entries


def visible_entries(
    entries: Iterable[HelpEntry], level: Level, best_server_level: Level = Level.NONE
) -> list[HelpEntry]:
    """What the member may use: commands at or below their level, and commands that name a
    server at or below the best level they hold on any one server."""
    return [
        e
        for e in entries
        if e.level <= level or (e.names_a_server and e.level <= best_server_level)
    ]


def shown_name(locale: Locale, qualified: str) -> str:
    """A command's path as the reader's client shows it: each word in its localized name
    (the `[names]` lookup the Translator made at sync), English where there is none."""
    return " ".join(catalogue().name(locale, word) or word for word in qualified.split())


def _described(locale: Locale, description: str) -> str:
    """A command's description as synced for `locale` (the Translator's `[text]` lookup)."""
    return catalogue().text(locale, description) or description


def _line(entry: HelpEntry, locale: Locale) -> str:
    return f"`/{shown_name(locale, entry.name)}` — {_described(locale, entry.description)}"


def _group_title(entry: HelpEntry, locale: Locale) -> str:
    if not entry.group:
        return tr(locale, "General")
    title = f"/{shown_name(locale, entry.group)}"
    if entry.group_description:
        title += f" — {_described(locale, entry.group_description)}"
    return title[:FIELD_NAME_LIMIT]


def _chunks(lines: Sequence[str]) -> list[list[str]]:
    """Lines packed into field values of at most FIELD_LIMIT characters (joined by newlines)."""
    chunks: list[list[str]] = []
    size = 0
    for line in lines:
        line = line[:FIELD_LIMIT]
        if chunks and size + 1 + len(line) <= FIELD_LIMIT:
            chunks[-1].append(line)
            size += 1 + len(line)
        else:
            chunks.append([line])
            size = len(line)
    return chunks


def _fields(entries: Sequence[HelpEntry], locale: Locale) -> list[tuple[str, list[str]]]:
    """(field name, lines) per group, groups in tree order, top-level commands last."""
    groups: dict[str, tuple[str, list[str]]] = {}
    for entry in entries:
        key = entry.group
        if key not in groups:
            groups[key] = (_group_title(entry, locale), [])
        groups[key][1].append(_line(entry, locale))
    ordered = [groups[k] for k in groups if k] + ([groups[""]] if "" in groups else [])
    fields: list[tuple[str, list[str]]] = []
    for title, lines in ordered:
        for index, chunk in enumerate(_chunks(lines)):
            name = title if index == 0 else tr(locale, "{title} (continued)", title=title)
            fields.append((name[:FIELD_NAME_LIMIT], chunk))
    return fields


def _intro(locale: Locale, level: Level, best_server_level: Level) -> str:
    lines = [tr(locale, "Your level: **{level}**.", level=tr(locale, level.label))]
    if best_server_level > level:
        scoped = tr(locale, best_server_level.label)
        lines.append(
            tr(
                locale,
                "On some servers you are **{level}**: the commands that name a server work "
                "there at that level.",
                level=scoped,
            )
        )
    if level is Level.NONE and best_server_level is Level.NONE:
        lines.append(
            tr(
                locale,
                "You have no level yet, so only this command is open to you. An admin can "
                "give one of your roles a level with `/perms grant`.",
            )
        )
    return "\n".join(lines)


def help_embed(
    entries: Sequence[HelpEntry],
    level: Level,
    *,
    best_server_level: Level = Level.NONE,
    version: str | None = None,
    locale: Locale = None,
) -> discord.Embed:
    """The /help answer for a member at `level` (and `best_server_level` on some server),
    in `locale`: one field per group, one line per command, the version in the footer;
    within Discord's limits (25 fields, 1024 per field, 6000 in all), with a last line
    saying what was left out if it ever does not fit."""
    shown = visible_entries(entries, level, best_server_level)
    version = version or bot_version() or tr(locale, "(version unknown)")
    embed = discord.Embed(
        title=tr(locale, "Languard: what you can do here"),
        description=_intro(locale, level, best_server_level),
        colour=discord.Colour.blurple(),
    )
    embed.set_footer(text=tr(locale, "Languard {version}", version=version))
    fields = _fields(shown, locale)
    more_name = tr(locale, "More")
    # room for the "and N more" field, sized for any count that fits in an embed
    reserve = len(more_name) + len(_more_value(locale, EMBED_LIMIT))
    used = len(embed)
    for index, (name, lines) in enumerate(fields):
        value = "\n".join(lines)
        last = index == len(fields) - 1
        fields_left = MAX_FIELDS - len(embed.fields) - (0 if last else 1)
        chars_left = EMBED_LIMIT - used - len(name) - len(value) - (0 if last else reserve)
        if fields_left < 1 or chars_left < 0:
            left = sum(len(more) for _, more in fields[index:])
            embed.add_field(name=more_name, value=_more_value(locale, left), inline=False)
            break
        embed.add_field(name=name, value=value, inline=False)
        used += len(name) + len(value)
    return embed


def _more_value(locale: Locale, count: int) -> str:
    return tr(locale, "…and {count} more command(s) that did not fit here.", count=count)
