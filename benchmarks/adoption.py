"""Adoption after kill -9 of the bot, on a loaded machine.

50 fake servers are started through an `#!/usr/bin/env python3` script (so each one's
command line changes after spawn, as with real launchers), the bot process is killed with
SIGKILL while two CPU burners run, and a new bot process is started. Figures: how many were
adopted with their old pids, the time the supervisor took to adopt them all, and the time
from starting the new process to it being up (interpreter and imports included).
Goal: 50/50, adoption <= 2 s. Last line: one JSON object.
Usage: python benchmarks/adoption.py [--servers 50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data.db import Database  # noqa: E402
from data.repositories.servers import ServerRepository  # noqa: E402
from data.repositories.settings import SettingsRepository  # noqa: E402


def host(db: Path, data_dir: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.supervisor_host",
            "--db",
            str(db),
            "--data-dir",
            str(data_dir),
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def read_until_up(proc: subprocess.Popen[str]) -> list[str]:
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line.strip())
        if line.strip() == "UP":
            return lines
    raise RuntimeError("the host exited before it was up")


async def run(servers: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        db_path = data_dir / "languard.db"
        db = await Database.open(db_path)
        for n in range(servers):
            record = await ServerRepository(db).create(f"bench-{n:02d}", "fake")
            await SettingsRepository(db).set_many(
                record.id,
                {"launcher": "env", "args": ["--interval", "1"], "start_timeout": 120.0},
            )
        first = host(db_path, data_dir, "--start-all")
        pids: list[int] = []
        burners: list[subprocess.Popen[bytes]] = []
        second: subprocess.Popen[str] | None = None
        try:
            read_until_up(first)
            deadline = time.monotonic() + 180
            while (
                int(await db.fetchval("SELECT COUNT(*) FROM servers WHERE state = 'running'"))
                < servers
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("the servers did not all come up")
                await asyncio.sleep(0.2)
            pids = [int(r[0]) for r in await db.fetchall("SELECT pid FROM servers ORDER BY id")]
            burners = [
                subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)
            ]
            time.sleep(1.0)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
            began = time.monotonic()
            second = host(db_path, data_dir, "--timing")
            lines = read_until_up(second)
            up = time.monotonic() - began
            timing = next(line for line in lines if line.startswith("ADOPTED"))
            _, adopted, seconds = timing.split()
            rows = await db.fetchall("SELECT pid, state FROM servers ORDER BY id")
            same = sum(
                1
                for row, pid in zip(rows, pids, strict=True)
                if row["state"] == "running" and int(row["pid"]) == pid
            )
            return {
                "servers": servers,
                "adopted": min(int(adopted), same),
                "seconds": round(float(seconds), 4),
                "process_up_seconds": round(up, 4),
            }
        finally:
            for proc in burners:
                proc.kill()
            for proc in (first, second):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
            recorded = await db.fetchall("SELECT pid FROM servers WHERE pid IS NOT NULL")
            for pid in {*pids, *(int(r[0]) for r in recorded)}:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
            await db.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", type=int, default=50)
    args = parser.parse_args()
    figures = asyncio.run(run(args.servers))
    print(f"servers started through an env shebang: {figures['servers']:.0f}")
    print(f"adopted after kill -9 under CPU load:  {figures['adopted']:.0f}")
    print(f"supervisor adoption time:             {figures['seconds']:.3f} s (goal <= 2 s)")
    print(f"new bot process start to up:          {figures['process_up_seconds']:.3f} s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
