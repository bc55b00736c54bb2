"""Autocomplete: at most 25 choices, filtered by what was typed, and never more than the
member may see.

An autocomplete answers before the command's checks ever run (discord.py's tree calls
`interaction_check`, then the autocomplete callback, and runs the command's checks only when
the command itself is invoked), so it is a command in its own right: `allowed` (called by
`LanguardTree.interaction_check` for every autocomplete) applies the command's level to the
chosen server, and `server_names` lists only the servers the member reaches that level on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import discord
from discord import app_commands

from bot.checks import chosen_server, command_level, member_level, server_id_of
from bot.services_access import services_of
from core.permissions import Level

__all__ = ["MAX_CHOICES", "allowed", "choices", "chosen_server", "server_names"]

MAX_CHOICES = 25
SERVER_OPTION = "server"


def choices(values: Iterable[tuple[str, str]], current: str) -> list[app_commands.Choice[str]]:
    """(label, value) pairs whose label contains `current` (case-insensitive), prefix first."""
    needle = current.strip().lower()
    matched = [(label, value) for label, value in values if needle in label.lower()]
    matched.sort(key=lambda item: (not item[0].lower().startswith(needle), item[0].lower()))
    return [
        app_commands.Choice(name=label[:100], value=value[:100])
        for label, value in matched[:MAX_CHOICES]
    ]


def _focused(options: Iterable[Any]) -> str | None:
    for option in options:
        if not isinstance(option, dict):
            continue
        if option.get("focused"):
            name = option.get("name")
            return name if isinstance(name, str) else None
        found = _focused(option.get("options") or ())
        if found is not None:
            return found
    return None


def focused_option(interaction: discord.Interaction[Any]) -> str | None:
    """The name of the option being typed into (inside any subcommand)."""
    data: dict[str, Any] = dict(interaction.data or {})
    options = data.get("options")
    return _focused(options) if isinstance(options, list) else None


async def allowed(interaction: discord.Interaction[Any]) -> bool:
    """May this member see any choice here? For the `server` option, `server_names` filters
    per server; for any other option, the member needs the command's level on the chosen
    server (globally when the command names none). An unknown server gives nothing."""
    command = interaction.command
    if command is None:
        return False
    if focused_option(interaction) == SERVER_OPTION:
        return True
    name = chosen_server(interaction)
    server_id = server_id_of(interaction, name)
    if name is not None and server_id is None:
        return False
    return await member_level(interaction, server_id) >= command_level(command)


async def server_names(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    """The servers on which the member has the command's level (and at least viewer)."""
    services = services_of(interaction.client)
    needed = max(Level.VIEWER, command_level(interaction.command))
    visible = [
        name
        for server_id, name in services.servers.names_by_id().items()
        if await member_level(interaction, server_id) >= needed
    ]
    return choices(((name, name) for name in visible), current)
