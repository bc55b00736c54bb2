"""Backups and restores for real: the supervisor runs the fake games, the BackupService takes
backups through the job queue while they write, and restores them into their folders.

The fakes write like the games: Minecraft rewrites its world (level.dat and a region file,
each in two halves, stamped with the same tick) until `save-off`; Arma rewrites its
`server.vars.Arma3Profile` in place a few times a second. A consistent copy has one tick
everywhere, and each file's first and last line agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import subprocess
import tarfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from core.backups import restore as restoring
from core.backups.archive import extract_verified
from core.backups.layout import RESTORE_DIR, BackupKind
from core.config import Settings
from core.errors import InvalidInput, LanguardError, StartRefused
from core.jobs import JobQueue, JobUpdate
from core.runtime import Runtime
from core.secrets import SecretBox
from core.services.audit import Actor, AuditLog
from core.services.backups import BackupService
from core.services.servers import ServerService
from core.supervisor.server import ManagedServer
from core.supervisor.states import ServerState
from data.repositories.backups import BackupPolicyRepository
from data.repositories.history import AuditRepository
from tests.fakes.fake_profile import FakeProfile
from tests.integration.arma3_env import add_arma3_server, arma3_supervised
from tests.integration.minecraft_env import add_minecraft, free_port, minecraft_env, wait_link
from tests.integration.supervision import Env, supervised

S = ServerState
ADMIN = Actor(42, "admin")
JOB_TIMEOUT = 60.0


@asynccontextmanager
async def backup_service(env: Env, root: Path, **options: Any) -> AsyncIterator[BackupService]:
    audit = AuditLog(AuditRepository(env.db))
    servers = ServerService(env.supervisor, audit, SecretBox(env.key))
    jobs = JobQueue()
    options.setdefault("database", env.db.path)
    service = BackupService(
        env.supervisor, servers, audit, jobs, BackupPolicyRepository(env.db), root=root, **options
    )
    try:
        yield service
    finally:
        await jobs.close()


async def until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def unpack(service: BackupService, server: str, name: str, dest: Path) -> dict[str, bytes]:
    """Every file of a backup, checked against its manifest on the way."""
    folder, manifest = service.store.load(server, name)
    extract_verified(folder, manifest, dest, lambda d, t: None)
    return {str(p.relative_to(dest)): p.read_bytes() for p in dest.rglob("*") if p.is_file()}


def digests(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    found = {}
    for path in folder.rglob("*"):
        rel = str(path.relative_to(folder))
        if path.is_file() and not path.is_symlink() and not rel.startswith(skip):
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def stamp(data: bytes, first: bytes, last: bytes) -> bytes:
    """The tick in a fake's file, after checking its first and last lines agree."""
    lines = data.split(b"\n")
    head, tail = lines[0].removeprefix(first), lines[-2].removeprefix(last)
    assert head == tail, f"torn copy: {lines[0]!r} ... {lines[-2]!r}"
    return head


# -- taking backups while the game writes ----------------------------------------------------


async def test_a_minecraft_backup_pauses_saving_and_copies_one_consistent_world(
    tmp_path: Path,
) -> None:
    async with minecraft_env(tmp_path) as env, backup_service(env, tmp_path / "bk") as backups:
        server = await add_minecraft(env, "survival", port=free_port())
        folder = env.supervisor.folder_for("survival")
        assert await server.start() is S.RUNNING
        await wait_link(server)
        assert server.handle is not None
        server.handle.write_console("fake.world 0.005")
        level = folder / "world" / "level.dat"
        await until(level.exists)
        updates: list[JobUpdate] = []
        job = backups.backup(ADMIN, "survival", note="before the update", on_update=updates.append)
        async with asyncio.timeout(JOB_TIMEOUT):
            result = await job.result()
        assert result.paused_saves and result.backup.note == "before the update"
        files = unpack(backups, "survival", result.backup.name, tmp_path / "unpacked")
        ticks = {
            stamp(files["world/level.dat"], b"tick=", b"end="),
            stamp(files["world/region/r.0.0.mca"], b"tick=", b"end="),
        }
        assert len(ticks) == 1  # one save, not a level.dat of one and a region of another
        assert "server.properties" in files and "eula.txt" in files
        assert not any(name.startswith(("logs/", "console.log", "server.jar")) for name in files)
        log = (folder / "console.log").read_text()
        order = [
            log.index("Automatic saving is now disabled"),
            log.index("Saved the game"),
            log.rindex("Automatic saving is now enabled"),
        ]
        assert order == sorted(order)
        copied = level.read_bytes()
        await until(lambda: level.read_bytes() != copied)  # the game saves again
        steps = [u.step for u in updates]
        assert (
            steps.index("pausing saves")
            < steps.index("copying files")
            < steps.index("resuming saves")
        )
        assert result.backup.database is not None
        assert (tmp_path / "bk" / result.backup.database / "languard.db").is_file()
        page = await backups.list("survival")
        assert page.total == 1 and page.items[0].kind is BackupKind.MANUAL


