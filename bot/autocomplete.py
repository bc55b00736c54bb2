"""Autocomplete callbacks shared by cogs: at most 25 choices, filtered by what was typed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

if TYPE_CHECKING:
    from bot.client import LanguardBot

__all__ = ["MAX_CHOICES", "choices", "chosen_server", "server_names"]

MAX_CHOICES = 25


def choices(values: Iterable[tuple[str, str]], current: str) -> list[app_commands.Choice[str]]:
    """(label, value) pairs whose label contains `current` (case-insensitive), prefix first."""
    needle = current.strip().lower()
    matched = [(label, value) for label, value in values if needle in label.lower()]
    matched.sort(key=lambda item: (not item[0].lower().startswith(needle), item[0].lower()))
    return [
        app_commands.Choice(name=label[:100], value=value[:100])
        for label, value in matched[:MAX_CHOICES]
    ]


async def server_names(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    bot: LanguardBot = interaction.client
    servers = bot.services.supervisor.all()
    return choices(((s.name, s.name) for s in servers), current)


def chosen_server(interaction: discord.Interaction[Any]) -> str | None:
    """The `server` option typed so far, for autocompletes that depend on it."""
    server = getattr(interaction.namespace, "server", None)
    return server if isinstance(server, str) and server else None
