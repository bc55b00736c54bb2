"""The core services against the fake Arma 3 server: bans and scheduled restarts for real.

Real SQLite, the real Supervisor, a real `arma3server_x64` fake process speaking BattlEye RCon
over UDP on loopback and writing real RPT, bans.txt and chat.log files. Only wall time is
injected (the services' clocks), so a 30-minute ban or a restart at 06:00 pass in a moment.
What the game holds is always read back from the game itself (`fake.state`, `fake.join`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.events import Event, ServerCrashed, ServerStateChanged
from core.games.arma3_config import parse_bans_txt
from core.services.audit import Actor, AuditLog
from core.services.bans import BanService
from core.services.schedule import ScheduleService
from core.supervisor.server import ManagedServer
from core.supervisor.states import ServerState
from data.repositories.history import AuditEntry, AuditRepository
from tests.fakes.clock import FakeClock
from tests.integration.arma3_env import (
    add_arma3_server,
    arma3_supervised,
    fake_state,
    game_log_text,
    layout_of,
    wait_for,
    wait_for_link,
)
from tests.integration.supervision import Env

S = ServerState
MOD = Actor(1001, "mod")
ALICE = Actor(42, "alice")
GUID_BOB = "80a5885ebe2420bab5e158a310fcbc7d"
GUID_EVE = "20446897121fafa82c1069ed07820f27"
GUID_CAROL = "331e64806b30277076963283eea16438"


# -- helpers ----------------------------------------------------------------------------------


class WallClock:
    """BanService's clock: real time at first, then only moved by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2024, 6, 1, hour, minute, second, tzinfo=UTC)


@dataclass
class BanWorld:
    env: Env
    bans: BanService
    audit: AuditLog
    clock: WallClock

    async def audited(self, action: str) -> list[AuditEntry]:
        return [e for e in reversed(await self.audit.recent(100)) if e.action == action]


@asynccontextmanager
async def ban_world(tmp_path: Path) -> AsyncIterator[BanWorld]:
    """A started BanService (the supervisor's ban source) over the Arma 3 supervisor.

    The expiry loop runs once at start and then not again within a test: the test calls
    `expire_due()` itself after moving the clock."""
    clock = WallClock()
    async with arma3_supervised(tmp_path) as (env, _):
        audit = AuditLog(AuditRepository(env.db))
        bans = BanService(
            env.supervisor, env.db, env.bus, audit, clock=clock, expiry_interval=3600.0
        )
        await bans.start()
        try:
            yield BanWorld(env, bans, audit, clock)
        finally:
            async with asyncio.timeout(10):
                await bans.close()


@asynccontextmanager
async def schedule_service(env: Env, clock: FakeClock) -> AsyncIterator[ScheduleService]:
    svc = ScheduleService(
        env.supervisor,
        env.db,
        AuditLog(AuditRepository(env.db)),
        clock=clock,
        sleep=clock.sleep,
        tz=UTC,
    )
    await svc.start()
    try:
        yield svc
    finally:
        async with asyncio.timeout(10):
            await svc.close()


async def game_bans(server: ManagedServer) -> list[tuple[str, int, str]]:
    """The game's own ban list (target, expiry or -1, reason), in BattlEye's order."""
    state = await fake_state(server)
    return [(b["target"], b["expires"], b["reason"]) for b in state["bans"]]


async def join(server: ManagedServer, name: str, guid: str, ip: str) -> str:
    """A player connects to the game: `slot N`, or `banned` when BattlEye kicks them."""
    link = await wait_for_link(server)
    async with asyncio.timeout(5):
        return str(await link.command(f"fake.join {name} {guid} {ip}"))


def file_bans(server_bans_txt: Path) -> list[tuple[str, int, str]]:
    if not server_bans_txt.exists():
        return []
    return [(b.target, b.expires, b.reason) for b in parse_bans_txt(server_bans_txt.read_text())]


def chat_lines(env: Env, server: ManagedServer) -> list[str]:
    chat = env.supervisor.folder_for(server.name) / "chat.log"
    return chat.read_text(encoding="utf-8").splitlines() if chat.exists() else []


async def started(server: ManagedServer) -> int:
    """Start the server and wait for its RCon link; returns the game's pid."""
    async with asyncio.timeout(20):
        assert await server.start() is S.RUNNING
    await wait_for_link(server)
    assert server.handle is not None
    return server.handle.pid


async def stopped(server: ManagedServer) -> None:
    async with asyncio.timeout(15):
        assert await server.stop() is S.STOPPED


# -- bans -------------------------------------------------------------------------------------


