"""/missions: upload (.pbo attachment or https link), list, delete, rotation, load now."""

from __future__ import annotations

import time
from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.autocomplete import choices, chosen_server, server_names
from bot.checks import (
    MISSION_CHANGE_RATE,
    MISSION_UPLOAD_RATE,
    actor_of,
    limit,
    require,
    server_id_of,
)
from bot.client import LanguardBot
from bot.embeds import clean_game_text, format_bytes, ok_embed
from bot.i18n import tr
from bot.paginator import ListSource, Noun, Paginator, send_pages
from bot.views import confirm
from core.errors import InvalidInput, LanguardError
from core.permissions import Level
from core.services.mission_types import MissionProgress

Difficulty = Literal["Recruit", "Regular", "Veteran", "Custom"]
MISSIONS_PER_PAGE = 20
PROGRESS_EVERY = 1.5
"""Seconds between progress edits, so a fast download does not spend the rate limit."""


async def mission_names(
    interaction: discord.Interaction[LanguardBot], current: str
) -> list[app_commands.Choice[str]]:
    server = chosen_server(interaction)
    if server is None:
        return []
    try:
        missions = await interaction.client.services.missions.list(server)
    except InvalidInput:
        return []
    return choices(((m.filename, m.filename) for m in missions), current)


def _stage_text(locale: discord.Locale | None, stage: str) -> str:
    """An upload's stage as the member reads it."""
    if stage == "downloading":
        return tr(locale, "⏳ downloading")
    if stage == "validating":
        return tr(locale, "⏳ validating")
    if stage == "stored":
        return tr(locale, "⏳ stored")
    return f"⏳ {stage}"


class _Progress:
    """Edits the deferred reply with the upload's stage, at most every PROGRESS_EVERY s."""

    def __init__(self, interaction: discord.Interaction[LanguardBot]) -> None:
        self.interaction = interaction
        self.last = 0.0
        self.stage = ""

    async def __call__(self, progress: MissionProgress) -> None:
        now = time.monotonic()
        if progress.stage == self.stage and now - self.last < PROGRESS_EVERY:
            return
        self.stage, self.last = progress.stage, now
        text = _stage_text(self.interaction.locale, progress.stage)
        if progress.stage == "downloading" and progress.received:
            total = f" / {format_bytes(progress.total)}" if progress.total else ""
            text += f" {format_bytes(progress.received)}{total}"
        await self.interaction.edit_original_response(content=text)


