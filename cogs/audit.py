"""/audit: the latest mutating actions, who did them and how they ended."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.autocomplete import server_names
from bot.checks import require
from bot.client import LanguardBot
from bot.embeds import clean_game_text, fit_lines, info_embed
from core.permissions import Level


class Audit(commands.Cog):
    def __init__(self, bot: LanguardBot) -> None:
        self.bot = bot

    @app_commands.command(name="audit", description="Recent actions: who, what, where, result")
    @app_commands.describe(server="Only this server", limit="How many entries (1-50)")
    @app_commands.autocomplete(server=server_names)
    @app_commands.guild_only()
    @require(Level.ADMIN)
    async def audit(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str | None = None,
        limit: app_commands.Range[int, 1, 50] = 15,
    ) -> None:
        services = self.bot.services
        server_id = services.supervisor.by_name(server).id if server else None
        entries = await services.audit.recent(limit, server_id)
        names = {s.id: s.name for s in services.supervisor.all()}
        lines = []
        for entry in entries:
            where = names.get(entry.server_id, "") if entry.server_id else ""
            mark = "✅" if entry.ok else "⛔"
            lines.append(
                f"{mark} <t:{int(entry.ts)}:f> **{clean_game_text(entry.actor_name, 40)}** "
                f"`{entry.action}`{' on ' + where if where else ''} — "
                f"{clean_game_text(entry.result, 80)}"
            )
        await interaction.response.send_message(
            embed=info_embed("Audit log", fit_lines(lines) or "Nothing recorded yet."),
            ephemeral=True,
        )


async def setup(bot: LanguardBot) -> None:
    await bot.add_cog(Audit(bot))
