"""/perms: which Discord roles get which level, globally or for one server."""

from __future__ import annotations

from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.autocomplete import server_names
from bot.checks import actor_of, require
from bot.client import LanguardBot
from bot.embeds import ok_embed
from bot.i18n import tr
from bot.paginator import ListSource, Noun, Paginator, send_pages
from core.permissions import Level

LevelName = Literal["viewer", "moderator", "operator", "admin"]
GRANTS_PER_PAGE = 20


@app_commands.guild_only()
class Perms(commands.GroupCog, group_name="perms", description="Who may do what"):
    def __init__(self, bot: LanguardBot) -> None:
        self.bot = bot

    def _server_id(self, name: str | None) -> int | None:
        return None if not name else self.bot.services.servers.ref(name).id

    @app_commands.command(name="grant", description="Give a role a level (for all or one server)")
    @app_commands.describe(
        role="The Discord role to give the level to",
        level="viewer < moderator < operator < admin; each level can do all of the ones below",
        server="Only on this server (default: every server)",
    )
    @app_commands.autocomplete(server=server_names)
    @require(Level.ADMIN)
    async def grant(
        self,
        interaction: discord.Interaction[LanguardBot],
        role: discord.Role,
        level: LevelName,
        server: str | None = None,
    ) -> None:
        assert interaction.guild is not None
        server_id = self._server_id(server)
        await self.bot.services.permissions.grant(
            actor_of(interaction), interaction.guild.id, role.id, Level.parse(level), server_id
        )
        locale = interaction.locale
        shown = tr(locale, level)
        if server:
            text = tr(
                locale,
                "{role} is now **{level}** on **{server}**.",
                role=role.mention,
                level=shown,
                server=server,
            )
        else:
            text = tr(
                locale, "{role} is now **{level}** on every server.", role=role.mention, level=shown
            )
        await interaction.response.send_message(
            embed=ok_embed(tr(locale, "Granted"), text),
            allowed_mentions=discord.AllowedMentions.none(),
        )

    @app_commands.command(name="revoke", description="Take a role's level away")
    @app_commands.describe(
        role="The Discord role to take the level from",
        server="Only its grant for this server (default: its grant for every server)",
    )
    @app_commands.autocomplete(server=server_names)
    @require(Level.ADMIN)
    async def revoke(
        self,
        interaction: discord.Interaction[LanguardBot],
        role: discord.Role,
        server: str | None = None,
    ) -> None:
        assert interaction.guild is not None
        removed = await self.bot.services.permissions.revoke(
            actor_of(interaction), interaction.guild.id, role.id, self._server_id(server)
        )
        locale = interaction.locale
        if not removed:
            if server:
                text = tr(
                    locale, "{role} had no grant on {server}.", role=role.mention, server=server
                )
            else:
                text = tr(locale, "{role} had no grant for every server.", role=role.mention)
            await interaction.response.send_message(
                text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
            )
            return
        await interaction.response.send_message(
            embed=ok_embed(
                tr(locale, "Revoked"),
                tr(locale, "{role} no longer has a level there.", role=role.mention),
            ),
            allowed_mentions=discord.AllowedMentions.none(),
        )

    @app_commands.command(name="list", description="The levels granted to roles")
    @require(Level.VIEWER)
    async def list_(self, interaction: discord.Interaction[LanguardBot]) -> None:
        assert interaction.guild is not None
        locale = interaction.locale
        grants = await self.bot.services.permissions.grants(interaction.guild.id)
        names = self.bot.services.servers.names_by_id()
        lines = []
        for g in grants:
            line = f"<@&{g.role_id}> — **{tr(locale, g.level.label)}**"
            if g.server_id:
                where = names.get(g.server_id, f"#{g.server_id}")
                line += " " + tr(locale, "on {server}", server=where)
            lines.append(line)
        view = Paginator(
            ListSource(lines, GRANTS_PER_PAGE),
            owner=interaction.user,
            title=tr(locale, "Permissions"),
            noun=Noun(tr(locale, "{count} grant"), tr(locale, "{count} grants"), locale),
            empty=tr(locale, "No role has a level yet: `/perms grant`."),
            note=tr(locale, "Guild owner and members with Administrator: **admin** everywhere."),
            level=Level.VIEWER,
            locale=locale,
        )
        await send_pages(interaction, view, ephemeral=False)


async def setup(bot: LanguardBot) -> None:
    await bot.add_cog(Perms(bot))
