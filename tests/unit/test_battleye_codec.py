"""BattlEye packets and the client/server protocol objects, without sockets."""

from __future__ import annotations

import contextlib
import zlib

import pytest
from berconpy.protocol import packet as bp
from hypothesis import given, settings
from hypothesis import strategies as st

from core.rcon.battleye import (
    ClientProtocol,
    ClientState,
    CommandReply,
    LocalProtocolError,
    LoginResult,
    ServerMessage,
)
from core.rcon.battleye_packets import (
    CommandReplyPart,
    CommandRequest,
    LoginReply,
    LoginRequest,
    MalformedPacket,
    MessageAck,
    MessagePacket,
    decode_client_packet,
    decode_server_packet,
)
from core.rcon.battleye_server import (
    AdminDropped,
    AdminLoggedIn,
    CommandReceived,
    LoginRefused,
    ServerProtocol,
)

ADDR = ("127.0.0.1", 40000)


def frame(body: bytes) -> bytes:
    """Independent framing: 'BE', CRC32 (little endian) of everything from 0xFF on."""
    payload = b"\xff" + body
    return b"BE" + zlib.crc32(payload).to_bytes(4, "little") + payload


def start(client: ClientProtocol, command: str) -> int:
    seq = client.start_command(command)
    assert seq is not None
    return seq


def logged_in_client() -> ClientProtocol:
    client = ClientProtocol()
    client.login("pw")
    assert client.receive(frame(b"\x00\x01")) == [LoginResult(True)]
    return client


# --- wire format -----------------------------------------------------------------------------


def test_layout_matches_the_spec_byte_for_byte() -> None:
    assert LoginRequest(b"pw").to_bytes() == frame(b"\x00pw")
    assert CommandRequest(7, b"players").to_bytes() == frame(b"\x01\x07players")
    assert CommandRequest(7, b"").to_bytes() == frame(b"\x01\x07")  # keepalive
    assert MessageAck(255).to_bytes() == frame(b"\x02\xff")
    assert LoginReply(True).to_bytes() == frame(b"\x00\x01")
    assert LoginReply(False).to_bytes() == frame(b"\x00\x00")
    assert CommandReplyPart(3, 1, 0, b"ok").to_bytes() == frame(b"\x01\x03ok")
    assert CommandReplyPart(3, 4, 2, b"ab").to_bytes() == frame(b"\x01\x03\x00\x04\x02ab")
    assert MessagePacket(9, b"hi").to_bytes() == frame(b"\x02\x09hi")


def test_same_bytes_as_berconpy() -> None:
    """A third-party encoder agrees with ours, so the codec is not checked against itself."""
    assert LoginRequest(b"secret").to_bytes() == bp.ClientLoginPacket(b"secret").data
    assert CommandRequest(200, b"bans").to_bytes() == bp.ClientCommandPacket(200, b"bans").data
    assert MessageAck(4).to_bytes() == bp.ClientMessagePacket(4).data
    assert LoginReply(True).to_bytes() == bp.ServerLoginPacket(True).data
    assert CommandReplyPart(1, 3, 2, b"x").to_bytes() == bp.ServerCommandPacket(1, 3, 2, b"x").data
    assert MessagePacket(5, b"m").to_bytes() == bp.ServerMessagePacket(5, b"m").data
    berconpy_part = bp.ServerCommandPacket(9, 2, 1, "é".encode()).data
    assert decode_server_packet(berconpy_part) == CommandReplyPart(9, 2, 1, "é".encode())


def test_password_is_not_in_the_repr() -> None:
    assert "hunter2" not in repr(LoginRequest(b"hunter2"))
    assert "hunter2" not in repr(ServerProtocol("hunter2"))


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "short"),
        (b"BE\x00\x00\x00\x00\xff", "short"),
        (b"XX" + frame(b"\x01\x00")[2:], "magic"),
        (frame(b"\x01\x00")[:6] + b"\xfe\x01\x00", "0xFF"),
        (frame(b"\x01\x00ok")[:-1] + b"x", "CRC"),
        (frame(b"\x03\x00"), "unknown packet type"),
        (frame(b"\x00"), "exactly one byte"),
        (frame(b"\x00\x02"), "exactly one byte"),
        (frame(b"\x00\x01\x01"), "exactly one byte"),
        (frame(b"\x01"), "sequence"),
        (frame(b"\x02"), "sequence"),
        (frame(b"\x01\x05\x00\x02"), "truncated"),
        (frame(b"\x01\x05\x00\x00\x00"), "out of range"),
        (frame(b"\x01\x05\x00\x02\x02"), "out of range"),
        (frame(b"\x02\x05" + b"x" * 65500), "exceeds"),
    ],
)
def test_server_packet_decoder_is_strict(data: bytes, why: str) -> None:
    with pytest.raises(MalformedPacket, match=why):
        decode_server_packet(data)


