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
from core.errors import InvalidInput
from core.logs.history import SEARCH_SCAN_BYTES
from core.permissions import Level

INLINE_LIMIT = 1900


async def _reply(
    interaction: discord.Interaction[LanguardBot], title: str, lines: list[str], filename: str
) -> None:
    """A code block when it fits, else the whole text as a file (nothing cut off)."""
    if sum(len(line) + 1 for line in lines) + 8 <= INLINE_LIMIT:
        await interaction.followup.send(
            f"**{title}**\n{code_block(lines, INLINE_LIMIT)}", ephemeral=True
        )
        return
    data = "\n".join(lines).encode("utf-8", "replace")
    await interaction.followup.send(
        f"**{title}** ({len(lines)} lines, attached)",
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
        managed = self.bot.services.supervisor.by_name(server)
        await interaction.response.defer(ephemeral=True, thinking=True)
        texts = await managed.logs.tail(lines)
        title = f"{managed.name}: last {len(texts)} lines"
        await _reply(interaction, title, texts, f"{managed.name}.log")

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
        managed = self.bot.services.supervisor.by_name(server)
        await interaction.response.defer(ephemeral=True, thinking=True)
        found, complete = await managed.logs.search(text, limit)
        title = f"{managed.name}: {len(found)} line(s) matching the search"
        if not complete:
            title += f" (in the newest {SEARCH_SCAN_BYTES // (1024 * 1024)} MB)"
        await _reply(interaction, title, found, f"{managed.name}-search.log")


async def setup(bot: LanguardBot) -> None:
    await bot.add_cog(Logs(bot))
