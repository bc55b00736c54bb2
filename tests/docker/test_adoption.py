"""After a bot restart: containers found by label on every host, taken back with no restart
and no log gap; one that exited meanwhile reports how it ended."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
from pathlib import Path

from core.docker.client import Engine
from core.docker.containers import inspect
from core.docker.spec import Mount
from data.repositories.servers import ProcessRecord
from tests.docker.conftest import unit_for
from tests.docker.engines import DockerDaemon
from tests.docker.helpers import (
    game_argv,
    log_lines,
    numbered,
    run_spec,
    runtime,
    started,
    wait_for_line,
)

WAIT = 30.0


async def test_running_containers_on_both_hosts_are_adopted_without_a_restart_or_log_gap(
    engines: tuple[DockerDaemon, DockerDaemon],
    instance: str,
    extra_mounts: list[Mount],
    tmp_path: Path,
) -> None:
    engine_a, engine_b = engines
    first = {"a": runtime(engine_a, extra_mounts), "b": runtime(engine_b, extra_mounts)}
    units = {
        "a": unit_for(instance, tmp_path / "one", server_id=1, name="one"),
        "b": unit_for(instance, tmp_path / "two", server_id=2, name="two"),
    }
    companion = dataclasses.replace(units["b"], companion="hc-1")
    handles = {}
    for host in ("a", "b"):
        spec = run_spec(units[host], game_argv("--name", host, "--interval", "0.02"))
        handles[host] = await first[host].start(spec)
    hc_spec = dataclasses.replace(
        run_spec(companion, game_argv("--name", "hc", "--interval", "0.5")),
        log_path=companion.folder / "hc-1.log",
    )
    hc = await first["b"].start(hc_spec)
    for host in ("a", "b"):
        await wait_for_line(units[host].folder / "console.log", "READY")
    before = {h: await inspect(first[h].engine, handles[h].ident) for h in ("a", "b")}
    started = {h: handles[h].started_at for h in ("a", "b")}
    # the bot dies: it lets go of everything, the games keep running
    for handle in (*handles.values(), hc):
        await handle.aclose()
    for docker in first.values():
        await docker.close()

    second = {"a": runtime(engine_a, extra_mounts), "b": runtime(engine_b, extra_mounts)}
    adopted = []
    try:
        began = time.monotonic()
        surveys = {h: await second[h].survey(instance) for h in ("a", "b")}
        assert set(surveys["a"].servers) == {1} and not surveys["a"].companions
        assert set(surveys["b"].servers) == {2}
        assert set(surveys["b"].companions[2]) == {"hc-1"}
        for host, sid in (("a", 1), ("b", 2)):
            found = await second[host].find(units[host], surveys[host].servers[sid], started_at=0.0)
            assert [f.ident for f in found] == [handles[host].ident]
            handle = found[0]
            adopted.append(handle)
            assert handle.adopted and handle.is_alive()
            assert handle.started_at == started[host]  # kept across the adoption
            now = await inspect(second[host].engine, handle.ident)
            assert now is not None and before[host] is not None
            assert now.started == before[host].started and now.pid == before[host].pid
        mates = await second["b"].find(
            companion, surveys["b"].companions[2]["hc-1"], started_at=0.0
        )
        assert [m.ident for m in mates] == [hc.ident]
        adopted.extend(mates)
        print(f"\nadoption of 3 containers on 2 engines: {time.monotonic() - began:.3f} s")
        for handle in adopted[:2]:
            exited = handle.watch()
            assert await handle.signal(signal.SIGTERM)
            await asyncio.wait_for(exited, WAIT)
        for host in ("a", "b"):
            counted = numbered(log_lines(units[host].folder / "console.log"), f"{host} line ")
            assert len(counted) > 10 and counted == list(range(1, len(counted) + 1))
    finally:
        for handle in adopted:
            await handle.aclose()
        for docker in second.values():
            await docker.close()


async def test_a_container_that_crashed_while_the_bot_was_down_reports_its_exit_code(
    engine_b: DockerDaemon,
    client_b: Engine,
    instance: str,
    extra_mounts: list[Mount],
    tmp_path: Path,
) -> None:
    docker = runtime(engine_b, extra_mounts)
    unit = unit_for(instance, tmp_path / "srv")
    handle = await docker.start(
        run_spec(unit, game_argv("--crash-after", "1.0", "--exit-code", "5"))
    )
    record = handle.record()
    await handle.aclose()  # the bot is down when the game crashes
    await docker.close()
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        state = await inspect(client_b, handle.ident)
        if state is not None and not state.running:
            break
        await asyncio.sleep(0.05)
    again = runtime(engine_b, extra_mounts)
    adopted = await again.adopt(unit, record)
    try:
        assert adopted is not None and not adopted.is_alive()
        assert await again.find(unit, started_at=0.0) == []  # not live: only the record finds it
        status = await asyncio.wait_for(adopted.watch(), WAIT)
        assert (status.exit_code, status.signal, status.oom_killed) == (5, None, False)
        lines = log_lines(unit.folder / "console.log")
        assert lines[-1] == "FATAL: something went wrong"
        assert numbered(lines, "fake line ") == list(
            range(1, len(numbered(lines, "fake line ")) + 1)
        )
    finally:
        if adopted is not None:
            await adopted.aclose()
        await again.close()


async def test_adoption_takes_only_this_installations_containers(
    engine_a: DockerDaemon, instance: str, extra_mounts: list[Mount], tmp_path: Path
) -> None:
    async with started(engine_a, extra_mounts, instance, tmp_path, game_argv()) as (
        docker,
        unit,
        handle,
    ):
        record = handle.record()
        stranger = dataclasses.replace(unit, instance="someone-else")
        assert await docker.adopt(stranger, record) is None
        assert (await docker.survey("someone-else")).servers == {}
        other_server = dataclasses.replace(unit, server_id=99)
        assert await docker.adopt(other_server, record) is None
        local = ProcessRecord(pid=1234, create_time=1.0, cmdline=("x",), started_at=0.0)
        assert await docker.adopt(unit, local) is None
        gone = dataclasses.replace(record, boot_id="docker:" + "0" * 64)
        assert await docker.adopt(unit, gone) is None
