"""What a start does before any process exists: checks, config files, the game's environment.

Shared by a server's own start and by its companions (Arma 3 headless clients), so both
write files the same way (inside the server folder only, secrets 0600) and give their
processes the same minimal environment.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from core.backups.layout import RESTORE_DIR
from core.errors import AlreadyRunning, ConfigWriteError, PortInUse, StartRefused
from core.fsutil import atomic_write, is_within
from core.games.base import ConfigFile, PortNeed, ServerContext
from core.supervisor.runtime_api import Limits
from core.supervisor.states import ServerState
from core.supervisor.strays import port_holders

__all__ = [
    "PASSED_ENV",
    "already_active",
    "check_startable",
    "game_env",
    "limits_of",
    "who_holds",
    "write_config_files",
]

PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "HOME", "USER", "TMPDIR")
"""The only parts of the bot's environment a game sees: never the token or the secret key."""


def check_startable(ctx: ServerContext) -> None:
    """Refuse (StartRefused) a start that cannot go well: secrets this key cannot read, or a
    restore swapping the server's files."""
    if ctx.unreadable_secrets:
        raise _unreadable(ctx.name, ctx.unreadable_secrets)
    if (ctx.folder / RESTORE_DIR).exists():
        raise StartRefused(
            "`{name}` is being restored from a backup; start it once the restore is done",
            name=ctx.name,
        )


def write_config_files(folder: Path, files: Iterable[ConfigFile]) -> None:
    """Write each file atomically, never outside the server's folder; secret ones get 0600."""
    folder.mkdir(parents=True, exist_ok=True)
    for config in files:
        if not is_within(config.path, folder):
            raise ConfigWriteError(
                "refusing to write {name} outside the server", name=config.path.name
            )
        try:
            atomic_write(config.path, config.content, mode=0o600 if config.secret else 0o644)
        except OSError as exc:
            raise ConfigWriteError(
                "cannot write {name}: {reason}",
                name=config.path.name,
                reason=exc.strerror or exc,
            ) from None


def game_env(extra: Mapping[str, str], markers: Mapping[str, str]) -> dict[str, str]:
    """The environment of a game process: `PASSED_ENV`, the profile's own, our markers."""
    env = {key: os.environ[key] for key in PASSED_ENV if key in os.environ}
    env.update(extra)
    env.update(markers)
    return env


LIMIT_KEYS = ("cpu_limit", "memory_limit_mb", "pids_limit")
"""The server settings a runtime's limits come from (a container's; processes take none)."""


def limits_of(settings: Mapping[str, Any]) -> Limits:
    """A unit's limits from its server's settings; a missing or unusable value: no limit."""
    cpus, memory_mb, pids = (_positive(settings.get(key)) for key in LIMIT_KEYS)
    return Limits(
        cpus=cpus,
        memory_bytes=None if memory_mb is None else int(memory_mb * 1024 * 1024),
        pids=None if pids is None else int(pids),
    )


def _positive(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return float(value)


def already_active(name: str, state: ServerState) -> AlreadyRunning:
    """The refusal of a start while the server is starting, running or stopping."""
    if state is ServerState.STARTING:
        return AlreadyRunning("{name} is already starting", name=name)
    if state is ServerState.STOPPING:
        return AlreadyRunning("{name} is already stopping", name=name)
    return AlreadyRunning("{name} is already running", name=name)


def _unreadable(server: str, keys: Sequence[str]) -> StartRefused:
    return StartRefused(
        "{server} cannot start: its stored {names} cannot be decrypted with this bot's key "
        "(was LANGUARD_SECRET_KEY or secret.key changed?). Set it again with /server set, "
        "or restore the old key.",
        server=server,
        names=", ".join(keys),
    )


async def who_holds(exc: PortInUse, needs: Sequence[PortNeed]) -> PortInUse:
    """The same refusal, naming the process that holds the port when we can see it."""
    wanted = [n for n in needs if n.port == exc.port and n.protocol == exc.protocol]
    holders = await asyncio.to_thread(port_holders, wanted)
    if not holders:
        return exc
    return PortInUse(exc.port, exc.protocol, holders[0].name, holders[0].pid)
