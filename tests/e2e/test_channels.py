"""Channels end to end: the real LanguardBot and discord.py against the fake Discord, a real
fake game server process, real SQLite.

`HubBot` is the product LanguardBot with only the `/status` cog, the fake game profile and
quick channel timings.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.alerts import AlertConfig
from bot.channels import ChannelHub, HubConfig
from bot.client import LanguardBot
from bot.outbox_types import OutboxConfig
from core.config import Settings
from core.errors import InvalidInput, NotFound
from core.events import Chat, ServerCrashed, ServerHung
from core.services.audit import Actor
from core.supervisor.server import ManagedServer
from core.supervisor.states import ServerState
from data.repositories.servers import ServerRepository
from data.repositories.settings import SettingsRepository
from data.repositories.telemetry import LogOffsetRepository
from tests.e2e.fake_discord import FakeChannel, FakeDiscord, FakeMessage, running_client
from tests.fakes.fake_profile import FakeProfile
from tests.integration.supervision import FAST, kill_groups

ADMIN = Actor(1, "admin")
NO_MENTIONS = {"parse": []}
QUICK = HubConfig(
    outbox=OutboxConfig(linger=0.3, mark_linger=0.5),
    alerts=AlertConfig(disk_min_free_bytes=0, disk_min_free_ratio=0.0),
    status_interval=0.3,
    close_timeout=8.0,
)


class HubBot(LanguardBot):
    """The product bot with only `/status`, the fake game and quick channel timings."""

    def __init__(self, settings: Settings, config: HubConfig = QUICK) -> None:
        super().__init__(
            settings,
            cogs=("cogs.status",),
            profiles=[FakeProfile()],
            hub_config=config,
            guild_ready_timeout=0.1,
        )

    @property
    def hub(self) -> ChannelHub:
        return self.channel_hub


class World:
    """The fake Discord, a data folder, and bots started on them one after another."""

    def __init__(self, fake: FakeDiscord, data_dir: Path) -> None:
        self.fake = fake
        self.settings = Settings(
            discord_token=fake.token, data_dir=data_dir, guild_id=fake.guild.id
        )
        self.pids: set[int] = set()

    @contextlib.asynccontextmanager
    async def bot(self, config: HubConfig = QUICK) -> AsyncIterator[HubBot]:
        bot = HubBot(self.settings, config)
        try:
            async with running_client(self.fake, bot, timeout=15.0):
                yield bot
                self.pids |= {s.handle.pid for s in bot.services.supervisor.all() if s.handle}
        finally:
            if bot.runtime is not None:
                self.pids |= {s.handle.pid for s in bot.runtime.supervisor.all() if s.handle}

    def kill_servers(self) -> None:
        kill_groups(sorted(self.pids))


@pytest.fixture
async def world(fake_discord: FakeDiscord, tmp_path: Path) -> AsyncIterator[World]:
    w = World(fake_discord, tmp_path / "data")
    try:
        yield w
    finally:
        w.kill_servers()


async def add_server(bot: HubBot, name: str, args: list[str], **settings: Any) -> ManagedServer:
    db = bot.services.db
    record = await ServerRepository(db).create(name, "fake")
    await SettingsRepository(db).set_many(record.id, {**FAST, "args": args, **settings})
    return await bot.services.supervisor.add(record)


async def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


def code_lines(message: FakeMessage) -> list[str]:
    """The lines a message carries: its code block, or its .log attachments."""
    lines: list[str] = []
    for attachment in message.attachments:
        assert attachment.filename.endswith(".log")
        lines += attachment.data.decode().splitlines()
    if not message.attachments and "```" in message.content:
        assert message.content.count("```") == 2, "a line broke out of the code block"
        body = message.content.split("```\n", 1)[1].rsplit("\n```", 1)[0]
        lines += [line.replace("`\u200b", "`") for line in body.split("\n")]
    return lines


def posted_lines(fake: FakeDiscord, channel: FakeChannel) -> list[str]:
    return [line for m in fake.messages(channel) for line in code_lines(m)]


def file_lines(server: ManagedServer, data_dir: Path) -> list[str]:
    return (data_dir / "servers" / server.name / "console.log").read_text().splitlines()


def embeds_titled(fake: FakeDiscord, channel: FakeChannel, word: str) -> list[FakeMessage]:
    return [m for m in fake.messages(channel) if m.embeds and word in m.embeds[0].get("title", "")]


# -- (1) a flood, rate limits and random 429s ------------------------------------------------


async def test_a_flood_reaches_discord_exactly_once_in_order(world: World) -> None:
    fake = world.fake
    logs = fake.add_channel("logs")
    fake.ratelimits.limit_channel_messages(logs.id, limit=5, per=5.0, announce=False)
    async with world.bot() as bot:
        server = await add_server(bot, "alpha", ["--interval", "0.0001", "--ready-after", "0.1"])
        await bot.hub.service.set_channels(ADMIN, "alpha", logs=logs.id)
        fake.ratelimits.random_429(0.3, retry_after=0.2, seed=11)
        cpu_before, wall_before = time.process_time(), time.monotonic()
        await server.start()
        log = world.settings.data_dir / "servers" / "alpha" / "console.log"

        def written() -> bool:  # ~18 bytes a line: count only when it may be enough
            return log.stat().st_size > 1_700_000 and log.read_bytes().count(b"\n") >= 100_000

        await until(written, 25, "100,000 lines")
        written_in = time.monotonic() - wall_before
        await server.stop(kill=True)
        expected = file_lines(server, world.settings.data_dir)
        await until(lambda: len(posted_lines(fake, logs)) >= len(expected), 30, "every line")
        await until(lambda: bot.hub.idle, 10, "the outbox to settle")
        cpu = time.process_time() - cpu_before
        wall = time.monotonic() - wall_before
        fake.ratelimits.random_429(0)

    assert posted_lines(fake, logs) == expected  # each line once, in order
    creates = fake.requests_to("POST", f"/channels/{logs.id}/messages")
    assert fake.ratelimits.violations() == []
    assert any(r.chaos for r in creates), "no 429 was answered to the log channel"
    messages = fake.messages(logs)
    files = [m for m in messages if m.attachments]
    assert files and all("lines" in m.content and "UTC" in m.content for m in files)
    assert all(m.allowed_mentions == NO_MENTIONS for m in messages)
    print(
        f"\n{len(expected):,} lines written in {written_in:.1f} s, on Discord after {wall:.1f} s "
        f"in {len(messages)} messages ({len(files)} with a .log file), "
        f"{sum(r.chaos for r in creates)} random 429s; "
        f"CPU seconds used by the test process (bot + fake Discord): {cpu:.2f}"
    )


# -- (2) crash alerts -------------------------------------------------------------------------


async def test_a_crash_alerts_once_and_a_crash_loop_gives_up_once(world: World) -> None:
    fake = world.fake
    alerts = fake.add_channel("alerts")
    ops = fake.add_role("Ops")
    crash = ["--crash-after", "1.0", "--exit-code", "7", "--interval", "0.02"]
    async with world.bot() as bot:
        server = await add_server(bot, "alpha", crash, max_crashes=5, backoff_base=30.0)
        await bot.hub.service.set_channels(ADMIN, "alpha", alerts=alerts.id, alert_role=ops.id)
        await server.start()
        [alert] = await until(lambda: embeds_titled(fake, alerts, "crashed"), 10, "crash alert")
        await asyncio.sleep(0.5)
        assert len(fake.messages(alerts)) == 1
        text = alert.embed_text()
        assert "exit code 7" in text and "attempt 1 of 5" in text
        assert "FATAL: something went wrong" in text and "alpha line" in text
        assert alert.allowed_mentions == NO_MENTIONS and not alert.pinged_role_ids

        await server.stop()  # crashed -> stopped, the pending restart is cancelled
        await SettingsRepository(bot.services.db).set_many(
            server.id, {"max_crashes": 3, "backoff_base": 0.1, "backoff_cap": 0.2}
        )
        await server.start()
        await until(lambda: server.state is ServerState.FAILED, 15, "the crash loop to end")
        [gave_up] = await until(lambda: embeds_titled(fake, alerts, "gave up"), 5, "give-up")
        await asyncio.sleep(0.5)
        assert len(embeds_titled(fake, alerts, "gave up")) == 1
        assert len(embeds_titled(fake, alerts, "crashed")) == 1  # the loop's crashes were held
        assert gave_up.content == f"<@&{ops.id}>" and gave_up.pinged_role_ids == {ops.id}
        assert gave_up.allowed_mentions is not None
        assert gave_up.allowed_mentions["parse"] == []
        assert gave_up.allowed_mentions["roles"] == [ops.id]
        assert "exit code 7" in gave_up.embed_text()

        # Held alerts are counted: the next crash alert after the window says how many.
        bot.hub.alerts.config = replace(bot.hub.alerts.config, dedup_seconds=0.0)
        bot.services.bus.publish(
            ServerCrashed(
                server_id=server.id,
                server="alpha",
                exit_code=7,
                signal=None,
                uptime_s=1.0,
                last_lines=("x",),
                attempt=1,
                max_attempts=3,
                restart_in_s=2.0,
            )
        )
        latest = await until(
            lambda: embeds_titled(fake, alerts, "crashed")[1:], 5, "a counted alert"
        )
        assert "2 more alerts of this kind" in latest[0].embed_text()

        # Maintenance mutes; a data disk running out of space alerts.
        server.paused = True
        bot.services.bus.publish(ServerHung(server_id=server.id, server="alpha", reason="x"))
        await asyncio.sleep(0.5)
        assert embeds_titled(fake, alerts, "hung") == []
        bot.hub.alerts.config = replace(bot.hub.alerts.config, disk_min_free_bytes=1 << 60)
        assert bot.hub.alerts.check_disk()
        await until(lambda: embeds_titled(fake, alerts, "Disk"), 5, "disk alert")


# -- (3) status embeds --------------------------------------------------------------------------


async def test_the_status_embed_is_edited_in_place_across_restarts(world: World) -> None:
    fake = world.fake
    status = fake.add_channel("status")

    def only_message() -> FakeMessage | None:
        found = fake.messages(status)
        assert len(found) <= 1, "a second status message was posted"
        return found[0] if found else None

    def shows(word: str) -> Callable[[], bool]:
        return lambda: (m := only_message()) is not None and word in m.embed_text()

    # State changes edit at once; the interval (CPU/RAM) would only spend the channel's budget.
    config = replace(QUICK, status_interval=60.0)
    async with world.bot(config) as bot:
        server = await add_server(bot, "alpha", ["--interval", "0.05"], max_players=10)
        handle = await fake.invoke_slash("status post", {"server": "alpha", "channel": status})
        reply = await handle.followup(0, timeout=10)
        assert "is live in" in reply.embed_text() and reply.ephemeral
        await until(shows("stopped"), 5, "a stopped status")
        first = only_message()
        assert first is not None
        await server.start()
        await until(shows("running"), 5, "a running status")
        text = first.embed_text()
        assert "?/10" in text and "Up since" in text and ":40000`" in text
        await server.stop(kill=True)
        await until(shows("stopped"), 5, "stopped again")
        await until(lambda: bot.hub.idle, 5, "the edits to go out")
        edits = len(first.history)
        await bot.hub.status.refresh_all()
        await asyncio.sleep(0.2)
        assert len(first.history) == edits  # nothing changed: no edit

    async with world.bot(config) as bot:
        await until(lambda: len(first.history) > edits, 5, "an edit after the restart")
        assert only_message() is first  # re-found by its stored id, not posted again
        channel = bot.get_partial_messageable(status.id)
        await channel.get_partial_message(first.id).delete()  # someone deletes it
        await bot.services.supervisor.by_name("alpha").start()
        second = await until(only_message, 5, "a new status message")
        assert second.id != first.id
        await until(shows("running"), 5, "the new message to show running")
        stored = await bot.hub.service.repository.status_messages()
        assert [(s.channel_id, s.message_id) for s in stored] == [(status.id, second.id)]
        await bot.services.supervisor.by_name("alpha").stop(kill=True)


# -- (4) hostile text ------------------------------------------------------------------------


async def test_game_text_cannot_ping_or_break_formatting(world: World) -> None:
    fake = world.fake
    logs, chat = fake.add_channel("logs"), fake.add_channel("chat")
    hostile = [
        "@everyone join now",
        "<@123456789012345678> and <@&123456789012345678> @here",
        "**bold** __under__ ~~strike~~ ||spoiler|| [link](https://x.invalid)",
        "```",
        "``````",
        "end ``` here `",
        "\x1b[31mred\x1b[0m and a bell\x07",
    ]
    async with world.bot() as bot:
        server = await add_server(bot, "alpha", [])
        await bot.hub.service.set_channels(ADMIN, "alpha", logs=logs.id, chat=chat.id)
        folder = world.settings.data_dir / "servers" / "alpha"
        folder.mkdir(parents=True)
        (folder / "console.log").write_text("\n".join(hostile) + "\n")
        bus = bot.services.bus
        for author, text in [
            ("@everyone", "<@123456789012345678> **hi** ```x```"),
            ("`evil`", "@here [link](https://x.invalid) ||s||"),
        ]:
            bus.publish(
                Chat(
                    server_id=server.id, server="alpha", channel="Global", author=author, text=text
                )
            )
        await until(lambda: len(posted_lines(fake, logs)) >= len(hostile), 10, "log lines")
        await until(lambda: fake.messages(chat), 10, "chat")
        await until(lambda: bot.hub.idle, 5, "the outboxes to settle")

    assert posted_lines(fake, logs) == [*hostile[:6], "red and a bell"]
    [chat_message] = fake.messages(chat)
    content = chat_message.content
    assert "@everyone" not in content and "@here" not in content
    assert "<@123456789012345678>" not in content and "```" not in content
    assert "**@\u200beveryone**: " in content and "\\*\\*hi\\*\\*" in content
    assert "**\\`evil\\`**: " in content and "\\[link](https://x.invalid)" in content
    for message in fake.messages(logs) + fake.messages(chat):
        assert message.allowed_mentions == NO_MENTIONS
        assert not (message.pinged_everyone or message.pinged_user_ids or message.pinged_role_ids)


# -- (5) a restart while the channel is rate limited -------------------------------------------


async def test_lines_pending_at_a_restart_are_posted_after_it_once(world: World) -> None:
    fake = world.fake
    logs = fake.add_channel("logs")
    fake.ratelimits.limit_channel_messages(logs.id, limit=5, per=5.0, announce=False)
    fake.ratelimits.send_via = False  # discord.py raises on 429: the outbox must wait it out
    async with world.bot() as bot:
        server = await add_server(bot, "alpha", ["--interval", "0.002"])
        await bot.hub.service.set_channels(ADMIN, "alpha", logs=logs.id)
        await server.start()
        outbox = bot.hub.outbox(logs.id)
        await until(
            lambda: (
                len(fake.messages(logs)) >= 5
                and outbox.pacer.delay() > 1.0
                and outbox.pending_lines > 0
            ),
            15,
            "a rate-limited channel with lines waiting",
        )
        pending = outbox.pending_lines
        before = len(posted_lines(fake, logs))
    assert pending > 0 and len(posted_lines(fake, logs)) == before

    async with world.bot() as bot:
        server = bot.services.supervisor.by_name("alpha")
        assert server.state is ServerState.RUNNING, server.state_reason  # adopted, not stopped
        await asyncio.sleep(0.5)
        await server.stop(kill=True)
        expected = file_lines(server, world.settings.data_dir)
        await until(lambda: len(posted_lines(fake, logs)) >= len(expected), 30, "every line")
        await until(lambda: bot.hub.idle, 10, "the outbox to settle")

    assert posted_lines(fake, logs) == expected
    assert fake.ratelimits.limited_hits(logs.id), "the new bot never met the old window"
    assert fake.ratelimits.violations() == []


# -- bindings: validated, audited, filtered, and forgotten with their cursors ------------------


async def test_bindings_are_validated_filtered_and_forgotten(world: World) -> None:
    fake = world.fake
    logs = fake.add_channel("logs")
    async with world.bot() as bot:
        server = await add_server(bot, "alpha", [])
        service = bot.hub.service
        with pytest.raises(InvalidInput, match="set a logs channel"):
            await service.set_channels(ADMIN, "alpha", log_filter="warnings")
        with pytest.raises(InvalidInput, match="all` or `warnings"):
            await service.set_channels(ADMIN, "alpha", logs=logs.id, log_filter="some")
        with pytest.raises(NotFound):
            await service.set_channels(ADMIN, "nope", logs=logs.id)
        bound = await service.set_channels(ADMIN, "alpha", logs=logs.id, log_filter="warnings")
        assert [(b.kind.value, b.channel_id, b.log_filter.value) for b in bound] == [
            ("logs", logs.id, "warnings")
        ]
        folder = world.settings.data_dir / "servers" / "alpha"
        folder.mkdir(parents=True)
        text = "plain start\nERROR: boom\nsomething else\nWARNING: hot\nthe end\n"
        (folder / "console.log").write_text(text)
        await until(lambda: len(posted_lines(fake, logs)) >= 2, 10, "warnings and errors")
        offsets = LogOffsetRepository(bot.services.db)
        consumer = f"channel:{logs.id}"

        async def cursor() -> int | None:
            rows = [o for o in await offsets.load(server.id) if o.consumer == consumer]
            return rows[0].offset if rows else None

        async with asyncio.timeout(5):  # the filtered-out last line still moves the cursor
            while await cursor() != len(text):
                await asyncio.sleep(0.05)
        assert posted_lines(fake, logs) == ["ERROR: boom", "WARNING: hot"]

        await service.set_channels(ADMIN, "alpha", unbind=["logs"])
        assert await service.list(server.id) == [] and await cursor() is None
        actions = [entry.action for entry in await bot.services.audit.recent(10, server.id)]
        assert actions.count("server.channels") == 2


async def test_a_full_disk_alerts_once_for_all_servers_and_once_when_it_ends(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC on the database is an alert, never a wedge: the servers keep running, every
    server's keeper reports it, and the operator hears it once."""
    fake = world.fake
    alerts = fake.add_channel("alerts")

    def full(*_: Any, **__: Any) -> Any:
        raise sqlite3.OperationalError("database or disk is full")

    async with world.bot() as bot:
        servers = [await add_server(bot, name, []) for name in ("alpha", "bravo")]
        for server in servers:
            await bot.hub.service.set_channels(ADMIN, server.name, alerts=alerts.id)
        monkeypatch.setattr(ServerRepository, "set_process", full)
        for server in servers:
            assert await server.start() is ServerState.RUNNING
        [alert] = await until(lambda: embeds_titled(fake, alerts, "Disk full"), 10, "alert")
        assert "keep running" in alert.embed_text()
        monkeypatch.undo()
        await until(lambda: embeds_titled(fake, alerts, "written again"), 15, "recovery")
        await asyncio.sleep(0.5)
        assert len(embeds_titled(fake, alerts, "Disk full")) == 1
        for server in servers:
            record = await ServerRepository(bot.services.db).get(server.id)
            assert record is not None and record.process is not None
            assert server.handle is not None and record.process.pid == server.handle.pid
            assert await server.stop() is ServerState.STOPPED
