"""What the update-aware maintenance (core/services/mod_updates.py) hands back and hears.

The step words a front end translates, the in-game countdown line, the report of one
maintenance, the caller's progress listener wrapped so it can never stop the flow, and the
reader of the game's `List of mods` from the log lines the supervisor publishes.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass
from enum import StrEnum

from core.errors import LanguardError
from core.events import LogLines, Subscription
from core.jobs import FINISHED, JobState, JobUpdate, UpdateListener
from core.mods.verify import ModListReader
from core.services.mod_views import ModView
from core.steam import AppUpdated

__all__ = [
    "DEFAULT_WARNINGS",
    "KICK_REASON",
    "MaintenanceReport",
    "Progress",
    "ServerOutcome",
    "Step",
    "read_mod_list",
    "warning_text",
]

_log = logging.getLogger(__name__)

DEFAULT_WARNINGS = (300.0, 60.0, 10.0)
"""Seconds before the lock at which players are warned (5 min, 1 min, 10 s)."""
KICK_REASON = "Server restarting to update its mods; back in a few minutes"


class Step(StrEnum):
    """What the maintenance is doing (a front end translates each word)."""

    CHECKING = "checking for updates"
    WARNING = "warning players"
    LOCKING = "locking the server"
    KICKING = "kicking players"
    STOPPING = "stopping the server"
    STARTING = "starting the server"
    VERIFYING = "verifying the mods"


def warning_text(seconds: float) -> str:
    """The in-game countdown line (said as is: the game's chat has no locale)."""
    whole = max(1, round(seconds))
    if whole >= 60 and whole % 60 == 0:
        minutes = whole // 60
        when = f"{minutes} minute{'s' * (minutes != 1)}"
    else:
        when = f"{whole} second{'s' * (whole != 1)}"
    return f"Mod update: the server restarts in {when}; everyone will be kicked"


@dataclass(frozen=True, slots=True)
class ServerOutcome:
    name: str
    was_running: bool
    running: bool
    warnings: int = 0
    kicked: int = 0
    loaded: tuple[str, ...] = ()
    not_loaded: tuple[str, ...] = ()
    """Mods of the set the game's log does not show loaded."""
    verified: bool | None = None
    """None: nothing to verify, or the log showed no mod list in time."""
    problem: LanguardError | None = None
    expected: int = 0
    """Mods of the set the server itself loads (client and server-only ones)."""


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    mods: tuple[ModView, ...] = ()
    """Mods downloaded (updated or missing)."""
    held: tuple[ModView, ...] = ()
    """Pinned mods in scope: left at their version."""
    game: AppUpdated | None = None
    servers: tuple[ServerOutcome, ...] = ()
    failure: LanguardError | None = None
    """Why the download (or a stop) failed; the servers were started again anyway."""

    @property
    def up_to_date(self) -> bool:
        return not self.mods and self.game is None and self.failure is None and not self.servers


class Progress:
    """The caller's listener, told each step; a failing listener never stops the flow."""

    def __init__(self, listener: UpdateListener | None) -> None:
        self._listener = listener

    async def step(self, step: Step) -> None:
        await self.forward(JobUpdate(0, "mods maintenance", JobState.RUNNING, 0, step.value))

    async def forward(self, update: JobUpdate) -> None:
        if self._listener is None or update.state in FINISHED:
            return
        try:
            outcome = self._listener(update)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            _log.exception("a maintenance progress listener failed")


async def read_mod_list(lines: Subscription, server_id: int, timeout: float) -> ModListReader:
    """Read the server's published log lines until its `List of mods` table ends (or
    `timeout` s pass); the subscription was opened before the start."""
    reader = ModListReader()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not reader.done and (left := deadline - loop.time()) > 0:
        try:
            event = await lines.get(timeout=left)
        except (TimeoutError, StopAsyncIteration):
            break
        if isinstance(event, LogLines) and event.server_id == server_id:
            reader.feed(line.text for line in event.lines)
    return reader
