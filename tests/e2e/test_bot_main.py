"""`python -m bot` against the fake Discord: a rejected token, and SIGTERM closing cleanly
while the game servers keep running."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import discord
import pytest

import bot.run as entry
from bot.cli import main as cli_main
from bot.client import LanguardBot
from core.config import Settings
from core.services.audit import SYSTEM
from core.supervisor.process import identity_of
from core.supervisor.states import ServerState
from tests.e2e.fake_discord import FakeDiscord
from tests.fakes.fake_profile import FakeProfile
from tests.integration.supervision import kill_groups


def make_bot(fake: FakeDiscord, data_dir: Path) -> LanguardBot:
    settings = Settings(discord_token=fake.token, data_dir=data_dir, guild_id=fake.guild.id)
    return LanguardBot(
        settings, cogs=("cogs.host",), profiles=[FakeProfile()], guild_ready_timeout=0.05
    )


async def test_a_token_discord_rejects_raises_login_failure(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    bot = make_bot(fake_discord, tmp_path / "var")
    with pytest.raises(discord.LoginFailure):
        async with asyncio.timeout(10):
            await entry.run_until_stopped(bot, "not-the-token")
    assert bot.is_closed()


def test_main_turns_a_rejected_token_into_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def rejected(bot: LanguardBot, token: str) -> None:
        raise discord.LoginFailure("Improper token has been passed.")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISCORD_TOKEN", "abc")
    monkeypatch.setenv("LANGUARD_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setattr(entry, "run_until_stopped", rejected)
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        assert cli_main([]) == 2
    finally:  # the bot's stderr handler holds capsys's stream, closed after this test
        for handler in [h for h in root.handlers if h not in before]:
            root.removeHandler(handler)
            handler.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [entry.BAD_TOKEN]


async def test_sigterm_closes_the_bot_and_leaves_game_servers_running(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    bot = make_bot(fake_discord, tmp_path / "var")
    task = asyncio.ensure_future(entry.run_until_stopped(bot, fake_discord.token))
    pid = 0
    try:
        async with asyncio.timeout(15):
            while bot.runtime is None or not bot.is_ready():
                await asyncio.sleep(0.02)
            await bot.services.servers.create(SYSTEM, "alpha", "fake")
            result = await bot.services.servers.start(SYSTEM, "alpha")
            assert result.state is ServerState.RUNNING
            handle = bot.services.supervisor.by_name("alpha").handle
            assert handle is not None
            pid = handle.pid
            os.kill(os.getpid(), signal.SIGTERM)
            await task
        assert bot.is_closed() and bot.runtime is None
        assert identity_of(pid) is not None, "closing the bot must not stop the game"
    finally:
        if not task.done():
            task.cancel()
        if pid:
            kill_groups([pid])
