"""The Docker runtime against real engines: start, logs, signals, crashes, OOM, console."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from core.docker.client import Engine
from core.docker.spec import INSTANCE_LABEL, SERVER_LABEL, Mount
from core.supervisor.runtime_api import Limits
from tests.docker.conftest import unit_for
from tests.docker.engines import DockerDaemon
from tests.docker.helpers import (
    game_argv,
    log_lines,
    numbered,
    python_argv,
    run_spec,
    runtime,
    started,
    wait_for_line,
)

WAIT = 30.0


@pytest.mark.parametrize("which", ["a", "b"])
async def test_a_fake_game_runs_in_a_container_and_its_log_lands_in_console_log(
    which: str,
    engines: tuple[DockerDaemon, DockerDaemon],
    instance: str,
    extra_mounts: list[Mount],
    tmp_path: Path,
) -> None:
    engine = engines[0] if which == "a" else engines[1]
    docker = runtime(engine, extra_mounts)
    unit = unit_for(instance, tmp_path / "srv", server_id=7, name="Alpha Server")
    limits = Limits(cpus=0.5, memory_bytes=256 * 2**20, pids=64)
    handle = await docker.start(
        run_spec(unit, game_argv("--name", "fake", "--interval", "0.02"), limits=limits)
    )
    try:
        exited = handle.watch()
        await wait_for_line(unit.folder / "console.log", "READY")
        assert handle.is_alive() and not handle.adopted
        record = handle.record()
        assert record.boot_id == f"docker:{handle.ident}"
        assert handle.describe().startswith(f"container {handle.ident[:12]} on {which}")
        info = await docker.engine.request("GET", f"containers/{handle.ident}/json")
        assert info["Name"] == "/languard-Alpha-Server-7"
        assert info["Config"]["Labels"][SERVER_LABEL] == "7"
        assert info["Config"]["Labels"][INSTANCE_LABEL] == instance
        host = info["HostConfig"]
        assert host["NetworkMode"] == "host"
        assert (host["NanoCpus"], host["Memory"], host["PidsLimit"]) == (
            500_000_000,
            256 * 2**20,
            64,
        )
        data = next(m for m in info["Mounts"] if m["Destination"] == str(unit.folder))
        assert data["Type"] == ("bind" if which == "a" else "volume")
        sample = await handle.sample()
        assert sample is not None and sample.rss_bytes > 1_000_000

        assert await handle.signal(signal.SIGTERM)
        status = await asyncio.wait_for(exited, WAIT)
        assert status.signal == signal.SIGTERM and status.exit_code is None
        assert not status.oom_killed and not handle.is_alive()
        lines = log_lines(unit.folder / "console.log")
        counted = numbered(lines, "fake line ")
        assert len(counted) > 3 and counted == list(range(1, len(counted) + 1))
        assert await handle.signal(signal.SIGTERM) is False  # nothing left to signal
    finally:
        await handle.aclose()
        await docker.close()


async def test_a_crash_reports_its_exit_code_after_its_last_words(
    engine_b: DockerDaemon, instance: str, extra_mounts: list[Mount], tmp_path: Path
) -> None:
    async with started(
        engine_b,
        extra_mounts,
        instance,
        tmp_path,
        game_argv("--crash-after", "0.5", "--exit-code", "7"),
    ) as (_docker, unit, handle):
        status = await asyncio.wait_for(handle.watch(), WAIT)
        assert (status.exit_code, status.signal, status.oom_killed) == (7, None, False)
        assert status.describe() == "exit code 7"
        # the exit resolves only once the last line was copied
        assert log_lines(unit.folder / "console.log")[-1] == "FATAL: something went wrong"


async def test_an_oom_kill_is_told_apart_from_a_crash(
    engine_a: DockerDaemon, instance: str, extra_mounts: list[Mount], tmp_path: Path
) -> None:
    docker = runtime(engine_a, extra_mounts)
    unit = unit_for(instance, tmp_path / "srv")
    hog = "print('eating', flush=True); x = b'\\x01' * (1024 * 2**20); print('survived')"
    handle = await docker.start(
        run_spec(unit, python_argv(hog), limits=Limits(memory_bytes=48 * 2**20))
    )
    try:
        status = await asyncio.wait_for(handle.watch(), WAIT)
        assert status.oom_killed
        assert status.signal == signal.SIGKILL
        assert status.describe() == "killed: out of memory"
        assert "survived" not in log_lines(unit.folder / "console.log")
    finally:
        await handle.aclose()
        await docker.close()


async def test_console_lines_reach_the_games_stdin_through_attach(
    engine_b: DockerDaemon, instance: str, extra_mounts: list[Mount], tmp_path: Path
) -> None:
    async with started(
        engine_b,
        extra_mounts,
        instance,
        tmp_path,
        game_argv("--console", "--interval", "0.5"),
        console=True,
    ) as (_docker, unit, handle):
        exited = handle.watch()
        log = unit.folder / "console.log"
        await wait_for_line(log, "READY")
        handle.write_console("say hello from discord")
        await wait_for_line(log, "console: say hello from discord")
        with pytest.raises(ValueError):
            handle.write_console("two\nlines")
        handle.write_console("stop")
        status = await asyncio.wait_for(exited, WAIT)
        assert status.exit_code == 0
        assert "stopping on console command" in log_lines(log)
        with pytest.raises(OSError):
            handle.write_console("too late")


async def test_a_game_without_console_refuses_console_lines(
    engine_a: DockerDaemon, instance: str, extra_mounts: list[Mount], tmp_path: Path
) -> None:
    async with started(engine_a, extra_mounts, instance, tmp_path, game_argv()) as (
        _docker,
        unit,
        handle,
    ):
        await wait_for_line(unit.folder / "console.log", "READY")
        with pytest.raises(OSError, match="no console"):
            handle.write_console("say hi")


async def test_a_start_that_cannot_run_is_an_os_error_and_leaves_no_container(
    engine_a: DockerDaemon,
    client_a: Engine,
    instance: str,
    extra_mounts: list[Mount],
    tmp_path: Path,
) -> None:
    docker = runtime(engine_a, extra_mounts)
    unit = unit_for(instance, tmp_path / "srv")
    try:
        with pytest.raises(OSError) as caught:
            await docker.start(run_spec(unit, ("/no/such/server-binary", "-port=2302")))
        assert caught.value.strerror == (
            "/no/such/server-binary is not in the image or mounts of host a"
        )
        survey = await docker.survey(instance)
        assert not survey.servers
        listed = await client_a.request(
            "GET",
            "containers/json",
            params={"all": "1", "filters": f'{{"label":["{INSTANCE_LABEL}={instance}"]}}'},
        )
        assert listed == []
    finally:
        await docker.close()
