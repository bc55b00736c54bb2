"""/help: what this member may use here, at their level, in their language, and the version."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import member_level, require
from bot.client import LanguardBot
from bot.help import help_embed, help_entries
from core.permissions import Level


class Help(commands.Cog):
    def __init__(self, bot: LanguardBot) -> None:
        self.bot = bot

    async def _best_server_level(self, interaction: discord.Interaction[LanguardBot]) -> Level:
        """The highest level the member holds on any one server (grants made for one server
        only), so a member who operates one server sees the commands they can run there."""
        member = interaction.user
        if interaction.guild is None or not isinstance(member, discord.Member):
            return Level.NONE
        roles = {role.id for role in member.roles}
        grants = await self.bot.services.permissions.grants(interaction.guild.id)
        scoped = {g.server_id for g in grants if g.server_id is not None and g.role_id in roles}
        best = Level.NONE
        for server_id in sorted(scoped):
            best = max(best, await member_level(interaction, server_id))
        return best

    @app_commands.command(name="help", description="The commands you can use here, and the version")
    @app_commands.guild_only()
    @require(Level.NONE)
    async def help(self, interaction: discord.Interaction[LanguardBot]) -> None:
        level = await member_level(interaction, None)
        best = max(level, await self._best_server_level(interaction))
        embed = help_embed(
            help_entries(self.bot.tree), level, best_server_level=best, locale=interaction.locale
        )
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: LanguardBot) -> None:
    await bot.add_cog(Help(bot))
