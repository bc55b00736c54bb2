"""SourceRconClient against the fake server over loopback TCP, in both server flavours."""

from __future__ import annotations

import asyncio
import signal
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.backoff import Backoff
from core.rcon.errors import (
    RconClosed,
    RconConnectionLost,
    RconLoginError,
    RconTimeout,
)
from core.rcon.source_client import SourceRconClient, StatusCallback
from core.rcon.source_packets import LocalProtocolError
from tests.fakes.source_server import FakeSourceServer, Flavour, long_text

pytestmark = pytest.mark.timeout(20)

PASSWORD = "hunter2-secret"
ROOT = Path(__file__).resolve().parents[2]


class StatusLog:
    """Records on_status calls and lets a test wait for one."""

    def __init__(self) -> None:
        self.calls: list[tuple[bool, str]] = []
        self._changed = asyncio.Event()

    def __call__(self, connected: bool, reason: str) -> None:
        self.calls.append((connected, reason))
        self._changed.set()

    async def wait_for(self, connected: bool, count: int = 1) -> None:
        async with asyncio.timeout(5):
            while sum(1 for c, _ in self.calls if c is connected) < count:
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture(params=["minecraft", "source"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[FakeSourceServer]:
    flavour: Flavour = request.param
    async with FakeSourceServer(PASSWORD, flavour=flavour) as fake:
        yield fake


def client_for(
    server: FakeSourceServer,
    *,
    on_status: StatusCallback | None = None,
    reconnect: bool = True,
    timeout: float = 3.0,
) -> SourceRconClient:
    """Pipelined against the Source flavour (it reads a real stream), serial for Minecraft."""
    return SourceRconClient(
        "127.0.0.1",
        server.port,
        PASSWORD,
        timeout=timeout,
        reconnect=reconnect,
        on_status=on_status,
        backoff=Backoff(base=0.05, cap=0.2, jitter=0.0),
        pipeline=server.flavour == "source",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_login_and_commands(server: FakeSourceServer) -> None:
    status = StatusLog()
    async with client_for(server, on_status=status) as rcon:
        assert rcon.connected
        assert await rcon.command("list") == (
            "There are 2 of a max of 20 players online: Alice, Bob"
        )
        assert await rcon.command("say hello there") == ""
        assert await rcon.command("echo grüße €") == "grüße €"
        assert "Unknown" in await rcon.command("nonsense")
    assert server.said == ["hello there"]
    assert server.logins == 1
    assert status.calls == [(True, "connected"), (False, "closed")]
    assert not rcon.connected


async def test_wrong_password_is_a_login_error(server: FakeSourceServer) -> None:
    rcon = SourceRconClient("127.0.0.1", server.port, "not-the-password", timeout=3.0)
    with pytest.raises(RconLoginError) as info:
        async with rcon:
            pytest.fail("login should have been refused")
    assert server.refused_logins == 1
    for text in (str(info.value), repr(info.value), repr(rcon)):
        assert "not-the-password" not in text
    with pytest.raises(RconClosed):
        await rcon.command("list")


async def test_password_never_in_repr_or_errors(server: FakeSourceServer) -> None:
    rcon = client_for(server)
    assert PASSWORD not in repr(rcon)
    async with rcon:
        assert PASSWORD not in repr(rcon)
    with pytest.raises(RconClosed) as info:
        await rcon.command("list")
    assert PASSWORD not in str(info.value)


async def test_nothing_listening_fails_fast() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises((RconConnectionLost, RconTimeout)) as info:
        async with SourceRconClient("127.0.0.1", port, PASSWORD, timeout=2.0):
            pass
    assert time.monotonic() - started < 2.5
    assert PASSWORD not in str(info.value)


async def test_reply_over_three_packets_is_reassembled(server: FakeSourceServer) -> None:
    # Minecraft cuts every 4096 characters, Source every 4096 bytes (1.5 bytes a character).
    chars = 9000 if server.flavour == "minecraft" else 7000
    expected = long_text(chars)
    async with client_for(server) as rcon:
        assert await rcon.command(f"long {chars}") == expected
    assert server.reply_packets == [3]
    if server.flavour == "source":
        data = expected.encode()
        assert data[4096] & 0xC0 == 0x80  # the first cut splits a 3-byte character


async def test_twenty_commands_in_flight(server: FakeSourceServer) -> None:
    async with client_for(server) as rcon:
        commands = [f"echo reply {n}" for n in range(20)] + ["long 5000"]
        replies = await asyncio.gather(*(rcon.command(c) for c in commands))
    assert replies[:20] == [f"reply {n}" for n in range(20)]
    assert replies[20] == long_text(5000)
    assert sorted(server.commands) == sorted(commands)


async def test_pipelining_against_minecraft_breaks_it_so_serial_is_the_default() -> None:
    """The fake is faithful: two packets in one read make Minecraft hang up."""
    async with FakeSourceServer(PASSWORD, flavour="minecraft") as fake:
        reader, writer = await asyncio.open_connection("127.0.0.1", fake.port)
        auth = struct.pack("<iii", 10 + len(PASSWORD), 1, 3) + PASSWORD.encode() + b"\0\0"
        writer.write(auth + struct.pack("<iii", 10, 2, 0) + b"\0\0")
        async with asyncio.timeout(5):
            try:
                answer = await reader.read()
            except ConnectionResetError:
                answer = b""
        assert answer == b""  # hung up without answering the login
        writer.close()
        await writer.wait_closed()
        assert fake.logins == 0
        assert SourceRconClient("127.0.0.1", fake.port, PASSWORD).pipeline is False


async def test_dropped_connection_reconnects_with_status(server: FakeSourceServer) -> None:
    status = StatusLog()
    async with client_for(server, on_status=status) as rcon:
        assert await rcon.command("echo before") == "before"
        await server.drop_connections()
        await status.wait_for(False)
        assert not rcon.connected
        await status.wait_for(True, count=2)
        assert rcon.connected
        assert await rcon.command("echo after") == "after"
    assert [c for c, _ in status.calls] == [True, False, True, False]
    assert status.calls[2][1] == "reconnected"
    assert server.logins == 2


async def test_server_restart_on_the_same_port(server: FakeSourceServer) -> None:
    status = StatusLog()
    async with client_for(server, on_status=status) as rcon:
        assert await rcon.command("list")
        port = server.port
        await server.stop()
        await status.wait_for(False)
        with pytest.raises(RconTimeout, match="not connected"):
            await rcon.command("echo while down", timeout=0.4)
        await server.start()
        assert server.port == port
        assert await rcon.command("echo back", timeout=3.0) == "back"
    assert "echo while down" not in server.commands


async def test_command_in_flight_when_the_server_drops_it(server: FakeSourceServer) -> None:
    server.drop_on = "stop"
    async with client_for(server) as rcon:
        with pytest.raises(RconConnectionLost):
            await rcon.command("stop")
        server.drop_on = None
        assert await rcon.command("echo again") == "again"


async def test_malformed_data_drops_the_connection_and_reconnects(
    server: FakeSourceServer,
) -> None:
    server.garbage_on = "garble"
    status = StatusLog()
    async with client_for(server, on_status=status) as rcon:
        with pytest.raises(RconConnectionLost, match="malformed"):
            await rcon.command("garble")
        await status.wait_for(True, count=2)
        assert await rcon.command("echo clean") == "clean"


async def test_command_that_timed_out_in_the_queue_is_never_sent() -> None:
    async with FakeSourceServer(PASSWORD, flavour="minecraft") as fake:
        async with client_for(fake) as rcon:  # serial: one command on the wire
            fake.delay = 0.6
            slow = asyncio.create_task(rcon.command("echo slow"))
            async with asyncio.timeout(5):
                while not fake.commands:  # "echo slow" is on the wire
                    await asyncio.sleep(0.01)
            with pytest.raises(RconTimeout, match="no reply to 'say'"):
                await rcon.command("say queued", timeout=0.2)
            assert await slow == "slow"
            fake.delay = 0.0
            assert await rcon.command("echo next") == "next"
        assert fake.commands == ["echo slow", "echo next"]
        assert fake.said == []


async def test_silent_server_times_out_the_login() -> None:
    async with FakeSourceServer(PASSWORD, flavour="source") as fake:
        fake.answer_logins = False
        started = time.monotonic()
        with pytest.raises(RconTimeout, match="no login answer"):
            async with SourceRconClient("127.0.0.1", fake.port, PASSWORD, timeout=0.3):
                pass
        rcon = SourceRconClient("127.0.0.1", fake.port, PASSWORD, timeout=0.3)
        with pytest.raises(RconTimeout, match="no login answer"):
            await rcon.command("list", timeout=2.0)  # connects on demand
        await rcon.close()
        assert time.monotonic() - started < 1.5
        with pytest.raises(RconClosed):
            await rcon.connect()


async def test_close_while_connecting_or_reconnecting() -> None:
    async with FakeSourceServer(PASSWORD, flavour="minecraft") as fake:
        fake.answer_logins = False
        rcon = SourceRconClient("127.0.0.1", fake.port, PASSWORD, timeout=5.0)
        connecting = asyncio.create_task(rcon.command("list"))
        async with asyncio.timeout(5):
            while not fake.connections:
                await asyncio.sleep(0.01)
        await rcon.close()
        with pytest.raises(RconClosed):
            await asyncio.wait_for(connecting, 5)

        fake.answer_logins = True
        rcon = client_for(fake, timeout=5.0)
        await rcon.connect()
        await fake.stop()
        async with asyncio.timeout(5):
            while rcon.connected:
                await asyncio.sleep(0.01)
        waiting = asyncio.create_task(rcon.command("list"))
        await asyncio.sleep(0.1)  # waiting for the background reconnect
        await rcon.close()
        with pytest.raises(RconClosed):
            await asyncio.wait_for(waiting, 5)


async def test_commands_connect_on_demand(server: FakeSourceServer) -> None:
    rcon = client_for(server)
    try:
        assert not rcon.connected
        replies = await asyncio.gather(rcon.command("echo a"), rcon.command("echo b"))
        assert replies == ["a", "b"]
        assert server.connections == 1
    finally:
        await rcon.close()


async def test_password_changed_while_disconnected(server: FakeSourceServer) -> None:
    status = StatusLog()
    async with client_for(server, on_status=status) as rcon:
        server.password = "rotated"
        await server.drop_connections()
        await status.wait_for(False)
        async with asyncio.timeout(5):  # the background loop gives up on a refused password
            while rcon._reconnector is None or not rcon._reconnector.done():
                await asyncio.sleep(0.01)
        with pytest.raises(RconLoginError):
            await rcon.command("list")  # one fresh attempt, reported to the caller
        server.password = PASSWORD
        assert await rcon.command("echo fixed") == "fixed"
    assert [c for c, _ in status.calls] == [True, False, True, False]


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SourceRconClient("127.0.0.1", 1, PASSWORD, timeout=0)


async def test_reconnect_off_reports_the_loss(server: FakeSourceServer) -> None:
    async with client_for(server, reconnect=False) as rcon:
        await server.drop_connections()
        async with asyncio.timeout(5):
            while rcon.connected:
                await asyncio.sleep(0.01)
        with pytest.raises(RconConnectionLost, match="reconnect is off"):
            await rcon.command("list")


async def test_command_timeout_and_the_late_reply_is_not_misdelivered(
    server: FakeSourceServer,
) -> None:
    async with client_for(server) as rcon:
        server.delay = 1.0
        started = time.monotonic()
        with pytest.raises(RconTimeout, match="no reply to 'echo'"):
            await rcon.command("echo slow", timeout=0.2)
        assert time.monotonic() - started < 0.9
        server.delay = 0.0
        assert await rcon.command("echo fast") == "fast"  # not "slow"
        assert rcon.connected


async def test_oversized_command_is_refused_locally(server: FakeSourceServer) -> None:
    async with client_for(server) as rcon:
        with pytest.raises(LocalProtocolError, match="at most 1446"):
            await rcon.command("say " + "x" * 1443)
        assert await rcon.command("echo " + "y" * 1441) == "y" * 1441
    assert len(server.commands) == 1


async def test_close_ends_messages_and_fails_waiters(server: FakeSourceServer) -> None:
    server.delay = 5.0
    rcon = client_for(server, timeout=10.0)
    await rcon.connect()

    async def read_messages() -> list[str]:
        return [message async for message in rcon.messages()]

    reader = asyncio.create_task(read_messages())
    pending = asyncio.create_task(rcon.command("echo never"))
    async with asyncio.timeout(5):
        while not server.commands:
            await asyncio.sleep(0.01)
    await rcon.close()
    async with asyncio.timeout(5):
        assert await reader == []
        with pytest.raises(RconClosed):
            await pending
    await rcon.close()  # idempotent


async def test_status_callback_errors_are_contained(server: FakeSourceServer) -> None:
    def broken(connected: bool, reason: str) -> None:
        raise RuntimeError("callback bug")

    async with client_for(server, on_status=broken) as rcon:
        assert await rcon.command("echo ok") == "ok"


async def test_fake_runs_as_a_process() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.source_server",
        "--port",
        "0",
        "--password",
        PASSWORD,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(10):
            port = int(await process.stdout.readline())
        async with SourceRconClient("127.0.0.1", port, PASSWORD, timeout=3.0) as rcon:
            assert "Alice, Bob" in await rcon.command("list")
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
