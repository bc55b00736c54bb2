"""Arma 3 headless clients for real: the fake `arma3server_x64 -client` processes connect to
the fake server over UDP on loopback, and the supervisor keeps them with their server.

The fake HC behaves as documented (steamcmd-workshop-and-headless.md §7): it needs the
server password and an address in `headlessClients[]`, and once its server is gone it
never reconnects by itself (LinuxGSM #876), so every test here that sees HCs connected to
a new server process proves the supervisor started them again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from core.events import ServerCrashed
from core.games.arma3_config_parser import parse_config
from core.games.arma3_headless import PAR_FILE, headless_folder
from core.secrets import SecretBox, load_or_create_key
from core.services.audit import AuditLog
from core.services.servers import ServerService
from core.supervisor.companions import COMPANIONS_FILE
from core.supervisor.process import identity_of
from core.supervisor.server import ManagedServer
from core.supervisor.states import ServerState
from core.supervisor.strays import instance_of, scan_companions
from data.db import Database
from data.repositories.history import AuditRepository
from data.repositories.servers import ServerRepository
from data.repositories.settings import SecretRepository, SettingsRepository
from tests.fakes.arma3_bin import write_fake_arma3
from tests.integration.arma3_env import (
    ARMA_FAST,
    RCON_PASSWORD,
    add_arma3_server,
    arma3_supervised,
    fake_state,
    fast_profile,
    free_arma_ports,
    game_log_text,
    layout_of,
    wait_for,
    wait_for_link,
)
from tests.integration.supervision import Env, kill_groups, next_event, start_host, supervised

S = ServerState
JOIN_PASSWORD = "join-Me-2302"
SECRETS = {"rcon_password": RCON_PASSWORD, "password": JOIN_PASSWORD}


async def add_with_hcs(env: Env, name: str = "alpha", count: int = 2) -> ManagedServer:
    return await add_arma3_server(
        env,
        name,
        secrets=SECRETS,
        headless_clients=count,
        mods=["@cba_a3", "@ace"],
        knobs={"hc_orphan_exit": 60},
    )


async def connected_hcs(server: ManagedServer, count: int, timeout: float = 20.0) -> list[dict]:
    """The fake server's list of connected HCs, once it holds `count` of them."""
    async with asyncio.timeout(timeout):
        while True:
            hcs = list((await fake_state(server))["headless"])
            if len(hcs) == count:
                return sorted(hcs, key=lambda hc: hc["name"])
            await asyncio.sleep(0.1)


