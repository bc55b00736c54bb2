"""Is a port free? Bind it for a moment, the way the game will."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable

from core.errors import PortInUse
from core.games.base import PortNeed

__all__ = ["check_ports", "port_is_free"]


def port_is_free(port: int, protocol: str, host: str = "0.0.0.0") -> bool:
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def check_ports(needs: Iterable[PortNeed]) -> None:
    """Raise PortInUse for the first port some other program holds."""
    for need in needs:
        if not port_is_free(need.port, need.protocol):
            raise PortInUse(need.port, need.protocol)
