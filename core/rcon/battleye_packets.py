"""BattlEye RCon (UDP, protocol v2) packets and their codec: framing, checksum, and the six
packet types, each an immutable value with a strict `from_bytes`.

Apart from the client protocol (`core.rcon.battleye`) because the server side
(`core.rcon.battleye_server`) speaks the same packets, and the wire format is tested byte
for byte on its own.
"""

from __future__ import annotations

import enum
import zlib
from dataclasses import dataclass, field
from typing import Final, TypeAlias

__all__ = [
    "ACKS",
    "MAX_DATAGRAM",
    "ClientPacket",
    "CommandReplyPart",
    "CommandRequest",
    "LoginReply",
    "LoginRequest",
    "MalformedPacket",
    "MessageAck",
    "MessagePacket",
    "PacketType",
    "ServerPacket",
    "check_frame",
    "decode_client_packet",
    "decode_server_packet",
    "frame",
    "parse_reply",
]

MAX_DATAGRAM: Final = 65507
"""Largest UDP payload; anything bigger is not a BattlEye packet."""

_MAGIC: Final = b"BE"
_crc32 = zlib.crc32


class PacketType(enum.IntEnum):
    LOGIN = 0x00
    COMMAND = 0x01
    MESSAGE = 0x02


class MalformedPacket(ValueError):
    """Remote garbage: the datagram is not a valid BattlEye packet (the peer's fault)."""


def frame(body: bytes) -> bytes:
    """Prefix `body` (which starts at the 0xFF byte) with 'BE' and its CRC32."""
    return _MAGIC + _crc32(body).to_bytes(4, "little") + body


def check_frame(data: bytes) -> int:
    """Validate the header and CRC of `data`; return the packet type byte."""
    n = len(data)
    if n < 8:
        raise MalformedPacket(f"datagram of {n} bytes is shorter than a header")
    if n > MAX_DATAGRAM:
        raise MalformedPacket(f"datagram of {n} bytes exceeds {MAX_DATAGRAM}")
    if data[0] != 0x42 or data[1] != 0x45:
        raise MalformedPacket("missing 'BE' magic")
    if data[6] != 0xFF:
        raise MalformedPacket("missing 0xFF after the checksum")
    if _crc32(memoryview(data)[6:]) != int.from_bytes(data[2:6], "little"):
        raise MalformedPacket("CRC32 mismatch")
    ptype = data[7]
    if ptype > 2:
        raise MalformedPacket(f"unknown packet type 0x{ptype:02x}")
    return ptype


def _check_seq(seq: int) -> None:
    if not 0 <= seq <= 255:
        raise ValueError(f"sequence number {seq} is not a byte")


# --- packets ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoginRequest:
    """Client → server: `0x00 | password`. The password never shows in the repr."""

    password: bytes = field(repr=False)

    def to_bytes(self) -> bytes:
        return frame(b"\xff\x00" + self.password)

    @classmethod
    def from_bytes(cls, data: bytes) -> LoginRequest:
        if check_frame(data) != PacketType.LOGIN:
            raise MalformedPacket("not a login packet")
        return cls(bytes(data[8:]))


@dataclass(frozen=True, slots=True)
class LoginReply:
    """Server → client: `0x00 | 0x01` (accepted) or `0x00 | 0x00` (refused)."""

    ok: bool

    def to_bytes(self) -> bytes:
        return _LOGIN_OK if self.ok else _LOGIN_FAIL

    @classmethod
    def from_bytes(cls, data: bytes) -> LoginReply:
        if check_frame(data) != PacketType.LOGIN:
            raise MalformedPacket("not a login packet")
        if len(data) != 9 or data[8] > 1:
            raise MalformedPacket("login reply must be exactly one byte 0 or 1")
        return cls(data[8] == 1)


_LOGIN_OK: Final = frame(b"\xff\x00\x01")
_LOGIN_FAIL: Final = frame(b"\xff\x00\x00")


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """Client → server: `0x01 | seq | command`; an empty command is the keepalive."""

    seq: int
    command: bytes

    def __post_init__(self) -> None:
        _check_seq(self.seq)

    def to_bytes(self) -> bytes:
        return frame(bytes((0xFF, 0x01, self.seq)) + self.command)

    @classmethod
    def from_bytes(cls, data: bytes) -> CommandRequest:
        if check_frame(data) != PacketType.COMMAND or len(data) < 9:
            raise MalformedPacket("not a command packet")
        return cls(data[8], bytes(data[9:]))


