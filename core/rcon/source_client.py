"""Asyncio transport for Source RCON: one TCP connection at a time, reconnecting on loss.

All protocol decisions live in `core.rcon.source`; this module only moves bytes, turns
events into awaited results, and owns the connection's lifecycle (login, loss, backoff).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from types import TracebackType

from core.backoff import Backoff
from core.rcon.errors import (
    RconClosed,
    RconConnectionLost,
    RconError,
    RconLoginError,
    RconTimeout,
)
from core.rcon.source import DEFAULT_MAX_REPLY_BYTES, SourceRconProtocol
from core.rcon.source_packets import MAX_COMMAND_BYTES, encode_command
from core.rcon.source_stream import SourceStream

__all__ = ["SourceRconClient", "StatusCallback"]

_log = logging.getLogger(__name__)

StatusCallback = Callable[[bool, str], None]


class SourceRconClient:
    """`async with SourceRconClient(host, port, password) as rcon: await rcon.command("list")`.

    A lost connection is re-established in the background with backoff (unless
    `reconnect=False`); commands issued meanwhile wait for it within their timeout.
    Commands that were on the wire when the connection dropped fail with
    RconConnectionLost rather than being re-sent: the server may have run them.

    A reply over `max_reply_bytes` fails its command with RconReplyTooLarge (counted in
    `replies_too_large`) and drops the connection, which then comes back as after any loss.
    """

    def __init__(
        self,
        host: str,
        port: int,
        password: str,
        *,
        timeout: float = 10.0,
        reconnect: bool = True,
        on_status: StatusCallback | None = None,
        backoff: Backoff | None = None,
        pipeline: bool = False,
        max_command_bytes: int = MAX_COMMAND_BYTES,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
    ) -> None:
        if timeout <= 0 or max_reply_bytes < 1:
            raise ValueError("timeout and max_reply_bytes must be positive")
        self.host = host
        self.port = port
        self._password = password
        self.timeout = timeout
        self.reconnect = reconnect
        self.on_status = on_status
        self.pipeline = pipeline
        self.max_command_bytes = max_command_bytes
        self.max_reply_bytes = max_reply_bytes
        self.replies_too_large = 0
        """Replies cut off at `max_reply_bytes` (each also dropped its connection)."""
        self._backoff = backoff or Backoff(base=0.5, cap=30.0)
        self._where = f"{host}:{port}"
        self._stream: SourceStream | None = None
        self._connecting: SourceStream | None = None
        self._reconnector: asyncio.Task[None] | None = None
        self._connect_lock = asyncio.Lock()
        self._closed_event = asyncio.Event()
        self._closed = False
        self._connected = False
        self._ever_connected = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "connected" if self._connected else "disconnected"
        return f"<SourceRconClient {self._where} {state}>"

    @property
    def connected(self) -> bool:
        """True while a logged-in connection is up."""
        return self._connected

    async def __aenter__(self) -> SourceRconClient:
        try:
            await self.connect()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Connect and log in now (commands also do it on demand); errors are not retried."""
        if self._closed:
            raise RconClosed("the RCon client is closed")
        if self._stream is None:
            await self._establish()

    async def command(self, text: str, *, timeout: float | None = None) -> str:
        """Run `text` and return its whole reply (UTF-8, undecodable bytes replaced)."""
        if self._closed:
            raise RconClosed("the RCon client is closed")
        encode_command(text, self.max_command_bytes)  # local misuse fails before any I/O
        limit = self.timeout if timeout is None else timeout
        head = text.split(" ", 1)[0][:32]
        problem = f"not connected within {limit:g}s ({head!r} was not sent)"
        try:
            async with asyncio.timeout(limit):
                stream = await self._ready_stream()
                problem = f"no reply to {head!r} within {limit:g}s"
                request_id, future = stream.send(text)
                try:
                    return await future
                finally:
                    stream.forget(request_id)
        except TimeoutError as exc:
            if isinstance(exc, RconError):
                raise
            raise RconTimeout(f"{self._where}: {problem}") from None

    async def messages(self) -> AsyncIterator[str]:
        """Server-pushed messages: Source RCON has none, so this ends when the client closes.

        It exists so code written for the BattlEye client can consume both the same way.
        """
        await self._closed_event.wait()
        return
        yield  # pragma: no cover - makes this an async generator

    async def close(self) -> None:
        """Stop reconnecting, drop the connection and fail waiting commands with RconClosed."""
        if self._closed:
            return
        self._closed = True
        self._closed_event.set()
        if self._reconnector is not None:
            self._reconnector.cancel()
            await asyncio.wait({self._reconnector})
            self._reconnector = None
        for stream in (self._connecting, self._stream):
            if stream is not None:
                stream.abort(RconClosed("the RCon client was closed"))
                await stream.wait_lost()
        self._stream = None
        self._set_status(False, "closed")

    async def _ready_stream(self) -> SourceStream:
        while True:
            if self._closed:
                raise RconClosed("the RCon client is closed")
            stream = self._stream
            if stream is not None and stream.closing:
                await stream.wait_lost()  # being dropped: wait for its loss, then reconnect
                continue
            if stream is not None:
                return stream
            task = self._reconnector
            if task is not None and not task.done():
                await asyncio.wait({task})  # our caller's timeout bounds this
                continue
            if self._ever_connected and not self.reconnect:
                raise RconConnectionLost(f"{self._where}: connection lost (reconnect is off)")
            await self._establish()

    async def _establish(self) -> None:
        """Open a connection and log in; on success it becomes the current stream."""
        async with self._connect_lock:
            if self._stream is not None:
                return
            if self._closed:
                raise RconClosed("the RCon client is closed")
            protocol = SourceRconProtocol(
                pipeline=self.pipeline,
                max_command_bytes=self.max_command_bytes,
                max_reply_bytes=self.max_reply_bytes,
            )
            protocol.login(self._password)
            stream = SourceStream(self._where, protocol, self._stream_lost, self._count_too_large)
            self._connecting = stream
            ok = False
            try:
                async with asyncio.timeout(self.timeout):
                    await asyncio.get_running_loop().create_connection(
                        lambda: stream, self.host, self.port
                    )
                    await stream.logged_in
                if self._closed:  # close() ran while we were connecting
                    raise RconClosed("the RCon client is closed")
                ok = True
            except TimeoutError:
                raise RconTimeout(
                    f"{self._where}: no login answer within {self.timeout:g}s"
                ) from None
            except OSError as exc:
                reason = exc.strerror or exc.__class__.__name__
                raise RconConnectionLost(f"{self._where}: cannot connect ({reason})") from None
            finally:
                self._connecting = None
                if not ok:
                    stream.abort(RconConnectionLost(f"{self._where}: login did not complete"))
                    await stream.wait_lost()
                    stream.discard()
            self._stream = stream
            reason = "reconnected" if self._ever_connected else "connected"
            self._ever_connected = True
            _log.info("rcon %s: %s", self._where, reason)
            self._backoff.reset()
            self._set_status(True, reason)

    def _count_too_large(self) -> None:
        self.replies_too_large += 1

    def _stream_lost(self, stream: SourceStream, reason: str) -> None:
        if stream is not self._stream:
            return  # a failed login attempt, or a stream already replaced
        self._stream = None
        if self._closed:
            return
        _log.warning("rcon %s: connection lost: %s", self._where, reason)
        self._set_status(False, reason)
        if self.reconnect:
            self._reconnector = asyncio.get_running_loop().create_task(
                self._reconnect_loop(), name=f"rcon-reconnect {self._where}"
            )

    async def _reconnect_loop(self) -> None:
        while not self._closed:
            delay = self._backoff.next()
            _log.debug("rcon %s: reconnecting in %.2fs", self._where, delay)
            await asyncio.sleep(delay)
            try:
                await self._establish()
            except RconLoginError as exc:
                # Retrying a refused password only fills the server's log; the next command
                # makes one fresh attempt and reports the refusal to its caller.
                _log.error("rcon %s: giving up reconnecting: %s", self._where, exc)
                return
            except RconError as exc:
                _log.info("rcon %s: reconnect failed: %s", self._where, exc)
                continue
            return

    def _set_status(self, connected: bool, reason: str) -> None:
        if connected == self._connected:
            return
        self._connected = connected
        if self.on_status is None:
            return
        try:
            self.on_status(connected, reason)
        except Exception:
            _log.exception("rcon %s: on_status callback failed", self._where)
