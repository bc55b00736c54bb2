"""/audit: the latest mutating actions, who did them and how they ended."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.autocomplete import server_names
from bot.checks import actor_of, require
from bot.client import LanguardBot
from bot.embeds import clean_game_text
from bot.i18n import tr
from bot.paginator import Noun, Paginator, QuerySource, send_pages
from core.permissions import Level


class Audit(commands.Cog):
    def __init__(self, bot: LanguardBot) -> None:
        self.bot = bot

    @app_commands.command(name="audit", description="Recent actions: who, what, where, result")
    @app_commands.describe(server="Only actions on this server", limit="How many entries, 1-100")
    @app_commands.autocomplete(server=server_names)
    @app_commands.guild_only()
    @require(Level.ADMIN)
    async def audit(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str | None = None,
        limit: app_commands.Range[int, 1, 100] = 15,
    ) -> None:
        services = self.bot.services
        locale = interaction.locale
        server_id = services.servers.ref(server).id if server else None

        async def fetch(offset: int, count: int) -> tuple[int, list[str]]:
            # `limit` is the page size; every entry can be reached with Previous / Next
            page = await services.audit.page(offset, count, server_id)
            names = services.servers.names_by_id()
            lines = []
            for entry in page.items:
                where = names.get(entry.server_id, "") if entry.server_id else ""
                mark = "✅" if entry.ok else "⛔"
                on = " " + tr(locale, "on {server}", server=where) if where else ""
                lines.append(
                    f"{mark} <t:{int(entry.ts)}:f> **{clean_game_text(entry.actor_name, 40)}** "
                    f"`{entry.action}`{on} — {clean_game_text(entry.result, 80)}"
                )
            return page.total, lines

        view = Paginator(
            QuerySource(fetch, limit),
            owner=interaction.user,
            title=tr(locale, "Audit log: {server}", server=server)
            if server
            else tr(locale, "Audit log"),
            noun=Noun(tr(locale, "{count} entry"), tr(locale, "{count} entries"), locale),
            empty=tr(locale, "Nothing recorded yet."),
            level=Level.ADMIN,
            server_id=server_id,
            locale=locale,
        )
        await send_pages(interaction, view, ephemeral=True)

    @app_commands.command(name="audit-channel", description="Post each audited action to a channel")
    @app_commands.describe(
        channel="Where to post them (leave empty to see the current channel)",
        off="Stop posting them",
    )
    @app_commands.guild_only()
    @require(Level.ADMIN)
    async def audit_channel(
        self,
        interaction: discord.Interaction[LanguardBot],
        channel: discord.TextChannel | None = None,
        off: bool = False,
    ) -> None:
        from bot.audit_feed import set_audit_channel

        assert interaction.guild_id is not None  # guild_only
        reply = await set_audit_channel(
            self.bot, actor_of(interaction), interaction.guild_id, channel, off, interaction.locale
        )
        await interaction.response.send_message(reply, ephemeral=True)


async def setup(bot: LanguardBot) -> None:
    await bot.add_cog(Audit(bot))
