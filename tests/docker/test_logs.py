"""Log streams against real engines: a flood delivered once, resumed exactly after restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.docker.client import Engine
from core.docker.logcopy import LogCopier, cursor_path
from core.docker.spec import Mount
from tests.docker.conftest import unit_for
from tests.docker.engines import REPO, DockerDaemon
from tests.docker.helpers import log_lines, numbered, python_argv, run_spec, runtime

WAIT = 60.0


def flood(count: int, burst: int = 0, pause: float = 0.0) -> tuple[str, ...]:
    """Print `flood 1` .. `flood <count>`, in bursts with pauses (0: all at once)."""
    code = (
        "import sys, time\n"
        f"for i in range(1, {count} + 1):\n"
        "    sys.stdout.write(f'flood {i}\\n')\n"
        f"    if {burst} and i % {burst} == 0:\n"
        "        sys.stdout.flush()\n"
        f"        time.sleep({pause})\n"
        "sys.stdout.flush()\n"
    )
    return python_argv(code)


async def test_a_log_flood_is_delivered_once_in_order(
    engine_a: DockerDaemon, instance: str, extra_mounts: list[Mount], tmp_path: Path
) -> None:
    docker = runtime(engine_a, extra_mounts)
    unit = unit_for(instance, tmp_path / "srv")
    count = 50_000
    began = time.monotonic()
    handle = await docker.start(run_spec(unit, flood(count)))
    try:
        status = await asyncio.wait_for(handle.watch(), WAIT)
        took = time.monotonic() - began
        assert status.exit_code == 0
        assert numbered(log_lines(unit.folder / "console.log"), "flood ") == list(
            range(1, count + 1)
        )
        assert handle.copier.delivered == count
        print(f"\n{count} lines copied in {took:.2f} s")
    finally:
        await handle.aclose()
        await docker.close()


async def test_logs_resume_exactly_when_the_bot_lets_go_and_adopts_again(
    engine_b: DockerDaemon, instance: str, extra_mounts: list[Mount], tmp_path: Path
) -> None:
    docker = runtime(engine_b, extra_mounts)
    unit = unit_for(instance, tmp_path / "srv")
    log = unit.folder / "console.log"
    count = 6_000
    handle = await docker.start(run_spec(unit, flood(count, burst=100, pause=0.02)))
    record = handle.record()
    deadline = time.monotonic() + WAIT
    while len(log_lines(log)) < 500 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await handle.aclose()  # the bot goes away mid-stream; the game keeps printing
    await docker.close()
    seen = len(log_lines(log))
    assert 500 <= seen < count

    again = runtime(engine_b, extra_mounts)
    adopted = await again.adopt(unit, record)
    assert adopted is not None and adopted.adopted and adopted.ident == handle.ident
    try:
        status = await asyncio.wait_for(adopted.watch(), WAIT)
        assert status.exit_code == 0
        assert numbered(log_lines(log), "flood ") == list(range(1, count + 1))
        assert adopted.copier.delivered == count - seen
    finally:
        await adopted.aclose()
        await again.close()


def _child(engine: DockerDaemon, container: str, log: Path) -> subprocess.Popen[bytes]:
    endpoint = engine.endpoint
    tls = [str(p) if p else "-" for p in (endpoint.ca, endpoint.cert, endpoint.key)]
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.docker.copier_child",
            endpoint.url,
            *tls,
            container,
            str(log),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


async def test_no_line_is_lost_or_repeated_when_the_copier_is_killed_hard(
    engine_a: DockerDaemon,
    client_a: Engine,
    instance: str,
    extra_mounts: list[Mount],
    tmp_path: Path,
) -> None:
    """kill -9 of the process copying, several times mid-flood, then a clean finish."""
    docker = runtime(engine_a, extra_mounts)
    unit = unit_for(instance, tmp_path / "srv")
    log = unit.folder / "console.log"
    count = 40_000
    handle = await docker.start(run_spec(unit, flood(count, burst=500, pause=0.01)))
    container = handle.ident
    await handle.aclose()  # from here on only the child processes copy
    kills = 0
    try:
        for goal in (2_000, 8_000, 15_000, 22_000, 30_000):
            child = _child(engine_a, container, log)
            try:
                assert child.stdout is not None
                deadline = time.monotonic() + WAIT
                while len(log_lines(log)) < goal and time.monotonic() < deadline:
                    if child.poll() is not None:
                        break
                    await asyncio.sleep(0.005)
            finally:
                if child.poll() is None:
                    child.send_signal(signal.SIGKILL)
                    kills += 1
                child.wait(timeout=10)
                if child.stdout is not None:
                    child.stdout.close()
        assert kills >= 3, "the copier finished before it could be killed: make the flood longer"
        assert cursor_path(log).exists()
        finisher = LogCopier(client_a, container, log)
        finisher.start()
        assert await finisher.drained(WAIT)
        lines = numbered(log_lines(log), "flood ")
        assert len(lines) == count and lines == list(range(1, count + 1))
    finally:
        await docker.close()
