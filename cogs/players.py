"""/players: who is on a server, kick, ban, say, and who has been here before."""

from __future__ import annotations

import discord
from discord import Locale, app_commands
from discord.ext import commands

from bot.autocomplete import choices, chosen_server, server_names
from bot.checks import actor_of, require, server_id_of
from bot.client import LanguardBot
from bot.embeds import clean_game_text, ok_embed
from bot.i18n import tr
from bot.paginator import ListSource, Noun, Paginator, QuerySource, send_pages
from bot.views import confirm
from core.errors import LanguardError
from core.parsing import parse_duration
from core.permissions import Level


async def online_players(
    interaction: discord.Interaction[LanguardBot], current: str
) -> list[app_commands.Choice[str]]:
    """Autocomplete from the live list the service keeps (no game round trip)."""
    server = chosen_server(interaction)
    if server is None:
        return []
    try:
        players = interaction.client.services.players.known_online(server)
    except LanguardError:
        return []
    return choices(((f"#{p.key} {p.name}", p.key) for p in players), current)


PLAYERS_PER_PAGE = 25
HISTORY_PER_PAGE = 10


def _when(ts: float | None) -> str:
    return "—" if ts is None else f"<t:{int(ts)}:R>"


def _players_noun(locale: Locale | None) -> Noun:
    return Noun(tr(locale, "{count} player"), tr(locale, "{count} players"), locale)


