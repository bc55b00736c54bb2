"""A bot-like process that runs only the supervisor, so tests can kill -9 it for real.

It opens the database, starts the supervisor (which re-adopts live servers), optionally
starts every stopped server, and runs a durable "sink" consumer that stores every log line
it receives in the same transaction as its own log cursor: exactly-once, across crashes.
It writes `UP` on stdout when ready and stops (without stopping servers) on SIGTERM.
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

from core.events import EventBus, LogLines
from core.games.base import ProfileRegistry
from core.logs.rotation import RotationPolicy
from core.secrets import SecretBox, load_or_create_key
from core.supervisor.states import ServerState
from core.supervisor.supervisor import Supervisor
from data.db import Database
from data.repositories.telemetry import LogOffsetRepository
from tests.fakes.fake_profile import FakeProfile

SINK = "sink"
SINK_TABLE = (
    "CREATE TABLE IF NOT EXISTS test_sink ("
    " id INTEGER PRIMARY KEY, server_id INTEGER NOT NULL, source TEXT NOT NULL,"
    " text TEXT NOT NULL)"
)


async def run_sink(db: Database, bus_events: asyncio.Queue[LogLines]) -> None:
    offsets = LogOffsetRepository(db)
    cursors: dict[tuple[int, str], tuple[str, int]] = {}
    for row in await db.fetchall(
        "SELECT server_id, source, file_id, offset FROM log_offsets WHERE consumer = ?", (SINK,)
    ):
        cursors[(int(row[0]), str(row[1]))] = (str(row[2]), int(row[3]))
    while True:
        event = await bus_events.get()
        key = (event.server_id, event.source)
        file_id, cursor = cursors.get(key, (event.file_id, 0))
        lines = event.after(cursor) if file_id == event.file_id else event.lines
        async with db.transaction():
            for line in lines:
                await db.execute(
                    "INSERT INTO test_sink(server_id, source, text) VALUES (?, ?, ?)",
                    (event.server_id, event.source, line.text),
                )
            await offsets.save(event.server_id, event.source, SINK, event.file_id, event.end_offset)
        cursors[key] = (event.file_id, event.end_offset)


async def main_async(args: argparse.Namespace) -> None:
    db = await Database.open(Path(args.db))
    await db.execute(SINK_TABLE)
    bus = EventBus()
    queue: asyncio.Queue[LogLines] = asyncio.Queue()
    subscription = bus.subscribe(LogLines)

    async def pump() -> None:
        async for event in subscription:
            assert isinstance(event, LogLines)
            queue.put_nowait(event)

    data_dir = Path(args.data_dir)
    profiles = ProfileRegistry([FakeProfile()])
    if args.arma3:  # the fake arma3server_x64 (tests/fakes/arma3_bin.py), quick to answer
        from core.games.arma3 import Arma3Profile
        from core.games.arma3_link import RconOptions

        rcon = RconOptions(timeout=0.3, retries=1, keepalive_interval=5.0, guid_wait=1.0)
        profiles.add(Arma3Profile(Path(args.arma3), rcon=rcon, ready_poll=0.1))
    supervisor = Supervisor(
        db=db,
        bus=bus,
        data_dir=data_dir,
        profiles=profiles,
        secret_box=SecretBox(load_or_create_key(data_dir)),
        metrics_interval=args.metrics_interval,
        checkpoint_interval=args.checkpoint_interval,
        log_rotation=RotationPolicy(args.rotate_bytes, args.rotate_keep),
    )
    if args.docker_config:  # servers on Docker hosts (tests/docker/docker_bot.py)
        from tests.docker.docker_bot import install_hosts

        install_hosts(supervisor, json.loads(Path(args.docker_config).read_text()))
    tasks = [asyncio.create_task(pump()), asyncio.create_task(run_sink(db, queue))]
    started = time.monotonic()
    await supervisor.start()
    if args.timing:
        adopted = sum(1 for s in supervisor.all() if s.handle is not None and s.handle.adopted)
        print(f"ADOPTED {adopted} {time.monotonic() - started:.4f}", flush=True)
    if args.start_all:
        for server in supervisor.all():
            if server.state is ServerState.STOPPED:
                await server.start(wait=False)
    print("UP", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
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
    parser.add_argument("--start-all", action="store_true")
    parser.add_argument("--metrics-interval", type=float, default=15.0)
    parser.add_argument("--checkpoint-interval", type=float, default=1.0)
    parser.add_argument("--timing", action="store_true", help="print ADOPTED <n> <s>")
    parser.add_argument("--rotate-bytes", type=int, default=50 * 1024 * 1024)
    parser.add_argument("--rotate-keep", type=int, default=5)
    parser.add_argument("--arma3", help="the Arma 3 executable (a fake one) to supervise too")
    parser.add_argument("--docker-config", help="Docker hosts and placement (JSON, see docker_bot)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
