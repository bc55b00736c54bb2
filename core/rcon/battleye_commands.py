"""The commands of a BattlEye client: waiting, in flight, resent until answered or out of time.

Why apart from the client: the session (login, keepalive, reconnect) and the commands
(sequence numbers, resends, deadlines) change for different reasons. Timers are plain
`loop.call_at` handles rather than tasks, so one command costs a future and a timer.

Resending is the only way to recover a lost reply part: BERConProtocol.txt leaves loss to
the client and has no per-part request (reference §1.3 [V:S1]); the server answers a command
sent again under the same sequence number with every part again, from a cache or by running
it anew (undocumented, §1.3 [I]; `core.rcon.battleye_reassembly` copes with either). So a
command is resent while any part is missing, until its deadline, with capped backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Final

from core.rcon.battleye import ClientProtocol, ReplyTooLarge
from core.rcon.errors import RconError, RconReplyTooLarge, RconTimeout

__all__ = ["SILENT_SENDS", "CommandQueue", "PendingCommand", "verb"]

_log = logging.getLogger(__name__)

SILENT_SENDS: Final = 6
"""Sends of one command in a row that nothing at all came back for, before the session counts
as lost (fewer if the OS reported the port closed). With 28% of attempts unanswered (20% of
replies and 10% of commands lost) six in a row happen once in ~2,000 commands, and even then
the command fails only if a whole login round goes unanswered too."""


def verb(command: bytes) -> str:
    """The command's first word, the only part safe to log (`RConPassword x` holds a secret)."""
    return command.split(b" ", 1)[0][:32].decode("utf-8", "replace") or "<keepalive>"


class PendingCommand:
    __slots__ = (
        "datagram",
        "deadline",
        "first_sent",
        "future",
        "last_sent",
        "queued_at",
        "sends",
        "seq",
        "text",
        "timer",
        "unanswered",
    )

    def __init__(self, text: bytes, future: asyncio.Future[str], deadline: float) -> None:
        self.text = text
        self.future = future
        self.deadline = deadline
        self.seq = -1
        self.datagram = b""
        self.sends = 0
        self.unanswered = 0  # sends in a row after which nothing at all came back
        self.first_sent = 0.0
        self.last_sent = 0.0
        self.queued_at = 0.0
        self.timer: asyncio.TimerHandle | None = None


