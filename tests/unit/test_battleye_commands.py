"""The BattlEye command queue on a real event loop with a stub socket: resend schedule,
deadlines, the silence rule and byte caps. Timers never fire early, so the intervals are
checked from below only (a loaded machine makes them longer, never shorter)."""

from __future__ import annotations

import asyncio
import itertools
import zlib
from typing import Any, cast

import pytest

from core.rcon.battleye import ClientProtocol, LoginResult, ReplyTooLarge, ServerMessage
from core.rcon.battleye_commands import SILENT_SENDS, CommandQueue
from core.rcon.battleye_messages import MessageBuffer, MessageStream
from core.rcon.errors import RconConnectionLost, RconReplyTooLarge, RconTimeout

pytestmark = pytest.mark.timeout(30)


def frame(body: bytes) -> bytes:
    payload = b"\xff" + body
    return b"BE" + zlib.crc32(payload).to_bytes(4, "little") + payload


class StubTransport:
    def __init__(self) -> None:
        self.sent: list[tuple[float, bytes]] = []

    def sendto(self, data: bytes, addr: object = None) -> None:
        self.sent.append((asyncio.get_running_loop().time(), data))


def make_queue(
    *, timeout: float = 0.02, retries: int = 1, cap: float = 0.08, reconnect: bool = True
) -> tuple[CommandQueue, StubTransport, list[str]]:
    proto = ClientProtocol()
    proto.login("pw")
    assert proto.receive(frame(b"\x00\x01")) == [LoginResult(True)]
    lost: list[str] = []
    queue = CommandQueue(
        proto,
        timeout=timeout,
        retries=retries,
        max_resend_interval=cap,
        reconnect=reconnect,
        on_lost=lost.append,
    )
    transport = StubTransport()
    queue.transport = cast(Any, transport)
    return queue, transport, lost


async def keep_hearing(queue: CommandQueue, stop: asyncio.Event) -> None:
    """Something arrives from the server all the time (other replies, messages)."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        queue.last_received = loop.time()
        await asyncio.sleep(0.002)


async def test_resends_back_off_to_the_cap_and_stop_at_the_deadline() -> None:
    queue, transport, lost = make_queue(timeout=0.02, retries=1, cap=0.08)
    stop = asyncio.Event()
    hearing = asyncio.create_task(keep_hearing(queue, stop))
    try:
        cmd = queue.submit(b"players", 0.6)
        with pytest.raises(RconTimeout, match="'players'"):
            await asyncio.wait_for(cmd.future, 10)
    finally:
        stop.set()
        await hearing
    times = [t for t, _ in transport.sent]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    planned = [0.02, 0.02, 0.04, 0.08, 0.08, 0.08]
    assert len(gaps) >= 3
    for gap, least in zip(gaps, planned + [0.08] * len(gaps), strict=False):
        assert gap >= least - 0.002
    assert len(transport.sent) <= 0.6 / 0.02  # far fewer than a fixed interval would send
    assert len({d for _, d in transport.sent}) == 1  # the same datagram every time
    assert lost == []
    assert queue.pending == {}


async def test_a_silent_server_is_found_after_six_unanswered_sends() -> None:
    queue, transport, lost = make_queue(timeout=0.01, retries=1, cap=0.02)
    cmd = queue.submit(b"players", 20)
    for _ in range(1000):
        if lost:
            break
        await asyncio.sleep(0.005)
    assert lost and lost[0].startswith("no answer from the server")
    assert len(transport.sent) == SILENT_SENDS
    assert not cmd.future.done()  # with reconnect it waits for the next session
    queue.requeue_in_flight()
    assert list(queue.queue) == [cmd] and cmd.sends == 0
    queue.fail_all(RconConnectionLost("gone"))
    with pytest.raises(RconConnectionLost):
        await cmd.future


async def test_a_refused_port_is_found_after_retries_plus_one_sends() -> None:
    queue, transport, lost = make_queue(timeout=0.01, retries=1, reconnect=False)
    queue.refused = True
    cmd = queue.submit(b"players", 20)
    with pytest.raises(RconTimeout):
        await asyncio.wait_for(cmd.future, 10)
    assert len(transport.sent) == 2
    assert len(lost) == 1


async def test_an_answer_settles_the_command_and_a_late_one_is_ignored() -> None:
    queue, _, _ = make_queue()
    cmd = queue.submit(b"version", 5)
    queue.answered(cmd.seq, "2.18")
    assert await cmd.future == "2.18"
    queue.answered(cmd.seq, "again")  # no error, nothing pending


async def test_a_reply_over_its_cap_fails_with_a_typed_error_naming_the_command() -> None:
    queue, _, _ = make_queue()
    cmd = queue.submit(b"bans", 5)
    queue.too_large(ReplyTooLarge(cmd.seq, 5_000_000, 4 << 20), "127.0.0.1:2306")
    with pytest.raises(RconReplyTooLarge, match=r"'bans'.*4,194,304-byte cap"):
        await cmd.future


async def test_commands_waiting_through_a_failed_login_round_fail() -> None:
    queue, _, _ = make_queue()
    queue.transport = None  # no session
    loop = asyncio.get_running_loop()
    early = queue.submit(b"players", 20)
    since = loop.time()
    await asyncio.sleep(0.01)
    late = queue.submit(b"players", 20)
    queue.fail_waiting(since, RconTimeout("no answer"))
    with pytest.raises(RconTimeout):
        await early.future
    assert not late.future.done()
    queue.fail_all(RconConnectionLost("closed"))
    with pytest.raises(RconConnectionLost):
        await late.future


async def test_message_buffer_is_bounded_by_bytes_and_count() -> None:
    buffer = MessageBuffer(max_messages=5, max_bytes=100)
    for n in range(10):
        buffer.push(ServerMessage(n, "x" * 30))
    assert (len(buffer), buffer.bytes, buffer.dropped) == (3, 90, 7)
    buffer.push(ServerMessage(10, "y" * 500))  # one message over the bound: dropped too
    assert (len(buffer), buffer.bytes) == (0, 0)
    for n in range(8):
        buffer.push(ServerMessage(n, "z"))
    assert len(buffer) == 5
    buffer.close()
    assert [m.seq async for m in MessageStream(buffer)] == [3, 4, 5, 6, 7]