@app_commands.guild_only()
class Missions(commands.GroupCog, group_name="missions", description="Arma 3 missions"):
    def __init__(self, bot: LanguardBot) -> None:
        self.bot = bot

    @app_commands.command(name="upload", description="Add a .pbo mission (attachment or link)")
    @app_commands.describe(
        server="The Arma 3 server to add it to",
        file="The mission file, named like mission.terrain.pbo",
        url="Or an https link to it (for files too big for Discord), 1-2048 characters",
    )
    @app_commands.autocomplete(server=server_names)
    @limit(MISSION_UPLOAD_RATE)
    @require(Level.OPERATOR)
    async def upload(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str,
        file: discord.Attachment | None = None,
        url: app_commands.Range[str, 1, 2048] | None = None,
    ) -> None:
        service = self.bot.services.missions
        if (file is None) == (url is None):
            raise InvalidInput("attach a .pbo file or give an https link (one of the two)")
        if file is not None and file.size > service.max_bytes:
            raise InvalidInput(
                "{filename!r} is {size}; the limit is {limit}",
                filename=file.filename,
                size=format_bytes(file.size),
                limit=format_bytes(service.max_bytes),
            )
        await interaction.response.defer()
        progress = _Progress(interaction)
        actor = actor_of(interaction)
        if file is not None:
            await progress(MissionProgress("downloading", 0, file.size))
            try:
                data = await file.read()
            except discord.HTTPException as exc:  # e.g. the attachment's link expired
                raise LanguardError(
                    "could not fetch {filename!r} from Discord (HTTP {status}); attach it again",
                    filename=file.filename,
                    status=exc.status,
                ) from None
            result = await service.upload_bytes(actor, server, file.filename, data, progress)
        else:
            assert url is not None
            result = await service.upload_url(actor, server, url, progress)
        locale = interaction.locale
        title = tr(locale, "Mission replaced") if result.replaced else tr(locale, "Mission stored")
        text = tr(
            locale,
            "**{mission}** — terrain {terrain}, {size}.\n"
            "Add it with `/missions rotation` or play it now with `/missions load`.",
            mission=clean_game_text(result.filename, 120),
            terrain=clean_game_text(result.terrain, 40),
            size=format_bytes(result.size),
        )
        await interaction.edit_original_response(content=None, embed=ok_embed(title, text))

    @app_commands.command(name="list", description="The missions on a server")
    @app_commands.describe(server="The server whose missions to list")
    @app_commands.autocomplete(server=server_names)
    @require(Level.VIEWER)
    async def list_(self, interaction: discord.Interaction[LanguardBot], server: str) -> None:
        locale = interaction.locale
        missions = await self.bot.services.missions.list(server)
        lines = [
            f"{'🔁 ' if m.in_rotation else ''}**{clean_game_text(m.template, 80)}** — "
            f"{clean_game_text(m.terrain, 30)}, {format_bytes(m.size)}"
            for m in missions
        ]
        view = Paginator(
            ListSource(lines, MISSIONS_PER_PAGE),
            owner=interaction.user,
            title=tr(locale, "{server}: missions", server=server),
            noun=Noun(tr(locale, "{count} mission"), tr(locale, "{count} missions"), locale),
            empty=tr(locale, "No missions yet: `/missions upload`."),
            level=Level.VIEWER,
            server_id=server_id_of(interaction, server),
            locale=locale,
        )
        await send_pages(interaction, view, ephemeral=False)

    @app_commands.command(name="delete", description="Remove a mission (not while in rotation)")
    @app_commands.describe(server="The server it is on", mission="The mission file to delete")
    @app_commands.autocomplete(server=server_names, mission=mission_names)
    @limit(MISSION_CHANGE_RATE)
    @require(Level.OPERATOR)
    async def delete(
        self, interaction: discord.Interaction[LanguardBot], server: str, mission: str
    ) -> None:
        locale = interaction.locale
        question = tr(
            locale,
            "Delete **{mission}** from {server}?",
            mission=clean_game_text(mission, 120),
            server=server,
        )
        if not await confirm(interaction, question, tr(locale, "Delete")):
            return
        removed = await self.bot.services.missions.delete(actor_of(interaction), server, mission)
        await interaction.edit_original_response(
            content=tr(locale, "🗑️ {mission} deleted.", mission=clean_game_text(removed, 120)),
            view=None,
        )

    @app_commands.command(name="rotation", description="Set the ordered mission rotation")
    @app_commands.describe(
        server="The server whose rotation to set",
        missions="Mission names in the order to play them, separated by commas",
        difficulty="Difficulty of every mission in it (default: the server's)",
    )
    @app_commands.autocomplete(server=server_names)
    @limit(MISSION_CHANGE_RATE)
    @require(Level.OPERATOR)
    async def rotation(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str,
        missions: app_commands.Range[str, 0, 6000] | None = None,
        difficulty: Difficulty | None = None,
    ) -> None:
        from bot.selects import open_rotation_picker, rotation_embed

        if missions is None:  # a menu of the stored missions (at most 25)
            await open_rotation_picker(interaction, server, difficulty)
            return
        result = await self.bot.services.missions.set_rotation(
            actor_of(interaction), server, missions, difficulty
        )
        await interaction.response.send_message(embed=rotation_embed(result, interaction.locale))

    @app_commands.command(name="load", description="Play a mission now, switching the game to it")
    @app_commands.describe(
        server="The server to play it on",
        mission="The mission to play",
        difficulty="Difficulty to play it on (default: the server's)",
    )
    @app_commands.autocomplete(server=server_names, mission=mission_names)
    @limit(MISSION_CHANGE_RATE)
    @require(Level.OPERATOR)
    async def load(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str,
        mission: str,
        difficulty: Difficulty | None = None,
    ) -> None:
        await interaction.response.defer()
        result = await self.bot.services.missions.load(
            actor_of(interaction), server, mission, difficulty
        )
        locale = interaction.locale
        mission = clean_game_text(result.template, 100)
        if result.difficulty:
            text = tr(
                locale,
                "**{mission}** on {difficulty}",
                mission=mission,
                difficulty=tr(locale, result.difficulty),
            )
        else:
            text = f"**{mission}**"
        await interaction.followup.send(embed=ok_embed(tr(locale, "Mission loading"), text))


async def setup(bot: LanguardBot) -> None:
    await bot.add_cog(Missions(bot))
