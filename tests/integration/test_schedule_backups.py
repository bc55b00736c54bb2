"""Scheduled backups: `/schedule backup` through the ScheduleService, on a clock the test moves.

Real SQLite (the schedules table as migrated), the real Supervisor, the real BackupService and
job queue writing real archives; only wall time is fake, so a day of schedule passes at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.backups.archive import extract_verified
from core.backups.layout import BackupKind
from core.errors import InvalidInput
from core.jobs import JobQueue
from core.secrets import SecretBox
from core.services.audit import SYSTEM, Actor, AuditLog
from core.services.backups import BackupService
from core.services.schedule import ScheduleService
from core.services.servers import ServerService
from data.repositories.backups import BackupPolicyRepository
from data.repositories.history import AuditRepository
from tests.fakes.clock import FakeClock
from tests.fakes.memory_link import MemoryProfile
from tests.integration.supervision import Env, supervised

ALICE = Actor(42, "alice")


def at(hour: int, minute: int = 0, day: int = 1) -> datetime:
    return datetime(2024, 6, day, hour, minute, tzinfo=UTC)


async def eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


@asynccontextmanager
async def services(
    env: Env, clock: FakeClock
) -> AsyncIterator[tuple[ScheduleService, BackupService]]:
    audit = AuditLog(AuditRepository(env.db))
    jobs = JobQueue()
    backups = BackupService(
        env.supervisor,
        ServerService(env.supervisor, audit, SecretBox(env.key)),
        audit,
        jobs,
        BackupPolicyRepository(env.db),
        root=env.data_dir / "backups",
    )
    schedule = ScheduleService(
        env.supervisor, env.db, audit, clock=clock, sleep=clock.sleep, tz=UTC
    )
    schedule.backups = backups
    await schedule.start()
    try:
        yield schedule, backups
    finally:
        async with asyncio.timeout(10):
            await schedule.close()
            await jobs.close()


async def count(backups: BackupService, server: str) -> int:
    return (await backups.list(server)).total


async def test_a_daily_backup_runs_at_its_time_as_a_scheduled_backup(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="core.services.schedule")
    clock = FakeClock(at(5, 40))
    async with supervised(tmp_path, [MemoryProfile()]) as env:
        await env.add_server("alpha", [])
        world = env.supervisor.folder_for("alpha") / "world.dat"
        world.parent.mkdir(parents=True, exist_ok=True)
        world.write_bytes(b"day one")
        async with services(env, clock) as (schedule, backups):
            entry = await schedule.add_backup(ALICE, "alpha", "06:00")
            assert entry.kind == "backup" and entry.spec == "daily at 06:00"
            assert entry.next_run == at(6) and entry.warn == ()
            assert "alpha · backup daily at 06:00" in schedule.describe(entry)

            clock.set(at(5, 59))
            await asyncio.sleep(0.2)  # the loop had time to (wrongly) run early
            assert await count(backups, "alpha") == 0

            clock.set(at(6))
            async with asyncio.timeout(15):
                while await count(backups, "alpha") < 1:
                    await asyncio.sleep(0.05)
            first = (await backups.list("alpha")).items[0]
            assert first.kind is BackupKind.SCHEDULED and first.server == "alpha"
            folder, manifest = backups.store.load("alpha", first.name)
            extract_verified(folder, manifest, tmp_path / "one", lambda d, t: None)
            assert (tmp_path / "one" / "world.dat").read_bytes() == b"day one"

            # the loop has planned its next run once it logged this one (moving the clock
            # before would make the next day's run one that "passed meanwhile")
            await eventually(lambda: f"{first.name} written" in caplog.text)
            world.write_bytes(b"day two")
            clock.set(at(6, day=2))
            async with asyncio.timeout(15):
                while await count(backups, "alpha") < 2:
                    await asyncio.sleep(0.05)
            newest = (await backups.list("alpha")).items[0]
            assert newest.name != first.name and newest.kind is BackupKind.SCHEDULED

            # the audit row follows the job's result, which follows the listing: wait for it
            async with asyncio.timeout(15):
                while True:
                    rows = await AuditRepository(env.db).recent(50)
                    made = [r for r in rows if r.action == "backup.create"]
                    if len(made) >= 2:
                        break
                    await asyncio.sleep(0.05)
            assert len(made) == 2 and all(r.ok and r.actor_name == SYSTEM.name for r in made)
            assert "schedule.backup.add" in {r.action for r in rows}


async def test_backups_too_close_together_are_refused_and_schedules_survive_a_restart(
    tmp_path: Path,
) -> None:
    clock = FakeClock(at(5, 40))
    async with supervised(tmp_path, [MemoryProfile()]) as env:
        await env.add_server("alpha", [])
        async with services(env, clock) as (schedule, _):
            with pytest.raises(InvalidInput, match="backups would come 10 minute"):
                await schedule.add_backup(ALICE, "alpha", "*/10 * * * *")
            with pytest.raises(InvalidInput, match="leave at least 60 minutes"):
                await schedule.add_backup(ALICE, "alpha", "0,30 * * * *")
            hourly = await schedule.add_backup(ALICE, "alpha", "0 * * * *")
            assert hourly.next_run == at(6)
        async with services(env, clock) as (fresh, _):
            [kept] = await fresh.list("alpha")
            assert (kept.id, kept.kind, kept.spec) == (hourly.id, "backup", hourly.spec)
            await fresh.remove(ALICE, kept.id)
            assert await fresh.list() == []
