"""Source RCON (TCP) protocol core, sans-IO: feed it bytes, drain events and bytes to send.

The wire format is `<size:int32><id:int32><type:int32><body>\\0\\0`, little-endian, where
`size` counts everything after itself (the packets and their codec are in
`core.rcon.source_packets`). Nothing here touches a socket, so the whole protocol
(login, id matching, multi-packet replies) is tested without a network, and the asyncio
transport in `source_client.py` stays small.

Two server families speak this protocol and differ where it matters:

* The Source engine reads a proper stream (several packets per read are fine), answers a
  login with an empty RESPONSE_VALUE before the AUTH_RESPONSE, and mirrors an empty
  RESPONSE_VALUE back followed by one more packet whose body is `00 00 00 01`.
* Minecraft handles one packet per `read()` of at most 1460 bytes and closes the
  connection when a read holds more or less than exactly one packet; it answers a login
  with the AUTH_RESPONSE only, and an empty RESPONSE_VALUE with `Unknown request 0`.

A reply split over several packets carries the command's id on each; its end is found by
sending an empty RESPONSE_VALUE with a fresh id after the command: every packet with the
command's id that arrives before the answer to that id belongs to the reply. By default
(`pipeline=False`) one command is on the wire at a time and its terminator goes out only
after the first reply packet, so Minecraft never sees two packets in one read; with
`pipeline=True` (Source servers only) commands and terminators are written back to back.

Memory is bounded whatever the server sends: one packet is at most `MAX_PACKET_SIZE` (a larger
declared size is refused before any of it is buffered), and one reply at most
`max_reply_bytes`. A reply crossing that cap ends its command with `ReplyTooLarge` and the
connection is abandoned: the server is still sending that reply, and with no way to know where
it ends the stream cannot be resynchronised, so the transport hangs up and starts afresh.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from dataclasses import dataclass, field

from core.rcon.source_packets import (
    INT32_MAX,
    MAX_COMMAND_BYTES,
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

__all__ = [
    "DEFAULT_MAX_REPLY_BYTES",
    "Authenticated",
    "AuthenticationFailed",
    "CommandReply",
    "Event",
    "ProtocolState",
    "ReplyTooLarge",
    "SourceRconProtocol",
]

_log = logging.getLogger(__name__)

DEFAULT_MAX_REPLY_BYTES = 4 << 20
"""One reply: Minecraft's largest outputs (`help`, a long `banlist`) are tens of kilobytes."""


@dataclass(frozen=True, slots=True)
class Authenticated:
    """The server accepted the password; commands can flow."""


@dataclass(frozen=True, slots=True)
class AuthenticationFailed:
    """The server answered with id -1: wrong password (or a command sent before login)."""


@dataclass(frozen=True, slots=True)
class CommandReply:
    """The whole reply to one command, all its packets joined."""

    request_id: int
    body: bytes

    @property
    def text(self) -> str:
        """The reply as text; joined before decoding since Source splits mid-character."""
        return self.body.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class ReplyTooLarge:
    """The reply to `request_id` crossed `limit` bytes (`size` with the last packet): that
    command failed, and the connection is abandoned (see the module docstring)."""

    request_id: int
    size: int
    limit: int


Event = Authenticated | AuthenticationFailed | CommandReply | ReplyTooLarge


class ProtocolState(enum.Enum):
    NEW = "new"
    AUTHENTICATING = "authenticating"
    READY = "ready"
    REFUSED = "refused"


@dataclass(slots=True)
class _Request:
    command_id: int
    body: bytes
    terminator_id: int | None = None
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0


