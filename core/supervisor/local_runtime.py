"""The local runtime: games as processes of this machine (the embedded default).

Each unit is a process in its own session (and its own systemd scope when there is one),
its output appended to `RunSpec.log_path`, stdin from `console.fifo` in the server folder
when the game has a console. It is found again by pid + start time since boot + boot id
(the database's record), or by its marker in /proc/<pid>/environ: `LANGUARD_SERVER` for
a server, `LANGUARD_COMPANION` for a companion (see core.supervisor.strays).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

from core.errors import PortInUse
from core.games.base import ConfigFile, PortNeed
from core.supervisor.launching import game_env, who_holds, write_config_files
from core.supervisor.ports import check_ports
from core.supervisor.process import ProcessHandle, ProcessIdentity, adopt, spawn
from core.supervisor.runtime_api import FoundUnit, ProcessRecord, RunSpec, Survey, UnitRef
from core.supervisor.spawn_mode import default_spawn_mode
from core.supervisor.strays import (
    COMPANION_ENV,
    MARKER_ENV,
    scan_companions,
    scan_marked,
    sweep_marked,
)

__all__ = ["CONSOLE_FIFO", "CONSOLE_LOG", "LOCAL", "LocalRuntime"]

LOCAL = "local"
CONSOLE_FIFO = "console.fifo"
CONSOLE_LOG = "console.log"


class LocalRuntime:
    """Runs units as local processes; holds no state of its own (the kernel does)."""

    name = LOCAL

    @property
    def files_here(self) -> bool:
        return True

    async def open(self) -> None:
        # systemd-run is probed once, off the loop, so no start ever waits on it
        await asyncio.to_thread(default_spawn_mode)

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
        if check_executable is not None:
            check_executable()
        try:
            check_ports(ports)
        except PortInUse as exc:
            raise await who_holds(exc, ports) from None
        write_config_files(unit.folder, files)

    async def start(self, spec: RunSpec) -> ProcessHandle:
        unit = spec.unit
        marker = {_marker_env(unit): unit.marker}
        return spawn(
            spec.argv,
            cwd=spec.cwd,
            log_path=spec.log_path,
            env=game_env(spec.env, marker),
            console_path=unit.folder / CONSOLE_FIFO if spec.console else None,
            unit=unit.marker,
        )

    async def adopt(self, unit: UnitRef, record: ProcessRecord) -> ProcessHandle | None:
        identity = ProcessIdentity(record.pid, record.create_time, record.cmdline, record.boot_id)
        return adopt(
            identity,
            console_path=_console(unit),
            started_at=record.started_at,
            log_path=_log_path(unit),
        )

    async def find(
        self, unit: UnitRef, found: Sequence[FoundUnit] | None = None, *, started_at: float
    ) -> list[ProcessHandle]:
        if found is None:
            survey = await self.survey(
                unit.instance, servers=unit.companion is None, companions=unit.companion is not None
            )
            found = _of_unit(survey, unit)
        handles = []
        for item in found:
            identity: ProcessIdentity = item.detail
            handle = adopt(
                identity,
                console_path=_console(unit),
                started_at=started_at,
                log_path=_log_path(unit),
            )
            if handle is not None:
                handles.append(handle)
        return handles

    async def survey(
        self, instance: str, *, servers: bool = True, companions: bool = True
    ) -> Survey:
        return await asyncio.to_thread(_survey, instance, servers, companions)

    async def sweep(self, unit: UnitRef) -> None:
        await sweep_marked(unit.instance, unit.server_id, unit.server)

    async def push(self, unit: UnitRef, paths: Sequence[Path]) -> None:
        return None  # the game runs in this very folder

    async def forget(self, unit: UnitRef) -> None:
        return None  # nothing lives outside the folder, which the caller archives


def _survey(instance: str, servers: bool, companions: bool) -> Survey:
    marked = scan_marked(instance) if servers else {}
    mates = scan_companions(instance) if companions else {}
    return Survey(
        servers={sid: [_found(i) for i in ids] for sid, ids in marked.items()},
        companions={
            sid: {key: [_found(i) for i in ids] for key, ids in keys.items()}
            for sid, keys in mates.items()
        },
    )


def _found(identity: ProcessIdentity) -> FoundUnit:
    return FoundUnit(str(identity.pid), identity)


def _of_unit(survey: Survey, unit: UnitRef) -> Sequence[FoundUnit]:
    if unit.companion is None:
        return survey.servers.get(unit.server_id, ())
    return survey.companions.get(unit.server_id, {}).get(unit.companion, ())


def _marker_env(unit: UnitRef) -> str:
    return MARKER_ENV if unit.companion is None else COMPANION_ENV


def _console(unit: UnitRef) -> Path | None:
    if unit.companion is not None:
        return None
    console = unit.folder / CONSOLE_FIFO
    return console if console.exists() else None


def _log_path(unit: UnitRef) -> Path | None:
    return unit.folder / CONSOLE_LOG if unit.companion is None else None
