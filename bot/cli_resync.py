"""`python -m bot resync`: push the slash commands to every configured guild now.

For when Discord's copy went wrong (commands missing or stale) while the stored fingerprint
says nothing changed. It logs in over REST only (no gateway), loads the same cogs the bot
loads, and calls `LanguardBot.sync_commands(force=True)`, which also stores the new
fingerprint. Only the database is opened (the fingerprints live there): no supervisor, channel
hub, webhooks or HTTP endpoint, so it is safe beside a running bot and posts nothing.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import cast

import aiohttp
import discord

from bot.cli_discord import GUILD_ID_FIX, NO_TOKEN_FIX
from bot.cli_report import Report, clean
from bot.client import LanguardBot
from bot.invite import invite_url
from core.config import Settings
from core.fsutil import private_dir
from core.runtime import DATABASE_FILE, Runtime
from core.services.bot_state import BotStateService
from data.db import Database, MigrationError

__all__ = ["run_resync"]

RESYNC_TIMEOUT = 120.0


class DatabaseUnusable(Exception):
    """The database could not be opened (told apart from Discord's connection errors)."""


class _DatabaseOnly:
    """Stands in for the runtime: `sync_commands` keeps its fingerprints in the database and
    needs nothing else. A real `Runtime` would start a second supervisor that adopts (and
    may restart) the same game servers as the bot running beside us."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.bot_state = BotStateService.of(db)

    async def close(self) -> None:
        await self.db.close()


class ResyncBot(LanguardBot):
    """The bot without its runtime and Discord-facing loops: the database for the
    fingerprints, the cogs for the commands. Nothing is posted and no server is touched."""

    async def setup_hook(self) -> None:
        data_dir = self.settings.data_dir.resolve()
        try:
            private_dir(data_dir)
            db = await Database.open(data_dir / DATABASE_FILE)
        except (MigrationError, sqlite3.Error, OSError) as exc:
            raise DatabaseUnusable(f"{data_dir / DATABASE_FILE}: {exc}") from None
        self.runtime = cast(Runtime, _DatabaseOnly(db))
        for name in self.cog_names:
            await self.load_extension(name)


async def run_resync(
    settings: Settings, out: Callable[[str], None] = print, *, timeout: float = RESYNC_TIMEOUT
) -> int:
    """Force the command sync; the exit code: 0 done, 1 a problem (one line each)."""
    report = Report(out)
    if settings.discord_token is None:
        report.fail("discord", "DISCORD_TOKEN is not set", NO_TOKEN_FIX)
        return 1
    if not settings.guild_ids:
        report.fail("guild", "no guild configured", GUILD_ID_FIX)
        return 1
    bot = ResyncBot(settings)
    try:
        async with asyncio.timeout(timeout), bot:
            await bot.login(settings.discord_token.get_secret_value())
            joined = await _joined_guilds(bot, settings, report)
            if joined:
                # only the guilds the bot is in: the others were reported with their invite
                bot.settings = settings.model_copy(update={"guild_ids": joined})
                await bot.sync_commands(force=True)
                listed = ", ".join(str(gid) for gid in joined)
                report.ok("commands", f"synced to guild(s) {listed}")
    except TimeoutError:
        report.fail("discord", f"not done within {timeout:.0f} s", "check the network")
    except DatabaseUnusable as exc:
        report.fail("database", clean(exc, 400), "run python -m bot check")
    except discord.LoginFailure:
        report.fail("discord", "token rejected", "reset the token and update DISCORD_TOKEN")
    except (aiohttp.ClientError, OSError) as exc:
        report.fail("discord", f"Discord unreachable ({type(exc).__name__})", "check the network")
    except discord.HTTPException as exc:
        report.fail("discord", f"Discord answered HTTP {exc.status}", "try again in a minute")
    return report.exit_code


async def _joined_guilds(bot: LanguardBot, settings: Settings, report: Report) -> tuple[int, ...]:
    joined: list[int] = []
    for guild_id in settings.guild_ids:
        try:
            await bot.fetch_guild(guild_id)
        except (discord.Forbidden, discord.NotFound):
            report.fail(
                f"guild {guild_id}",
                "the bot is not in this guild",
                f"open {invite_url(bot.application_id or 0)} and add it to that server",
            )
            continue
        joined.append(guild_id)
    return tuple(joined)
