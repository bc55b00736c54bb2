"""/mods: the host's Arma 3 mod library (add, import a Launcher preset, remove, order, pin,
list) and `/mods update`, the update-aware maintenance (countdown, lock, kick, stop,
download, start, verify) with its progress in the reply and one summary.

Levels: admin for the library, operator for `/mods update`, viewer for the list. A
server's own set is `/server mods` (cogs/servers.py). Downloads are jobs of the host's
queue: the reply shows the place in the queue, then SteamCMD's progress. Everything else
is the mod services'; this module only asks and renders (bot/mod_embeds.py).
"""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.autocomplete import server_names
from bot.checks import actor_of, require
from bot.client import LanguardBot
from bot.embeds import clean_game_text, error_embed, fit_lines, format_bytes, info_embed
from bot.i18n import error_text, tr
from bot.job_progress import JobProgress
from bot.mod_choices import mod_names
from bot.mod_embeds import added_embed, mod_line, report_embed, server_mods_embed
from bot.paginator import ListSource, Noun, Paginator, send_pages
from bot.views import confirm
from core.errors import InvalidInput, LanguardError
from core.mods.preset import MAX_PRESET_BYTES
from core.permissions import Level
from core.services.mod_views import DownloadResult, ModsAdded

MODS_PER_PAGE = 10
ID_OR_URL_MAX = 300
"""What `parse_workshop_id` reads at most (a Workshop link with its query)."""
ORDER_MAX = 6000
"""Discord's longest text option; the service counts the mods, not the characters."""
PRESET_SUFFIXES = (".html", ".htm")


async def _finish_download(interaction: discord.Interaction[LanguardBot], added: ModsAdded) -> None:
    """Wait for the queued download (if any), then replace the progress with the summary."""
    result: DownloadResult | None = None
    failure: LanguardError | None = None
    if added.job is not None:
        try:
            result = await added.job.result()
        except LanguardError as exc:
            failure = exc
    embed = added_embed(interaction.locale, added, result, failure)
    await interaction.edit_original_response(content=None, embed=embed)


