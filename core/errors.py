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
    """An error with a user-safe message (never a path outside the data dir, never a secret).

    The message is a template and its fields (`InvalidInput("no server named {name}",
    name=x)`): `str()` is the English text, and a front end can translate the template
    and fill in the same fields.
    """

    def __init__(self, template: str = "", /, **params: object) -> None:
        self.template = template
        self.params = params
        super().__init__(template.format(**params) if params else template)


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
        if holder:
            super().__init__(
                "{protocol} port {port} is held by {holder}; "
                "free it or move this server to another port",
                protocol=protocol.upper(),
                port=port,
                holder=holder,
            )
        else:
            super().__init__(
                "{protocol} port {port} is already in use by another program; "
                "free it or move this server to another port",
                protocol=protocol.upper(),
                port=port,
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
