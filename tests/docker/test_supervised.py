"""The supervisor running servers on Docker hosts: the same state machine, backoff, crash
reasons and adoption as for local processes, through the runtime seam."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from core.docker.containers import inspect
from core.docker.runtime import DockerRuntime
from core.docker.spec import Mount
from core.events import ServerCrashed, ServerStateChanged
from core.supervisor.states import ServerState
from data.db import Database
from data.repositories.servers import ServerRecord, ServerRepository
from data.repositories.settings import SettingsRepository
from tests.docker.engines import IMAGE, REPO, DockerDaemon, python_mounts
from tests.docker.helpers import numbered, runtime
from tests.integration.supervision import FAST, Env, next_event, supervised

S = ServerState
WAIT = 30.0


@asynccontextmanager
async def on_host(tmp_path: Path, engine: DockerDaemon, mounts: list[Mount]) -> AsyncIterator[Env]:
    """A supervisor whose servers all run on `engine`; they are killed before it closes."""
    async with supervised(tmp_path) as env:
        env.supervisor.add_runtime(runtime(engine, mounts))

        async def runtime_of(record: ServerRecord) -> str:
            return engine.name

        env.supervisor.runtime_of = runtime_of
        try:
            yield env
        finally:
            for server in env.supervisor.all():
                await server.stop(kill=True)


async def wait_state(env: Env, server_id: int, state: ServerState) -> None:
    server = env.supervisor.get(server_id)
    deadline = time.monotonic() + WAIT
    while server.state is not state:
        assert time.monotonic() < deadline, f"{server.name} is {server.state}, not {state}"
        await asyncio.sleep(0.05)


async def test_a_crash_on_a_docker_host_is_restarted_in_a_new_container(
    engine_b: DockerDaemon, extra_mounts: list[Mount], tmp_path: Path
) -> None:
    async with on_host(tmp_path, engine_b, extra_mounts) as env:
        server = await env.add_server("bee", ["--crash-after", "1.5", "--exit-code", "3"])
        with env.bus.subscribe(ServerCrashed, ServerStateChanged) as events:
            assert await server.start() is S.RUNNING
            assert isinstance(server.runtime, DockerRuntime) and server.handle is not None
            first = server.handle.ident
            crash = await next_event(events, ServerCrashed, WAIT)
            assert (crash.exit_code, crash.signal) == (3, None)
            assert crash.last_lines[-1] == "FATAL: something went wrong"
            assert crash.restart_in_s is not None
            await wait_state(env, server.id, S.RUNNING)
            assert server.handle is not None and server.handle.ident != first
            # the old container was removed when the new one was created
            assert await inspect(server.runtime.engine, first) is None


async def test_an_oom_kill_on_a_docker_host_is_the_crash_reason(
    engine_a: DockerDaemon, extra_mounts: list[Mount], tmp_path: Path
) -> None:
    async with on_host(tmp_path, engine_a, extra_mounts) as env:
        # the smallest limit `/server set` takes; the fake then fills four times as much
        server = await env.add_server(
            "hog", ["--hog-mb", "256"], memory_limit_mb=64, auto_restart=False
        )
        with env.bus.subscribe(ServerStateChanged) as events:
            await server.start(wait=False)
            deadline = time.monotonic() + WAIT
            while True:
                event = await next_event(events, ServerStateChanged, WAIT)
                if event.new is S.CRASHED:
                    break
                assert time.monotonic() < deadline
            assert event.reason == "killed: out of memory"


def _config(engines: tuple[DockerDaemon, DockerDaemon], placement: dict[str, str]) -> str:
    hosts = []
    for engine in engines:
        point = engine.endpoint
        hosts.append(
            {
                "name": engine.name,
                "url": point.url,
                **{
                    k: str(v)
                    for k, v in (("ca", point.ca), ("cert", point.cert), ("key", point.key))
                    if v
                },
            }
        )
    mounts = [[str(m["Source"]), str(m["Target"])] for m in python_mounts()]
    return json.dumps({"hosts": hosts, "image": IMAGE, "mounts": mounts, "placement": placement})


def _bot(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    with (tmp_path / "bot.log").open("a") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.docker.docker_bot",
                "--db",
                str(tmp_path / "data" / "languard.db"),
                "--data-dir",
                str(tmp_path / "data"),
                "--config",
                str(tmp_path / "hosts.json"),
                *extra,
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )


def _until_up(bot: subprocess.Popen[str]) -> float:
    assert bot.stdout is not None
    adopted = bot.stdout.readline().split()
    assert adopted[0] == "ADOPTED", adopted
    assert bot.stdout.readline().strip() == "UP"
    return float(adopted[2])


async def _sink(db: Database, server_id: int) -> list[str]:
    rows = await db.fetchall(
        "SELECT text FROM test_sink WHERE server_id = ? ORDER BY id", (server_id,)
    )
    return [str(row[0]) for row in rows]


async def test_kill_9_of_the_bot_adopts_on_both_hosts_with_no_restart_and_no_log_gap(
    engines: tuple[DockerDaemon, DockerDaemon], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    db = await Database.open(data / "languard.db")
    ids = {}
    for name in ("on-a", "on-b"):
        record = await ServerRepository(db).create(name, "fake")
        await SettingsRepository(db).set_many(record.id, {**FAST, "args": ["--interval", "0.02"]})
        ids[name] = record.id
    (tmp_path / "hosts.json").write_text(_config(engines, {"on-a": "a", "on-b": "b"}))
    containers: dict[str, tuple[DockerDaemon, str]] = {}
    first = _bot(tmp_path, "--start-all")
    second = None
    try:
        _until_up(first)
        deadline = time.monotonic() + WAIT
        while min([len(await _sink(db, i)) for i in ids.values()]) < 50:
            assert time.monotonic() < deadline, (tmp_path / "bot.log").read_text()[-3000:]
            await asyncio.sleep(0.05)
        for name, engine in zip(("on-a", "on-b"), engines, strict=True):
            record = await ServerRepository(db).get(ids[name])
            assert record.process is not None and record.process.boot_id.startswith("docker:")
            containers[name] = (engine, record.process.boot_id.removeprefix("docker:"))
        before = {
            n: json.loads(e.call("GET", f"/containers/{c}/json")[1])
            for n, (e, c) in containers.items()
        }
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        second = _bot(tmp_path)
        took = _until_up(second)
        print(f"\nadoption by the new bot: {took:.3f} s")
        await asyncio.sleep(1.0)  # the games keep logging under the new bot
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=WAIT)
        for name, (engine, container) in containers.items():
            after = json.loads(engine.call("GET", f"/containers/{container}/json")[1])
            assert after["State"]["Running"], name
            assert after["State"]["StartedAt"] == before[name]["State"]["StartedAt"]  # no restart
            assert after["RestartCount"] == 0
            got = numbered(await _sink(db, ids[name]), f"{name} line ")
            assert len(got) > 60 and got == list(range(1, len(got) + 1)), name
            record = await ServerRepository(db).get(ids[name])
            assert record.state is S.RUNNING
    finally:
        for bot in (first, second):
            if bot is not None and bot.poll() is None:
                bot.kill()
                bot.wait(timeout=10)
            if bot is not None and bot.stdout is not None:
                bot.stdout.close()
        for engine, container in containers.values():
            engine.call("DELETE", f"/containers/{container}?force=1")
        await db.close()


async def test_a_container_killed_while_the_bot_was_down_is_a_crash_with_its_signal(
    engines: tuple[DockerDaemon, DockerDaemon], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    db = await Database.open(data / "languard.db")
    record = await ServerRepository(db).create("on-b", "fake")
    settings = {**FAST, "args": ["--interval", "0.05"], "auto_restart": False}
    await SettingsRepository(db).set_many(record.id, settings)
    (tmp_path / "hosts.json").write_text(_config(engines, {"on-b": "b"}))
    engine_b = engines[1]
    container = ""
    bots: list[subprocess.Popen[str]] = []
    try:
        bots.append(_bot(tmp_path, "--start-all"))
        _until_up(bots[0])
        deadline = time.monotonic() + WAIT
        while len(await _sink(db, record.id)) < 5:
            assert time.monotonic() < deadline, (tmp_path / "bot.log").read_text()[-3000:]
            await asyncio.sleep(0.05)
        stored = await ServerRepository(db).get(record.id)
        assert stored is not None and stored.process is not None
        container = stored.process.boot_id.removeprefix("docker:")
        bots[0].send_signal(signal.SIGKILL)
        bots[0].wait(timeout=10)
        status, _ = engine_b.call("POST", f"/containers/{container}/kill?signal=SIGKILL")
        assert status == 204
        bots.append(_bot(tmp_path))
        _until_up(bots[1])
        deadline = time.monotonic() + WAIT
        while True:
            stored = await ServerRepository(db).get(record.id)
            assert stored is not None
            if stored.state is S.CRASHED:
                break
            assert time.monotonic() < deadline, stored
            await asyncio.sleep(0.05)
        assert stored.state_reason == "killed by SIGKILL"
    finally:
        for bot in bots:
            if bot.poll() is None:
                bot.kill()
                bot.wait(timeout=10)
            if bot.stdout is not None:
                bot.stdout.close()
        if container:
            engine_b.call("DELETE", f"/containers/{container}?force=1")
        await db.close()
