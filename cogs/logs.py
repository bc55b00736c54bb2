"""/logs: a server's log lines, from memory when it holds them, else from the files on disk
(so they survive a bot restart); disk reads run in a thread after the answer is deferred."""

from __future__ import annotations

import io

import discord
from discord import app_commands
from discord.ext import commands

from bot.autocomplete import server_names
from bot.checks import require
from bot.client import LanguardBot
from bot.embeds import code_block
from bot.i18n import tr
from core.errors import InvalidInput
from core.logs.history import SEARCH_SCAN_BYTES
from core.permissions import Level

INLINE_LIMIT = 1900


async def _reply(
    interaction: discord.Interaction[LanguardBot], title: str, lines: list[str], filename: str
) -> None:
    """A code block when it fits, else the whole text as a file (nothing cut off)."""
    locale = interaction.locale
    if sum(len(line) + 1 for line in lines) + 8 <= INLINE_LIMIT:
        block = code_block(lines, INLINE_LIMIT, locale=locale)
        await interaction.followup.send(f"**{title}**\n{block}", ephemeral=True)
        return
    data = "\n".join(lines).encode("utf-8", "replace")
    attached = tr(locale, "({count} lines, attached)", count=len(lines))
    await interaction.followup.send(
        f"**{title}** {attached}",
        file=discord.File(io.BytesIO(data), filename=filename),
        ephemeral=True,
    )


@app_commands.guild_only()
class Logs(commands.GroupCog, group_name="logs", description="Server log lines"):
    def __init__(self, bot: LanguardBot) -> None:
        self.bot = bot

    @app_commands.command(name="tail", description="The last lines of a server's logs")
    @app_commands.describe(server="The server whose logs to read", lines="How many lines, 1-500")
    @app_commands.autocomplete(server=server_names)
    @require(Level.OPERATOR)
    async def tail(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str,
        lines: app_commands.Range[int, 1, 500] = 20,
    ) -> None:
        servers = self.bot.services.servers
        ref = servers.ref(server)  # an unknown name is refused before the reply is deferred
        await interaction.response.defer(ephemeral=True, thinking=True)
        texts = await servers.log_tail(ref.name, lines)
        title = tr(
            interaction.locale, "{server}: last {count} lines", server=ref.name, count=len(texts)
        )
        await _reply(interaction, title, texts, f"{ref.name}.log")

    @app_commands.command(name="search", description="Recent lines containing a text")
    @app_commands.describe(
        server="The server whose logs to search",
        text="Text to look for (case does not matter), 1-100 characters",
        limit="At most this many lines, 1-200",
    )
    @app_commands.autocomplete(server=server_names)
    @require(Level.OPERATOR)
    async def search(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str,
        text: app_commands.Range[str, 1, 100],
        limit: app_commands.Range[int, 1, 200] = 20,
    ) -> None:
        if not text.strip():
            raise InvalidInput("give some text to search for")
        servers = self.bot.services.servers
        ref = servers.ref(server)
        await interaction.response.defer(ephemeral=True, thinking=True)
        found, complete = await servers.log_search(ref.name, text, limit)
        locale = interaction.locale
        title = tr(
            locale,
            "{server}: {count} line(s) matching the search",
            server=ref.name,
            count=len(found),
        )
        if not complete:
            megabytes = SEARCH_SCAN_BYTES // (1024 * 1024)
            title += " " + tr(locale, "(in the newest {size} MB)", size=megabytes)
        await _reply(interaction, title, found, f"{ref.name}-search.log")


async def setup(bot: LanguardBot) -> None:
    await bot.add_cog(Logs(bot))
