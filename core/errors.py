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
    "InvalidValue",
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


class InvalidValue(InvalidInput, ValueError):
    """A value refused by a settings model's validator.

    Pydantic reports only a ValueError raised in a validator, and keeps the exception itself
    in the error's context: this one keeps its template there, so the schema can show the
    refusal in the reader's language.
    """


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
    """`holder` is the program holding the port and `pid` its process, when we can see them
    (a process of another user shows no pid)."""

    def __init__(
        self, port: int, protocol: str, holder: str | None = None, pid: int | None = None
    ) -> None:
        if holder is not None and pid is not None:
            super().__init__(
                "{protocol} port {port} is held by pid {pid} ({holder}); "
                "free it or move this server to another port",
                protocol=protocol.upper(),
                port=port,
                pid=pid,
                holder=holder,
            )
        elif holder is not None:
            super().__init__(
                "{protocol} port {port} is held by a process of another user; "
                "free it or move this server to another port",
                protocol=protocol.upper(),
                port=port,
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
        self.pid = pid


class ConfigWriteError(StartRefused):
    pass


class NotRunning(LanguardError):
    """The command needs a running server."""


class NotSupported(LanguardError):
    """The game has no such thing (e.g. missions on Minecraft)."""
