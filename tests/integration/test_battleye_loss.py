"""BattlEyeClient under a lossy network: every command answered before its caller's deadline.

The issue's run: 20% of what the server sends lost, 10% of it duplicated, 10% of what it
receives lost, `players` replies listing 40 players (three parts). The client must keep
resending each command until every part is in, for as long as its caller is willing to wait,
instead of giving up after its own few retries.
"""

from __future__ import annotations

import asyncio

import pytest

from core.rcon.battleye_client import BattlEyeClient
from core.rcon.errors import RconTimeout
from tests.fakes.battleye_server import FakeBattlEyeServer, players_handler, players_reply

PASSWORD = "s3cret-pw"
HOST = "127.0.0.1"
CALLER_DEADLINE = 20.0  # what a service gives one command (asyncio.timeout around it)

pytestmark = pytest.mark.timeout(90)


def expected(command: str) -> str:
    if command.startswith("players"):
        return players_reply(40)
    return "Unknown command"  # `ping <n>`: one-part replies between the multipart ones


async def run_commands(rcon: BattlEyeClient, count: int, in_flight: int) -> list[str]:
    """Send `count` commands, `in_flight` at a time; return a line per failure."""
    limit = asyncio.Semaphore(in_flight)
    failures: list[str] = []

    async def one(n: int) -> None:
        command = "players" if n % 3 else f"ping {n}"
        async with limit:
            try:
                async with asyncio.timeout(CALLER_DEADLINE):
                    reply = await rcon.command(command)
            except Exception as exc:
                failures.append(f"{command}: {type(exc).__name__}: {exc}")
                return
            if reply != expected(command):
                failures.append(f"{command}: wrong reply of {len(reply)} chars")

    await asyncio.gather(*(one(n) for n in range(count)))
    return failures


async def test_300_commands_all_answered_under_the_issues_loss() -> None:
    server = FakeBattlEyeServer(PASSWORD, handler=players_handler(40), seed=9)
    await server.start()
    try:
        # few retries and short intervals, as Arma3Link's 1 s / 2 retries scaled down:
        # before the fix the client gave up after timeout * (retries + 1)
        async with BattlEyeClient(HOST, server.port, PASSWORD, timeout=0.05, retries=2) as rcon:
            server.outbound_loss, server.duplicate, server.inbound_loss = 0.2, 0.1, 0.1
            failures = await run_commands(rcon, 300, in_flight=10)
            assert failures == [], f"{len(failures)} of 300 failed: {failures[:5]}"
            assert rcon.connected
            assert rcon.part_conflicts == 0  # the fake answers a resend with the same bytes
    finally:
        await server.stop()


async def test_sequential_commands_under_loss_are_all_answered() -> None:
    """One at a time, so no other traffic hides a silent server: the case where a run of
    lost datagrams looked like a dead session and failed the command early."""
    server = FakeBattlEyeServer(PASSWORD, handler=players_handler(40), seed=4)
    await server.start()
    try:
        async with BattlEyeClient(HOST, server.port, PASSWORD, timeout=0.03, retries=2) as rcon:
            server.outbound_loss, server.duplicate, server.inbound_loss = 0.3, 0.1, 0.2
            failures = await run_commands(rcon, 120, in_flight=1)
            assert failures == [], f"{len(failures)} of 120 failed: {failures[:5]}"
    finally:
        await server.stop()


async def test_a_command_may_carry_its_own_deadline() -> None:
    server = FakeBattlEyeServer(PASSWORD, handler=players_handler(40))
    await server.start()
    try:
        async with BattlEyeClient(HOST, server.port, PASSWORD, timeout=0.05, retries=1) as rcon:
            server.inbound_loss = 1.0  # the server hears nothing more, but is not dead yet
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(RconTimeout):
                await rcon.command("players", timeout=0.5)
            assert 0.4 <= loop.time() - started < 10
            server.inbound_loss = 0.0
            assert await asyncio.wait_for(rcon.command("players"), 10) == players_reply(40)
    finally:
        await server.stop()
