"""asyncio transport and public API for BattlEye RCon: commands, messages, keepalive, reconnect.

All protocol decisions live in `core.rcon.battleye`; this module only moves datagrams, keeps
time (resends, deadlines, keepalives) and supervises the session. Timers are plain
`loop.call_at` handles rather than tasks, so one command costs a future and a timer.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

from core.backoff import Backoff
from core.rcon.battleye import ClientProtocol, CommandReply, LoginResult, ServerMessage
from core.rcon.errors import (
    RconClosed,
    RconCommandError,
    RconConnectionLost,
    RconError,
    RconLoginError,
    RconTimeout,
)

__all__ = ["BattlEyeClient", "ServerMessage", "StatusCallback"]

_log = logging.getLogger(__name__)

StatusCallback = Callable[[bool, str], None]

_DISALLOWED: Final = "Disallowed command"
_RECEIVE_BUFFER: Final = 1 << 20


def _verb(command: bytes) -> str:
    """The command's first word, the only part safe to log (`RConPassword x` holds a secret)."""
    return command.split(b" ", 1)[0][:32].decode("utf-8", "replace") or "<keepalive>"


def _grow_receive_buffer(transport: asyncio.DatagramTransport) -> None:
    """Room for 256 replies arriving at once; the default buffer holds about 200 datagrams."""
    sock = transport.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
    except OSError as exc:  # capped or refused by the OS: losses are then resent
        _log.debug("could not enlarge the UDP receive buffer: %s", exc)


class _Command:
    __slots__ = ("datagram", "deadline", "first_sent", "future", "sends", "seq", "text", "timer")

    def __init__(self, text: bytes, future: asyncio.Future[str], deadline: float) -> None:
        self.text = text
        self.future = future
        self.deadline = deadline
        self.seq = -1
        self.datagram = b""
        self.sends = 0
        self.first_sent = 0.0
        self.timer: asyncio.TimerHandle | None = None


class _Endpoint(asyncio.DatagramProtocol):
    """One UDP socket's callbacks; a replaced endpoint is ignored by its client."""

    def __init__(self, client: BattlEyeClient) -> None:
        self._client = client

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        client = self._client
        if client._endpoint is self:
            client._on_datagram(data)

    def error_received(self, exc: Exception) -> None:
        _log.debug("socket error (nothing listening?): %s", exc)


class _MessageStream:
    """Async iterator over the client's server messages; ends when the client closes."""

    def __init__(self, client: BattlEyeClient) -> None:
        self._client = client

    def __aiter__(self) -> _MessageStream:
        return self

    async def __anext__(self) -> ServerMessage:
        client = self._client
        while not client._messages:
            if client._closed:
                raise StopAsyncIteration
            client._message_event.clear()
            await client._message_event.wait()
        return client._messages.popleft()