@dataclass(frozen=True, slots=True)
class CommandReplyPart:
    """Server → client: `0x01 | seq | [0x00 | count | index] | text`.

    A one-part reply has no sub-header (total=1, index=0) unless its text itself starts with
    0x00, in which case the encoder writes `0x00 01 00` so that decoding gives the value back.
    """

    seq: int
    total: int
    index: int
    data: bytes

    def __post_init__(self) -> None:
        _check_seq(self.seq)
        if not 1 <= self.total <= 255 or not 0 <= self.index < self.total:
            raise ValueError(f"part {self.index} of {self.total} is out of range")

    def to_bytes(self) -> bytes:
        if self.total == 1 and not self.data.startswith(b"\x00"):
            return frame(bytes((0xFF, 0x01, self.seq)) + self.data)
        head = bytes((0xFF, 0x01, self.seq, 0x00, self.total, self.index))
        return frame(head + self.data)

    @classmethod
    def from_bytes(cls, data: bytes) -> CommandReplyPart:
        if check_frame(data) != PacketType.COMMAND or len(data) < 9:
            raise MalformedPacket("not a command reply")
        return parse_reply(data)


def parse_reply(data: bytes) -> CommandReplyPart:
    """Body of a command reply whose frame was already checked."""
    seq = data[8]
    if len(data) > 9 and data[9] == 0:
        if len(data) < 12:
            raise MalformedPacket("truncated multipart sub-header")
        total, index = data[10], data[11]
        if total == 0 or index >= total:
            raise MalformedPacket(f"part {index} of {total} is out of range")
        return CommandReplyPart(seq, total, index, bytes(data[12:]))
    return CommandReplyPart(seq, 1, 0, bytes(data[9:]))


@dataclass(frozen=True, slots=True)
class MessagePacket:
    """Server → client: `0x02 | seq | text`, a console line the client must acknowledge."""

    seq: int
    data: bytes

    def __post_init__(self) -> None:
        _check_seq(self.seq)

    def to_bytes(self) -> bytes:
        return frame(bytes((0xFF, 0x02, self.seq)) + self.data)

    @classmethod
    def from_bytes(cls, data: bytes) -> MessagePacket:
        if check_frame(data) != PacketType.MESSAGE or len(data) < 9:
            raise MalformedPacket("not a server message")
        return cls(data[8], bytes(data[9:]))


@dataclass(frozen=True, slots=True)
class MessageAck:
    """Client → server: `0x02 | seq`, the acknowledgement of a server message."""

    seq: int

    def __post_init__(self) -> None:
        _check_seq(self.seq)

    def to_bytes(self) -> bytes:
        return ACKS[self.seq]

    @classmethod
    def from_bytes(cls, data: bytes) -> MessageAck:
        if check_frame(data) != PacketType.MESSAGE or len(data) != 9:
            raise MalformedPacket("not a message acknowledgement")
        return cls(data[8])


ACKS: Final = tuple(frame(bytes((0xFF, 0x02, s))) for s in range(256))

ClientPacket: TypeAlias = LoginRequest | CommandRequest | MessageAck
ServerPacket: TypeAlias = LoginReply | CommandReplyPart | MessagePacket


def decode_server_packet(data: bytes) -> ServerPacket:
    """Parse a datagram sent by a server; raise `MalformedPacket` for anything else."""
    ptype = check_frame(data)
    if ptype == PacketType.LOGIN:
        return LoginReply.from_bytes(data)
    if len(data) < 9:
        raise MalformedPacket("missing sequence number")
    if ptype == PacketType.COMMAND:
        return parse_reply(data)
    return MessagePacket(data[8], bytes(data[9:]))


def decode_client_packet(data: bytes) -> ClientPacket:
    """Parse a datagram sent by a client; raise `MalformedPacket` for anything else."""
    ptype = check_frame(data)
    if ptype == PacketType.LOGIN:
        return LoginRequest(bytes(data[8:]))
    if len(data) < 9:
        raise MalformedPacket("missing sequence number")
    if ptype == PacketType.COMMAND:
        return CommandRequest(data[8], bytes(data[9:]))
    if len(data) != 9:
        raise MalformedPacket("message acknowledgement with a body")
    return MessageAck(data[8])
