"""The hosts put to work below Discord: placement of a new server, its ports on its host,
the start queue admitting starts as places free, and a host away shown as unknown.

Real supervisor, real SQLite, real fake game processes; the Docker host here is one whose
engine never answers (a unix socket nobody listens on), which is all placement, the queue's
refusal and the "unknown" display need. Starts on real engines: tests/docker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.errors import InvalidInput, StartRefused
from core.hosts.loading import load_hosts
from core.hosts.queue import StartCancelled
from core.jobs import JobQueue
from core.metrics import render
from core.secrets import SecretBox
from core.services.audit import Actor, AuditLog
from core.services.backups import BackupService
from core.services.fleet import UNKNOWN_UNREACHABLE, Fleet
from core.services.fleet_metrics import host_families
from core.services.servers import ServerService
from core.supervisor.states import ServerState
from data.repositories.backups import BackupPolicyRepository
from data.repositories.history import AuditRepository
from data.repositories.servers import ProcessRecord
from data.repositories.settings import SettingsRepository
from tests.fakes.fake_profile import FakeProfile
from tests.integration.supervision import FAST, Env, supervised

S = ServerState
ACTOR = Actor(1, "alice")
WAIT = 20.0


def hosts_toml(tmp_path: Path, local_servers: int | None = None) -> Path:
    """local (with a capacity when asked) and `far`, a Docker host that never answers."""
    capacity = "" if local_servers is None else f"capacity = {{ servers = {local_servers} }}\n"
    path = tmp_path / "hosts.toml"
    path.write_text(
        f'[[hosts]]\nname = "local"\n{capacity}\n'
        "[[hosts]]\n"
        'name = "far"\n'
        f'endpoint = "unix://{tmp_path}/nobody.sock"\n'
        'ports = "30000-30100"\n'
        'images = { fake = "languard/fake:1" }\n'
    )
    return path


@contextlib.asynccontextmanager
async def fleet_env(
    tmp_path: Path, local_servers: int | None = None
) -> AsyncIterator[tuple[Env, Fleet, ServerService]]:
    table = load_hosts(hosts_toml(tmp_path, local_servers), games=["fake"])
    async with supervised(tmp_path, profiles=[FakeProfile()]) as env:
        fleet = Fleet(table, env.supervisor, env.bus, probe_interval=0.2, probe_timeout=2.0)
        fleet.install()
        for runtime in fleet.runtimes.values():
            await runtime.open()
        await fleet.start()
        audit = AuditLog(AuditRepository(env.db), env.bus)
        service = ServerService(env.supervisor, audit, SecretBox(env.key), fleet=fleet)
        try:
            yield env, fleet, service
        finally:
            await fleet.close()


async def created(env: Env, service: ServerService, name: str, host: str | None = None) -> int:
    made = await service.create(ACTOR, name, "fake", host=host)
    await SettingsRepository(env.db).set_many(made.id, {**FAST, "args": []})
    return made.id


async def test_a_new_server_goes_where_it_can_run_and_its_host_is_kept(tmp_path: Path) -> None:
    async with fleet_env(tmp_path) as (env, fleet, service):
        # `far` does not answer: placement without host: skips it
        assert fleet.statuses()[1].name == "far" and not fleet.statuses()[1].reachable
        home = await service.create(ACTOR, "home", "fake")
        assert home.host == "local"
        # named, it is accepted (a host away may come back); its ports follow its range
        away = await service.create(ACTOR, "away", "fake", host="far")
        assert away.host == "far" and 30000 <= away.port <= 30100
        record = await env.supervisor.servers_repo.get_by_name("away")
        assert record is not None and record.host == "far"
        assert env.supervisor.by_name("away").runtime.name == "far"
        with pytest.raises(InvalidInput, match="no host named"):
            await service.create(ACTOR, "nowhere", "fake", host="mars")
        with pytest.raises(InvalidInput, match="from 30000"):
            await service.create(ACTOR, "low", "fake", port=2302, host="far")
        assert service.hosts("fake") == ["local", "far"]


async def test_a_server_on_a_host_away_shows_unknown_and_cannot_start(tmp_path: Path) -> None:
    async with fleet_env(tmp_path) as (env, fleet, service):
        server_id = await created(env, service, "away", host="far")
        server = env.supervisor.get(server_id)
        # as a previous bot left it: running in a container on `far`
        record = ProcessRecord(0, 0.0, (), 1.0, "docker:" + "ab" * 32)
        await env.supervisor.servers_repo.set_process(server_id, record)
        await env.supervisor.servers_repo.set_state(server_id, S.RUNNING, "adopted")
        await env.supervisor.remove(server_id)
        stored = await env.supervisor.servers_repo.get(server_id)
        assert stored is not None
        server = await env.supervisor.add(stored)
        outcome = await server.resume()
        # never crashed: the engine does not answer, so the game may well still run
        assert "adopted" in outcome and server.state is S.RUNNING
        assert fleet.shown_state(server) == UNKNOWN_UNREACHABLE
        (summary,) = [s for s in await service.list() if s.name == "away"]
        assert summary.host == "far" and summary.host_unreachable
        status = await asyncio.wait_for(service.status("away"), WAIT)
        assert status.host_unreachable and status.players_online is None
        # nothing can be stopped over there: refused, not recorded as stopped
        for action in (service.stop, service.kill, service.restart):
            with pytest.raises(InvalidInput, match="cannot be stopped from here"):
                await action(ACTOR, "away")
        assert server.state is S.RUNNING and server.handle is not None
        await server.detach()
        server.state = S.STOPPED
        with pytest.raises(StartRefused, match="does not answer"):
            await service.start(ACTOR, "away")


async def test_a_start_beyond_capacity_waits_its_turn(tmp_path: Path) -> None:
    async with fleet_env(tmp_path, local_servers=1) as (env, fleet, service):
        await created(env, service, "one")
        await created(env, service, "two")
        first = await service.start(ACTOR, "one")
        assert first.state is S.RUNNING
        places: list[int] = []

        async def told(place: int) -> None:
            places.append(place)

        second = asyncio.create_task(service.start(ACTOR, "two", on_place=told))
        async with asyncio.timeout(WAIT):
            while not places:
                await asyncio.sleep(0.02)
        assert places == [1]
        assert env.supervisor.by_name("two").state is S.STOPPED
        assert fleet.queue.usage("local").queued == 1
        await service.stop(ACTOR, "one")
        result = await asyncio.wait_for(second, WAIT)
        assert result.state is S.RUNNING
        usage = fleet.queue.usage("local")
        assert (usage.servers, usage.queued) == (1, 0)
        await service.stop(ACTOR, "two")


async def test_a_waiting_start_can_be_cancelled(tmp_path: Path) -> None:
    async with fleet_env(tmp_path, local_servers=1) as (env, fleet, service):
        await created(env, service, "one")
        await created(env, service, "two")
        await service.start(ACTOR, "one")
        second = asyncio.create_task(service.start(ACTOR, "two"))
        async with asyncio.timeout(WAIT):
            while fleet.queue.ticket(env.supervisor.by_name("two").id) is None:
                await asyncio.sleep(0.02)
        assert service.cancel_start("two")
        with pytest.raises(StartCancelled):
            await asyncio.wait_for(second, WAIT)
        assert env.supervisor.by_name("two").state is S.STOPPED
        assert not service.cancel_start("two")
        await service.stop(ACTOR, "one")
        assert fleet.queue.usage("local").servers == 0


async def test_a_restart_keeps_its_place_and_a_crash_frees_it(tmp_path: Path) -> None:
    async with fleet_env(tmp_path, local_servers=1) as (env, fleet, service):
        one = await created(env, service, "one")
        await SettingsRepository(env.db).set_many(one, {"auto_restart": False})
        await service.start(ACTOR, "one")
        await service.restart(ACTOR, "one")
        assert fleet.queue.holds(one) == "local"
        handle = env.supervisor.get(one).handle
        assert handle is not None and handle.pid is not None
        os.kill(handle.pid, signal.SIGKILL)
        async with asyncio.timeout(WAIT):
            while fleet.queue.holds(one) is not None:
                await asyncio.sleep(0.02)
        assert env.supervisor.get(one).state is S.CRASHED


def test_a_wrong_hosts_file_stops_the_bot_with_one_line_per_problem(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    (data / "hosts.toml").write_text(
        '[[hosts]]\nname = "Box 2"\nendpoint = "tcp://10.0.0.2"\n\n'
        '[[hosts]]\nname = "b"\nendpoint = "ftp://x"\nadress = "1.2.3.4"\n'
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DISCORD_TOKEN": "x" * 59,
        "LANGUARD_DATA_DIR": str(data),
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert "the bot does not start until they are fixed" in lines[0]
    assert len(lines) >= 4, lines  # the header, then one line per problem
    assert any("adress" in line for line in lines)
    assert not any("Traceback" in line for line in lines)


async def test_a_crash_with_a_restart_coming_keeps_its_place(tmp_path: Path) -> None:
    async with fleet_env(tmp_path, local_servers=1) as (env, fleet, service):
        one = await created(env, service, "one")
        await created(env, service, "two")
        await SettingsRepository(env.db).set_many(one, {"auto_restart": True, "backoff_base": 1.0})
        await service.start(ACTOR, "one")
        waiting = asyncio.create_task(service.start(ACTOR, "two"))
        async with asyncio.timeout(WAIT):
            while service.waiting_host("two") is None:
                await asyncio.sleep(0.02)
        assert service.waiting_host("two") == "local"
        handle = env.supervisor.get(one).handle
        assert handle is not None and handle.pid is not None
        os.kill(handle.pid, signal.SIGKILL)
        # the automatic restart runs in the place the crash kept: `two` still waits
        server = env.supervisor.get(one)
        async with asyncio.timeout(WAIT):
            while not (server.state is S.RUNNING and server.handle is not handle):
                await asyncio.sleep(0.02)
        assert not waiting.done() and service.waiting_host("two") == "local"
        assert fleet.queue.usage("local").servers == 1
        await service.stop(ACTOR, "one")
        result = await asyncio.wait_for(waiting, WAIT)
        assert result.state is S.RUNNING
        await service.stop(ACTOR, "two")


async def test_metrics_say_which_host_answers_and_what_it_holds(tmp_path: Path) -> None:
    async with fleet_env(tmp_path, local_servers=1) as (env, fleet, service):
        await created(env, service, "one")
        await service.start(ACTOR, "one")
        text = render(host_families(fleet))
        assert 'languard_host_up{host="local"} 1' in text
        assert 'languard_host_up{host="far"} 0' in text
        assert 'languard_host_servers{host="local"} 1' in text
        assert 'languard_host_queued_starts{host="far"} 0' in text
        await service.stop(ACTOR, "one")


async def test_a_backup_of_a_server_whose_files_are_on_another_host_is_refused(
    tmp_path: Path,
) -> None:
    async with fleet_env(tmp_path) as (env, fleet, service):
        # as an engine on another machine (tcp://, ssh://): named volumes, not this folder
        fleet.runtimes["far"].bind_mounts = False
        await created(env, service, "home")
        await created(env, service, "away", host="far")
        jobs = JobQueue()
        audit = AuditLog(AuditRepository(env.db), env.bus)
        backups = BackupService(
            env.supervisor,
            service,
            audit,
            jobs,
            BackupPolicyRepository(env.db),
            root=tmp_path / "backups",
        )
        try:
            with pytest.raises(InvalidInput, match="volume there"):
                backups.backup(ACTOR, "away")
            with pytest.raises(InvalidInput, match="volume there"):
                backups.check_restore("away", "20260101T000000Z")
            done = await asyncio.wait_for(backups.backup(ACTOR, "home").result(), WAIT)
            assert done.backup.size > 0
        finally:
            await jobs.close()


async def test_a_server_on_a_host_no_longer_declared_is_kept_unknown_not_run_here(
    tmp_path: Path,
) -> None:
    async with fleet_env(tmp_path) as (env, fleet, service):
        server_id = await created(env, service, "gone")
        # as if hosts.toml had declared a host `old` for it, since taken out
        await env.db.execute("UPDATE servers SET host = 'old' WHERE id = ?", (server_id,))
        record = ProcessRecord(0, 0.0, (), 1.0, "docker:" + "cd" * 32)
        await env.supervisor.servers_repo.set_process(server_id, record)
        await env.supervisor.servers_repo.set_state(server_id, S.RUNNING, "adopted")
        await env.supervisor.remove(server_id)
        stored = await env.supervisor.servers_repo.get(server_id)
        assert stored is not None and stored.host == "old"
        server = await env.supervisor.add(stored)
        assert server.runtime.name == "old" and not server.runtime.files_here
        assert "adopted" in await server.resume()
        assert server.state is S.RUNNING  # not a crash, and not restarted on this machine
        assert fleet.shown_state(server) == UNKNOWN_UNREACHABLE
        kept = await env.supervisor.servers_repo.get(server_id)
        assert kept is not None and kept.process == record
        await server.detach()
        server.state = S.STOPPED
        with pytest.raises(StartRefused):
            await service.start(ACTOR, "gone")
        with pytest.raises(StartRefused, match="no longer declares"):
            await server.start()
        assert server.state is S.STOPPED
