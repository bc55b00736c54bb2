"""A host's engine goes away and comes back: nothing is taken for a crash meanwhile, and
the game's log resumes without a gap once the engine answers again."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from core.docker.spec import Mount
from tests.docker.conftest import unit_for
from tests.docker.engines import DockerDaemon, pause_engine, resume_engine
from tests.docker.helpers import game_argv, log_lines, numbered, run_spec, runtime, wait_for_line

WAIT = 30.0


async def test_an_engine_restart_is_not_a_crash_and_loses_no_line(
    live_engine: DockerDaemon,
    dockerd: str,
    instance: str,
    extra_mounts: list[Mount],
    tmp_path: Path,
) -> None:
    docker = runtime(live_engine, extra_mounts)
    unit = unit_for(instance, tmp_path / "srv")
    log = unit.folder / "console.log"
    handle = await docker.start(run_spec(unit, game_argv("--name", "g", "--interval", "0.02")))
    try:
        exited = handle.watch()
        await wait_for_line(log, "READY")
        pause_engine(live_engine)
        down_at = len(numbered(log_lines(log), "g line "))
        assert not await docker.engine.ping()
        # while the engine is away: still alive as far as we know, no exit, no numbers
        done, _ = await asyncio.wait({exited}, timeout=1.5)
        assert not done and handle.is_alive()
        assert await handle.sample() is None
        assert await handle.signal(signal.SIGUSR1) is False

        began = time.monotonic()
        resume_engine(live_engine, dockerd)
        print(f"\nengine back in {time.monotonic() - began:.2f} s")
        # the container kept running (live restore): the copier catches up past the gap
        await wait_for_line(log, f"g line {down_at + 150}")
        assert not exited.done()
        assert await handle.signal(signal.SIGTERM)
        status = await asyncio.wait_for(exited, WAIT)
        assert status.signal == signal.SIGTERM
        counted = numbered(log_lines(log), "g line ")
        assert counted == list(range(1, len(counted) + 1))
    finally:
        await handle.aclose()
        await docker.close()
