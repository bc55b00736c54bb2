"""BattlEye RCon (UDP, protocol v2), server side: the sans-IO protocol a game server speaks.

Why it exists apart from `core.rcon.battleye`: Languard itself only ever acts as a client, so
the packets, the codec and the client protocol stay there, and the server half (sessions
per admin address, multipart replies, resent server messages, idle and deaf admins dropped)
lives here for the fake game servers and the protocol tests. It builds on the same packet
types; like the client, it touches no socket and takes time as an argument.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Final, TypeAlias

from core.rcon.battleye_packets import (
    CommandReplyPart,
    LoginReply,
    LoginRequest,
    MalformedPacket,
    MessageAck,
    MessagePacket,
    decode_client_packet,
)

__all__ = [
    "Address",
    "AdminDropped",
    "AdminLoggedIn",
    "CommandReceived",
    "LoginRefused",
    "ServerEvent",
    "ServerProtocol",
]

_log = logging.getLogger(__name__)

_LOGIN_OK: Final = LoginReply(True).to_bytes()
_LOGIN_FAIL: Final = LoginReply(False).to_bytes()


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


Address: TypeAlias = tuple[str, int]


@dataclass(frozen=True, slots=True)
class AdminLoggedIn:
    addr: Address
    admin_id: int


@dataclass(frozen=True, slots=True)
class LoginRefused:
    addr: Address


@dataclass(frozen=True, slots=True)
class CommandReceived:
    addr: Address
    admin_id: int
    seq: int
    command: str


@dataclass(frozen=True, slots=True)
class AdminDropped:
    addr: Address
    admin_id: int
    reason: str


ServerEvent: TypeAlias = AdminLoggedIn | LoginRefused | CommandReceived | AdminDropped


class _Outgoing:
    __slots__ = ("datagram", "due", "sends")

    def __init__(self, datagram: bytes, due: float) -> None:
        self.datagram = datagram
        self.due = due
        self.sends = 1


class _Session:
    __slots__ = ("addr", "admin_id", "answered", "asked", "last_command", "next_seq", "unacked")

    def __init__(self, addr: Address, admin_id: int, now: float) -> None:
        self.addr = addr
        self.admin_id = admin_id
        self.last_command = now
        self.next_seq = 0
        self.unacked: dict[int, _Outgoing] = {}
        self.asked: dict[int, bytes] = {}  # seq -> command awaiting reply()
        self.answered: dict[int, tuple[bytes, float, list[bytes]]] = {}  # repeat cache


class ServerProtocol:
    """Server side: authenticated admins keyed by address, replies, messages with resends.

    Time is an argument (`now`, seconds on any monotonic clock). Call `tick(now)` now and then
    (see `next_deadline()`) to resend unacknowledged messages and drop idle or deaf admins.
    A command repeated with the same sequence number and bytes within `repeat_window` seconds
    is a client's resend: it gets the cached reply and is not run again.
    """

    def __init__(
        self,
        password: str,
        *,
        part_size: int = 1400,
        idle_timeout: float = 45.0,
        resend_interval: float = 2.0,
        resend_attempts: int = 5,
        repeat_window: float = 5.0,
    ) -> None:
        if part_size < 1 or resend_attempts < 1:
            raise ValueError("part_size and resend_attempts must be positive")
        self._password = password.encode()
        self.part_size = part_size
        self.idle_timeout = idle_timeout
        self.resend_interval = resend_interval
        self.resend_attempts = resend_attempts
        self.repeat_window = repeat_window
        self.malformed = 0
        self.ignored = 0
        """Valid packets from addresses that are not logged in (no answer, by design)."""
        self._sessions: dict[Address, _Session] = {}
        self._outbox: list[tuple[bytes, Address]] = []

    def __repr__(self) -> str:
        return f"<ServerProtocol {len(self._sessions)} admins>"

    @property
    def admins(self) -> list[tuple[int, Address]]:
        """Logged-in admins as (admin id, address), by id."""
        return sorted((s.admin_id, s.addr) for s in self._sessions.values())

    @property
    def unacked(self) -> int:
        """Server messages sent and not yet acknowledged, over all admins."""
        return sum(len(s.unacked) for s in self._sessions.values())

    def admin_id(self, addr: Address) -> int | None:
        session = self._sessions.get(addr)
        return None if session is None else session.admin_id

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        out = self._outbox
        if out:
            self._outbox = []
        return out

    def forget_all(self) -> None:
        """Forget every session, as a restarted server would."""
        self._sessions.clear()
        self._outbox.clear()

    def receive(self, data: bytes, addr: Address, now: float) -> list[ServerEvent]:
        """Handle one datagram from `addr`; bad ones are counted in `malformed` and dropped."""
        try:
            packet = decode_client_packet(data)
        except MalformedPacket as exc:
            self.malformed += 1
            _log.debug("dropped malformed datagram from %s: %s", addr, exc)
            return []
        if isinstance(packet, LoginRequest):
            return self._on_login(packet, addr, now)
        session = self._sessions.get(addr)
        if session is None:
            self.ignored += 1
            return []
        if isinstance(packet, MessageAck):
            session.unacked.pop(packet.seq, None)
            return []
        session.last_command = now
        seq = packet.seq
        cached = session.answered.get(seq)
        fresh = cached is not None and now - cached[1] <= self.repeat_window
        if cached is not None and fresh and cached[0] == packet.command:
            self._outbox.extend((d, addr) for d in cached[2])  # a resend: answer, don't rerun
            return []
        if session.asked.get(seq) == packet.command:
            return []  # still being answered
        session.asked[seq] = packet.command
        return [CommandReceived(addr, session.admin_id, seq, _text(packet.command))]

    def _on_login(self, packet: LoginRequest, addr: Address, now: float) -> list[ServerEvent]:
        if not hmac.compare_digest(packet.password, self._password):
            self._outbox.append((_LOGIN_FAIL, addr))
            return [LoginRefused(addr)]
        self._sessions.pop(addr, None)  # a re-login from the same address starts over
        used = {s.admin_id for s in self._sessions.values()}
        admin_id = next(i for i in range(len(used) + 1) if i not in used)
        self._sessions[addr] = _Session(addr, admin_id, now)
        self._outbox.append((_LOGIN_OK, addr))
        self.broadcast(f"RCon admin #{admin_id} ({addr[0]}:{addr[1]}) logged in", now)
        return [AdminLoggedIn(addr, admin_id)]

    def reply(self, addr: Address, seq: int, text: str, now: float) -> None:
        """Answer command `seq` of `addr`, split into parts of at most `part_size` bytes."""
        session = self._sessions.get(addr)
        if session is None:
            return
        command = session.asked.pop(seq, b"")
        raw = text.encode()
        size = max(self.part_size, -(-len(raw) // 255))  # the part count is one byte
        if len(raw) <= size:
            datagrams = [CommandReplyPart(seq, 1, 0, raw).to_bytes()]
        else:
            chunks = [raw[i : i + size] for i in range(0, len(raw), size)]
            total = len(chunks)
            datagrams = [
                CommandReplyPart(seq, total, i, c).to_bytes() for i, c in enumerate(chunks)
            ]
        session.answered[seq] = (command, now, datagrams)
        self._outbox.extend((d, addr) for d in datagrams)

    def send_message(self, addr: Address, text: str, now: float) -> None:
        """Send a server message to one admin; it is resent until acknowledged."""
        session = self._sessions.get(addr)
        if session is None:
            return
        seq = session.next_seq
        session.next_seq = (seq + 1) & 0xFF
        datagram = MessagePacket(seq, text.encode()).to_bytes()
        session.unacked[seq] = _Outgoing(datagram, now + self.resend_interval)
        self._outbox.append((datagram, addr))

    def broadcast(self, text: str, now: float) -> None:
        """Send a server message to every logged-in admin."""
        for addr in list(self._sessions):
            self.send_message(addr, text, now)

    def next_deadline(self) -> float | None:
        """The earliest time at which `tick()` has something to do, if any."""
        times = [s.last_command + self.idle_timeout for s in self._sessions.values()]
        times += [o.due for s in self._sessions.values() for o in s.unacked.values()]
        return min(times, default=None)

    def tick(self, now: float) -> list[ServerEvent]:
        """Resend due messages; drop admins idle too long or deaf to five sends."""
        events: list[ServerEvent] = []
        for addr, session in list(self._sessions.items()):
            reason = None
            if now - session.last_command > self.idle_timeout:
                reason = "idle timeout"
            for out in session.unacked.values():
                if reason is None and now >= out.due:
                    if out.sends >= self.resend_attempts:
                        reason = "messages not acknowledged"
                        break
                    out.sends += 1
                    out.due = now + self.resend_interval
                    self._outbox.append((out.datagram, addr))
            if reason is not None:
                del self._sessions[addr]
                events.append(AdminDropped(addr, session.admin_id, reason))
                continue
            stale = [s for s, c in session.answered.items() if now - c[1] > self.repeat_window]
            for s in stale:
                del session.answered[s]
        return events
