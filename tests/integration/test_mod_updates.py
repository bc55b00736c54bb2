"""The update-aware maintenance below Discord: fake SteamCMD, fake Workshop API, fake Arma 3.

A running server loads CBA and ACE with a player on it; the Workshop gets a newer CBA; the
maintenance warns the player twice (the fake's chat log), locks, kicks, stops the server
(its log, in that order), downloads the new CBA (SteamCMD, a real child process) and starts
the server again, whose new log lists both mods (verified). A failing download still
starts the server again; a game update runs SteamCMD's `app_update 233780` into the
game's folder and restarts the Arma 3 servers.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from core.jobs import JobState, JobUpdate
from core.services.audit import Actor, AuditLog
from core.services.mod_maintenance import Step, warning_text
from core.services.mod_updates import ModUpdates
from core.services.mods import ModService
from core.steam import RetryPolicy, WorkshopDownloadFailed
from core.supervisor.server import ManagedServer
from core.supervisor.states import ServerState
from tests.fakes.steamcmd_bin import FakeSteamCmd
from tests.fakes.workshop_api import FakeWorkshopApi
from tests.integration.arma3_env import (
    add_arma3_server,
    game_log_text,
    wait_for_link,
)
from tests.integration.mod_library import mod_library
from tests.integration.supervision import Env

CBA, ACE = 450814997, 463939057
NAMES = {CBA: "CBA_A3", ACE: "ACE"}
OPERATOR = Actor(7, "otto")
POLICY = RetryPolicy(
    max_attempts=2, backoff_base=0.05, backoff_cap=0.1, stall_timeout=30.0, kill_grace=1.0
)
OLD, NEW = 1700000000, 1800000000
WARNINGS = (2.0, 1.0)
JOB_TIMEOUT = 120.0


@dataclass
class World:
    env: Env
    mods: ModService
    updates: ModUpdates
    fake: FakeSteamCmd
    api: FakeWorkshopApi
    audit: AuditLog
    game_dir: Path


@asynccontextmanager
async def world(tmp_path: Path) -> AsyncIterator[World]:
    items = {str(i): {"name": name, "size": 20_000} for i, name in NAMES.items()}
    api_items = {i: {"title": name, "size": 20_000} for i, name in NAMES.items()}
    async with mod_library(tmp_path, items, api_items, POLICY) as lib:
        env, mods, audit, jobs, steam = lib.env, lib.service, lib.audit, lib.jobs, lib.steam
        game_dir = tmp_path / "game"  # not the fake's own folder: app_update writes there
        updates = ModUpdates(
            env.supervisor,
            mods,
            audit,
            jobs,
            env.bus,
            steam=steam,
            game_dir=game_dir,
            warnings=WARNINGS,
            verify_timeout=15.0,
        )
        yield World(env, mods, updates, lib.fake, lib.api, audit, game_dir)


async def running_with_mods(w: World, name: str) -> ManagedServer:
    """A server whose set is CBA then ACE, both downloaded, running."""
    server = await add_arma3_server(w.env, name)
    added = await w.mods.add(OPERATOR, str(CBA))
    more = await w.mods.add(OPERATOR, str(ACE))
    for job in (added.job, more.job):
        assert job is not None
        await asyncio.wait_for(job.result(), JOB_TIMEOUT)
    await w.mods.set_server_mods(OPERATOR, name, "CBA_A3, ACE")
    assert await server.start() is ServerState.RUNNING
    return server


def new_cba(w: World) -> None:
    """The Workshop publishes a newer CBA (what SteamCMD then downloads is that version)."""
    w.api.items[CBA]["time_updated"] = NEW
    w.fake.control["items"][str(CBA)]["time_updated"] = NEW
    w.fake.write_control()


def chat_lines(w: World, server: ManagedServer) -> list[str]:
    path = w.env.supervisor.folder_for(server.name) / "chat.log"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def position(text: str, needle: str, after: int = 0) -> int:
    found = text.find(needle, after)
    assert found >= 0, f"{needle!r} not in the game's log after {after}:\n{text[after:][-3000:]}"
    return found


async def test_an_update_warns_locks_kicks_stops_downloads_starts_and_verifies(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        server = await running_with_mods(w, "alpha")
        assert server.handle is not None
        old_pid = server.handle.pid
        link = await wait_for_link(server)
        await link.command("fake.join Zed 0123456789abcdef0123456789abcdef 203.0.113.9")

        # nothing new on the Workshop: nothing happens at all
        nothing = await w.updates.run(OPERATOR, "alpha")
        assert nothing.up_to_date and nothing.servers == ()
        assert server.state is ServerState.RUNNING and server.handle.pid == old_pid
        assert chat_lines(w, server) == []

        new_cba(w)
        updates: list[JobUpdate] = []
        report = await asyncio.wait_for(
            w.updates.run(OPERATOR, "alpha", on_update=updates.append), JOB_TIMEOUT
        )

        # the report: CBA downloaded, the server back, both mods seen loaded
        assert [m.id for m in report.mods] == [CBA] and report.failure is None
        (outcome,) = report.servers
        assert outcome.name == "alpha" and outcome.was_running and outcome.running
        assert (outcome.warnings, outcome.kicked) == (2, 1)
        assert outcome.verified is True and outcome.not_loaded == ()
        assert outcome.loaded == ("modset/@cba_a3", "modset/@ace")
        listing = {m.id: m for m in await w.mods.list()}
        assert listing[CBA].installed_updated == NEW and listing[ACE].installed_updated == OLD

        # the steps in order, the download (its queue place, SteamCMD's stages) in the middle
        steps = [u.step for u in updates if u.state is JobState.RUNNING and u.step]
        ours = [s for s in steps if s in set(Step)]
        assert ours == [
            Step.CHECKING, Step.WARNING, Step.LOCKING, Step.KICKING, Step.STOPPING,
            Step.STARTING, Step.VERIFYING,
        ]  # fmt: skip
        stopping, starting = steps.index(Step.STOPPING), steps.index(Step.STARTING)
        assert "downloading" in steps[stopping:starting], steps
        assert [e["item"] for e in w.fake.events("item_start")][-1] == CBA  # CBA only, again

        # the players' side: two warnings in the game's chat, then the kick and the stop
        assert chat_lines(w, server) == [
            f"Global\t{warning_text(2.0)}",
            f"Global\t{warning_text(1.0)}",
        ]
        log = game_log_text(w.env, server)
        first = position(log, f"(Global) {warning_text(2.0)}")
        second = position(log, f"(Global) {warning_text(1.0)}", first)
        locked = position(log, "Server locked by RCon admin", second)
        kicked = position(
            log, "Player Zed kicked off by BattlEye: Admin Kick (Server restart", locked
        )
        stopped = position(log, "Shutting down: #shutdown over RCon", kicked)
        restarted = position(log, "Original output filename", stopped)
        listed = position(log, "List of mods", restarted)
        position(log, "modset/@cba_a3", listed)
        position(log, "modset/@ace", listed)

        # a new process with the same set, in order
        assert server.state is ServerState.RUNNING and server.handle is not None
        assert server.handle.pid != old_pid
        argv = psutil.Process(server.handle.pid).cmdline()
        assert "-mod=modset/@cba_a3;modset/@ace" in argv

        actions = [e.action for e in reversed(await w.audit.recent(40))]
        flow = [a for a in actions if a.startswith("mods.maintenance")]
        assert flow == [
            "mods.maintenance",  # the first run: up to date
            "mods.maintenance.warn", "mods.maintenance.lock", "mods.maintenance.kick",
            "mods.maintenance.stop", "mods.maintenance.download", "mods.maintenance.start",
            "mods.maintenance.verify", "mods.maintenance",
        ]  # fmt: skip


async def test_a_failed_download_still_starts_the_server_again(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        server = await running_with_mods(w, "bravo")
        new_cba(w)
        w.fake.control["items"][str(CBA)]["fail"] = "Failure"
        w.fake.write_control()
        report = await asyncio.wait_for(w.updates.run(OPERATOR), JOB_TIMEOUT)
        assert isinstance(report.failure, WorkshopDownloadFailed)
        (outcome,) = report.servers
        assert outcome.running and outcome.problem is None and outcome.warnings == 0  # nobody on
        assert outcome.verified is True  # the old CBA is still there and loads
        assert server.state is ServerState.RUNNING
        listing = {m.id: m for m in await w.mods.list()}
        assert listing[CBA].installed_updated == OLD and listing[CBA].update_available
        entries = await w.audit.recent(20)
        download = next(e for e in entries if e.action == "mods.maintenance.download")
        assert not download.ok
        assert re.search(r"could not be downloaded", download.result), download.result


async def test_a_game_update_runs_app_update_and_restarts_the_arma_servers(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        server = await running_with_mods(w, "charlie")
        assert server.handle is not None
        old_pid = server.handle.pid
        report = await asyncio.wait_for(w.updates.run(OPERATOR, game=True), JOB_TIMEOUT)
        assert report.game is not None and report.mods == () and report.failure is None
        assert [e["app"] for e in w.fake.events("app_update")] == [233780]
        assert (w.game_dir / "steamapps" / "appmanifest_233780.acf").is_file()
        (outcome,) = report.servers
        assert outcome.running and outcome.verified is True
        assert server.handle is not None and server.handle.pid != old_pid
