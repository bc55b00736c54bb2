"""Charts in Discord: `/server stats` and the CPU/RAM chart under `/host`.

The stats service draws the PNG off the event loop; this module words it for the reader:
the labels drawn on the image (`ChartLabels`), the summary fields beside it, and a plain
message when there is nothing to draw. The image travels as an attachment the embed shows
(`attachment://…`), so it stays with the message and needs no hosting.
"""

from __future__ import annotations

import io
from datetime import datetime, tzinfo

import discord
from discord import app_commands
from discord.app_commands import locale_str

from bot.embeds import Lang, format_bytes, info_embed
from bot.i18n import tr
from core.charts import ChartLabels
from core.services.stats import HostChart, ServerChart

__all__ = [
    "DEFAULT_PERIOD",
    "PERIOD_CHOICES",
    "add_host_chart",
    "host_labels",
    "period_text",
    "server_chart_reply",
    "server_labels",
]

DEFAULT_PERIOD = "24h"
PERIOD_CHOICES = [
    app_commands.Choice(name=locale_str("Last hour"), value="1h"),
    app_commands.Choice(name=locale_str("Last 24 hours"), value="24h"),
    app_commands.Choice(name=locale_str("Last 7 days"), value="7d"),
    app_commands.Choice(name=locale_str("Last 30 days"), value="30d"),
]
"""The periods the stats service charts (`core.services.stats.PERIODS`), as Discord offers
them; their names are translated by the tree's translator at sync."""


def period_text(locale: Lang, period: str) -> str:
    """`the last 24 hours`, to fit in "… over {period}"."""
    if period == "1h":
        return tr(locale, "the last hour")
    if period == "7d":
        return tr(locale, "the last 7 days")
    if period == "30d":
        return tr(locale, "the last 30 days")
    return tr(locale, "the last 24 hours")


def _labels(locale: Lang, title: str) -> ChartLabels:
    return ChartLabels(
        title=title,
        players=tr(locale, "Players"),
        cpu=tr(locale, "CPU %"),
        ram=tr(locale, "RAM"),
        ram_total=tr(locale, "total"),
        start=tr(locale, "started"),
        stop=tr(locale, "stopped"),
        crash=tr(locale, "crashed"),
        no_data=tr(locale, "No data for this period"),
    )


def _server_title(locale: Lang, server: str, period: str) -> str:
    return tr(locale, "{server} over {period}", server=server, period=period_text(locale, period))


def _host_title(locale: Lang, period: str) -> str:
    return tr(locale, "CPU and RAM over {period}", period=period_text(locale, period))


def server_labels(locale: Lang, server: str, period: str) -> ChartLabels:
    """The words drawn on a server's chart, in the reader's language."""
    return _labels(locale, _server_title(locale, server, period))


def host_labels(locale: Lang, period: str) -> ChartLabels:
    """The words drawn on the host's chart, in the reader's language."""
    return _labels(locale, _host_title(locale, period))


def _spread(locale: Lang, average: str, peak: str) -> str:
    return tr(locale, "average {average} · peak {peak}", average=average, peak=peak)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}%"


def _attach(embed: discord.Embed, png: bytes, filename: str) -> discord.File:
    """The PNG as an attachment, shown as the embed's image."""
    embed.set_image(url=f"attachment://{filename}")
    return discord.File(io.BytesIO(png), filename=filename)


def server_chart_reply(
    chart: ServerChart, locale: Lang, zone: tzinfo
) -> tuple[discord.Embed, discord.File | None]:
    """`/server stats`: the chart and its numbers, or a clear message (and no image) when
    nothing was sampled in the period; the starts, stops and crashes are counted either way."""
    summary = chart.summary
    title = "📈 " + _server_title(locale, chart.server, summary.period)
    events = f"{summary.starts} · {summary.stops} · {summary.crashes}"
    if not summary.samples:
        text = tr(
            locale,
            "No data for **{server}** over {period}: it was not running, "
            "or Languard was not watching it.",
            server=chart.server,
            period=period_text(locale, summary.period),
        )
        embed = info_embed(title, text)
        if summary.starts or summary.stops or summary.crashes:
            embed.add_field(name=tr(locale, "Starts · stops · crashes"), value=events)
        return embed, None
    embed = info_embed(title)
    peak = "—" if summary.players_peak is None else str(summary.players_peak)
    average = "—" if summary.players_avg is None else f"{summary.players_avg:.1f}"
    embed.add_field(name=tr(locale, "Players"), value=_spread(locale, average, peak))
    embed.add_field(
        name=tr(locale, "CPU"),
        value=_spread(locale, _percent(summary.cpu_avg), _percent(summary.cpu_peak)),
    )
    embed.add_field(
        name=tr(locale, "RAM"),
        value=_spread(locale, format_bytes(summary.ram_avg), format_bytes(summary.ram_peak)),
    )
    embed.add_field(name=tr(locale, "Starts · stops · crashes"), value=events)
    zone_name = datetime.now(zone).tzname() or str(zone)
    embed.set_footer(
        text=tr(
            locale,
            "Samples: {count} · chart times in {zone}",
            count=summary.samples,
            zone=zone_name,
        )
    )
    return embed, _attach(embed, chart.png, f"{chart.server}-{summary.period}.png")


def add_host_chart(embed: discord.Embed, chart: HostChart, locale: Lang) -> discord.File | None:
    """Under `/host`: the machine's CPU and RAM over the period, as a field and the embed's
    image; a note instead while the host has not been sampled yet (once a minute)."""
    summary = chart.summary
    name = _host_title(locale, summary.period)
    if not summary.points:
        embed.add_field(
            name=name,
            value=tr(locale, "No samples yet: the host is sampled once a minute."),
            inline=False,
        )
        return None
    cpu = _spread(locale, _percent(summary.cpu_avg), _percent(summary.cpu_peak))
    ram = _spread(locale, format_bytes(summary.ram_avg), format_bytes(summary.ram_peak))
    value = tr(locale, "CPU: {cpu}\nRAM: {ram}", cpu=cpu, ram=ram)
    embed.add_field(name=name, value=value, inline=False)
    return _attach(embed, chart.png, f"host-{summary.period}.png")
