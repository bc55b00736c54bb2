"""Source RCON packets and their codec: the wire format `<size:int32><id:int32><type:int32>
<body>\\0\\0` (little-endian, `size` counts everything after itself), a stream decoder that
never buffers more than one packet's declared size, and the check of a command's body.

Apart from the protocol core (`core.rcon.source`) because the bytes are tested on their own
and do not change with how a session matches replies to commands.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from core.rcon.errors import RconError

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "MAX_COMMAND_BYTES",
    "MAX_PACKET_SIZE",
    "MIN_PACKET_SIZE",
    "SERVERDATA_AUTH",
    "SERVERDATA_AUTH_RESPONSE",
    "SERVERDATA_EXECCOMMAND",
    "SERVERDATA_RESPONSE_VALUE",
    "LocalProtocolError",
    "Packet",
    "PacketDecoder",
    "RemoteProtocolError",
    "encode_command",
]

SERVERDATA_AUTH = 3
SERVERDATA_AUTH_RESPONSE = 2
SERVERDATA_EXECCOMMAND = 2
SERVERDATA_RESPONSE_VALUE = 0

MIN_PACKET_SIZE = 10
"""Smallest `size` field: id, type and the two NULs of an empty body."""

MAX_PACKET_SIZE = 16 * 1024
"""Largest `size` field we accept from a server. Minecraft splits replies every 4096 UTF-16
units, which is up to 12288 UTF-8 bytes; anything larger is not RCON."""

MAX_COMMAND_BYTES = 1446
"""Largest command body we send: Minecraft reads requests into a 1460-byte buffer and
drops the connection on anything longer (1460 - 14 bytes of framing)."""

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
_HEADER = struct.Struct("<iii")
_SIZE = struct.Struct("<i")


class LocalProtocolError(RconError, ValueError):
    """We were asked to send something the protocol cannot carry (our fault)."""


class RemoteProtocolError(RconError):
    """The server sent bytes that are not Source RCON (its fault); the connection is unusable."""


@dataclass(frozen=True, slots=True)
class Packet:
    """One RCON packet. The body is raw bytes: servers may split UTF-8 text mid-character."""

    id: int
    type: int
    body: bytes = b""

    def __post_init__(self) -> None:
        if not (INT32_MIN <= self.id <= INT32_MAX and INT32_MIN <= self.type <= INT32_MAX):
            raise LocalProtocolError("packet id and type must fit in a signed 32-bit integer")

    def __repr__(self) -> str:
        # An AUTH packet's body is the password: never show it.
        body = f"<{len(self.body)} bytes>" if self.type == SERVERDATA_AUTH else repr(self.body)
        return f"Packet(id={self.id}, type={self.type}, body={body})"

    @property
    def size(self) -> int:
        """The value of the wire `size` field."""
        return len(self.body) + MIN_PACKET_SIZE

    def to_bytes(self) -> bytes:
        return _HEADER.pack(self.size, self.id, self.type) + self.body + b"\0\0"

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Packet:
        """Decode exactly one whole packet (size prefix included), or raise RemoteProtocolError.

        The body may contain NUL bytes (Source's trailing `00 00 00 01` packet does); only the
        framing is checked.
        """
        data = bytes(data)
        if len(data) < 4 + MIN_PACKET_SIZE:
            raise RemoteProtocolError(f"packet of {len(data)} bytes is shorter than 14")
        size, packet_id, packet_type = _HEADER.unpack_from(data)
        if size != len(data) - 4:
            raise RemoteProtocolError(f"size field says {size} but {len(data) - 4} bytes follow")
        if size > MAX_PACKET_SIZE:
            raise RemoteProtocolError(f"packet size {size} is larger than {MAX_PACKET_SIZE}")
        if data[-2:] != b"\0\0":
            raise RemoteProtocolError("packet does not end with two NUL bytes")
        return cls(packet_id, packet_type, data[12:-2])


class PacketDecoder:
    """Turns a byte stream cut anywhere into packets.

    After a RemoteProtocolError the stream has lost its framing for good, so the decoder
    keeps raising; the transport drops the connection and starts a fresh decoder.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._error: str | None = None

    def feed(self, data: bytes) -> None:
        if self._error is None:  # a failed stream is never read again: keep nothing
            self._buffer += data

    def close(self, reason: str) -> None:
        """Stop decoding for good (the connection is being dropped) and free the buffer."""
        if self._error is None:
            self._error = reason
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a whole packet."""
        return len(self._buffer)

    def next_packet(self) -> Packet | None:
        """The next whole packet, None if more bytes are needed; RemoteProtocolError on garbage."""
        if self._error is not None:
            raise RemoteProtocolError(self._error)
        if len(self._buffer) < 4:
            return None
        (size,) = _SIZE.unpack_from(self._buffer)
        if not MIN_PACKET_SIZE <= size <= MAX_PACKET_SIZE:
            self.close(f"packet size {size} is outside {MIN_PACKET_SIZE}..{MAX_PACKET_SIZE}")
            raise RemoteProtocolError(self._error)
        if len(self._buffer) < 4 + size:
            return None
        raw = bytes(self._buffer[: 4 + size])
        del self._buffer[: 4 + size]
        try:
            return Packet.from_bytes(raw)
        except RemoteProtocolError as exc:
            self.close(str(exc))
            raise


def encode_command(command: str, max_bytes: int = MAX_COMMAND_BYTES) -> bytes:
    """The body for `command`, or LocalProtocolError if no server would run it as given."""
    body = command.encode("utf-8")
    if b"\0" in body:
        raise LocalProtocolError("a command cannot contain a NUL character")
    if len(body) > max_bytes:
        raise LocalProtocolError(
            f"command is {len(body)} bytes in UTF-8; the server accepts at most {max_bytes}"
        )
    return body
