"""/host: the machine the bot runs on, and the bot itself, with a chart of its CPU and RAM
over a period (sampled once a minute by the stats service); then every other host of
hosts.toml (bot.host_embeds), probed at once so what it shows is current."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.chart_embeds import DEFAULT_PERIOD, PERIOD_CHOICES, add_host_chart, host_labels
from bot.checks import require
from bot.client import LanguardBot
from bot.embeds import format_bytes, format_uptime, info_embed
from bot.host_embeds import HostCard, fit_host_embeds, waiting_text, wall_since
from bot.i18n import tr
from core.permissions import Level
from core.services.fleet import Fleet


class Host(commands.Cog):
    def __init__(self, bot: LanguardBot) -> None:
        self.bot = bot

    @app_commands.command(name="host", description="Host CPU, RAM, disk, addresses and uptime")
    @app_commands.describe(period="How far back the CPU and RAM chart goes (default: 24 hours)")
    @app_commands.choices(period=PERIOD_CHOICES)
    @app_commands.guild_only()
    @require(Level.VIEWER)
    async def host(
        self, interaction: discord.Interaction[LanguardBot], period: str = DEFAULT_PERIOD
    ) -> None:
        await interaction.response.defer()
        locale = interaction.locale
        info = await self.bot.services.host.info()
        embed = info_embed(
            f"🖥️ {info.hostname}",
            tr(locale, "{os} · kernel {kernel}", os=info.os_name, kernel=info.kernel),
        )
        load = " / ".join(f"{x:.2f}" for x in info.load_average)
        threads = tr(locale, "{count} threads · {load}", count=info.cpu_count, load=load)
        embed.add_field(name=tr(locale, "CPU"), value=f"{info.cpu_model}\n{threads}")
        embed.add_field(
            name=tr(locale, "RAM"),
            value=f"{format_bytes(info.ram_used)} / {format_bytes(info.ram_total)}",
        )
        embed.add_field(
            name=tr(locale, "Disk (data)"),
            value=tr(
                locale,
                "{free} free of {total}",
                free=format_bytes(info.disk_free),
                total=format_bytes(info.disk_total),
            ),
        )
        embed.add_field(
            name=tr(locale, "Addresses"),
            value="\n".join(f"`{a}`" for a in info.addresses[:6]) or "—",
        )
        embed.add_field(
            name=tr(locale, "Host uptime"), value=format_uptime(info.host_uptime, locale)
        )
        embed.add_field(name=tr(locale, "Bot uptime"), value=format_uptime(info.bot_uptime, locale))
        embed.add_field(
            name=tr(locale, "Servers"),
            value=tr(
                locale,
                "{running} running / {total}",
                running=info.servers_running,
                total=info.servers_total,
            ),
        )
        embed.add_field(name=tr(locale, "Errors (24 h)"), value=str(info.errors_recorded))
        fleet = self.bot.services.fleet
        queued = [ticket.server for ticket in fleet.waiting("local")]
        if queued:
            embed.add_field(name=tr(locale, "Waiting to start"), value=waiting_text(queued, locale))
        chart = await self.bot.services.stats.host_chart(period, host_labels(locale, period))
        image = add_host_chart(embed, chart, locale)
        others = await self._other_hosts(fleet)
        if others:
            embed.title = f"🖥️ local · {info.hostname}"
        embeds = [embed, *fit_host_embeds(others, locale, used_chars=len(embed))]
        await interaction.followup.send(embeds=embeds, files=[image] if image else [])

    @staticmethod
    async def _other_hosts(fleet: Fleet) -> list[HostCard]:
        """The hosts besides `local`, probed now (each probe bounded by the registry's
        timeout); none on a one-machine install, which probes nothing more."""
        if all(status.spec.is_local for status in fleet.statuses()):
            return []
        return [
            HostCard(
                status,
                running=fleet.running_servers(status.name),
                waiting=[ticket.server for ticket in fleet.waiting(status.name)],
                since=wall_since(status),
            )
            for status in await fleet.refresh()
            if not status.spec.is_local
        ]


async def setup(bot: LanguardBot) -> None:
    await bot.add_cog(Host(bot))
