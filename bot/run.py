"""Running the bot: refuse clearly without a token, run until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import discord

from bot.client import LanguardBot
from core.config import Settings
from core.secrets import SecretError

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


async def run_until_stopped(bot: LanguardBot, token: str) -> None:
    """Run the bot until Discord ends it or SIGINT/SIGTERM arrives; game servers stay up.

    The signal handlers only set an event; this one coroutine does the orderly close.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        async with bot:
            runner = asyncio.ensure_future(bot.start(token))
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if runner in done:
                stopper.cancel()
                runner.result()  # LoginFailure and friends surface here
                return
            logging.getLogger("bot").info("signal received: closing (game servers keep running)")
            await bot.close()
            await runner
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def run_bot(settings: Settings) -> int:
    """Run the bot with these settings; the exit code for `python -m bot`."""
    if settings.discord_token is None:
        print(NO_TOKEN, file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level_number,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    bot = LanguardBot(settings)
    try:
        asyncio.run(run_until_stopped(bot, settings.discord_token.get_secret_value()))
    except discord.LoginFailure:
        print(BAD_TOKEN, file=sys.stderr)
        return 2
    except SecretError as exc:  # an unreadable secret.key: one line with the fix
        print(f"languard: {exc}", file=sys.stderr)
        return 2
    return 0
