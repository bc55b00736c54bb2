"""Source RCON codec and client protocol, with no sockets.

The server side here is scripted with `struct` in this file, independently of the codec
under test, in both flavours (Minecraft and Source engine).
"""

from __future__ import annotations

import contextlib
import itertools
import struct
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.rcon.errors import RconError
from core.rcon.source import (
    Authenticated,
    AuthenticationFailed,
    CommandReply,
    Event,
    ProtocolState,
    SourceRconProtocol,
)
from core.rcon.source_packets import (
    MAX_COMMAND_BYTES,
    MAX_PACKET_SIZE,
    MIN_PACKET_SIZE,
    SERVERDATA_AUTH,
    SERVERDATA_AUTH_RESPONSE,
    SERVERDATA_EXECCOMMAND,
    SERVERDATA_RESPONSE_VALUE,
    LocalProtocolError,
    Packet,
    PacketDecoder,
    RemoteProtocolError,
    encode_command,
)

INT32_MAX = 2**31 - 1
int32 = st.integers(min_value=-(2**31), max_value=INT32_MAX)


def wire(packet_id: int, packet_type: int, body: bytes = b"") -> bytes:
    return struct.pack("<iii", len(body) + 10, packet_id, packet_type) + body + b"\0\0"


def unwire(data: bytes) -> list[tuple[int, int, bytes]]:
    out = []
    offset = 0
    while offset < len(data):
        (size,) = struct.unpack_from("<i", data, offset)
        packet_id, packet_type = struct.unpack_from("<ii", data, offset + 4)
        assert data[offset + 2 + size : offset + 4 + size] == b"\0\0"
        out.append((packet_id, packet_type, data[offset + 12 : offset + 2 + size]))
        offset += 4 + size
    assert offset == len(data)
    return out


class ScriptedServer:
    """The server end of a conversation, written against the wire format, not our codec."""

    def __init__(self, flavour: str, password: str = "pw", handler: Callable[[str], str] = str):
        self.flavour = flavour
        self.password = password
        self.handler = handler
        self.reads: list[int] = []  # packets per client write, to check Minecraft's rule

    def receive(self, data: bytes) -> bytes:
        packets = unwire(data)
        self.reads.append(len(packets))
        out = b""
        for packet_id, packet_type, body in packets:
            out += self._answer(packet_id, packet_type, body)
        return out

    def _answer(self, packet_id: int, packet_type: int, body: bytes) -> bytes:
        source = self.flavour == "source"
        if packet_type == SERVERDATA_AUTH:
            ok = body.decode() == self.password
            prefix = wire(packet_id, SERVERDATA_RESPONSE_VALUE) if source else b""
            return prefix + wire(packet_id if ok else -1, SERVERDATA_AUTH_RESPONSE)
        if packet_type == SERVERDATA_EXECCOMMAND:
            reply = self.handler(body.decode())
            if source:
                data = reply.encode()
                chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)] or [b""]
            else:
                pieces = [reply[i : i + 4096] for i in range(0, len(reply), 4096)] or [""]
                chunks = [piece.encode() for piece in pieces]
            return b"".join(wire(packet_id, SERVERDATA_RESPONSE_VALUE, c) for c in chunks)
        if source:
            return wire(packet_id, 0) + wire(packet_id, 0, b"\x00\x00\x00\x01")
        return wire(packet_id, 0, f"Unknown request {packet_type:x}".encode())


def state_of(protocol: SourceRconProtocol) -> ProtocolState:
    return protocol.state  # a call, so mypy does not keep an earlier narrowing


def drain(protocol: SourceRconProtocol) -> list[Event]:
    events = []
    while (event := protocol.next_event()) is not None:
        events.append(event)
    return events


def converse(protocol: SourceRconProtocol, server: ScriptedServer, piece: int = 0) -> list[Event]:
    """Ping-pong until the client has nothing to say; `piece` > 0 cuts server bytes."""
    events: list[Event] = []
    for _ in range(100_000):
        out = protocol.data_to_send()
        if not out:
            return events
        reply = server.receive(out)
        step = piece or max(len(reply), 1)
        for start in range(0, len(reply), step):
            protocol.receive_data(reply[start : start + step])
            events += drain(protocol)
    raise AssertionError("conversation did not settle")


