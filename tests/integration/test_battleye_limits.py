"""BattlEyeClient against hostile or broken servers over loopback UDP: memory stays bounded.

The fake answers one command with an endless multipart reply (fresh 60 KB bodies, indices
cycling through 255 parts). The client must fail that command with a typed error, hold no
more than its caps while doing so, and go on answering other commands on the same session.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from core.rcon.battleye_client import BattlEyeClient
from core.rcon.errors import RconReplyTooLarge
from tests.fakes.battleye_server import DEFAULT_PLAYERS, FakeBattlEyeServer

PASSWORD = "s3cret-pw"
HOST = "127.0.0.1"
MiB = 1 << 20

pytestmark = pytest.mark.timeout(60)


async def flood_server(**knobs: object) -> FakeBattlEyeServer:
    server = FakeBattlEyeServer(PASSWORD, flood_on="flood", **knobs)  # type: ignore[arg-type]
    await server.start()
    return server


async def traced(coro: object) -> tuple[BaseException | object, int]:
    """Run `coro`, returning its result or exception and the traced peak in bytes."""
    assert asyncio.iscoroutine(coro)
    tracemalloc.start()
    try:
        try:
            result: BaseException | object = await coro
        except Exception as exc:
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
async def server() -> AsyncIterator[FakeBattlEyeServer]:
    fake = await flood_server()
    try:
        yield fake
    finally:
        await fake.stop()


async def test_an_endless_multipart_reply_fails_that_command_with_bounded_memory(
    server: FakeBattlEyeServer,
) -> None:
    async with BattlEyeClient(HOST, server.port, PASSWORD, timeout=0.5) as rcon:
        outcome, peak = await traced(asyncio.wait_for(rcon.command("flood"), 20))
        assert isinstance(outcome, RconReplyTooLarge), type(outcome)
        assert "flood" in str(outcome)
        assert peak < 12 * MiB  # the default cap is 4 MiB for one reply
        assert rcon.replies_too_large == 1
        assert rcon.connected
        # the flood goes on for the dropped sequence number; other commands still work
        assert await asyncio.wait_for(rcon.command("players"), 10) == DEFAULT_PLAYERS
        assert await asyncio.wait_for(rcon.command("version"), 10) == "2.18.152302"


async def test_a_smaller_cap_is_honoured_and_the_session_survives(
    server: FakeBattlEyeServer,
) -> None:
    async with BattlEyeClient(
        HOST, server.port, PASSWORD, timeout=0.5, max_reply_bytes=MiB
    ) as rcon:
        outcome, peak = await traced(asyncio.wait_for(rcon.command("flood"), 20))
        assert isinstance(outcome, RconReplyTooLarge), type(outcome)
        assert peak < 4 * MiB
        assert await asyncio.wait_for(rcon.command("players"), 10) == DEFAULT_PLAYERS


async def test_a_message_flood_is_bounded_in_bytes_not_only_in_count(
    server: FakeBattlEyeServer,
) -> None:
    async with BattlEyeClient(HOST, server.port, PASSWORD, timeout=0.5, message_bytes=MiB) as rcon:
        line = "x" * 30_000
        for n in range(100):  # 3 MB of console lines that nobody reads
            server.broadcast(f"{n} {line}")
            await asyncio.sleep(0)
        assert await asyncio.wait_for(rcon.command("players"), 10) == DEFAULT_PLAYERS
        for _ in range(200):
            if rcon.messages_dropped:
                break
            await asyncio.sleep(0.01)
        assert rcon.buffered_message_bytes <= MiB
        assert rcon.messages_dropped > 0
        stream = rcon.messages()
        first = await asyncio.wait_for(anext(stream), 2)
        assert first.text.endswith(line)  # the newest are kept, the oldest dropped
