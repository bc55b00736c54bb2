"""Autocomplete for mods: a library mod by name (`/mods remove`, `/mods pin`), and the next
mod of a server's set typed as text (`/server mods set:`).

Like every autocomplete (bot/autocomplete.py), these answer only once the tree's
`allowed` check passed for the member's level.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from bot.services_access import services_of

__all__ = ["mod_names", "mod_set_choices"]

CHOICE_LIMIT = 100
"""Discord's longest choice name and value."""
MAX_CHOICES = 25


async def mod_names(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    """Library mods whose name holds what was typed; the value is the Workshop id."""
    found = await services_of(interaction.client).mods.choices(current)
    return [
        app_commands.Choice(name=f"{name} ({item_id})"[:CHOICE_LIMIT], value=str(item_id))
        for name, item_id in found
    ]


async def mod_set_choices(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    """`@cba_a3, ac` → `@cba_a3, @ace`...: the text so far with its last item completed
    by a library mod's folder name (a role after `:` is left to type)."""
    head, comma, last = (current or "").rpartition(",")
    typed = last.strip().lower()
    if ":" in typed:
        return []
    prefix = f"{head.strip()}, " if comma and head.strip() else ""
    views = await services_of(interaction.client).mods.list()
    wanted = typed.lstrip("@")
    matched = [v for v in views if wanted in v.folder or wanted in v.name.lower()]
    matched.sort(key=lambda v: not v.folder.lstrip("@").startswith(wanted))
    found: list[app_commands.Choice[str]] = []
    for view in matched:
        value = prefix + view.folder
        if len(value) <= CHOICE_LIMIT:
            label = f"{value} ({view.name})"
            name = label if len(label) <= CHOICE_LIMIT else value
            found.append(app_commands.Choice(name=name, value=value))
        if len(found) >= MAX_CHOICES:
            break
    return found