@app_commands.guild_only()
class Mods(commands.GroupCog, group_name="mods", description="Arma 3 Workshop mods"):
    def __init__(self, bot: LanguardBot) -> None:
        self.bot = bot

    @app_commands.command(name="list", description="The mod library: sizes, versions, servers")
    @require(Level.VIEWER)
    async def list_(self, interaction: discord.Interaction[LanguardBot]) -> None:
        locale = interaction.locale
        mods = await self.bot.services.mods.list()
        total = sum(m.size for m in mods)
        view = Paginator(
            ListSource([mod_line(locale, m) for m in mods], MODS_PER_PAGE),
            owner=interaction.user,
            title=tr(locale, "Mod library"),
            noun=Noun(tr(locale, "{count} mod"), tr(locale, "{count} mods"), locale),
            empty=tr(locale, "No mods yet: an admin adds them with `/mods add` or `/mods import`."),
            note=tr(locale, "{size} in all.", size=format_bytes(total)) if mods else "",
            level=Level.VIEWER,
            locale=locale,
        )
        await send_pages(interaction, view, ephemeral=True)

    @app_commands.command(
        name="add", description="Add a Workshop mod by id or link, and download it"
    )
    @app_commands.describe(
        id_or_url="Its Workshop id (450814997) or steamcommunity.com link, 1-300 characters"
    )
    @require(Level.ADMIN)
    async def add(
        self,
        interaction: discord.Interaction[LanguardBot],
        id_or_url: app_commands.Range[str, 1, ID_OR_URL_MAX],
    ) -> None:
        await interaction.response.defer()
        progress = JobProgress(
            interaction, tr(interaction.locale, "Downloading mods"), percent_only=True
        )
        added = await self.bot.services.mods.add(
            actor_of(interaction), id_or_url, on_update=progress
        )
        await _finish_download(interaction, added)

    @app_commands.command(name="import", description="Add every mod of an Arma 3 Launcher preset")
    @app_commands.describe(preset="The preset exported from the Launcher's Mods tab (.html)")
    @require(Level.ADMIN)
    async def import_(
        self, interaction: discord.Interaction[LanguardBot], preset: discord.Attachment
    ) -> None:
        if not preset.filename.lower().endswith(PRESET_SUFFIXES):
            raise InvalidInput(
                "that file is not an Arma 3 Launcher preset: export one from the Launcher's "
                "Mods tab (Preset → Export) and upload the .html file"
            )
        if preset.size > MAX_PRESET_BYTES:
            raise InvalidInput(
                "that preset is too large ({size} KB; at most {most} KB)",
                size=preset.size // 1024,
                most=MAX_PRESET_BYTES // 1024,
            )
        await interaction.response.defer()
        try:
            data = await preset.read()
        except discord.HTTPException as exc:  # e.g. the attachment's link expired
            raise LanguardError(
                "could not fetch {filename!r} from Discord (HTTP {status}); attach it again",
                filename=preset.filename,
                status=exc.status,
            ) from None
        progress = JobProgress(
            interaction, tr(interaction.locale, "Downloading mods"), percent_only=True
        )
        added = await self.bot.services.mods.import_preset(
            actor_of(interaction), data, on_update=progress
        )
        await _finish_download(interaction, added)

    @app_commands.command(name="remove", description="Take a mod out of the library and delete it")
    @app_commands.describe(mod="The mod to remove (pick it from the list)")
    @app_commands.autocomplete(mod=mod_names)
    @require(Level.ADMIN)
    async def remove(self, interaction: discord.Interaction[LanguardBot], mod: str) -> None:
        locale = interaction.locale
        service = self.bot.services.mods
        ref = mod.strip()
        known = next(
            (
                view
                for view in await service.list()
                if ref in (str(view.id), view.folder) or ref.lower() == view.name.lower()
            ),
            None,
        )
        name = clean_game_text(known.name, 60) if known is not None else clean_game_text(ref, 60)
        question = tr(
            locale, "Remove mod **{mod}** from the library and delete its files?", mod=name
        )
        if known is not None and known.servers:
            servers = ", ".join(known.servers)
            question += " " + tr(
                locale,
                "It is in the mod sets of {servers}: it leaves them (refused while one runs).",
                servers=servers,
            )
        if not await confirm(interaction, question, tr(locale, "Remove")):
            return
        try:
            removed = await service.remove(actor_of(interaction), mod)
        except LanguardError as exc:
            embed = error_embed(error_text(locale, exc))
            await interaction.edit_original_response(content=None, embed=embed, view=None)
            return
        gone = clean_game_text(removed.mod.name, 60)
        text = tr(locale, "🗑️ **{mod}** removed from the library.", mod=gone)
        if removed.servers:
            servers = ", ".join(removed.servers)
            text += "\n" + tr(locale, "Taken out of the mod sets of {servers}.", servers=servers)
        await interaction.edit_original_response(content=text, view=None)

    @app_commands.command(name="order", description="Put mods in this order (the library or a set)")
    @app_commands.describe(
        mods="Mods in the wanted order, comma-separated (the others keep their places)",
        server="Order this server's set (its load order) instead of the library",
    )
    @app_commands.autocomplete(server=server_names)
    @require(Level.ADMIN)
    async def order(
        self,
        interaction: discord.Interaction[LanguardBot],
        mods: app_commands.Range[str, 1, ORDER_MAX],
        server: str | None = None,
    ) -> None:
        locale = interaction.locale
        names = [name.strip() for name in mods.split(",") if name.strip()]
        service, actor = self.bot.services.mods, actor_of(interaction)
        if server is not None:
            view = await service.order_server(actor, server, names)
            embed = server_mods_embed(locale, view, True)
        else:
            ordered = await service.order(actor, names)
            lines = [f"`{i + 1}.` {mod_line(locale, m)}" for i, m in enumerate(ordered)]
            body = fit_lines(lines, locale=locale)
            embed = info_embed(tr(locale, "Mod library, in order"), body)
        await interaction.response.send_message(embed=embed)

    @app_commands.command(name="pin", description="Hold a mod at its version, or let it update")
    @app_commands.describe(mod="The mod (pick it from the list)", pinned="True holds it")
    @app_commands.autocomplete(mod=mod_names)
    @require(Level.ADMIN)
    async def pin(
        self, interaction: discord.Interaction[LanguardBot], mod: str, pinned: bool
    ) -> None:
        locale = interaction.locale
        view = await self.bot.services.mods.pin(actor_of(interaction), mod, pinned)
        if pinned:
            text = tr(locale, "📌 {mod}: held at its version.", mod=mod_line(locale, view))
        else:
            text = tr(locale, "{mod}: updates again.", mod=mod_line(locale, view))
        await interaction.response.send_message(text)

    @app_commands.command(name="update", description="Update mods: players warned, then a restart")
    @app_commands.describe(
        server="Only this server's mods (default: every mod, every server using them)",
        game="Also update the Arma 3 server itself (default: no)",
    )
    @app_commands.autocomplete(server=server_names)
    @require(Level.OPERATOR)
    async def update(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str | None = None,
        game: bool = False,
    ) -> None:
        locale = interaction.locale
        await interaction.response.defer()
        progress = JobProgress(interaction, tr(locale, "Updating mods"), percent_only=True)
        report = await self.bot.services.mod_updates.run(
            actor_of(interaction), server, game=game, on_update=progress
        )
        embed = report_embed(locale, report)
        await interaction.edit_original_response(content=None, embed=embed)


async def setup(bot: LanguardBot) -> None:
    await bot.add_cog(Mods(bot))
