"""Games started the way real ones are (an `env` shebang, a wrapper that `exec`s, a chain of
both) change their command line after spawn; adoption must not depend on it.

Seen in the field: an `env` script's command line changed after spawn in 30 of 30 starts,
and a bot killed -9 on a loaded machine failed to adopt its games in 2 of 4 runs, then
reported them failed and refused to start them ("port already in use").
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from core.supervisor.process import identity_of
from core.supervisor.states import ServerState
from data.db import Database
from data.repositories.history import HistoryRepository
from data.repositories.servers import ServerRepository
from data.repositories.settings import SettingsRepository
from tests.fakes.fake_profile import LAUNCHERS
from tests.integration.supervision import FAST, kill_groups, spawn_host, supervised

S = ServerState
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
async def test_a_game_whose_command_line_changes_after_spawn_is_adopted(
    tmp_path: Path, launcher: str
) -> None:
    key = Fernet.generate_key()
    async with supervised(tmp_path, key=key) as env:
        server = await env.add_server("alpha", launcher=launcher)
        assert await server.start() is S.RUNNING
        assert server.handle is not None
        pid = server.handle.pid
        now = identity_of(pid)
        assert now is not None
        # the premise: what runs is no longer what was spawned
        assert str(LAUNCHERS[launcher]) not in now.cmdline[:1]
        await env.supervisor.close()
        env.supervisor._servers.clear()
    try:
        async with supervised(tmp_path, key=key) as env:
            adopted = env.supervisor.get(server.id)
            assert adopted.state is S.RUNNING, adopted.state_reason
            assert adopted.handle is not None and adopted.handle.pid == pid
            assert await adopted.stop() is S.STOPPED
            assert identity_of(pid) is None
    finally:
        kill_groups([pid])


@contextmanager
def cpu_burners(count: int) -> Iterator[None]:
    """Busy processes on every core, as on a loaded host."""
    procs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
        for _ in range(count)
    ]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)


async def _wait_up(proc: subprocess.Popen[str], log: Path) -> None:
    """The host prints UP once it has re-adopted (or started) every server."""
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
    assert line.strip() == "UP", log.read_text()[-3000:]


async def test_twenty_kill_9s_of_the_bot_under_cpu_load_give_twenty_adoptions(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    db_path = data_dir / "languard.db"
    log = tmp_path / "host.log"
    db = await Database.open(db_path)
    ids = []
    for launcher in sorted(LAUNCHERS):
        record = await ServerRepository(db).create(f"via-{launcher}", "fake")
        await SettingsRepository(db).set_many(
            record.id, {**FAST, "launcher": launcher, "start_timeout": 60.0}
        )
        ids.append(record.id)
    rng = random.Random(9)
    pids: list[int] = []
    host: subprocess.Popen[str] | None = None
    try:
        with cpu_burners(2):
            host = spawn_host(db_path, data_dir, "--start-all")
            await _wait_up(host, log)
            async with asyncio.timeout(60):
                while int(
                    await db.fetchval("SELECT COUNT(*) FROM servers WHERE state = 'running'")
                ) < len(ids):
                    await asyncio.sleep(0.1)
            pids = [int(r[0]) for r in await db.fetchall("SELECT pid FROM servers ORDER BY id")]
            adoptions = 0
            for _ in range(20):
                await asyncio.sleep(rng.uniform(0.0, 0.4))  # die at any moment, mid-checkpoint
                os.kill(host.pid, signal.SIGKILL)
                await asyncio.to_thread(host.wait, 10)
                assert host.stdout is not None
                host.stdout.close()
                assert all(identity_of(pid) is not None for pid in pids), "the games stay up"
                host = spawn_host(db_path, data_dir)
                await _wait_up(host, log)
                rows = await db.fetchall("SELECT pid, state FROM servers ORDER BY id")
                assert [int(r["pid"]) for r in rows] == pids, log.read_text()[-3000:]
                assert [r["state"] for r in rows] == ["running"] * len(ids)
                adoptions += 1
            assert adoptions == 20
        history = HistoryRepository(db)
        for server_id in ids:
            starts = [
                h
                for h in await history.recent(server_id, limit=500, kind="transition")
                if h.data["new"] == "starting"
            ]
            assert len(starts) == 1, "an adoption must never start the game again"
    finally:
        if host is not None and host.poll() is None:
            host.kill()
            host.wait(timeout=10)
        if host is not None and host.stdout is not None:
            host.stdout.close()
        recorded = await db.fetchall("SELECT pid FROM servers WHERE pid IS NOT NULL")
        kill_groups({*pids, *(int(r[0]) for r in recorded)})
        await db.close()
