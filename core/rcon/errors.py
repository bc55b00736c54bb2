"""Errors of the RCon clients; each says whose fault it was: ours, the server's or the network's."""

from __future__ import annotations

__all__ = [
    "RconClosed",
    "RconCommandError",
    "RconConnectionLost",
    "RconError",
    "RconLoginError",
    "RconReplyTooLarge",
    "RconTimeout",
]


class RconError(Exception):
    """Base of every RCon failure; the message is safe to show a user (no password)."""


class RconLoginError(RconError):
    """The server refused the password."""


class RconTimeout(RconError, TimeoutError):
    """No answer in time (after the retries the client makes)."""


class RconConnectionLost(RconError):
    """The server stopped answering or closed the connection."""


class RconCommandError(RconError):
    """The server answered that it will not run the command (e.g. `Disallowed command`)."""


class RconClosed(RconError):
    """The client was closed (local misuse: using it after `close()`)."""


class RconReplyTooLarge(RconError):
    """The server's reply outgrew the client's memory cap, so that command failed.

    The client itself goes on: later commands work (over a fresh connection for Source RCON,
    whose byte stream cannot be resynchronised after a reply is cut off).
    """
