"""Channel permissions end to end: the real LanguardBot (its `/server` cog and channel hub) and
discord.py against the fake Discord, real SQLite, a server's real log file.

A channel's denied bot permissions are `FakeChannel.bot_denied`: the fake's REST routes
enforce them and its channel payloads carry them as an overwrite for the bot, so discord.py's
`permissions_for(guild.me)` agrees with what the REST layer does.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.alerts import AlertConfig
from bot.channels import ChannelHub, HubConfig
from bot.client import LanguardBot
from bot.outbox_types import OutboxConfig
from core.config import Settings
from core.services.audit import Actor
from core.supervisor.server import ManagedServer
from data.repositories.servers import ServerRepository
from data.repositories.settings import SettingsRepository
from tests.e2e.fake_discord import FakeChannel, FakeDiscord, FakeMessage, running_client
from tests.e2e.fake_discord.models import (
    ATTACH_FILES,
    EMBED_LINKS,
    SEND_MESSAGES,
    VIEW_CHANNEL,
)
from tests.e2e.product import until
from tests.fakes.fake_profile import FakeProfile
from tests.integration.supervision import FAST

ADMIN = Actor(1, "admin")
CAP = 300
"""Lines an unwritable channel keeps per stream in these tests."""
CONFIG = HubConfig(
    outbox=OutboxConfig(linger=0.3, mark_linger=0.5, unwritable_max_lines=CAP),
    alerts=AlertConfig(disk_min_free_bytes=0, disk_min_free_ratio=0.0),
    status_interval=60.0,
    close_timeout=8.0,
)


class ChannelsBot(LanguardBot):
    """The product bot with only `/server` (and its `/server channels`) and the fake game."""

    def __init__(self, settings: Settings, config: HubConfig) -> None:
        super().__init__(
            settings,
            cogs=("cogs.servers",),
            profiles=[FakeProfile()],
            hub_config=config,
            guild_ready_timeout=0.1,
        )

    @property
    def hub(self) -> ChannelHub:
        return self.channel_hub


@contextlib.asynccontextmanager
async def product(
    fake: FakeDiscord, data_dir: Path, config: HubConfig = CONFIG
) -> AsyncIterator[ChannelsBot]:
    settings = Settings(discord_token=fake.token, data_dir=data_dir, guild_id=fake.guild.id)
    bot = ChannelsBot(settings, config)
    async with running_client(fake, bot, timeout=15.0):
        yield bot


async def add_server(bot: ChannelsBot, name: str) -> ManagedServer:
    """A server that is never started: lines appended to its console.log are still relayed."""
    db = bot.services.db
    record = await ServerRepository(db).create(name, "fake")
    await SettingsRepository(db).set_many(record.id, {**FAST, "args": []})
    return await bot.services.supervisor.add(record)


def console(bot: ChannelsBot, name: str) -> Path:
    folder = bot.services.supervisor.data_dir / "servers" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "console.log"


def append(path: Path, lines: list[str]) -> None:
    with path.open("a") as out:
        out.write("".join(f"{line}\n" for line in lines))


def code_lines(message: FakeMessage) -> list[str]:
    lines: list[str] = []
    for attachment in message.attachments:
        lines += attachment.data.decode().splitlines()
    if not message.attachments and "```" in message.content:
        body = message.content.split("```\n", 1)[1].rsplit("\n```", 1)[0]
        lines += body.split("\n")
    return lines


def posted_lines(fake: FakeDiscord, channel: FakeChannel) -> list[str]:
    return [line for m in fake.messages(channel) for line in code_lines(m)]


async def deny(fake: FakeDiscord, channel: FakeChannel, bits: int) -> None:
    """Change the bot's denied permissions as an admin would: REST and the gateway agree."""
    channel.bot_denied = bits
    await fake.dispatch("CHANNEL_UPDATE", channel.payload(bot_user_id=fake.bot_user.id))


async def error_of(fake: FakeDiscord, options: dict[str, Any]) -> str:
    """Run `/server channels` that must be refused: its one answer is an ephemeral error."""
    handle = await fake.invoke_slash("server channels", options)
    message = await handle.message(10.0)
    assert message.ephemeral, message.embed_text()
    text = message.embed_text()
    assert text.startswith("⚠️"), text
    return text


# -- the fake behaves like Discord --------------------------------------------------------------


