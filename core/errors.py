"""Typed errors whose message a Discord user can act on.

Anything that is not a `LanguardError` is a bug: the front end logs it with a reference id
and never shows its text.
"""

from __future__ import annotations

__all__ = [
    "AlreadyRunning",
    "ConfigWriteError",
    "ExecutableNotAllowed",
    "ExecutableNotFound",
    "InvalidInput",
    "LanguardError",
    "NotFound",
    "NotRunning",
    "NotSupported",
    "PortInUse",
    "StartRefused",
]


class LanguardError(Exception):
    """An error with a user-safe message (never a path outside the data dir, never a secret)."""


class InvalidInput(LanguardError):
    """Input from Discord or a file failed validation."""


class NotFound(LanguardError):
    """The named thing (server, mission, ban...) does not exist."""


class StartRefused(LanguardError):
    """A start was refused before anything ran; the server's state is unchanged."""


class AlreadyRunning(StartRefused):
    pass


class ExecutableNotFound(StartRefused):
    pass


class ExecutableNotAllowed(StartRefused):
    pass


class PortInUse(StartRefused):
    def __init__(self, port: int, protocol: str, holder: str | None = None) -> None:
        who = f"held by {holder}" if holder else "already in use by another program"
        super().__init__(
            f"{protocol.upper()} port {port} is {who}; free it or move this server to another port"
        )
        self.port = port
        self.protocol = protocol
        self.holder = holder


class ConfigWriteError(StartRefused):
    pass


class NotRunning(LanguardError):
    """The command needs a running server."""


class NotSupported(LanguardError):
    """The game has no such thing (e.g. missions on Minecraft)."""
