"""SourceRconClient against hostile servers over loopback TCP: memory stays bounded.

The fake answers one command with an endless reply (packets with the command's id, never
an answer to the terminator), or with a header declaring a 1 GiB packet followed by endless
bytes. The client must fail that command, hold no more than its cap, hang up (the stream
cannot be resynchronised) and answer the next command over a fresh connection.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from core.backoff import Backoff
from core.rcon.errors import RconConnectionLost, RconReplyTooLarge
from core.rcon.source_client import SourceRconClient
from tests.fakes.source_server import FakeSourceServer, Flavour, long_text

pytestmark = pytest.mark.timeout(60)

PASSWORD = "hunter2-secret"
MiB = 1 << 20


@pytest.fixture(params=["minecraft", "source"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[FakeSourceServer]:
    flavour: Flavour = request.param
    async with FakeSourceServer(PASSWORD, flavour=flavour) as fake:
        fake.flood_on = "flood"
        fake.oversize_on = "huge"
        fake.flood_bytes = 64 * MiB
        yield fake


def client_for(server: FakeSourceServer, **options: object) -> SourceRconClient:
    return SourceRconClient(
        "127.0.0.1",
        server.port,
        PASSWORD,
        timeout=10.0,
        backoff=Backoff(base=0.05, cap=0.2, jitter=0.0),
        pipeline=server.flavour == "source",
        **options,  # type: ignore[arg-type]
    )


async def traced(coro: object) -> tuple[BaseException | object, int]:
    """Run `coro`; return its result or exception and the traced memory peak in bytes."""
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


async def test_an_endless_reply_fails_that_command_and_the_next_one_works(
    server: FakeSourceServer,
) -> None:
    async with client_for(server) as rcon:
        outcome, peak = await traced(rcon.command("flood", timeout=20))
        assert isinstance(outcome, RconReplyTooLarge), type(outcome)
        assert "flood" in str(outcome)
        assert peak < 16 * MiB  # the default cap is 4 MiB for one reply
        assert server.flooded < 32 * MiB  # the client hung up instead of reading on
        assert rcon.replies_too_large == 1
        assert await rcon.command("echo still here", timeout=10) == "still here"
        assert server.connections == 2


async def test_a_smaller_cap_is_honoured(server: FakeSourceServer) -> None:
    async with client_for(server, max_reply_bytes=MiB) as rcon:
        outcome, peak = await traced(rcon.command("flood", timeout=20))
        assert isinstance(outcome, RconReplyTooLarge), type(outcome)
        assert peak < 6 * MiB
        assert await rcon.command("long 20000", timeout=10) == long_text(20000)


async def test_a_declared_packet_over_the_protocol_max_drops_the_connection(
    server: FakeSourceServer,
) -> None:
    async with client_for(server) as rcon:
        outcome, peak = await traced(rcon.command("huge", timeout=20))
        assert isinstance(outcome, RconConnectionLost), type(outcome)
        assert "malformed" in str(outcome)
        assert peak < 8 * MiB
        assert await rcon.command("echo again", timeout=10) == "again"
