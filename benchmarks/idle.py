"""50 idle fake servers supervised for 60 s: the supervisor's own CPU and memory.

Target: CPU <= 1% of one core and RSS <= 150 MB. The supervisor runs in this process;
the game servers are separate processes and are not counted. Last line: one JSON object.
Usage: python benchmarks/idle.py [--servers 50] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib

from cryptography.fernet import Fernet

from core.events import EventBus
from core.games.base import ProfileRegistry
from core.secrets import SecretBox
from core.supervisor.states import ServerState
from core.supervisor.supervisor import Supervisor
from data.db import Database
from data.repositories.servers import ServerRepository
from data.repositories.settings import SettingsRepository
from tests.fakes.fake_profile import FakeProfile


async def run(servers: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        db = await Database.open(data_dir / "languard.db")
        supervisor = Supervisor(
            db=db,
            bus=EventBus(),
            data_dir=data_dir,
            profiles=ProfileRegistry([FakeProfile()]),
            secret_box=SecretBox(Fernet.generate_key()),
        )
        await supervisor.start()
        for i in range(servers):
            record = await ServerRepository(db).create(f"idle{i:02d}", "fake")
            await SettingsRepository(db).set(
                record.id, "args", ["--interval", "3600", "--tick", "1", "--ready-after", "0"]
            )
            await supervisor.add(record)
        started = time.monotonic()
        await asyncio.gather(*(s.start() for s in supervisor.all()))
        running = sum(s.state is ServerState.RUNNING for s in supervisor.all())
        print(f"{running}/{servers} servers running after {time.monotonic() - started:.1f} s")
        me = psutil.Process()
        await asyncio.sleep(2)  # let start-up settle
        cpu0 = me.cpu_times()
        wall0 = time.monotonic()
        await asyncio.sleep(seconds)
        cpu1 = me.cpu_times()
        wall = time.monotonic() - wall0
        used = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
        rss_mb = me.memory_info().rss / 2**20
        pids = [s.handle.pid for s in supervisor.all() if s.handle is not None]
        await supervisor.close()
        await db.close()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    cpu_percent = 100.0 * used / wall
    print(f"supervised {running} idle servers for {wall:.1f} s")
    print(f"supervisor CPU: {used:.3f} s = {cpu_percent:.3f}% of one core (target <= 1%)")
    print(f"supervisor RSS: {rss_mb:.1f} MB (target <= 150 MB)")
    return {
        "servers": running,
        "seconds": round(wall, 1),
        "cpu_seconds": round(used, 3),
        "cpu_percent": round(cpu_percent, 3),
        "rss_mb": round(rss_mb, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    figures = asyncio.run(run(args.servers, args.seconds))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