async def test_the_fake_enforces_the_bots_channel_permissions_like_discord(
    fake_discord: FakeDiscord, start_bot: Callable[..., Any]
) -> None:
    fake = fake_discord
    nosend, nofiles = fake.add_channel("nosend"), fake.add_channel("nofiles")
    noembeds, noview = fake.add_channel("noembeds"), fake.add_channel("noview")
    nosend.bot_denied, nofiles.bot_denied = SEND_MESSAGES, ATTACH_FILES
    noembeds.bot_denied, noview.bot_denied = EMBED_LINKS, VIEW_CHANNEL
    client = await start_bot(discord.Client(intents=discord.Intents(guilds=True)))
    guild = client.get_guild(fake.guild.id)
    assert guild is not None and guild.me is not None

    def perms(channel: FakeChannel) -> discord.Permissions:
        cached = guild.get_channel(channel.id)
        assert isinstance(cached, discord.TextChannel)
        return cached.permissions_for(guild.me)

    # discord.py computes from the overwrite what the REST layer enforces
    assert not perms(nosend).send_messages and perms(nosend).view_channel
    assert perms(nofiles).send_messages and not perms(nofiles).attach_files
    assert not perms(noembeds).embed_links and perms(noembeds).send_messages
    assert not perms(noview).view_channel
    assert perms(fake.general).send_messages and perms(fake.general).attach_files

    with pytest.raises(discord.Forbidden) as refused:
        await client.get_partial_messageable(nosend.id).send("hello")
    assert (refused.value.status, refused.value.code) == (403, 50013)
    assert refused.value.text == "Missing Permissions"
    with pytest.raises(discord.Forbidden) as hidden:
        await client.get_partial_messageable(noview.id).send("hello")
    assert (hidden.value.code, hidden.value.text) == (50001, "Missing Access")

    files = client.get_partial_messageable(nofiles.id)
    with pytest.raises(discord.Forbidden) as no_file:
        await files.send("a file", file=discord.File(io.BytesIO(b"x\n"), "a.log"))
    assert no_file.value.code == 50013
    assert (await files.send("text is fine")).content == "text is fine"

    # Discord drops embeds silently without Embed Links; an embed-only message is then empty
    embeds = client.get_partial_messageable(noembeds.id)
    kept = await embeds.send("with an embed", embed=discord.Embed(title="dropped"))
    assert kept.embeds == [] and fake.messages(noembeds)[-1].embeds == []
    with pytest.raises(discord.HTTPException) as empty:
        await embeds.send(embed=discord.Embed(title="only an embed"))
    assert (empty.value.status, empty.value.code) == (400, 50006)

    # the permission given back: the next CHANNEL_UPDATE tells discord.py, REST takes the post
    await deny(fake, nosend, 0)
    await until(lambda: perms(nosend).send_messages, 5, "the cache to see the change")
    assert (await client.get_partial_messageable(nosend.id).send("now")).content == "now"


# -- binding checks the bot's permissions first -------------------------------------------------


async def test_binding_a_channel_the_bot_cannot_use_is_refused_whole(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    fake = fake_discord
    logs, alerts = fake.add_channel("logs"), fake.add_channel("alerts")
    status, chat = fake.add_channel("status"), fake.add_channel("chat")
    logs.bot_denied = SEND_MESSAGES
    alerts.bot_denied = EMBED_LINKS
    async with product(fake, tmp_path / "data") as bot:
        server = await add_server(bot, "alpha")
        service = bot.hub.service

        text = await error_of(
            fake, {"server": "alpha", "logs": logs, "alerts": alerts, "status": status}
        )
        assert "nothing was changed" in text
        assert "#logs: Send Messages, Attach Files (for logs)" in text  # no send: no file either
        assert "#alerts: Embed Links (for alerts)" in text
        assert "#status" not in text  # nothing missing there
        assert "Permissions" in text and "/server channels" in text
        assert await service.list(server.id) == []  # nothing bound, not even #status
        refused = (await bot.services.audit.recent(5, server.id))[0]
        assert refused.action == "server.channels" and not refused.ok

        await deny(fake, logs, ATTACH_FILES)  # can post, but a flood file would be refused
        await until(
            lambda: not logs_perms(bot, logs).attach_files, 5, "the cache to see the change"
        )
        text = await error_of(fake, {"server": "alpha", "logs": logs, "chat": chat})
        assert "#logs: Attach Files (for logs)" in text and "#chat" not in text
        assert await service.list(server.id) == []

        await deny(fake, logs, EMBED_LINKS)  # logs never embed: fine
        await deny(fake, alerts, 0)
        await until(lambda: logs_perms(bot, logs).attach_files, 5, "the cache to see it")
        handle = await fake.invoke_slash(
            "server channels",
            {"server": "alpha", "logs": logs, "alerts": alerts, "status": status, "chat": chat},
        )
        reply = await handle.message(10.0)
        assert "Channels" in reply.embed_text(), reply.embed_text()
        bound = {(b.kind.value, b.channel_id) for b in await service.list(server.id)}
        assert bound == {
            ("logs", logs.id),
            ("alerts", alerts.id),
            ("status", status.id),
            ("chat", chat.id),
        }
        await until(lambda: fake.messages(status), 10, "the status message")


def logs_perms(bot: ChannelsBot, channel: FakeChannel) -> discord.Permissions:
    cached = bot.get_channel(channel.id)
    assert isinstance(cached, discord.TextChannel) and cached.guild.me is not None
    return cached.permissions_for(cached.guild.me)


# -- a bound channel that loses a permission later ----------------------------------------------


def warnings_about(caplog: pytest.LogCaptureFixture, channel: FakeChannel) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and str(channel.id) in r.getMessage()
    ]