def saved_since(path: Path, mtime_ns: int) -> Callable[[], bool]:
    """True once the game wrote `path` again."""
    return lambda: path.stat().st_mtime_ns != mtime_ns


async def test_an_arma_backup_while_running_copies_whole_vars_files(tmp_path: Path) -> None:
    async with (
        arma3_supervised(tmp_path) as (env, _profile),
        backup_service(env, tmp_path / "bk") as backups,
    ):
        server = await add_arma3_server(env, "alpha", knobs={"vars_every": 0.2})
        folder = env.supervisor.folder_for("alpha")
        (folder / "mpmissions").mkdir(parents=True, exist_ok=True)
        (folder / "mpmissions" / "coop.Altis.pbo").write_bytes(os.urandom(3000))
        (folder / "@CBA_A3" / "addons").mkdir(parents=True)
        (folder / "@CBA_A3" / "addons" / "cba_main.pbo").write_bytes(b"mod")
        assert await server.start() is S.RUNNING
        vars_file = folder / "profiles" / "Users" / "server" / "server.vars.Arma3Profile"
        await until(vars_file.exists)
        seen: list[bytes] = []
        for attempt in range(3):
            await until(saved_since(vars_file, vars_file.stat().st_mtime_ns))
            job = backups.backup(ADMIN, "alpha", note=f"run {attempt}")
            async with asyncio.timeout(JOB_TIMEOUT):
                result = await job.result()
            assert result.paused_saves is False and server.state is S.RUNNING
            files = unpack(backups, "alpha", result.backup.name, tmp_path / f"u{attempt}")
            rel = "profiles/Users/server/server.vars.Arma3Profile"
            seen.append(stamp(files[rel], b"begin=", b"end="))
            assert "mpmissions/coop.Altis.pbo" in files and "server.cfg" in files
            assert not any(n.startswith(("@CBA_A3", "console.log")) for n in files)
        assert len(set(seen)) == 3  # three saves, each copied whole


async def test_a_cold_backup_stops_the_server_and_starts_it_again(tmp_path: Path) -> None:
    async with supervised(tmp_path) as env, backup_service(env, tmp_path / "bk") as backups:
        server = await env.add_server("cold")
        folder = env.supervisor.folder_for("cold")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "state.txt").write_text("persisted")
        assert await server.start() is S.RUNNING
        first_pid = server.handle.pid if server.handle else None
        updates: list[JobUpdate] = []
        job = backups.backup(ADMIN, "cold", cold=True, on_update=updates.append)
        async with asyncio.timeout(JOB_TIMEOUT):
            result = await job.result()
        assert result.restarted is True and server.state is S.RUNNING
        assert server.handle is not None and server.handle.pid != first_pid
        assert "stopping the server" in [u.step for u in updates]
        _, manifest = backups.store.load("cold", result.backup.name)
        assert manifest.cold and "state.txt" in {f.path for f in manifest.files}


# -- retention, listing, deleting ------------------------------------------------------------


async def test_retention_prunes_the_oldest_beyond_the_servers_count(tmp_path: Path) -> None:
    async with supervised(tmp_path) as env, backup_service(env, tmp_path / "bk") as backups:
        await env.add_server("kept")
        folder = env.supervisor.folder_for("kept")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "data.bin").write_bytes(os.urandom(1000))
        view = await backups.set_policy(ADMIN, "kept", keep=2, excludes=["*.tmp"])
        assert view.keep == 2 and not view.keep_is_default and view.age_is_default
        names = []
        for _ in range(3):
            async with asyncio.timeout(JOB_TIMEOUT):
                result = await backups.backup(ADMIN, "kept").result()
            names.append(result.backup.name)
        assert result.pruned == (names[0],)
        page = await backups.list("kept")
        assert [b.name for b in page.items] == [names[2], names[1]]
        assert await backups.names("kept", names[2][:8]) == [names[2], names[1]]
        deleted = await backups.delete(ADMIN, "kept", names[1])
        assert deleted.name == names[1]
        assert [b.name for b in (await backups.list("kept")).items] == [names[2]]
        with pytest.raises(LanguardError, match="no backup named"):
            await backups.delete(ADMIN, "kept", names[1])
        with pytest.raises(InvalidInput):
            await backups.delete(ADMIN, "kept", "../../etc")
        with pytest.raises(InvalidInput):
            await backups.set_policy(ADMIN, "kept", keep=0)


