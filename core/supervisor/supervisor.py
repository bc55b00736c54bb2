"""The supervisor: owns every ManagedServer, re-adopts them at start, samples their metrics.

Closing the supervisor lets go of the processes; it never stops a game server. Log read
positions are checkpointed every second and at close, so a restarted bot resumes each log
where it was.

Each server runs on a runtime (core.supervisor.runtime_api): `local` processes unless
`runtime_of` names another one registered with `add_runtime` (a Docker host).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from core.aio import cancel_and_wait
from core.errors import NotFound
from core.events import EventBus, ServerMetrics
from core.games.base import GameBan, ProfileRegistry, ServerContext
from core.logs.rotation import RotationPolicy
from core.logs.tailer import LogPosition
from core.logs.watcher import LogWatcher
from core.secrets import SecretBox, SecretError
from core.supervisor.absent_runtime import AbsentRuntime
from core.supervisor.local_runtime import LOCAL, LocalRuntime
from core.supervisor.policy import LifecyclePolicy
from core.supervisor.record_keeper import StorageErrors
from core.supervisor.runtime_api import GameRuntime, Survey
from core.supervisor.server import ManagedServer, ServerDeps
from core.supervisor.server_logs import READER, ServerLogs, resume_positions, rotation_floor
from core.supervisor.strays import instance_of
from data.db import Database
from data.repositories.history import HistoryRepository
from data.repositories.servers import ServerRecord, ServerRepository
from data.repositories.settings import SecretRepository, SettingsRepository
from data.repositories.telemetry import LogOffsetRepository, MetricSample, MetricsRepository

__all__ = ["Supervisor"]

_log = logging.getLogger(__name__)


class Supervisor:
    def __init__(
        self,
        *,
        db: Database,
        bus: EventBus,
        data_dir: Path,
        profiles: ProfileRegistry,
        secret_box: SecretBox,
        metrics_interval: float = 15.0,
        metrics_retention: float | None = 7 * 86400.0,
        checkpoint_interval: float = 1.0,
        log_rotation: RotationPolicy | None = None,
    ) -> None:
        self.db = db
        self.bus = bus
        self.data_dir = data_dir
        self.profiles = profiles
        self._box = secret_box
        self.servers_repo = ServerRepository(db)
        self.history = HistoryRepository(db)
        self.settings_repo = SettingsRepository(db)
        self.secrets_repo = SecretRepository(db)
        self.offsets = LogOffsetRepository(db)
        self.metrics = MetricsRepository(db)
        self.watcher = LogWatcher()
        self._servers: dict[int, ManagedServer] = {}
        self._saved: dict[tuple[int, str], LogPosition] = {}
        self._metrics_interval = metrics_interval
        self._metrics_retention = metrics_retention
        self._checkpoint_interval = checkpoint_interval
        self.log_rotation = log_rotation or RotationPolicy()
        self._loops: list[asyncio.Task[None]] = []
        self.runtimes: dict[str, GameRuntime] = {LOCAL: LocalRuntime()}
        """Every runtime a server may run on, by name; `local` is always there."""
        self.runtime_of: Callable[[ServerRecord], Awaitable[str]] | None = None
        """Set by the hosts service: the name of the runtime a server runs on (None: every
        server runs locally). Asked once, when the server is loaded or created."""
        self.away: Callable[[ManagedServer], bool] | None = None
        """Set by the hosts: whether a server's host does not answer now (its game cannot
        be reached, so nothing automatic should try to stop or restart it)."""
        self.address_of: Callable[[int], str | None] | None = None
        """Set by the hosts: where the bot reaches a server's ports when its host is another
        machine (None: this machine)."""
        self.bans_provider: Callable[[int], Awaitable[Sequence[GameBan]]] | None = None
        """Set by the BanService: the active bans a server's context (and ban file) gets."""
        self.paused_provider: Callable[[int], bool] | None = None
        """Set by the ScheduleService: whether a server is in maintenance, known before
        re-adoption so a crash found at start-up is neither alerted nor restarted."""
        self.players_provider: Callable[[ManagedServer], int | None] | None = None
        """Set at wiring: how many players a server has now (the PlayerService's live list;
        None when the game cannot be asked), stored with each metrics sample."""
        self.instance = instance_of(data_dir)
        self._unreadable_logged: set[tuple[int, str]] = set()
        self.heartbeat: float | None = None
        """`time.monotonic()` of the checkpoint loop's last turn (health: the loop is alive)."""
        self._deps = ServerDeps(
            bus=bus,
            db=db,
            servers=self.servers_repo,
            history=self.history,
            context=self.context,
            policy=self.policy,
            instance=self.instance,
            folder=self.folder_for,
        )

    # -- lifecycle -----------------------------------------------------------------------

    def add_runtime(self, runtime: GameRuntime) -> None:
        """Offer another runtime (a Docker host) to the servers `runtime_of` places there."""
        self.runtimes[runtime.name] = runtime

    async def start(self) -> None:
        """Load every server, re-adopt the live ones, start the background loops.

        One survey per runtime finds every game carrying this installation's marker, so a
        game whose record never reached the database is adopted too, and its companions.
        """
        for runtime in self.runtimes.values():
            await runtime.open()
        surveys: dict[str, Survey] = {}
        for runtime in self.runtimes.values():
            surveys[runtime.name] = await runtime.survey(self.instance)
        for record in await self.servers_repo.list():
            if record.game not in self.profiles:
                _log.warning("server %s uses unknown game %s; skipped", record.name, record.game)
                continue
            server = await self._register(record)
            survey = surveys.get(server.runtime.name) or Survey()
            outcome = await server.resume(
                survey.servers.get(record.id, ()), survey.companions.get(record.id, {})
            )
            _log.info("server %s: %s", record.name, outcome)
        self.watcher.start()
        self._loops.append(asyncio.create_task(self._checkpoint_loop(), name="log-checkpoints"))
        self._loops.append(asyncio.create_task(self._metrics_loop(), name="metrics"))

    async def close(self) -> None:
        """Let go of everything without stopping any game server."""
        await cancel_and_wait(self._loops)
        self._loops.clear()
        # the watcher stops first: a poll of its own between the last flush and the saved
        # positions would publish lines the next bot reads again
        await self.watcher.stop()
        for server in self._servers.values():
            await server.logs.flush()
        try:
            await self.save_positions()
        except StorageErrors as exc:  # a full disk must not keep the bot from closing
            _log.error("saving log positions at close failed: %s", exc)
        for server in self._servers.values():
            await server.detach()
        for runtime in self.runtimes.values():
            await runtime.close()

    async def _register(self, record: ServerRecord) -> ManagedServer:
        logs = ServerLogs(
            server_id=record.id,
            server=record.name,
            bus=self.bus,
            watcher=self.watcher,
            rotation=self.log_rotation,
        )
        profile = self.profiles.get(record.game)
        ctx = await self.context(record.id, record.name)
        positions = resume_positions(await self.offsets.load(record.id))
        for source, position in positions.items():
            self._saved[(record.id, source)] = position
        logs.attach(profile.log_sources(ctx), positions)
        server = ManagedServer(record, profile, logs, self._deps, await self._runtime_for(record))
        if self.paused_provider is not None:
            server.paused = self.paused_provider(record.id)
        self._servers[record.id] = server
        return server

    async def _runtime_for(self, record: ServerRecord) -> GameRuntime:
        name = LOCAL if self.runtime_of is None else await self.runtime_of(record)
        runtime = self.runtimes.get(name)
        if runtime is None:  # a host taken out of hosts.toml: say so, run nothing there
            _log.error(
                "server %s is on host %s, which is not declared: kept as unknown", record.name, name
            )
            runtime = self.runtimes[name] = AbsentRuntime(name)
        return runtime

    async def add(self, record: ServerRecord) -> ManagedServer:
        """Supervise a server that was just created."""
        return await self._register(record)

    async def push_files(self, server_id: int, paths: Sequence[Path]) -> None:
        """Make what the bot just changed in a server's folder (a mission, mod keys) true
        where the game runs: a volume on another host gets each file, or loses it when it
        is gone here; a no-op where the game sees the folder itself. ConfigWriteError."""
        server = self.get(server_id)
        await server.runtime.push(server.unit(), paths)

    async def remove(self, server_id: int) -> None:
        """Forget a stopped server (its files and rows are handled by the caller)."""
        server = self._servers.pop(server_id, None)
        if server is not None:
            await server.detach()

    # -- lookups -----------------------------------------------------------------------

    def get(self, server_id: int) -> ManagedServer:
        try:
            return self._servers[server_id]
        except KeyError:
            raise NotFound("no server with id {server_id}", server_id=server_id) from None

    def by_name(self, name: str) -> ManagedServer:
        for server in self._servers.values():
            if server.name == name:
                return server
        raise NotFound("no server named {name!r}", name=name)

    def all(self) -> list[ManagedServer]:
        return sorted(self._servers.values(), key=lambda s: s.name)

    def host_away(self, server: ManagedServer) -> bool:
        return self.away is not None and self.away(server)

    def folder_for(self, name: str) -> Path:
        return self.data_dir / "servers" / name

    async def context(self, server_id: int, name: str) -> ServerContext:
        settings = await self.settings_repo.get_all(server_id)
        secrets: dict[str, str] = {}
        unreadable: list[str] = []
        for key in await self.secrets_repo.keys(server_id):
            token = await self.secrets_repo.get(server_id, key)
            if token is None:
                continue
            try:
                secrets[key] = self._box.decrypt(token)
            except SecretError:
                # one damaged row or a changed key must not stop the bot: that server
                # refuses to start, with the fix, and every other server runs
                unreadable.append(key)
                if (server_id, key) not in self._unreadable_logged:
                    self._unreadable_logged.add((server_id, key))
                    _log.error(
                        "server %s: the stored %s cannot be decrypted with this key; "
                        "set it again with /server set or restore the old key",
                        name,
                        key,
                    )
        bans = tuple(await self.bans_provider(server_id)) if self.bans_provider else ()
        return ServerContext(
            server_id=server_id,
            name=name,
            folder=self.folder_for(name),
            settings=settings,
            secrets=secrets,
            bans=bans,
            unreadable_secrets=tuple(unreadable),
            address=None if self.address_of is None else self.address_of(server_id),
        )

    async def policy(self, server_id: int) -> LifecyclePolicy:
        return LifecyclePolicy.from_settings(await self.settings_repo.get_all(server_id))

    # -- log positions -------------------------------------------------------------------

    async def save_positions(self) -> None:
        """Persist the tailers' read positions that moved since the last save."""
        changed: list[tuple[int, str, LogPosition]] = []
        for server in self._servers.values():
            for source, position in server.logs.positions().items():
                if self._saved.get((server.id, source)) != position:
                    changed.append((server.id, source, position))
        if not changed:
            return
        async with self.db.transaction():
            for server_id, source, position in changed:
                await self.offsets.save(
                    server_id, source, READER, position.file_id, position.offset
                )
        for server_id, source, position in changed:
            self._saved[(server_id, source)] = position

    async def _checkpoint_loop(self) -> None:
        while True:
            self.heartbeat = time.monotonic()
            await asyncio.sleep(self._checkpoint_interval)
            try:
                await self.save_positions()
                await self.rotate_logs()
            except Exception:
                _log.exception("saving log positions failed")

    async def rotate_logs(self) -> None:
        """Rotate each console.log past its size, up to what every consumer committed."""
        for server in tuple(self._servers.values()):
            due = server.logs.due_for_rotation()
            if not due:
                continue
            stored = await self.offsets.load(server.id)
            for source, file_id in due:
                lag = self.log_rotation.max_bytes
                floor = rotation_floor(stored, source, file_id, lag)
                if floor is not None:
                    await server.logs.rotate(source, floor)

    # -- metrics -----------------------------------------------------------------------

    async def sample(self, server: ManagedServer) -> MetricSample | None:
        """CPU% (since the previous sample) and RSS of the server's unit, as its runtime
        measures them (locally: the process tree)."""
        handle = server.handle
        if handle is None:
            return None
        use = await handle.sample()
        if use is None:
            return None
        players = None if self.players_provider is None else self.players_provider(server)
        return MetricSample(server.id, time.time(), use.cpu_percent, use.rss_bytes, players)

    async def _metrics_loop(self) -> None:
        last_prune = 0.0
        while True:
            await asyncio.sleep(self._metrics_interval)
            taken = [await self.sample(server) for server in tuple(self._servers.values())]
            samples = [s for s in taken if s is not None]
            try:
                if samples:
                    await self.metrics.add_many(samples)
                # None: the StatsService folds old samples into the history instead
                if self._metrics_retention is not None and time.time() - last_prune > 3600:
                    last_prune = time.time()
                    await self.metrics.prune(time.time() - self._metrics_retention)
            except Exception:
                _log.exception("storing metrics failed")
            for sample in samples:
                server = self._servers.get(sample.server_id)
                self.bus.publish(
                    ServerMetrics(
                        server_id=sample.server_id,
                        server=server.name if server else "",
                        cpu_percent=sample.cpu_percent,
                        rss_bytes=sample.rss_bytes,
                    )
                )
