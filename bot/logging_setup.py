"""Where the bot's log goes: stderr always (the journal under systemd), a rotated file if set.

discord.py warns at every start that voice is unsupported (PyNaCl, davey): Languard has no
voice, so those two lines are noise an operator learns to ignore, which hides real
warnings. They are dropped by a filter on exactly those records, not by lowering the level
of discord's loggers. So is "logging in using static token", which would otherwise repeat
beside Languard's own line on every retry while Discord is unreachable.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import TextIO

__all__ = [
    "FILE_BACKUPS",
    "FILE_MAX_BYTES",
    "FORMAT",
    "NOISE",
    "DropNoise",
    "PrivateRotatingFileHandler",
    "configure_logging",
]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FILE_MAX_BYTES = 10 * 1024 * 1024
FILE_BACKUPS = 5
NOISE: frozenset[tuple[str, str]] = frozenset(
    {
        # discord/client.py, Client.__init__ (discord.py 2.7)
        ("discord.client", "PyNaCl is not installed, voice will NOT be supported"),
        ("discord.client", "davey is not installed, voice will NOT be supported"),
        # discord/client.py, Client.login: one per attempt; bot.run logs its own line
        ("discord.client", "logging in using static token"),
    }
)
"""(logger name, message) pairs that are dropped; the message must match exactly."""
_OURS = "_languard_handler"


class DropNoise(logging.Filter):
    """Drops the records listed in NOISE; everything else passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return (record.name, str(record.msg)) not in NOISE


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler whose files (the current one and each new one) are mode 0600."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.fchmod(fd, 0o600)
            return open(fd, "a", encoding=self.encoding, errors=self.errors)
        except BaseException:
            os.close(fd)
            raise


def configure_logging(
    level: int,
    log_file: Path | None = None,
    *,
    stream: TextIO | None = None,
) -> list[logging.Handler]:
    """Install the handlers on the root logger (replacing ones this function put there).

    Raises OSError when `log_file` cannot be opened; the caller turns it into one line.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(stream or sys.stderr)]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            PrivateRotatingFileHandler(
                log_file, maxBytes=FILE_MAX_BYTES, backupCount=FILE_BACKUPS, encoding="utf-8"
            )
        )
    formatter = logging.Formatter(FORMAT)
    noise = DropNoise()
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(noise)
        setattr(handler, _OURS, True)
        root.addHandler(handler)
    root.setLevel(level)
    # the records are also dropped at their source, for handlers installed by anyone else
    source = logging.getLogger("discord.client")
    if not any(isinstance(f, DropNoise) for f in source.filters):
        source.addFilter(noise)
    return handlers