class CommandQueue:
    """Commands waiting for a session or a free sequence number, and those in flight.

    The client sets `transport` while a session is up, and `last_received` / `refused` as
    datagrams and socket errors arrive; `on_lost(reason)` is called when a command's sends
    went unanswered long enough that the session must be dead.
    """

    def __init__(
        self,
        proto: ClientProtocol,
        *,
        timeout: float,
        retries: int,
        max_resend_interval: float,
        reconnect: bool,
        on_lost: Callable[[str], None],
    ) -> None:
        self._proto = proto
        self.timeout = timeout
        self.retries = retries
        self.max_resend_interval = max_resend_interval
        self._reconnect = reconnect
        self._on_lost = on_lost
        self.pending: dict[int, PendingCommand] = {}
        self.queue: deque[PendingCommand] = deque()
        self.transport: asyncio.DatagramTransport | None = None
        self.last_sent = 0.0
        """When a command datagram last went out (the keepalive waits for quiet)."""
        self.last_received = 0.0
        self.refused = False

    def submit(self, text: bytes, timeout: float) -> PendingCommand:
        """Send `text` now if a session and a sequence number are free, else queue it."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        cmd = PendingCommand(text, loop.create_future(), now + timeout)
        if self.transport is not None and not self.queue and self._start(cmd):
            self._send(cmd)
        else:
            cmd.queued_at = now
            self.queue.append(cmd)
            cmd.timer = loop.call_at(cmd.deadline, self._expire, cmd)
        return cmd

    def discard(self, cmd: PendingCommand) -> None:
        """The caller gave up (cancelled): forget the command wherever it is."""
        if cmd.timer is not None:
            cmd.timer.cancel()
        if self.pending.get(cmd.seq) is cmd:
            self._forget(cmd)
            self.drain()
        elif cmd in self.queue:
            self.queue.remove(cmd)

    def drain(self) -> None:
        """Send queued commands while there is a session and free sequence numbers."""
        queue = self.queue
        while queue and self.transport is not None:
            cmd = queue[0]
            if cmd.future.done():
                queue.popleft()
                continue
            if not self._start(cmd):
                return
            queue.popleft()
            if cmd.timer is not None:
                cmd.timer.cancel()
            self._send(cmd)

    def answered(self, seq: int, text: str) -> None:
        cmd = self.pending.pop(seq, None)  # the hot path: kept inline
        if cmd is not None:
            if cmd.timer is not None:
                cmd.timer.cancel()
            if not cmd.future.done():
                cmd.future.set_result(text)

    def too_large(self, event: ReplyTooLarge, where: str) -> None:
        cmd = self.pending.pop(event.seq, None)
        if cmd is None:
            return
        what = "all replies in flight" if event.in_flight else "its reply"
        _log.warning("RCon %s: %s to %r crossed %d bytes", where, what, verb(cmd.text), event.limit)
        self._settle(
            cmd,
            RconReplyTooLarge(
                f"the reply to RCon command {verb(cmd.text)!r} was dropped: "
                f"{what} crossed the {event.limit:,}-byte cap"
            ),
        )

    def requeue_in_flight(self) -> None:
        """The session died: commands in flight go back to the head of the queue, oldest
        first, to be sent afresh in the next session (or fail at their deadlines)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        inflight = sorted(self.pending.values(), key=lambda c: c.first_sent)
        self.pending.clear()
        for cmd in reversed(inflight):
            if cmd.timer is not None:
                cmd.timer.cancel()
            cmd.seq = -1
            cmd.sends = cmd.unanswered = 0
            cmd.queued_at = now
            cmd.timer = loop.call_at(cmd.deadline, self._expire, cmd)
            self.queue.appendleft(cmd)

    def fail_all(self, exc: RconError) -> None:
        commands = [*self.pending.values(), *self.queue]
        self.pending.clear()
        self.queue.clear()
        for cmd in commands:
            self._settle(cmd, exc)

    def fail_waiting(self, since: float, exc: RconError) -> None:
        """Fail the queued commands that have waited since `since` or longer."""
        stale = [cmd for cmd in self.queue if cmd.queued_at <= since]
        for cmd in stale:
            self.queue.remove(cmd)
            self._settle(cmd, exc)

    # --- internals -------------------------------------------------------------------------

    def _start(self, cmd: PendingCommand) -> bool:
        """Give `cmd` a sequence number; False when 256 commands are already in flight."""
        seq = self._proto.start_command(cmd.text)
        if seq is None:
            return False
        cmd.seq = seq
        cmd.datagram = self._proto.command_datagram(seq)
        self.pending[seq] = cmd
        return True

    def _send(self, cmd: PendingCommand) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if cmd.sends == 0:
            cmd.first_sent = now
        cmd.sends += 1
        cmd.last_sent = now
        self.last_sent = now
        assert self.transport is not None
        self.transport.sendto(cmd.datagram)
        extra = cmd.sends - self.retries - 1
        wait = self.timeout
        if extra > 0:  # past the first retries: back off, capped
            wait = min(wait * 2.0 ** min(extra, 30), self.max_resend_interval)
        cmd.timer = loop.call_at(min(now + wait, cmd.deadline), self._attempt_over, cmd)

    def _attempt_over(self, cmd: PendingCommand) -> None:
        """No whole reply yet: resend the same datagram, give up at the deadline, or find
        that the session is lost."""
        if self.pending.get(cmd.seq) is not cmd:
            return
        now = asyncio.get_running_loop().time()
        cmd.unanswered = 0 if self.last_received >= cmd.last_sent else cmd.unanswered + 1
        if now >= cmd.deadline:
            self._forget(cmd)
            self._timed_out(cmd)
            self.drain()
            return
        silent = self.retries + 1 if self.refused else max(self.retries + 1, SILENT_SENDS)
        if cmd.unanswered < silent:
            _log.debug("RCon resend of %s (seq %d)", verb(cmd.text), cmd.seq)
            self._send(cmd)
            return
        if not self._reconnect:  # this one timed out; the others lose the connection
            self._forget(cmd)
            self._timed_out(cmd)
        self._on_lost(f"no answer from the server for {now - self.last_received:.1f} s")

    def _forget(self, cmd: PendingCommand) -> None:
        del self.pending[cmd.seq]
        self._proto.cancel_command(cmd.seq)

    def _expire(self, cmd: PendingCommand) -> None:
        """Deadline of a command that is still waiting for a session or a free number."""
        try:
            self.queue.remove(cmd)
        except ValueError:
            return
        self._timed_out(cmd)

    def _timed_out(self, cmd: PendingCommand) -> None:
        self._settle(cmd, RconTimeout(f"no reply to RCon command {verb(cmd.text)!r} in time"))

    @staticmethod
    def _settle(cmd: PendingCommand, outcome: str | RconError) -> None:
        if cmd.timer is not None:
            cmd.timer.cancel()
        if cmd.future.done():
            return
        if isinstance(outcome, str):
            cmd.future.set_result(outcome)
        else:
            cmd.future.set_exception(outcome)
