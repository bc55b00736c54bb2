"""The single level check every command carries: `@require(Level.OPERATOR)`.

The level is resolved by `core.permissions.resolve_level` from the member's roles, for the
server named in the command's `server` option when there is one. A refusal is audited and
answered by the tree's error handler with the level needed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import discord
from discord import app_commands

from bot.autocomplete import chosen_server
from core.errors import NotFound
from core.permissions import Level
from core.services.audit import Actor
from core.services.servers import NAME_PATTERN

if TYPE_CHECKING:
    from bot.client import LanguardBot

__all__ = ["LevelTooLow", "UnknownServer", "actor_of", "member_level", "require"]

T = TypeVar("T")


class LevelTooLow(app_commands.CheckFailure):
    def __init__(self, needed: Level, has: Level) -> None:
        super().__init__(f"needs {needed.label}")
        self.needed = needed
        self.has = has


class UnknownServer(app_commands.CheckFailure):
    """The `server` option names no server: refused before the command answers, so the
    error stays ephemeral even for commands that defer publicly."""

    def __init__(self, name: str) -> None:
        wanted = name.strip().lower()
        shown = f" named `{wanted}`" if NAME_PATTERN.fullmatch(wanted) else " by that name"
        super().__init__(f"there is no server{shown}; `/server list` shows them")


def _bot(interaction: discord.Interaction[Any]) -> LanguardBot:
    from bot.client import LanguardBot

    client = interaction.client
    assert isinstance(client, LanguardBot)
    return client


def actor_of(interaction: discord.Interaction[Any]) -> Actor:
    """The audit actor for this interaction's user."""
    return Actor(interaction.user.id, str(interaction.user))


async def member_level(interaction: discord.Interaction[Any], server_id: int | None) -> Level:
    user = interaction.user
    guild = interaction.guild
    if guild is None or not isinstance(user, discord.Member):
        return Level.NONE
    bot = _bot(interaction)
    return await bot.services.permissions.level_for(
        guild.id,
        [role.id for role in user.roles],
        server_id=server_id,
        is_owner=guild.owner_id == user.id,
        is_administrator=user.guild_permissions.administrator,
    )


def _server_id(interaction: discord.Interaction[Any]) -> int | None:
    name = chosen_server(interaction)
    if name is None:
        return None
    supervisor = _bot(interaction).services.supervisor
    for candidate in dict.fromkeys((name, name.strip().lower())):  # as ServerService matches
        try:
            return supervisor.by_name(candidate).id
        except NotFound:
            continue
    return None


def require(level: Level) -> Callable[[T], T]:
    """Allow the command only to members whose level is at least `level`."""

    async def predicate(interaction: discord.Interaction[Any]) -> bool:
        server_id = _server_id(interaction)
        has = await member_level(interaction, server_id)
        if has >= level:
            name = chosen_server(interaction)
            if name is not None and server_id is None:
                raise UnknownServer(name)
            return True
        command = interaction.command.qualified_name if interaction.command else "?"
        await _bot(interaction).services.audit.record(
            actor_of(interaction),
            f"denied:{command}",
            server_id=server_id,
            arguments={"needed": level.label, "has": has.label},
            result="refused: level too low",
            ok=False,
        )
        raise LevelTooLow(level, has)

    return app_commands.check(predicate)
