"""`python -m bot`: load settings, refuse clearly without a token, run until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import discord

from bot.client import LanguardBot
from core.config import SettingsError, load_settings

NO_TOKEN = (
    "languard: DISCORD_TOKEN is not set. Create a bot at "
    "https://discord.com/developers/applications (your app -> Bot -> Reset Token), "
    "then put DISCORD_TOKEN=<token> in the .env file next to the Makefile "
    "(copy .env.example) or in the environment."
)
BAD_TOKEN = (
    "languard: Discord rejected DISCORD_TOKEN. Reset the token in the developer portal "
    "(your app -> Bot -> Reset Token) and update .env."
)


async def _run(bot: LanguardBot, token: str) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.close()))
    async with bot:
        await bot.start(token)


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"languard: {exc}", file=sys.stderr)
        return 2
    if settings.discord_token is None:
        print(NO_TOKEN, file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level_number,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    bot = LanguardBot(settings)
    try:
        asyncio.run(_run(bot, settings.discord_token.get_secret_value()))
    except discord.LoginFailure:
        print(BAD_TOKEN, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
