"""/players: who is on a server, kick, ban, say, and who has been here before."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.autocomplete import choices, chosen_server, server_names
from bot.checks import actor_of, require
from bot.client import LanguardBot
from bot.embeds import clean_game_text, info_embed, ok_embed
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


def _when(ts: float | None) -> str:
    return "—" if ts is None else f"<t:{int(ts)}:R>"


@app_commands.guild_only()
class Players(commands.GroupCog, group_name="players", description="Players on the servers"):
    def __init__(self, bot: LanguardBot) -> None:
        self.bot = bot

    @app_commands.command(name="list", description="Who is online now")
    @app_commands.autocomplete(server=server_names)
    @require(Level.VIEWER)
    async def list_(self, interaction: discord.Interaction[LanguardBot], server: str) -> None:
        await interaction.response.defer()
        players = await self.bot.services.players.online(server)
        lines = [
            f"`#{clean_game_text(p.key, 8)}` **{clean_game_text(p.name, 40)}**"
            + (f" · {p.ping} ms" if p.ping is not None else "")
            + (" · lobby" if p.lobby else "")
            for p in players
        ]
        text = "\n".join(lines) or "Nobody is online."
        await interaction.followup.send(
            embed=info_embed(f"{server}: {len(players)} online", text[:4000])
        )

    @app_commands.command(name="kick", description="Kick a player")
    @app_commands.autocomplete(server=server_names, player=online_players)
    @require(Level.MODERATOR)
    async def kick(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str,
        player: app_commands.Range[str, 1, 64],
        reason: app_commands.Range[str, 0, 200] = "",
    ) -> None:
        await interaction.response.defer()
        kicked = await self.bot.services.players.kick(actor_of(interaction), server, player, reason)
        await interaction.followup.send(
            embed=ok_embed("Kicked", f"**{clean_game_text(kicked.name, 64)}** left {server}.")
        )

    @app_commands.command(name="ban", description="Ban a player (30m, 12h, 7d or perm)")
    @app_commands.describe(duration="`30m`, `12h`, `7d` or `perm`")
    @app_commands.autocomplete(server=server_names, player=online_players)
    @require(Level.MODERATOR)
    async def ban(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str,
        player: app_commands.Range[str, 1, 64],
        duration: app_commands.Range[str, 1, 16],
        reason: app_commands.Range[str, 0, 200] = "",
    ) -> None:
        if parse_duration(duration, allow_permanent=True) is None:
            question = f"Ban **{clean_game_text(player, 64)}** from {server} **permanently**?"
            if not await confirm(interaction, question, "Ban permanently"):
                return
        else:
            await interaction.response.defer()
        ban = await self.bot.services.players.ban(
            actor_of(interaction), server, player, duration, reason
        )
        until = "permanently" if ban.expires_at is None else f"until <t:{int(ban.expires_at)}:f>"
        await interaction.edit_original_response(
            content=None,
            embed=ok_embed(
                "Banned",
                f"Ban `#{ban.id}`: `{ban.value}` {until}"
                + (f" — {clean_game_text(ban.reason, 200)}" if ban.reason else ""),
            ),
            view=None,
        )

    @app_commands.command(name="say", description="A message to everyone in game")
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
        await interaction.followup.send(embed=ok_embed("Said in game", clean_game_text(sent, 200)))

    @app_commands.command(name="history", description="Players seen before: names, ids, sessions")
    @app_commands.describe(query="A name (or part of it), a GUID/UUID or an IP address")
    @require(Level.MODERATOR)
    async def history(
        self,
        interaction: discord.Interaction[LanguardBot],
        query: app_commands.Range[str, 1, 64],
    ) -> None:
        found = await self.bot.services.players.history(query, 10)
        blocks = []
        for item in found:
            record = item.player
            names = ", ".join(clean_game_text(n.value, 32) for n in item.names[:5])
            ips = ", ".join(f"`{i.value}`" for i in item.ips[:3])
            last = item.sessions[0] if item.sessions else None
            blocks.append(
                f"**{clean_game_text(record.last_name, 40)}** ({record.game})"
                + (f" `{record.guid}`" if record.guid else "")
                + f"\nnames: {names or '—'} · IPs: {ips or '—'}"
                + f"\nfirst seen {_when(record.first_seen)}, last seen {_when(record.last_seen)}"
                + (f" on {clean_game_text(last.server_name or '?', 32)}" if last else "")
                + f" · {len(item.sessions)} session(s)"
            )
        text = "\n\n".join(blocks) or "No player matches that."
        await interaction.response.send_message(
            embed=info_embed("Player history", text[:4000]), ephemeral=True
        )


async def setup(bot: LanguardBot) -> None:
    await bot.add_cog(Players(bot))
