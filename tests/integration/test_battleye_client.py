"""BattlEyeClient against the fake server over loopback UDP: loss, restarts, keepalive."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from core.backoff import Backoff
from core.rcon.battleye import ServerMessage
from core.rcon.battleye_client import BattlEyeClient
from core.rcon.battleye_server import AdminDropped, AdminLoggedIn
from core.rcon.errors import RconClosed, RconCommandError, RconLoginError, RconTimeout
from tests.fakes.battleye_server import DEFAULT_PLAYERS, FakeBattlEyeServer

PASSWORD = "s3cret-pw"
HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(30)


def echo(command: str) -> str:
    if command.startswith("#"):
        return "Disallowed command"
    return f"echo:{command}"


@asynccontextmanager
async def running(**knobs: object) -> AsyncIterator[FakeBattlEyeServer]:
    server = FakeBattlEyeServer(PASSWORD, **knobs)  # type: ignore[arg-type]
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def client_for(server: FakeBattlEyeServer, **knobs: object) -> BattlEyeClient:
    knobs.setdefault("timeout", 0.2)
    knobs.setdefault("retries", 3)
    return BattlEyeClient(HOST, server.port, PASSWORD, **knobs)  # type: ignore[arg-type]


async def next_message(stream: AsyncIterator[ServerMessage], wait: float = 2.0) -> ServerMessage:
    return await asyncio.wait_for(anext(stream), wait)


async def test_login_command_and_admin_login_message() -> None:
    async with running() as server, client_for(server) as rcon:
        assert rcon.connected
        assert await rcon.command("players") == DEFAULT_PLAYERS
        assert await rcon.command("kick 3") == ""
        stream = rcon.messages()
        first = await next_message(stream)
        assert first.text.startswith("RCon admin #0 (127.0.0.1:")
        await rcon.command("say -1 hello all")
        assert (await next_message(stream)).text == "RCon admin #0: (Global) hello all"
        assert server.admins and server.admins[0][0] == 0


async def test_thousand_commands_under_twenty_percent_loss_with_many_in_flight() -> None:
    async with running(handler=echo, loss=0.2, seed=7) as server:
        async with client_for(server, timeout=0.05, retries=30) as rcon:
            limit = asyncio.Semaphore(40)
            in_flight = 0
            most = 0

            async def one(n: int) -> None:
                nonlocal in_flight, most
                async with limit:
                    in_flight += 1
                    most = max(most, in_flight)
                    try:
                        assert await rcon.command(f"cmd {n}") == f"echo:cmd {n}"
                    finally:
                        in_flight -= 1

            await asyncio.gather(*(one(n) for n in range(1000)))
            assert most == 40
            assert rcon.connected
        assert sorted(set(server.commands)) == sorted(f"cmd {n}" for n in range(1000))


async def test_ten_part_reply_reassembled_despite_reordering_and_loss() -> None:
    body = ("Максим 🙂 " * 200)[:700]  # non-ASCII characters straddle part boundaries
    size = len(body.encode())
    part = -(-size // 10)

    def handler(command: str) -> str:
        return body

    async with running(handler=handler, part_size=part, reorder=0.5, loss=0.1, seed=3) as server:
        assert -(-size // part) == 10
        async with client_for(server, timeout=0.1, retries=30) as rcon:
            for _ in range(10):
                assert await rcon.command("players") == body


async def test_disallowed_command_raises() -> None:
    async with running(handler=echo) as server, client_for(server) as rcon:
        with pytest.raises(RconCommandError, match="#shutdown"):
            await rcon.command("#shutdown")
        assert await rcon.command("still fine") == "echo:still fine"


async def test_more_commands_than_sequence_numbers_at_once() -> None:
    async with running(handler=echo) as server, client_for(server, timeout=1.0) as rcon:
        replies = await asyncio.gather(*(rcon.command(f"c{n}") for n in range(700)))
        assert replies == [f"echo:c{n}" for n in range(700)]


async def test_wrong_password_raises_login_error_without_the_password() -> None:
    async with running() as server:
        rcon = BattlEyeClient(HOST, server.port, "wrong-horse", timeout=0.2)
        with pytest.raises(RconLoginError) as info:
            await rcon.connect()
        assert "wrong-horse" not in str(info.value)
        assert "wrong-horse" not in repr(rcon)
        with pytest.raises(RconClosed):
            await rcon.command("players")


async def test_no_answer_to_login_is_a_bounded_timeout() -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # listens, never answers
    silent.bind((HOST, 0))
    try:
        rcon = BattlEyeClient(HOST, silent.getsockname()[1], PASSWORD, timeout=0.1, retries=2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(RconTimeout):
            await rcon.connect()
        assert loop.time() - started < 1.0
    finally:
        silent.close()


async def test_keepalive_holds_an_idle_session_past_the_idle_timeout() -> None:
    statuses: list[tuple[bool, str]] = []
    async with running(handler=echo, idle_timeout=1.5) as server:
        kept = client_for(server, keepalive_interval=0.5, on_status=lambda *s: statuses.append(s))
        bare = client_for(server, keepalive_interval=60.0, reconnect=False)
        async with kept, bare:
            admin_ids = dict(server.admins)
            await asyncio.sleep(3.0)
            # the client without keepalive was forgotten; the one with it was not
            dropped = [e for e in server.events if isinstance(e, AdminDropped)]
            assert [e.reason for e in dropped] == ["idle timeout"]
            assert await kept.command("after idle") == "echo:after idle"
            assert statuses == []
            assert len(server.admins) == 1
            assert server.admins[0][0] in admin_ids


async def reconnect_statuses(
    server: FakeBattlEyeServer, disrupt: Callable[[], object]
) -> list[tuple[bool, str]]:
    statuses: asyncio.Queue[tuple[bool, str]] = asyncio.Queue()
    rcon = client_for(
        server,
        timeout=0.2,
        retries=4,
        keepalive_interval=0.2,
        backoff=Backoff(base=0.05, cap=0.2),
        on_status=lambda up, why: statuses.put_nowait((up, why)),
    )
    async with rcon:
        assert await rcon.command("before") == "echo:before"
        result = disrupt()
        if asyncio.iscoroutine(result):
            await result
        down = await asyncio.wait_for(statuses.get(), 5)
        assert down[0] is False
        assert not rcon.connected
        # a command issued while reconnecting waits for the new session
        waiting = asyncio.create_task(rcon.command("during"))
        if not server.running:
            await asyncio.sleep(0.2)
            await server.start()
        up = await asyncio.wait_for(statuses.get(), 5)
        assert up == (True, "reconnected")
        assert await waiting == "echo:during"
        assert await rcon.command("after") == "echo:after"
        assert rcon.connected
    return [down, up]


async def test_client_reconnects_after_the_server_forgets_sessions() -> None:
    async with running(handler=echo) as server:
        await reconnect_statuses(server, server.restart)
        assert sum(isinstance(e, AdminLoggedIn) for e in server.events) == 2


async def test_client_reconnects_after_the_server_stops_and_starts_on_the_same_port() -> None:
    async with running(handler=echo) as server:
        port = server.port
        await reconnect_statuses(server, server.stop)
        assert server.port == port


async def test_server_messages_delivered_once_despite_duplication() -> None:
    async with running(duplicate=0.5, seed=11) as server, client_for(server) as rcon:
        stream = rcon.messages()
        assert (await next_message(stream)).text.startswith("RCon admin #0")
        for n in range(100):
            server.broadcast(f"Player #{n} P{n} disconnected")
        got = [(await next_message(stream)).text for _ in range(100)]
        assert got == [f"Player #{n} P{n} disconnected" for n in range(100)]
        await asyncio.sleep(0.3)
        assert rcon.duplicate_messages > 10
        with pytest.raises(TimeoutError):
            await next_message(stream, wait=0.2)
        assert server.proto.unacked == 0


def frame(body: bytes) -> bytes:
    payload = b"\xff" + body
    return b"BE" + zlib.crc32(payload).to_bytes(4, "little") + payload


async def test_fake_resends_unacked_messages_then_drops_the_admin() -> None:
    async with running(resend_interval=0.1, resend_attempts=5) as server:
        loop = asyncio.get_running_loop()
        received: asyncio.Queue[bytes] = asyncio.Queue()

        class Deaf(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: object) -> None:
                received.put_nowait(data)

        transport, _ = await loop.create_datagram_endpoint(Deaf, remote_addr=(HOST, server.port))
        try:
            transport.sendto(frame(b"\x00" + PASSWORD.encode()))
            assert await asyncio.wait_for(received.get(), 1) == frame(b"\x00\x01")
            copies = [await asyncio.wait_for(received.get(), 1) for _ in range(5)]
            assert len(set(copies)) == 1
            assert copies[0][7:10] == b"\x02\x00R" and copies[0].endswith(b"logged in")
            await asyncio.sleep(0.4)
            assert received.empty()  # five sends, then no more
            assert [e.reason for e in server.events if isinstance(e, AdminDropped)] == [
                "messages not acknowledged"
            ]
            assert server.admins == []
        finally:
            transport.close()


async def test_fake_drops_garbage_silently_and_ignores_strangers() -> None:
    async with running(handler=echo) as server:
        loop = asyncio.get_running_loop()
        received: asyncio.Queue[bytes] = asyncio.Queue()

        class Probe(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: object) -> None:
                received.put_nowait(data)

        transport, _ = await loop.create_datagram_endpoint(Probe, remote_addr=(HOST, server.port))
        try:
            bad_crc = frame(b"\x00" + PASSWORD.encode())[:-1] + b"?"
            for junk in (b"hello", bad_crc, frame(b"\x09\x00"), frame(b"\x02\x01xx")):
                transport.sendto(junk)
            transport.sendto(frame(b"\x01\x00players"))  # valid, but not logged in
            await asyncio.sleep(0.2)
            assert received.empty()
            assert server.proto.malformed == 4
            assert server.proto.ignored == 1
            assert server.commands == []
        finally:
            transport.close()


async def test_garbage_from_the_server_is_dropped_and_counted() -> None:
    async with running(handler=echo) as server, client_for(server) as rcon:
        ((_, addr),) = server.admins
        bad_crc = frame(b"\x01\x00ok")[:-1] + b"x"
        for junk in (b"junk", b"BE\x00\x00\x00\x00\xff\x01\x00", frame(b"\x07"), bad_crc):
            server.send_raw(junk, addr)
        await asyncio.sleep(0.05)
        assert rcon.malformed == 4
        assert await rcon.command("ok") == "echo:ok"
        assert rcon.connected


async def test_close_fails_pending_commands_and_ends_the_message_stream() -> None:
    async with running(handler=echo) as server:
        rcon = client_for(server, timeout=5.0)
        await rcon.connect()
        stream = rcon.messages()
        await next_message(stream)
        server.handler = lambda command: ""
        await server.stop()  # nobody answers now
        pending = asyncio.create_task(rcon.command("never answered"))
        await asyncio.sleep(0.05)
        await rcon.close()
        with pytest.raises(RconClosed):
            await pending
        with pytest.raises(StopAsyncIteration):
            await anext(stream)
        await rcon.close()  # idempotent


async def test_password_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(handler=echo, loss=0.3, seed=5) as server:
        async with client_for(server, timeout=0.05, retries=20) as rcon:
            await rcon.command(f"RConPassword {PASSWORD}")
            assert PASSWORD not in repr(rcon)
        with pytest.raises(RconLoginError):
            await BattlEyeClient(HOST, server.port, "other-" + PASSWORD, timeout=0.1).connect()
    assert PASSWORD not in caplog.text


async def test_fake_runs_as_a_process_and_stops_on_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.battleye_server",
        "--port",
        "0",
        "--password",
        PASSWORD,
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        port = int(await asyncio.wait_for(proc.stdout.readline(), 10))
        async with BattlEyeClient(HOST, port, PASSWORD, timeout=0.5) as rcon:
            assert await rcon.command("players") == DEFAULT_PLAYERS
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_stopped_server_fails_the_command_long_before_its_deadline() -> None:
    """Resending until the deadline is for a lossy network; a server that is gone (the OS
    reports the port closed) fails the command once a login round goes unanswered too."""
    statuses: list[tuple[bool, str]] = []
    async with running(handler=echo) as server:
        rcon = client_for(server, timeout=0.1, retries=1, on_status=lambda *s: statuses.append(s))
        async with rcon:
            assert rcon.command_timeout == 30.0
            await server.stop()
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(RconTimeout):
                await rcon.command("anyone?")
            assert loop.time() - started < 10
            assert statuses and statuses[0][0] is False
            await server.start()
            assert await asyncio.wait_for(rcon.command("back"), 10) == "echo:back"


async def test_a_hung_server_is_found_silent_and_the_command_fails() -> None:
    """No ICMP from a hung server (its socket is open, nobody reads): six unanswered sends
    mark the session lost, and the unanswered login round fails the command."""
    async with running(handler=echo) as server:
        rcon = client_for(server, timeout=0.05, retries=1, backoff=Backoff(base=0.05, cap=0.2))
        async with rcon:
            server.inbound_loss = 1.0
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(RconTimeout):
                await rcon.command("anyone?")
            assert loop.time() - started < 10
            assert not rcon.connected
            server.inbound_loss = 0.0
            assert await asyncio.wait_for(rcon.command("back"), 10) == "echo:back"
