"""Scheduled restarts, repeating messages and maintenance, on a clock the test moves.

Real SQLite, the real Supervisor and real fake-game processes; only wall time is fake, so
hours of schedule pass in seconds. Every wait on the real world is bounded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.errors import InvalidInput, NotFound
from core.events import ServerCrashed, ServerStateChanged
from core.services.audit import Actor, AuditLog
from core.services.schedule import MaintenanceChanged, ScheduleService
from core.supervisor.server import ManagedServer
from core.supervisor.states import ServerState
from data.repositories.history import AuditRepository
from data.repositories.schedules import MaintenanceRepository
from tests.fakes.clock import FakeClock
from tests.fakes.memory_link import MemoryProfile
from tests.integration.supervision import Env, next_event, supervised

S = ServerState
ALICE = Actor(42, "alice")
QUICK_STOP = ["--console", "--ready-after", "0.05"]


def at(hour: int, minute: int = 0, second: int = 0, day: int = 1) -> datetime:
    return datetime(2024, 6, day, hour, minute, second, tzinfo=UTC)


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


async def running(server: ManagedServer) -> int:
    """Start the server and wait for its link; returns the pid."""
    if server.state is not S.RUNNING:
        await server.start()
    await eventually(lambda: server.state is S.RUNNING and server.link is not None)
    assert server.handle is not None
    return server.handle.pid


async def quiet(seconds: float = 0.2) -> None:
    """Give the schedule loops real time to (wrongly) act, for the negative checks."""
    await asyncio.sleep(seconds)


@asynccontextmanager
async def service(
    env: Env,
    clock: FakeClock,
    *,
    on_maintenance: Callable[[MaintenanceChanged], None] | None = None,
) -> AsyncIterator[ScheduleService]:
    svc = ScheduleService(
        env.supervisor,
        env.db,
        AuditLog(AuditRepository(env.db)),
        clock=clock,
        sleep=clock.sleep,
        tz=UTC,
        on_maintenance=on_maintenance,
    )
    await svc.start()
    try:
        yield svc
    finally:
        async with asyncio.timeout(10):
            await svc.close()


async def actions(env: Env) -> list[str]:
    return [e.action for e in reversed(await AuditRepository(env.db).recent(100))]


# -- restarts ---------------------------------------------------------------------------------


async def test_a_restart_warns_at_15_5_1_minutes_then_restarts_without_a_crash(
    tmp_path: Path,
) -> None:
    profile = MemoryProfile()
    clock = FakeClock(at(5, 40))
    async with supervised(tmp_path, [profile]) as env, service(env, clock) as svc:
        server = await env.add_server("alpha", QUICK_STOP)
        first_pid = await running(server)
        entry = await svc.add_restart(ALICE, "alpha", "06:00")
        assert entry.next_run == at(6) and entry.warn == (15, 5, 1)
        assert entry.spec == "daily at 06:00"

        clock.set(at(5, 44, 59))
        await quiet()
        assert profile.said("alpha") == []
        expected = []
        for minute, text in [
            (45, "Server restart in 15 minutes"),
            (55, "Server restart in 5 minutes"),
            (59, "Server restart in 1 minute"),
        ]:
            clock.set(at(5, minute))
            expected.append(text)
            await eventually(lambda: profile.said("alpha") == expected)
        assert server.handle is not None and server.handle.pid == first_pid

        with env.bus.subscribe(ServerStateChanged, ServerCrashed) as events:
            clock.set(at(6))
            changes = [await next_event(events, ServerStateChanged) for _ in range(4)]
            await eventually(lambda: server.link is not None)
            crashes = [events.get_nowait() for _ in range(events.pending())]
        assert [(c.old, c.new) for c in changes] == [
            (S.RUNNING, S.STOPPING),
            (S.STOPPING, S.STOPPED),
            (S.STOPPED, S.STARTING),
            (S.STARTING, S.RUNNING),
        ]
        assert all(c.expected for c in changes), "a planned restart is not a crash"
        assert [c.reason for c in changes[:3]] == ["scheduled restart"] * 3
        assert not any(isinstance(e, ServerCrashed) for e in crashes)
        assert server.handle is not None and server.handle.pid != first_pid
        assert profile.said("alpha") == expected, "nothing more said after the restart"
        async with asyncio.timeout(10):  # the run is audited once the restart is done
            while "schedule.restart.run" not in await actions(env):
                await asyncio.sleep(0.02)
        assert (await actions(env))[-2:] == ["schedule.restart.add", "schedule.restart.run"]


async def test_a_slow_restart_drops_stale_warnings_and_never_replays_a_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="core.services.schedule")
    profile = MemoryProfile()
    clock = FakeClock(at(0, 4))
    fifteen, five, one = (f"Server restart in {n}" for n in ("15 minutes", "5 minutes", "1 minute"))
    async with supervised(tmp_path, [profile]) as env, service(env, clock) as svc:
        server = await env.add_server("alpha", QUICK_STOP)
        pids = [await running(server)]
        await svc.add_restart(ALICE, "alpha", "*/20 * * * *", "15,5,1")
        clock.set(at(0, 11))  # the host slept through 00:05: that warning is stale
        await quiet()
        assert profile.said("alpha") == [], "a stale warning is dropped, not sent late"
        clock.set(at(0, 15))
        await eventually(lambda: profile.said("alpha") == [five])
        clock.set(at(0, 19))
        await eventually(lambda: profile.said("alpha") == [five, one])

        async def slow_restart(run: datetime, done: datetime) -> None:
            """Start the run at `run`; while it is under way, the clock reaches `done`."""
            with env.bus.subscribe(ServerStateChanged) as events:
                clock.set(run)
                stopping = await next_event(events, ServerStateChanged)
                assert stopping.new is S.STOPPING
                clock.set(done)
                pids.append(await running(server))

        # the restart at 00:20 "takes" 11 minutes: 00:40's 15-minute warning (00:25) is stale
        await slow_restart(at(0, 20), at(0, 31))
        await quiet()
        assert len(profile.said("alpha")) == 2, "nothing is caught up after the restart"
        clock.set(at(0, 35))
        await eventually(lambda: profile.said("alpha")[2:] == [five])
        clock.set(at(0, 39))
        await eventually(lambda: profile.said("alpha")[2:] == [five, one])

        # the restart at 00:40 "takes" 21 minutes: the run at 01:00 passes and is not replayed
        await slow_restart(at(0, 40), at(1, 1))
        await eventually(lambda: "passed meanwhile (a slow restart" in caplog.text)
        await quiet()
        assert len(set(pids)) == 3 and server.handle is not None
        assert server.handle.pid == pids[-1], "no catch-up restart"
        assert profile.said("alpha")[4:] == [], "01:00's warnings are not sent after the fact"
        clock.set(at(1, 5))  # the 15-minute warning for 01:20
        await eventually(lambda: profile.said("alpha")[4:] == [fifteen])


async def test_a_restart_schedule_never_starts_a_stopped_server(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="core.services.schedule")
    clock = FakeClock(at(5, 50))
    async with supervised(tmp_path, [MemoryProfile()]) as env, service(env, clock) as svc:
        server = await env.add_server("alpha", QUICK_STOP)
        await svc.add_restart(ALICE, "alpha", "06:00")
        clock.set(at(6))
        await eventually(lambda: "alpha is stopped; skipped" in caplog.text)
        assert server.state is S.STOPPED and server.handle is None


# -- messages ---------------------------------------------------------------------------------


async def test_a_message_repeats_while_running_and_never_in_a_burst(tmp_path: Path) -> None:
    profile = MemoryProfile()
    clock = FakeClock(at(10))
    async with supervised(tmp_path, [profile]) as env, service(env, clock) as svc:
        server = await env.add_server("alpha", QUICK_STOP)
        await running(server)
        entry = await svc.add_message(ALICE, "alpha", "30m", "  Join our\nDiscord:\u202e  gg/x ")
        assert entry.message == "Join our Discord: gg/x" and entry.spec == "30m"
        assert entry.next_run == at(10, 30)

        clock.set(at(10, 29))
        await quiet()
        assert profile.said("alpha") == []
        clock.set(at(10, 30))
        await eventually(lambda: profile.said("alpha") == [entry.message])
        clock.set(at(11))
        await eventually(lambda: profile.said("alpha") == [entry.message] * 2)

        await server.stop()
        clock.set(at(11, 30))
        await quiet()
        assert len(profile.said("alpha")) == 2, "only while running"

        await running(server)
        clock.set(at(15, 10))  # the host slept for hours: nothing is caught up
        await quiet()
        assert len(profile.said("alpha")) == 2
        clock.set(at(15, 30))
        await eventually(lambda: len(profile.said("alpha")) == 3)
        assert (await svc.list("alpha"))[0].next_run == at(16)


# -- persistence -----------------------------------------------------------------------------


async def test_schedules_survive_a_restart_of_the_service_without_replaying_missed_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="core.services.schedule")
    profile = MemoryProfile()
    clock = FakeClock(at(5))
    async with supervised(tmp_path, [profile]) as env:
        server = await env.add_server("alpha", QUICK_STOP)
        pid = await running(server)
        async with service(env, clock) as first:
            restart = await first.add_restart(ALICE, "alpha", "06:00")
            message = await first.add_message(ALICE, "alpha", "1h", "hourly hello")

        clock.set(at(6, 30))  # the bot was down over 06:00 (and the 05:45 warning)
        async with service(env, clock) as second:
            await quiet()
            assert "was missed while the bot was down; not replayed" in caplog.text
            assert caplog.text.count("was missed") == 1
            assert server.handle is not None and server.handle.pid == pid
            assert profile.said("alpha") == []
            listed = {e.id: e for e in await second.list()}
            assert listed[restart.id].next_run == at(6, day=2)
            assert listed[message.id].next_run == at(7), "the message keeps its phase"

            clock.set(at(7))
            await eventually(lambda: profile.said("alpha") == ["hourly hello"])
            removed = await second.remove(ALICE, f"#{message.id}")
            assert removed.id == message.id
            clock.set(at(8))
            await quiet()
            assert profile.said("alpha") == ["hourly hello"], "a removed schedule stops"

            clock.set(at(5, 45, day=2))
            await eventually(lambda: profile.said("alpha")[-1] == "Server restart in 15 minutes")
            assert [e.id for e in await second.list("alpha")] == [restart.id]
        log = await actions(env)
        assert log.count("schedule.restart.add") == 1 and "schedule.message.add" in log
        assert "schedule.remove" in log


# -- maintenance -----------------------------------------------------------------------------


async def test_maintenance_keeps_a_crashed_server_down_and_ends_on_time(tmp_path: Path) -> None:
    clock = FakeClock(at(12))
    changes: list[MaintenanceChanged] = []
    async with (
        supervised(tmp_path) as env,
        service(env, clock, on_maintenance=changes.append) as svc,
    ):
        server = await env.add_server(
            "crashy", ["--ready-after", "0.05", "--crash-after", "0.4"], backoff_base=0.1
        )
        until = await svc.start_maintenance(ALICE, "crashy", 30)
        assert until == at(12, 30)
        assert server.paused and svc.in_maintenance(server.id)
        assert svc.maintenance_until(server.id) == at(12, 30)

        with env.bus.subscribe(ServerCrashed) as events:
            await server.start(wait=False)
            crash = await next_event(events, ServerCrashed)
        assert crash.restart_in_s is None
        await asyncio.sleep(0.5)  # a restart would come after 0.1 s
        assert server.state is S.CRASHED and server.handle is None

        clock.set(at(12, 29, 59))
        await quiet(0.1)
        assert server.paused and svc.in_maintenance(server.id)
        clock.set(at(12, 30))
        await eventually(lambda: not server.paused)
        assert not svc.in_maintenance(server.id) and svc.maintenance_until(server.id) is None
        assert await MaintenanceRepository(env.db).get(server.id) is None
        assert [(c.active, c.reason) for c in changes] == [
            (True, "started"),
            (False, "ended on time"),
        ]
        assert server.state is S.CRASHED, "the end of a window starts nothing by itself"
        assert (await actions(env))[-2:] == ["maintenance.start", "maintenance.end"]


async def test_maintenance_survives_a_restart_of_the_service_and_ends_early(
    tmp_path: Path,
) -> None:
    clock = FakeClock(at(12))
    async with supervised(tmp_path) as env:
        server = await env.add_server("alpha", QUICK_STOP)
        other = await env.add_server("beta", QUICK_STOP)
        async with service(env, clock) as first:
            await first.start_maintenance(ALICE, "alpha", 60)
            await first.start_maintenance(ALICE, "beta", 5)
        server.paused = other.paused = False  # what a fresh supervisor would have

        clock.set(at(12, 10))  # beta's window ended while the bot was down
        fresh = ScheduleService(
            env.supervisor,
            env.db,
            AuditLog(AuditRepository(env.db)),
            clock=clock,
            sleep=clock.sleep,
            tz=UTC,
        )
        await fresh.load()  # before the supervisor re-adopts: alerts already muted
        assert fresh.in_maintenance(server.id) and not fresh.in_maintenance(other.id)
        await fresh.start()
        try:
            assert server.paused and not other.paused
            assert fresh.maintenance_until(server.id) == at(13)
            assert await MaintenanceRepository(env.db).get(other.id) is None

            assert await fresh.end_maintenance(server.id, actor=ALICE)
            assert not server.paused and not fresh.in_maintenance(server.id)
            assert not await fresh.end_maintenance(server.id), "nothing left to end"
            clock.set(at(13))
            await quiet(0.1)
            assert not server.paused
        finally:
            await fresh.close()
        log = await actions(env)
        assert log.count("maintenance.start") == 2 and log.count("maintenance.end") == 1


# -- refusals ---------------------------------------------------------------------------------


async def test_invalid_input_is_refused_with_a_reason(tmp_path: Path) -> None:
    clock = FakeClock(at(12))
    async with supervised(tmp_path, [MemoryProfile()]) as env, service(env, clock) as svc:
        server = await env.add_server("alpha", QUICK_STOP)
        refusals: list[tuple[Callable[[], object], type[Exception], str]] = [
            (lambda: svc.add_restart(ALICE, "nope", "06:00"), NotFound, "no server named"),
            (lambda: svc.add_restart(ALICE, "", "06:00"), InvalidInput, "name a server"),
            (lambda: svc.add_restart(ALICE, "a" * 500, "06:00"), InvalidInput, "name a server"),
            (lambda: svc.add_restart(ALICE, "alpha", "0 0 31 2 *"), InvalidInput, "never fires"),
            (lambda: svc.add_restart(ALICE, "alpha", "tomorrow"), InvalidInput, "daily time"),
            (lambda: svc.add_restart(ALICE, "alpha", "06:00", "0"), InvalidInput, "1 to 180"),
            (lambda: svc.add_restart(ALICE, "alpha", "06:00", "5,x"), InvalidInput, "1 to 180"),
            (lambda: svc.add_restart(ALICE, "alpha", "06:00", "600"), InvalidInput, "1 to 180"),
            (
                lambda: svc.add_restart(ALICE, "alpha", "*/5 * * * *"),
                InvalidInput,
                "5 minutes apart; leave at least 16",
            ),
            (
                lambda: svc.add_restart(ALICE, "alpha", "0 * * * *", "90"),
                InvalidInput,
                "60 minutes apart; leave at least 91",
            ),
            (
                lambda: svc.add_restart(ALICE, "alpha", "59 23 * * *,0 0 * * *"),
                InvalidInput,
                "five cron fields",
            ),
            (lambda: svc.add_message(ALICE, "alpha", "30s", "hi"), InvalidInput, "between 1m"),
            (lambda: svc.add_message(ALICE, "alpha", "soon", "hi"), InvalidInput, "duration"),
            (lambda: svc.add_message(ALICE, "alpha", "1h", " \n\t "), InvalidInput, "empty"),
            (lambda: svc.add_message(ALICE, "alpha", "1h", "x" * 201), InvalidInput, "201"),
            (lambda: svc.remove(ALICE, "abc"), InvalidInput, "pick a schedule"),
            (lambda: svc.remove(ALICE, "-1"), InvalidInput, "pick a schedule"),
            (lambda: svc.remove(ALICE, 999), NotFound, "no schedule #999"),
            (lambda: svc.start_maintenance(ALICE, "alpha", 0), InvalidInput, "1 to 10080"),
            (lambda: svc.start_maintenance(ALICE, "alpha", 10081), InvalidInput, "1 to 10080"),
            (lambda: svc.start_maintenance(ALICE, "alpha", True), InvalidInput, "whole number"),
            (
                lambda: svc.start_maintenance(ALICE, "alpha", "30"),  # type: ignore[arg-type]
                InvalidInput,
                "whole number",
            ),
            (lambda: svc.list("ghost"), NotFound, "no server named"),
        ]
        for call, kind, says in refusals:
            with pytest.raises(kind) as info:
                await call()  # type: ignore[misc]
            assert says in str(info.value), (says, str(info.value))
        assert await svc.list() == [] and not server.paused
        assert await actions(env) == [], "a refused command changes and audits nothing"

        # one line of at most 200 characters is fine, and labels fit autocomplete
        long_text = "y" * 200
        entry = await svc.add_message(ALICE, "alpha", "1h", long_text)
        label = svc.describe(entry)
        assert len(label) == 100 and label.startswith(f"#{entry.id} alpha · every 1h: y")
        restart = await svc.add_restart(ALICE, "alpha", "0 4 * * 1")
        label = svc.describe(restart)
        assert label == f"#{restart.id} alpha · restart 0 4 * * 1 · next Mon 04:00"
        for _ in range(18):
            await svc.add_message(ALICE, "alpha", "1h", "again")
        with pytest.raises(InvalidInput, match="already has 20 schedules"):
            await svc.add_message(ALICE, "alpha", "1h", "one too many")


async def test_a_restart_schedule_leaves_a_server_on_a_host_away_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="core.services.schedule")
    clock = FakeClock(at(5, 50))
    async with supervised(tmp_path, [MemoryProfile()]) as env, service(env, clock) as svc:
        server = await env.add_server("alpha", QUICK_STOP)
        pid = await running(server)
        env.supervisor.away = lambda managed: managed is server  # its host stopped answering
        await svc.add_restart(ALICE, "alpha", "06:00")
        clock.set(at(6))
        await eventually(lambda: "alpha is on a host that does not answer; skipped" in caplog.text)
        assert server.state is S.RUNNING and server.handle is not None
        assert server.handle.pid == pid
