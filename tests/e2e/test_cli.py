"""`python -m bot check` and `resync` as real processes against the fake Discord.

The child is `python -m bot` itself; the test-only LANGUARD_DISCORD_API_BASE (bot/api_base.py)
points its discord.py at the fake. The fake runs on this test's event loop, so the child is
run with asyncio's subprocess API (a blocking `subprocess.run` would starve the fake).
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from bot.client import LanguardBot
from core.config import Settings
from data.db import Database
from data.repositories.bindings import BindingRepository
from data.repositories.servers import ServerRepository
from tests.e2e.conftest import StartBot
from tests.e2e.fake_discord import FakeDiscord
from tests.e2e.fake_discord.models import EMBED_LINKS, SEND_MESSAGES, VIEW_CHANNEL

ROOT = Path(__file__).resolve().parents[2]
INVITE_PERMISSIONS = 117760  # View Channel, Send/Embed/Attach, Read Message History


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.strip().splitlines()


async def run_cli(fake: FakeDiscord, tmp: Path, *args: str, **env: str) -> Run:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LANGUARD_") and k != "DISCORD_TOKEN"
    }
    clean.update(
        PYTHONPATH=str(ROOT),
        DISCORD_TOKEN=fake.token,
        LANGUARD_DATA_DIR=str(tmp / "var"),
        LANGUARD_GUILD_ID=str(fake.guild.id),
        LANGUARD_DISCORD_API_BASE=fake.base_url,
    )
    clean.update(env)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=tmp,  # no .env there
        env=clean,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(90):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    run = Run(proc.returncode or 0, out.decode(), err.decode())
    assert fake.token not in run.out + run.err, "the token is never printed"
    assert "Traceback" not in run.err, run.err
    return run


def fresh_data_dir(tmp: Path) -> Path:
    data = tmp / "var"
    data.mkdir(mode=0o700)
    os.chmod(data, 0o700)
    return data


async def test_check_on_a_fresh_install_passes(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    data = fresh_data_dir(tmp_path)
    run = await run_cli(fake_discord, tmp_path, "check")
    assert run.code == 0, run.out + run.err
    assert all(line.startswith(("OK ", "-- ")) for line in run.lines), run.out
    items = [line[5:].split(":", 1)[0] for line in run.lines]
    assert items == [
        "settings",
        "data dir",
        "database",
        "secret key",
        "arma3",
        "minecraft",
        "hosts",
        "discord",
        f"guild {fake_discord.guild.id}",
        "channels",
    ]
    assert "will be created at first start" in run.lines[3]
    assert not (data / "secret.key").exists(), "check never creates the key"
    assert (data / "languard.db").exists()


async def test_a_guild_without_the_bot_fails_with_the_invite_link(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    fresh_data_dir(tmp_path)
    other = fake_discord.add_guild("Elsewhere", with_bot=False)
    guilds = f"{fake_discord.guild.id},{other.id}"
    run = await run_cli(fake_discord, tmp_path, "check", LANGUARD_GUILD_ID=guilds)
    assert run.code == 1
    failures = [line for line in run.lines if line.startswith("FAIL")]
    assert len(failures) == 1, run.out
    app_id = fake_discord.world.application_id
    assert failures[0].startswith(f"FAIL guild {other.id}: the bot is not in this guild")
    assert (
        f"https://discord.com/oauth2/authorize?client_id={app_id}"
        f"&scope=bot+applications.commands&permissions={INVITE_PERMISSIONS}"
    ) in failures[0]
    assert f"OK   guild {fake_discord.guild.id}: joined (Test Guild)" in run.lines


async def test_no_guild_configured_fails_with_the_fix(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    fresh_data_dir(tmp_path)
    run = await run_cli(fake_discord, tmp_path, "check", LANGUARD_GUILD_ID="")
    assert run.code == 1
    assert [line for line in run.lines if line.startswith("FAIL")] == [
        line for line in run.lines if line.startswith("FAIL guild: no guild configured")
    ]
    assert any("LANGUARD_GUILD_ID" in line for line in run.lines if line.startswith("FAIL"))


async def test_a_token_discord_rejects_is_one_line(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    fresh_data_dir(tmp_path)
    run = await run_cli(fake_discord, tmp_path, "check", DISCORD_TOKEN="not-the-token")
    assert run.code == 1
    assert [line for line in run.lines if line.startswith("FAIL")] == [
        line for line in run.lines if line.startswith("FAIL discord: token rejected; fix:")
    ]
    assert "not-the-token" not in run.out + run.err


async def bind(data: Path, server: str, bindings: dict[str, int]) -> None:
    db = await Database.open(data / "languard.db")
    try:
        record = await ServerRepository(db).create(server, "minecraft")
        for kind, channel_id in bindings.items():
            await BindingRepository(db).set(record.id, kind, channel_id, {})
    finally:
        await db.close()


async def test_bound_channels_report_what_the_bot_lacks(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    data = fresh_data_dir(tmp_path)
    fine = fake_discord.add_channel("status")
    muted = fake_discord.add_channel("logs")
    hidden = fake_discord.add_channel("alerts")
    await bind(data, "alpha", {"status": fine.id, "logs": muted.id, "alerts": hidden.id})
    await bind(data, "beta", {"chat": 1234567})  # deleted since
    muted.bot_denied = SEND_MESSAGES  # a member overwrite for the bot in #logs
    hidden.bot_denied = VIEW_CHANNEL  # Discord answers 403 to a channel the bot cannot see
    run = await run_cli(fake_discord, tmp_path, "check")
    assert run.code == 1
    assert f"OK   channel {fine.id} (alpha status): #status: permissions ok" in run.lines
    assert f"FAIL channel {hidden.id} (alpha alerts): the bot cannot see it" in run.out
    assert "FAIL channel 1234567 (beta chat): the channel no longer exists" in run.out
    line = next(x for x in run.lines if x.startswith(f"FAIL channel {muted.id}"))
    # without Send Messages, Discord (and discord.py) deny Attach Files implicitly too
    assert line.startswith(
        f"FAIL channel {muted.id} (alpha logs): the bot lacks Send Messages, Attach Files; fix:"
    )
    assert "View Channel" not in line and "Read Message History" not in line  # only what lacks
    assert len([x for x in run.lines if x.startswith("FAIL")]) == 3

    # the same from a role: @everyone (the bot's only role) loses Embed Links
    muted.bot_denied = hidden.bot_denied = 0
    fake_discord.guild.everyone.permissions &= ~EMBED_LINKS
    run = await run_cli(fake_discord, tmp_path, "check")
    assert f"OK   channel {muted.id} (alpha logs): #logs: permissions ok" in run.lines
    assert any(
        x.startswith(f"FAIL channel {fine.id} (alpha status): the bot lacks Embed Links; fix:")
        for x in run.lines
    ), run.out


async def test_resync_pushes_the_commands_though_nothing_changed(
    fake_discord: FakeDiscord, start_bot: StartBot, tmp_path: Path
) -> None:
    data = fresh_data_dir(tmp_path)
    settings = Settings(
        discord_token=fake_discord.token, data_dir=data, guild_ids=fake_discord.guild.id
    )
    await start_bot(LanguardBot(settings, guild_ready_timeout=0.05))  # it stays up meanwhile
    assert fake_discord.sync_count(fake_discord.guild) == 1
    before = fake_discord.commands(fake_discord.guild)

    for expected in (2, 3):  # the fingerprint stored matches what Discord has: still pushed
        run = await run_cli(fake_discord, tmp_path, "resync")
        assert run.code == 0, run.out + run.err
        assert run.lines == [f"OK   commands: synced to guild(s) {fake_discord.guild.id}"]
        assert fake_discord.sync_count(fake_discord.guild) == expected
    assert fake_discord.commands(fake_discord.guild).keys() == before.keys()


async def test_resync_names_a_guild_without_the_bot(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    fresh_data_dir(tmp_path)
    other = fake_discord.add_guild("Elsewhere", with_bot=False)
    guilds = f"{fake_discord.guild.id},{other.id}"
    run = await run_cli(fake_discord, tmp_path, "resync", LANGUARD_GUILD_ID=guilds)
    assert run.code == 1
    assert run.lines[0].startswith(f"FAIL guild {other.id}: the bot is not in this guild")
    assert "oauth2/authorize" in run.lines[0]
    assert run.lines[1] == f"OK   commands: synced to guild(s) {fake_discord.guild.id}"
    assert fake_discord.sync_count(fake_discord.guild) == 1
    assert fake_discord.sync_count(other) == 0