# --- packets -------------------------------------------------------------------------


def test_packet_bytes_match_the_wire_format() -> None:
    assert Packet(7, SERVERDATA_EXECCOMMAND, b"list").to_bytes() == (
        b"\x0e\x00\x00\x00\x07\x00\x00\x00\x02\x00\x00\x00list\x00\x00"
    )
    assert Packet(-1, SERVERDATA_AUTH_RESPONSE).size == 10


def test_packet_from_bytes_round_trip() -> None:
    packet = Packet(-1, SERVERDATA_AUTH_RESPONSE, b"caf\xc3")
    assert Packet.from_bytes(packet.to_bytes()) == packet
    assert Packet.from_bytes(memoryview(packet.to_bytes())) == packet


def test_packet_body_may_hold_nul_bytes() -> None:
    trailer = wire(5, 0, b"\x00\x00\x00\x01")
    assert Packet.from_bytes(trailer).body == b"\x00\x00\x00\x01"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x0a\x00\x00\x00\x01\x00\x00",  # shorter than the smallest packet
        wire(1, 0, b"ab")[:-1],  # size says one byte more than there is
        wire(1, 0, b"ab") + b"\x00",  # trailing byte beyond size
        wire(1, 0, b"ab")[:-2] + b"x\x00",  # missing the NUL terminators
        struct.pack("<iii", MAX_PACKET_SIZE + 1, 1, 0) + bytes(MAX_PACKET_SIZE - 7),
    ],
)
def test_packet_from_bytes_is_strict(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        Packet.from_bytes(data)


def test_packet_rejects_ids_outside_int32() -> None:
    with pytest.raises(LocalProtocolError):
        Packet(2**31, 0)
    with pytest.raises(LocalProtocolError):
        Packet(0, -(2**31) - 1)


def test_auth_packet_repr_hides_the_password() -> None:
    assert "hunter2" not in repr(Packet(1, SERVERDATA_AUTH, b"hunter2"))
    assert "list" in repr(Packet(1, SERVERDATA_EXECCOMMAND, b"list"))


@given(packet_id=int32, packet_type=int32, body=st.binary(max_size=300))
def test_encode_decode_round_trip(packet_id: int, packet_type: int, body: bytes) -> None:
    packet = Packet(packet_id, packet_type, body)
    assert Packet.from_bytes(packet.to_bytes()) == packet


# --- decoder -------------------------------------------------------------------------


def test_decoder_fed_byte_by_byte() -> None:
    packets = [Packet(1, 0, b"hello"), Packet(2, 2), Packet(3, 0, "é".encode() * 50)]
    decoder = PacketDecoder()
    got = []
    for byte in b"".join(p.to_bytes() for p in packets):
        decoder.feed(bytes([byte]))
        while (packet := decoder.next_packet()) is not None:
            got.append(packet)
    assert got == packets
    assert decoder.buffered == 0


@pytest.mark.parametrize("size", [-1, 0, 9, MAX_PACKET_SIZE + 1, -(2**31)])
def test_decoder_rejects_size_out_of_range_and_stays_failed(size: int) -> None:
    decoder = PacketDecoder()
    decoder.feed(struct.pack("<i", size))
    with pytest.raises(RemoteProtocolError, match="outside"):
        decoder.next_packet()
    decoder.feed(wire(1, 0))
    with pytest.raises(RemoteProtocolError):
        decoder.next_packet()


def test_decoder_rejects_missing_terminator_after_good_packets() -> None:
    decoder = PacketDecoder()
    decoder.feed(wire(1, 0, b"ok") + wire(2, 0, b"xy")[:-2] + b"zz")
    assert decoder.next_packet() == Packet(1, 0, b"ok")
    with pytest.raises(RemoteProtocolError, match="NUL"):
        decoder.next_packet()
    with pytest.raises(RemoteProtocolError, match="NUL"):
        decoder.next_packet()


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@given(
    packets=st.lists(
        st.builds(Packet, int32, int32, st.binary(max_size=200)), min_size=1, max_size=8
    ),
    cuts=st.lists(st.integers(min_value=0), max_size=20),
)
def test_decoder_random_splits(packets: list[Packet], cuts: list[int]) -> None:
    decoder = PacketDecoder()
    got = []
    for chunk in _split(b"".join(p.to_bytes() for p in packets), cuts):
        decoder.feed(chunk)
        while (packet := decoder.next_packet()) is not None:
            got.append(packet)
    assert got == packets


@st.composite
def damaged_streams(draw: st.DrawFn) -> bytes:
    """Valid packets with a few bytes overwritten, dropped or inserted: near-miss garbage."""
    packets = draw(st.lists(st.builds(Packet, int32, int32, st.binary(max_size=60)), max_size=5))
    data = bytearray(b"".join(p.to_bytes() for p in packets))
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        where = draw(st.integers(min_value=0, max_value=len(data)))
        action = draw(st.sampled_from(["set", "drop", "insert"]))
        value = draw(st.integers(min_value=0, max_value=255))
        if action == "insert" or where == len(data):
            data.insert(where, value)
        elif action == "set":
            data[where] = value
        else:
            del data[where]
    return bytes(data)


@given(
    data=st.one_of(st.binary(max_size=400), damaged_streams()),
    cuts=st.lists(st.integers(min_value=0), max_size=10),
)
def test_decoder_on_any_bytes_yields_packets_or_protocol_error(
    data: bytes, cuts: list[int]
) -> None:
    decoder = PacketDecoder()
    try:
        for chunk in _split(data, cuts):
            decoder.feed(chunk)
            while (packet := decoder.next_packet()) is not None:
                assert MIN_PACKET_SIZE <= packet.size <= MAX_PACKET_SIZE
    except RemoteProtocolError:
        pass


@given(data=st.one_of(st.binary(max_size=400), damaged_streams()))
def test_client_protocol_on_any_bytes_raises_only_protocol_error(data: bytes) -> None:
    protocol = SourceRconProtocol()
    protocol.login("pw")
    protocol.send_command("list")
    protocol.receive_data(data)
    with contextlib.suppress(RemoteProtocolError):
        drain(protocol)


# --- client protocol: login ----------------------------------------------------------


@pytest.mark.parametrize("flavour", ["minecraft", "source"])
def test_login_in_both_flavours(flavour: str) -> None:
    protocol = SourceRconProtocol()
    protocol.login("pw")
    assert state_of(protocol) is ProtocolState.AUTHENTICATING
    assert converse(protocol, ScriptedServer(flavour)) == [Authenticated()]
    assert state_of(protocol) is ProtocolState.READY


@pytest.mark.parametrize("flavour", ["minecraft", "source"])
def test_login_refused(flavour: str) -> None:
    protocol = SourceRconProtocol()
    protocol.login("wrong")
    protocol.send_command("list")  # queued behind the login, never written
    assert converse(protocol, ScriptedServer(flavour)) == [AuthenticationFailed()]
    assert protocol.state is ProtocolState.REFUSED
    with pytest.raises(LocalProtocolError, match="refused"):
        protocol.send_command("list")
    protocol.receive_data(wire(1, 0, b"late"))
    assert drain(protocol) == []


def test_login_misuse() -> None:
    protocol = SourceRconProtocol()
    with pytest.raises(LocalProtocolError) as info:
        protocol.login("sec\0ret")
    assert "sec" not in str(info.value)
    with pytest.raises(LocalProtocolError):
        protocol.login("x" * (MAX_COMMAND_BYTES + 1))
    protocol.login("pw")
    with pytest.raises(LocalProtocolError, match="once"):
        protocol.login("pw")


def test_packets_before_login_completes_are_ignored() -> None:
    protocol = SourceRconProtocol()
    protocol.receive_data(wire(9, 0, b"stray"))
    assert drain(protocol) == []
    protocol.login("pw")
    auth_id = unwire(protocol.data_to_send())[0][0]
    protocol.receive_data(wire(auth_id + 1, SERVERDATA_AUTH_RESPONSE))  # not our id
    assert drain(protocol) == []
    protocol.receive_data(wire(auth_id, SERVERDATA_AUTH_RESPONSE))
    assert drain(protocol) == [Authenticated()]


# --- client protocol: commands -------------------------------------------------------


def test_encode_command_limits() -> None:
    assert encode_command("say é") == "say é".encode()
    assert encode_command("x" * MAX_COMMAND_BYTES) == b"x" * MAX_COMMAND_BYTES
    with pytest.raises(LocalProtocolError, match="at most 1446"):
        encode_command("x" * (MAX_COMMAND_BYTES + 1))
    with pytest.raises(LocalProtocolError, match="1447 bytes"):
        encode_command("é" * 723 + "x")
    with pytest.raises(LocalProtocolError, match="NUL"):
        encode_command("say \0")
    with pytest.raises(ValueError):
        encode_command("x" * 20, max_bytes=10)
    assert issubclass(LocalProtocolError, RconError)


def test_serial_mode_keeps_one_packet_on_the_wire() -> None:
    protocol = SourceRconProtocol()
    protocol.login("pw")
    first = protocol.send_command("echo a")
    second = protocol.send_command("echo b")
    [(auth_id, auth_type, _)] = unwire(protocol.data_to_send())
    assert auth_type == SERVERDATA_AUTH
    protocol.receive_data(wire(auth_id, SERVERDATA_AUTH_RESPONSE))
    assert drain(protocol) == [Authenticated()]
    assert unwire(protocol.data_to_send()) == [(first, SERVERDATA_EXECCOMMAND, b"echo a")]
    assert protocol.data_to_send() == b""
    protocol.receive_data(wire(first, 0, b"a"))
    assert drain(protocol) == []
    [(terminator, terminator_type, body)] = unwire(protocol.data_to_send())
    assert (terminator_type, body) == (SERVERDATA_RESPONSE_VALUE, b"")
    protocol.receive_data(wire(terminator, 0, b"Unknown request 0"))
    assert drain(protocol) == [CommandReply(first, b"a")]
    assert unwire(protocol.data_to_send()) == [(second, SERVERDATA_EXECCOMMAND, b"echo b")]
    assert protocol.pending == 1


def test_pipeline_mode_writes_commands_and_terminators_back_to_back() -> None:
    protocol = SourceRconProtocol(pipeline=True)
    protocol.login("pw")
    converse(protocol, ScriptedServer("source"))
    ids = [protocol.send_command(f"echo {n}") for n in range(3)]
    sent = unwire(protocol.data_to_send())
    assert [t for _, t, _ in sent] == [SERVERDATA_EXECCOMMAND, SERVERDATA_RESPONSE_VALUE] * 3
    assert [i for i, t, _ in sent if t == SERVERDATA_EXECCOMMAND] == ids


@pytest.mark.parametrize("flavour", ["minecraft", "source"])
@pytest.mark.parametrize("pipeline", [False, True])
def test_multi_packet_reply_is_assembled(flavour: str, pipeline: bool) -> None:
    text = "€" * 5000 + "end"  # 15003 bytes: cut mid-character by the Source flavour
    server = ScriptedServer(flavour, handler=lambda _: text)
    protocol = SourceRconProtocol(pipeline=pipeline)
    protocol.login("pw")
    request_id = protocol.send_command("long")
    events = converse(protocol, server)
    assert events[0] == Authenticated()
    [reply] = events[1:]
    assert isinstance(reply, CommandReply)
    assert reply.request_id == request_id
    assert reply.text == text
    if not pipeline:
        assert set(server.reads) == {1}  # Minecraft's one-packet-per-read rule held


def test_terminator_mirror_flavours_end_the_reply() -> None:
    """Minecraft answers `Unknown request 0`; Source mirrors an empty packet plus a trailer."""
    for tail in (
        [b"Unknown request 0"],
        [b"", b"\x00\x00\x00\x01"],
        [b"", b"\x00\x00\x00\x01\x00\x00"],
    ):
        protocol = SourceRconProtocol(pipeline=True)
        protocol.login("pw")
        converse(protocol, ScriptedServer("minecraft"))
        command = protocol.send_command("x")
        terminator = unwire(protocol.data_to_send())[1][0]
        data = wire(command, 0, b"part1 ") + wire(command, 0, b"part2")
        data += b"".join(wire(terminator, 0, body) for body in tail)
        protocol.receive_data(data)
        assert drain(protocol) == [CommandReply(command, b"part1 part2")]
        assert protocol.pending == 0


def test_replies_are_matched_by_id_and_strays_dropped() -> None:
    protocol = SourceRconProtocol(pipeline=True)
    protocol.login("pw")
    converse(protocol, ScriptedServer("source"))
    a = protocol.send_command("a")
    b = protocol.send_command("b")
    sent = unwire(protocol.data_to_send())
    term_a, term_b = sent[1][0], sent[3][0]
    protocol.receive_data(wire(999, 0, b"stray") + wire(a, 0, b"A") + wire(term_a, 0))
    protocol.receive_data(wire(b, 0, b"B") + wire(term_b, 0) + wire(term_b, 0, b"\0\0\0\1"))
    assert drain(protocol) == [CommandReply(a, b"A"), CommandReply(b, b"B")]


def test_undecodable_reply_bytes_are_replaced() -> None:
    assert CommandReply(1, b"ok \xff").text == "ok \ufffd"


def test_cancel_withdraws_only_unsent_commands() -> None:
    protocol = SourceRconProtocol()
    protocol.login("pw")
    server = ScriptedServer("minecraft")
    protocol.receive_data(server.receive(protocol.data_to_send()))
    drain(protocol)
    sent = protocol.send_command("echo sent")
    queued = protocol.send_command("echo queued")
    last = protocol.send_command("echo last")
    assert protocol.cancel(queued) is True
    assert protocol.cancel(sent) is False
    assert protocol.cancel(12345) is False
    events = converse(protocol, server)
    assert events == [CommandReply(sent, b"echo sent"), CommandReply(last, b"echo last")]


def test_ids_wrap_before_int32_max_and_skip_ids_in_use() -> None:
    protocol = SourceRconProtocol(first_id=INT32_MAX - 1)
    protocol.login("pw")  # INT32_MAX - 1
    first = protocol.send_command("a")
    assert first == INT32_MAX
    second = protocol.send_command("b")
    assert second == 1
    protocol._next_id = first  # as if the counter had come all the way around
    third = protocol.send_command("c")
    assert third not in {first, second, INT32_MAX - 1} and third > 0
    with pytest.raises(ValueError):
        SourceRconProtocol(first_id=0)


@pytest.mark.parametrize("flavour", ["minecraft", "source"])
def test_hundreds_of_commands_walk_ids_past_255(flavour: str) -> None:
    protocol = SourceRconProtocol(pipeline=flavour == "source")
    protocol.login("pw")
    ids = {protocol.send_command(f"echo {n}"): f"echo {n}" for n in range(300)}
    events = converse(protocol, ScriptedServer(flavour), piece=7)
    replies = {e.request_id: e.text for e in events if isinstance(e, CommandReply)}
    assert replies == ids
    assert max(ids) > 255


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    flavour=st.sampled_from(["minecraft", "source"]),
    pipeline=st.booleans(),
    lengths=st.lists(st.integers(min_value=0, max_value=9000), min_size=1, max_size=5),
    piece=st.integers(min_value=0, max_value=5000),
)
def test_property_every_command_gets_its_own_reply(
    flavour: str, pipeline: bool, lengths: list[int], piece: int
) -> None:
    def handler(command: str) -> str:
        length = int(command.split()[1])
        return ("ü" + command) * (length // (len(command) + 1)) if length else ""

    protocol = SourceRconProtocol(pipeline=pipeline and flavour == "source")
    protocol.login("pw")
    expected = {}
    for index, length in enumerate(lengths):
        command = f"x {length} {index}"
        expected[protocol.send_command(command)] = handler(command)
    server = ScriptedServer(flavour, handler=handler)
    events = converse(protocol, server, piece=piece)
    replies = {e.request_id: e.text for e in events if isinstance(e, CommandReply)}
    assert replies == expected
    assert protocol.pending == 0
    if not protocol.pipeline:
        assert set(server.reads) == {1}
