"""Source RCON client protocol against a hostile peer, no sockets: nothing grows unbounded.

A reply is every packet carrying the command's id until the terminator's answer; a server
that never sends that answer (or a reply of hundreds of megabytes) must not grow the client.
"""

from __future__ import annotations

import struct

import pytest

from core.rcon.source import (
    DEFAULT_MAX_REPLY_BYTES,
    Authenticated,
    CommandReply,
    Event,
    ReplyTooLarge,
    SourceRconProtocol,
)
from core.rcon.source_packets import (
    MAX_PACKET_SIZE,
    SERVERDATA_AUTH_RESPONSE,
    SERVERDATA_RESPONSE_VALUE,
    PacketDecoder,
    RemoteProtocolError,
)

MiB = 1 << 20


def wire(packet_id: int, packet_type: int, body: bytes = b"") -> bytes:
    return struct.pack("<iii", len(body) + 10, packet_id, packet_type) + body + b"\0\0"


def drain(protocol: SourceRconProtocol) -> list[Event]:
    events = []
    while (event := protocol.next_event()) is not None:
        events.append(event)
    return events


def ready(**options: int) -> SourceRconProtocol:
    protocol = SourceRconProtocol(**options)  # type: ignore[arg-type]
    protocol.login("pw")
    protocol.data_to_send()
    protocol.receive_data(wire(1, SERVERDATA_AUTH_RESPONSE))
    assert drain(protocol) == [Authenticated()]
    return protocol


def test_an_endless_reply_is_cut_at_the_default_cap() -> None:
    assert MiB * 4 == DEFAULT_MAX_REPLY_BYTES
    protocol = ready()
    command_id = protocol.send_command("flood")
    protocol.data_to_send()
    packet = wire(command_id, SERVERDATA_RESPONSE_VALUE, b"x" * 4096)
    events: list[Event] = []
    for _ in range(2000):  # 8 MB, never a terminator answer
        protocol.receive_data(packet)
        events += drain(protocol)
        assert protocol.buffered_reply_bytes <= 4 * MiB
        assert protocol.buffered <= MAX_PACKET_SIZE + len(packet)
    assert events == [ReplyTooLarge(command_id, 1025 * 4096, 4 * MiB)]
    assert protocol.replies_too_large == 1
    assert protocol.buffered_reply_bytes == 0
    assert protocol.buffered == 0  # the rest of the stream is dropped unread
    assert protocol.abandoned  # the connection must go: the stream cannot be resynchronised


def test_a_reply_just_under_the_cap_is_delivered() -> None:
    protocol = ready(max_reply_bytes=10_000)
    command_id = protocol.send_command("long")
    assert _ids(protocol.data_to_send()) == [command_id]
    protocol.receive_data(wire(command_id, SERVERDATA_RESPONSE_VALUE, b"a" * 6000))
    assert drain(protocol) == []  # packets are decoded here; the terminator goes out now
    (terminator_id,) = _ids(protocol.data_to_send())
    protocol.receive_data(wire(command_id, SERVERDATA_RESPONSE_VALUE, b"b" * 4000))
    protocol.receive_data(wire(terminator_id, SERVERDATA_RESPONSE_VALUE, b"Unknown request 0"))
    assert drain(protocol) == [CommandReply(command_id, b"a" * 6000 + b"b" * 4000)]
    assert protocol.replies_too_large == 0


def test_commands_after_an_abandoned_stream_are_refused_locally() -> None:
    protocol = ready(max_reply_bytes=100)
    command_id = protocol.send_command("flood")
    protocol.data_to_send()
    protocol.receive_data(wire(command_id, SERVERDATA_RESPONSE_VALUE, b"x" * 101))
    assert [type(e) for e in drain(protocol)] == [ReplyTooLarge]
    with pytest.raises(RemoteProtocolError, match="abandoned"):
        protocol.send_command("list")


def test_a_failed_decoder_stops_buffering() -> None:
    decoder = PacketDecoder()
    decoder.feed(struct.pack("<i", 1 << 30) + b"y" * 1000)  # a 1 GiB packet declared
    with pytest.raises(RemoteProtocolError, match="outside"):
        decoder.next_packet()
    for _ in range(100):
        decoder.feed(b"y" * 65536)
    assert decoder.buffered == 0
    with pytest.raises(RemoteProtocolError):
        decoder.next_packet()


def _ids(data: bytes) -> list[int]:
    ids = []
    offset = 0
    while offset < len(data):
        size, packet_id = struct.unpack_from("<ii", data, offset)
        ids.append(packet_id)
        offset += 4 + size
    return ids
