"""The runtime of a host a server's record names but hosts.toml no longer declares.

Why not fall back to local processes: the game may well still run over there, so taking
its record for a crash and restarting it here would run it twice. Instead the server keeps
its recorded unit as unknown (never crashed, never restarted), refuses to start with what
to do, and is taken back as soon as the operator declares the host again and restarts.
"""

from __future__ import annotations

import asyncio
import errno
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

from core.errors import ConfigWriteError, StartRefused
from core.games.base import ConfigFile, PortNeed
from core.supervisor.runtime_api import (
    ExitStatus,
    FoundUnit,
    GameRuntime,
    LogSource,
    ProcessRecord,
    ResourceSample,
    RunSpec,
    RuntimeHandle,
    Survey,
    UnitRef,
)

__all__ = ["AbsentHandle", "AbsentRuntime"]


class AbsentHandle:
    """A recorded unit on a host nobody can reach: alive as far as we know, never ends."""

    def __init__(self, host: str, record: ProcessRecord) -> None:
        self._host = host
        self._record = record
        self._exited: asyncio.Future[ExitStatus] | None = None

    @property
    def ident(self) -> str:
        return self._record.boot_id or str(self._record.pid)

    @property
    def pid(self) -> int | None:
        return None

    @property
    def adopted(self) -> bool:
        return True

    @property
    def started_at(self) -> float:
        return self._record.started_at

    def uptime(self) -> float:
        return max(0.0, time.time() - self._record.started_at)

    def describe(self) -> str:
        return f"unit on host {self._host} (not declared in hosts.toml)"

    def record(self) -> ProcessRecord:
        return self._record  # kept as it was, for when the host is declared again

    def watch(self) -> asyncio.Future[ExitStatus]:
        if self._exited is None:
            self._exited = asyncio.get_running_loop().create_future()
        return self._exited

    def is_alive(self) -> bool:
        return True

    async def signal(self, sig: signal.Signals) -> bool:
        return False

    def write_console(self, line: str) -> None:
        raise OSError(errno.EHOSTUNREACH, f"host {self._host} is not declared")

    async def sample(self) -> ResourceSample | None:
        return None

    def log_source(self) -> LogSource:
        return LogSource(None, f"host {self._host}, not declared in hosts.toml")

    def close(self) -> None:
        if self._exited is not None and not self._exited.done():
            self._exited.cancel()


class AbsentRuntime:
    """Runs nothing; keeps what its records name as unknown."""

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def files_here(self) -> bool:
        return False

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def prepare(
        self,
        unit: UnitRef,
        *,
        files: Sequence[ConfigFile] = (),
        ports: Sequence[PortNeed] = (),
        check_executable: Callable[[], None] | None = None,
    ) -> None:
        raise StartRefused(
            "{server} is on host {host}, which hosts.toml no longer declares: declare it "
            "again and restart the bot",
            server=unit.server,
            host=self._name,
        )

    async def start(self, spec: RunSpec) -> RuntimeHandle:
        raise OSError(errno.EHOSTUNREACH, f"host {self._name} is not declared")

    async def adopt(self, unit: UnitRef, record: ProcessRecord) -> RuntimeHandle | None:
        return AbsentHandle(self._name, record)

    async def find(
        self, unit: UnitRef, found: Sequence[FoundUnit] | None = None, *, started_at: float
    ) -> Sequence[RuntimeHandle]:
        return ()

    async def survey(
        self, instance: str, *, servers: bool = True, companions: bool = True
    ) -> Survey:
        return Survey()

    async def sweep(self, unit: UnitRef) -> None:
        return None

    async def push(self, unit: UnitRef, paths: Sequence[Path]) -> None:
        if paths:
            raise ConfigWriteError(
                "cannot write {name}: {reason}",
                name=paths[0].name,
                reason=f"host {self._name} is not declared in hosts.toml",
            )

    async def forget(self, unit: UnitRef) -> None:
        return None


if TYPE_CHECKING:  # mypy checks that both sides of the seam fit
    _runtime: GameRuntime = AbsentRuntime("x")
    _handle: RuntimeHandle = cast(AbsentHandle, None)
