"""A bot-like process whose servers run on Docker hosts, so tests can kill -9 it for real.

Like tests.fakes.supervisor_host (same exactly-once "sink" of log lines in the database),
with the Docker runtimes of a JSON file: `{"hosts": [{"name", "url", "ca", "cert", "key"}],
"image": ..., "mounts": [[source, target]...], "placement": {server name: host name}}`.
Prints `ADOPTED <n> <seconds>` and `UP`; stops (leaving the games running) on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from pathlib import Path

from core.docker.client import EngineEndpoint
from core.docker.runtime import DockerRuntime
from core.docker.spec import Mount
from core.events import EventBus, LogLines
from core.games.base import ProfileRegistry
from core.secrets import SecretBox, load_or_create_key
from core.supervisor.states import ServerState
from core.supervisor.supervisor import Supervisor
from data.db import Database
from data.repositories.servers import ServerRecord
from tests.fakes.fake_profile import FakeProfile
from tests.fakes.supervisor_host import SINK_TABLE, run_sink


def runtimes(config: dict[str, object]) -> list[DockerRuntime]:
    image = str(config["image"])
    mounts = [Mount(s, t, bind=True, read_only=True) for s, t in config["mounts"]]  # type: ignore[attr-defined]
    made = []
    for host in config["hosts"]:  # type: ignore[attr-defined]
        tls = [Path(host[k]) if host.get(k) else None for k in ("ca", "cert", "key")]
        endpoint = EngineEndpoint(host["url"], *tls)
        made.append(DockerRuntime(host["name"], endpoint, image_for=lambda _: image, mounts=mounts))
    return made


async def main_async(args: argparse.Namespace) -> None:
    config = json.loads(Path(args.config).read_text())
    placement: dict[str, str] = config["placement"]
    db = await Database.open(Path(args.db))
    await db.execute(SINK_TABLE)
    bus = EventBus()
    queue: asyncio.Queue[LogLines] = asyncio.Queue()
    subscription = bus.subscribe(LogLines)

    async def pump() -> None:
        async for event in subscription:
            assert isinstance(event, LogLines)
            queue.put_nowait(event)

    async def runtime_of(record: ServerRecord) -> str:
        return placement.get(record.name, "local")

    data_dir = Path(args.data_dir)
    supervisor = Supervisor(
        db=db,
        bus=bus,
        data_dir=data_dir,
        profiles=ProfileRegistry([FakeProfile()]),
        secret_box=SecretBox(load_or_create_key(data_dir)),
        checkpoint_interval=0.2,
    )
    for runtime in runtimes(config):
        supervisor.add_runtime(runtime)
    supervisor.runtime_of = runtime_of
    tasks = [asyncio.create_task(pump()), asyncio.create_task(run_sink(db, queue))]
    began = time.monotonic()
    await supervisor.start()
    adopted = sum(1 for s in supervisor.all() if s.handle is not None and s.handle.adopted)
    print(f"ADOPTED {adopted} {time.monotonic() - began:.4f}", flush=True)
    if args.start_all:
        for server in supervisor.all():
            if server.state is ServerState.STOPPED:
                await server.start(wait=False)
    print("UP", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await supervisor.close()
    subscription.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await db.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--start-all", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
