"""/bans: the bans in the ledger (the bot's own and those found in game), added and removed."""

from __future__ import annotations

import time

import discord
from discord import Locale, app_commands
from discord.ext import commands

from bot.autocomplete import choices, server_names
from bot.checks import actor_of, require, server_id_of
from bot.client import LanguardBot
from bot.embeds import clean_game_text, ok_embed
from bot.i18n import tr
from bot.paginator import Noun, Paginator, QuerySource, send_pages
from bot.views import confirm
from core.errors import InvalidInput
from core.parsing import parse_duration
from core.permissions import Level
from core.services.ban_import import GAME_AUTHOR
from core.services.bans import Ban, BanOrigin


def _origin(locale: Locale | None, ban: Ban) -> str:
    """Who made it: the bot, or someone in the game (found there and imported)."""
    if ban.origin is BanOrigin.GAME:
        if ban.author_name not in ("", GAME_AUTHOR):
            return tr(locale, "found in game (by {author})", author=ban.author_name)
        return tr(locale, "found in game")
    if ban.author_name:
        return tr(locale, "made by Languard ({author})", author=ban.author_name)
    return tr(locale, "made by Languard")


def _scope(locale: Locale | None, ban: Ban) -> str:
    return ban.server_name or tr(locale, "all servers")


def _label(locale: Locale | None, ban: Ban) -> str:
    """One ban as plain text (an autocomplete choice, a confirmation)."""
    until = (
        tr(locale, "perm")
        if ban.expires_at is None
        else time.strftime("%Y-%m-%d %H:%M", time.localtime(ban.expires_at))
    )
    found = tr(locale, ", found in game") if ban.origin is BanOrigin.GAME else ""
    return (
        f"#{ban.id} {ban.kind.value} {ban.value} ({_scope(locale, ban)}, {until}{found}) "
        f"{ban.reason}"
    )


BANS_PER_PAGE = 25


def _line(locale: Locale | None, ban: Ban) -> str:
    """One ban in `/bans list` (at most a few hundred characters)."""
    if ban.expires_at is None:
        until = tr(locale, "perm")
    else:
        until = tr(locale, "until {when}", when=f"<t:{int(ban.expires_at)}:f>")
    return (
        f"`#{ban.id}` {ban.kind.value} `{ban.value}` — {until} — "
        f"{_scope(locale, ban)} — {clean_game_text(_origin(locale, ban), 60)}"
        + (f" — {clean_game_text(ban.reason, 80)}" if ban.reason else "")
    )


async def ban_choices(
    interaction: discord.Interaction[LanguardBot], current: str
) -> list[app_commands.Choice[str]]:
    bans = await interaction.client.services.bans.list(None, limit=200)
    locale = interaction.locale
    return choices(((_label(locale, b), str(b.id)) for b in bans), current)


@app_commands.guild_only()
class Bans(commands.GroupCog, group_name="bans", description="Bans (kept by the bot)"):
    def __init__(self, bot: LanguardBot) -> None:
        self.bot = bot

    @app_commands.command(name="list", description="Active bans (for one server or all)")
    @app_commands.describe(server="Only the bans of this server (default: every server)")
    @app_commands.autocomplete(server=server_names)
    @require(Level.MODERATOR)
    async def list_(
        self, interaction: discord.Interaction[LanguardBot], server: str | None = None
    ) -> None:
        service = self.bot.services.bans
        locale = interaction.locale

        async def fetch(offset: int, limit: int) -> tuple[int, list[str]]:
            page = await service.page(server, offset, limit)
            return page.total, [_line(locale, ban) for ban in page.items]

        view = Paginator(
            QuerySource(fetch, BANS_PER_PAGE),
            owner=interaction.user,
            title=tr(locale, "Bans: {server}", server=server) if server else tr(locale, "Bans"),
            noun=Noun(tr(locale, "{count} ban"), tr(locale, "{count} bans"), locale),
            empty=tr(locale, "No active bans."),
            level=Level.MODERATOR,
            server_id=server_id_of(interaction, server),
            locale=locale,
        )
        await send_pages(interaction, view, ephemeral=True)

    @app_commands.command(name="add", description="Ban a GUID, IP or Minecraft name")
    @app_commands.describe(
        id="Who: a BattlEye GUID, an IP address, or a Minecraft name or UUID",
        duration="How long: `30m`, `12h`, `7d` or `perm` (forever)",
        reason="Why, kept with the ban (up to 200 characters)",
        server="Only on this server (default: every server)",
    )
    @app_commands.autocomplete(server=server_names)
    @require(Level.MODERATOR)
    async def add(
        self,
        interaction: discord.Interaction[LanguardBot],
        id: app_commands.Range[str, 1, 64],
        duration: app_commands.Range[str, 1, 32],
        reason: app_commands.Range[str, 0, 200] = "",
        server: str | None = None,
    ) -> None:
        locale = interaction.locale
        if parse_duration(duration, allow_permanent=True) is None:
            question = tr(locale, "Ban `{id}` **permanently**?", id=clean_game_text(id, 64))
            if not await confirm(interaction, question, tr(locale, "Ban permanently")):
                return
        else:
            await interaction.response.defer()
        ban = await self.bot.services.bans.add(actor_of(interaction), id, duration, reason, server)
        await interaction.edit_original_response(
            content=None,
            embed=ok_embed(tr(locale, "Ban added"), clean_game_text(_label(locale, ban), 300)),
            view=None,
        )

    @app_commands.command(name="remove", description="Lift a ban everywhere")
    @app_commands.describe(ban="The ban to lift (pick it from the list, or give its number)")
    @app_commands.autocomplete(ban=ban_choices)
    @require(Level.MODERATOR)
    async def remove(self, interaction: discord.Interaction[LanguardBot], ban: str) -> None:
        number = ban.strip().lstrip("#")
        if not (number.isascii() and number.isdigit()) or len(number) > 18:
            raise InvalidInput("pick a ban from the list (or give its number)")
        locale = interaction.locale
        await interaction.response.defer()
        removed = await self.bot.services.bans.remove(actor_of(interaction), int(number))
        await interaction.followup.send(
            embed=ok_embed(tr(locale, "Ban lifted"), clean_game_text(_label(locale, removed), 300))
        )


async def setup(bot: LanguardBot) -> None:
    await bot.add_cog(Bans(bot))
