"""/server and /rcon: the lifecycle, settings and channels of game servers."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.autocomplete import server_names
from bot.chart_embeds import DEFAULT_PERIOD, PERIOD_CHOICES, server_chart_reply, server_labels
from bot.checks import LIFECYCLE_RATE, RCON_RATE, actor_of, limit, require
from bot.client import LanguardBot
from bot.embeds import (
    clean_game_text,
    code_block,
    info_embed,
    ok_embed,
    result_embed,
    server_status_embed,
)
from bot.i18n import tr
from bot.mod_choices import mod_set_choices
from bot.mod_embeds import server_mods_reply
from bot.paginator import ListSource, Noun, Paginator, send_pages
from bot.progress import action_title, follow_states, players_question
from bot.server_choices import game_names, host_names, setting_keys
from bot.server_lines import bindings_text, list_line
from bot.start_queue_view import run_start
from bot.views import confirm
from core.errors import InvalidInput
from core.permissions import Level
from core.services.server_views import ActionResult, ServerRef

SERVERS_PER_PAGE = 20


@app_commands.guild_only()
class Servers(commands.GroupCog, group_name="server", description="Game servers"):
    def __init__(self, bot: LanguardBot) -> None:
        self.bot = bot

    @app_commands.command(name="list", description="Every server and its state")
    @require(Level.VIEWER)
    async def list_(self, interaction: discord.Interaction[LanguardBot]) -> None:
        locale = interaction.locale
        servers = await self.bot.services.servers.list()
        lines = [list_line(locale, summary) for summary in servers]
        view = Paginator(
            ListSource(lines, SERVERS_PER_PAGE),
            owner=interaction.user,
            title=tr(locale, "Servers"),
            noun=Noun(tr(locale, "{count} server"), tr(locale, "{count} servers"), locale),
            empty=tr(locale, "No servers yet. An admin can add one with `/server create`."),
            level=Level.VIEWER,
            locale=locale,
        )
        await send_pages(interaction, view, ephemeral=False)

    @app_commands.command(name="status", description="State, players, mission and resources")
    @app_commands.describe(server="The server to show")
    @app_commands.autocomplete(server=server_names)
    @require(Level.VIEWER)
    async def status(self, interaction: discord.Interaction[LanguardBot], server: str) -> None:
        await interaction.response.defer()
        status = await self.bot.services.servers.status(server)
        await interaction.followup.send(embed=server_status_embed(status, interaction.locale))

    @app_commands.command(name="stats", description="Players, CPU and RAM over time, as a chart")
    @app_commands.describe(server="The server to chart", period="How far back (default: 24 hours)")
    @app_commands.choices(period=PERIOD_CHOICES)
    @app_commands.autocomplete(server=server_names)
    @require(Level.VIEWER)
    async def stats(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str,
        period: str = DEFAULT_PERIOD,
    ) -> None:
        locale, stats = interaction.locale, self.bot.services.stats
        managed = self.bot.services.servers.ref(server)  # unknown: refused before "thinking"
        await interaction.response.defer()
        labels = server_labels(locale, managed.name, period)
        chart = await stats.server_chart(managed.name, period, labels)
        embed, image = server_chart_reply(chart, locale, stats.tz)
        await interaction.followup.send(embed=embed, files=[image] if image else [])

    @app_commands.command(name="create", description="Add a game server")
    @app_commands.describe(
        name="Short name, 3-32 characters: lower-case letters, digits and dashes (like main-1)",
        game="Which game it runs",
        port="Its first game port, 1024-65535 (default: the next free block of ports)",
        host="The machine it runs on (default: the one with the most free memory)",
    )
    @app_commands.autocomplete(game=game_names, host=host_names)
    @require(Level.ADMIN)
    async def create(
        self,
        interaction: discord.Interaction[LanguardBot],
        name: app_commands.Range[str, 3, 32],
        game: str,
        port: app_commands.Range[int, 1024, 65535] | None = None,
        host: app_commands.Range[str, 1, 32] | None = None,
    ) -> None:
        locale = interaction.locale
        servers = self.bot.services.servers
        created = await servers.create(actor_of(interaction), name, game, port, host)
        fields = {"name": created.name, "game": created.game, "port": created.port}
        if created.host == "local" and len(servers.hosts()) < 2:  # one machine: as ever
            text = tr(locale, "**{name}** ({game}) on port {port}.", **fields)
        else:
            text = tr(
                locale,
                "**{name}** ({game}) on host {host}, port {port}.",
                host=created.host,
                **fields,
            )
        if created.generated_secrets:
            names = ", ".join(f"`{k}`" for k in created.generated_secrets)
            text += "\n" + tr(locale, "Generated: {names}", names=names)
        text += "\n" + tr(locale, "Review it with `/server config`, then `/server start`.")
        await interaction.response.send_message(embed=ok_embed(tr(locale, "Server created"), text))

    @app_commands.command(name="delete", description="Remove a stopped server (files archived)")
    @app_commands.describe(server="The server to delete (stop it first)")
    @app_commands.autocomplete(server=server_names)
    @require(Level.ADMIN)
    async def delete(self, interaction: discord.Interaction[LanguardBot], server: str) -> None:
        locale = interaction.locale
        managed = self.bot.services.servers.ref(server)
        question = tr(locale, "Delete **{name}**? Its files are archived.", name=managed.name)
        if not await confirm(interaction, question, tr(locale, "Delete")):
            return
        deleted = await self.bot.services.servers.delete(actor_of(interaction), managed.name)
        text = "🗑️ " + tr(locale, "**{name}** deleted.", name=deleted.name)
        if deleted.archived_to:
            text += " " + tr(locale, "Files archived in `{folder}`.", folder=deleted.archived_to)
        await interaction.edit_original_response(content=text, view=None)

    async def _lifecycle(
        self,
        interaction: discord.Interaction[LanguardBot],
        managed: ServerRef,
        work: Awaitable[ActionResult],
        action: str,
    ) -> None:
        """Run a start/stop/restart, showing each state on the way, then the outcome."""
        if not interaction.response.is_done():
            await interaction.response.defer()
        services = self.bot.services
        title = action_title(interaction.locale, action, managed.name)
        result = await follow_states(interaction, services.bus, managed.id, work, title=title)
        embed = result_embed(result, interaction.locale)
        await interaction.edit_original_response(embed=embed, view=None)

    @app_commands.command(name="start", description="Start a server")
    @app_commands.describe(server="The server to start")
    @app_commands.autocomplete(server=server_names)
    @limit(LIFECYCLE_RATE)
    @require(Level.OPERATOR)
    async def start(self, interaction: discord.Interaction[LanguardBot], server: str) -> None:
        managed = self.bot.services.servers.ref(server)
        await run_start(interaction, managed)  # may wait for room on its host (a queue)

    @app_commands.command(name="stop", description="Stop a server gracefully")
    @app_commands.describe(server="The server to stop")
    @app_commands.autocomplete(server=server_names)
    @limit(LIFECYCLE_RATE)
    @require(Level.OPERATOR)
    async def stop(self, interaction: discord.Interaction[LanguardBot], server: str) -> None:
        managed = self.bot.services.servers.ref(server)
        # the live list the bot already keeps: asking a hung game would miss Discord's 3 s
        online = len(self.bot.services.players.known_online(managed.name))
        if online:
            locale = interaction.locale
            question = players_question(locale, "stop", managed.name, online)
            if not await confirm(interaction, question, tr(locale, "Stop")):
                return
        work = self.bot.services.servers.stop(actor_of(interaction), managed.name)
        await self._lifecycle(interaction, managed, work, "stop")

    @app_commands.command(name="restart", description="Stop then start a server")
    @app_commands.describe(server="The server to restart")
    @app_commands.autocomplete(server=server_names)
    @limit(LIFECYCLE_RATE)
    @require(Level.OPERATOR)
    async def restart(self, interaction: discord.Interaction[LanguardBot], server: str) -> None:
        managed = self.bot.services.servers.ref(server)
        work = self.bot.services.servers.restart(actor_of(interaction), managed.name)
        await self._lifecycle(interaction, managed, work, "restart")

    @app_commands.command(name="kill", description="Kill a server at once (no graceful stop)")
    @app_commands.describe(server="The server to kill")
    @app_commands.autocomplete(server=server_names)
    @limit(LIFECYCLE_RATE)
    @require(Level.ADMIN)
    async def kill(self, interaction: discord.Interaction[LanguardBot], server: str) -> None:
        locale = interaction.locale
        managed = self.bot.services.servers.ref(server)
        question = tr(locale, "Kill **{name}** now? Unsaved game state is lost.", name=managed.name)
        if not await confirm(interaction, question, tr(locale, "Kill")):
            return
        result = await self.bot.services.servers.kill(actor_of(interaction), managed.name)
        await interaction.edit_original_response(embed=result_embed(result, locale), view=None)

    @app_commands.command(name="config", description="A server's settings (secrets masked)")
    @app_commands.describe(server="The server whose settings to show")
    @app_commands.autocomplete(server=server_names)
    @require(Level.ADMIN)
    async def config(self, interaction: discord.Interaction[LanguardBot], server: str) -> None:
        from bot.modals import shown_value

        locale = interaction.locale
        views = await self.bot.services.servers.get_settings(server)
        lines = [
            f"`{v.key}` = "
            + shown_value(locale, v.value if v.secret else clean_game_text(v.value, 120))
            + ("" if v.is_default else " ✎")
            for v in views
        ]
        embed = info_embed(tr(locale, "{server}: settings", server=server), "\n".join(lines)[:4000])
        embed.set_footer(text=tr(locale, "✎ changed from the default · /server set to change"))
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="set", description="Change one setting (validated)")
    @app_commands.describe(
        server="The server to change",
        key="The setting to change (pick one from the list)",
        value="The new value, 1-1000 characters",
    )
    @app_commands.autocomplete(server=server_names, key=setting_keys)
    @require(Level.ADMIN)
    async def set_(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str,
        key: app_commands.Range[str, 1, 40],
        value: app_commands.Range[str, 1, 1000] | None = None,
    ) -> None:
        from bot.modals import open_setting_form, setting_changed_embed

        if value is None:  # a long or multi-line key: a form (the first response, no defer)
            await open_setting_form(interaction, server, key)
            return
        result = await self.bot.services.servers.set_setting(
            actor_of(interaction), server, key, value
        )
        embed = setting_changed_embed(result, interaction.locale)
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="channels", description="Where logs, alerts, status and chat go")
    @app_commands.describe(
        server="The server whose channels to set",
        logs="Channel for its console and game-log lines",
        alerts="Channel for crashes, failed starts and RCon connection alerts",
        status="Channel for its live status message",
        chat="Channel for its in-game chat",
        log_filter="Log channel: every line, or warnings and errors only",
        alert_role="Role mentioned when a crash loop is given up",
    )
    @app_commands.autocomplete(server=server_names)
    @require(Level.ADMIN)
    async def channels(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str,
        logs: discord.TextChannel | None = None,
        alerts: discord.TextChannel | None = None,
        status: discord.TextChannel | None = None,
        chat: discord.TextChannel | None = None,
        log_filter: Literal["all", "warnings"] | None = None,
        alert_role: discord.Role | None = None,
    ) -> None:
        from bot.channel_permissions import check_channels, refusal_text

        services = self.bot.services
        managed = services.servers.ref(server)
        wanted = {"logs": logs, "alerts": alerts, "status": status, "chat": chat}
        # a channel the bot cannot use would swallow what goes there: refuse it all, bind nothing
        problems = check_channels(wanted)
        if problems:
            await services.audit.record(
                actor_of(interaction),
                "server.channels",
                server_id=managed.id,
                arguments={kind: c.id for kind, c in wanted.items() if c is not None},
                result="refused: the bot lacks "
                + "; ".join(f"#{p.channel_name}: {', '.join(p.missing)}" for p in problems),
                ok=False,
            )
            role = interaction.guild.self_role if interaction.guild else None
            raise InvalidInput(
                refusal_text(problems, role.name if role else None, interaction.locale)
            )
        bindings = await services.channels.set_channels(
            actor_of(interaction),
            managed.name,
            logs=logs.id if logs else None,
            alerts=alerts.id if alerts else None,
            status=status.id if status else None,
            chat=chat.id if chat else None,
            log_filter=log_filter,
            alert_role=alert_role.id if alert_role else None,
        )
        locale = interaction.locale
        summary = bindings_text(locale, bindings)
        hub = getattr(self.bot, "channel_hub", None)
        if hub is not None:
            await hub.rebind()
            hub.retry(c.id for c in wanted.values() if c is not None)  # one that refused us
        await interaction.response.send_message(
            embed=ok_embed(tr(locale, "Channels"), summary),
            allowed_mentions=discord.AllowedMentions.none(),
        )

    @app_commands.command(name="maintenance", description="Mute alerts and pause auto-restart")
    @app_commands.describe(
        server="The server to put in maintenance",
        minutes="How many minutes, 1-10080 (a week); /server start ends it early",
    )
    @app_commands.autocomplete(server=server_names)
    @require(Level.OPERATOR)
    async def maintenance(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str,
        minutes: app_commands.Range[int, 1, 10080],
    ) -> None:
        until = await self.bot.services.schedule.start_maintenance(
            actor_of(interaction), server, minutes
        )
        locale = interaction.locale
        text = tr(
            locale,
            "**{server}**: alerts muted and auto-restart paused until <t:{until}:t>. "
            "`/server start` ends it early.",
            server=server,
            until=int(until.timestamp()),
        )
        await interaction.response.send_message(embed=ok_embed(tr(locale, "Maintenance"), text))

    @app_commands.command(name="mods", description="An Arma 3 server's mods, in load order")
    @app_commands.describe(
        server="The Arma 3 server",
        set="Mods in load order, comma-separated; add :server-only or :headless-only; - clears",
    )
    @app_commands.autocomplete(server=server_names, set=mod_set_choices)
    @require(Level.OPERATOR)
    async def mods(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str,
        set: app_commands.Range[str, 1, 6000] | None = None,
    ) -> None:
        await server_mods_reply(interaction, server, set)  # bot/mod_embeds.py


class Rcon(commands.Cog):
    def __init__(self, bot: LanguardBot) -> None:
        self.bot = bot

    @app_commands.command(name="rcon", description="Send a raw RCon/console command (audited)")
    @app_commands.describe(
        server="The server to send it to",
        command="The command as the game takes it, one line of 1-1000 characters",
    )
    @app_commands.autocomplete(server=server_names)
    @app_commands.guild_only()
    @limit(RCON_RATE)
    @require(Level.ADMIN)
    async def rcon(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str,
        command: app_commands.Range[str, 1, 1000],
    ) -> None:
        console = self.bot.services.console
        console.check(server, command)  # refused at once, before the reply is deferred
        await interaction.response.defer(ephemeral=True)
        reply = await console.send(actor_of(interaction), server, command)
        locale = interaction.locale
        lines = reply.splitlines() or [tr(locale, "(no reply)")]
        await interaction.followup.send(code_block(lines, locale=locale), ephemeral=True)


async def setup(bot: LanguardBot) -> None:
    await bot.add_cog(Servers(bot))
    await bot.add_cog(Rcon(bot))
