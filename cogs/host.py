"""/host: the machine the servers run on, and the bot itself."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import require
from bot.client import LanguardBot
from bot.embeds import format_bytes, format_uptime, info_embed
from core.permissions import Level


class Host(commands.Cog):
    def __init__(self, bot: LanguardBot) -> None:
        self.bot = bot

    @app_commands.command(name="host", description="Host CPU, RAM, disk, addresses and uptime")
    @app_commands.guild_only()
    @require(Level.VIEWER)
    async def host(self, interaction: discord.Interaction[LanguardBot]) -> None:
        await interaction.response.defer()
        info = await self.bot.services.host.info()
        embed = info_embed(f"🖥️ {info.hostname}", f"{info.os_name} · kernel {info.kernel}")
        load = " / ".join(f"{x:.2f}" for x in info.load_average)
        embed.add_field(name="CPU", value=f"{info.cpu_model}\n{info.cpu_count} threads · {load}")
        embed.add_field(
            name="RAM", value=f"{format_bytes(info.ram_used)} / {format_bytes(info.ram_total)}"
        )
        embed.add_field(
            name="Disk (data)",
            value=f"{format_bytes(info.disk_free)} free of {format_bytes(info.disk_total)}",
        )
        embed.add_field(
            name="Addresses", value="\n".join(f"`{a}`" for a in info.addresses[:6]) or "—"
        )
        embed.add_field(name="Host uptime", value=format_uptime(info.host_uptime))
        embed.add_field(name="Bot uptime", value=format_uptime(info.bot_uptime))
        embed.add_field(
            name="Servers", value=f"{info.servers_running} running / {info.servers_total}"
        )
        embed.add_field(name="Errors (24 h)", value=str(info.errors_recorded))
        await interaction.followup.send(embed=embed)


async def setup(bot: LanguardBot) -> None:
    await bot.add_cog(Host(bot))