class SourceRconProtocol:
    """The client side of one connection: issues ids, logs in, matches replies to commands.

    Commands may be submitted at any time (even before login); they are written once the
    login succeeded, one at a time unless `pipeline` is set.
    """

    def __init__(
        self,
        *,
        pipeline: bool = False,
        max_command_bytes: int = MAX_COMMAND_BYTES,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        first_id: int = 1,
    ) -> None:
        if not 1 <= first_id <= INT32_MAX:
            raise ValueError("first_id must be a positive 32-bit integer")
        if max_reply_bytes < 1:
            raise ValueError("max_reply_bytes must be positive")
        self.pipeline = pipeline
        self.max_command_bytes = max_command_bytes
        self.max_reply_bytes = max_reply_bytes
        self.replies_too_large = 0
        """Replies cut off at `max_reply_bytes` (each also abandons the connection)."""
        self._abandoned: str | None = None
        self.state = ProtocolState.NEW
        self._next_id = first_id
        self._auth_id: int | None = None
        self._decoder = PacketDecoder()
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self._waiting: dict[int, _Request] = {}  # submitted, not written yet (ordered)
        self._by_command: dict[int, _Request] = {}  # written, reply not complete
        self._by_terminator: dict[int, _Request] = {}

    @property
    def pending(self) -> int:
        """Commands submitted whose reply is not complete yet."""
        return len(self._waiting) + len(self._by_command)

    @property
    def abandoned(self) -> bool:
        """True once a reply crossed its cap: the connection must be dropped."""
        return self._abandoned is not None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a whole packet."""
        return self._decoder.buffered

    @property
    def buffered_reply_bytes(self) -> int:
        """Bytes of replies being gathered."""
        return sum(request.size for request in self._by_command.values())

    def login(self, password: str) -> None:
        if self.state is not ProtocolState.NEW:
            raise LocalProtocolError("login() may only be called once per connection")
        body = password.encode("utf-8")
        if b"\0" in body or len(body) > self.max_command_bytes:
            raise LocalProtocolError("the password contains a NUL character or is too long")
        self._auth_id = self._allocate_id()
        self._write(Packet(self._auth_id, SERVERDATA_AUTH, body))
        self.state = ProtocolState.AUTHENTICATING

    def send_command(self, command: str) -> int:
        """Queue `command`; returns the id its CommandReply will carry."""
        if self.state is ProtocolState.REFUSED:
            raise LocalProtocolError("the server refused the login; this connection is dead")
        if self._abandoned is not None:
            raise RemoteProtocolError(f"the connection was abandoned: {self._abandoned}")
        body = encode_command(command, self.max_command_bytes)
        request = _Request(self._allocate_id(), body)
        self._waiting[request.command_id] = request
        self._pump()
        return request.command_id

    def cancel(self, request_id: int) -> bool:
        """Withdraw a command not written yet (its caller gave up); True if it was withdrawn.

        A command already on the wire cannot be recalled: its reply is still consumed, so it
        can never be mistaken for another command's.
        """
        return self._waiting.pop(request_id, None) is not None

    def receive_data(self, data: bytes) -> None:
        self._decoder.feed(data)

    def next_event(self) -> Event | None:
        """The next event, None when more bytes are needed; RemoteProtocolError on garbage."""
        while not self._events:
            if self._abandoned is not None:
                return None
            packet = self._decoder.next_packet()
            if packet is None:
                return None
            self._handle(packet)
        return self._events.popleft()

    def data_to_send(self) -> bytes:
        """Bytes the transport must write now (may be empty). Contains the password once."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def _handle(self, packet: Packet) -> None:
        if packet.type == SERVERDATA_AUTH_RESPONSE and packet.id == -1:
            self.state = ProtocolState.REFUSED
            self._waiting.clear()
            self._events.append(AuthenticationFailed())
            return
        if self.state is ProtocolState.AUTHENTICATING:
            if packet.id == self._auth_id and packet.type == SERVERDATA_AUTH_RESPONSE:
                self.state = ProtocolState.READY
                self._events.append(Authenticated())
                self._pump()
                return
        elif self.state is ProtocolState.READY:
            request = self._by_command.get(packet.id)
            if request is not None:
                request.size += len(packet.body)
                if request.size > self.max_reply_bytes:
                    self._abandon(request)
                    return
                request.chunks.append(packet.body)
                if request.terminator_id is None:
                    self._send_terminator(request)
                return
            request = self._by_terminator.pop(packet.id, None)
            if request is not None:
                del self._by_command[request.command_id]
                self._events.append(CommandReply(request.command_id, b"".join(request.chunks)))
                self._pump()
                return
        # Source's empty packet before AUTH_RESPONSE, its `00 00 00 01` trailer after a
        # mirror, late packets after a login refusal: expected, and not ours to act on.
        _log.debug("ignoring %r in state %s", packet, self.state.value)

    def _abandon(self, request: _Request) -> None:
        """Fail `request` for its size and stop reading: nothing later can be trusted to
        start at a packet boundary of another reply."""
        self.replies_too_large += 1
        reason = f"the reply to #{request.command_id} crossed {self.max_reply_bytes} bytes"
        self._abandoned = reason
        self._events.append(ReplyTooLarge(request.command_id, request.size, self.max_reply_bytes))
        self._waiting.clear()
        self._by_command.clear()
        self._by_terminator.clear()
        self._decoder.close(reason)
        self._out.clear()

    def _pump(self) -> None:
        """Write waiting commands: all of them when pipelining, else one when the wire is idle."""
        if self.state is not ProtocolState.READY:
            return
        while self._waiting and (self.pipeline or not self._by_command):
            command_id = next(iter(self._waiting))
            request = self._waiting.pop(command_id)
            self._by_command[command_id] = request
            self._write(Packet(command_id, SERVERDATA_EXECCOMMAND, request.body))
            if self.pipeline:
                self._send_terminator(request)

    def _send_terminator(self, request: _Request) -> None:
        request.terminator_id = self._allocate_id()
        self._by_terminator[request.terminator_id] = request
        self._write(Packet(request.terminator_id, SERVERDATA_RESPONSE_VALUE))

    def _write(self, packet: Packet) -> None:
        self._out += packet.to_bytes()

    def _allocate_id(self) -> int:
        """Positive ids, wrapping before 2**31 and skipping any still in use (never -1)."""
        while True:
            candidate = self._next_id
            self._next_id = candidate + 1 if candidate < INT32_MAX else 1
            if (
                candidate != self._auth_id
                and candidate not in self._waiting
                and candidate not in self._by_command
                and candidate not in self._by_terminator
            ):
                return candidate
