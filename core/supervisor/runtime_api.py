"""The one interface the supervisor runs games through: a runtime starts, adopts and finds
units (a game server or one of its companions), and a handle controls one running unit.

The state machine, restart policy, alerts, bans, missions and channels only ever see these
types, so they never know what runs a server: local processes (`core.supervisor.local_runtime`,
the embedded default) or a container on a Docker host (`core.docker`).

Contract, for every implementation:

- Nothing here is a child of the bot: a unit outlives the bot, and the next bot adopts it
  (by its recorded identity first, then by the marker/label every unit carries:
  `UnitRef.marker`). Closing a handle never stops its unit.
- `RunSpec.log_path` is the file the unit's output (stdout + stderr, one line per line)
  ends up in, appended. The local runtime makes it the process's stdout; a remote runtime
  copies its log stream into it, resuming from a cursor of its own so no line is lost or
  repeated. Tailers, saved offsets, rotation, `/logs` and alerts then work the same for
  every runtime. `RuntimeHandle.log_source()` says where the lines come from.
- Paths in a `RunSpec` (`cwd`, `log_path`) and config files are under `unit.folder`, the
  server's folder on the bot's side; a remote runtime maps it to the unit's volume there.
- Errors a member can act on are `LanguardError`s (StartRefused, PortInUse,
  ConfigWriteError, ExecutableNotFound...); `start` raises `OSError` when the unit could not
  be created at all (the server then goes `failed` with `strerror`).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from core.games.base import ConfigFile, PortNeed
from data.repositories.servers import ProcessRecord

__all__ = [
    "ExitStatus",
    "FoundUnit",
    "GameRuntime",
    "Limits",
    "LogSource",
    "ProcessRecord",
    "ResourceSample",
    "RunSpec",
    "RuntimeHandle",
    "Survey",
    "UnitRef",
    "wait_exit",
]


@dataclass(frozen=True, slots=True)
class UnitRef:
    """Which unit: a server of this installation, or one of its companions (`companion`)."""

    instance: str
    """This installation's id (core.supervisor.strays.instance_of): two bots never meet."""
    server_id: int
    server: str
    """The server's name (for unit names and log lines only: names can change)."""
    folder: Path
    """The server's folder on the bot's side (its console FIFO; a container's volume)."""
    companion: str | None = None
    """A companion's key (`hc-1`), None for the server itself."""

    @property
    def marker(self) -> str:
        """`<instance>/<server id>` or `<instance>/<server id>/<key>`: what finds a unit
        whose record was lost (an environment variable locally, a label on a container)."""
        base = f"{self.instance}/{self.server_id}"
        return base if self.companion is None else f"{base}/{self.companion}"


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits of one unit; None: no limit. The local runtime applies none."""

    cpus: float | None = None
    memory_bytes: int | None = None
    pids: int | None = None


@dataclass(frozen=True, slots=True)
class RunSpec:
    """Everything a runtime needs to run one unit; built by the supervisor from the profile."""

    unit: UnitRef
    argv: tuple[str, ...]
    """A command line as a list, never a shell string."""
    cwd: Path
    """Inside `unit.folder`, like every other path here."""
    log_path: Path
    """Where the unit's stdout and stderr are appended (see the module's contract)."""
    env: Mapping[str, str] = field(default_factory=dict)
    """The game's own variables (the profile's). The runtime adds what its units need
    (locally: PATH, LANG, HOME... of the bot, never its token or key) and the marker."""
    console: bool = False
    """The game reads commands on stdin: `RuntimeHandle.write_console` must work."""
    limits: Limits = Limits()


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """How a unit ended; code and signal both None when nobody could know (adopted)."""

    exit_code: int | None
    signal: int | None
    oom_killed: bool = False
    """The kernel killed it for lack of memory (a container's `OOMKilled`)."""

    def describe(self) -> str:
        if self.oom_killed:
            return "killed: out of memory"
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = f"signal {self.signal}"
            return f"killed by {name}"
        if self.exit_code is not None:
            return f"exit code {self.exit_code}"
        return "exited (code unknown: process was adopted)"


@dataclass(frozen=True, slots=True)
class ResourceSample:
    """CPU (percent of one core, since the previous sample) and resident memory."""

    cpu_percent: float
    rss_bytes: int


@dataclass(frozen=True, slots=True)
class LogSource:
    """Where a unit's output lines come from, for people (the lines always land in `path`)."""

    path: Path | None
    """None: not known to this handle (an adopted companion)."""
    origin: str
    """`stdout of pid 1234`, `log stream of container 3f2a… on host-b`."""


@dataclass(frozen=True, slots=True)
class FoundUnit:
    """A live unit carrying a marker, seen by `survey` and not adopted yet."""

    ident: str
    detail: Any = field(compare=False)
    """The runtime's own description (local: a ProcessIdentity); only it reads this."""


@dataclass(frozen=True, slots=True)
class Survey:
    """One look at everything of this installation a runtime runs, taken once at start-up
    so adopting N servers does not look N times. Within one key, the best candidate first."""

    servers: Mapping[int, Sequence[FoundUnit]] = field(default_factory=dict)
    companions: Mapping[int, Mapping[str, Sequence[FoundUnit]]] = field(default_factory=dict)


class RuntimeHandle(Protocol):
    """One running unit we started or adopted."""

    @property
    def ident(self) -> str:
        """The pid, or the container id: unique on its runtime while the unit lives."""

    @property
    def pid(self) -> int | None:
        """The OS process id when this machine's process table holds it (else None)."""

    @property
    def adopted(self) -> bool:
        """True when an earlier bot started it (its exit code may be unknown)."""

    @property
    def started_at(self) -> float:
        """Unix time the unit started (as recorded: kept across adoptions)."""

    def uptime(self) -> float: ...

    def describe(self) -> str:
        """How people name it in reasons and logs: `pid 1234`, `container 3f2a1b0c`."""

    def record(self) -> ProcessRecord | None:
        """What the database keeps to adopt it by identity after a bot restart; None when
        the runtime finds its units by label instead (the marker, see `GameRuntime.find`)."""

    def watch(self) -> asyncio.Future[ExitStatus]:
        """Start watching for the exit (idempotent); the future resolves once, when the unit
        really ended: a runtime that loses sight of its host leaves it pending."""

    def is_alive(self) -> bool:
        """Cheap and synchronous: whether the unit runs, as far as the runtime knows now."""

    async def signal(self, sig: signal.Signals) -> bool:
        """Signal the whole unit (process group, container); False: nothing was there."""

    def write_console(self, line: str) -> None:
        """One line to the game's stdin, without blocking. Raises OSError (ENOTSUP: this game
        has no console; any other: it cannot be written now) or ValueError (a line break)."""

    async def sample(self) -> ResourceSample | None:
        """CPU and memory of the unit (its whole process tree); None when unknown now."""

    def log_source(self) -> LogSource: ...

    def close(self) -> None:
        """Stop watching without touching the unit (the bot is going away; the game stays).
        A pending `watch()` future is cancelled."""


class GameRuntime(Protocol):
    """What runs units: the local machine's processes, or one Docker host."""

    @property
    def name(self) -> str:
        """`local`, or the host's name from hosts.toml."""

    @property
    def files_here(self) -> bool:
        """The unit's files are `unit.folder` on this machine (local processes, an engine
        here binding it); False: they live in a volume on another machine."""

    async def open(self) -> None:
        """Get ready before the first start or survey (the supervisor's start calls it)."""

    async def close(self) -> None:
        """Let go of connections; never stops a unit (the supervisor's close calls it)."""

    async def prepare(
        self,
        unit: UnitRef,
        *,
        files: Sequence[ConfigFile] = (),
        ports: Sequence[PortNeed] = (),
        check_executable: Callable[[], None] | None = None,
    ) -> None:
        """Refuse a start that cannot go well, then write its files; called before any
        state changes, so a refusal leaves the server as it was. In this order: the
        profile's `check_executable` (for a runtime that runs the game from this machine's
        disk), the `ports` (PortInUse, naming the holder when it can), then `files`,
        atomically, never outside `unit.folder`, secret ones 0600 (ConfigWriteError)."""

    async def start(self, spec: RunSpec) -> RuntimeHandle:
        """Create and start the unit (after `prepare`); OSError when that fails."""

    async def adopt(self, unit: UnitRef, record: ProcessRecord) -> RuntimeHandle | None:
        """The unit `record` names if it is still that very unit (never a reused pid)."""

    async def find(
        self, unit: UnitRef, found: Sequence[FoundUnit] | None = None, *, started_at: float
    ) -> Sequence[RuntimeHandle]:
        """Live units carrying `unit.marker`, best first: `found` (from `survey`), or a look
        now when None. `started_at` is the recorded start time when one is known."""

    async def survey(
        self, instance: str, *, servers: bool = True, companions: bool = True
    ) -> Survey:
        """Everything installation `instance` runs here, by server (and companion key); the
        parts not asked for stay empty."""

    async def sweep(self, unit: UnitRef) -> None:
        """Kill whatever still carries `unit.marker` once its main unit is gone (leftover
        children hold the game's ports)."""

    async def push(self, unit: UnitRef, paths: Sequence[Path]) -> None:
        """Make files the bot just wrote under `unit.folder` (a mission, mod keys) visible
        to the unit, and a path the bot removed there gone for it too: a no-op where the
        unit sees that folder itself; ConfigWriteError."""

    async def forget(self, unit: UnitRef) -> None:
        """A deleted server's leftovers on the runtime (a host's volume, exited
        containers); the bot-side folder is the caller's. Never raises for a host away."""


async def wait_exit(handle: RuntimeHandle, timeout: float) -> bool:
    """Wait up to `timeout` seconds for the unit to exit; False if it still runs."""
    exited = handle.watch()
    try:
        async with asyncio.timeout(timeout):
            await asyncio.shield(exited)
    except TimeoutError:
        return False
    return True
