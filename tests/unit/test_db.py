from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from pathlib import Path

import pytest

from core.supervisor.states import ServerState
from data.db import Database, MigrationError
from data.repositories.history import AuditRepository, HistoryRepository
from data.repositories.servers import ProcessRecord, ServerRepository
from data.repositories.settings import SecretRepository, SettingsRepository
from data.repositories.telemetry import LogOffsetRepository, MetricSample, MetricsRepository


async def test_migrations_apply_once_and_pragmas(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "a.db")
    try:
        assert await db.fetchval("PRAGMA journal_mode") == "wal"
        assert await db.fetchval("PRAGMA foreign_keys") == 1
        assert await db.migrate() == []  # re-runnable
        names = [r[0] for r in await db.fetchall("SELECT name FROM schema_migrations")]
        assert names[0] == "0001_initial.sql" and names == sorted(names)
        shipped = sorted(
            p.name for p in (Path(__file__).parents[2] / "data" / "migrations").glob("*.sql")
        )
        assert names == shipped
    finally:
        await db.close()


async def test_a_failing_migration_rolls_back_and_stays_pending(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_ok.sql").write_text("CREATE TABLE a (x INTEGER);\n")
    (folder / "0002_bad.sql").write_text(
        "CREATE TABLE b (x INTEGER);\nINSERT INTO nowhere VALUES (1);\n"
    )
    db = await Database.open(tmp_path / "m.db", migrate=False)
    try:
        with pytest.raises(MigrationError):
            await db.migrate(folder)
        tables = {r[0] for r in await db.fetchall("SELECT name FROM sqlite_master")}
        assert "a" in tables and "b" not in tables
        applied = [r[0] for r in await db.fetchall("SELECT name FROM schema_migrations")]
        assert applied == ["0001_ok.sql"]
        (folder / "0002_bad.sql").write_text("CREATE TABLE b (x INTEGER);\n")
        assert await db.migrate(folder) == ["0002_bad.sql"]
    finally:
        await db.close()


async def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "t.db")
    repo = ServerRepository(db)
    try:
        with pytest.raises(RuntimeError):
            async with db.transaction():
                await repo.create("alpha", "arma3")
                raise RuntimeError("boom")
        assert await repo.list() == []
        await repo.create("dup", "arma3")
        with pytest.raises(sqlite3.IntegrityError):
            await repo.create("dup", "arma3")
        assert [r.name for r in await repo.list()] == ["dup"]
    finally:
        await db.close()


async def test_repositories_round_trip(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "r.db")
    try:
        servers = ServerRepository(db)
        record = await servers.create("alpha", "arma3")
        assert record.state is ServerState.STOPPED and record.process is None
        await servers.set_state(record.id, ServerState.STARTING, "go")
        process = ProcessRecord(123, 1000.5, ("a", "b c"), 999.0)
        await servers.set_process(record.id, process)
        loaded = await servers.get_by_name("alpha")
        assert loaded is not None
        assert loaded.state is ServerState.STARTING and loaded.process == process

        settings = SettingsRepository(db)
        await settings.set_many(record.id, {"max_players": 40, "motd": ["a", "b"]})
        assert await settings.get_all(record.id) == {"max_players": 40, "motd": ["a", "b"]}

        secrets = SecretRepository(db)
        await secrets.put(record.id, "rcon_password", b"cipher")
        assert await secrets.get(record.id, "rcon_password") == b"cipher"
        assert await secrets.keys(record.id) == ["rcon_password"]

        history = HistoryRepository(db)
        await history.add(record.id, "crash", {"exit_code": 1}, ts=100.0)
        await history.add(record.id, "crash", {"exit_code": 2}, ts=200.0)
        assert await history.count_since(record.id, "crash", 150.0) == 1

        audit = AuditRepository(db)
        await audit.add(
            actor_id=7,
            actor_name="ann",
            action="start",
            server_id=record.id,
            arguments={"x": 1},
            result="ok",
            ok=True,
        )
        entries = await audit.recent()
        assert entries[0].actor_name == "ann" and entries[0].ok

        offsets = LogOffsetRepository(db)
        await offsets.save(record.id, "console", "reader", "1:2", 10)
        await offsets.save(record.id, "console", "reader", "1:2", 20)
        stored = await offsets.load(record.id)
        assert [(s.consumer, s.offset) for s in stored] == [("reader", 20)]

        metrics = MetricsRepository(db)
        await metrics.add_many(
            [MetricSample(record.id, 1.0, 5.0, 100), MetricSample(record.id, 2.0, 6.0, 200)]
        )
        latest = await metrics.latest(record.id)
        assert latest is not None and latest.rss_bytes == 200
        assert await metrics.prune(1.5) == 1

        await servers.archive(record.id)
        assert await servers.get_by_name("alpha") is None
        assert await servers.list() == []
        # the name is free again for a new server
        await servers.create("alpha", "arma3")
    finally:
        await db.close()


