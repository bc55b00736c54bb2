"""Autocomplete of /server's game, host and setting-key options (kept out of the cog, which
is about what the commands do)."""

from __future__ import annotations

import discord
from discord import app_commands

from bot.autocomplete import MAX_CHOICES, choices, chosen_server
from bot.client import LanguardBot
from bot.i18n import tr
from core.errors import InvalidInput

__all__ = ["game_names", "host_names", "setting_keys"]


async def game_names(
    interaction: discord.Interaction[LanguardBot], current: str
) -> list[app_commands.Choice[str]]:
    return choices(((g, g) for g in interaction.client.services.servers.games()), current)


async def host_names(
    interaction: discord.Interaction[LanguardBot], current: str
) -> list[app_commands.Choice[str]]:
    """The hosts of hosts.toml in their order (`local` first), only those that can run the
    game typed so far (if any)."""
    game = getattr(interaction.namespace, "game", None)
    servers = interaction.client.services.servers
    names = servers.hosts(game if isinstance(game, str) and game else None, current)
    return [app_commands.Choice(name=name, value=name) for name in names[:MAX_CHOICES]]


async def setting_keys(
    interaction: discord.Interaction[LanguardBot], current: str
) -> list[app_commands.Choice[str]]:
    server = chosen_server(interaction)
    if server is None:
        return []
    try:
        keys = interaction.client.services.servers.setting_keys(server, current)
    except InvalidInput:
        return []
    locale = interaction.locale
    return [
        app_commands.Choice(name=f"{k.name} — {tr(locale, k.description)}"[:100], value=k.name)
        for k in keys
    ]
