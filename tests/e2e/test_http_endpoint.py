"""The health/metrics endpoint end to end: the real LanguardBot connected to the fake Discord,
a real fake game server, real SQLite, queried with a real aiohttp client over loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.client import LanguardBot
from core.config import Settings
from core.runtime import DATABASE_FILE
from data.repositories.servers import ServerRepository
from data.repositories.settings import SettingsRepository
from tests.e2e.fake_discord import FakeDiscord, running_client
from tests.fakes.fake_profile import FakeProfile
from tests.integration.supervision import FAST, kill_groups


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_bot(fake: FakeDiscord, data_dir: Path, port: int) -> LanguardBot:
    settings = Settings(
        discord_token=fake.token,
        data_dir=data_dir,
        guild_id=fake.guild.id,
        http_addr=f"127.0.0.1:{port}",
    )
    return LanguardBot(
        settings, cogs=("cogs.status",), profiles=[FakeProfile()], guild_ready_timeout=0.1
    )


@contextlib.asynccontextmanager
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        yield session


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    async with session.get(url) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def until_async(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)


def sample(text: str, prefix: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(prefix + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_healthz_and_metrics_while_connected(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    bot = make_bot(fake_discord, tmp_path / "data", port)
    pids: set[int] = set()
    try:
        async with running_client(fake_discord, bot, timeout=15.0), http() as session:

            async def healthy() -> dict[str, Any] | None:
                status, kind, body = await get(session, base + "/healthz")
                assert kind.startswith("application/json")
                return json.loads(body) if status == 200 else None

            report = await until_async(healthy, 20, "/healthz to answer 200")
            assert report["gateway"] is True
            assert report["database"] is True
            assert report["supervisor"] is True
            assert report["servers"] == 0

            status, kind, text = await get(session, base + "/metrics")
            assert status == 200
            assert kind == "text/plain; version=0.0.4; charset=utf-8"
            assert "# TYPE languard_servers gauge" in text
            assert sample(text, 'languard_servers{state="running"}') == 0
            assert sample(text, "languard_gateway_connected") == 1
            assert "# TYPE languard_gateway_latency_seconds gauge" in text

            db = bot.services.db
            record = await ServerRepository(db).create("web1", "fake")
            await SettingsRepository(db).set_many(record.id, {**FAST, "args": []})
            server = await bot.services.supervisor.add(record)
            await server.start()
            if server.handle is not None:
                pids.add(server.handle.pid)

            async def running() -> str | None:
                status, _, text = await get(session, base + "/metrics")
                assert status == 200
                line = 'languard_server_state{server="web1",state="running"}'
                return text if sample(text, line) == 1 else None

            text = await until_async(running, 30, "/metrics to show web1 running")
            assert sample(text, 'languard_servers{state="running"}') == 1
            assert sample(text, 'languard_server_crashes_total{server="web1"}') == 0

            async def counted_lines() -> bool:
                _, _, text = await get(session, base + "/metrics")
                return (sample(text, 'languard_log_lines_total{server="web1"}') or 0) > 0

            await until_async(counted_lines, 30, "log lines to be counted")

            status, _, _ = await get(session, base + "/nothing-here")
            assert status == 404
            async with session.post(base + "/metrics", data=b"x" * 10) as response:
                assert response.status == 405
            async with session.delete(base + "/healthz") as response:
                assert response.status == 405
            await server.stop()
    finally:
        kill_groups(pids)
    # the endpoint went away with the bot
    async with http() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await get(session, base + "/healthz")


async def test_healthz_is_503_while_the_database_is_locked(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    bot = make_bot(fake_discord, tmp_path / "data", port)
    async with running_client(fake_discord, bot, timeout=15.0), http() as session:

        async def status_is(code: int) -> dict[str, Any] | None:
            status, _, body = await get(session, base + "/healthz")
            return json.loads(body) if status == code else None

        await until_async(lambda: status_is(200), 20, "/healthz to answer 200")
        holder = sqlite3.connect(tmp_path / "data" / DATABASE_FILE, isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")  # another process holding the write lock
            report = await until_async(lambda: status_is(503), 30, "/healthz to answer 503")
            assert report["database"] is False
            assert report["gateway"] is True
            assert report["supervisor"] is True
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        await until_async(lambda: status_is(200), 30, "/healthz to recover")


async def test_a_taken_port_costs_one_log_line_not_the_bot(
    fake_discord: FakeDiscord, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = int(taken.getsockname()[1])
        bot = make_bot(fake_discord, tmp_path / "data", port)
        with caplog.at_level(logging.ERROR, logger="bot.http_endpoint"):
            async with running_client(fake_discord, bot, timeout=15.0, wait_ready=True):
                assert bot.is_ready()
                assert bot.http_endpoint.address is None
                assert bot.runtime is not None
        lines = [r for r in caplog.records if r.name == "bot.http_endpoint"]
        assert len(lines) == 1
        assert "health endpoint not started" in lines[0].getMessage()
