"""BattlEye RCon (UDP, protocol v2) as a sans-IO core: the client's session.

Nothing here touches a socket or an event loop. Feed datagrams in, take typed events and the
datagrams to send out. That keeps the wire format testable byte for byte and lets the asyncio
transport stay thin. The packets and their codec are in `core.rcon.battleye_packets`; the
server side (what the fake game servers speak) builds on them in `core.rcon.battleye_server`.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from dataclasses import dataclass
from typing import TypeAlias

from core.rcon.battleye_packets import (
    ACKS,
    LoginReply,
    LoginRequest,
    MalformedPacket,
    PacketType,
    check_frame,
    frame,
    parse_reply,
)
from core.rcon.battleye_reassembly import (
    DEFAULT_MAX_BUFFERED_BYTES,
    DEFAULT_MAX_REPLY_BYTES,
    Reassembler,
    ReplyTooLarge,
)

__all__ = [
    "ClientProtocol",
    "ClientState",
    "CommandReply",
    "Event",
    "LocalProtocolError",
    "LoginResult",
    "ReplyTooLarge",
    "ServerMessage",
]

_log = logging.getLogger(__name__)


class LocalProtocolError(RuntimeError):
    """Local misuse of a protocol object, e.g. a command before login (our fault)."""


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


# --- client ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoginResult:
    ok: bool


@dataclass(frozen=True, slots=True)
class CommandReply:
    seq: int
    text: str


@dataclass(frozen=True, slots=True)
class ServerMessage:
    seq: int
    text: str


Event: TypeAlias = LoginResult | CommandReply | ServerMessage | ReplyTooLarge


class ClientState(enum.Enum):
    IDLE = "idle"
    LOGGING_IN = "logging in"
    LOGGED_IN = "logged in"
    REFUSED = "refused"


class ClientProtocol:
    """Client side of one RCon session.

    `login()` starts a session, `start_command()` puts a command in flight under a free
    sequence number, `receive()` turns a datagram into events, `datagrams_to_send()` drains
    the acknowledgements to send. Bad input is counted in `malformed`, never raised.

    Multipart replies are held within `max_reply_bytes` each and `max_buffered_bytes` in all;
    a reply crossing a cap ends its command with a `ReplyTooLarge` event (see
    `core.rcon.battleye_reassembly` for how answers to a resend are told apart).
    """

    def __init__(
        self,
        *,
        dedup_window: int = 128,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
    ) -> None:
        if not 1 <= dedup_window <= 255:
            raise ValueError("dedup_window must be within 1..255")
        self.state = ClientState.IDLE
        self.malformed = 0
        """Datagrams dropped because they were not valid server packets."""
        self.unexpected = 0
        """Valid packets that matched nothing (late reply, stray login reply)."""
        self.duplicates = 0
        """Server messages seen again (acknowledged, not delivered twice)."""
        self._window = dedup_window
        self._inflight: dict[int, bytes] = {}  # seq -> its command datagram (resent as is)
        self._parts = Reassembler(max_reply_bytes, max_buffered_bytes)
        self._next_seq = 0
        self._seen: set[int] = set()
        self._seen_order: deque[int] = deque()
        self._outbox: list[bytes] = []

    def __repr__(self) -> str:
        return f"<ClientProtocol {self.state.value}, {len(self._inflight)} in flight>"

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    @property
    def buffered_bytes(self) -> int:
        """Bytes of multipart replies held while they are assembled."""
        return self._parts.buffered

    @property
    def replies_too_large(self) -> int:
        """Replies dropped because they crossed a byte cap (their commands failed)."""
        return self._parts.too_large

    @property
    def part_conflicts(self) -> int:
        """Times a part repeated an index with other bytes (two different answers)."""
        return self._parts.conflicts

    def login(self, password: str | bytes) -> bytes:
        """Start a new session: forget commands and seen messages; return the login datagram."""
        self.reset()
        self.state = ClientState.LOGGING_IN
        raw = password.encode() if isinstance(password, str) else password
        return LoginRequest(raw).to_bytes()

    def reset(self) -> None:
        """Back to no session (the old session's sequence numbers mean nothing any more)."""
        self.state = ClientState.IDLE
        self._inflight.clear()
        self._parts.clear()
        self._next_seq = 0
        self._seen.clear()
        self._seen_order.clear()
        self._outbox.clear()

    def start_command(self, command: str | bytes) -> int | None:
        """Put a command in flight; return its sequence number, or None if all 256 are busy.

        Numbers are handed out in ring order (wrapping 255 -> 0) and one still in flight is
        skipped, so a reply can never be matched to the wrong command.
        """
        if self.state is not ClientState.LOGGED_IN:
            raise LocalProtocolError(f"cannot send a command while {self.state.value}")
        inflight = self._inflight
        if len(inflight) >= 256:
            return None
        seq = self._next_seq
        while seq in inflight:
            seq = (seq + 1) & 0xFF
        self._next_seq = (seq + 1) & 0xFF
        raw = command.encode() if isinstance(command, str) else command
        inflight[seq] = frame(bytes((0xFF, 0x01, seq)) + raw)
        return seq

    def command_datagram(self, seq: int) -> bytes:
        """The datagram of the command in flight under `seq` (the same bytes for a resend)."""
        return self._inflight[seq]

    def cancel_command(self, seq: int) -> None:
        """Stop waiting for `seq` (timed out or abandoned); a late reply is then ignored."""
        self._inflight.pop(seq, None)
        self._parts.discard(seq)

    def datagrams_to_send(self) -> list[bytes]:
        out = self._outbox
        if out:
            self._outbox = []
        return out

    def receive(self, data: bytes) -> list[Event]:
        """Handle one datagram from the server and return the events it completes."""
        try:
            ptype = check_frame(data)
            if ptype == PacketType.COMMAND:
                if len(data) < 9:
                    raise MalformedPacket("missing sequence number")
                return self._on_reply(data)
            if ptype == PacketType.MESSAGE:
                if len(data) < 9:
                    raise MalformedPacket("missing sequence number")
                return self._on_message(data[8], data)
            return self._on_login(LoginReply.from_bytes(data))
        except MalformedPacket as exc:
            self.malformed += 1
            _log.debug("dropped malformed datagram (%d bytes): %s", len(data), exc)
            return []

    def _on_login(self, reply: LoginReply) -> list[Event]:
        if self.state is not ClientState.LOGGING_IN:
            self.unexpected += 1
            return []
        self.state = ClientState.LOGGED_IN if reply.ok else ClientState.REFUSED
        return [LoginResult(reply.ok)]

    def _on_reply(self, data: bytes) -> list[Event]:
        seq = data[8]
        if len(data) == 9 or data[9] != 0:  # the common case: a one-part reply
            if self._inflight.pop(seq, None) is None:
                self.unexpected += 1
                return []
            if self._parts:
                self._parts.discard(seq)
            return [CommandReply(seq, _text(data[9:]))]
        part = parse_reply(data)
        if seq not in self._inflight:
            self.unexpected += 1
            return []
        done = self._parts.add(seq, part.total, part.index, part.data)
        if done is None:
            return []
        del self._inflight[seq]
        if isinstance(done, ReplyTooLarge):
            _log.debug("reply %d dropped at %d bytes (cap %d)", seq, done.size, done.limit)
            return [done]
        return [CommandReply(seq, _text(done))]

    def _on_message(self, seq: int, data: bytes) -> list[Event]:
        self._outbox.append(ACKS[seq])  # always, even for a duplicate: our ack may be lost
        if self.state is ClientState.IDLE or self.state is ClientState.REFUSED:
            return []
        if seq in self._seen:
            self.duplicates += 1
            return []
        order = self._seen_order
        if len(order) >= self._window:
            self._seen.discard(order.popleft())
        order.append(seq)
        self._seen.add(seq)
        return [ServerMessage(seq, _text(data[9:]))]
