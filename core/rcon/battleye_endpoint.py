"""The UDP socket of a BattlEye client: its receive buffer, and the endpoint whose callbacks
reach the client together with the endpoint they came from.

Apart from the client (`core.rcon.battleye_client`) because this is all the client knows of
the socket; the client ignores an endpoint it has replaced after a new login.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any, Final

__all__ = ["BattlEyeEndpoint", "grow_receive_buffer"]

_log = logging.getLogger(__name__)

_RECEIVE_BUFFER: Final = 1 << 20


def grow_receive_buffer(transport: asyncio.DatagramTransport) -> None:
    """Room for 256 replies arriving at once; the default buffer holds about 200 datagrams."""
    sock = transport.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
    except OSError as exc:  # capped or refused by the OS: losses are then resent
        _log.debug("could not enlarge the UDP receive buffer: %s", exc)


class BattlEyeEndpoint(asyncio.DatagramProtocol):
    """One UDP socket's callbacks; each names this endpoint, so a replaced one is ignored."""

    def __init__(
        self,
        on_datagram: Callable[[BattlEyeEndpoint, bytes], None],
        on_refused: Callable[[BattlEyeEndpoint], None],
    ) -> None:
        self._on_datagram = on_datagram
        self._on_refused = on_refused

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._on_datagram(self, data)

    def error_received(self, exc: Exception) -> None:
        _log.debug("socket error (nothing listening?): %s", exc)
        if isinstance(exc, ConnectionRefusedError):
            self._on_refused(self)