def test_client_packet_decoder_is_strict() -> None:
    assert decode_client_packet(frame(b"\x00pw")) == LoginRequest(b"pw")
    assert decode_client_packet(frame(b"\x01\x00")) == CommandRequest(0, b"")
    assert decode_client_packet(frame(b"\x02\x07")) == MessageAck(7)
    with pytest.raises(MalformedPacket, match="body"):
        decode_client_packet(frame(b"\x02\x07x"))
    with pytest.raises(MalformedPacket, match="sequence"):
        decode_client_packet(frame(b"\x01"))
    with pytest.raises(MalformedPacket):
        MessageAck.from_bytes(frame(b"\x01\x07"))
    with pytest.raises(MalformedPacket):
        LoginRequest.from_bytes(frame(b"\x01\x07"))


def test_each_from_bytes_checks_its_type() -> None:
    assert CommandRequest.from_bytes(frame(b"\x01\x02hi")) == CommandRequest(2, b"hi")
    assert MessagePacket.from_bytes(frame(b"\x02\x02hi")) == MessagePacket(2, b"hi")
    assert CommandReplyPart.from_bytes(frame(b"\x01\x02hi")) == CommandReplyPart(2, 1, 0, b"hi")
    assert LoginReply.from_bytes(frame(b"\x00\x00")) == LoginReply(False)
    for cls in (CommandRequest, MessagePacket, CommandReplyPart, LoginReply):
        with pytest.raises(MalformedPacket):
            cls.from_bytes(frame(b"\x00pw" if cls is not LoginReply else b"\x02\x00"))


def test_values_reject_local_misuse() -> None:
    with pytest.raises(ValueError, match="byte"):
        CommandRequest(256, b"")
    with pytest.raises(ValueError, match="range"):
        CommandReplyPart(0, 2, 2, b"")
    with pytest.raises(ValueError, match="range"):
        CommandReplyPart(0, 0, 0, b"")


def test_one_part_reply_starting_with_nul_round_trips() -> None:
    part = CommandReplyPart(1, 1, 0, b"\x00odd")
    assert decode_server_packet(part.to_bytes()) == part


seqs = st.integers(0, 255)
server_packets = st.one_of(
    st.builds(LoginReply, st.booleans()),
    st.builds(MessagePacket, seqs, st.binary(max_size=300)),
    st.integers(1, 255).flatmap(
        lambda total: st.builds(
            CommandReplyPart,
            seqs,
            st.just(total),
            st.integers(0, total - 1),
            st.binary(max_size=300),
        )
    ),
)
client_packets = st.one_of(
    st.builds(LoginRequest, st.binary(max_size=100)),
    st.builds(CommandRequest, seqs, st.binary(max_size=300)),
    st.builds(MessageAck, seqs),
)


@given(server_packets)
def test_server_packets_round_trip(packet: LoginReply | MessagePacket | CommandReplyPart) -> None:
    assert decode_server_packet(packet.to_bytes()) == packet


@given(client_packets)
def test_client_packets_round_trip(packet: LoginRequest | CommandRequest | MessageAck) -> None:
    assert decode_client_packet(packet.to_bytes()) == packet


# Random bytes almost never pass the CRC, so also build valid frames around random bodies.
any_datagram = st.one_of(st.binary(max_size=80), st.binary(max_size=80).map(frame))


@given(any_datagram)
def test_decoders_raise_only_malformed_packet(data: bytes) -> None:
    for decode in (decode_server_packet, decode_client_packet):
        with contextlib.suppress(MalformedPacket):
            decode(data)


@given(st.lists(any_datagram, max_size=30))
def test_client_protocol_never_raises(datagrams: list[bytes]) -> None:
    client = ClientProtocol()
    client.login("pw")
    for data in datagrams:
        events = client.receive(data)
        if client.state is ClientState.LOGGED_IN and client.in_flight < 3:
            client.start_command("x")
        assert all(isinstance(e, LoginResult | CommandReply | ServerMessage) for e in events)
        client.datagrams_to_send()