async def test_a_logs_channel_that_refuses_the_bot_later_stops_alerts_once_and_resumes(
    fake_discord: FakeDiscord, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    fake = fake_discord
    logs, alerts = fake.add_channel("logs"), fake.add_channel("alerts")
    creates = f"/channels/{logs.id}/messages"
    async with product(fake, tmp_path / "data") as bot:
        await add_server(bot, "alpha")
        log = console(bot, "alpha")
        handle = await fake.invoke_slash(
            "server channels", {"server": "alpha", "logs": logs, "alerts": alerts}
        )
        assert "Channels" in (await handle.message(10.0)).embed_text()
        append(log, ["before 1", "before 2"])
        await until(lambda: posted_lines(fake, logs) == ["before 1", "before 2"], 10, "lines")

        posted = len(fake.requests_to("POST", creates))
        await deny(fake, logs, SEND_MESSAGES)
        append(log, ["refused 1"])
        [alert] = await until(lambda: fake.messages(alerts), 10, "the alert")
        assert "cannot post" in alert.embed_text() and f"<#{logs.id}>" in alert.embed_text()
        assert "logs of **alpha**" in alert.embed_text()
        assert "Send Messages" in alert.embed_text()
        [warning] = warnings_about(caplog, logs)
        assert "logs of alpha" in warning and "missing: Send Messages" in warning
        assert f"keeping the newest {CAP} lines" in warning
        failed = len(fake.requests_to("POST", creates))
        assert failed == posted + 1  # the one refused attempt

        outbox = bot.hub.outbox(logs.id)
        flood = [f"flood {i:05d}" for i in range(5000)]
        for start in range(0, len(flood), 500):  # lines keep coming while it is closed
            append(log, flood[start : start + 500])
            await asyncio.sleep(0.05)
        await until(lambda: outbox.pending_lines >= CAP, 10, "the lines to reach the outbox")
        await asyncio.sleep(1.5)  # several lingers: a spinning retry would show here
        assert outbox.pending_lines <= CAP
        assert len(fake.requests_to("POST", creates)) == failed  # nothing more was tried
        assert len(fake.messages(alerts)) == 1 and len(warnings_about(caplog, logs)) == 1

        await deny(fake, logs, 0)  # an admin gives the permission back and binds it again
        await until(lambda: logs_perms(bot, logs).send_messages, 5, "the cache to see it")
        handle = await fake.invoke_slash("server channels", {"server": "alpha", "logs": logs})
        assert "Channels" in (await handle.message(10.0)).embed_text()
        await until(lambda: posted_lines(fake, logs)[-1:] == flood[-1:], 15, "posting resumed")
        resumed = posted_lines(fake, logs)
        assert resumed[2:] == flood[-CAP:]  # the newest lines, in order, each once
        note = next(m for m in fake.messages(logs) if "dropped" in m.content)
        assert f"{5000 + 1 - CAP:,} lines" in note.content
        again = [r.getMessage() for r in caplog.records if "writable again" in r.getMessage()]
        assert len(again) == 1 and f"{5000 + 1 - CAP} lines" in again[0]
        await until(lambda: len(fake.messages(alerts)) == 2, 10, "the all-clear")
        assert "again" in fake.messages(alerts)[1].embed_text()
        assert len(warnings_about(caplog, logs)) == 1


async def test_an_unwritable_channel_is_tried_again_after_the_backoff(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    fake = fake_discord
    logs = fake.add_channel("logs")
    creates = f"/channels/{logs.id}/messages"
    config = replace(CONFIG, outbox=replace(CONFIG.outbox, unwritable_retry=1.5))
    async with product(fake, tmp_path / "data", config) as bot:
        await add_server(bot, "alpha")
        log = console(bot, "alpha")
        await bot.hub.service.set_channels(ADMIN, "alpha", logs=logs.id)
        logs.bot_denied = SEND_MESSAGES  # REST only: the bot learns it from the 403
        append(log, ["one"])
        await until(lambda: not bot.hub.outbox(logs.id).writable, 10, "the refusal")
        append(log, ["two"])
        tries = await until(lambda: fake.requests_to("POST", creates)[1:], 10, "one more try")
        assert tries[0].arrived_at - fake.requests_to("POST", creates)[0].arrived_at >= 1.4
        assert tries[0].status == 403  # still refused: the next try is 1.5 s later again
        logs.bot_denied = 0
        await until(lambda: posted_lines(fake, logs) == ["one", "two"], 10, "posting resumed")
        # the outbox marks itself writable once it has recorded the delivery (a database
        # write after Discord answered), so a loaded host may see the post first
        await until(lambda: bot.hub.outbox(logs.id).writable, 10, "writable again")
