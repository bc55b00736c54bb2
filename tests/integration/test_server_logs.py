"""Logs that outlive the bot: tail and search from disk, console.log rotated by size under a
real supervisor (closed and reopened, or killed -9), and a flush that never stalls the loop.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import psutil
from cryptography.fernet import Fernet

from core.events import EventBus, LogLines, Subscription
from core.games.base import LogSourceSpec
from core.logs.rotation import RotationPolicy, rotated_paths
from core.logs.watcher import LogWatcher
from core.supervisor.server import ManagedServer
from core.supervisor.server_logs import ServerLogs
from core.supervisor.states import ServerState
from data.db import Database
from data.repositories.servers import ServerRepository
from data.repositories.settings import SettingsRepository
from tests.integration.supervision import FAST, kill_groups, start_host, supervised

S = ServerState
ROOT = Path(__file__).resolve().parents[2]
SMALL = RotationPolicy(max_bytes=8 * 1024, keep=2)
_SMALL_HOST = (
    *("--checkpoint-interval", "0.2"),
    *("--rotate-bytes", str(SMALL.max_bytes), "--rotate-keep", str(SMALL.keep)),
)


def line_numbers(texts: list[str], name: str) -> list[int]:
    pattern = re.compile(rf"{name} line (\d+)")
    return [int(m.group(1)) for t in texts if (m := pattern.fullmatch(t))]


def collect(sub: Subscription, into: list[str]) -> None:
    while (event := sub.get_nowait()) is not None:
        if isinstance(event, LogLines):
            into.extend(line.text for line in event.lines)


async def until(predicate: object, timeout: float, what: str) -> None:
    assert callable(predicate)
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


def inode(path: Path) -> int:
    try:
        return path.stat().st_ino
    except FileNotFoundError:  # between two renames of a rotation
        return 0


def held(server: ManagedServer, folder: Path) -> int:
    tailer = server.logs._tailers["console"]
    return (folder / "console.log").stat().st_size - tailer.held_from


async def test_tail_and_search_are_served_from_disk_after_a_bot_restart(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    async with supervised(tmp_path, key=key) as env:
        server = await env.add_server("alpha", ["--interval", "0.01"])
        assert await server.start() is S.RUNNING
        await until(lambda: len(server.logs.ring) > 40, 10, "40 lines")
        assert await server.stop() is S.STOPPED
        before = [line.text for line in server.logs.ring.tail(30)]
    async with supervised(tmp_path, key=key) as env:
        again = env.supervisor.get(server.id)
        assert len(again.logs.ring) == 0, "a new bot starts with an empty ring"
        assert await again.logs.tail(30) == before
        found, complete = await again.logs.search("ALPHA LINE 1", 3)
        assert complete and len(found) == 3
        assert all(text.startswith("alpha line 1") for text in found)
        assert line_numbers(found, "alpha") == sorted(line_numbers(found, "alpha")), "in order"
        assert await again.logs.search("no such text", 3) == ([], True)


async def test_console_log_rotates_by_size_across_a_bot_restart(tmp_path: Path) -> None:
    """Bounded files, the game keeps its descriptor, and every line arrives exactly once
    although the bot is closed and reopened (re-adopting the game) between rotations."""
    key = Fernet.generate_key()
    seen: list[str] = []
    async with supervised(tmp_path, key=key, log_rotation=SMALL) as env:
        server = await env.add_server("alpha", ["--interval", "0.001"])
        folder = env.supervisor.folder_for("alpha")
        with env.bus.subscribe(LogLines) as sub:
            assert await server.start() is S.RUNNING
            first, second = rotated_paths(folder / "console.log", 2)
            await until(second.exists, 30, "two rotations")
            assert server.handle is not None
            pid = server.handle.pid
            await env.supervisor.close()  # the last lines read are published on the way
            env.supervisor._servers.clear()
            collect(sub, seen)
    try:
        async with supervised(tmp_path, key=key, log_rotation=SMALL) as env:
            with env.bus.subscribe(LogLines) as sub:
                adopted = env.supervisor.get(server.id)
                assert adopted.state is S.RUNNING and adopted.handle is not None
                assert adopted.handle.pid == pid
                marker = inode(first)
                await until(lambda: inode(first) not in (marker, 0), 30, "a rotation after")
                assert held(adopted, folder) < SMALL.max_bytes + 64 * 1024
                assert await adopted.stop() is S.STOPPED
                collect(sub, seen)
            numbers = line_numbers(seen, "alpha")
            assert numbers == list(range(1, len(numbers) + 1)), "a gap or a duplicate"
            assert seen.count("READY") == 1
            assert not rotated_paths(folder / "console.log", 3)[2].exists(), "keep=2"
            tail = await adopted.logs.tail(5)
            assert line_numbers(tail, "alpha") == numbers[-5:] or tail[-1] == seen[-1]
    finally:
        kill_groups([pid])


async def test_kill_9_of_the_bot_while_it_rotates_loses_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    db_path = data_dir / "languard.db"
    db = await Database.open(db_path)
    record = await ServerRepository(db).create("alpha", "fake")
    await SettingsRepository(db).set_many(record.id, {**FAST, "args": ["--interval", "0.001"]})
    console = data_dir / "servers" / "alpha" / "console.log"
    hosts: list[subprocess.Popen[str]] = []
    pid = 0

    async def sunk() -> int:
        return int(await db.fetchval("SELECT COUNT(*) FROM test_sink") or 0)

    try:
        hosts.append(start_host(db_path, data_dir, *_SMALL_HOST, "--start-all"))
        for round_ in range(3):
            target = await sunk() + 3000
            async with asyncio.timeout(40):
                while await sunk() < target:
                    await asyncio.sleep(0.05)
            pid = pid or int(await db.fetchval("SELECT pid FROM servers") or 0)
            if round_ < 2:
                os.kill(hosts[-1].pid, signal.SIGKILL)  # at whatever step it was
                hosts[-1].wait(timeout=10)
                hosts.append(start_host(db_path, data_dir, *_SMALL_HOST))
        hosts[-1].send_signal(signal.SIGTERM)
        hosts[-1].wait(timeout=15)
        texts = [str(r[0]) for r in await db.fetchall("SELECT text FROM test_sink ORDER BY id")]
        numbers = line_numbers(texts, "alpha")
        assert numbers == list(range(1, len(numbers) + 1)), "a gap or a duplicate"
        assert len(numbers) > 8000
        assert rotated_paths(console, 2)[1].exists(), "it rotated"
        assert not rotated_paths(console, 3)[2].exists()
        assert int(await db.fetchval("SELECT pid FROM servers") or 0) == pid, "adopted"
    finally:
        for proc in hosts:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()
        kill_groups([pid] if pid else [])
        await db.close()


async def test_flush_of_a_large_backlog_keeps_the_loop_responsive_and_memory_bounded(
    tmp_path: Path,
) -> None:
    """A 64 MB backlog: the loop is never held long and memory does not grow with it."""
    path = tmp_path / "console.log"
    block = b"".join(
        b"[12:00:00] [Server thread/INFO]: backlog line %05d\n" % n for n in range(20000)
    )
    with path.open("wb") as f:
        while f.tell() < 64 * 1024 * 1024:
            f.write(block)
    expected = path.stat().st_size // len(block) * 20000
    bus = EventBus()
    logs = ServerLogs(server_id=1, server="alpha", bus=bus, watcher=LogWatcher())
    logs.attach([LogSourceSpec("console", lambda: path, rotate=True)])
    sub = bus.subscribe(LogLines)
    received = [0]
    me = psutil.Process()
    peak = [me.memory_info().rss]
    gaps = [0.0]
    done = asyncio.Event()

    async def consumer() -> None:  # a subscriber that keeps up, like the channel relay
        async for event in sub:
            assert isinstance(event, LogLines)
            received[0] += len(event.lines)

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps[0] = max(gaps[0], now - last)
            last = now
            peak[0] = max(peak[0], me.memory_info().rss)

    baseline = me.memory_info().rss
    tasks = [asyncio.create_task(consumer()), asyncio.create_task(ticker())]
    await asyncio.sleep(0.02)
    began = time.perf_counter()
    published = await logs.flush()
    took = time.perf_counter() - began
    done.set()
    async with asyncio.timeout(10):
        while received[0] < expected:
            await asyncio.sleep(0.01)
    sub.close()
    await asyncio.gather(*tasks)
    logs.close()
    grown = (peak[0] - baseline) / 1e6
    stall = gaps[0] * 1000
    print(f"flush of 64 MB: {took:.2f} s, longest loop stall {stall:.0f} ms, RSS +{grown:.0f} MB")
    assert published == expected == received[0]
    assert gaps[0] < 0.3, f"the loop stalled {gaps[0]:.2f} s"
    assert grown < 48, f"RSS grew {grown:.0f} MB for a 64 MB backlog"
