"""/schedule: planned restarts with in-game warnings, backups, and repeating in-game messages."""

from __future__ import annotations

import discord
from discord import Locale, app_commands
from discord.ext import commands

from bot.autocomplete import MAX_CHOICES, server_names
from bot.checks import actor_of, require, server_id_of
from bot.client import LanguardBot
from bot.embeds import clean_game_text, ok_embed
from bot.i18n import tr
from bot.paginator import ListSource, Noun, Paginator, send_pages
from core.permissions import Level
from core.services.schedule import ScheduleEntry, ScheduleService

ENTRIES_PER_PAGE = 20
LABEL_CHARS = 100
"""An autocomplete choice's name holds at most 100 characters."""


def _weekday(locale: Locale | None, day: int) -> str:
    """A short weekday name (0 is Monday) in the reader's language."""
    names = (
        tr(locale, "Mon"),
        tr(locale, "Tue"),
        tr(locale, "Wed"),
        tr(locale, "Thu"),
        tr(locale, "Fri"),
        tr(locale, "Sat"),
        tr(locale, "Sun"),
    )
    return names[day]


def _describe(locale: Locale | None, service: ScheduleService, entry: ScheduleEntry) -> str:
    """One entry on one line, in the reader's language (an autocomplete choice, a reply)."""
    if entry.kind == "restart":
        local = entry.next_run.astimezone(service.tz)
        label = tr(
            locale,
            "#{id} {server} · restart {spec} · next {day} {time}",
            id=entry.id,
            server=entry.server,
            spec=entry.spec,
            day=_weekday(locale, local.weekday()),
            time=local.strftime("%H:%M"),
        )
    elif entry.kind == "backup":
        local = entry.next_run.astimezone(service.tz)
        label = tr(
            locale,
            "#{id} {server} · backup {spec} · next {day} {time}",
            id=entry.id,
            server=entry.server,
            spec=entry.spec,
            day=_weekday(locale, local.weekday()),
            time=local.strftime("%H:%M"),
        )
    else:
        label = tr(
            locale,
            "#{id} {server} · every {spec}: {message}",
            id=entry.id,
            server=entry.server,
            spec=entry.spec,
            message=entry.message,
        )
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _line(locale: Locale | None, service: ScheduleService, entry: ScheduleEntry) -> str:
    return tr(
        locale,
        "`#{id}` {entry} — next {when}",
        id=entry.id,
        entry=clean_game_text(_describe(locale, service, entry), 100),
        when=f"<t:{int(entry.next_run.timestamp())}:f>",
    )


async def entry_choices(
    interaction: discord.Interaction[LanguardBot], current: str
) -> list[app_commands.Choice[str]]:
    service = interaction.client.services.schedule
    needle = current.lower()
    found = []
    for entry in await service.list():
        label = _describe(interaction.locale, service, entry)
        if needle in label.lower():
            found.append(app_commands.Choice(name=label[:100], value=str(entry.id)))
    return found[:MAX_CHOICES]


@app_commands.guild_only()
class Schedule(commands.GroupCog, group_name="schedule", description="Planned restarts, messages"):
    def __init__(self, bot: LanguardBot) -> None:
        self.bot = bot

    @app_commands.command(name="restart", description="Restart at a time, warning players first")
    @app_commands.describe(
        server="The server to restart",
        at="`06:00` (daily) or a cron-like `0 */6 * * *` (host time zone)",
        warn="Minutes before to warn players (default 15,5,1)",
    )
    @app_commands.autocomplete(server=server_names)
    @require(Level.OPERATOR)
    async def restart(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str,
        at: app_commands.Range[str, 1, 100],
        warn: app_commands.Range[str, 1, 64] = "15,5,1",
    ) -> None:
        service = self.bot.services.schedule
        entry = await service.add_restart(actor_of(interaction), server, at, warn)
        locale = interaction.locale
        await interaction.response.send_message(
            embed=ok_embed(tr(locale, "Restart scheduled"), _line(locale, service, entry))
        )

    @app_commands.command(name="backup", description="Back a server up at a time, at most hourly")
    @app_commands.describe(
        server="The server to back up",
        when="`06:00` (daily) or a cron-like `0 */6 * * *` (host time zone)",
    )
    @app_commands.autocomplete(server=server_names)
    @require(Level.OPERATOR)
    async def backup(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str,
        when: app_commands.Range[str, 1, 100],
    ) -> None:
        service = self.bot.services.schedule
        entry = await service.add_backup(actor_of(interaction), server, when)
        locale = interaction.locale
        await interaction.response.send_message(
            embed=ok_embed(tr(locale, "Backup scheduled"), _line(locale, service, entry))
        )

    @app_commands.command(name="message", description="Say a message in game at an interval")
    @app_commands.describe(
        server="The server to speak on",
        every="How often, e.g. `30m` (at least a minute, at most a week)",
        message="What to say, one line (up to 200 characters)",
    )
    @app_commands.autocomplete(server=server_names)
    @require(Level.OPERATOR)
    async def message(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str,
        every: app_commands.Range[str, 1, 32],
        message: app_commands.Range[str, 1, 200],
    ) -> None:
        service = self.bot.services.schedule
        entry = await service.add_message(actor_of(interaction), server, every, message)
        locale = interaction.locale
        await interaction.response.send_message(
            embed=ok_embed(tr(locale, "Message scheduled"), _line(locale, service, entry))
        )

    @app_commands.command(name="list", description="Planned restarts and messages")
    @app_commands.describe(server="Only the entries of this server (default: every server)")
    @app_commands.autocomplete(server=server_names)
    @require(Level.VIEWER)
    async def list_(
        self, interaction: discord.Interaction[LanguardBot], server: str | None = None
    ) -> None:
        service = self.bot.services.schedule
        locale = interaction.locale
        entries = await service.list(server)
        view = Paginator(
            ListSource([_line(locale, service, e) for e in entries], ENTRIES_PER_PAGE),
            owner=interaction.user,
            title=tr(locale, "Schedule: {server}", server=server)
            if server
            else tr(locale, "Schedule"),
            noun=Noun(tr(locale, "{count} entry"), tr(locale, "{count} entries"), locale),
            empty=tr(locale, "Nothing scheduled."),
            level=Level.VIEWER,
            server_id=server_id_of(interaction, server),
            locale=locale,
        )
        await send_pages(interaction, view, ephemeral=False)

    @app_commands.command(name="remove", description="Remove a schedule entry")
    @app_commands.describe(entry="The entry to remove (pick it from the list)")
    @app_commands.autocomplete(entry=entry_choices)
    @require(Level.OPERATOR)
    async def remove(self, interaction: discord.Interaction[LanguardBot], entry: str) -> None:
        service = self.bot.services.schedule
        removed = await service.remove(actor_of(interaction), entry)
        locale = interaction.locale
        text = clean_game_text(_describe(locale, service, removed), 200)
        await interaction.response.send_message(embed=ok_embed(tr(locale, "Removed"), text))


async def setup(bot: LanguardBot) -> None:
    await bot.add_cog(Schedule(bot))