@given(st.lists(any_datagram, max_size=30))
def test_server_protocol_never_raises(datagrams: list[bytes]) -> None:
    server = ServerProtocol("pw", part_size=4)
    server.receive(frame(b"\x00pw"), ADDR, 0.0)
    for i, data in enumerate(datagrams):
        for event in server.receive(data, ADDR, float(i)):
            if isinstance(event, CommandReceived):
                server.reply(event.addr, event.seq, event.command * 3, float(i))
        server.tick(float(i))
        server.datagrams_to_send()


# --- client protocol -------------------------------------------------------------------------


def test_login_refused_and_commands_need_a_session() -> None:
    client = ClientProtocol()
    with pytest.raises(LocalProtocolError):
        client.start_command("players")
    assert client.login(b"pw") == frame(b"\x00pw")
    assert client.receive(frame(b"\x00\x00")) == [LoginResult(False)]
    assert client.state is ClientState.REFUSED
    with pytest.raises(LocalProtocolError):
        client.start_command("players")


def test_stray_login_reply_is_ignored() -> None:
    client = logged_in_client()
    assert client.receive(frame(b"\x00\x01")) == []
    assert client.unexpected == 1


def test_sequence_wraps_and_replies_go_to_their_command() -> None:
    client = logged_in_client()
    for n in range(600):
        seq = start(client, f"cmd {n}")
        assert seq == n % 256
        assert client.command_datagram(seq) == frame(bytes((0x01, seq)) + f"cmd {n}".encode())
        assert client.receive(frame(bytes((0x01, seq)) + b"r")) == [CommandReply(seq, "r")]
    assert client.in_flight == 0


def test_at_most_256_in_flight_and_busy_numbers_are_skipped() -> None:
    client = logged_in_client()
    seqs = [client.start_command("x") for _ in range(256)]
    assert seqs == list(range(256))
    assert client.start_command("x") is None
    client.receive(frame(b"\x01\x07"))  # seq 7 answered: the only free number
    assert client.start_command("y") == 7
    assert client.start_command("z") is None
    client.cancel_command(200)
    assert client.start_command("z") == 200


def test_interleaved_replies_are_not_mixed_up() -> None:
    client = logged_in_client()
    a, b = start(client, "a"), start(client, "b")
    assert client.receive(frame(bytes((0x01, b, 0, 2, 1)) + b"B2")) == []
    assert client.receive(frame(bytes((0x01, a)) + b"A")) == [CommandReply(a, "A")]
    assert client.receive(frame(bytes((0x01, b, 0, 2, 0)) + b"B1")) == [CommandReply(b, "B1B2")]
    assert client.receive(frame(bytes((0x01, a)) + b"again")) == []  # late duplicate
    assert client.unexpected == 1


def test_multipart_out_of_order_with_duplicates_and_a_split_character() -> None:
    client = logged_in_client()
    seq = start(client, "players")
    raw = "Максим (Lobby) 🙂".encode()
    parts = [raw[0:3], raw[3:23], raw[23:]]  # the second letter and the emoji are cut in two
    order = [2, 0, 2, 1]
    events = []
    for i in order:
        events += client.receive(frame(bytes((0x01, seq, 0, 3, i)) + parts[i]))
    assert events == [CommandReply(seq, "Максим (Lobby) 🙂")]


def test_reassembly_survives_a_resend_of_the_same_command() -> None:
    client = logged_in_client()
    seq = start(client, "bans")
    assert client.receive(frame(bytes((0x01, seq, 0, 2, 0)) + b"first ")) == []
    resent = client.command_datagram(seq)  # timeout: the transport resends these bytes
    assert resent == frame(bytes((0x01, seq)) + b"bans")
    assert client.receive(frame(bytes((0x01, seq, 0, 2, 1)) + b"second")) == [
        CommandReply(seq, "first second")
    ]


def test_part_count_change_restarts_reassembly() -> None:
    client = logged_in_client()
    seq = start(client, "x")
    client.receive(frame(bytes((0x01, seq, 0, 3, 0)) + b"old"))
    client.receive(frame(bytes((0x01, seq, 0, 2, 1)) + b"B"))
    assert client.receive(frame(bytes((0x01, seq, 0, 2, 0)) + b"A")) == [CommandReply(seq, "AB")]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    client = logged_in_client()
    seq = start(client, "x")
    assert client.receive(frame(bytes((0x01, seq)) + b"ok\xff")) == [CommandReply(seq, "ok\ufffd")]


