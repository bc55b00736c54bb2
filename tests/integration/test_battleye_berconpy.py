"""The fake server against berconpy 3.1.4, a third-party client: the fake is not our mirror."""

from __future__ import annotations

import asyncio

import pytest
from berconpy import LoginRefused, RCONClient

from tests.fakes.battleye_server import DEFAULT_PLAYERS, FakeBattlEyeServer

PASSWORD = "berconpy-pw"

pytestmark = pytest.mark.timeout(30)


async def test_berconpy_logs_in_runs_commands_and_gets_messages() -> None:
    big = "".join(f"line {n}: Максим\n" for n in range(200))  # ~4 KB, 8 parts of 512 bytes

    def handler(command: str) -> str:
        return big if command == "big" else DEFAULT_PLAYERS if command == "players" else ""

    async with FakeBattlEyeServer(PASSWORD, handler=handler, part_size=512) as server:
        client = RCONClient()
        messages: asyncio.Queue[str] = asyncio.Queue()
        client.add_listener("on_message", messages.put_nowait)
        async with client.connect("127.0.0.1", server.port, PASSWORD):
            first = await asyncio.wait_for(messages.get(), 2)
            assert first.startswith("RCon admin #0 (127.0.0.1:") and first.endswith("logged in")
            assert await client.send_command("players") == DEFAULT_PLAYERS
            assert len(big.encode()) > 7 * 512
            assert await client.send_command("big") == big
            for n in range(300):  # berconpy's sequence numbers wrap past 255 too
                assert await client.send_command(f"kick {n}") == ""
            server.broadcast("Player #3 Максим (Lobby) disconnected")
            got = await asyncio.wait_for(messages.get(), 2)
            assert got == "Player #3 Максим (Lobby) disconnected"
            await asyncio.sleep(0.1)
            assert server.proto.unacked == 0  # berconpy's acks were understood
        assert server.commands[:2] == ["players", "big"]
        assert len(server.commands) == 302


async def test_berconpy_is_refused_with_a_wrong_password() -> None:
    async with FakeBattlEyeServer(PASSWORD) as server:
        client = RCONClient()
        with pytest.raises(LoginRefused):
            async with client.connect("127.0.0.1", server.port, "wrong"):
                pass
        assert server.admins == []