async def test_a_second_destination_gets_a_copy_and_a_missing_one_is_reported(
    tmp_path: Path,
) -> None:
    mirror = tmp_path / "usb"
    async with (
        supervised(tmp_path) as env,
        backup_service(env, tmp_path / "bk", mirror=mirror) as backups,
    ):
        await env.add_server("twice")
        env.supervisor.folder_for("twice").mkdir(parents=True, exist_ok=True)
        (env.supervisor.folder_for("twice") / "f").write_text("x")
        async with asyncio.timeout(JOB_TIMEOUT):
            missing = await backups.backup(ADMIN, "twice").result()
        assert missing.mirror == "unavailable" and not mirror.exists()  # never created
        mirror.mkdir()
        async with asyncio.timeout(JOB_TIMEOUT):
            copied = await backups.backup(ADMIN, "twice").result()
        assert copied.mirror == "copied"
        assert (mirror / "twice" / copied.backup.name / "manifest.json").is_file()
        assert (await backups.list("twice")).items[0].mirrored


# -- restoring -------------------------------------------------------------------------------


async def test_restore_is_refused_while_the_server_runs_and_it_cannot_start_mid_restore(
    tmp_path: Path,
) -> None:
    async with supervised(tmp_path) as env, backup_service(env, tmp_path / "bk") as backups:
        server = await env.add_server("busy")
        folder = env.supervisor.folder_for("busy")
        folder.mkdir(parents=True, exist_ok=True)
        async with asyncio.timeout(JOB_TIMEOUT):
            taken = await backups.backup(ADMIN, "busy").result()
        assert await server.start() is S.RUNNING
        with pytest.raises(InvalidInput, match="stop it before restoring"):
            backups.restore(ADMIN, "busy", taken.backup.name)
        await server.stop()
        (folder / RESTORE_DIR).mkdir()
        with pytest.raises(StartRefused, match="being restored"):
            await server.start()
        assert server.state is S.STOPPED


async def _world_server(env: Env) -> tuple[ManagedServer, Path]:
    server = await add_minecraft(env, "drill", port=free_port())
    folder = env.supervisor.folder_for("drill")
    assert await server.start() is S.RUNNING
    await wait_link(server)
    assert server.handle is not None
    server.handle.write_console("fake.world 0.01")
    await until((folder / "world" / "region" / "r.0.0.mca").exists)
    await server.stop()
    (folder / "world" / "region" / "r.1.0.mca").write_bytes(os.urandom(50_000))
    (folder / "ops.json").write_text('[{"name": "Alice"}]')
    return server, folder


async def test_restore_drill_every_file_comes_back_with_the_same_sha256(tmp_path: Path) -> None:
    async with minecraft_env(tmp_path) as env, backup_service(env, tmp_path / "bk") as backups:
        server, folder = await _world_server(env)
        async with asyncio.timeout(JOB_TIMEOUT):
            taken = await backups.backup(ADMIN, "drill", note="good state").result()
        original = digests(folder, skip=("logs", "console.log"))
        # the world changes: a save, a new region, a lost file, a griefer made op
        (folder / "world" / "level.dat").write_bytes(b"tick=999\ncorrupted\nend=999\n")
        (folder / "world" / "region" / "r.9.9.mca").write_bytes(b"griefed chunk")
        (folder / "world" / "region" / "r.1.0.mca").unlink()
        (folder / "ops.json").write_text('[{"name": "Griefer"}]')
        assert digests(folder, skip=("logs", "console.log")) != original
        updates: list[JobUpdate] = []
        job = backups.restore(ADMIN, "drill", taken.backup.name, on_update=updates.append)
        async with asyncio.timeout(JOB_TIMEOUT):
            restored = await job.result()
        assert digests(folder, skip=("logs", "console.log")) == original
        assert not (folder / RESTORE_DIR).exists()
        assert restored.removed == 1 and restored.files == len(taken_files(backups, taken))
        steps = [u.step for u in updates]
        for step in (
            "checking the backup",
            "unpacking",
            "replacing files",
            "verifying the restored files",
        ):
            assert step in steps
        listed = (await backups.list("drill")).items
        before = next(b for b in listed if b.name == restored.saved_as)
        assert before.kind is BackupKind.PRE_RESTORE
        # the state the restore undid is itself restorable
        griefed = unpack(backups, "drill", before.name, tmp_path / "pre")
        assert b"Griefer" in griefed["ops.json"] and "world/region/r.9.9.mca" in griefed
        assert await server.start() is S.RUNNING


