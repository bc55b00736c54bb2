"""The bot goes away (cleanly or by kill -9); the servers stay up and are re-adopted."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
from pathlib import Path

from cryptography.fernet import Fernet

from core.supervisor.process import identity_of
from core.supervisor.states import ServerState
from data.db import Database
from data.repositories.history import HistoryRepository
from data.repositories.servers import ServerRepository
from data.repositories.settings import SettingsRepository
from tests.integration.supervision import FAST, kill_groups, start_host, supervised

S = ServerState
ROOT = Path(__file__).resolve().parents[2]


async def test_closing_the_supervisor_leaves_servers_running_and_a_new_one_adopts_them(
    tmp_path: Path,
) -> None:
    key = Fernet.generate_key()
    async with supervised(tmp_path, key=key) as env:
        server = await env.add_server("alpha")
        await server.start()
        assert server.handle is not None
        pid = server.handle.pid
        server_id = server.id
        # close without stopping: detach the handle first so teardown does not kill it
        await env.supervisor.close()
        env.supervisor._servers.clear()
    try:
        assert identity_of(pid) is not None, "closing the bot must not stop the game"
        async with supervised(tmp_path, key=key) as env:
            adopted = env.supervisor.get(server_id)
            assert adopted.state is S.RUNNING
            assert adopted.handle is not None and adopted.handle.pid == pid
            assert adopted.handle.adopted
            # an adopted server is still fully controllable
            assert await adopted.stop() is S.STOPPED
            assert identity_of(pid) is None
    finally:
        kill_groups([pid])


async def test_a_reused_pid_is_not_adopted(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    async with supervised(tmp_path, key=key) as env:
        server = await env.add_server("alpha", auto_restart=False)
        await server.start()
        assert server.handle is not None
        real_pid = server.handle.pid
        await env.supervisor.close()
        env.supervisor._servers.clear()
        # pretend the recorded pid now belongs to another process: this test process
        await env.db.execute("UPDATE servers SET pid = ? WHERE id = ?", (os.getpid(), server.id))
    kill_groups([real_pid])
    async with supervised(tmp_path, key=key) as env:
        other = env.supervisor.get(server.id)
        assert other.handle is None
        assert other.state is S.CRASHED
        record = await ServerRepository(env.db).get(server.id)
        assert record is not None and record.process is None
    assert identity_of(os.getpid()) is not None  # and of course we were not signalled


async def test_a_server_that_died_while_the_bot_was_down_counts_as_a_crash(
    tmp_path: Path,
) -> None:
    key = Fernet.generate_key()
    async with supervised(tmp_path, key=key) as env:
        server = await env.add_server("alpha")
        await server.start()
        assert server.handle is not None
        pid = server.handle.pid
        await env.supervisor.close()
        env.supervisor._servers.clear()
    kill_groups([pid])
    await asyncio.sleep(0.2)
    async with supervised(tmp_path, key=key) as env:
        server = env.supervisor.get(server.id)
        async with asyncio.timeout(10):
            while server.state is not S.RUNNING:  # restarted by the crash policy
                await asyncio.sleep(0.05)
        assert server.handle is not None and server.handle.pid != pid
        history = await HistoryRepository(env.db).recent(server.id, kind="crash")
        assert len(history) == 1


async def _wait_for(predicate_sql: str, db: Database, expected: int, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while int(await db.fetchval(predicate_sql) or 0) < expected:
            await asyncio.sleep(0.1)


async def test_kill_9_of_the_bot_then_adoption_with_no_log_gap_or_duplicate(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    db_path = data_dir / "languard.db"
    db = await Database.open(db_path)
    names = ["alpha", "bravo", "charlie"]
    ids = []
    for name in names:
        record = await ServerRepository(db).create(name, "fake")
        await SettingsRepository(db).set_many(record.id, {**FAST, "args": ["--interval", "0.01"]})
        ids.append(record.id)
    host = start_host(db_path, data_dir, "--start-all")
    pids: list[int] = []
    second: subprocess.Popen[str] | None = None
    try:
        await _wait_for("SELECT COUNT(*) FROM servers WHERE state = 'running'", db, 3, 15)
        rows = await db.fetchall("SELECT id, pid FROM servers ORDER BY id")
        pids = [int(r["pid"]) for r in rows]
        await _wait_for("SELECT COUNT(*) FROM test_sink", db, 300, 15)

        os.kill(host.pid, signal.SIGKILL)  # the bot dies hard, mid-stream
        host.wait(timeout=10)
        await asyncio.sleep(1.0)  # the games keep writing while no bot is there
        assert all(identity_of(pid) is not None for pid in pids)
        before = int(await db.fetchval("SELECT COUNT(*) FROM test_sink"))

        second = start_host(db_path, data_dir)
        await _wait_for("SELECT COUNT(*) FROM test_sink", db, before + 600, 20)
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=15)

        rows = await db.fetchall("SELECT id, pid, state FROM servers ORDER BY id")
        assert [int(r["pid"]) for r in rows] == pids, "no server was restarted"
        assert [r["state"] for r in rows] == ["running"] * 3
        history = HistoryRepository(db)
        for server_id in ids:
            starts = [
                h
                for h in await history.recent(server_id, kind="transition")
                if h.data["new"] == "starting"
            ]
            assert len(starts) == 1, "adoption must not start the server again"

        for server_id, name in zip(ids, names, strict=True):
            texts = [
                str(r[0])
                for r in await db.fetchall(
                    "SELECT text FROM test_sink WHERE server_id = ? ORDER BY id", (server_id,)
                )
            ]
            numbers = [
                int(m.group(1)) for t in texts if (m := re.fullmatch(rf"{name} line (\d+)", t))
            ]
            assert numbers == list(range(1, len(numbers) + 1)), "gap or duplicate in the log"
            assert len(numbers) > 100
            assert texts.count("READY") == 1
        assert all(identity_of(pid) is not None for pid in pids), "stopping the bot stops nothing"
    finally:
        for proc in (host, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
            if proc is not None and proc.stdout is not None:
                proc.stdout.close()
        recorded = await db.fetchall("SELECT pid FROM servers WHERE pid IS NOT NULL")
        kill_groups({*pids, *(int(r["pid"]) for r in recorded)})
        await db.close()