async def test_a_ban_made_while_stopped_is_in_bans_txt_at_the_next_start_and_enforced(
    tmp_path: Path,
) -> None:
    async with ban_world(tmp_path) as w:
        # BattlEye RCon comes up 1 s after BattlEye read bans.txt: in that gap nothing can
        # have been synced over RCon, so what the game holds then came from the file
        server = await add_arma3_server(w.env, "alpha", knobs={"rcon_delay": 1.0})
        bans_txt = layout_of(w.env, server).bans_txt
        ban = await w.bans.add(MOD, GUID_BOB.upper(), "perm", "aimbot\nagain", "alpha")
        assert (ban.value, ban.expires_at, ban.reason, ban.server_name) == (
            GUID_BOB,
            None,
            "aimbot again",
            "alpha",
        )
        before = server.state  # (a local: the server's state moves on below)
        assert before is S.STOPPED and server.handle is None
        assert file_bans(bans_txt) == [], "nothing is written while the server is stopped"
        [added] = await w.audited("bans.add")
        assert added.result == f"ban #{ban.id}", "no game was running to apply it on"

        async with asyncio.timeout(10):
            assert await server.start(wait=False) is S.STARTING
        await wait_for(lambda: "BattlEye Server: Initialized" in game_log_text(w.env, server))
        rpt = game_log_text(w.env, server)
        assert "RCon listening" not in rpt and server.link is None, "RCon must not be up yet"
        assert server.state is S.STARTING and server.handle is not None
        assert file_bans(bans_txt) == [(GUID_BOB, -1, "aimbot again")]

        await wait_for(lambda: server.state is S.RUNNING, timeout=15)
        assert await join(server, "Bob", GUID_BOB, "10.0.0.5") == "banned"
        assert await join(server, "Alice", GUID_EVE, "10.0.0.6") == "slot 0"
        state = await fake_state(server)
        assert [(b["target"], b["expires"], b["reason"]) for b in state["bans"]] == [
            (GUID_BOB, -1, "aimbot again")
        ]
        assert [p["name"] for p in state["players"]] == ["Alice"], "Bob was kicked"
        assert "Player Bob kicked off by BattlEye: Admin Ban (aimbot again)" in game_log_text(
            w.env, server
        )
        await stopped(server)


async def test_a_ban_added_while_running_reaches_the_game_at_once_and_remove_lifts_it(
    tmp_path: Path,
) -> None:
    async with ban_world(tmp_path) as w:
        server = await add_arma3_server(w.env, "alpha")
        await started(server)
        bans_txt = layout_of(w.env, server).bans_txt
        assert await game_bans(server) == []

        guid_ban = await w.bans.add(MOD, GUID_BOB, "perm", "griefing", "alpha")
        assert await game_bans(server) == [(GUID_BOB, -1, "griefing")], "applied at once"
        ip_ban = await w.bans.add(MOD, "10.9.8.7", "perm", "spam", "alpha")
        assert await game_bans(server) == [(GUID_BOB, -1, "griefing"), ("10.9.8.7", -1, "spam")]
        assert file_bans(bans_txt) == [(GUID_BOB, -1, "griefing"), ("10.9.8.7", -1, "spam")]
        assert await join(server, "Bob", GUID_BOB, "10.0.0.5") == "banned"
        assert await join(server, "Spammer", GUID_CAROL, "10.9.8.7") == "banned"
        results = [e.result for e in await w.audited("bans.add")]
        assert results == [
            f"ban #{guid_ban.id}; applied on alpha",
            f"ban #{ip_ban.id}; applied on alpha",
        ]

        removed = await w.bans.remove(MOD, guid_ban.id)
        assert removed.removed_at is not None and removed.removed_by_name == "mod"
        assert await game_bans(server) == [("10.9.8.7", -1, "spam")], "only that ban is lifted"
        assert file_bans(bans_txt) == [("10.9.8.7", -1, "spam")]
        assert await join(server, "Bob", GUID_BOB, "10.0.0.5") == "slot 0"
        assert [b.id for b in await w.bans.list("alpha")] == [ip_ban.id]
        [lifted] = await w.audited("bans.remove")
        assert lifted.result == f"removed ban #{guid_ban.id}; applied on alpha"
        assert w.bans.pending_servers() == []
        await stopped(server)


