"""The supervisor runs a server through any GameRuntime: here one that runs nothing at all.

`MemoryRuntime` keeps its units in a dict: no process, no pid, files kept in memory, a
console that is a list. Its units "print" by appending to `RunSpec.log_path`, as the
runtime contract asks (core.supervisor.runtime_api). The real state machine, restart
policy, readiness, graceful stop, metrics and adoption run against it unchanged, which
proves they do not depend on local processes.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from core.errors import PortInUse
from core.events import Event, EventBus, ServerCrashed, Subscription
from core.games.base import ConfigFile, PortNeed, ProfileRegistry
from core.secrets import SecretBox
from core.supervisor.runtime_api import (
    ExitStatus,
    FoundUnit,
    GameRuntime,
    Limits,
    LogSource,
    ProcessRecord,
    ResourceSample,
    RunSpec,
    RuntimeHandle,
    Survey,
    UnitRef,
)
from core.supervisor.server import ManagedServer
from core.supervisor.states import ServerState
from core.supervisor.supervisor import Supervisor
from data.db import Database
from data.repositories.servers import ServerRepository
from data.repositories.settings import SettingsRepository
from tests.fakes.fake_profile import FakeProfile

S = ServerState
FAST = {
    "stop_timeout": 0.5,
    "term_timeout": 1.0,
    "start_timeout": 10.0,
    "backoff_base": 0.1,
    "backoff_cap": 0.5,
    "crash_window": 60.0,
}
_ids = itertools.count(1)


class MemoryUnit:
    """A unit that exists only in this dict-backed runtime."""

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self.ident = f"mem-{next(_ids)}"
        self.pid: int | None = None
        self.adopted = False
        self.started_at = time.time()
        self.console: list[str] = []
        self.signals: list[signal.Signals] = []
        self.ignore_term = False
        self.ended: ExitStatus | None = None
        self._exited: asyncio.Future[ExitStatus] | None = None

    # -- what the test does to it ----------------------------------------------------------

    def say(self, text: str) -> None:
        """Output of the unit: appended to the log file, as the runtime contract asks."""
        with self.spec.log_path.open("a", encoding="utf-8") as log:
            log.write(text + "\n")

    def end(self, status: ExitStatus) -> None:
        self.ended = status
        if self._exited is not None and not self._exited.done():
            self._exited.set_result(status)

    # -- RuntimeHandle -----------------------------------------------------------------------

    def uptime(self) -> float:
        return max(0.0, time.time() - self.started_at)

    def describe(self) -> str:
        return f"unit {self.ident}"

    def record(self) -> ProcessRecord | None:
        return None  # found again by its marker, like a labelled container

    def watch(self) -> asyncio.Future[ExitStatus]:
        if self._exited is None:
            self._exited = asyncio.get_running_loop().create_future()
            if self.ended is not None:
                self._exited.set_result(self.ended)
        return self._exited

    def is_alive(self) -> bool:
        return self.ended is None

    async def signal(self, sig: signal.Signals) -> bool:
        if self.ended is not None:
            return False
        self.signals.append(sig)
        if sig is signal.SIGKILL or not self.ignore_term:
            self.end(ExitStatus(None, int(sig)))
        return True

    def write_console(self, line: str) -> None:
        if not self.spec.console:
            raise OSError(95, "this game has no console")
        self.console.append(line)
        if line == "stop":
            asyncio.get_running_loop().call_soon(self.end, ExitStatus(0, None))

    async def sample(self) -> ResourceSample | None:
        return ResourceSample(12.5, 42 * 1024 * 1024)

    def log_source(self) -> LogSource:
        return LogSource(self.spec.log_path, f"memory {self.ident}")

    def close(self) -> None:
        if self._exited is not None and not self._exited.done():
            self._exited.cancel()
        self._exited = None


class MemoryRuntime:
    """Runs nothing: units live in `units`, config files in `files`."""

    name = "memory"

    def __init__(self) -> None:
        self.units: list[MemoryUnit] = []
        self.files: dict[Path, bytes] = {}
        self.taken_ports: set[tuple[int, str]] = set()
        self.sweeps: list[str] = []
        self.opened = 0
        self.closed = 0

    def live(self, unit: UnitRef) -> list[MemoryUnit]:
        return [u for u in self.units if u.spec.unit.marker == unit.marker and u.is_alive()]

    async def open(self) -> None:
        self.opened += 1

    async def close(self) -> None:
        self.closed += 1

    async def prepare(
        self,
        unit: UnitRef,
        *,
        files: Sequence[ConfigFile] = (),
        ports: Sequence[PortNeed] = (),
        check_executable: Callable[[], None] | None = None,
    ) -> None:
        # the game lives in an image here: this machine's executable does not matter
        for need in ports:
            if (need.port, need.protocol) in self.taken_ports:
                raise PortInUse(need.port, need.protocol)
        for config in files:
            self.files[config.path] = config.content

    async def start(self, spec: RunSpec) -> MemoryUnit:
        unit = MemoryUnit(spec)
        self.units.append(unit)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        unit.say("booting")
        unit.say("READY")
        return unit

    async def adopt(self, unit: UnitRef, record: ProcessRecord) -> RuntimeHandle | None:
        raise AssertionError("a memory unit has no record to adopt by")

    async def find(
        self, unit: UnitRef, found: Sequence[FoundUnit] | None = None, *, started_at: float
    ) -> Sequence[MemoryUnit]:
        live = self.live(unit)
        if found is not None:
            wanted = {item.ident for item in found}
            live = [u for u in live if u.ident in wanted]
        for handle in live:
            handle.adopted = True
        return live

    async def survey(
        self, instance: str, *, servers: bool = True, companions: bool = True
    ) -> Survey:
        found: dict[int, list[FoundUnit]] = {}
        for unit in self.units:
            ref = unit.spec.unit
            if servers and unit.is_alive() and ref.instance == instance:
                found.setdefault(ref.server_id, []).append(FoundUnit(unit.ident, unit))
        return Survey(servers=found)

    async def sweep(self, unit: UnitRef) -> None:
        self.sweeps.append(unit.marker)


def _as_runtime(runtime: MemoryRuntime) -> GameRuntime:
    return runtime  # mypy checks here that MemoryRuntime implements the interface


@dataclass
class Env:
    supervisor: Supervisor
    bus: EventBus
    db: Database
    data_dir: Path

    async def add_server(self, name: str, **settings: Any) -> ManagedServer:
        record = await ServerRepository(self.db).create(name, "fake")
        await SettingsRepository(self.db).set_many(record.id, {**FAST, **settings})
        return await self.supervisor.add(record)


@asynccontextmanager
async def on_memory(
    tmp_path: Path, runtime: MemoryRuntime, db: Database | None = None
) -> AsyncIterator[Env]:
    data_dir = tmp_path / "data"
    own_db = db is None
    db = db or await Database.open(data_dir / "languard.db")
    bus = EventBus()
    # an executable that does not exist here: the memory runtime never asks for it
    profile = FakeProfile(executable=Path("/nonexistent") / Path(sys.executable).name)
    supervisor = Supervisor(
        db=db,
        bus=bus,
        data_dir=data_dir,
        profiles=ProfileRegistry([profile]),
        secret_box=SecretBox(Fernet.generate_key()),
        checkpoint_interval=0.2,
    )
    supervisor.add_runtime(_as_runtime(runtime))

    async def memory(record: object) -> str:
        return runtime.name

    supervisor.runtime_of = memory
    await supervisor.start()
    try:
        yield Env(supervisor, bus, db, data_dir)
    finally:
        await supervisor.close()
        if own_db:
            await db.close()


async def next_event(sub: Subscription, kind: type[Event], timeout: float = 10.0) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            event = await sub.get()
            if isinstance(event, kind):
                return event


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


async def test_start_ready_stop_through_a_runtime_that_is_not_processes(tmp_path: Path) -> None:
    runtime = MemoryRuntime()
    async with on_memory(tmp_path, runtime) as env:
        server = await env.add_server(
            "alpha", args=["--console"], memory_limit_mb=512, cpu_limit=1.5
        )
        assert server.runtime is runtime

        assert await server.start() is S.RUNNING  # readiness read "READY" from its log file
        unit = runtime.units[-1]
        assert server.handle is unit and server.state_reason == "ready"
        assert unit.spec.argv[-1] == "--console" and unit.spec.console
        assert unit.spec.limits == Limits(cpus=1.5, memory_bytes=512 * 1024 * 1024)
        assert unit.spec.unit.marker == f"{env.supervisor.instance}/{server.id}"
        assert runtime.files == {server.unit().folder / "fake.cfg": b"name = fake;\n"}
        assert not (server.unit().folder / "fake.cfg").exists(), "files went to the runtime"
        assert [line.text for line in server.logs.last_lines(2)] == ["booting", "READY"]

        sample = await env.supervisor.sample(server)
        assert sample is not None and sample.rss_bytes == 42 * 1024 * 1024
        assert sample.cpu_percent == 12.5
        status_pid = None if server.handle is None else server.handle.pid
        assert status_pid is None

        assert await server.stop() is S.STOPPED  # the game's own way: `stop` on its console
        assert unit.console == ["stop"] and unit.signals == []
        assert server.handle is None and runtime.sweeps == [unit.spec.unit.marker]
        row = await ServerRepository(env.db).get(server.id)
        assert row is not None and row.state is S.STOPPED and row.process is None
    assert runtime.opened == 1 and runtime.closed == 1


async def test_a_unit_that_ignores_the_graceful_stop_gets_sigterm(tmp_path: Path) -> None:
    runtime = MemoryRuntime()
    async with on_memory(tmp_path, runtime) as env:
        server = await env.add_server("alpha")  # no console: the graceful way does nothing
        await server.start()
        unit = runtime.units[-1]
        assert await server.stop() is S.STOPPED
        assert unit.signals == [signal.SIGTERM]

        await server.start()
        stubborn = runtime.units[-1]
        stubborn.ignore_term = True
        assert await server.stop(kill=True) is S.STOPPED
        assert stubborn.signals == [signal.SIGKILL]


async def test_a_crash_is_alerted_and_restarted_on_the_same_runtime(tmp_path: Path) -> None:
    runtime = MemoryRuntime()
    async with on_memory(tmp_path, runtime) as env:
        server = await env.add_server("alpha")
        await server.start()
        first = runtime.units[-1]
        first.say("something went wrong")
        await until(lambda: server.logs.last_lines(1)[0].text == "something went wrong")
        with env.bus.subscribe(ServerCrashed) as crashes:
            first.end(ExitStatus(None, None, oom_killed=True))
            crash = await next_event(crashes, ServerCrashed)
        assert crash.last_lines[-1] == "something went wrong"
        assert crash.restart_in_s is not None
        await until(lambda: server.state is S.RUNNING and server.handle is not first)
        assert len(runtime.units) == 2 and not first.is_alive()
        moves = await env.supervisor.history.recent(server.id, kind="transition")
        assert any(
            e.data["new"] == "crashed" and e.data["reason"] == "killed: out of memory"
            for e in moves
        )


async def test_a_new_supervisor_adopts_the_unit_by_its_marker_without_restarting(
    tmp_path: Path,
) -> None:
    runtime = MemoryRuntime()
    db = await Database.open(tmp_path / "data" / "languard.db")
    try:
        async with on_memory(tmp_path, runtime, db) as env:
            server = await env.add_server("alpha")
            await server.start()
            server_id = server.id
        unit = runtime.units[-1]
        assert unit.is_alive(), "closing the supervisor never stops a unit"

        async with on_memory(tmp_path, runtime, db) as env:
            adopted = env.supervisor.get(server_id)
            assert adopted.state is S.RUNNING and adopted.handle is unit
            assert adopted.state_reason == "ready", "taken back as it was: no new transition"
            assert len(runtime.units) == 1 and unit.adopted
            unit.end(ExitStatus(3, None))
            await until(lambda: adopted.handle is not None and adopted.handle is not unit)
            assert adopted.state in (S.STARTING, S.RUNNING)
    finally:
        await db.close()


async def test_a_refusal_from_the_runtime_leaves_the_server_as_it_was(tmp_path: Path) -> None:
    runtime = MemoryRuntime()
    runtime.taken_ports.add((40123, "udp"))
    async with on_memory(tmp_path, runtime) as env:
        server = await env.add_server("alpha", ports=[[40123, "udp"]])
        try:
            await server.start()
        except PortInUse as exc:
            assert exc.port == 40123
        else:
            raise AssertionError("the start was not refused")
        assert server.state is S.STOPPED and runtime.units == [] and runtime.files == {}
