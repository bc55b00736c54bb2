"""The Docker runtime: a `GameRuntime` (core.supervisor.runtime_api) for one host's engine.

Each unit (a server, or a companion such as an Arma 3 headless client) is one container
labelled with this installation, the server and the companion key, named after the
server, on the host's network. The server's folder (`UnitRef.folder`) is mounted at the
same path inside the container, so every path of a launch (cwd, config files, -profiles=)
means the same on both sides: a bind mount of the folder itself for an engine on the bot's
own machine, a named volume per server elsewhere. Units are found again by label, and a
record names its container (`docker:<id>` in the boot id), so a container that exited
while the bot was down is reported with its exit code.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, cast

from core.docker import containers
from core.docker.client import Engine, EngineEndpoint, EngineRefused, EngineUnreachable
from core.docker.containers import ContainerState
from core.docker.files import FileWrite, refusal, write_files
from core.docker.handle import DOCKER_BOOT_PREFIX, DockerHandle
from core.docker.spec import (
    INSTANCE_LABEL,
    SERVER_LABEL,
    ContainerSpec,
    Limits,
    Mount,
    container_name,
    create_body,
)
from core.docker.units import (
    COMPANION_LABEL,
    LOG_LABEL,
    is_unit,
    os_error,
    remove_volume,
    unseen_state,
    volume_name,
)
from core.errors import ConfigWriteError, PortInUse
from core.fsutil import is_within
from core.games.base import ConfigFile, PortNeed
from core.supervisor.launching import who_holds, write_config_files
from core.supervisor.ports import check_ports
from core.supervisor.runtime_api import (
    FoundUnit,
    GameRuntime,
    ProcessRecord,
    RunSpec,
    RuntimeHandle,
    Survey,
    UnitRef,
)

__all__ = ["COMPANION_LABEL", "LOG_LABEL", "DockerRuntime", "volume_name"]

_log = logging.getLogger(__name__)

CONSOLE_LOG = "console.log"

ImageFor = Callable[[UnitRef], str | None]
StaleFor = Callable[[UnitRef], Sequence[str]]


class DockerRuntime:
    """Runs units as containers on one engine.

    `image_for` says which image runs a unit (hosts.toml's per-game images), None when the
    host has none for its game; `bind_mounts` is for the engine on the bot's own machine
    (the default for a unix socket); `mounts` are added to every unit (e.g. a game install
    bound read-only). `stale_for` names what a hard kill of the unit's game leaves in its
    folder that the next start must not find (globs relative to the folder, the profile's
    `stale_files`): the bot's own cleanup cannot reach a volume on another machine.
    """

    def __init__(
        self,
        name: str,
        endpoint: EngineEndpoint,
        *,
        image_for: ImageFor,
        bind_mounts: bool | None = None,
        mounts: Sequence[Mount] = (),
        stale_for: StaleFor | None = None,
    ) -> None:
        self._name = name
        self.stale_for = stale_for
        self.mounts = tuple(mounts)
        self.endpoint = endpoint
        self.image_for = image_for
        self.bind_mounts = endpoint.scheme == "unix" if bind_mounts is None else bind_mounts
        self._engine: Engine | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def files_here(self) -> bool:
        return self.bind_mounts

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = Engine(self._name, self.endpoint)
        return self._engine

    async def open(self) -> None:
        # no call here: a host that is down at start must not stop the bot
        _ = self.engine

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.close()
            self._engine = None

    # -- the unit's container ------------------------------------------------------------

    def _data_mount(self, unit: UnitRef) -> Mount:
        target = str(unit.folder)
        if self.bind_mounts:
            return Mount(target, target, bind=True)
        return Mount(volume_name(unit), target)

    def _image(self, unit: UnitRef) -> str:
        image = self.image_for(unit)
        if image is None:
            raise OSError(errno.ENOENT, f"host {self._name} has no image for this game")
        return image

    async def _containers(self, unit: UnitRef, *, everything: bool) -> list[ContainerState]:
        filters = {
            "label": [f"{INSTANCE_LABEL}={unit.instance}", f"{SERVER_LABEL}={unit.server_id}"]
        }
        listed = await containers.list_labelled(self.engine, filters, everything=everything)
        return [state for state in listed if is_unit(state, unit)]

    def _handle(
        self, unit: UnitRef, state: ContainerState, *, started_at: float, adopted: bool
    ) -> DockerHandle:
        log_label = state.labels.get(LOG_LABEL)
        log_path = Path(log_label) if log_label else unit.folder / CONSOLE_LOG
        return DockerHandle(
            self.engine,
            state,
            log_path=log_path,
            started_at=started_at,
            adopted=adopted,
            console=state.open_stdin,
        )

    # -- GameRuntime ---------------------------------------------------------------------

    async def prepare(
        self,
        unit: UnitRef,
        *,
        files: Sequence[ConfigFile] = (),
        ports: Sequence[PortNeed] = (),
        check_executable: Callable[[], None] | None = None,
    ) -> None:
        # the executable lives in the image, not on this disk: check_executable does not apply
        if self.bind_mounts:  # the engine is on this machine, on its network: ports are ours
            try:
                check_ports(ports)
            except PortInUse as exc:
                raise await who_holds(exc, ports) from None
            write_config_files(unit.folder, files)
            return
        if not files:
            return
        for config in files:
            if not is_within(config.path, unit.folder):
                raise ConfigWriteError(
                    "refusing to write {name} outside the server", name=config.path.name
                )
        writes = [
            FileWrite(PurePosixPath(c.path), c.content, 0o600 if c.secret else 0o644) for c in files
        ]
        stale = () if self.stale_for is None else self.stale_for(unit)
        await self.write(unit, writes, patterns=stale)

    async def write(
        self,
        unit: UnitRef,
        writes: Sequence[FileWrite],
        removals: Sequence[PurePosixPath] = (),
        *,
        patterns: Sequence[str] = (),
    ) -> None:
        """Write files into the unit's volume atomically (configs, bans.txt, missions, keys),
        after removing `removals` and what the globs `patterns` match: in the running
        container when there is one, else through a helper container."""
        try:
            running = [s for s in await self._containers(unit, everything=False) if s.running]
            image = self._image(unit)
        except (EngineRefused, EngineUnreachable) as exc:
            raise refusal(writes, removals, str(exc)) from None
        except OSError as exc:
            raise refusal(writes, removals, exc.strerror or str(exc)) from None
        try:
            await write_files(
                self.engine,
                PurePosixPath(unit.folder),
                writes,
                removals=removals,
                patterns=patterns,
                running=running[0].id if running else None,
                image=image,
                mounts=[m.body() for m in (self._data_mount(unit), *self.mounts)],
                labels={INSTANCE_LABEL: unit.instance},
            )
        except EngineUnreachable as exc:
            raise refusal(writes, removals, str(exc)) from None

    async def start(self, spec: RunSpec) -> DockerHandle:
        unit = spec.unit
        image = self._image(unit)
        started_at = time.time()
        try:
            for old in await self._containers(unit, everything=True):
                if old.running:
                    raise OSError(errno.EEXIST, f"container {old.id[:12]} is already running")
                await containers.remove(self.engine, old.id, force=True)
            body = create_body(self._spec(spec, image, started_at))
            if unit.companion is not None:
                body["Labels"][COMPANION_LABEL] = unit.companion
            body["Labels"][LOG_LABEL] = str(spec.log_path)
            name = container_name(
                unit.server if unit.companion is None else f"{unit.server}-{unit.companion}",
                unit.server_id,
            )
            spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            try:
                container_id = await containers.create(self.engine, body, name)
            except EngineRefused as exc:
                if exc.status != containers.CONFLICT:
                    raise
                # the name is another installation's (ours were removed above)
                container_id = await containers.create(
                    self.engine, body, f"{name}-{unit.instance[:8]}"
                )
            try:
                await self._check_executable(container_id, spec.argv[0])
                await containers.start(self.engine, container_id)
            except (EngineRefused, OSError):
                await containers.remove(self.engine, container_id, force=True)
                raise
            state = await containers.inspect(self.engine, container_id)
        except (EngineRefused, EngineUnreachable) as exc:
            raise os_error(exc) from None
        if state is None:
            raise OSError(errno.ENOENT, "the container vanished as it started")
        return self._handle(unit, state, started_at=started_at, adopted=False)

    async def _check_executable(self, container_id: str, executable: str) -> None:
        """With an init as PID 1 a missing program is a quick exit 127, not a failed start:
        look for it first, in the created container (image and mounts)."""
        if executable.startswith("/") and not await containers.path_exists(
            self.engine, container_id, executable
        ):
            raise OSError(
                errno.ENOENT, f"{executable} is not in the image or mounts of host {self._name}"
            )

    def _spec(self, spec: RunSpec, image: str, started_at: float) -> ContainerSpec:
        unit = spec.unit
        return ContainerSpec(
            server_id=unit.server_id,
            instance=unit.instance,
            name=unit.server,
            image=image,
            argv=spec.argv,
            workdir=str(spec.cwd),
            data=self._data_mount(unit),
            mounts=self.mounts,
            env=dict(spec.env),
            limits=Limits(spec.limits.cpus, spec.limits.memory_bytes, spec.limits.pids),
            console=spec.console,
            started_at=started_at,
        )

    async def adopt(self, unit: UnitRef, record: ProcessRecord) -> DockerHandle | None:
        """The recorded container if it is still this unit's. One that exited while the bot
        was down is returned too (not running): its watch resolves at once with its exit
        code and OOM flag, so the supervisor reports that crash as it was."""
        if not record.boot_id.startswith(DOCKER_BOOT_PREFIX):
            return None
        container_id = record.boot_id.removeprefix(DOCKER_BOOT_PREFIX)
        try:
            state = await containers.inspect(self.engine, container_id)
        except EngineUnreachable:
            # the host is away, not the game: keep it as running, unseen; the handle's
            # watch asks again until the engine answers (then running, or its exit code)
            _log.warning("%s: host %s does not answer; kept as unknown", unit.server, self._name)
            state = unseen_state(unit, container_id, console=True)
        except EngineRefused as exc:
            _log.warning("%s: cannot look at container %s: %s", unit.server, container_id, exc)
            return None
        if state is None or not is_unit(state, unit):
            return None
        return self._handle(unit, state, started_at=record.started_at, adopted=True)

    async def find(
        self, unit: UnitRef, found: Sequence[FoundUnit] | None = None, *, started_at: float
    ) -> list[DockerHandle]:
        if found is None:
            try:
                states = await self._containers(unit, everything=False)
            except (EngineRefused, EngineUnreachable) as exc:
                _log.warning("%s: cannot list containers: %s", unit.server, exc)
                return []
        else:
            states = [item.detail for item in found if isinstance(item.detail, ContainerState)]
        return [
            self._handle(unit, s, started_at=s.requested_at or started_at, adopted=True)
            for s in states
            if s.running
        ]

    async def survey(
        self, instance: str, *, servers: bool = True, companions: bool = True
    ) -> Survey:
        filters = {"label": [f"{INSTANCE_LABEL}={instance}", SERVER_LABEL]}
        try:
            listed = await containers.list_labelled(self.engine, filters, everything=False)
        except (EngineRefused, EngineUnreachable) as exc:
            _log.warning("host %s: cannot list containers: %s", self._name, exc)
            return Survey()
        by_server: dict[int, list[FoundUnit]] = {}
        by_key: dict[int, dict[str, list[FoundUnit]]] = {}
        for state in reversed(listed):  # newest first: the best candidate
            server_id = state.server_id
            if server_id is None or not state.running:
                continue
            key = state.labels.get(COMPANION_LABEL)
            if key is None and servers:
                by_server.setdefault(server_id, []).append(FoundUnit(state.id, state))
            elif key is not None and companions:
                by_key.setdefault(server_id, {}).setdefault(key, []).append(
                    FoundUnit(state.id, state)
                )
        return Survey(servers=by_server, companions=by_key)

    async def push(self, unit: UnitRef, paths: Sequence[Path]) -> None:
        """The volume's copy of each path becomes the bot's: written when the file is
        here, removed when it is not (a deleted mission, a key of a mod that left)."""
        if self.bind_mounts:
            return  # the container sees the bot's folder itself
        writes: list[FileWrite] = []
        removals: list[PurePosixPath] = []
        for path in paths:
            if not is_within(path, unit.folder):
                raise ConfigWriteError(
                    "refusing to write {name} outside the server", name=path.name
                )
            try:
                mode = path.stat().st_mode & 0o777
                content = path.read_bytes()
            except FileNotFoundError:
                removals.append(PurePosixPath(path))
                continue
            except OSError as exc:
                raise ConfigWriteError(
                    "cannot write {name}: {reason}", name=path.name, reason=exc.strerror
                ) from None
            writes.append(FileWrite(PurePosixPath(path), content, mode))
        if writes or removals:
            await self.write(unit, writes, removals)

    async def forget(self, unit: UnitRef) -> None:
        try:
            await remove_volume(self.engine, unit)
        except (EngineRefused, EngineUnreachable) as exc:
            _log.warning(
                "%s: its volume on host %s was not removed: %s", unit.server, self._name, exc
            )

    async def sweep(self, unit: UnitRef) -> None:
        try:
            for state in await self._containers(unit, everything=False):
                if state.running:
                    await containers.kill(self.engine, state.id)
        except (EngineRefused, EngineUnreachable) as exc:
            _log.warning("%s: sweep on host %s failed: %s", unit.server, self._name, exc)


if TYPE_CHECKING:  # mypy checks that both sides of the seam fit
    _runtime: GameRuntime = DockerRuntime("x", EngineEndpoint("unix:///x"), image_for=str)
    _handle: RuntimeHandle = cast(DockerHandle, None)
