"""First run of `python -m bot` (a real process) while Discord is not there yet.

The process talks to the fake Discord through LANGUARD_DISCORD_API_BASE. It is started
while the fake is down (nothing listens on its port) or answers 503 to every API call; it
must log one line per attempt, never a traceback, and connect (sync its commands) once
the fake is back. SIGTERM then ends it with exit code 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import stat
from pathlib import Path

import pytest
from discord.http import Route

import bot.run as entry
from bot.client import LanguardBot
from core.backoff import Backoff
from core.config import Settings
from tests.e2e.bot_process import RETRY_MARK, BotProcess, bot_env, free_port
from tests.e2e.fake_discord import FakeDiscord
from tests.e2e.fake_discord.state import FakeConfig

ATTEMPTS_BEFORE_RECOVERY = 2
CONNECT_TIMEOUT = 60.0
"""Retries back off 1, 2, 4 ... s: the attempt after the fake comes back is within ~8 s."""


def assert_clean_retries(bot: BotProcess, needle: str) -> None:
    """One line per attempt, numbered 1, 2, ...; no traceback, no other warning or error."""
    output = bot.output()
    assert "Traceback" not in output, output
    retries = bot.retry_lines()
    assert len(retries) >= ATTEMPTS_BEFORE_RECOVERY, output
    numbers = [int(re.search(r"attempt (\d+)", line).group(1)) for line in retries]  # type: ignore[union-attr]
    assert numbers == list(range(1, len(retries) + 1)), output
    assert all(needle in line and "retrying in" in line for line in retries), output
    noisy = [
        line
        for line in bot.lines
        if (" WARNING " in line or " ERROR " in line) and RETRY_MARK not in line
    ]
    assert noisy == [], output
    assert "voice will NOT be supported" not in output
    assert "logging in using static token" not in output


async def test_discord_down_at_boot_is_waited_for_then_connected(tmp_path: Path) -> None:
    port = free_port()
    fake = FakeDiscord(port=port)  # not started: connections to the port are refused
    log_file = tmp_path / "logs" / "languard.log"
    env = bot_env(
        tmp_path / "var",
        port,
        DISCORD_TOKEN=fake.token,
        LANGUARD_GUILD_ID=str(fake.guild.id),
        LANGUARD_LOG_FILE=str(log_file),
    )
    bot = await BotProcess.start(tmp_path, env)
    try:
        await bot.wait_until(
            lambda: len(bot.retry_lines()) >= ATTEMPTS_BEFORE_RECOVERY, "retries while down"
        )
        await fake.start()
        assert fake.port == port
        await fake.wait_until_connected(timeout=CONNECT_TIMEOUT)
        await fake.wait_for_sync(fake.guild, timeout=CONNECT_TIMEOUT)
        assert await bot.stop() == 0, bot.output()
    finally:
        await bot.stop()
        await fake.close()
    assert_clean_retries(bot, "Cannot connect to host 127.0.0.1")
    # the same lines went to the rotating log file, readable by the bot's user only
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    logged = log_file.read_text()
    assert all(line.split(" WARNING ", 1)[1] in logged for line in bot.retry_lines())
    assert "Traceback" not in logged


async def test_discord_answering_503_is_waited_for_then_connected(tmp_path: Path) -> None:
    fake = FakeDiscord(config=FakeConfig(outage_status=503))
    await fake.start()
    env = bot_env(
        tmp_path / "var",
        fake.port,
        DISCORD_TOKEN=fake.token,
        LANGUARD_GUILD_ID=str(fake.guild.id),
    )
    bot = await BotProcess.start(tmp_path, env)
    try:
        await bot.wait_until(
            lambda: len(bot.retry_lines()) >= ATTEMPTS_BEFORE_RECOVERY, "retries during a 503"
        )
        assert not any(r.status == 200 for r in fake.state.requests)
        fake.config.outage_status = None
        await fake.wait_until_connected(timeout=CONNECT_TIMEOUT)
        await fake.wait_for_sync(fake.guild, timeout=CONNECT_TIMEOUT)
        assert await bot.stop() == 0, bot.output()
    finally:
        await bot.stop()
        await fake.close()
    assert_clean_retries(bot, "503")


async def test_a_signal_ends_the_wait_for_discord_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """In-process, the real discord.py against a port nobody listens on, and an hour's
    backoff: returning at all proves SIGTERM cut the wait short (no timing assumed)."""
    monkeypatch.setattr(Route, "BASE", f"http://127.0.0.1:{free_port()}/api/v10")
    settings = Settings(discord_token="fake-bot-token", data_dir=tmp_path / "var")
    made: list[LanguardBot] = []

    def make() -> LanguardBot:
        made.append(LanguardBot(settings, cogs=(), profiles=[]))
        return made[-1]

    caplog.set_level(logging.INFO, logger="bot")
    task = asyncio.ensure_future(
        entry.run_until_stopped(make, "fake-bot-token", backoff=Backoff(3600.0, 3600.0))
    )
    try:
        async with asyncio.timeout(30):
            while not any(RETRY_MARK in r.getMessage() for r in caplog.records):
                assert not task.done(), task.exception()
                await asyncio.sleep(0.02)
            os.kill(os.getpid(), signal.SIGTERM)
            await task
    finally:
        if not task.done():
            task.cancel()
    assert len(made) == 1 and made[0].is_closed() and made[0].runtime is None
    messages = [r.getMessage() for r in caplog.records if r.name == "bot"]
    assert messages[-1] == "signal received while waiting for Discord: stopping"
    assert not any(r.exc_info for r in caplog.records), "no traceback logged"