async def test_a_failed_begin_leaves_no_transaction_mark_behind(tmp_path: Path) -> None:
    """A BEGIN that fails (locked past every retry) must not make the task's next
    transaction run without a BEGIN of its own."""
    path = tmp_path / "b.db"
    db = await Database.open(path)
    other = sqlite3.connect(path, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        await db.fetchval("PRAGMA busy_timeout=1")
        with pytest.raises(sqlite3.OperationalError):
            async with db.transaction():
                pass
        other.rollback()
        with pytest.raises(RuntimeError):
            async with db.transaction():
                await db.execute("CREATE TABLE t (x INTEGER)")
                raise RuntimeError("undo")
        tables = {r[0] for r in await db.fetchall("SELECT name FROM sqlite_master")}
        assert "t" not in tables, "the second transaction ran without BEGIN and kept its write"
    finally:
        other.close()
        await db.close()


async def test_a_busy_database_is_retried_until_the_lock_is_released(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    db = await Database.open(path)
    other = sqlite3.connect(path, timeout=0, check_same_thread=False)
    try:
        await db.fetchval("PRAGMA busy_timeout=1")
        other.execute("BEGIN IMMEDIATE")
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, other.rollback)
        await db.execute("CREATE TABLE t (x INTEGER)")  # waits out the lock, then succeeds
        assert await db.fetchval("SELECT COUNT(*) FROM t") == 0
    finally:
        other.close()
        await db.close()


@pytest.mark.parametrize("at", ["begin", "body", "commit"])
async def test_cancelling_a_transaction_never_leaves_the_connection_inside_one(
    tmp_path: Path, at: str
) -> None:
    """Seen under load: `cannot start a transaction within a transaction` after a task was
    cancelled around BEGIN or COMMIT while the lock was released."""
    db = await Database.open(tmp_path / "c.db")
    try:
        await db.execute("CREATE TABLE t (x INTEGER)")
        for delay_steps in range(0, 6):

            async def writer() -> None:
                async with db.transaction():
                    await db.execute("INSERT INTO t VALUES (1)")
                    await db.execute("INSERT INTO t VALUES (2)")

            task = asyncio.create_task(writer())
            for _ in range(delay_steps if at != "begin" else 0):
                await asyncio.sleep(0)
            if at == "commit":
                await asyncio.sleep(0.001 * delay_steps)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            # the next transaction works, and nothing half-done was kept
            async with db.transaction():
                await db.execute("INSERT INTO t VALUES (3)")
            count = int(await db.fetchval("SELECT COUNT(*) FROM t WHERE x IN (1, 2)"))
            assert count % 2 == 0, "a transaction was half applied"
        assert int(await db.fetchval("SELECT COUNT(*) FROM t WHERE x = 3")) == 6
    finally:
        await db.close()


async def test_the_database_and_its_journal_files_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    db = await Database.open(path)
    try:
        await db.execute("CREATE TABLE t (x INTEGER)")
        for suffix in ("", "-wal", "-shm"):
            mode = os.stat(f"{path}{suffix}").st_mode & 0o777
            assert mode == 0o600, f"{suffix or 'db'} is {oct(mode)}"
    finally:
        await db.close()


def test_migration_numbers_are_unique_and_without_gaps() -> None:
    """Two branches adding "0011_..." would apply in name order by luck; a number is a
    migration's place, so each is used once and none is skipped."""
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "data" / "migrations"
    numbers = sorted(int(p.name.split("_", 1)[0]) for p in folder.glob("*.sql"))
    assert numbers == list(range(1, len(numbers) + 1))
