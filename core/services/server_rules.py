"""The rules the ServerService applies that need none of its state: what a server may be
called, how strong a generated password is, what a delete refuses, where a deleted
server's folder goes, and how a queued start waits while telling its place."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import shutil
import string
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from core.errors import InvalidInput
from core.hosts.queue import Ticket
from core.supervisor.states import ServerState

__all__ = [
    "NAME_PATTERN",
    "RESERVED_NAMES",
    "PlaceHook",
    "archive_folder",
    "stop_first",
    "strong_password",
    "valid_name",
    "wait_admitted",
]

_log = logging.getLogger(__name__)

S = ServerState
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{1,30}[a-z0-9]")
RESERVED_NAMES = frozenset(
    {"all", "any", "none", "null", "new", "list", "help", "default", "server", "servers"}
    | {"archive", "global", "everyone", "here", "languard", "con", "nul", "aux", "prn"}
)
_PASSWORD_ALPHABET = string.ascii_letters + string.digits
_PASSWORD_LENGTH = 24

PlaceHook = Callable[[int], Awaitable[None]]
"""Told a waiting start's place in its host's queue (1: next) each time it moves."""


def valid_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidInput(
            "a server name is 3 to 32 lowercase letters, digits or hyphens, "
            "not starting or ending with a hyphen (like `main-1`)"
        )
    if name in RESERVED_NAMES:
        raise InvalidInput("`{name}` is a reserved word; choose another name", name=name)
    return name


def strong_password() -> str:
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(_PASSWORD_LENGTH))


def stop_first(name: str, state: ServerState) -> InvalidInput:
    """A delete refused while a process exists (or is being made)."""
    if state is S.STARTING:
        return InvalidInput("`{name}` is starting; stop it first", name=name)
    if state is S.STOPPING:
        return InvalidInput("`{name}` is stopping; stop it first", name=name)
    return InvalidInput("`{name}` is running; stop it first", name=name)


def archive_folder(data_dir: Path, source: Path, name: str) -> str | None:
    """Move a deleted server's folder under `archive/`, stamped; its path from the data dir."""
    if not source.exists():
        return None
    root = data_dir / "archive"
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = root / f"{name}-{stamp}"
    suffix = 2
    while target.exists():
        target = root / f"{name}-{stamp}-{suffix}"
        suffix += 1
    shutil.move(source, target)
    return str(target.relative_to(data_dir))


async def wait_admitted(ticket: Ticket, on_place: PlaceHook | None) -> None:
    """Wait for the ticket, telling `on_place` each new place; a failing hook is logged."""

    async def tell() -> None:
        async for place in ticket.updates():
            if place and on_place is not None:
                try:
                    await on_place(place)
                except Exception:
                    _log.exception("showing the place of %s failed", ticket.server)

    watcher = asyncio.create_task(tell(), name=f"place-{ticket.server}")
    try:
        await ticket.admitted()
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
