"""Running the bot: refuse clearly what cannot work, wait out a Discord that cannot be
reached, run until SIGINT/SIGTERM.

Everything an operator can get wrong at start (token, settings, data folder, log file, a
second bot on the same data) is one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable

import aiohttp
import discord

from bot.api_base import apply_api_base
from bot.chat_in import INTENT_HELP
from bot.client import LanguardBot
from bot.logging_setup import configure_logging
from core.backoff import Backoff
from core.config import Settings, SettingsError, check_data_dir
from core.hosts.loading import HostsFileError, load_hosts
from core.instance_lock import InstanceLock, InstanceLocked
from core.secrets import SecretError

__all__ = [
    "BAD_TOKEN",
    "NO_TOKEN",
    "is_transient",
    "run_bot",
    "run_until_stopped",
]

_log = logging.getLogger("bot")

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
RETRY_BASE = 1.0
RETRY_CAP = 60.0
RETRY_JITTER = 0.2

BotFactory = Callable[[], LanguardBot]


def is_transient(exc: BaseException) -> bool:
    """Discord down, unreachable or overloaded: worth waiting for. A bad token is not."""
    if isinstance(exc, discord.LoginFailure):
        return False
    if isinstance(exc, discord.HTTPException):  # DiscordServerError is one, status >= 500
        return exc.status >= 500
    # connection refused, DNS failure (ClientConnectorError is an OSError too), timeouts
    return isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError)


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


async def _run_once(bot: LanguardBot, token: str, stop: asyncio.Event) -> bool:
    """One login + connect of `bot`; True when a signal ended it. The bot is closed after.

    discord.py's `login` opens the runtime in `setup_hook`; `async with bot` closes the bot
    (and with it the runtime, if it was opened) however this attempt ends.
    """
    async with bot:
        runner = asyncio.ensure_future(bot.start(token))
        stopper = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if runner in done:
            stopper.cancel()
            runner.result()  # LoginFailure, an unreachable Discord... surface here
            return False
        _log.info("signal received: closing (game servers keep running)")
        await bot.close()
        try:
            await runner
        except Exception as exc:  # the close interrupted a login in flight: expected
            _log.debug("start ended by close: %r", exc)
        return True


async def _stopped_within(stop: asyncio.Event, delay: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), timeout=delay)
    except TimeoutError:
        return False
    return True


async def run_until_stopped(
    bot: LanguardBot | BotFactory, token: str, *, backoff: Backoff | None = None
) -> None:
    """Run the bot until Discord ends it or SIGINT/SIGTERM arrives; game servers stay up.

    Given a factory, a Discord that cannot be reached (refused, DNS, timeout, 5xx) is
    retried with capped exponential backoff, one log line per attempt, each attempt with
    a fresh bot (a closed discord.py client cannot log in again). Given one bot, the
    first failure is raised. A signal stops the wait at once. The signal handlers only set
    an event; the attempt in progress does the orderly close.
    """
    factory: BotFactory | None = None if isinstance(bot, LanguardBot) else bot
    first: LanguardBot | None = bot if isinstance(bot, LanguardBot) else None
    backoff = backoff or Backoff(RETRY_BASE, RETRY_CAP, RETRY_JITTER)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        attempt = 0
        while not stop.is_set():
            attempt += 1
            client = first if first is not None else factory() if factory is not None else None
            first = None
            if client is None:
                raise RuntimeError("run_until_stopped: no bot to run")
            try:
                await _run_once(client, token, stop)
                return
            except Exception as exc:
                if factory is None or not is_transient(exc):
                    raise
                delay = backoff.next()
                _log.warning(
                    "cannot reach Discord (attempt %d: %s); retrying in %.1f s",
                    attempt,
                    _describe(exc),
                    delay,
                )
                if await _stopped_within(stop, delay):
                    _log.info("signal received while waiting for Discord: stopping")
                    return
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def _fail(message: str) -> int:
    print(f"languard: {message}", file=sys.stderr)
    return 2


def run_bot(settings: Settings) -> int:
    """Run the bot with these settings; the exit code for `python -m bot`."""
    if settings.discord_token is None:
        print(NO_TOKEN, file=sys.stderr)
        return 2
    try:
        check_data_dir(settings.data_dir)
    except SettingsError as exc:
        return _fail(str(exc))
    try:  # before anything else: a wrong hosts.toml is all its lines at once, and no start
        load_hosts(settings.hosts_path, required=settings.hosts_file is not None)
    except HostsFileError as exc:
        for line in exc.lines():
            print(f"languard: {line}", file=sys.stderr)
        return 2
    problem = apply_api_base(os.environ)  # test-only redirection to a local fake Discord
    if problem is not None:
        return _fail(problem)
    try:
        configure_logging(settings.log_level_number, settings.log_file)
    except OSError as exc:
        return _fail(
            f"LANGUARD_LOG_FILE is invalid: cannot open {settings.log_file} "
            f"({exc.strerror or type(exc).__name__}); use a file path the bot may write to, "
            "or leave it empty."
        )
    lock = InstanceLock(settings.data_dir)
    try:
        lock.acquire()
    except InstanceLocked as exc:
        return _fail(
            f"{exc}; stop it first (systemctl stop languard), or give this one another "
            "LANGUARD_DATA_DIR."
        )
    except OSError as exc:
        return _fail(f"cannot lock {lock.path} ({exc.strerror}); check LANGUARD_DATA_DIR.")
    token = settings.discord_token.get_secret_value()
    try:
        asyncio.run(run_until_stopped(lambda: LanguardBot(settings), token))
    except discord.LoginFailure:
        print(BAD_TOKEN, file=sys.stderr)
        return 2
    except discord.PrivilegedIntentsRequired:  # gateway close 4014: the portal switch is off
        print(INTENT_HELP, file=sys.stderr)
        return 2
    except SecretError as exc:  # an unreadable secret.key: one line with the fix
        print(f"languard: {exc}", file=sys.stderr)
        return 2
    except HostsFileError as exc:  # hosts.toml: every problem, one line each
        for line in exc.lines():
            print(f"languard: {line}", file=sys.stderr)
        return 2
    finally:
        lock.release()
    return 0