async def wait_connected(server: ManagedServer, pid: int, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while pid not in {hc["pid"] for hc in (await fake_state(server))["headless"]}:
            await asyncio.sleep(0.1)


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


async def test_two_hcs_connect_with_the_password_kept_off_argv_and_stop_first(
    tmp_path: Path,
) -> None:
    async with arma3_supervised(tmp_path) as (env, _):
        server = await add_with_hcs(env)
        assert await server.start() is S.RUNNING
        hcs = await connected_hcs(server, 2)
        assert [hc["name"] for hc in hcs] == ["hc-1", "hc-2"]
        assert all(hc["mods"] == ["@cba_a3", "@ace"] for hc in hcs)
        pids = sorted(server.companions.pids())
        assert sorted(hc["pid"] for hc in hcs) == pids
        assert server.companions.counts() == (2, 2)

        layout = layout_of(env, server)
        cfg = parse_config(layout.server_cfg.read_text())
        assert cfg.get("headlessClients") == ["127.0.0.1"]
        assert cfg.get("localClient") == ["127.0.0.1"]
        settings = await SettingsRepository(env.db).get_all(server.id)
        for pid in pids:
            argv = cmdline(pid)
            assert argv[argv.index("-client") + 1 :][:2] == [
                "-connect=127.0.0.1",
                f"-port={settings['port']}",
            ]
            assert not any(JOIN_PASSWORD in arg for arg in argv), "password visible in ps"
        for index in (1, 2):
            folder = headless_folder(layout.folder, index)
            par = folder / PAR_FILE
            assert stat.S_IMODE(par.stat().st_mode) == 0o600
            assert f"-password={JOIN_PASSWORD}" in par.read_text().splitlines()
            log = (folder / "console.log").read_text()
            assert "Dedicated client created." in log and f"-par={par}" in log
            assert JOIN_PASSWORD not in log, "the HC's log header shows its command line"
        record = (layout.folder / COMPANIONS_FILE).read_text()
        assert JOIN_PASSWORD not in record and "-client" not in record

        status = await ServerService(
            env.supervisor, AuditLog(AuditRepository(env.db)), SecretBox(env.key)
        ).status("alpha")
        assert status.headless == (2, 2)

        assert await server.stop() is S.STOPPED
        assert all(identity_of(pid) is None for pid in pids)
        log = game_log_text(env, server)
        shutdown = log.index("Shutting down")
        for name in ("hc-1", "hc-2"):
            assert log.index(f"Player {name} disconnected.") < shutdown, "HCs stop first"
        assert server.companions.counts() == (0, 0)
        assert not (layout.folder / COMPANIONS_FILE).exists()


async def test_hcs_come_back_after_a_restart_and_after_a_crash(tmp_path: Path) -> None:
    async with arma3_supervised(tmp_path) as (env, _):
        server = await add_with_hcs(env)
        await server.start()
        first = {hc["pid"] for hc in await connected_hcs(server, 2)}

        assert await server.restart() is S.RUNNING
        second = await connected_hcs(server, 2)
        assert {hc["pid"] for hc in second}.isdisjoint(first)
        assert all(identity_of(pid) is None for pid in first), "old HCs left behind"

        link = await wait_for_link(server)
        with env.bus.subscribe(ServerCrashed) as crashes:
            await link.command("fake.crash 3")
            await next_event(crashes, ServerCrashed)
        await wait_for(lambda: server.state is S.RUNNING, 20)
        third = await connected_hcs(server, 2)
        assert {hc["pid"] for hc in third}.isdisjoint({hc["pid"] for hc in second})
        assert sorted(server.companions.pids()) == sorted(hc["pid"] for hc in third)
        assert all(identity_of(hc["pid"]) is None for hc in second)
        await server.stop()


async def test_a_dead_hc_is_restarted_with_backoff_and_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with arma3_supervised(tmp_path) as (env, _):
        server = await add_with_hcs(env)
        await server.start()
        await connected_hcs(server, 2)
        caplog.set_level(logging.INFO, logger="core.supervisor.companions")
        other = next(hc["pid"] for hc in await connected_hcs(server, 2) if hc["name"] == "hc-2")
        victim = next(pid for pid in server.companions.pids() if pid != other)
        killed: set[int] = set()
        for _ in range(3):  # it keeps dying: restarted each time, warned about once
            os.kill(victim, signal.SIGKILL)
            killed.add(victim)
            await wait_for(lambda: len(set(server.companions.pids()) - killed - {other}) == 1, 20)
            victim = next(iter(set(server.companions.pids()) - killed - {other}))
            await wait_connected(server, victim)  # the new hc-1 joined the same server
        assert other in server.companions.pids(), "hc-2 was left alone"
        deaths = [r for r in caplog.records if "companion hc-1 killed by SIGKILL" in r.message]
        assert len(deaths) == 3
        assert [r.levelno for r in deaths] == [logging.WARNING, logging.INFO, logging.INFO]
        delays = [float(r.args[-1]) for r in deaths]  # type: ignore[index]
        assert delays[0] < delays[1] < delays[2], f"no backoff: {delays}"
        await server.stop()


async def test_the_fake_server_admits_an_hc_only_with_the_password(tmp_path: Path) -> None:
    """The fake holds the documented rule, so the tests above prove the password arrives."""
    async with arma3_supervised(tmp_path) as (env, _):
        server = await add_with_hcs(env, count=1)
        await server.start()
        await connected_hcs(server, 1)
        settings = await SettingsRepository(env.db).get_all(server.id)
        base = [str(server.profile.executable()), "-client", "-connect=127.0.0.1"]
        base.append(f"-port={settings['port']}")
        procs = [
            subprocess.Popen(
                [*base, f"-name={name}", *extra],
                cwd=layout_of(env, server).folder,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
            for name, extra in (("nopass", []), ("withpass", [f"-password={JOIN_PASSWORD}"]))
        ]
        try:
            hcs = await connected_hcs(server, 2)
            assert [hc["name"] for hc in hcs] == ["hc-1", "withpass"]
            refused = "Player nopass refused: wrong password"
            await wait_for(lambda: refused in game_log_text(env, server))
            assert "Player nopass connected" not in game_log_text(env, server)
        finally:
            kill_groups([proc.pid for proc in procs])
            for proc in procs:
                proc.wait(timeout=5)
        await server.stop()


async def test_a_new_supervisor_adopts_the_recorded_hcs(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    profile = fast_profile(write_fake_arma3(tmp_path / "bin"))
    async with supervised(tmp_path, [profile], key=key) as env:
        server = await add_with_hcs(env)
        await server.start()
        pids = sorted(hc["pid"] for hc in await connected_hcs(server, 2))
        assert server.handle is not None
        game = server.handle.pid
        await env.supervisor.close()  # the bot goes away cleanly: nothing is stopped
        env.supervisor._servers.clear()
    try:
        assert all(identity_of(pid) is not None for pid in pids)
        async with supervised(tmp_path, [profile], key=key) as env:
            server = env.supervisor.by_name("alpha")
            assert sorted(server.companions.pids()) == pids
            assert all(handle.adopted for handle in server.companions._members.values())
            await wait_for(lambda: server.companions.counts() == (2, 2))
            assert sorted(hc["pid"] for hc in await connected_hcs(server, 2)) == pids
            assert await server.stop() is S.STOPPED  # adopted ones are stopped first too
            assert all(identity_of(pid) is None for pid in pids)
    finally:
        kill_groups([*pids, game])


async def test_kill_9_of_the_bot_adopts_the_hcs_without_duplicates(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    db_path = data_dir / "languard.db"
    db = await Database.open(db_path)
    key = load_or_create_key(data_dir)
    exe = write_fake_arma3(tmp_path / "bin")
    record = await ServerRepository(db).create("alpha", "arma3")
    port, rcon_port = free_arma_ports()
    await SettingsRepository(db).set_many(
        record.id,
        {**ARMA_FAST, "port": port, "rcon_port": rcon_port, "headless_clients": 2},
    )
    box = SecretBox(key)
    for name, value in SECRETS.items():
        await SecretRepository(db).put(record.id, name, box.encrypt(value))
    folder = data_dir / "servers" / "alpha"
    hc_log = folder / "headless.log"
    instance = instance_of(data_dir)
    hosts: list[subprocess.Popen[str]] = []
    pids: list[int] = []
    try:
        hosts.append(start_host(db_path, data_dir, "--start-all", "--arma3", str(exe)))
        async with asyncio.timeout(30):
            while len(_hc_lines(hc_log, "connected")) < 2:
                await asyncio.sleep(0.1)
        found = scan_companions(instance)[record.id]
        assert sorted(found) == ["hc-1", "hc-2"]
        pids = sorted(identities[0].pid for identities in found.values())
        server_pid = int(await db.fetchval("SELECT pid FROM servers WHERE id = ?", (record.id,)))

        os.kill(hosts[0].pid, signal.SIGKILL)  # the bot dies hard; games and HCs stay
        hosts[0].wait(timeout=10)
        assert all(identity_of(pid) is not None for pid in [*pids, server_pid])
        (folder / COMPANIONS_FILE).unlink()  # and even the record is lost: the marker finds them

        hosts.append(start_host(db_path, data_dir, "--arma3", str(exe)))
        await asyncio.sleep(3.0)  # give a wrong duplicate time to connect, if one started
        found = scan_companions(instance)[record.id]
        assert sorted(found) == ["hc-1", "hc-2"]
        assert all(len(identities) == 1 for identities in found.values()), "a duplicate HC"
        assert sorted(i[0].pid for i in found.values()) == pids, "adopted, not restarted"
        assert len(_hc_lines(hc_log, "connected")) == 2, "no second HC connected"
        assert _hc_lines(hc_log, "disconnected") == []
        row = await db.fetchval("SELECT pid FROM servers WHERE id = ?", (record.id,))
        assert int(row) == server_pid
        async with asyncio.timeout(10):  # the new bot recorded them again
            while not (folder / COMPANIONS_FILE).exists():
                await asyncio.sleep(0.1)
        hosts[1].send_signal(signal.SIGTERM)
        hosts[1].wait(timeout=15)
        assert all(identity_of(pid) is not None for pid in pids), "closing the bot stops nothing"
    finally:
        for host in hosts:
            if host.poll() is None:
                host.kill()
                host.wait(timeout=5)
            if host.stdout is not None:
                host.stdout.close()
        leftovers = [
            i.pid for ids in scan_companions(instance).get(record.id, {}).values() for i in ids
        ]
        server_row = await db.fetchval("SELECT pid FROM servers WHERE id = ?", (record.id,))
        kill_groups([*leftovers, *pids, *([int(server_row)] if server_row else [])])
        await db.close()


def _hc_lines(path: Path, what: str) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text().splitlines() if line.split("\t")[0] == what]
