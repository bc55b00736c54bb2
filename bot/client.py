"""The Discord client: set-up in `setup_hook`, clean shutdown that leaves game servers running."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import discord
from discord.ext import commands

from bot.channels import ChannelHub, HubConfig
from bot.tree import LanguardTree, tree_fingerprint
from core.config import Settings
from core.events import EventBus
from core.games.base import GameProfile
from core.runtime import Runtime
from data.repositories.grants import BotStateRepository

__all__ = ["COGS", "LanguardBot"]

_log = logging.getLogger(__name__)

COGS = (
    "cogs.servers",
    "cogs.players",
    "cogs.bans",
    "cogs.missions",
    "cogs.logs",
    "cogs.schedule",
    "cogs.perms",
    "cogs.audit",
    "cogs.host",
    "cogs.status",
)
"""Loaded as extensions by name, so nothing in bot/ imports a cog."""


class LanguardBot(commands.Bot):
    def __init__(
        self,
        settings: Settings,
        *,
        cogs: tuple[str, ...] = COGS,
        profiles: Sequence[GameProfile] | None = None,
        hub_config: HubConfig | None = None,
        **options: Any,
    ) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),
            tree_cls=LanguardTree,
            **options,
        )
        self.settings = settings
        self.cog_names = cogs
        self.profiles = profiles
        """None: the games the operator configured (core.runtime.default_profiles)."""
        self.runtime: Runtime | None = None
        self.channel_hub = ChannelHub(self, config=hub_config)
        self.errors_recorded = 0
        self.synced = False
        """True when this start pushed the command tree to Discord (it had changed)."""

    @property
    def services(self) -> Runtime:
        if self.runtime is None:
            raise RuntimeError("the bot is not set up yet")
        return self.runtime

    async def setup_hook(self) -> None:
        bus = EventBus()
        self.channel_hub.listen(bus)  # before the supervisor publishes anything
        self.runtime = await Runtime.open(self.settings, self.profiles, bus=bus)
        for name in self.cog_names:
            await self.load_extension(name)
        await self.sync_commands()
        await self.channel_hub.start()

    async def sync_commands(self) -> bool:
        """Push the command tree only when it differs from the last one pushed."""
        guild = discord.Object(id=self.settings.guild_id) if self.settings.guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)]
        scope = f"guild:{guild.id}" if guild else "global"
        fingerprint = tree_fingerprint(payload)
        state = BotStateRepository(self.services.db)
        key = f"command_tree:{scope}:{self.application_id}"
        if await state.get(key) == fingerprint:
            _log.info("command tree unchanged; not syncing (%s)", scope)
            return False
        await self.tree.sync(guild=guild)
        await state.set(key, fingerprint)
        self.synced = True
        _log.info("synced %d commands (%s)", len(payload), scope)
        return True

    def record_error(self) -> None:
        """Count an unexpected error (shown by /host)."""
        self.errors_recorded += 1
        if self.runtime is not None:
            self.runtime.host.record_error()

    async def on_ready(self) -> None:
        _log.info("connected as %s to %d guild(s)", self.user, len(self.guilds))

    async def close(self) -> None:
        # the hub first, while discord.py's HTTP session can still finish what is in flight
        await self.channel_hub.close()
        try:
            await super().close()
        finally:
            if self.runtime is not None:
                await self.runtime.close()
                self.runtime = None
