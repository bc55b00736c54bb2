"""Files written into a server's volume through the archive endpoint, atomically."""

from __future__ import annotations

import asyncio
import io
import tarfile
from pathlib import Path, PurePosixPath

import pytest

from core.docker.client import Engine
from core.docker.files import FileWrite
from core.docker.handle import DockerHandle
from core.docker.spec import Mount
from core.errors import ConfigWriteError
from core.games.base import ConfigFile
from tests.docker.conftest import unit_for
from tests.docker.engines import DockerDaemon
from tests.docker.helpers import log_lines, python_argv, run_spec, runtime, wait_for_line

WAIT = 60.0
SIZE = 4 * 1024 * 1024
VERSIONS = 12


async def _read(engine: Engine, container: str, path: str) -> tarfile.TarFile:
    raw = await engine.request(
        "GET", f"containers/{container}/archive", params={"path": path}, raw=True
    )
    return tarfile.open(fileobj=io.BytesIO(raw))


async def test_config_files_go_into_the_volume_before_any_container_exists(
    engine_b: DockerDaemon, instance: str, extra_mounts: list[Mount], tmp_path: Path
) -> None:
    docker = runtime(engine_b, extra_mounts)
    unit = unit_for(instance, tmp_path / "srv")
    files = [
        ConfigFile(unit.folder / "server.cfg", b'hostname = "Alpha";\n', secret=True),
        ConfigFile(unit.folder / "battleye" / "bans.txt", b"1234 -1 cheater\n"),
    ]
    try:
        await docker.prepare(unit, files=files)
        # nothing on the bot's side: the files live in the remote volume
        assert not (unit.folder / "server.cfg").exists()
        listing = "import os; print(sorted(os.listdir('.')), sorted(os.listdir('battleye')))"
        handle = await docker.start(run_spec(unit, python_argv(listing)))
        await asyncio.wait_for(handle.watch(), WAIT)
        assert log_lines(unit.folder / "console.log") == ["['battleye', 'server.cfg'] ['bans.txt']"]
        tar = await _read(docker.engine, handle.ident, str(unit.folder / "server.cfg"))
        member = tar.getmember("server.cfg")
        assert member.mode & 0o777 == 0o600
        extracted = tar.extractfile(member)
        assert extracted is not None and extracted.read() == b'hostname = "Alpha";\n'
        tar = await _read(docker.engine, handle.ident, str(unit.folder / "battleye" / "bans.txt"))
        assert tar.getmember("bans.txt").mode & 0o777 == 0o644
        await handle.aclose()
    finally:
        await docker.close()


async def test_a_file_is_never_seen_half_written_by_the_running_game(
    engine_b: DockerDaemon, instance: str, extra_mounts: list[Mount], tmp_path: Path
) -> None:
    """A reader in the container re-reads the file in a loop while versions of 4 MiB are
    written; each read must be one whole version (a torn read mixes bytes or is short)."""
    docker = runtime(engine_b, extra_mounts)
    unit = unit_for(instance, tmp_path / "srv")
    target = unit.folder / "missions" / "big.pbo"
    closing: list[DockerHandle] = []
    reader = (
        "import os, time\n"
        f"path, size, last = {str(target)!r}, {SIZE}, {VERSIONS}\n"
        "seen, reads, bad = set(), 0, 0\n"
        "print('reading', flush=True)\n"
        "while last not in seen:\n"
        "    try:\n"
        "        data = open(path, 'rb').read()\n"
        "    except FileNotFoundError:\n"
        "        if seen: bad += 1; print('MISSING', flush=True)\n"
        "        continue\n"
        "    reads += 1\n"
        "    if len(data) != size or data.count(data[:1]) != size:\n"
        "        bad += 1; print('TORN', len(data), flush=True)\n"
        "    else:\n"
        "        seen.add(data[0])\n"
        "print('done', reads, len(seen), bad, flush=True)\n"
    )
    try:
        await docker.prepare(
            unit, files=[ConfigFile(target, bytes([1]) * SIZE)]
        )  # version 1 before start
        handle = await docker.start(run_spec(unit, python_argv(reader)))
        closing.append(handle)
        log = unit.folder / "console.log"
        await wait_for_line(log, "reading")
        for version in range(2, VERSIONS + 1):
            await docker.write(unit, [FileWrite(PurePosixPath(target), bytes([version]) * SIZE)])
        await asyncio.wait_for(handle.watch(), WAIT)
        lines = log_lines(log)
        assert not [line for line in lines if "TORN" in line or "MISSING" in line]
        done = next(line for line in lines if line.startswith("done")).split()
        reads, versions, bad = int(done[1]), int(done[2]), int(done[3])
        assert bad == 0 and versions >= 2 and reads > VERSIONS
        # no temporary file is left beside it
        tar = await _read(docker.engine, handle.ident, str(target.parent))
        assert sorted(m.name for m in tar.getmembers()) == ["missions", "missions/big.pbo"]
    finally:
        for opened in closing:
            await opened.aclose()
        await docker.close()


async def test_a_file_outside_the_server_is_refused(
    engine_b: DockerDaemon, instance: str, extra_mounts: list[Mount], tmp_path: Path
) -> None:
    docker = runtime(engine_b, extra_mounts)
    unit = unit_for(instance, tmp_path / "srv")
    try:
        with pytest.raises(ConfigWriteError, match="outside the server"):
            await docker.prepare(unit, files=[ConfigFile(unit.folder / ".." / "evil.cfg", b"x")])
    finally:
        await docker.close()


async def test_files_for_the_local_engine_land_in_the_bound_folder(
    engine_a: DockerDaemon, instance: str, extra_mounts: list[Mount], tmp_path: Path
) -> None:
    docker = runtime(engine_a, extra_mounts)
    unit = unit_for(instance, tmp_path / "srv")
    try:
        await docker.prepare(unit, files=[ConfigFile(unit.folder / "server.properties", b"a=1\n")])
        assert (unit.folder / "server.properties").read_bytes() == b"a=1\n"
        handle = await docker.start(
            run_spec(unit, python_argv("print(open('server.properties').read().strip())"))
        )
        await asyncio.wait_for(handle.watch(), WAIT)
        assert log_lines(unit.folder / "console.log") == ["a=1"]
        await handle.aclose()
    finally:
        await docker.close()