def test_messages_are_acked_always_and_delivered_once() -> None:
    client = logged_in_client()
    assert client.receive(frame(b"\x02\x00hello")) == [ServerMessage(0, "hello")]
    assert client.datagrams_to_send() == [frame(b"\x02\x00")]
    assert client.receive(frame(b"\x02\x00hello")) == []
    assert client.datagrams_to_send() == [frame(b"\x02\x00")]  # duplicates are acked too
    assert client.duplicates == 1
    assert client.datagrams_to_send() == []


def test_dedup_window_forgets_old_numbers_so_wrapped_ones_are_new() -> None:
    client = logged_in_client()
    for n in range(600):
        assert client.receive(frame(bytes((0x02, n % 256)) + b"m")) == [ServerMessage(n % 256, "m")]
    assert client.duplicates == 0


def test_new_session_forgets_seen_messages() -> None:
    client = logged_in_client()
    client.receive(frame(b"\x02\x00one"))
    client.login("pw")
    client.receive(frame(b"\x00\x01"))
    assert client.receive(frame(b"\x02\x00two")) == [ServerMessage(0, "two")]


def test_messages_without_a_session_are_acked_not_delivered() -> None:
    client = ClientProtocol()
    assert client.receive(frame(b"\x02\x03x")) == []
    assert client.datagrams_to_send() == [frame(b"\x02\x03")]


def test_garbage_is_counted_not_raised() -> None:
    client = logged_in_client()
    for data in (b"", b"junk", frame(b"\x01\x00")[:-1] + b"\x01", frame(b"\x07")):
        assert client.receive(data) == []
    assert client.malformed == 4
    assert repr(client) == "<ClientProtocol logged in, 0 in flight>"


# --- client against server, in memory --------------------------------------------------------


class Pipe:
    """Carry datagrams between one client and one server object; `drop` decides losses."""

    def __init__(self, server: ServerProtocol, drop: list[bool] | None = None) -> None:
        self.server = server
        self.client = ClientProtocol()
        self.now = 0.0
        self.drop = list(drop or [])
        self.events: list[LoginResult | CommandReply | ServerMessage] = []

    def lost(self) -> bool:
        return self.drop.pop(0) if self.drop else False

    def to_server(self, data: bytes) -> None:
        if self.lost():
            return
        for event in self.server.receive(data, ADDR, self.now):
            if isinstance(event, CommandReceived):
                text = event.command.upper() if event.command != "big" else "é" * 500
                self.server.reply(ADDR, event.seq, text, self.now)
        self.to_client()

    def to_client(self) -> None:
        for data, addr in self.server.datagrams_to_send():
            assert addr == ADDR
            if self.lost():
                continue
            self.events += self.client.receive(data)
            for ack in self.client.datagrams_to_send():
                self.to_server(ack)


def test_client_and_server_objects_talk_past_seq_255() -> None:
    pipe = Pipe(ServerProtocol("pw", part_size=64))
    pipe.to_server(pipe.client.login("pw"))
    assert pipe.events == [
        LoginResult(True),
        ServerMessage(0, "RCon admin #0 (127.0.0.1:40000) logged in"),
    ]
    for n in range(520):
        seq = pipe.client.start_command(f"cmd {n}")
        assert seq is not None
        pipe.to_server(pipe.client.command_datagram(seq))
        assert pipe.events[-1] == CommandReply(n % 256, f"CMD {n}")
    seq = pipe.client.start_command("big")
    assert seq is not None
    pipe.to_server(pipe.client.command_datagram(seq))
    assert pipe.events[-1] == CommandReply(seq, "é" * 500)  # 1000 bytes in 16 parts
    assert pipe.server.unacked == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), max_size=400))
def test_client_and_server_objects_survive_any_loss_pattern(drop: list[bool]) -> None:
    """Resending the same datagram until answered always yields the right reply, once."""
    pipe = Pipe(ServerProtocol("pw", part_size=100), drop)
    login = pipe.client.login("pw")
    while pipe.client.state is not ClientState.LOGGED_IN:
        pipe.to_server(login)
    for n in range(40):
        text = "big" if n % 10 == 0 else f"c{n}"
        seq = pipe.client.start_command(text)
        assert seq is not None
        before = len(pipe.events)
        while pipe.client.in_flight:
            pipe.now += 0.5
            pipe.to_server(pipe.client.command_datagram(seq))
        replies = [e for e in pipe.events[before:] if isinstance(e, CommandReply)]
        assert replies == [CommandReply(seq, "é" * 500 if text == "big" else text.upper())]
    messages = [e for e in pipe.events if isinstance(e, ServerMessage)]
    assert len(messages) <= 1


