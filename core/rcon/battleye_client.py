"""asyncio transport and public API for BattlEye RCon: commands, messages, keepalive, reconnect.

All protocol decisions live in `core.rcon.battleye`; this module only moves datagrams, keeps
the session alive (keepalives) and supervises it (loss, reconnect). The commands themselves
(sequence numbers, resends, deadlines) are tracked in `core.rcon.battleye_commands`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Final

from core.backoff import Backoff
from core.rcon.battleye import (
    ClientProtocol,
    CommandReply,
    LoginResult,
    ReplyTooLarge,
    ServerMessage,
)
from core.rcon.battleye_commands import CommandQueue, verb
from core.rcon.battleye_endpoint import BattlEyeEndpoint, grow_receive_buffer
from core.rcon.battleye_messages import MessageBuffer, MessageStream
from core.rcon.battleye_reassembly import DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_REPLY_BYTES
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


class BattlEyeClient:
    """A BattlEye RCon client that keeps its session alive and comes back after a loss.

    A command is resent under its sequence number until every part of its reply is in or
    its deadline passes (`RconTimeout`): `command_timeout` seconds, or the `timeout` given to
    `command()`. A caller's own deadline (`asyncio.timeout`) simply cancels it. Resends come
    `timeout` apart for the first `retries + 1` sends, then back off (doubling) up to
    `max_resend_interval` (default 2 * `timeout`: frequent enough to finish a five-part reply
    under heavy loss well within a deadline, sparse enough not to hammer a busy server).

    A session counts as lost when nothing at all came back for six sends of one command in a
    row (`retries + 1` once the OS reported the port closed); the keepalive, sent after
    `keepalive_interval` quiet seconds, finds a silent server too. With `reconnect` the client
    then logs in again with `backoff`; commands in flight are sent again in the new session
    (so one may run twice), and any command that waited through a whole unanswered login
    round fails with `RconTimeout`. `on_status(False, why)` / `on_status(True, "reconnected")`
    announce each loss and recovery (not the first connect). Without `reconnect` the command
    that found the loss gets `RconTimeout`, the others `RconConnectionLost`.

    Memory is bounded whatever the server sends: a reply over `max_reply_bytes`, or one that
    would take all replies being assembled over `max_buffered_bytes`, fails its command with
    `RconReplyTooLarge` (counted in `replies_too_large`); unread server messages are capped at
    `message_buffer` messages and `message_bytes` bytes, the oldest dropped.
    """

    def __init__(
        self,
        host: str,
        port: int,
        password: str,
        *,
        timeout: float = 1.0,
        retries: int = 3,
        command_timeout: float = 30.0,
        max_resend_interval: float | None = None,
        keepalive_interval: float = 30.0,
        reconnect: bool = True,
        on_status: StatusCallback | None = None,
        backoff: Backoff | None = None,
        message_buffer: int = 10_000,
        message_bytes: int = 4 << 20,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
    ) -> None:
        if timeout <= 0 or retries < 0 or keepalive_interval <= 0 or command_timeout <= 0:
            raise ValueError("timeouts and keepalive_interval must be > 0, retries >= 0")
        self.host = host
        self.port = port
        self._password = password.encode()
        self.timeout = timeout
        self.retries = retries
        self.command_timeout = command_timeout
        self.keepalive_interval = keepalive_interval
        self.reconnect = reconnect
        self.on_status = on_status
        self._backoff = backoff or Backoff(base=1.0, cap=30.0)
        self._proto = ClientProtocol(
            max_reply_bytes=max_reply_bytes, max_buffered_bytes=max_buffered_bytes
        )
        self._commands = CommandQueue(
            self._proto,
            timeout=timeout,
            retries=retries,
            max_resend_interval=max(
                timeout, 2 * timeout if max_resend_interval is None else max_resend_interval
            ),
            reconnect=reconnect,
            on_lost=self._connection_lost,
        )
        self._endpoint: BattlEyeEndpoint | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._login_waiter: asyncio.Future[bool] | None = None
        self._messages = MessageBuffer(message_buffer, message_bytes)
        self._lost_event = asyncio.Event()
        self._up_event = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._connected = False
        self._started = False
        self._closed = False

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

    @property
    def replies_too_large(self) -> int:
        """Replies dropped at a byte cap (their commands failed with RconReplyTooLarge)."""
        return self._proto.replies_too_large

    @property
    def part_conflicts(self) -> int:
        """Reply parts that contradicted an earlier part (a resend answered differently)."""
        return self._proto.part_conflicts

    @property
    def messages_dropped(self) -> int:
        """Server messages pushed out of a full buffer (nobody was reading)."""
        return self._messages.dropped

    @property
    def buffered_message_bytes(self) -> int:
        return self._messages.bytes

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
        endpoint = BattlEyeEndpoint(self._datagram_from, self._refused_by)
        self._endpoint = endpoint
        self._commands.refused = False
        transport, _ = await loop.create_datagram_endpoint(
            lambda: endpoint, remote_addr=(self.host, self.port)
        )
        self._transport = transport
        grow_receive_buffer(transport)
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
        self._commands.last_sent = self._commands.last_received = loop.time()

    def _drop_transport(self) -> None:
        self._endpoint = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _set_up(self, up: bool, reason: str, *, notify: bool = True) -> None:
        self._connected = up
        self._commands.transport = self._transport if up else None
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
        self._commands.requeue_in_flight()
        self._set_up(False, reason)
        if self.reconnect:
            self._lost_event.set()
        else:
            lost = RconConnectionLost(f"lost RCon connection to {self.host}:{self.port}")
            self._commands.fail_all(lost)

    async def _supervise(self) -> None:
        """Wait for a loss, then log in again with backoff until it works or we close."""
        loop = asyncio.get_running_loop()
        while True:
            await self._lost_event.wait()
            self._lost_event.clear()
            self._backoff.reset()
            while True:
                started = loop.time()
                try:
                    await self._login()
                    break
                except RconLoginError as exc:
                    _log.warning(
                        "RCon %s:%s refused the password on reconnect", self.host, self.port
                    )
                    self._commands.fail_waiting(started, exc)
                except (RconTimeout, OSError) as exc:
                    # The server answers nothing at all: commands that waited through this
                    # round hear it now rather than at their deadlines.
                    _log.debug("RCon reconnect to %s:%s failed: %s", self.host, self.port, exc)
                    failure = RconTimeout(f"{self.host}:{self.port}: {exc}")
                    self._commands.fail_waiting(started, failure)
                await asyncio.sleep(self._backoff.next())
            self._set_up(True, "reconnected")
            self._commands.drain()

    async def _keepalive_loop(self) -> None:
        """Send an empty command when nothing was sent for `keepalive_interval` seconds."""
        loop = asyncio.get_running_loop()
        while True:
            await self._up_event.wait()
            delay = self._commands.last_sent + self.keepalive_interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            try:
                await self._request(b"")  # a silent server is found by the silence rule
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
        self._commands.transport = None
        self._commands.fail_all(RconClosed("the RCon client was closed"))
        self._drop_transport()
        self._messages.close()

    # --- commands --------------------------------------------------------------------------

    async def command(self, text: str, *, timeout: float | None = None) -> str:
        """Run a console command and return its reply text (often empty).

        `timeout` overrides `command_timeout` for this command. Raises `RconCommandError`
        for `Disallowed command`, `RconTimeout` when no whole reply came in time,
        `RconReplyTooLarge` past a byte cap, `RconClosed` after `close()`.
        """
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be > 0")
        reply = await self._request(text.encode(), timeout)
        if reply == _DISALLOWED:
            raise RconCommandError(f"the server refused the command {verb(text.encode())!r}")
        return reply

    def messages(self) -> AsyncIterator[ServerMessage]:
        """Server messages (console lines) in arrival order, each once; one reader at a time."""
        return MessageStream(self._messages)

    async def _request(self, text: bytes, timeout: float | None = None) -> str:
        if self._closed:
            raise RconClosed("the RCon client is closed")
        if not self._started:
            raise RconError("connect() the RCon client first")
        if not self._connected and not self.reconnect:
            raise RconConnectionLost(f"lost RCon connection to {self.host}:{self.port}")
        cmd = self._commands.submit(text, self.command_timeout if timeout is None else timeout)
        try:
            return await cmd.future
        except asyncio.CancelledError:
            self._commands.discard(cmd)
            raise

    # --- datagrams -------------------------------------------------------------------------

    def _datagram_from(self, endpoint: BattlEyeEndpoint, data: bytes) -> None:
        if self._endpoint is endpoint:  # a replaced endpoint is ignored
            self._on_datagram(data)

    def _refused_by(self, endpoint: BattlEyeEndpoint) -> None:
        if self._endpoint is endpoint:
            self._commands.refused = True

    def _on_datagram(self, data: bytes) -> None:
        proto = self._proto
        commands = self._commands
        events = proto.receive(data)
        commands.last_received = asyncio.get_running_loop().time()
        commands.refused = False
        for event in events:
            if type(event) is CommandReply:
                commands.answered(event.seq, event.text)
            elif type(event) is ServerMessage:
                self._messages.push(event)
            elif type(event) is LoginResult:
                waiter = self._login_waiter
                if waiter is not None and not waiter.done():
                    waiter.set_result(event.ok)
            elif type(event) is ReplyTooLarge:
                commands.too_large(event, f"{self.host}:{self.port}")
        out = proto.datagrams_to_send()
        if out and self._transport is not None:
            for datagram in out:
                self._transport.sendto(datagram)
        if commands.queue:
            commands.drain()
