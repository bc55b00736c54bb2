"""Small helpers shared by the Docker tests: runtimes on the test engines, the fake game."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from core.docker.handle import DockerHandle
from core.docker.runtime import DockerRuntime
from core.docker.spec import Mount
from core.supervisor.runtime_api import Limits, RunSpec, UnitRef
from tests.docker.conftest import image_for, unit_for
from tests.docker.engines import PYTHON, REPO, DockerDaemon

GAME = REPO / "tests" / "fakes" / "game_server.py"


def runtime(engine: DockerDaemon, mounts: Sequence[Mount]) -> DockerRuntime:
    return DockerRuntime(engine.name, engine.endpoint, image_for=image_for, mounts=mounts)


def game_argv(*args: str) -> tuple[str, ...]:
    return (str(PYTHON), "-u", str(GAME), *args)


def python_argv(code: str) -> tuple[str, ...]:
    return (str(PYTHON), "-u", "-c", code)


def run_spec(
    unit: UnitRef, argv: tuple[str, ...], *, console: bool = False, limits: Limits | None = None
) -> RunSpec:
    return RunSpec(
        unit,
        argv,
        unit.folder,
        unit.folder / "console.log",
        console=console,
        limits=limits or Limits(),
    )


def log_lines(path: Path) -> list[str]:
    try:
        return path.read_text("utf-8").splitlines()
    except FileNotFoundError:
        return []


async def wait_for_line(path: Path, text: str, timeout: float = 20.0) -> list[str]:
    """Poll the log until a line holds `text`; fails after `timeout` with what was there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = log_lines(path)
        if any(text in line for line in lines):
            return lines
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} not in {path} after {timeout} s: {log_lines(path)[-10:]}")


def numbered(lines: Sequence[str], prefix: str) -> list[int]:
    """The numbers of the lines `<prefix><n>`, in log order."""
    return [int(line[len(prefix) :]) for line in lines if line.startswith(prefix)]


@contextlib.asynccontextmanager
async def started(
    engine: DockerDaemon,
    mounts: Sequence[Mount],
    instance: str,
    tmp_path: Path,
    argv: tuple[str, ...],
    *,
    console: bool = False,
    limits: Limits | None = None,
) -> AsyncIterator[tuple[DockerRuntime, UnitRef, DockerHandle]]:
    """A runtime on `engine` and one unit of the fake started there (in `tmp_path/srv`);
    the handle and the runtime are closed at the end (the container is the fixture's)."""
    docker = runtime(engine, mounts)
    unit = unit_for(instance, tmp_path / "srv")
    handle = await docker.start(run_spec(unit, argv, console=console, limits=limits))
    try:
        yield docker, unit, handle
    finally:
        await handle.aclose()
        await docker.close()
