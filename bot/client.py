"""The Discord client: set-up in `setup_hook`, clean shutdown that leaves game servers running."""

from __future__ import annotations

import logging

import discord
from discord.ext import commands

from core.config import Settings
from core.runtime import Runtime

__all__ = ["LanguardBot"]

_log = logging.getLogger(__name__)


class LanguardBot(commands.Bot):
    def __init__(self, settings: Settings) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.settings = settings
        self.runtime: Runtime | None = None

    async def setup_hook(self) -> None:
        self.runtime = await Runtime.open(self.settings)

    async def on_ready(self) -> None:
        _log.info("connected as %s to %d guild(s)", self.user, len(self.guilds))

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            if self.runtime is not None:
                await self.runtime.close()
                self.runtime = None