async def test_a_temporary_ban_expires_on_the_injected_clock_and_leaves_the_game(
    tmp_path: Path,
) -> None:
    async with ban_world(tmp_path) as w:
        server = await add_arma3_server(w.env, "alpha")
        await started(server)

        ban = await w.bans.add(MOD, GUID_BOB, "30m", "cool off", "alpha")
        assert ban.expires_at == w.clock.now + 1800
        [(target, expires, reason)] = await game_bans(server)
        assert (target, reason) == (GUID_BOB, "cool off")
        assert 1740 <= expires - time.time() <= 1801, "BattlEye got 30 minutes"
        assert await join(server, "Bob", GUID_BOB, "10.0.0.5") == "banned"

        w.clock.now += 29 * 60
        assert await w.bans.expire_due() == [], "29 minutes in, the ban still holds"
        assert [t for t, _, _ in await game_bans(server)] == [GUID_BOB]

        w.clock.now += 2 * 60
        expired = await w.bans.expire_due()
        assert [(b.id, b.expired_at, b.removed_at) for b in expired] == [
            (ban.id, w.clock.now, None)
        ]
        assert await game_bans(server) == [], "the game's list no longer has it"
        assert file_bans(layout_of(w.env, server).bans_txt) == []
        assert await join(server, "Bob", GUID_BOB, "10.0.0.5") == "slot 0"

        assert await w.bans.list("alpha") == []
        [listed] = await w.bans.list("alpha", include_expired=True)
        assert listed.id == ban.id and listed.status(w.clock()) == "expired"
        [entry] = await w.audited("bans.expire")
        assert (entry.actor_name, entry.result) == (
            "languard",
            f"ban #{ban.id} expired; applied on alpha",
        )
        assert await w.bans.expire_due() == [], "an expired ban expires once"
        await stopped(server)


# -- scheduled restart ------------------------------------------------------------------------


async def test_a_scheduled_restart_warns_in_game_then_restarts_gracefully(tmp_path: Path) -> None:
    clock = FakeClock(at(5, 50))
    async with (
        arma3_supervised(tmp_path) as (env, _),
        schedule_service(env, clock) as svc,
    ):
        server = await add_arma3_server(env, "alpha")
        first_pid = await started(server)
        entry = await svc.add_restart(ALICE, "alpha", "06:00", "5,1")
        assert (entry.next_run, entry.warn) == (at(6), (5, 1))

        clock.set(at(5, 54, 59))
        await asyncio.sleep(0.3)  # real time for a wrong early warning to show up
        assert chat_lines(env, server) == []
        expected: list[str] = []
        for minute, text in [
            (55, "Server restart in 5 minutes"),
            (59, "Server restart in 1 minute"),
        ]:
            clock.set(at(5, minute))
            expected.append(f"Global\t{text}")
            await wait_for(lambda: chat_lines(env, server) == expected)
        assert server.handle is not None and server.handle.pid == first_pid, "not yet"

        seen: list[Event] = []
        with env.bus.subscribe(ServerStateChanged, ServerCrashed) as events:
            clock.set(at(6))
            async with asyncio.timeout(20):
                while sum(isinstance(e, ServerStateChanged) for e in seen) < 4:
                    seen.append(await events.get())
            await wait_for_link(server)
            async with asyncio.timeout(10):  # the run is audited once the restart is done
                while not await _audited_run(env):
                    await asyncio.sleep(0.02)
            while (late := events.get_nowait()) is not None:
                seen.append(late)

        assert not [e for e in seen if isinstance(e, ServerCrashed)], "a planned restart"
        changes = [e for e in seen if isinstance(e, ServerStateChanged)]
        assert [(c.old, c.new) for c in changes] == [
            (S.RUNNING, S.STOPPING),
            (S.STOPPING, S.STOPPED),
            (S.STOPPED, S.STARTING),
            (S.STARTING, S.RUNNING),
        ]
        assert all(c.expected for c in changes)
        assert [c.reason for c in changes[:3]] == ["scheduled restart"] * 3

        assert server.state is S.RUNNING and server.handle is not None
        new_pid = server.handle.pid
        assert new_pid != first_pid
        assert (await fake_state(server))["pid"] == new_pid
        log = game_log_text(env, server)  # stdout: both runs, one after the other
        assert log.count("Dedicated host created.") == 2
        assert "Shutting down: #shutdown over RCon" in log, "stopped the game's own way"
        assert "SIGTERM" not in log
        assert chat_lines(env, server) == expected, "nothing more said after the restart"
        [run] = await _audited_run(env)
        assert (run.actor_name, run.result, run.ok) == ("languard", "now running", True)
        await stopped(server)


async def _audited_run(env: Env) -> list[AuditEntry]:
    entries = await AuditRepository(env.db).recent(50)
    return [e for e in entries if e.action == "schedule.restart.run"]
