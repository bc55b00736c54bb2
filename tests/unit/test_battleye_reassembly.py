"""Multipart reassembly in the BattlEye client protocol: byte caps and answers that differ.

A command may be answered more than once (the original reply, the answer to a resend), and
the protocol carries no reply id, so the parts of two answers to one sequence number can
arrive interleaved. These tests pin what the client does with them, and that a hostile or
broken server cannot make it hold more than its caps.
"""

from __future__ import annotations

import zlib

from core.rcon.battleye import ClientProtocol, CommandReply, LoginResult, ReplyTooLarge

MiB = 1 << 20


def frame(body: bytes) -> bytes:
    payload = b"\xff" + body
    return b"BE" + zlib.crc32(payload).to_bytes(4, "little") + payload


def part(seq: int, total: int, index: int, data: bytes) -> bytes:
    return frame(bytes((0x01, seq, 0x00, total, index)) + data)


def logged_in(**caps: int) -> ClientProtocol:
    client = ClientProtocol(**caps)
    client.login("pw")
    assert client.receive(frame(b"\x00\x01")) == [LoginResult(True)]
    return client


def start(client: ClientProtocol, command: str) -> int:
    seq = client.start_command(command)
    assert seq is not None
    return seq


def test_a_255_part_reply_of_15_mb_is_refused_at_the_default_cap() -> None:
    client = logged_in()
    seq = start(client, "players")
    body = b"x" * 60_000
    events = []
    for index in range(255):
        events += client.receive(part(seq, 255, index, body))
        assert client.buffered_bytes <= 4 * MiB
    assert len(events) == 1
    (event,) = events
    assert isinstance(event, ReplyTooLarge)
    assert (event.seq, event.limit, event.in_flight) == (seq, 4 * MiB, False)
    assert event.size > 4 * MiB
    assert client.replies_too_large == 1
    assert client.buffered_bytes == 0
    assert client.in_flight == 0
    # later parts of the dropped reply are strays, and the next command is answered
    assert client.receive(part(seq, 255, 7, body)) == []
    nxt = start(client, "version")
    assert client.receive(frame(bytes((0x01, nxt)) + b"2.18")) == [CommandReply(nxt, "2.18")]


def test_the_per_reply_cap_is_configurable() -> None:
    client = logged_in(max_reply_bytes=1000)
    seq = start(client, "bans")
    assert client.receive(part(seq, 3, 0, b"a" * 500)) == []
    assert client.receive(part(seq, 3, 1, b"b" * 500)) == []
    (event,) = client.receive(part(seq, 3, 2, b"c"))
    assert event == ReplyTooLarge(seq, 1001, 1000, in_flight=False)


def test_all_replies_in_flight_share_one_cap() -> None:
    client = logged_in(max_reply_bytes=4000, max_buffered_bytes=10_000)
    seqs = [start(client, f"c{n}") for n in range(4)]
    for seq in seqs[:3]:
        assert client.receive(part(seq, 2, 0, b"z" * 3000)) == []
    assert client.buffered_bytes == 9000
    (event,) = client.receive(part(seqs[3], 2, 0, b"z" * 3000))
    assert event == ReplyTooLarge(seqs[3], 12_000, 10_000, in_flight=True)
    assert client.buffered_bytes == 9000
    # the others are unharmed
    assert client.receive(part(seqs[0], 2, 1, b"!")) == [CommandReply(seqs[0], "z" * 3000 + "!")]
    assert client.buffered_bytes == 6000


def test_cancel_and_reset_release_the_bytes() -> None:
    client = logged_in()
    a, b = start(client, "a"), start(client, "b")
    client.receive(part(a, 2, 0, b"a" * 100))
    client.receive(part(b, 2, 0, b"b" * 100))
    client.cancel_command(a)
    assert client.buffered_bytes == 100
    client.reset()
    assert client.buffered_bytes == 0


def test_a_resend_answered_differently_is_not_mixed_with_the_original() -> None:
    """Original A = a0 a1, the answer to the resend B = b0 b1 (the list changed between)."""
    client = logged_in()
    seq = start(client, "players")
    assert client.receive(part(seq, 2, 0, b"A0 ")) == []
    assert client.receive(part(seq, 2, 0, b"B0 ")) == []  # index 0 again, other bytes
    assert client.receive(part(seq, 2, 1, b"B1")) == [CommandReply(seq, "B0 B1")]
    assert client.part_conflicts == 1


def test_identical_answers_merge_so_a_resend_completes_a_partial_reply() -> None:
    client = logged_in()
    seq = start(client, "players")
    assert client.receive(part(seq, 3, 0, b"one ")) == []
    assert client.receive(part(seq, 3, 0, b"one ")) == []  # the resend's copy
    assert client.receive(part(seq, 3, 2, b"three")) == []
    assert client.receive(part(seq, 3, 1, b"two ")) == [CommandReply(seq, "one two three")]
    assert client.part_conflicts == 0


def test_answers_with_different_part_counts_complete_separately() -> None:
    """A has 3 parts, B has 2; interleaved, each is assembled on its own, never mixed."""
    client = logged_in()
    seq = start(client, "players")
    assert client.receive(part(seq, 3, 0, b"a0")) == []
    assert client.receive(part(seq, 3, 1, b"a1")) == []
    assert client.receive(part(seq, 2, 0, b"b0")) == []
    assert client.receive(part(seq, 3, 2, b"a2")) == [CommandReply(seq, "a0a1a2")]
    assert client.buffered_bytes == 0
    assert client.receive(part(seq, 2, 1, b"b1")) == []  # late: the command is answered


def test_a_server_cycling_part_counts_cannot_grow_one_reply_past_two_answers() -> None:
    client = logged_in()
    seq = start(client, "x")
    for total in range(2, 200):
        assert client.receive(part(seq, total, 0, b"q" * 1000)) == []
        assert client.buffered_bytes <= 2000