def taken_files(backups: BackupService, taken: Any) -> list[str]:
    _, manifest = backups.store.load(taken.backup.server, taken.backup.name)
    return [f.path for f in manifest.files]


async def test_a_hostile_archive_is_refused_and_nothing_is_touched(tmp_path: Path) -> None:
    async with supervised(tmp_path) as env, backup_service(env, tmp_path / "bk") as backups:
        await env.add_server("target")
        folder = env.supervisor.folder_for("target")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "world.dat").write_text("mine")
        async with asyncio.timeout(JOB_TIMEOUT):
            genuine = await backups.backup(ADMIN, "target").result()
        # an attacker rewrites the archive (and fixes up its manifest's checksum)
        backup_dir, manifest = backups.store.load("target", genuine.backup.name)
        archive = backup_dir / manifest.archive.name
        payload = b"pwned"
        with tarfile.open(archive, "w:gz") as tar:
            for name in ("world.dat", "../../../../escaped.txt"):
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
        raw = json.loads((backup_dir / "manifest.json").read_bytes())
        data = archive.read_bytes()
        raw["archive"].update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
        raw["archive"]["compression"] = "gzip"
        (backup_dir / "manifest.json").write_text(json.dumps(raw))
        before = digests(folder)
        job = backups.restore(ADMIN, "target", genuine.backup.name)
        with pytest.raises(LanguardError, match="is refused"):
            async with asyncio.timeout(JOB_TIMEOUT):
                await job.result()
        assert digests(folder) == before
        assert not list(tmp_path.rglob("escaped.txt"))
        assert not (folder / RESTORE_DIR).exists()


# -- a full disk -----------------------------------------------------------------------------


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Any:
    path.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


async def test_a_full_disk_is_a_clear_error_leaves_nothing_and_resumes_saving(
    tmp_path: Path,
) -> None:
    with small_disk(tmp_path / "tiny", "256k") as tiny:
        async with (
            minecraft_env(tmp_path) as env,
            backup_service(env, tiny, database=None) as backups,
        ):
            server = await add_minecraft(env, "big", port=free_port())
            folder = env.supervisor.folder_for("big")
            (folder / "world" / "region").mkdir(parents=True)
            (folder / "world" / "level.dat").write_bytes(b"x")
            (folder / "world" / "region" / "r.3.3.mca").write_bytes(os.urandom(1024 * 1024))
            assert await server.start() is S.RUNNING
            await wait_link(server)
            job = backups.backup(ADMIN, "big")
            with pytest.raises(LanguardError, match="disk is full"):
                async with asyncio.timeout(JOB_TIMEOUT):
                    await job.result()
            assert (await backups.list("big")).total == 0
            assert list((tiny / "big").iterdir()) == []  # no half-written leftovers
            log = (folder / "console.log").read_text()
            assert log.rindex("Automatic saving is now enabled") > log.index(
                "Automatic saving is now disabled"
            )


# -- wired into the runtime --------------------------------------------------------------------


async def test_the_runtime_backs_up_into_the_data_dir_and_finishes_a_crashed_restore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    runtime = await Runtime.open(settings, [FakeProfile()])
    try:
        await runtime.servers.create(ADMIN, "alpha", "fake")
        folder = runtime.supervisor.folder_for("alpha")
        (folder / "save.dat").write_text("good")
        async with asyncio.timeout(JOB_TIMEOUT):
            result = await runtime.backups.backup(ADMIN, "alpha").result()
        root = tmp_path / "data" / "backups"
        assert (root / "alpha" / result.backup.name / "manifest.json").is_file()
        assert result.backup.database is not None
        assert (root / result.backup.database / "secret.key").is_file()
        (folder / "save.dat").write_text("bad")
        # a restore killed half-way through its swap, as if the bot died
        backup_dir, manifest = runtime.backups.store.load("alpha", result.backup.name)
        (folder / RESTORE_DIR).mkdir()
        restoring.stage(folder, backup_dir, manifest, lambda d, t: None)
        plan = restoring.plan(folder, manifest, result.backup.name)

        def killed(source: Path, target: Path) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(restoring, "_move", killed)
        with pytest.raises(KeyboardInterrupt):
            restoring.apply(folder, plan, lambda d, t: None)
        monkeypatch.undo()
    finally:
        await runtime.close()
    assert (folder / "save.dat").read_text() == "bad"
    runtime = await Runtime.open(settings, [FakeProfile()])
    try:
        assert (folder / "save.dat").read_text() == "good"
        assert not (folder / RESTORE_DIR).exists()
    finally:
        await runtime.close()
