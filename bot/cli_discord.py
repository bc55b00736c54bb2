"""The Discord half of `python -m bot check`: token, guilds, and each bound channel's rights.

Everything is fetched over REST with a client that never opens the gateway, so the check can
run beside a live bot (same token) without taking over its session.

Channel permissions are computed by discord.py from fetched objects. `Client.fetch_channel`
attaches a channel to a placeholder guild without roles when the gateway is not connected
(discord.py then reports a bot's "user installed" permissions, not the real ones), so the
channel is fetched a second time through its fetched `Guild`, which carries the roles and
the owner; the bot's member comes from `Guild.fetch_member`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
import discord

from bot.channel_permissions import missing_permissions
from bot.cli_report import Report, clean
from bot.invite import invite_url
from core.config import Settings

__all__ = ["DISCORD_TIMEOUT", "BoundChannel", "check_discord"]

DISCORD_TIMEOUT = 60.0
"""Seconds for the whole Discord part (discord.py retries a 5xx a few times by itself)."""

NO_TOKEN_FIX = (
    "create a bot at https://discord.com/developers/applications (your app -> Bot -> "
    "Reset Token) and put DISCORD_TOKEN=<token> in .env"
)
GUILD_ID_FIX = (
    "set LANGUARD_GUILD_ID to your Discord server's id (User Settings -> Advanced -> "
    "Developer Mode, then right-click the server -> Copy Server ID)"
)


@dataclass(frozen=True, slots=True)
class BoundChannel:
    """One binding read from the database: a server's channel of one kind."""

    server: str
    kind: str
    channel_id: int


async def check_discord(
    settings: Settings,
    bindings: Sequence[BoundChannel] | None,
    report: Report,
    *,
    timeout: float = DISCORD_TIMEOUT,
) -> None:
    """Log in over REST, then check the guilds and the bound channels (None: not known)."""
    if settings.discord_token is None:
        report.fail("discord", "DISCORD_TOKEN is not set", NO_TOKEN_FIX)
        return
    token = settings.discord_token.get_secret_value()
    client = discord.Client(intents=discord.Intents.none())
    try:
        async with asyncio.timeout(timeout), client:
            if not await _login(client, token, report):
                return
            guilds = await _check_guilds(client, settings, report)
            await _check_channels(client, settings, guilds, bindings, report)
    except TimeoutError:
        report.fail(
            "discord",
            f"no answer from Discord within {timeout:.0f} s",
            "check the host's network, then run the check again",
        )


async def _login(client: discord.Client, token: str, report: Report) -> bool:
    try:
        await client.login(token)
    except discord.LoginFailure:
        report.fail(
            "discord",
            "token rejected",
            "reset the token in the developer portal (your app -> Bot -> Reset Token) "
            "and update DISCORD_TOKEN in .env",
        )
        return False
    except (aiohttp.ClientError, OSError) as exc:
        report.fail(
            "discord",
            f"Discord unreachable ({type(exc).__name__})",
            "check the host's internet connection, DNS and firewall (HTTPS to discord.com)",
        )
        return False
    except discord.HTTPException as exc:
        report.fail("discord", f"Discord answered HTTP {exc.status}", "try again in a minute")
        return False
    user = client.user
    report.ok(
        "discord",
        f"token valid, logged in as {clean(user) if user else '?'} "
        f"(application {client.application_id})",
    )
    return True


async def _check_guilds(
    client: discord.Client, settings: Settings, report: Report
) -> dict[int, discord.Guild]:
    """The configured guilds the bot is in."""
    if not settings.guild_ids:
        report.fail("guild", "no guild configured", GUILD_ID_FIX)
        return {}
    joined: dict[int, discord.Guild] = {}
    for guild_id in settings.guild_ids:
        item = f"guild {guild_id}"
        try:
            guild = await client.fetch_guild(guild_id)
        except (discord.Forbidden, discord.NotFound):
            report.fail(
                item,
                "the bot is not in this guild",
                f"open {invite_url(client.application_id or 0)} and add it to that server",
            )
            continue
        except discord.HTTPException as exc:
            report.fail(item, f"Discord answered HTTP {exc.status}", "try again in a minute")
            continue
        joined[guild_id] = guild
        report.ok(item, f"joined ({clean(guild.name)})")
    return joined


async def _check_channels(
    client: discord.Client,
    settings: Settings,
    guilds: dict[int, discord.Guild],
    bindings: Sequence[BoundChannel] | None,
    report: Report,
) -> None:
    if bindings is None:
        report.info("channels", "not checked (the database could not be read)")
        return
    if not bindings:
        report.info("channels", "none bound yet (bind them with /server channels)")
        return
    members: dict[int, discord.Member] = {}
    for binding in bindings:
        item = f"channel {binding.channel_id} ({binding.server} {binding.kind})"
        try:
            problem = await _channel_problem(client, settings, guilds, members, binding)
        except discord.NotFound:
            problem = ("the channel no longer exists", "bind another one with /server channels")
        except discord.Forbidden:
            problem = (
                "the bot cannot see it (missing View Channel)",
                "give the bot's role View Channel in that channel's permissions",
            )
        except discord.HTTPException as exc:
            problem = (f"Discord answered HTTP {exc.status}", "try again in a minute")
        except discord.InvalidData:
            problem = ("it is not a channel of a server", "bind a server text channel")
        if isinstance(problem, str):
            report.ok(item, problem)
        else:
            report.fail(item, *problem)


async def _channel_problem(
    client: discord.Client,
    settings: Settings,
    guilds: dict[int, discord.Guild],
    members: dict[int, discord.Member],
    binding: BoundChannel,
) -> str | tuple[str, str]:
    """A detail line when the channel is usable, else (problem, fix)."""
    found = await client.fetch_channel(binding.channel_id)
    guild_id = found.guild.id if isinstance(found, discord.abc.GuildChannel | discord.Thread) else 0
    if not guild_id:
        return ("it is not a channel of a server", "bind a server text channel")
    guild = guilds.get(guild_id)
    if guild is None:
        if guild_id in settings.guild_ids:
            return ("its guild is not joined (see above)", "invite the bot to that guild")
        return (
            f"it belongs to guild {guild_id}, which is not configured",
            "bind a channel of a configured guild, or add that guild to LANGUARD_GUILD_ID",
        )
    member = members.get(guild_id)
    if member is None:
        assert client.user is not None  # logged in
        member = members[guild_id] = await guild.fetch_member(client.user.id)
    channel = await guild.fetch_channel(binding.channel_id)  # attached to the real guild
    missing = missing_permissions(channel.permissions_for(member), binding.kind)
    if missing:
        return (
            f"the bot lacks {', '.join(missing)}",
            "grant them to the bot's role in that channel's settings -> Permissions",
        )
    return f"#{clean(channel.name)}: permissions ok"
