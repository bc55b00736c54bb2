"""One Source RCON TCP connection as an asyncio protocol: it feeds the sans-IO core
(`core.rcon.source`) and settles the futures of the commands waiting on it.

Apart from the client (`core.rcon.source_client`) because a connection lives and dies on
its own; the client owns the lifecycle around it (login, loss, backoff, reconnecting).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast

from core.rcon.errors import RconConnectionLost, RconError, RconLoginError, RconReplyTooLarge
from core.rcon.source import (
    Authenticated,
    AuthenticationFailed,
    Event,
    ReplyTooLarge,
    SourceRconProtocol,
)
from core.rcon.source_packets import RemoteProtocolError

__all__ = ["SourceStream"]

_log = logging.getLogger(__name__)


class SourceStream(asyncio.Protocol):
    """One TCP connection: feeds the sans-IO core and settles the futures waiting on it."""

    def __init__(
        self,
        where: str,
        protocol: SourceRconProtocol,
        on_lost: Callable[[SourceStream, str], None],
        on_too_large: Callable[[], None] = lambda: None,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.where = where
        self.protocol = protocol
        self.transport: asyncio.Transport | None = None
        self.authenticated = False
        self.logged_in: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self._replies: dict[int, asyncio.Future[str]] = {}
        self._heads: dict[int, str] = {}  # request id -> the command's first word, for errors
        self._on_lost = on_lost
        self._on_too_large = on_too_large
        self._error: RconError | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._flush()

    def data_received(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        try:
            while self._error is None and (event := self.protocol.next_event()) is not None:
                self._dispatch(event)
        except RemoteProtocolError as exc:
            _log.debug("rcon %s: malformed data, dropping the connection: %s", self.where, exc)
            self.abort(RconConnectionLost(f"{self.where}: the server sent malformed data ({exc})"))
            return
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._error is None:
            reason = "closed by the server" if exc is None else f"network error: {exc}"
            self._error = RconConnectionLost(f"{self.where}: connection {reason}")
        if not self.logged_in.done():
            self.logged_in.set_exception(self._error)
        for future in self._replies.values():
            if not future.done():
                future.set_exception(self._error)
        self._replies.clear()
        self._heads.clear()
        self.lost.set_result(None)
        self._on_lost(self, str(self._error))

    @property
    def closing(self) -> bool:
        """True once the connection is being dropped (it must not carry new commands)."""
        return self._error is not None

    def send(self, command: str) -> tuple[int, asyncio.Future[str]]:
        request_id = self.protocol.send_command(command)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._replies[request_id] = future
        self._heads[request_id] = command.split(" ", 1)[0][:32]
        self._flush()
        return request_id, future

    def forget(self, request_id: int) -> None:
        """The caller stopped waiting: drop its future and withdraw the command if unsent."""
        self._replies.pop(request_id, None)
        self._heads.pop(request_id, None)
        if self.protocol.cancel(request_id):
            _log.debug("rcon %s: withdrew unsent command #%d", self.where, request_id)

    def abort(self, error: RconError) -> None:
        """Drop the connection now; waiters get `error` once the transport reports the loss."""
        if self._error is None:
            self._error = error
        if self.transport is not None:
            self.transport.abort()

    def discard(self) -> None:
        """Mark the login outcome as seen, so an unawaited failure is not reported at GC."""
        if self.logged_in.done() and not self.logged_in.cancelled():
            self.logged_in.exception()

    async def wait_lost(self) -> None:
        """Wait for the socket to be released (no-op if it never opened)."""
        if self.transport is not None:
            await asyncio.shield(self.lost)

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, ReplyTooLarge):
            self._too_large(event)
        elif isinstance(event, Authenticated):
            self.authenticated = True
            if not self.logged_in.done():
                self.logged_in.set_result(None)
        elif isinstance(event, AuthenticationFailed):
            self.abort(RconLoginError(f"{self.where}: the server refused the RCon password"))
        else:
            self._heads.pop(event.request_id, None)
            future = self._replies.pop(event.request_id, None)
            if future is not None and not future.done():
                future.set_result(event.text)

    def _too_large(self, event: ReplyTooLarge) -> None:
        """Fail that command, then hang up: the rest of its reply is still on the way and
        the stream cannot be resynchronised (the client reconnects for the next command)."""
        self._on_too_large()
        head = self._heads.pop(event.request_id, "?")
        future = self._replies.pop(event.request_id, None)
        _log.warning(
            "rcon %s: the reply to %r crossed %d bytes; dropping the connection",
            self.where,
            head,
            event.limit,
        )
        if future is not None and not future.done():
            future.set_exception(
                RconReplyTooLarge(
                    f"{self.where}: the reply to {head!r} was dropped: it crossed the "
                    f"{event.limit:,}-byte cap"
                )
            )
        self.abort(RconConnectionLost(f"{self.where}: connection dropped after an oversized reply"))

    def _flush(self) -> None:
        data = self.protocol.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