@app_commands.guild_only()
class Players(commands.GroupCog, group_name="players", description="Players on the servers"):
    def __init__(self, bot: LanguardBot) -> None:
        self.bot = bot

    @app_commands.command(name="list", description="Who is online now")
    @app_commands.describe(server="The server to look at")
    @app_commands.autocomplete(server=server_names)
    @require(Level.VIEWER)
    async def list_(self, interaction: discord.Interaction[LanguardBot], server: str) -> None:
        locale = interaction.locale
        await interaction.response.defer()
        players = await self.bot.services.players.online(server)
        lobby = tr(locale, "lobby")
        lines = [
            f"`#{clean_game_text(p.key, 8)}` **{clean_game_text(p.name, 40)}**"
            + (f" · {p.ping} ms" if p.ping is not None else "")
            + (f" · {lobby}" if p.lobby else "")
            for p in players
        ]
        view = Paginator(
            ListSource(lines, PLAYERS_PER_PAGE),
            owner=interaction.user,
            title=tr(locale, "{server}: {count} online", server=server, count=len(players)),
            noun=_players_noun(locale),
            empty=tr(locale, "Nobody is online."),
            level=Level.VIEWER,
            server_id=server_id_of(interaction, server),
            locale=locale,
        )
        await send_pages(interaction, view, ephemeral=False)

    @app_commands.command(name="kick", description="Kick a player")
    @app_commands.describe(
        server="The server the player is on",
        player="Who: their name, the start of it, or their number",
        reason="Why, shown to the player (up to 200 characters)",
    )
    @app_commands.autocomplete(server=server_names, player=online_players)
    @require(Level.MODERATOR)
    async def kick(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str,
        player: app_commands.Range[str, 1, 256],
        reason: app_commands.Range[str, 0, 200] = "",
    ) -> None:
        locale = interaction.locale
        await interaction.response.defer()
        kicked = await self.bot.services.players.kick(actor_of(interaction), server, player, reason)
        text = tr(
            locale,
            "**{player}** left {server}.",
            player=clean_game_text(kicked.name, 64),
            server=server,
        )
        await interaction.followup.send(embed=ok_embed(tr(locale, "Kicked"), text))

    @app_commands.command(name="ban", description="Ban a player (30m, 12h, 7d or perm)")
    @app_commands.describe(
        server="The server the player is on",
        player="Who: their name, the start of it, or their number",
        duration="How long: `30m`, `12h`, `7d` or `perm` (forever)",
        reason="Why, kept with the ban (up to 200 characters)",
    )
    @app_commands.autocomplete(server=server_names, player=online_players)
    @require(Level.MODERATOR)
    async def ban(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str,
        player: app_commands.Range[str, 1, 256],
        duration: app_commands.Range[str, 1, 32],
        reason: app_commands.Range[str, 0, 200] = "",
    ) -> None:
        locale = interaction.locale
        if parse_duration(duration, allow_permanent=True) is None:
            question = tr(
                locale,
                "Ban **{player}** from {server} **permanently**?",
                player=clean_game_text(player, 64),
                server=server,
            )
            if not await confirm(interaction, question, tr(locale, "Ban permanently")):
                return
        else:
            await interaction.response.defer()
        ban = await self.bot.services.players.ban(
            actor_of(interaction), server, player, duration, reason
        )
        if ban.expires_at is None:
            until = tr(locale, "permanently")
        else:
            until = tr(locale, "until {when}", when=f"<t:{int(ban.expires_at)}:f>")
        text = tr(locale, "Ban `#{id}`: `{value}` {until}", id=ban.id, value=ban.value, until=until)
        if ban.reason:
            text += f" — {clean_game_text(ban.reason, 200)}"
        await interaction.edit_original_response(
            content=None, embed=ok_embed(tr(locale, "Banned"), text), view=None
        )

    @app_commands.command(name="say", description="A message to everyone in game")
    @app_commands.describe(
        server="The server to speak on", message="What players read (up to 200 characters)"
    )
    @app_commands.autocomplete(server=server_names)
    @require(Level.MODERATOR)
    async def say(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str,
        message: app_commands.Range[str, 1, 200],
    ) -> None:
        await interaction.response.defer()
        sent = await self.bot.services.players.say(actor_of(interaction), server, message)
        title = tr(interaction.locale, "Said in game")
        await interaction.followup.send(embed=ok_embed(title, clean_game_text(sent, 200)))

    @app_commands.command(name="history", description="Players seen before: names, ids, sessions")
    @app_commands.describe(query="A name (or part of it), a GUID/UUID or an IP address")
    @require(Level.MODERATOR)
    async def history(
        self,
        interaction: discord.Interaction[LanguardBot],
        query: app_commands.Range[str, 1, 64],
    ) -> None:
        service = self.bot.services.players
        locale = interaction.locale

        async def fetch(offset: int, limit: int) -> tuple[int, list[str]]:
            page = await service.history_page(query, offset, limit)
            blocks = []
            for item in page.items:
                record = item.player
                names = ", ".join(clean_game_text(n.value, 32) for n in item.names[:5])
                ips = ", ".join(f"`{i.value}`" for i in item.ips[:3])
                last = item.sessions[0] if item.sessions else None
                head = f"**{clean_game_text(record.last_name, 40)}** ({record.game})"
                if record.guid:
                    head += f" `{record.guid}`"
                known = tr(
                    locale, "names: {names} · IPs: {ips}", names=names or "—", ips=ips or "—"
                )
                seen = tr(
                    locale,
                    "first seen {first}, last seen {last}",
                    first=_when(record.first_seen),
                    last=_when(record.last_seen),
                )
                if last:
                    where = clean_game_text(last.server_name or "?", 32)
                    seen += " " + tr(locale, "on {server}", server=where)
                sessions = tr(locale, "{count} session(s)", count=len(item.sessions))
                blocks.append(f"{head}\n{known}\n{seen} · {sessions}")
            return page.total, blocks

        view = Paginator(
            QuerySource(fetch, HISTORY_PER_PAGE, separator="\n\n"),
            owner=interaction.user,
            title=tr(locale, "Player history"),
            noun=_players_noun(locale),
            empty=tr(locale, "No player matches that."),
            level=Level.MODERATOR,
            locale=locale,
        )
        await send_pages(interaction, view, ephemeral=True)


async def setup(bot: LanguardBot) -> None:
    await bot.add_cog(Players(bot))
