"""/status: live status embeds that edit themselves in place."""

from __future__ import annotations

import asyncio

import discord
from discord import app_commands
from discord.ext import commands

from bot.autocomplete import server_names
from bot.channels import hub_of
from bot.checks import actor_of, require
from bot.client import LanguardBot
from bot.embeds import ok_embed
from bot.i18n import tr
from core.permissions import Level

POST_TIMEOUT = 60.0
"""How long the reply waits for the embed to get through the channel's rate limit."""


@app_commands.guild_only()
class Status(commands.GroupCog, group_name="status", description="Live server status"):
    def __init__(self, bot: LanguardBot) -> None:
        self.bot = bot

    @app_commands.command(name="post", description="Post a live status embed in a channel")
    @app_commands.describe(server="The server to show", channel="The channel to post it in")
    @app_commands.autocomplete(server=server_names)
    @require(Level.ADMIN)
    async def post(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str,
        channel: discord.TextChannel,
    ) -> None:
        managed = self.bot.services.servers.ref(server)
        hub = hub_of(self.bot)
        locale = interaction.locale
        await interaction.response.defer(ephemeral=True, thinking=True)
        posting = asyncio.ensure_future(hub.status.post(managed.id, channel.id))
        try:
            # shielded: if the reply gives up waiting, the embed is still posted and stored
            message_id = await asyncio.wait_for(asyncio.shield(posting), POST_TIMEOUT)
        except TimeoutError:
            result = "timed out"
            text = tr(locale, "The channel is busy; the embed will appear shortly.")
        else:
            link = f"https://discord.com/channels/{channel.guild.id}/{channel.id}/{message_id}"
            result = "ok"
            text = tr(
                locale,
                "Status of **{name}** is live in {channel}: {link}",
                name=managed.name,
                channel=channel.mention,
                link=link,
            )
        await self.bot.services.audit.record(
            actor_of(interaction),
            "status.post",
            server_id=managed.id,
            arguments={"channel_id": channel.id},
            result=result,
        )
        await interaction.followup.send(
            embed=ok_embed(tr(locale, "Status embed"), text),
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )


async def setup(bot: LanguardBot) -> None:
    await bot.add_cog(Status(bot))
