"""ServerService against a real SQLite file, the real Supervisor and real fake-game processes."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.errors import InvalidInput, NotFound, NotRunning, PortInUse
from core.events import ServerCrashed
from core.secrets import SecretBox
from core.services.audit import MASK, Actor, AuditLog
from core.services.servers import ServerService
from core.services.settings_keys import Effect
from core.services.settings_schema import NOT_SET
from core.supervisor.ports import port_is_free
from core.supervisor.states import ServerState
from data.repositories.history import AuditEntry, AuditRepository
from tests.fakes.fake_profile import FakeProfile
from tests.integration.supervision import Env, next_event, supervised

S = ServerState
ALICE = Actor(42, "alice")
PUBLIC_HOST = "203.0.113.7"
STRIDE = FakeProfile.port_stride
PASSWORD = "Tr0ub4dor&3-correct-horse"


def free_base(blocks: int = 6) -> int:
    """A base port with `blocks` free blocks after it (TCP and UDP), so tests stay exact."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 30000, STRIDE)
        ports = range(base, base + blocks * STRIDE)
        if all(port_is_free(p, proto) for p in ports for proto in ("tcp", "udp")):
            return base
    raise RuntimeError("no free port range for the test")


@contextmanager
def hold(port: int) -> Iterator[socket.socket]:
    """Another program on the host listening on `port`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("0.0.0.0", port))
        sock.listen()
        yield sock
    finally:
        sock.close()


@dataclass
class Ctx:
    env: Env
    service: ServerService
    audit: AuditLog
    base: int

    async def quick(self, name: str, *args: str) -> None:
        """Make a server stop fast (console stop) and pass fake-server flags."""
        await self.service.set_setting(ALICE, name, "args", ";".join(["--console", *args]))
        await self.service.set_setting(ALICE, name, "stop_timeout", "2s")

    async def audited(self, action: str) -> list[AuditEntry]:
        return [e for e in reversed(await self.audit.recent(100)) if e.action == action]


@asynccontextmanager
async def service(tmp_path: Path, profile: FakeProfile | None = None) -> AsyncIterator[Ctx]:
    profile = profile or FakeProfile()
    base = free_base()
    profile.default_port = base
    async with supervised(tmp_path, profiles=[profile]) as env:
        audit = AuditLog(AuditRepository(env.db))
        svc = ServerService(env.supervisor, audit, SecretBox(env.key), public_host=PUBLIC_HOST)
        yield Ctx(env, svc, audit, base)


# -- create ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["A", "ab", "Alpha", "-abc", "abc-", "a_b", "ünï", "abc\n", "a b", "a" * 33, "all", ""],
)
async def test_create_refuses_bad_names(tmp_path: Path, name: str) -> None:
    async with service(tmp_path) as ctx:
        with pytest.raises(InvalidInput) as info:
            await ctx.service.create(ALICE, name, "fake")
        assert "\n" not in str(info.value)
        assert ctx.env.supervisor.all() == []
        [entry] = await ctx.audited("server.create")
        assert not entry.ok and entry.actor_id == 42


async def test_create_makes_row_folder_and_defaults(tmp_path: Path) -> None:
    async with service(tmp_path) as ctx:
        created = await ctx.service.create(ALICE, "main-1", "fake")
        assert created.port == ctx.base and created.generated_secrets == ()
        assert ctx.env.supervisor.by_name("main-1").state is S.STOPPED
        assert (ctx.env.data_dir / "servers" / "main-1").is_dir()
        views = {v.key: v for v in await ctx.service.get_settings("main-1")}
        assert views["port"].value == str(ctx.base) and not views["port"].is_default
        assert views["password"].value == NOT_SET and views["password"].secret
        assert views["crash_window"].value == "10m" and views["crash_window"].is_default
        assert views["port"].effect is Effect.NEXT_START
        assert views["auto_restart"].effect is Effect.NOW

        with pytest.raises(InvalidInput, match="already exists"):
            await ctx.service.create(ALICE, "main-1", "fake")
        with pytest.raises(InvalidInput, match="choose one of: fake"):
            await ctx.service.create(ALICE, "other", "minecraft")
        [ok, duplicate, unknown] = await ctx.audited("server.create")
        assert ok.ok and ok.actor_name == "alice" and ok.server_id == created.id
        assert ok.arguments == {"name": "main-1", "game": "fake", "port": None}
        assert not duplicate.ok and "already exists" in duplicate.result
        assert not unknown.ok


async def test_ports_are_allocated_around_servers_and_busy_ports(tmp_path: Path) -> None:
    async with service(tmp_path) as ctx:
        base = ctx.base
        assert (await ctx.service.create(ALICE, "alpha", "fake")).port == base
        with hold(base + STRIDE):  # another program holds the next block's port
            assert (await ctx.service.create(ALICE, "bravo", "fake")).port == base + 2 * STRIDE
        busy = f"TCP {base + 3 * STRIDE} is already in use"
        with hold(base + 3 * STRIDE), pytest.raises(InvalidInput, match=busy):
            await ctx.service.create(ALICE, "charlie", "fake", port=base + 3 * STRIDE)
        with pytest.raises(InvalidInput, match="overlap those of server `alpha`"):
            await ctx.service.create(ALICE, "charlie", "fake", port=base + 5)
        for bad in (80, 70000, 65535):
            with pytest.raises(InvalidInput, match="from 1024 to"):
                await ctx.service.create(ALICE, "charlie", "fake", port=bad)
        explicit = await ctx.service.create(ALICE, "charlie", "fake", port=base + 3 * STRIDE)
        assert explicit.port == base + 3 * STRIDE
        # the skipped block is free again now, so it is the next one handed out
        assert (await ctx.service.create(ALICE, "delta", "fake")).port == base + STRIDE
        assert (await ctx.service.create(ALICE, "echo", "fake")).port == base + 4 * STRIDE
        # moving a server onto another's block is refused too
        with pytest.raises(InvalidInput, match="overlap the ports of server `alpha`"):
            await ctx.service.set_setting(ALICE, "echo", "port", str(base + 9))


async def test_games_with_an_rcon_password_get_a_strong_one(tmp_path: Path) -> None:
    profile = FakeProfile()
    profile.secret_keys = frozenset({"password", "rcon_password"})
    async with service(tmp_path, profile) as ctx:
        alpha = await ctx.service.create(ALICE, "alpha", "fake")
        bravo = await ctx.service.create(ALICE, "bravo", "fake")
        assert alpha.generated_secrets == ("rcon_password",)
        first = (await ctx.env.supervisor.context(alpha.id, "alpha")).secrets["rcon_password"]
        second = (await ctx.env.supervisor.context(bravo.id, "bravo")).secrets["rcon_password"]
        assert re.fullmatch(r"[A-Za-z0-9]{24}", first) and first != second
        raw = b"".join(p.read_bytes() for p in ctx.env.data_dir.glob("languard.db*"))
        assert first.encode() not in raw
        assert first not in repr(await ctx.audit.recent(100))
        views = {v.key: v for v in await ctx.service.get_settings("alpha")}
        assert views["rcon_password"].value == MASK and views["rcon_password"].secret
        await ctx.service.set_setting(ALICE, "alpha", "rcon_password", "another-one")
        context = await ctx.env.supervisor.context(alpha.id, "alpha")
        assert context.secrets["rcon_password"] == "another-one"


# -- settings -------------------------------------------------------------------------------


async def test_secrets_are_masked_and_encrypted_at_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with service(tmp_path) as ctx:
        created = await ctx.service.create(ALICE, "vault", "fake")
        result = await ctx.service.set_setting(ALICE, "vault", "password", PASSWORD)
        assert result.value == MASK and not result.next_start
        views = {v.key: v for v in await ctx.service.get_settings("vault")}
        assert views["password"].value == MASK and not views["password"].is_default
        [entry] = await ctx.audited("server.set")
        assert entry.ok and entry.arguments == {"setting": "password", "value": MASK}
        # the profile still gets the plain text, through the supervisor's context
        context = await ctx.env.supervisor.context(created.id, "vault")
        assert context.secrets["password"] == PASSWORD
        assert "password" not in context.settings
        # a mistyped key must not leak the value into the audit either
        with pytest.raises(InvalidInput, match="did you mean `password`"):
            await ctx.service.set_setting(ALICE, "vault", "pasword", PASSWORD)
        # nor does a value the model refuses
        with pytest.raises(InvalidInput, match="line breaks"):
            await ctx.service.set_setting(ALICE, "vault", "password", PASSWORD + "\n")
        await ctx.env.supervisor.save_positions()
        audit_text = repr(await ctx.audit.recent(100))
        files = [p for p in ctx.env.data_dir.glob("languard.db*") if p.is_file()]
        raw = b"".join(p.read_bytes() for p in files)
        assert files and b"vault" in raw  # the server row is there, readable
        assert PASSWORD.encode() not in raw
        assert PASSWORD not in audit_text and PASSWORD not in caplog.text

        cleared = await ctx.service.set_setting(ALICE, "vault", "password", "off")
        assert cleared.value == NOT_SET
        views = {v.key: v for v in await ctx.service.get_settings("vault")}
        assert views["password"].value == NOT_SET


async def test_setting_while_running_says_next_start(tmp_path: Path) -> None:
    async with service(tmp_path) as ctx:
        await ctx.service.create(ALICE, "live", "fake")
        stopped = await ctx.service.set_setting(ALICE, "live", "liveness_interval", "off")
        assert not stopped.next_start and stopped.message == "saved; in effect now"
        await ctx.quick("live")
        await ctx.service.start(ALICE, "live")
        port = await ctx.service.set_setting(ALICE, "live", "port", str(ctx.base + 5 * STRIDE))
        assert port.next_start and port.effect is Effect.NEXT_START and "next start" in port.message
        restart = await ctx.service.set_setting(ALICE, "live", "auto_restart", "off")
        assert not restart.next_start and restart.value == "off"
        server = ctx.env.supervisor.by_name("live")
        assert (await ctx.env.supervisor.policy(server.id)).auto_restart is False
        # the probe loop ended when it was off: turning it on waits for the next start
        probe = await ctx.service.set_setting(ALICE, "live", "liveness_interval", "30s")
        assert probe.next_start
        with pytest.raises(InvalidInput, match="max_crashes"):
            await ctx.service.set_setting(ALICE, "live", "max_crashes", "1000")
        await ctx.service.stop(ALICE, "live")
        later = await ctx.service.set_setting(ALICE, "live", "port", str(ctx.base))
        assert not later.next_start and later.message == "saved; used when the server starts"
        entries = await ctx.audited("server.set")
        assert [e.arguments["setting"] for e in entries if e.ok][-1] == "port"
        refused = [e for e in entries if not e.ok]
        assert len(refused) == 1 and refused[0].arguments == {
            "setting": "max_crashes",
            "value": "1000",
        }


# -- lifecycle ------------------------------------------------------------------------------


async def test_lifecycle_commands_are_audited(tmp_path: Path) -> None:
    async with service(tmp_path) as ctx:
        created = await ctx.service.create(ALICE, "cycle", "fake")
        await ctx.quick("cycle")
        manual_starts: list[int] = []

        async def end_maintenance(server_id: int) -> None:
            manual_starts.append(server_id)

        async def broken_hook(server_id: int) -> None:
            raise RuntimeError("a bug in another service")

        ctx.service.on_manual_start.extend([broken_hook, end_maintenance])
        started = await ctx.service.start(ALICE, "cycle")
        assert started.state is S.RUNNING and started.ok and manual_starts == [created.id]
        server = ctx.env.supervisor.by_name("cycle")
        assert server.handle is not None
        first_pid = server.handle.pid
        restarted = await ctx.service.restart(ALICE, "cycle")
        assert restarted.state is S.RUNNING and server.handle is not None
        assert server.handle.pid != first_pid
        stopped = await ctx.service.stop(ALICE, "cycle")
        assert stopped.state is S.STOPPED and stopped.reason == "stopped by alice"
        with pytest.raises(NotRunning):
            await ctx.service.stop(ALICE, "cycle")
        await ctx.service.start(ALICE, "cycle")
        killed = await ctx.service.kill(ALICE, "cycle")
        assert killed.state is S.STOPPED and server.handle is None

        actions = [
            (e.action, e.ok, e.result, e.actor_id, e.actor_name, e.server_id)
            for e in reversed(await ctx.audit.recent(100))
            if e.action != "server.set"
        ]
        expected_tail = [
            ("server.start", True, "running"),
            ("server.restart", True, "running"),
            ("server.stop", True, "stopped"),
            ("server.stop", False, "cycle is not running"),
            ("server.start", True, "running"),
            ("server.kill", True, "stopped"),
        ]
        assert [a[:3] for a in actions[1:]] == expected_tail
        assert all(a[3:] == (42, "alice", created.id) for a in actions)


async def test_a_refused_start_propagates_its_message(tmp_path: Path) -> None:
    async with service(tmp_path) as ctx:
        created = await ctx.service.create(ALICE, "blocked", "fake")
        await ctx.env.supervisor.settings_repo.set(created.id, "ports", [[ctx.base, "tcp"]])
        # the refusal names the process that holds the port: here, this test process
        holder = f"port {ctx.base} is held by pid {os.getpid()}"
        with hold(ctx.base), pytest.raises(PortInUse, match=holder):
            await ctx.service.start(ALICE, "blocked")
        [entry] = await ctx.audited("server.start")
        assert not entry.ok and f"pid {os.getpid()}" in entry.result
        assert ctx.env.supervisor.by_name("blocked").state is S.STOPPED


# -- delete ---------------------------------------------------------------------------------


async def test_delete_is_refused_while_running_then_archives(tmp_path: Path) -> None:
    async with service(tmp_path) as ctx:
        created = await ctx.service.create(ALICE, "old", "fake")
        await ctx.quick("old")
        await ctx.service.set_setting(ALICE, "old", "password", PASSWORD)
        await ctx.service.start(ALICE, "old")
        with pytest.raises(InvalidInput, match="`old` is running; stop it first"):
            await ctx.service.delete(ALICE, "old")
        assert ctx.env.supervisor.by_name("old").state is S.RUNNING
        await ctx.service.stop(ALICE, "old")

        forgotten: list[int] = []

        async def forget(server_id: int) -> bool:
            forgotten.append(server_id)
            return True

        ctx.service.on_deleted.append(forget)
        deleted = await ctx.service.delete(ALICE, "old")
        assert forgotten == [created.id]
        assert deleted.archived_to is not None and deleted.archived_to.startswith("archive/old-")
        archive = ctx.env.data_dir / deleted.archived_to
        assert (archive / "fake.cfg").is_file() and (archive / "console.log").is_file()
        assert not (ctx.env.data_dir / "servers" / "old").exists()
        with pytest.raises(NotFound):
            ctx.env.supervisor.by_name("old")
        assert ctx.service.names() == []
        [refused, done] = await ctx.audited("server.delete")
        assert not refused.ok and done.ok and done.result == f"archived to {deleted.archived_to}"

        # the name is free again, with a fresh folder and fresh settings
        again = await ctx.service.create(ALICE, "old", "fake")
        assert again.id != created.id
        assert not (ctx.env.data_dir / "servers" / "old" / "console.log").exists()
        views = {v.key: v for v in await ctx.service.get_settings("old")}
        assert views["password"].value == NOT_SET


async def test_delete_is_refused_while_a_start_is_under_way(tmp_path: Path) -> None:
    async with service(tmp_path) as ctx:
        await ctx.service.create(ALICE, "slow", "fake")
        await ctx.quick("slow", "--ready-after", "1.0")
        server = ctx.env.supervisor.by_name("slow")
        starting = asyncio.create_task(ctx.service.start(ALICE, "slow"))
        async with asyncio.timeout(5):
            while server.state is not S.STARTING:
                await asyncio.sleep(0.01)
        with pytest.raises(InvalidInput, match=r"`slow` is (starting|busy)"):
            await ctx.service.delete(ALICE, "slow")
        assert (await asyncio.wait_for(starting, 10)).state is S.RUNNING
        assert ctx.env.supervisor.by_name("slow") is server
        await ctx.service.stop(ALICE, "slow")


async def test_a_crashed_server_can_be_deleted(tmp_path: Path) -> None:
    async with service(tmp_path) as ctx:
        await ctx.service.create(ALICE, "crashy", "fake")
        await ctx.quick("crashy", "--crash-after", "0.6")
        await ctx.service.set_setting(ALICE, "crashy", "auto_restart", "off")
        with ctx.env.bus.subscribe(ServerCrashed) as crashes:
            await ctx.service.start(ALICE, "crashy")
            await next_event(crashes, ServerCrashed, timeout=10)
        assert ctx.env.supervisor.by_name("crashy").state is S.CRASHED
        deleted = await ctx.service.delete(ALICE, "crashy")
        assert deleted.archived_to is not None
        assert ctx.env.supervisor.all() == []


# -- status and lookups ---------------------------------------------------------------------


async def test_status_of_a_running_server(tmp_path: Path) -> None:
    async with service(tmp_path) as ctx:
        created = await ctx.service.create(ALICE, "alpha", "fake")
        await ctx.service.create(ALICE, "bravo", "fake")
        await ctx.quick("alpha")
        await ctx.env.supervisor.settings_repo.set(
            created.id, "mission_rotation", ["co10_escape.altis"]
        )
        cold = await ctx.service.status("alpha")
        assert cold.state is S.STOPPED and cold.pid is None and cold.uptime is None
        assert cold.cpu_percent is None and cold.rss_bytes is None

        await ctx.service.start(ALICE, "alpha")
        server = ctx.env.supervisor.by_name("alpha")
        assert server.handle is not None
        status = await ctx.service.status("alpha")
        assert status.state is S.RUNNING and status.pid == server.handle.pid
        assert status.uptime is not None and status.uptime > 0
        assert status.cpu_percent is not None and status.cpu_percent >= 0
        assert status.rss_bytes is not None and status.rss_bytes > 1_000_000
        assert status.address == f"{PUBLIC_HOST}:{ctx.base}" and status.game == "fake"
        assert status.players_online is None and status.players_max is None  # no link
        assert status.mission == "co10_escape.altis"

        summaries = {s.name: s for s in await ctx.service.list()}
        assert summaries["alpha"].state is S.RUNNING and summaries["bravo"].state is S.STOPPED
        assert summaries["bravo"].address == f"{PUBLIC_HOST}:{ctx.base + STRIDE}"
        await ctx.service.stop(ALICE, "alpha")


async def test_lookups_and_autocomplete(tmp_path: Path) -> None:
    async with service(tmp_path) as ctx:
        for name in ("main", "main-2", "test-main", "other"):
            await ctx.service.create(ALICE, name, "fake")
        assert ctx.service.names("ma") == ["main", "main-2", "test-main"]
        assert ctx.service.names("") == ["main", "main-2", "other", "test-main"]
        assert ctx.service.names("x" * 10_000) == []
        assert ctx.service.games() == ["fake"]
        keys = [k.name for k in ctx.service.setting_keys("main", "st")]
        assert keys == ["stop_timeout", "auto_restart"]  # prefix matches first
        assert ctx.service.setting_keys("nope", "") == []
        assert len(ctx.service.keys_for("fake")) <= 25
        assert ctx.service.keys_for("minecraft") == []
        with pytest.raises(NotFound, match="no server named `ghost`"):
            await ctx.service.status("ghost")
        with pytest.raises(NotFound) as info:
            await ctx.service.start(ALICE, "@everyone\n" * 100)
        assert "@everyone" not in str(info.value)
        # names are matched case-insensitively
        views = await ctx.service.get_settings("MAIN")
        assert views[0].key == "args"
