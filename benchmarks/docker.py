"""Containers against local processes, on real engines started here (root; see tests/docker).

Two dockerd stand for two hosts (A: unix socket, bind mounts; B: TCP + mutual TLS, named
volumes). Figures: each engine's start time; start-to-running (the runtime's `start` until
the fake game's READY line is in console.log) and stop (SIGTERM until the exit is known,
last line copied) for a container on A, on B and for a local process of the same fake;
and the time a fresh bot takes to find and adopt 20 containers across both engines.
Last line: one JSON object.
Usage: python benchmarks/docker.py [--rounds 5] [--containers 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.docker.runtime import DockerRuntime  # noqa: E402
from core.docker.spec import Mount  # noqa: E402
from core.supervisor.local_runtime import LocalRuntime  # noqa: E402
from core.supervisor.runtime_api import GameRuntime, RunSpec, RuntimeHandle, UnitRef  # noqa: E402
from tests.docker.engines import (  # noqa: E402
    IMAGE,
    PYTHON,
    DockerDaemon,
    ensure_dockerd,
    python_mounts,
    running_engines,
)

GAME = ROOT / "tests" / "fakes" / "game_server.py"
TIMEOUT = 30.0


def _mounts() -> list[Mount]:
    return [
        Mount(str(m["Source"]), str(m["Target"]), bind=True, read_only=True)
        for m in python_mounts()
    ]


def docker_runtime(engine: DockerDaemon) -> DockerRuntime:
    return DockerRuntime(engine.name, engine.endpoint, image_for=lambda _: IMAGE, mounts=_mounts())


def spec(unit: UnitRef) -> RunSpec:
    argv = (str(PYTHON), "-u", str(GAME), "--ready-after", "0", "--interval", "0.5")
    return RunSpec(unit, argv, unit.folder, unit.folder / "console.log")


async def _until_ready(log: Path) -> None:
    async with asyncio.timeout(TIMEOUT):
        while True:
            try:
                if b"READY" in log.read_bytes():  # noqa: ASYNC240
                    return
            except FileNotFoundError:
                pass
            await asyncio.sleep(0.002)


async def one_round(runtime: GameRuntime, unit: UnitRef) -> tuple[float, float]:
    began = time.perf_counter()
    handle: RuntimeHandle = await runtime.start(spec(unit))
    exited = handle.watch()
    await _until_ready(unit.folder / "console.log")
    running = time.perf_counter() - began
    began = time.perf_counter()
    await handle.signal(signal.SIGTERM)
    async with asyncio.timeout(TIMEOUT):
        await exited
    stopped = time.perf_counter() - began
    close = getattr(handle, "aclose", None)
    if close is not None:
        await close()
    else:
        handle.close()
    return running, stopped


async def measure(runtime: GameRuntime, base: Path, rounds: int) -> dict[str, float]:
    starts, stops = [], []
    instance = uuid.uuid4().hex[:12]
    for n in range(rounds):
        folder = base / f"{runtime.name}-{n}"
        folder.mkdir(parents=True)
        running, stopped = await one_round(runtime, UnitRef(instance, n + 1, f"bench{n}", folder))
        starts.append(running)
        stops.append(stopped)
    return {
        "start_to_running_s": round(statistics.median(starts), 3),
        "stop_s": round(statistics.median(stops), 3),
    }


async def adoption(engines: tuple[DockerDaemon, DockerDaemon], base: Path, count: int) -> float:
    instance = uuid.uuid4().hex[:12]
    first = [docker_runtime(e) for e in engines]
    units = []
    for n in range(count):
        folder = base / f"adopt-{n}"
        folder.mkdir(parents=True)
        unit = UnitRef(instance, 100 + n, f"adopt{n}", folder)
        handle = await first[n % 2].start(spec(unit))
        await handle.aclose()
        units.append(unit)
    for runtime in first:
        await runtime.close()
    second = [docker_runtime(e) for e in engines]
    began = time.perf_counter()
    surveys = await asyncio.gather(*(r.survey(instance) for r in second))
    found = await asyncio.gather(
        *(
            second[n % 2].find(unit, surveys[n % 2].servers.get(unit.server_id, ()), started_at=0.0)
            for n, unit in enumerate(units)
        )
    )
    took = time.perf_counter() - began
    adopted = sum(1 for handles in found if handles)
    for handles in found:
        for handle in handles:
            await handle.signal(signal.SIGKILL)
            await handle.aclose()
    for runtime in second:
        await runtime.close()
    if adopted != count:
        raise SystemExit(f"adopted {adopted} of {count}")
    return took


async def run(
    engines: tuple[DockerDaemon, DockerDaemon], rounds: int, count: int
) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="lgd-bench-") as tmp:
        base = Path(tmp)
        local = LocalRuntime()
        await local.open()
        results: dict[str, object] = {"local": await measure(local, base, rounds)}
        for engine in engines:
            runtime = docker_runtime(engine)
            results[f"container_{engine.name}"] = await measure(runtime, base, rounds)
            await runtime.close()
        results["adoption_s"] = round(await adoption(engines, base, count), 3)
        results["adopted"] = count
        return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--containers", type=int, default=20)
    args = parser.parse_args()
    dockerd = ensure_dockerd()
    with running_engines(dockerd) as engines:
        for engine in engines:
            print(f"dockerd {engine.name} ({engine.driver}) answered in {engine.started_in:.2f} s")
        results = asyncio.run(run(engines, args.rounds, args.containers))
        results["dockerd_start_s"] = {e.name: round(e.started_in, 3) for e in engines}
    for key, value in results.items():
        print(f"{key}: {value}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