def test_server_resends_unacked_messages_five_times_then_drops_the_admin() -> None:
    server = ServerProtocol("pw", resend_interval=2.0, resend_attempts=5)
    assert server.receive(frame(b"\x00pw"), ADDR, 0.0) == [AdminLoggedIn(ADDR, 0)]
    first = server.datagrams_to_send()
    assert [d for d, _ in first] == [
        LoginReply(True).to_bytes(),
        frame(b"\x02\x00RCon admin #0 (127.0.0.1:40000) logged in"),
    ]
    sends = 1
    events = []
    for t in range(1, 23):  # ticks every 0.5 s up to 11 s
        events += server.tick(t / 2)
        sends += len(server.datagrams_to_send())
    assert sends == 5
    assert events == [AdminDropped(ADDR, 0, "messages not acknowledged")]
    assert server.admins == []
    assert server.receive(frame(b"\x01\x00players"), ADDR, 12.0) == []  # not logged in: ignored
    assert server.ignored == 1


def test_server_forgets_admins_that_send_no_command() -> None:
    server = ServerProtocol("pw", idle_timeout=45.0)
    server.receive(frame(b"\x00pw"), ADDR, 0.0)
    server.receive(frame(b"\x02\x00"), ADDR, 1.0)  # an ack is not a command
    assert server.next_deadline() == 45.0
    server.receive(frame(b"\x01\x00"), ADDR, 40.0)  # keepalive
    assert server.tick(80.0) == []
    assert server.tick(85.5) == [AdminDropped(ADDR, 0, "idle timeout")]


def test_server_answers_a_resend_from_its_cache_without_rerunning() -> None:
    server = ServerProtocol("pw")
    server.receive(frame(b"\x00pw"), ADDR, 0.0)
    (event,) = server.receive(frame(b"\x01\x05kick 3"), ADDR, 1.0)
    assert isinstance(event, CommandReceived)
    assert server.receive(frame(b"\x01\x05kick 3"), ADDR, 1.1) == []  # not yet answered
    server.datagrams_to_send()
    server.reply(ADDR, 5, "", 1.2)
    assert server.datagrams_to_send() == [(frame(b"\x01\x05"), ADDR)]
    assert server.receive(frame(b"\x01\x05kick 3"), ADDR, 2.0) == []
    assert server.datagrams_to_send() == [(frame(b"\x01\x05"), ADDR)]
    server.tick(7.0)  # the cache entry expires
    assert len(server.receive(frame(b"\x01\x05kick 3"), ADDR, 7.5)) == 1


def test_server_login_failure_and_lowest_free_admin_slot() -> None:
    server = ServerProtocol("pw")
    other = ("127.0.0.1", 40001)
    third = ("127.0.0.1", 40002)
    assert server.receive(frame(b"\x00nope"), ADDR, 0.0) == [LoginRefused(ADDR)]
    assert server.datagrams_to_send() == [(frame(b"\x00\x00"), ADDR)]
    server.receive(frame(b"\x00pw"), ADDR, 0.0)
    server.receive(frame(b"\x00pw"), other, 0.0)
    sent = server.datagrams_to_send()
    # the second login is announced to both admins, with each one's own sequence number
    assert (frame(b"\x02\x01RCon admin #1 (127.0.0.1:40001) logged in"), ADDR) in sent
    assert (frame(b"\x02\x00RCon admin #1 (127.0.0.1:40001) logged in"), other) in sent
    server.tick(50.0)
    server.receive(frame(b"\x00pw"), third, 50.0)
    assert server.admins == [(0, third)]
    server.forget_all()
    assert server.admins == []


def test_server_splits_at_most_255_parts() -> None:
    server = ServerProtocol("pw", part_size=1)
    server.receive(frame(b"\x00pw"), ADDR, 0.0)
    server.receive(frame(b"\x01\x00x"), ADDR, 0.0)
    server.datagrams_to_send()
    server.reply(ADDR, 0, "y" * 600, 0.0)
    parts = [decode_server_packet(d) for d, _ in server.datagrams_to_send()]
    assert all(isinstance(p, CommandReplyPart) and p.total == len(parts) for p in parts)
    assert len(parts) <= 255