class BattlEyeClient:
    """A BattlEye RCon client that keeps its session alive and comes back after a loss.

    `timeout` is the wait for one attempt; a command is sent at most `retries + 1` times, so
    it fails with `RconTimeout` after `timeout * (retries + 1)` seconds at the latest,
    including any time spent waiting for a reconnect or a free sequence number.

    A session counts as lost when a command (or the keepalive sent after `keepalive_interval`
    quiet seconds) got no datagram at all back over all its attempts. With `reconnect` the
    client then logs in again with `backoff`; `on_status(False, why)` / `on_status(True,
    "reconnected")` announce each loss and recovery (not the first connect). Commands in
    flight at the loss are sent again in the new session, so one may run twice.
    """

    def __init__(
        self,
        host: str,
        port: int,
        password: str,
        *,
        timeout: float = 1.0,
        retries: int = 3,
        keepalive_interval: float = 30.0,
        reconnect: bool = True,
        on_status: StatusCallback | None = None,
        backoff: Backoff | None = None,
        message_buffer: int = 10_000,
    ) -> None:
        if timeout <= 0 or retries < 0 or keepalive_interval <= 0:
            raise ValueError("timeout and keepalive_interval must be > 0, retries >= 0")
        self.host = host
        self.port = port
        self._password = password.encode()
        self.timeout = timeout
        self.retries = retries
        self.keepalive_interval = keepalive_interval
        self.reconnect = reconnect
        self.on_status = on_status
        self._backoff = backoff or Backoff(base=1.0, cap=30.0)
        self._proto = ClientProtocol()
        self._endpoint: _Endpoint | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._pending: dict[int, _Command] = {}
        self._queue: deque[_Command] = deque()
        self._login_waiter: asyncio.Future[bool] | None = None
        self._messages: deque[ServerMessage] = deque(maxlen=message_buffer)
        self._message_event = asyncio.Event()
        self._lost_event = asyncio.Event()
        self._up_event = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._connected = False
        self._started = False
        self._closed = False
        self._last_command_sent = 0.0
        self._last_received = 0.0
        self.messages_dropped = 0
        """Server messages pushed out of a full buffer (nobody was reading)."""

    def __repr__(self) -> str:
        state = "closed" if self._closed else "connected" if self._connected else "disconnected"
        return f"<BattlEyeClient {self.host}:{self.port} {state}>"

    @property
    def connected(self) -> bool:
        """True while logged in (False before connect, while reconnecting and after close)."""
        return self._connected

    @property
    def malformed(self) -> int:
        """Datagrams from the server that were dropped as malformed."""
        return self._proto.malformed

    @property
    def duplicate_messages(self) -> int:
        """Server messages received again (acknowledged again, delivered once)."""
        return self._proto.duplicates

    async def __aenter__(self) -> BattlEyeClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- session ---------------------------------------------------------------------------

    async def connect(self) -> None:
        """Log in; raise `RconLoginError` on a wrong password, `RconTimeout` on no answer."""
        if self._closed:
            raise RconClosed("the RCon client is closed")
        if self._started:
            raise RconError("the RCon client is already connected")
        self._started = True
        try:
            await self._login()
        except BaseException:
            await self.close()
            raise
        self._set_up(True, "connected", notify=False)
        self._tasks.append(asyncio.create_task(self._keepalive_loop(), name="rcon-keepalive"))
        if self.reconnect:
            self._tasks.append(asyncio.create_task(self._supervise(), name="rcon-reconnect"))

    async def _login(self) -> None:
        """Open a fresh socket and log in, resending the login like a command."""
        self._drop_transport()
        loop = asyncio.get_running_loop()
        endpoint = _Endpoint(self)
        self._endpoint = endpoint
        transport, _ = await loop.create_datagram_endpoint(
            lambda: endpoint, remote_addr=(self.host, self.port)
        )
        self._transport = transport
        _grow_receive_buffer(transport)
        datagram = self._proto.login(self._password)
        waiter: asyncio.Future[bool] = loop.create_future()
        self._login_waiter = waiter
        try:
            for _ in range(self.retries + 1):
                transport.sendto(datagram)
                try:
                    async with asyncio.timeout(self.timeout):
                        ok = await asyncio.shield(waiter)
                    break
                except TimeoutError:
                    continue
            else:
                self._drop_transport()
                raise RconTimeout(
                    f"no answer to RCon login from {self.host}:{self.port} "
                    f"(is RCon enabled and the port right?)"
                )
        finally:
            self._login_waiter = None
            if not waiter.done():
                waiter.cancel()
        if not ok:
            self._drop_transport()
            raise RconLoginError(f"{self.host}:{self.port} refused the RCon password")
        now = loop.time()
        self._last_command_sent = now
        self._last_received = now

    def _drop_transport(self) -> None:
        self._endpoint = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _set_up(self, up: bool, reason: str, *, notify: bool = True) -> None:
        self._connected = up
        if up:
            self._up_event.set()
        else:
            self._up_event.clear()
        if notify:
            _log.info("RCon %s:%s %s: %s", self.host, self.port, "up" if up else "down", reason)
            if self.on_status is not None:
                try:
                    self.on_status(up, reason)
                except Exception:
                    _log.exception("on_status callback failed")

    def _connection_lost(self, reason: str) -> None:
        """Mark the session dead; commands in flight wait for the next one (or fail)."""
        if not self._connected or self._closed:
            return
        self._drop_transport()
        self._proto.reset()
        loop = asyncio.get_running_loop()
        inflight = sorted(self._pending.values(), key=lambda c: c.first_sent)
        self._pending.clear()
        for cmd in reversed(inflight):
            if cmd.timer is not None:
                cmd.timer.cancel()
            cmd.seq = -1
            cmd.timer = loop.call_at(cmd.deadline, self._expire, cmd)
            self._queue.appendleft(cmd)
        self._set_up(False, reason)
        if self.reconnect:
            self._lost_event.set()
        else:
            self._fail_all(RconConnectionLost(f"lost RCon connection to {self.host}:{self.port}"))

    async def _supervise(self) -> None:
        """Wait for a loss, then log in again with backoff until it works or we close."""
        while True:
            await self._lost_event.wait()
            self._lost_event.clear()
            self._backoff.reset()
            while True:
                try:
                    await self._login()
                    break
                except RconLoginError:
                    _log.warning(
                        "RCon %s:%s refused the password on reconnect", self.host, self.port
                    )
                except (RconTimeout, OSError) as exc:
                    _log.debug("RCon reconnect to %s:%s failed: %s", self.host, self.port, exc)
                await asyncio.sleep(self._backoff.next())
            self._set_up(True, "reconnected")
            self._drain()

    async def _keepalive_loop(self) -> None:
        """Send an empty command when nothing was sent for `keepalive_interval` seconds."""
        loop = asyncio.get_running_loop()
        while True:
            await self._up_event.wait()
            delay = self._last_command_sent + self.keepalive_interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            try:
                await self._request(b"")
            except RconError as exc:
                _log.debug("RCon keepalive failed: %s", exc)

    async def close(self) -> None:
        """Stop everything: background tasks, pending commands (`RconClosed`), the socket."""
        if self._closed:
            return
        self._closed = True
        self._connected = False
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._login_waiter is not None and not self._login_waiter.done():
            self._login_waiter.cancel()
        self._fail_all(RconClosed("the RCon client was closed"))
        self._drop_transport()
        self._message_event.set()

    def _fail_all(self, exc: RconError) -> None:
        commands = [*self._pending.values(), *self._queue]
        self._pending.clear()
        self._queue.clear()
        for cmd in commands:
            if cmd.timer is not None:
                cmd.timer.cancel()
            if not cmd.future.done():
                cmd.future.set_exception(exc)

    # --- commands --------------------------------------------------------------------------

    async def command(self, text: str) -> str:
        """Run a console command and return its reply text (often empty).

        Raises `RconCommandError` for `Disallowed command`, `RconTimeout` when no reply came
        in time, `RconClosed` after `close()`.
        """
        reply = await self._request(text.encode())
        if reply == _DISALLOWED:
            raise RconCommandError(f"the server refused the command {_verb(text.encode())!r}")
        return reply

    def messages(self) -> AsyncIterator[ServerMessage]:
        """Server messages (console lines) in arrival order, each once; one reader at a time."""
        return _MessageStream(self)

    async def _request(self, text: bytes) -> str:
        if self._closed:
            raise RconClosed("the RCon client is closed")
        if not self._started:
            raise RconError("connect() the RCon client first")
        if not self._connected and not self.reconnect:
            raise RconConnectionLost(f"lost RCon connection to {self.host}:{self.port}")
        loop = asyncio.get_running_loop()
        cmd = _Command(text, loop.create_future(), loop.time() + self.timeout * (self.retries + 1))
        if self._connected and not self._queue and self._start(cmd):
            self._send(cmd)
        else:
            self._queue.append(cmd)
            cmd.timer = loop.call_at(cmd.deadline, self._expire, cmd)
        try:
            return await cmd.future
        except asyncio.CancelledError:
            self._discard(cmd)
            raise

    def _start(self, cmd: _Command) -> bool:
        """Give `cmd` a sequence number; False when 256 commands are already in flight."""
        seq = self._proto.start_command(cmd.text)
        if seq is None:
            return False
        cmd.seq = seq
        cmd.datagram = self._proto.command_datagram(seq)
        self._pending[seq] = cmd
        return True

    def _send(self, cmd: _Command) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if cmd.sends == 0:
            cmd.first_sent = now
        cmd.sends += 1
        self._last_command_sent = now
        assert self._transport is not None
        self._transport.sendto(cmd.datagram)
        cmd.timer = loop.call_at(min(now + self.timeout, cmd.deadline), self._attempt_over, cmd)

    def _attempt_over(self, cmd: _Command) -> None:
        """No reply within `timeout`: resend the same datagram, or give up."""
        if self._pending.get(cmd.seq) is not cmd:
            return
        now = asyncio.get_running_loop().time()
        if cmd.sends <= self.retries and now < cmd.deadline:
            _log.debug("RCon resend of %s (seq %d)", _verb(cmd.text), cmd.seq)
            self._send(cmd)
            return
        del self._pending[cmd.seq]
        self._proto.cancel_command(cmd.seq)
        self._timed_out(cmd)
        if self._last_received < cmd.first_sent:
            self._connection_lost(f"no answer from the server for {now - cmd.first_sent:.1f} s")
        else:
            self._drain()

    def _expire(self, cmd: _Command) -> None:
        """Deadline of a command that is still waiting for a session or a free number."""
        try:
            self._queue.remove(cmd)
        except ValueError:
            return
        self._timed_out(cmd)

    def _timed_out(self, cmd: _Command) -> None:
        if not cmd.future.done():
            cmd.future.set_exception(
                RconTimeout(f"no reply to RCon command {_verb(cmd.text)!r} in time")
            )

    def _discard(self, cmd: _Command) -> None:
        """The caller gave up (cancelled): forget the command wherever it is."""
        if cmd.timer is not None:
            cmd.timer.cancel()
        if self._pending.get(cmd.seq) is cmd:
            del self._pending[cmd.seq]
            self._proto.cancel_command(cmd.seq)
            self._drain()
        elif cmd in self._queue:
            self._queue.remove(cmd)

    def _drain(self) -> None:
        """Send queued commands while there is a session and free sequence numbers."""
        queue = self._queue
        while queue and self._connected:
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

    # --- datagrams -------------------------------------------------------------------------

    def _on_datagram(self, data: bytes) -> None:
        proto = self._proto
        events = proto.receive(data)
        self._last_received = asyncio.get_running_loop().time()
        for event in events:
            if type(event) is CommandReply:
                cmd = self._pending.pop(event.seq, None)
                if cmd is not None:
                    if cmd.timer is not None:
                        cmd.timer.cancel()
                    if not cmd.future.done():
                        cmd.future.set_result(event.text)
            elif type(event) is ServerMessage:
                if len(self._messages) == self._messages.maxlen:
                    self.messages_dropped += 1
                self._messages.append(event)
                self._message_event.set()
            elif type(event) is LoginResult:
                waiter = self._login_waiter
                if waiter is not None and not waiter.done():
                    waiter.set_result(event.ok)
        out = proto.datagrams_to_send()
        if out and self._transport is not None:
            for datagram in out:
                self._transport.sendto(datagram)
        if self._queue:
            self._drain()
