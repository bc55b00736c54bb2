"""The mod library end to end below Discord: fake SteamCMD, fake Workshop API, fake Arma 3.

A Launcher preset of five mods is imported; SteamCMD (the fake, a real child process) times
out once on the big one and resumes; the set is ordered and given roles; the fake Arma 3
server is started by the real supervisor and its command line, keys folder and lowercase
links are checked; a removed mod's keys go; a newer `time_updated` on the Workshop is seen,
a pinned mod is held, and the update downloads the new version.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from core.config import load_settings
from core.errors import InvalidInput
from core.jobs import JobState, JobUpdate
from core.mods import ModsNotReady, Role
from core.mods.model import ModError, ModNotFound
from core.runtime import Runtime
from core.services.audit import Actor, AuditLog
from core.services.mods import ModService
from core.steam import (
    RetryPolicy,
    SteamCmdUnavailable,
    WorkshopDownloadFailed,
)
from core.steam.acf import content_dir, installed_items
from core.supervisor.states import ServerState
from tests.fakes.steamcmd_bin import FakeSteamCmd
from tests.fakes.workshop_api import FakeWorkshopApi
from tests.integration.arma3_env import add_arma3_server
from tests.integration.mod_library import mod_library
from tests.integration.supervision import Env

CBA, ACE, RHS, TWEAKS, HCAI = 450814997, 463939057, 843425103, 1000001, 1000002
NAMES = {CBA: "CBA_A3", ACE: "ACE", RHS: "RHSAFRF", TWEAKS: "Server Tweaks", HCAI: "HC AI"}
ADMIN = Actor(42, "admin")
POLICY = RetryPolicy(
    max_attempts=4, backoff_base=0.05, backoff_cap=0.2, stall_timeout=30.0, kill_grace=1.0
)
OLD, NEW = 1700000000, 1800000000


def preset_html() -> bytes:
    rows = "".join(
        f'<tr data-type="ModContainer"><td data-type="DisplayName">{name}</td>'
        '<td><span class="from-steam">Steam</span></td>'
        f'<td><a href="https://steamcommunity.com/sharedfiles/filedetails/?id={item_id}" '
        'data-type="Link">link</a></td></tr>'
        for item_id, name in NAMES.items()
    )
    local = (
        '<tr data-type="ModContainer"><td data-type="DisplayName">@unit_local</td>'
        '<td><span class="from-local">Local</span></td></tr>'
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><html><!--Created by Arma 3 Launcher-->'
        '<head><meta name="arma:PresetName" content="Ops" /></head><body>'
        f'<div class="mod-list"><table>{rows}{local}</table></div></body></html>'
    ).encode()


@dataclass
class World:
    env: Env
    service: ModService
    fake: FakeSteamCmd
    api: FakeWorkshopApi
    audit: AuditLog
    install: Path


@asynccontextmanager
async def world(tmp_path: Path) -> AsyncIterator[World]:
    steam_items = {
        str(CBA): {"name": "CBA_A3", "size": 60_000},
        str(ACE): {"name": "ACE", "size": 200_000, "odd_keys": True, "timeout_at": 40,
                   "delay": 1.0},
        str(RHS): {"name": "RHSAFRF", "size": 50_000},
        str(TWEAKS): {"name": "Server Tweaks", "size": 10_000},
        str(HCAI): {"name": "HC AI", "size": 10_000},
    }  # fmt: skip
    api_items = {
        i: {"title": name, "size": steam_items[str(i)]["size"]} for i, name in NAMES.items()
    }
    async with mod_library(tmp_path, steam_items, api_items, POLICY) as lib:
        yield World(lib.env, lib.service, lib.fake, lib.api, lib.audit, lib.install)


def mod_args(pid: int) -> list[str]:
    return [a for a in psutil.Process(pid).cmdline() if a.startswith(("-mod=", "-serverMod="))]


async def test_preset_download_order_roles_keys_launch_remove_update(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        server = await add_arma3_server(w.env, "alpha")
        folder = w.env.supervisor.folder_for("alpha")
        with pytest.raises(ModNotFound):
            await w.service.set_server_mods(ADMIN, "alpha", "CBA_A3")

        # -- import: five Workshop mods queued as one download, the local one named -------
        updates: list[JobUpdate] = []
        added = await w.service.import_preset(ADMIN, preset_html(), on_update=updates.append)
        assert [m.id for m in added.added] == list(NAMES)
        assert added.local == ("@unit_local",) and added.preset == "Ops"
        assert [m.folder for m in added.added] == [
            "@cba_a3", "@ace", "@rhsafrf", "@server_tweaks", "@hc_ai",
        ]  # fmt: skip
        assert added.job is not None
        result = await asyncio.wait_for(added.job.result(), 120)
        assert {m.id for m in result.installed} == set(NAMES)

        # ACE timed out once at 40 % and the next run resumed from there (reference §1.7)
        timeouts = w.fake.events("timeout")
        assert [e["item"] for e in timeouts] == [ACE]
        assert [(e["item"], e["have"]) for e in w.fake.events("resumed")] == [
            (ACE, timeouts[0]["have"])
        ]
        running = [u for u in updates if u.state is JobState.RUNNING and u.step]
        assert {"downloading", "installing"} <= {u.step for u in running}
        assert [u.done for u in running] == sorted(u.done for u in running)
        assert updates[-1].state is JobState.DONE

        listing = await w.service.list()
        assert all(m.installed and m.installed_updated == OLD for m in listing)
        assert [m.name for m in listing] == list(NAMES.values())
        reordered = await w.service.order(ADMIN, ["HC AI", "CBA_A3"])  # the library's order
        assert [m.id for m in reordered] == [HCAI, ACE, RHS, TWEAKS, CBA]

        # -- the set: roles, then an explicit load order -----------------------------------
        view = await w.service.set_server_mods(
            ADMIN,
            "alpha",
            "CBA_A3, ACE, RHSAFRF, Server Tweaks:server-only, hc ai:headless-only",
        )
        assert [(v.mod.id, v.role) for v in view.mods][3:] == [
            (TWEAKS, Role.SERVER),
            (HCAI, Role.HEADLESS),
        ]
        view = await w.service.order_server(ADMIN, "alpha", ["RHSAFRF", "ACE"])
        assert [v.mod.id for v in view.mods] == [CBA, RHS, ACE, TWEAKS, HCAI]
        assert view.missing == () and not view.next_start
        with pytest.raises(InvalidInput, match="named twice"):
            await w.service.set_server_mods(ADMIN, "alpha", "ACE, @ace")

        # -- start the fake Arma: its command line, keys and lowercase tree ----------------
        assert await server.start() is ServerState.RUNNING
        assert server.handle is not None
        assert mod_args(server.handle.pid) == [
            "-mod=modset/@cba_a3;modset/@rhsafrf;modset/@ace",
            "-serverMod=modset/@server_tweaks",
        ]
        hc = await w.service.launch_mods(server.id)
        assert hc is not None and hc.headless_mods() == [
            "modset/@cba_a3", "modset/@rhsafrf", "modset/@ace", "modset/@hc_ai",
        ]  # fmt: skip
        # the game's cwd is the folder: mixed-case names reachable in lower case
        assert (folder / "modset/@ace/addons/ace_main.pbo").is_file()
        assert (folder / "modset/@server_tweaks/addons/server_tweaks_main.pbo").is_file()
        workshop = content_dir(tmp_path / "mods" / "steam", ACE)
        assert (workshop / "Addons" / "ACE_Main.pbo").is_file()  # the Workshop copy untouched
        assert not (workshop / "addons").exists()
        keys = folder / "keys"
        assert keys.is_dir() and not keys.is_symlink()  # the server's own, not the install's
        names = {p.name for p in keys.iterdir()}
        assert {
            "a3.bikey", "CBA_A3.bikey", "ACE.bikey", "ACE_Root.bikey", "ACE_Deep.bikey",
            "RHSAFRF.bikey", "HC_AI.bikey",
        } <= names  # fmt: skip
        assert "Server_Tweaks.bikey" not in names  # server-only: clients never load it
        assert "ACE_Extra.bikey" not in names  # optionals/ are not whitelisted
        assert (keys / "a3.bikey").read_bytes() == b"bis-key"
        assert sorted(p.name for p in (w.install / "keys").iterdir()) == ["a3.bikey"]

        with pytest.raises(ModError, match="running servers"):
            await w.service.remove(ADMIN, "ACE")  # its files are open

        # -- remove ACE: out of the set, its keys and files gone ---------------------------
        assert await server.stop() is ServerState.STOPPED
        removed = await w.service.remove(ADMIN, "ace")
        assert removed.servers == ("alpha",)
        names = {p.name for p in keys.iterdir()}
        assert not {n for n in names if n.startswith("ACE")}
        assert {"a3.bikey", "CBA_A3.bikey", "RHSAFRF.bikey"} <= names
        assert not workshop.exists() and ACE not in installed_items(tmp_path / "mods" / "steam")
        assert not (tmp_path / "mods" / "lower" / str(ACE)).exists()
        assert await server.start() is ServerState.RUNNING
        assert server.handle is not None
        assert mod_args(server.handle.pid)[0] == "-mod=modset/@cba_a3;modset/@rhsafrf"
        assert await server.stop() is ServerState.STOPPED

        # -- update detection: a newer time_updated; a pinned mod is held -----------------
        await w.service.pin(ADMIN, "RHSAFRF", True)
        w.api.items[CBA]["time_updated"] = NEW
        w.api.items[RHS]["time_updated"] = NEW
        found = await w.service.check_updates()
        assert [(u.mod.id, u.installed, u.latest) for u in found] == [(CBA, OLD, NEW)]
        w.fake.control["items"][str(CBA)]["time_updated"] = NEW
        w.fake.write_control()
        download = await w.service.update(ADMIN)
        assert [m.id for m in download.mods] == [CBA]
        assert [m.id for m in download.held] == [RHS]  # pinned: left as it is
        assert download.job is not None
        await asyncio.wait_for(download.job.result(), 60)
        by_id = {m.id: m for m in await w.service.list()}
        assert by_id[CBA].installed_updated == NEW and not by_id[CBA].update_available
        assert by_id[RHS].installed_updated == OLD and by_id[RHS].pinned
        assert await w.service.check_updates() == []

        actions = [e.action for e in await w.audit.recent(50)]
        assert {"mods.import", "mods.set", "mods.order", "mods.remove", "mods.update"} <= set(
            actions
        )


async def test_a_set_waiting_for_its_download_refuses_the_start(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        server = await add_arma3_server(w.env, "bravo")
        w.fake.control["items"][str(CBA)] = {"fail": "Failure"}  # never arrives
        w.fake.write_control()
        added = await w.service.add(ADMIN, str(CBA))
        assert added.job is not None
        with pytest.raises(WorkshopDownloadFailed):
            await asyncio.wait_for(added.job.result(), 60)
        view = await w.service.set_server_mods(ADMIN, "bravo", [("CBA_A3", "client")])
        assert view.missing == ("CBA_A3",)
        with pytest.raises(ModsNotReady, match="CBA_A3"):
            await server.start()
        assert server.state is ServerState.STOPPED
        cleared = await w.service.set_server_mods(ADMIN, "bravo", "")
        assert cleared.mods == ()
        assert not (w.env.supervisor.folder_for("bravo") / "modset").exists()


async def test_the_runtime_wires_the_mod_service(tmp_path: Path) -> None:
    """Without LANGUARD_STEAMCMD the library refuses downloads with the fix; mods go under
    the data folder unless LANGUARD_MODS_DIR says otherwise."""
    settings = load_settings(data_dir=tmp_path / "data", _env_file=None)
    runtime = await Runtime.open(settings, [])
    try:
        assert runtime.mods.files.root == (tmp_path / "data" / "mods").resolve()
        with pytest.raises(SteamCmdUnavailable, match="LANGUARD_STEAMCMD"):
            await runtime.mods.add(ADMIN, str(CBA))
        assert await runtime.mods.list() == []
    finally:
        await runtime.close()
    moved = load_settings(
        data_dir=tmp_path / "data", mods_dir=str(tmp_path / "big"), _env_file=None
    )
    assert moved.mods_root == tmp_path / "big"
