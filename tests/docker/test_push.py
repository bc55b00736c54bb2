"""Files the bot changed in a server's folder reach the volume on a remote host: written when
they are there, removed when they are gone, and what a hard kill left removed before a start.

Engine B stands for another machine (named volumes); what a volume holds is read by a
container of the unit that prints its folder.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

from core.docker.runtime import DockerRuntime
from core.docker.spec import Mount
from core.games.base import ConfigFile
from core.mods.files import ModFiles
from core.mods.keys import RECORD
from core.services.mod_sets import ModFolders
from core.steam.acf import content_dir
from core.supervisor.runtime_api import UnitRef
from data.repositories.mods import ModRepository
from data.repositories.servers import ServerRecord
from tests.docker.conftest import image_for, unit_for
from tests.docker.engines import DockerDaemon
from tests.docker.helpers import log_lines, python_argv, run_spec, runtime
from tests.integration.supervision import supervised

WAIT = 60.0
LISTING = (
    "import json, os\n"
    "print(json.dumps({os.path.relpath(os.path.join(d, n)): open(os.path.join(d, n), 'rb')"
    ".read().decode() for d, _, names in os.walk('.') for n in names if n != 'console.log'}))"
)


async def volume_of(docker: DockerRuntime, unit: UnitRef) -> dict[str, str]:
    """Every file of the unit's volume (path relative to its folder: content), as a
    container of the unit sees it; the listing container is gone afterwards."""
    log = unit.folder / "console.log"
    log.unlink(missing_ok=True)
    handle = await docker.start(run_spec(unit, python_argv(LISTING)))
    try:
        await asyncio.wait_for(handle.watch(), WAIT)
    finally:
        await handle.aclose()
    listed = json.loads(log_lines(log)[-1])
    assert isinstance(listed, dict)
    return listed


async def test_push_writes_what_is_here_and_removes_what_is_not(
    engine_b: DockerDaemon, instance: str, extra_mounts: list[Mount], tmp_path: Path
) -> None:
    docker = runtime(engine_b, extra_mounts)
    unit = unit_for(instance, tmp_path / "srv")
    kept, gone = unit.folder / "mpmissions" / "a.altis.pbo", unit.folder / "mpmissions" / "b.pbo"
    try:
        for path in (kept, gone):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(path.name.encode())
        await docker.push(unit, [kept, gone])
        assert await volume_of(docker, unit) == {
            "mpmissions/a.altis.pbo": "a.altis.pbo",
            "mpmissions/b.pbo": "b.pbo",
        }
        gone.unlink()
        kept.write_bytes(b"new")
        await docker.push(unit, [kept, gone])
        assert await volume_of(docker, unit) == {"mpmissions/a.altis.pbo": "new"}
    finally:
        await docker.close()


async def test_stale_files_in_the_volume_are_removed_before_a_start(
    engine_b: DockerDaemon, instance: str, extra_mounts: list[Mount], tmp_path: Path
) -> None:
    """A killed BattlEye leaves its active cfg in the volume; the bot cannot reach it there,
    so the runtime removes the profile's stale globs when it writes a start's files."""

    def stale(unit: UnitRef) -> Sequence[str]:
        return ("battleye/beserver*_active_*.cfg",)

    docker = DockerRuntime(
        "b", engine_b.endpoint, image_for=image_for, mounts=extra_mounts, stale_for=stale
    )
    unit = unit_for(instance, tmp_path / "srv")
    be = unit.folder / "battleye"
    left = [
        ConfigFile(be / "beserver_x64_active_1a2b.cfg", b"old"),
        ConfigFile(be / "bans.txt", b"x"),
    ]
    try:
        plain = runtime(engine_b, extra_mounts)  # the same engine, no stale globs
        await plain.prepare(unit, files=left)
        await plain.close()
        await docker.prepare(unit, files=[ConfigFile(be / "beserver_x64.cfg", b"new")])
        assert await volume_of(docker, unit) == {
            "battleye/bans.txt": "x",
            "battleye/beserver_x64.cfg": "new",
        }
    finally:
        await docker.close()


async def test_mod_keys_follow_the_set_of_a_server_on_a_remote_host(
    engine_b: DockerDaemon, extra_mounts: list[Mount], tmp_path: Path
) -> None:
    async with supervised(tmp_path) as env:
        env.supervisor.add_runtime(runtime(engine_b, extra_mounts))

        async def runtime_of(record: ServerRecord) -> str:
            return engine_b.name

        env.supervisor.runtime_of = runtime_of
        server = await env.add_server("keyed")  # never started: the volume is written anyway
        files = ModFiles(tmp_path / "mods")
        files.prepare()
        for item_id, key in ((11, "cba_a3.bikey"), (22, "ace.bikey")):
            files.tree(item_id).mkdir(parents=True)
            source = content_dir(files.steam_dir, item_id)
            (source / "keys").mkdir(parents=True)
            (source / "keys" / key).write_bytes(key.encode())
        repo = ModRepository(env.db)
        await repo.add(11, "CBA_A3", "@cba_a3")
        await repo.add(22, "ACE", "@ace")
        folders = ModFolders(env.supervisor, repo, files, base_keys=None)
        docker = server.runtime
        assert isinstance(docker, DockerRuntime)
        unit = server.unit()
        try:
            await repo.replace_set(server.id, [(11, "client"), (22, "client")])
            await folders.apply(server.id)
            held = await volume_of(docker, unit)
            assert held["keys/cba_a3.bikey"] == "cba_a3.bikey"
            assert held["keys/ace.bikey"] == "ace.bikey"
            assert sorted(json.loads(held[f"keys/{RECORD}"])) == ["ace.bikey", "cba_a3.bikey"]

            await repo.replace_set(server.id, [(11, "client")])  # ACE leaves the set
            await folders.apply(server.id)
            held = await volume_of(docker, unit)
            assert "keys/ace.bikey" not in held and held["keys/cba_a3.bikey"] == "cba_a3.bikey"

            await repo.replace_set(server.id, [])  # no managed set: its keys go
            await folders.apply(server.id)
            listed = await volume_of(docker, unit)
            assert [name for name in listed if name.startswith("keys/")] == []
        finally:
            await docker.forget(unit)  # the listing containers and the volume
